"""The network strategies: validation (pure, hypothesis), then whole containers' networks on
the real kernel. Each test builds a "host" namespace with a bridge and "container" namespaces
held by child processes (the init's stand-ins), all created by the test and gone after it."""
import errno
import os
import select
import socket
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins import network
from minins.errors import ConfigError, SyscallError
from minins.netlink import addr, link, route
from minins.netlink import codec as c
from minins.netlink.sock import NetlinkError
from netns_util import netns  # noqa: F401  (fixture)

_NET = dict(type="", bridge="", veth_prefix="", mac_address="", address="", ipv6_address="",
            gateway="", ipv6_gateway="", mtu=0, txqueuelen=0, hairpin_mode=False, ns_path="")
_ROUTE = dict(destination="", source="", gateway="", interface_name="")


def _record(name, defaults, kw):
    try:
        from minins import config
        return getattr(config, name)(**kw)
    except ImportError:
        return types.SimpleNamespace(**dict(defaults, **kw))


def Net(**kw):
    return _record("Network", _NET, kw)


def Route(**kw):
    return _record("Route", _ROUTE, kw)


def veth(**kw):
    base = dict(type="veth", bridge="br-t", veth_prefix="vt", address="198.18.0.2/24",
                gateway="198.18.0.1")
    return Net(**dict(base, **kw))


# --- validate (pure) -------------------------------------------------------------------------

def test_seed_samples_validate():
    minimal = Net(type="loopback", address="127.0.0.1/0", gateway="localhost", mtu=1500)
    bridge = veth(address="172.17.0.101/16", gateway="172.17.42.1", veth_prefix="veth",
                  bridge="docker0", mtu=1500)
    src_sel = Route(destination="0.0.0.0/0", source="172.17.0.101", gateway="172.17.42.1",
                    interface_name="eth0")
    network.validate([minimal], [])
    network.validate([minimal, bridge], [])
    network.validate([minimal, veth(gateway="", address="172.17.0.101/16")], [src_sel])
    network.validate([Net(type="netns", ns_path="/var/run/netns/x")], [])


@pytest.mark.parametrize("nets, routes, field", [
    ([Net(type="bridge")], [], "networks[0].type"),
    ([Net(type="loopback"), veth(bridge="")], [], "networks[1].bridge"),
    ([veth(veth_prefix="")], [], "networks[0].veth_prefix"),
    ([veth(veth_prefix="ninechars")], [], "networks[0].veth_prefix"),
    ([veth(veth_prefix="a/b")], [], "networks[0].veth_prefix"),
    ([veth(bridge="sixteen-chars-xx")], [], "networks[0].bridge"),
    ([veth(address="198.18.0.2")], [], "networks[0].address"),
    ([veth(address="198.18.0.300/24")], [], "networks[0].address"),
    ([veth(address="fd00::2/64")], [], "networks[0].address"),
    ([veth(ipv6_address="198.18.0.2/24")], [], "networks[0].ipv6_address"),
    ([veth(gateway="fd00::1")], [], "networks[0].gateway"),
    ([veth(gateway="not-an-ip")], [], "networks[0].gateway"),
    ([veth(ipv6_gateway="fd00::1")], [], "networks[0].ipv6_gateway"),
    ([veth(address="", gateway="198.18.0.1")], [], "networks[0].gateway"),
    ([veth(mac_address="01:00:5e:00:00:01")], [], "networks[0].mac_address"),
    ([veth(mac_address="02:42")], [], "networks[0].mac_address"),
    ([veth(mtu=67)], [], "networks[0].mtu"),
    ([veth(mtu=65536)], [], "networks[0].mtu"),
    ([veth(mtu=-1)], [], "networks[0].mtu"),
    ([veth(mtu=1000, ipv6_address="fd00::2/64")], [], "networks[0].mtu"),
    ([veth(txqueuelen=-5)], [], "networks[0].txqueuelen"),
    ([veth(), veth()], [], "networks[1].type"),
    ([Net(type="netns")], [], "networks[0].ns_path"),
    ([veth(), Net(type="netns", ns_path="/x")], [], "networks[0].type"),
    ([], [Route(destination="198.18.0.0/24")], "routes[0]"),
    ([], [Route(destination="198.18.0.0", gateway="198.18.0.1")], "routes[0] destination"),
    ([], [Route(destination="fd00::/64", gateway="198.18.0.1")], "routes[0]"),
    ([], [Route(gateway="198.18.0.1", interface_name="a b")], "routes[0].interface_name"),
    ([], [Route(source="x", gateway="198.18.0.1")], "routes[0] source"),
])
def test_bad_input_names_its_field(nets, routes, field):
    with pytest.raises(ConfigError) as exc:
        network.validate(nets, routes)
    assert exc.value.field == field
    assert str(exc.value).startswith(field + ": ")


