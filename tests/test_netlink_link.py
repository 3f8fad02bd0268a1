"""Link operations against the real kernel, each read back three ways: a netlink dump, the
namespace's own sysfs, and ``ip -j -d link`` (where iproute2 is installed)."""
import errno

import pytest

from minins.errors import ConfigError
from minins.netlink import link
from minins.netlink.sock import NetlinkError
from netns_util import netns  # noqa: F401  (fixture)

pytestmark = pytest.mark.root


def _ip_link(ns, name):
    out = ns.ip("link", "show", "dev", name)
    return out[0] if out else None


@pytest.fixture
def ns(netns):
    return netns()


@pytest.fixture
def s(ns):
    with ns.socket() as sock:
        yield sock


def test_bridge_add_and_delete(ns, s):
    link.add_bridge(s, "brl0", address="02:00:00:00:00:aa")
    got = link.get(s, "brl0")
    assert got.kind == "bridge" and got.address == "02:00:00:00:00:aa"
    assert ns.sys("brl0", "bridge/stp_state") == "0"
    ip = _ip_link(ns, "brl0")
    if ip is not None:
        assert ip["linkinfo"]["info_kind"] == "bridge"
    link.delete(s, "brl0")
    assert "brl0" not in ns.links()
    assert "brl0" not in {l.name for l in link.dump(s)}


def test_lookup_by_name_and_index_and_dump(ns, s):
    link.add_veth(s, "lka", "lkb")
    a = link.get(s, "lka")
    assert link.get(s, a.index).name == "lka"
    assert link.index(s, "lka") == a.index == int(ns.sys("lka", "ifindex"))
    by_name = {l.name: l for l in link.dump(s)}
    assert set(by_name) == ns.links() == {"lo", "lka", "lkb"}
    assert by_name["lkb"].parent == a.index and by_name["lkb"].kind == "veth"


def test_up_and_down(ns, s):
    link.add_veth(s, "upa", "upb")
    link.set_up(s, "upa")
    assert link.get(s, "upa").up
    assert int(ns.sys("upa", "flags"), 16) & 1
    ip = _ip_link(ns, "upa")
    if ip is not None:
        assert "UP" in ip["flags"]
    link.set_down(s, "upa")
    assert not link.get(s, "upa").up
    assert not int(ns.sys("upa", "flags"), 16) & 1


def test_mtu_set_and_refused(ns, s):
    link.add_veth(s, "mta", "mtb")
    link.set_mtu(s, "mta", 9000)
    assert link.get(s, "mta").mtu == 9000 and ns.sys("mta", "mtu") == "9000"
    ip = _ip_link(ns, "mta")
    if ip is not None:
        assert ip["mtu"] == 9000
    for bad in (67, 65536):
        with pytest.raises(NetlinkError) as exc:
            link.set_mtu(s, "mta", bad)
        assert exc.value.errno == errno.EINVAL and exc.value.path == "mta"
    assert ns.sys("mta", "mtu") == "9000"


def test_mac_address_and_multicast_refused_before_sending(ns, s):
    link.add_veth(s, "maa", "mab")
    link.set_address(s, "maa", "02:42:AC:11:00:02")
    assert link.get(s, "maa").address == "02:42:ac:11:00:02"
    assert ns.sys("maa", "address") == "02:42:ac:11:00:02"
    ip = _ip_link(ns, "maa")
    if ip is not None:
        assert ip["address"] == "02:42:ac:11:00:02"
    for bad in ("01:00:5e:00:00:01", "00:00:00:00:00:00", "02:42:ac:11:00", "zz:42:ac:11:00:02"):
        with pytest.raises(ConfigError):
            link.set_address(s, "maa", bad)
    # Bytes bypass the check; the kernel then refuses a multicast address itself.
    with pytest.raises(NetlinkError) as exc:
        link.set_address(s, "maa", b"\x01\0\x5e\0\0\1")
    assert exc.value.errno == errno.EADDRNOTAVAIL
    assert ns.sys("maa", "address") == "02:42:ac:11:00:02"


def test_txqueuelen(ns, s):
    link.add_veth(s, "tqa", "tqb", txqueuelen=321)
    assert ns.sys("tqa", "tx_queue_len") == ns.sys("tqb", "tx_queue_len") == "321"
    link.set_txqueuelen(s, "tqa", 77)
    assert link.get(s, "tqa").txqueuelen == 77 and ns.sys("tqa", "tx_queue_len") == "77"
    ip = _ip_link(ns, "tqa")
    if ip is not None:
        assert ip["txqlen"] == 77


def test_rename_and_the_name_rules_checked_before_sending(ns, s):
    link.add_veth(s, "rna", "rnb")
    idx = link.index(s, "rna")
    link.rename(s, "rna", "renamed-15chars")
    assert link.get(s, idx).name == "renamed-15chars"
    assert "renamed-15chars" in ns.links() and "rna" not in ns.links()
    for bad in ("sixteen-chars-xx", "", ".", "..", "a/b", "a:b", "a b", "tab\t"):
        with pytest.raises(ConfigError):
            link.rename(s, idx, bad)
    with pytest.raises(NetlinkError) as exc:
        link.rename(s, idx, "rnb")  # taken by the peer
    assert exc.value.errno == errno.EEXIST


def test_master_and_nomaster(ns, s):
    link.add_bridge(s, "brm0")
    link.add_veth(s, "msa", "msb")
    link.set_master(s, "msa", "brm0")
    br = link.index(s, "brm0")
    got = link.get(s, "msa")
    assert got.master == br and got.slave_kind == "bridge"
    assert ns.sys("msa", "master/ifindex") == str(br)
    ip = _ip_link(ns, "msa")
    if ip is not None:
        assert ip["master"] == "brm0"
    link.set_nomaster(s, "msa")
    assert link.get(s, "msa").master == 0
    with pytest.raises(OSError):
        ns.sys("msa", "master/ifindex")
    with pytest.raises(NetlinkError) as exc:
        link.set_master(s, "msa", "msb")  # a veth cannot be a master
    assert exc.value.errno == errno.EOPNOTSUPP


