"""A container's network: the seed's strategies over :mod:`minins.netlink`.

Strategies (``networks[i].type``):

* ``loopback`` -- the container brings ``lo`` up. Its address, gateway and MTU are ignored,
  as in the seed (whose minimal.json says ``"gateway": "localhost"``).
* ``veth`` -- on the host, :func:`create` makes a pair named ``veth_prefix`` + 7 random hex
  characters (a new name on a clash, up to 10 tries); the container's end is born directly
  inside the init's network namespace (``IFLA_NET_NS_PID`` on the peer), so no link is ever
  moved; the same request puts the host end on ``bridge`` and up (one message where the seed
  sent four). Then the host end gets the MTU and hairpin mode. In the
  container, :func:`initialize` renames its end to ``eth0`` and sets the MAC address, the
  IPv4/IPv6 addresses (IPv6 without duplicate address detection: the address is assigned, and
  DAD would keep it unusable for a second or more), the MTU, up, and the default gateways.
* ``netns`` -- the container's init joins the network namespace file ``ns_path`` before
  anything else.

Then ``routes`` (destination, source as the preferred source, gateway, interface_name).

Tear-down costs nothing: when the init's network namespace dies, the kernel removes the
container's end of the pair and the host end with it. :func:`create` deletes what it made only
when it fails half-way. ``mtu`` 0 and ``txqueuelen`` 0 mean "leave the kernel's default" (the
seed failed on mtu 0).

Errors: :func:`validate` raises :class:`minins.errors.ConfigError` naming the field
(``networks[1].address: ...``) before anything exists; what only the kernel can tell (a
bridge that is missing, an MTU it refuses) raises a
:class:`~minins.netlink.sock.NetlinkError` at its step, its text starting with the field.

Man pages: veth(4), rtnetlink(7), setns(2), network_namespaces(7); the statistics files are
described in the kernel's Documentation/ABI/testing/sysfs-class-net-statistics.
"""
import errno as _errno
import os as _os

from .errors import ConfigError, ContainerError, SyscallError
from .netconfig import CHILD_NAME, RANDOM_CHARS, TYPES, _f, validate  # noqa: F401
from .netlink import addr as _addr
from .netlink import codec as _c
from .netlink import link as _link
from .netlink import route as _route
from .netlink.sock import NetlinkError, Socket, with_field

__all__ = ["create", "initialize", "stats", "validate", "TYPES", "CHILD_NAME"]

NAME_TRIES = 10
CLONE_NEWNET = 0x40000000
STATS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
         "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


# --- host side -------------------------------------------------------------------------------

def create(networks, init_pid):
    """Host side, once the init exists in its new network namespace. Returns the network
    state ``{"veth_host": name, "veth_child": name}`` (empty strings without a veth)."""
    state = {"veth_host": "", "veth_child": ""}
    veths = [(i, n) for i, n in enumerate(networks) if _f(n, "type") == "veth"]
    if not veths:
        return state
    if _same_netns(init_pid):
        raise ConfigError("networks[%d]" % veths[0][0], "a veth network needs the container in "
                          "its own network namespace (NEWNET); its init shares ours")
    with Socket() as sock:
        for i, net in veths:
            state["veth_host"], state["veth_child"] = _create_veth(sock, net, "networks[%d]"
                                                                   % i, init_pid)
    return state


def remove(state):
    """Delete the veth pair ``state`` (from :func:`create`) names by its host end; a pair gone
    already (its network namespace died, taking it along) is no error. For a container in a
    network namespace that outlives it (one joined by path), which would keep the pair."""
    name = state.get("veth_host") if isinstance(state, dict) else None
    if not isinstance(name, str) or not name:
        return
    with Socket() as sock:
        try:
            _link.delete(sock, name)
        except NetlinkError as e:
            if e.errno != _errno.ENODEV:
                raise


def _same_netns(pid):
    """Whether ``pid`` is in the calling thread's network namespace (then its "eth0" would
    be a link of the host)."""
    try:
        theirs = _os.stat("/proc/%d/ns/net" % pid)
    except OSError as e:
        raise SyscallError.from_oserror(e, "stat network namespace of pid %d" % pid)
    ours = _os.stat("/proc/thread-self/ns/net")
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def _random_name(prefix):
    return prefix + _os.urandom(4).hex()[:RANDOM_CHARS]


def _create_pair(sock, net, where, init_pid, bridge):
    qlen = _f(net, "txqueuelen") or None
    for attempt in range(NAME_TRIES):
        host, child = _random_name(net.veth_prefix), _random_name(net.veth_prefix)
        if host == child:
            continue
        try:
            _link.add_veth(sock, host, child, peer_netns_pid=init_pid, txqueuelen=qlen,
                           master=bridge, up=True)
            return host, child
        except NetlinkError as e:
            if e.errno != _errno.EEXIST or attempt == NAME_TRIES - 1:  # the name is taken
                raise with_field(e, where)
    raise ContainerError("%s: no free veth name after %d tries" % (where, NAME_TRIES))


