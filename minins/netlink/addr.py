"""IPv4 and IPv6 addresses over rtnetlink: parse, add, delete, list.

Addresses are parsed with ``inet_pton`` (strict: ``10.1`` or ``fe80::1%eth0`` are refused),
never with the heavy ``ipaddress`` module. An IPv4 address gets its broadcast address, as
``ip addr add ... brd +`` would give it (none for /31 and /32). An IPv6 address may skip
duplicate address detection (``IFA_F_NODAD``): a container's address is assigned by its
configuration, and DAD would leave it unusable ("tentative") for a second or more.

Man pages: rtnetlink(7) (RTM_NEWADDR), inet_pton(3), ip-address(8).
"""
import _socket

from ..errors import ConfigError
from . import codec as _c
from .link import index as _index

_FAMILIES = ((_c.AF_INET, 4, 32), (_c.AF_INET6, 16, 128))


def parse_ip(text, field="address"):
    """``"10.0.0.1"`` or ``"fd00::1"`` -> ``(family, packed bytes)``."""
    if isinstance(text, str):
        for family, _size, _bits in _FAMILIES:
            try:
                return family, _socket.inet_pton(family, text)
            except (OSError, ValueError):
                pass
    raise ConfigError(field, "%r is not an IPv4 or IPv6 address" % (text,))


def parse_cidr(text, field="address"):
    """``"10.0.0.2/24"`` -> ``(family, packed, prefix length)``; the prefix is required."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ConfigError(field, "%r is not an address with a prefix length, like 10.0.0.2/24"
                          % (text,))
    ip, plen = text.split("/")
    family, packed = parse_ip(ip, field)
    bits = 8 * len(packed)
    if not plen.isdigit() or int(plen) > bits or len(plen) > 3:
        raise ConfigError(field, "%r: prefix length must be 0 to %d" % (text, bits))
    return family, packed, int(plen)


def format_ip(family, packed):
    return _socket.inet_ntop(family, packed)


def family_name(family):
    return {_c.AF_INET: "IPv4", _c.AF_INET6: "IPv6"}.get(family, "family %d" % family)


def broadcast(packed, prefixlen):
    """The IPv4 broadcast address of ``packed``/``prefixlen``, or ``None`` for /31 and /32."""
    if len(packed) != 4 or prefixlen >= 31:
        return None
    host = (1 << (32 - prefixlen)) - 1
    return (int.from_bytes(packed, "big") | host).to_bytes(4, "big")


class Address:
    """What the kernel says about an address (from ``RTM_NEWADDR``)."""

    __slots__ = ("family", "prefixlen", "flags", "scope", "index", "address", "local",
                 "broadcast", "label")

    def __init__(self, msg):
        h = msg.header
        a = _c.attr_map(msg.attrs)
        self.family, self.prefixlen, self.scope, self.index = (h.family, h.prefixlen, h.scope,
                                                               h.index)
        self.flags = _c.get_u32(a[_c.IFA_FLAGS]) if _c.IFA_FLAGS in a else h.flags
        ip = lambda t: format_ip(h.family, a[t]) if t in a else None  # noqa: E731
        self.address, self.local, self.broadcast = (ip(_c.IFA_ADDRESS), ip(_c.IFA_LOCAL),
                                                    ip(_c.IFA_BROADCAST))
        self.label = _c.get_string(a[_c.IFA_LABEL]) if _c.IFA_LABEL in a else None

    @property
    def cidr(self):
        return "%s/%d" % (self.local or self.address, self.prefixlen)

    def __repr__(self):
        return "Address(%s dev #%d flags %#x)" % (self.cidr, self.index, self.flags)


def _request(sock, mtype, flags, link, cidr, nodad, scope, op):
    family, packed, plen = parse_cidr(cidr) if isinstance(cidr, str) else cidr
    idx = _index(sock, link)
    hdr = _c.IfAddrMsg(family=family, prefixlen=plen, scope=scope, index=idx,
                       flags=_c.IFA_F_NODAD if nodad else 0)
    attrs = [(_c.IFA_LOCAL, packed), (_c.IFA_ADDRESS, packed)]
    brd = broadcast(packed, plen) if mtype == _c.RTM_NEWADDR else None
    if brd is not None:
        attrs.append((_c.IFA_BROADCAST, brd))
    label = link if isinstance(link, str) else "#%d" % idx
    sock.request(mtype, flags, hdr, attrs, op % (format_ip(family, packed), plen), label)


def add(sock, link, cidr, nodad=False, scope=_c.RT_SCOPE_UNIVERSE):
    """Add ``cidr`` ("10.0.0.2/24", "fd00::2/64", or (family, packed, prefixlen)) to ``link``
    (name or index). EEXIST when it is already there."""
    _request(sock, _c.RTM_NEWADDR, _c.NLM_F_CREATE | _c.NLM_F_EXCL, link, cidr, nodad, scope,
             "add address %s/%d")


def delete(sock, link, cidr):
    """Remove ``cidr`` from ``link``; EADDRNOTAVAIL when it is not there."""
    _request(sock, _c.RTM_DELADDR, 0, link, cidr, False, 0, "delete address %s/%d")


def dump(sock, family=_c.AF_UNSPEC, link=None):
    """Every address (of ``family``, on ``link`` when given) in the socket's namespace."""
    msgs = sock.dump(_c.RTM_GETADDR, _c.IfAddrMsg(family=family), (), "list addresses")
    out = [Address(m) for m in msgs if m.type == _c.RTM_NEWADDR]
    if link is not None:
        idx = _index(sock, link)
        out = [a for a in out if a.index == idx]
    return [a for a in out if family in (_c.AF_UNSPEC, a.family)]