def test_field_prefix_is_used():
    with pytest.raises(ConfigError) as exc:
        network.validate([Net(type="x")], [], field_prefix=("spec.networks", "spec.routes"))
    assert exc.value.field == "spec.networks[0].type"


def test_mtu_zero_and_prefix_of_eight_are_fine():
    network.validate([veth(mtu=0, veth_prefix="eightchr")], [])


_junk = st.one_of(st.none(), st.text(max_size=20), st.integers(-2 ** 40, 2 ** 40), st.booleans(),
                  st.sampled_from(["198.18.0.2/24", "fd00::2/64", "198.18.0.1", "fd00::1",
                                   "02:42:ac:11:00:02", "br0", "veth", "loopback", "netns"]))


@given(st.lists(st.fixed_dictionaries({k: _junk for k in _NET}), max_size=3),
       st.lists(st.fixed_dictionaries({k: _junk for k in _ROUTE}), max_size=2))
def test_validate_raises_only_config_errors(nets, routes):
    try:
        network.validate([types.SimpleNamespace(**n) for n in nets],
                         [types.SimpleNamespace(**r) for r in routes])
    except ConfigError as e:
        assert e.field


# --- on the kernel ---------------------------------------------------------------------------

@pytest.fixture
def lan(netns):
    """A host namespace with bridge br-t (198.18.0.1/24, fd00:18::1/64), and a factory of
    containers on it: ``lan.container(network)`` -> (namespace, state)."""
    host = netns()
    with host.socket() as s:
        link.add_bridge(s, "br-t", up=True)
        addr.add(s, "br-t", "198.18.0.1/24")
        addr.add(s, "br-t", "fd00:18::1/64", nodad=True)

    def container(*nets, routes=(), owner=""):
        ns = netns()
        with host.enter():
            state = network.create(nets, ns.pid, owner)
        with ns.enter():
            network.initialize(nets, routes, state)
        return ns, state

    return types.SimpleNamespace(host=host, container=container)


def _tcp(src, dst, family, address):
    """Connect from namespace ``src`` to a listener in ``dst``; the peer address seen."""
    with dst.enter():
        srv = socket.socket(family, socket.SOCK_STREAM)
    with src.enter():
        cli = socket.socket(family, socket.SOCK_STREAM)
    with srv, cli:
        srv.settimeout(10)
        cli.settimeout(10)
        srv.bind((address, 0))
        srv.listen(1)
        cli.connect((address, srv.getsockname()[1]))
        conn, peer = srv.accept()
        with conn:
            cli.sendall(b"hello")
            assert conn.recv(5) == b"hello"
    return peer[0]


@pytest.mark.root
def test_two_containers_on_a_bridge_reach_each_other_and_the_gateway(lan):
    a, _ = lan.container(veth(address="198.18.0.2/24", ipv6_address="fd00:18::2/64",
                              ipv6_gateway="fd00:18::1"))
    b, _ = lan.container(veth(address="198.18.0.3/24", ipv6_address="fd00:18::3/64",
                              ipv6_gateway="fd00:18::1"))
    assert _tcp(a, b, socket.AF_INET, "198.18.0.3") == "198.18.0.2"
    assert _tcp(b, a, socket.AF_INET6, "fd00:18::2") == "fd00:18::3"
    assert _tcp(a, lan.host, socket.AF_INET, "198.18.0.1") == "198.18.0.2"
    assert _tcp(b, lan.host, socket.AF_INET6, "fd00:18::1") == "fd00:18::3"


@pytest.mark.root
def test_container_side_is_read_back(lan):
    ns, state = lan.container(
        Net(type="loopback", address="127.0.0.1/0", gateway="localhost", mtu=1500),
        veth(mac_address="02:42:c6:12:00:02", ipv6_address="fd00:18::2/64",
             ipv6_gateway="fd00:18::1", mtu=1400, txqueuelen=600))
    assert ns.links() == {"lo", "eth0"}
    assert ns.sys("eth0", "address") == "02:42:c6:12:00:02"
    assert ns.sys("eth0", "mtu") == "1400" and ns.sys("eth0", "tx_queue_len") == "600"
    assert ns.sys("lo", "mtu") == "65536"
    for name in ("lo", "eth0"):  # (operstate follows later, from the kernel's linkwatch)
        assert int(ns.sys(name, "flags"), 16) & c.IFF_UP
    with ns.socket() as s:
        eth0 = link.get(s, "eth0")
        assert eth0.up and link.get(s, "lo").up
        cidrs = {a.cidr for a in addr.dump(s, link="eth0")}
        assert {"198.18.0.2/24", "fd00:18::2/64"} <= cidrs
        v4 = {r.destination: r for r in route.dump(s)}
        v6 = {r.destination: r for r in route.dump(s, c.AF_INET6)}
    assert v4["default"].gateway == "198.18.0.1" and v4["default"].oif == eth0.index
    assert v6["default"].gateway == "fd00:18::1"
    ip = ns.ip("route", "show", "default")
    if ip is not None:
        assert ip[0]["gateway"] == "198.18.0.1" and ip[0]["dev"] == "eth0"
        a = ns.ip("addr", "show", "dev", "eth0")[0]
        assert {"198.18.0.2", "fd00:18::2"} <= {x["local"] for x in a["addr_info"]}