def test_hairpin_mode(ns, s):
    link.add_bridge(s, "brh0")
    link.add_veth(s, "hpa", "hpb", master=link.index(s, "brh0"))
    link.set_hairpin(s, "hpa", True)
    assert ns.sys("hpa", "brport/hairpin_mode") == "1"
    idx = link.index(s, "hpa")
    assert link.bridge_ports(s)[idx][4] == b"\1"  # IFLA_BRPORT_MODE
    link.set_hairpin(s, "hpa", False)
    assert ns.sys("hpa", "brport/hairpin_mode") == "0"
    with pytest.raises(NetlinkError):
        link.set_hairpin(s, "hpb", True)  # not a bridge port


def test_move_to_a_namespace_by_pid_and_by_fd(netns):
    home, there = netns(), netns()
    with home.socket() as s:
        link.add_veth(s, "mva", "mvb")
        link.set_netns_pid(s, "mva", there.pid)
        link.set_netns_fd(s, "mvb", there.fd)
        assert {l.name for l in link.dump(s)} == {"lo"}
    assert home.links() == {"lo"}
    with there.socket() as t:
        assert {l.name for l in link.dump(t)} == {"lo", "mva", "mvb"}
    assert there.links() == {"lo", "mva", "mvb"}


def test_veth_peer_born_inside_another_namespace_by_pid_and_fd(netns):
    home, there = netns(), netns()
    with home.socket() as s:
        link.add_bridge(s, "brv0")
        link.add_veth(s, "vpa", "vpb", peer_netns_pid=there.pid, mtu=1400, txqueuelen=42,
                      master=link.index(s, "brv0"), up=True)
        link.add_veth(s, "vfa", "vfb", peer_netns_fd=there.fd)
        a = link.get(s, "vpa")
        assert a.up and a.mtu == 1400 and a.master == link.index(s, "brv0")
        assert a.netnsid is not None  # its peer lives elsewhere
    assert home.links() == {"lo", "brv0", "vpa", "vfa"}
    assert there.links() == {"lo", "vpb", "vfb"}
    assert there.sys("vpb", "mtu") == "1400" and there.sys("vpb", "tx_queue_len") == "42"
    ip = there.ip("link", "show", "dev", "vpb")
    if ip is not None:
        assert ip[0]["linkinfo"]["info_kind"] == "veth"


def test_duplicate_veth_is_eexist(ns, s):
    link.add_veth(s, "dua", "dub")
    with pytest.raises(NetlinkError) as exc:
        link.add_veth(s, "dua", "duc")
    assert exc.value.errno == errno.EEXIST and exc.value.op == "create veth pair dua/duc"
    assert ns.links() == {"lo", "dua", "dub"}


def test_vlan(ns, s):
    link.add_veth(s, "vla", "vlb")
    for bad in (-1, 4095, "5", True):
        with pytest.raises(ConfigError):
            link.add_vlan(s, "vl0", "vla", bad)
    try:
        link.add_vlan(s, "vl0", "vla", 42)
    except NetlinkError as e:
        # Kernels built without CONFIG_VLAN_8021Q answer "Unknown device type".
        assert e.errno == errno.EOPNOTSUPP
        pytest.skip("this kernel has no 802.1Q vlan support: %s" % e)
    got = link.get(s, "vl0")
    assert got.kind == "vlan" and got.parent == link.index(s, "vla")
    ip = _ip_link(ns, "vl0")
    if ip is not None:
        assert ip["linkinfo"]["info_data"]["id"] == 42


@pytest.mark.parametrize("kind", ["macvlan", "macvtap"])
@pytest.mark.parametrize("mode", ["bridge", "private", "vepa"])
def test_macvlan_and_macvtap(ns, s, kind, mode):
    link.add_veth(s, "mpa", "mpb")
    add = link.add_macvlan if kind == "macvlan" else link.add_macvtap
    add(s, "mv0", "mpa", mode)
    got = link.get(s, "mv0")
    assert got.kind == kind and got.parent == link.index(s, "mpa")
    assert "mv0" in ns.links()
    ip = _ip_link(ns, "mv0")
    if ip is not None:
        assert ip["linkinfo"]["info_kind"] == kind
        assert ip["linkinfo"]["info_data"]["mode"] == mode
    with pytest.raises(ConfigError):
        add(s, "mv1", "mpa", "sideways")


def test_unknown_kind_is_eopnotsupp(ns, s):
    with pytest.raises(NetlinkError) as exc:
        link.add(s, "odd0", "no-such-kind")
    assert exc.value.errno == errno.EOPNOTSUPP


def test_configure_applies_several_settings_in_one_request(ns, s):
    link.add_bridge(s, "brc0")
    link.add_veth(s, "cfa", "cfb")
    link.configure(s, "cfa", up=True, mtu=1300, txqueuelen=55, address="02:00:00:00:00:cf",
                   master="brc0")
    got = link.get(s, "cfa")
    assert (got.up, got.mtu, got.txqueuelen, got.address, got.master) == (
        True, 1300, 55, "02:00:00:00:00:cf", link.index(s, "brc0"))
    assert ns.sys("cfa", "mtu") == "1300" and ns.sys("cfa", "master/ifindex") == str(got.master)
    link.configure(s, "cfa", up=False, master=0)
    got = link.get(s, "cfa")
    assert not got.up and got.master == 0 and got.mtu == 1300  # the rest left alone
