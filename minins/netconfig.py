"""A container's network configuration, checked without touching the kernel.

:func:`validate` checks ``networks`` and ``routes`` (the strategies are described in
:mod:`minins.network`, which applies them) and raises :class:`minins.errors.ConfigError`
naming the field (``networks[1].address: ...``). Pure: it uses only the netlink layer's
parsers (names, MAC and IP addresses, route plans), never a socket.
"""
from .errors import ConfigError
from .netlink import addr as _addr
from .netlink import codec as _c
from .netlink import link as _link
from .netlink import route as _route

__all__ = ["validate", "TYPES", "CHILD_NAME", "RANDOM_CHARS"]

TYPES = ("loopback", "veth", "netns")
CHILD_NAME = "eth0"
RANDOM_CHARS = 7
MTU_MIN, MTU_MAX, MTU_MIN_IPV6 = 68, 65535, 1280


def _f(obj, name):
    """A config field; a missing or ``None`` one reads as empty."""
    value = getattr(obj, name, None)
    return value if value is not None else ""


def validate(networks, routes, field_prefix=("networks", "routes")):
    """Check ``networks`` and ``routes`` without touching the kernel; raise ConfigError."""
    nets, rts = field_prefix
    counts = {}
    for i, net in enumerate(networks):
        where = "%s[%d]" % (nets, i)
        kind = _f(net, "type")
        if kind not in TYPES:
            raise ConfigError(where + ".type", "unknown network type %r (expected %s)"
                              % (kind, ", ".join(TYPES)))
        counts.setdefault(kind, []).append(where)
        if kind == "veth":
            _validate_veth(net, where)
        elif kind == "netns" and not (_f(net, "ns_path") and isinstance(net.ns_path, str)):
            raise ConfigError(where + ".ns_path", "a netns network needs the path of a "
                              "network namespace file, like /var/run/netns/NAME")
    if len(counts.get("veth", ())) > 1:
        raise ConfigError(counts["veth"][1] + ".type", "only one veth network is supported "
                          "(its container end is %s)" % CHILD_NAME)
    if len(counts.get("netns", ())) > 1:
        raise ConfigError(counts["netns"][1] + ".type", "only one netns network can be joined")
    if counts.get("veth") and counts.get("netns"):
        raise ConfigError(counts["veth"][0] + ".type", "a veth network cannot be combined "
                          "with a netns one: its peer would be born in the namespace the "
                          "init then leaves")
    for j, r in enumerate(routes):
        _validate_route(r, "%s[%d]" % (rts, j))


def _validate_veth(net, where):
    bridge, prefix = _f(net, "bridge"), _f(net, "veth_prefix")
    if not bridge:
        raise ConfigError(where + ".bridge", "a veth network needs a bridge")
    _link.check_name(bridge, where + ".bridge")
    if not prefix:
        raise ConfigError(where + ".veth_prefix", "a veth network needs a veth_prefix")
    if not isinstance(prefix, str):
        raise ConfigError(where + ".veth_prefix", "%r is not a string" % (prefix,))
    if _link.name_error(prefix + "0" * RANDOM_CHARS):
        longest = _link.IFNAMSIZ - 1 - RANDOM_CHARS
        if len(prefix.encode()) > longest:
            raise ConfigError(where + ".veth_prefix", "%r is too long: %d random characters "
                              "are added and link names have at most %d, so at most %d here"
                              % (prefix, RANDOM_CHARS, _link.IFNAMSIZ - 1, longest))
        raise ConfigError(where + ".veth_prefix", _link.name_error(prefix))
    if _f(net, "mac_address"):
        _link.parse_mac(_f(net, "mac_address"), where + ".mac_address")
    fams = {}
    for field, family in (("address", _c.AF_INET), ("ipv6_address", _c.AF_INET6)):
        if _f(net, field):
            fam = _addr.parse_cidr(_f(net, field), where + "." + field)[0]
            _want_family(fam, family, where + "." + field)
            fams[family] = field
    for field, family in (("gateway", _c.AF_INET), ("ipv6_gateway", _c.AF_INET6)):
        if _f(net, field):
            fam = _addr.parse_ip(_f(net, field), where + "." + field)[0]
            _want_family(fam, family, where + "." + field)
            if family not in fams:
                raise ConfigError(where + "." + field, "a gateway needs an %s address on the "
                                  "link" % _addr.family_name(family))
    _validate_int(net, "mtu", where, MTU_MAX)
    mtu = _f(net, "mtu") or 0
    if mtu and not MTU_MIN <= mtu:
        raise ConfigError(where + ".mtu", "%d is below the minimum of %d (0 keeps the "
                          "default)" % (mtu, MTU_MIN))
    if mtu and _c.AF_INET6 in fams and mtu < MTU_MIN_IPV6:
        raise ConfigError(where + ".mtu", "%d is below %d, the least IPv6 allows, and "
                          "ipv6_address is set" % (mtu, MTU_MIN_IPV6))
    _validate_int(net, "txqueuelen", where, 0xFFFFFFFF)


def _want_family(got, want, field):
    if got != want:
        raise ConfigError(field, "must be an %s address, not %s"
                          % (_addr.family_name(want), _addr.family_name(got)))


def _validate_int(net, name, where, top):
    value = _f(net, name) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ConfigError("%s.%s" % (where, name), "%r is not an integer from 0 to %d"
                          % (value, top))


def _validate_route(r, where):
    dst, gw, src, dev = (_f(r, n) for n in ("destination", "gateway", "source",
                                             "interface_name"))
    if dev:
        _link.check_name(dev, where + ".interface_name")
    if not gw and not dev:
        raise ConfigError(where, "a route needs a gateway or an interface_name")
    if not dst and not gw and not src:
        raise ConfigError(where + ".destination", "a default route needs a gateway or a "
                          "source to tell its family")
    _route._plan(dst, gw, src, None, where)
