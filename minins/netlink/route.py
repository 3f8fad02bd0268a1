"""Routes over rtnetlink: add, delete, list; default gateways.

A route has a destination (``None``, ``""``, ``"default"`` or a CIDR), an optional gateway,
preferred source address and output link. All addresses must be of one family. As
``ip route add`` does, a route with no gateway gets link scope (the destination is on the
link), one through a gateway universe scope; the protocol is ``boot`` (set by an
administrator, not a routing daemon).

Man pages: rtnetlink(7) (RTM_NEWROUTE), ip-route(8).
"""
from ..errors import ConfigError
from . import codec as _c
from .addr import family_name, format_ip, parse_cidr, parse_ip
from .link import index as _index

_DEFAULTS = (None, "", "default")


class Route:
    """What the kernel says about a route (from ``RTM_NEWROUTE``)."""

    __slots__ = ("family", "dst", "dst_len", "gateway", "prefsrc", "oif", "table",
                 "protocol", "scope", "type", "priority", "flags")

    def __init__(self, msg):
        h = msg.header
        a = _c.attr_map(msg.attrs)
        ip = lambda t: format_ip(h.family, a[t]) if t in a else None  # noqa: E731
        self.family, self.dst_len, self.protocol, self.scope, self.type, self.flags = (
            h.family, h.dst_len, h.protocol, h.scope, h.type, h.flags)
        self.table = _c.get_u32(a[_c.RTA_TABLE]) if _c.RTA_TABLE in a else h.table
        self.dst, self.gateway, self.prefsrc = ip(_c.RTA_DST), ip(_c.RTA_GATEWAY), ip(
            _c.RTA_PREFSRC)
        self.oif = _c.get_u32(a[_c.RTA_OIF]) if _c.RTA_OIF in a else None
        self.priority = _c.get_u32(a[_c.RTA_PRIORITY]) if _c.RTA_PRIORITY in a else None

    @property
    def destination(self):
        """``"default"`` or ``"10.0.0.0/24"``."""
        return "%s/%d" % (self.dst, self.dst_len) if self.dst else "default"

    def __repr__(self):
        return "Route(%s via %s src %s oif %s table %d)" % (
            self.destination, self.gateway, self.prefsrc, self.oif, self.table)


def _plan(dst, gateway, src, family, field):
    """The family and the RTA_* attributes of a route; ConfigError when families differ."""
    parts = []
    if dst not in _DEFAULTS:
        fam, packed, plen = parse_cidr(dst, field + " destination")
        parts.append((fam, _c.RTA_DST, packed, "destination"))
    else:
        plen = 0
    for value, rta, what in ((src, _c.RTA_PREFSRC, "source"), (gateway, _c.RTA_GATEWAY,
                                                                   "gateway")):
        if value:
            fam, packed = parse_ip(value, "%s %s" % (field, what))
            parts.append((fam, rta, packed, what))
    fams = {p[0] for p in parts} | ({family} if family else set())
    if len(fams) > 1:
        raise ConfigError(field, "mixes %s" % " and ".join(
            "%s %s" % (family_name(p[0]), p[3]) for p in parts))
    if not fams:
        raise ConfigError(field, "a default route needs a gateway or a family")
    return fams.pop(), plen, [(rta, packed) for _f, rta, packed, _w in parts]


def _request(sock, mtype, flags, dst, gateway, src, oif, family, table, metric, protocol, op):
    fam, plen, attrs = _plan(dst, gateway, src, family, "route")
    if mtype == _c.RTM_DELROUTE:
        scope = _c.RT_SCOPE_NOWHERE  # matches any scope
    else:
        scope = _c.RT_SCOPE_UNIVERSE if gateway else _c.RT_SCOPE_LINK
    hdr = _c.RtMsg(family=fam, dst_len=plen, table=table if table < 256 else 0,
                   protocol=protocol, scope=scope, type=_c.RTN_UNICAST)
    if table >= 256:
        attrs.append((_c.RTA_TABLE, _c.u32(table)))
    label = None
    if oif is not None:
        attrs.append((_c.RTA_OIF, _c.u32(_index(sock, oif))))
        label = oif if isinstance(oif, str) else "#%d" % oif
    if metric is not None:
        attrs.append((_c.RTA_PRIORITY, _c.u32(metric)))
    op += " %s" % (dst if dst not in _DEFAULTS else "default")
    if gateway:
        op += " via %s" % gateway
    sock.request(mtype, flags, hdr, attrs, op, label)


def add(sock, dst=None, gateway=None, src=None, oif=None, family=None,
        table=_c.RT_TABLE_MAIN, metric=None, protocol=_c.RTPROT_BOOT):
    """Add a route to ``dst`` (a CIDR, or None/"default") via ``gateway``, preferring the
    source ``src``, out of ``oif`` (name or index). EEXIST when it is already there."""
    _request(sock, _c.RTM_NEWROUTE, _c.NLM_F_CREATE | _c.NLM_F_EXCL, dst, gateway, src, oif,
             family, table, metric, protocol, "add route")


def delete(sock, dst=None, gateway=None, src=None, oif=None, family=None,
           table=_c.RT_TABLE_MAIN, metric=None):
    """Delete the route matching what is given; ESRCH when none does."""
    _request(sock, _c.RTM_DELROUTE, 0, dst, gateway, src, oif, family, table, metric, 0,
             "delete route")


def add_default(sock, gateway, oif=None):
    """The default route of ``gateway``'s family through ``gateway``."""
    add(sock, None, gateway=gateway, oif=oif)


def dump(sock, family=_c.AF_INET, table=_c.RT_TABLE_MAIN):
    """Routes of ``family`` in ``table`` (None: every table), without cloned cache entries."""
    msgs = sock.dump(_c.RTM_GETROUTE, _c.RtMsg(family=family), (), "list routes")
    out = [Route(m) for m in msgs if m.type == _c.RTM_NEWROUTE]
    return [r for r in out if not r.flags & _c.RTM_F_CLONED
            and (table is None or r.table == table)
            and family in (_c.AF_UNSPEC, r.family)]