@pytest.mark.root
def test_host_side_is_read_back(lan):
    ns, state = lan.container(veth(mtu=1400, hairpin_mode=True, veth_prefix="vtpfx"))
    host, child = state["veth_host"], state["veth_child"]
    for name in (host, child):
        assert name.startswith("vtpfx") and len(name) == 12
        int(name[5:], 16)
    assert host != child
    h = lan.host
    assert h.links() == {"lo", "br-t", host}
    assert h.sys(host, "master/ifindex") == h.sys("br-t", "ifindex")
    assert h.sys(host, "mtu") == "1400" and h.sys(host, "brport/hairpin_mode") == "1"
    assert int(h.sys(host, "flags"), 16) & c.IFF_UP
    ip = h.ip("link", "show", "dev", host)
    if ip is not None:
        assert ip[0]["master"] == "br-t" and ip[0]["linkinfo"]["info_kind"] == "veth"


@pytest.mark.root
def test_route_source_address_selection_sample(lan):
    ns, _ = lan.container(veth(address="198.18.0.101/24", gateway=""),
                          routes=[Route(destination="0.0.0.0/0", source="198.18.0.101",
                                        gateway="198.18.0.1", interface_name="eth0")])
    with ns.socket() as s:
        [r] = [r for r in route.dump(s) if r.destination == "default"]
    assert (r.gateway, r.prefsrc) == ("198.18.0.1", "198.18.0.101")
    assert _tcp(ns, lan.host, socket.AF_INET, "198.18.0.1") == "198.18.0.101"


@pytest.mark.root
def test_stats_are_the_host_ends_counters_swapped(lan):
    a, state = lan.container(veth())
    _tcp(a, lan.host, socket.AF_INET, "198.18.0.1")
    host_end = lambda n: int(lan.host.sys(state["veth_host"], "statistics/" + n))  # noqa: E731
    before = {n: host_end(n) for n in network.STATS}
    got = network.stats(state, sysfs=lan.host.sysfs)
    after = {n: host_end(n) for n in network.STATS}
    for name in network.STATS:
        other = ("tx" if name.startswith("rx") else "rx") + name[2:]
        assert before[other] <= got[name] <= after[other]
    assert got["tx_packets"] > 0 and got["rx_packets"] > 0 and got["tx_bytes"] > 0


def test_stats_without_a_veth_are_zero_and_a_vanished_one_is_an_error(tmp_path):
    assert network.stats({"veth_host": "", "veth_child": ""}) == dict.fromkeys(network.STATS, 0)
    with pytest.raises(SyscallError) as exc:
        network.stats({"veth_host": "gone0"}, sysfs=str(tmp_path))
    assert exc.value.errno == errno.ENOENT