def _create_veth(sock, net, where, init_pid):
    try:
        master = _link.get(sock, net.bridge)
    except NetlinkError as e:
        raise with_field(e, where + ".bridge")
    if master.kind != "bridge":  # else the kernel's answer is a bare EOPNOTSUPP
        raise ConfigError(where + ".bridge", "%s is not a bridge (it is %s); give the name "
                          "of a bridge link, which the host end of the veth pair joins"
                          % (net.bridge, "a %s link" % master.kind if master.kind
                                         else "a link of no kind, such as a physical one"))
    bridge = master.index
    host, child = _create_pair(sock, net, where, init_pid, bridge)
    try:
        if _f(net, "mtu"):
            _step(where + ".mtu", _link.set_mtu, sock, host, net.mtu)
        if _f(net, "hairpin_mode"):
            _step(where + ".hairpin_mode", _link.set_hairpin, sock, host, True)
    except BaseException:
        try:
            _link.delete(sock, host)  # takes the container's end with it
        except NetlinkError:
            pass  # the error that brought us here is the one to report
        raise
    return host, child


def _step(field, fn, *args):
    try:
        return fn(*args)
    except NetlinkError as e:
        raise with_field(e, field)


# --- container side --------------------------------------------------------------------------

def initialize(networks, routes, state):
    """In the container's init, inside its network namespace, before the mounts."""
    for i, net in enumerate(networks):
        if _f(net, "type") == "netns":
            _join(net.ns_path, "networks[%d].ns_path" % i)
    with Socket() as sock:
        for i, net in enumerate(networks):
            kind, where = _f(net, "type"), "networks[%d]" % i
            if kind == "loopback":
                _step(where, _link.set_up, sock, "lo")
            elif kind == "veth":
                _initialize_veth(sock, net, where, state)
        for j, r in enumerate(routes):
            _add_route(sock, r, "routes[%d]" % j)


def _join(path, field):
    from . import libc
    try:
        fd = _os.open(path, _os.O_RDONLY | _os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno, "%s: open" % field, path)
    try:
        libc.setns(fd, CLONE_NEWNET, path)
    except SyscallError as e:
        raise SyscallError(e.errno, "%s: setns" % field, path)
    finally:
        _os.close(fd)


def _initialize_veth(sock, net, where, state):
    child = (state or {}).get("veth_child")
    if not child:
        raise ContainerError("%s: the network state names no veth_child" % where)
    idx = _step(where, _link.index, sock, child)
    try:
        _link.rename(sock, idx, CHILD_NAME)
    except NetlinkError as e:
        if e.errno != _errno.EBUSY:  # kernels before 6.x will not rename a link that is up
            raise with_field(e, where)
        _step(where, _link.set_down, sock, idx)
        _step(where, _link.rename, sock, idx, CHILD_NAME)
    if _f(net, "mac_address"):
        _step(where + ".mac_address", _link.set_address, sock, idx, net.mac_address)
    if _f(net, "address"):
        _step(where + ".address", _addr.add, sock, idx, net.address)
    if _f(net, "ipv6_address"):
        _step(where + ".ipv6_address", _addr.add, sock, idx, net.ipv6_address, True)
    if _f(net, "mtu"):
        _step(where + ".mtu", _link.set_mtu, sock, idx, net.mtu)
    _step(where, _link.set_up, sock, idx)
    if _f(net, "gateway"):
        _step(where + ".gateway", _route.add_default, sock, net.gateway, idx)
    if _f(net, "ipv6_gateway"):
        _step(where + ".ipv6_gateway", _route.add_default, sock, net.ipv6_gateway, idx)


def _add_route(sock, r, where):
    _step(where, _route.add, sock, _f(r, "destination") or None, _f(r, "gateway") or None,
          _f(r, "source") or None, _f(r, "interface_name") or None)


# --- statistics ------------------------------------------------------------------------------

def stats(state, sysfs="/sys/class/net"):
    """The container's traffic, from the host end's counters with rx and tx swapped (what
    the host end receives, the container sent). All zero without a veth."""
    host = (state or {}).get("veth_host")
    if not host:
        return dict.fromkeys(STATS, 0)
    out = {}
    for name in STATS:
        swapped = ("tx" if name.startswith("rx") else "rx") + name[2:]
        path = "%s/%s/statistics/%s" % (sysfs, host, swapped)
        try:
            with open(path) as f:
                out[name] = int(f.read())
        except OSError as e:
            raise SyscallError.from_oserror(e, "read network statistics", path)
    return out