def _wait_for_dellink(sock, name, timeout=10.0):
    """Read RTM_DELLINK notifications until one for ``name``; False on time-out."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], deadline - time.monotonic())
        if not ready:
            break
        for m in c.decode(sock.recv(65536)):
            if m.type == c.RTM_DELLINK and c.get_string(m.attr(c.IFLA_IFNAME, b"")) == name:
                return True
    return False


@pytest.mark.root
def test_teardown_is_the_namespace_dying(lan):
    ns, state = lan.container(veth())
    with lan.host.enter():
        watch = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, c.NETLINK_ROUTE)
    with watch:
        watch.bind((0, 1))  # RTMGRP_LINK
        ns.close()  # the init is gone: nothing else is done
        ns.close = lambda: None
        assert _wait_for_dellink(watch, state["veth_host"])
    with lan.host.socket() as s:  # (sysfs entries go a little after the notification)
        assert {l.name for l in link.dump(s)} == {"lo", "br-t"}


def _pinned(ns):
    """Keep ``ns``'s network namespace alive past its holder, as a bind mount or an fd
    held elsewhere does; then end the holder. The fd returned is the pin."""
    pin = os.open("/proc/%d/ns/net" % ns.pid, os.O_RDONLY | os.O_CLOEXEC)
    ns.close()
    ns.close = lambda: None
    return pin


@pytest.mark.root
def test_a_pair_that_outlives_its_namespace_is_removed_by_its_alias(lan):
    ns, state = lan.container(veth(), owner="minins 42.1234 c1")
    assert state["veth_alias"] == "minins 42.1234 c1"
    with lan.host.socket() as s:
        assert link.get(s, state["veth_host"]).alias == "minins 42.1234 c1"
    pin = _pinned(ns)
    try:
        assert lan.host.links() == {"lo", "br-t", state["veth_host"]}  # it survived
        with lan.host.enter():
            assert network.remove_survivor(state)
            assert not network.remove_survivor(state)  # gone: nothing to do, no error
        assert lan.host.links() == {"lo", "br-t"}
    finally:
        os.close(pin)


@pytest.mark.root
@pytest.mark.parametrize("forged", [
    {"veth_alias": "minins 42.1234 another"},  # a link of that name, not ours any more
    {"veth_alias": ""},  # a state from before aliases: nothing proves the link is ours
    {"veth_host": "br-t"},  # the name of a link that is no veth
])
def test_a_link_that_is_not_the_containers_pair_is_left_alone(lan, forged):
    ns, state = lan.container(veth(), owner="minins 42.1234 c1")
    pin = _pinned(ns)
    try:
        with lan.host.enter():
            assert not network.remove_survivor(dict(state, **forged))
        assert lan.host.links() == {"lo", "br-t", state["veth_host"]}
    finally:
        os.close(pin)  # the namespace dies: the pair with it


@pytest.mark.root
def test_missing_bridge_names_the_field_and_leaves_nothing(lan, netns):
    ns = netns()
    with lan.host.enter():
        with pytest.raises(NetlinkError) as exc:
            network.create([veth(bridge="br-none")], ns.pid)
    assert exc.value.errno == errno.ENODEV
    assert str(exc.value).startswith("networks[0].bridge: ")
    assert lan.host.links() == {"lo", "br-t"} and ns.links() == {"lo"}


@pytest.mark.root
def test_mtu_the_kernel_refuses_undoes_the_pair(lan, netns):
    ns = netns()
    with lan.host.enter():
        with pytest.raises(NetlinkError) as exc:
            network.create([veth(mtu=70000)], ns.pid)  # past validate, as a caller might
    assert exc.value.errno == errno.EINVAL
    assert str(exc.value).startswith("networks[0].mtu: set mtu 70000 vt")
    assert lan.host.links() == {"lo", "br-t"} and ns.links() == {"lo"}


@pytest.mark.root
def test_a_name_clash_takes_new_names(lan, netns, monkeypatch):
    ns = netns()
    with lan.host.socket() as s:
        link.add_veth(s, "vtclash1", "vtclash2")
    names = iter(["vtclash1", "vtfresh1", "vtfresh2", "vtfresh3"])
    monkeypatch.setattr(network, "_random_name", lambda prefix: next(names))
    with lan.host.enter():
        state = network.create([veth()], ns.pid)
    assert state == {"veth_host": "vtfresh2", "veth_child": "vtfresh3", "veth_alias": ""}
    assert ns.links() == {"lo", "vtfresh3"}


@pytest.mark.root
def test_names_that_always_clash_give_up_with_eexist(lan, netns, monkeypatch):
    ns = netns()
    with lan.host.socket() as s:
        link.add_veth(s, "vtclash1", "vtclash2")
    monkeypatch.setattr(network, "_random_name",
                        lambda prefix, n=iter(range(1000)): "vtclash1" if next(n) % 2 == 0
                        else "vtother")
    with lan.host.enter():
        with pytest.raises(NetlinkError) as exc:
            network.create([veth()], ns.pid)
    assert exc.value.errno == errno.EEXIST and str(exc.value).startswith("networks[0]: ")
    assert lan.host.links() == {"lo", "br-t", "vtclash1", "vtclash2"} and ns.links() == {"lo"}


@pytest.mark.root
def test_loopback_only(netns):
    ns = netns()
    nets = [Net(type="loopback", address="127.0.0.1/0", gateway="localhost", mtu=1500)]
    network.validate(nets, [])
    assert network.create(nets, ns.pid) == {"veth_host": "", "veth_child": "",
                                              "veth_alias": ""}
    with ns.enter():
        network.initialize(nets, [], {"veth_host": "", "veth_child": ""})
    with ns.socket() as s:
        lo = link.get(s, "lo")
    assert lo.up and lo.mtu == 65536
    assert _tcp(ns, ns, socket.AF_INET, "127.0.0.1") == "127.0.0.1"


@pytest.mark.root
def test_netns_strategy_joins_the_path_first(netns):
    start, target = netns(), netns()
    nets = [Net(type="loopback"), Net(type="netns", ns_path=target.path)]
    with start.enter():
        network.initialize(nets, [], {})
        assert os.stat("/proc/thread-self/ns/net").st_ino == target.inode
    with target.socket() as s:
        assert link.get(s, "lo").up
    with start.socket() as s:
        assert not link.get(s, "lo").up


@pytest.mark.root
def test_netns_strategy_with_a_missing_path(netns, tmp_path):
    start = netns()
    with start.enter():
        with pytest.raises(SyscallError) as exc:
            network.initialize([Net(type="netns", ns_path=str(tmp_path / "none"))], [], {})
        assert os.stat("/proc/thread-self/ns/net").st_ino == start.inode
    assert exc.value.errno == errno.ENOENT
    assert str(exc.value).startswith("networks[0].ns_path: open ")


@pytest.mark.root
def test_unreachable_gateway_names_the_field(lan, netns):
    with pytest.raises(NetlinkError) as exc:
        lan.container(veth(gateway="203.0.113.1"))
    assert exc.value.errno == errno.ENETUNREACH
    assert str(exc.value).startswith("networks[0].gateway: add route default via 203.0.113.1")


@pytest.mark.root
def test_initialize_without_a_child_in_the_state(netns):
    from minins.errors import ContainerError
    with netns().enter():
        with pytest.raises(ContainerError, match="veth_child"):
            network.initialize([veth()], [], {"veth_host": "x", "veth_child": ""})


@pytest.mark.root
def test_a_bridge_that_is_no_bridge_leaves_nothing(lan, netns):
    ns = netns()
    with lan.host.socket() as s:
        link.add_veth(s, "notbr0", "notbr1")
    with lan.host.enter():
        with pytest.raises(ConfigError) as exc:
            network.create([veth(bridge="notbr0")], ns.pid)
        with pytest.raises(ConfigError) as exc_lo:
            network.create([veth(bridge="lo")], ns.pid)
    # said before anything is made (it was a bare EOPNOTSUPP of the veth creation)
    assert str(exc.value) == ("networks[0].bridge: notbr0 is not a bridge (it is a veth "
                              "link); give the name of a bridge link, which the host end of "
                              "the veth pair joins")
    assert "lo is not a bridge (it is a link of no kind" in str(exc_lo.value)
    assert lan.host.links() == {"lo", "br-t", "notbr0", "notbr1"} and ns.links() == {"lo"}


@pytest.mark.root
def test_a_veth_for_an_init_without_its_own_namespace_is_refused(lan):
    with lan.host.enter():  # lan.host.pid is in the namespace this thread is in
        with pytest.raises(ConfigError) as exc:
            network.create([veth()], lan.host.pid)
    assert exc.value.field == "networks[0]" and "NEWNET" in str(exc.value)
    assert lan.host.links() == {"lo", "br-t"}


@pytest.mark.root
def test_a_veth_into_a_network_namespace_joined_by_path_is_removed_at_the_end(netns, tmp_path):
    """A container that joins an existing network namespace (NEWNET with a path) does not take
    that namespace with it when it ends, so neither its veth: both ends stayed, the host's on
    the bridge, after every run. The runtime removes the pair it made."""
    from minins import config
    from minins.config import Namespace
    from kernel import run_captured

    target = netns()
    bridge, prefix = "brt%d" % os.getpid(), "vj%x" % (os.getpid() & 0xfff)
    with socket_host() as s:
        link.add_bridge(s, bridge, up=True)
    try:
        cfg = config.default_config()
        cfg = cfg.replace(
            cgroups=None,
            namespaces=tuple(n if n.type != "NEWNET" else Namespace(type="NEWNET",
                                                                    path=target.path)
                             for n in cfg.namespaces),
            networks=(Net(type="loopback"), veth(bridge=bridge, veth_prefix=prefix)))
        code, out, err = run_captured(cfg, ["cat", "/sys/class/net/eth0/operstate"],
                                      state_root=str(tmp_path / "state"))
        assert code == 0, err
        assert [n for n in os.listdir("/sys/class/net") if n.startswith(prefix)] == []
        assert target.links() == {"lo"}
    finally:
        with socket_host() as s:
            link.delete(s, bridge)


def socket_host():
    from minins.netlink.sock import Socket

    return Socket()
