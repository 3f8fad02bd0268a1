"""Links over rtnetlink: look-up, dump, create (veth, bridge, vlan, macvlan, macvtap), delete,
and every per-link setting the runtime needs.

Each function takes a :class:`minins.netlink.sock.Socket` first; it acts in that socket's
network namespace. A link is named by its index (an ``int``) or its name (a ``str``): changes
address a name directly (``ifi_index`` 0 plus ``IFLA_IFNAME``, which the kernel resolves), so
no look-up round trip is spent. Names are checked before anything is sent, by the kernel's own
rule (``dev_valid_name``: 1 to 15 bytes, not ``.`` or ``..``, no ``/``, ``:`` or white space).

A name is turned into an index with the ``SIOCGIFINDEX`` ioctl on the netlink socket itself
(what if_nametoindex(3) does, in the socket's namespace): a few microseconds, where an
``RTM_GETLINK`` costs a hundred or more, the kernel filling and Python parsing every attribute
of the link.

A veth pair can be created with its peer born directly inside another namespace
(``IFLA_NET_NS_PID`` or ``IFLA_NET_NS_FD`` on the peer): the kernel then never has to move a
link, which costs it about 16 ms each time.

Man pages: rtnetlink(7), netdevice(7) (SIOCGIFINDEX), veth(4), ip-link(8) for the semantics
of the settings; uapi linux/if_link.h, linux/veth.h.
"""
import errno as _errno
import fcntl as _fcntl
import struct as _struct

from ..errors import ConfigError
from . import codec as _c
from .sock import NetlinkError

MACVLAN_MODES = {
    "private": _c.MACVLAN_MODE_PRIVATE,
    "vepa": _c.MACVLAN_MODE_VEPA,
    "bridge": _c.MACVLAN_MODE_BRIDGE,
    "passthru": _c.MACVLAN_MODE_PASSTHRU,
    "source": _c.MACVLAN_MODE_SOURCE,
}
IFNAMSIZ = 16
SIOCGIFINDEX = 0x8933
# struct ifreq: the name, then a union whose first int is ifr_ifindex; 40 bytes on 64-bit
# (32 on 32-bit, where the kernel simply reads less of the buffer).
_IFREQ = _struct.Struct("=16si20x")
_CHANGE_ALL = 0xFFFFFFFF


# --- pure checks -----------------------------------------------------------------------------

def name_error(name):
    """Why the kernel would refuse ``name`` as a link name, or ``None`` when it is fine."""
    if not isinstance(name, str) or not name:
        return "a link name must be a non-empty string"
    raw = name.encode()
    if len(raw) >= IFNAMSIZ:
        return "%r is %d bytes; link names have at most %d" % (name, len(raw), IFNAMSIZ - 1)
    if name in (".", ".."):
        return "%r is not a valid link name" % name
    if any(ch in "/: \t\n\v\f\r" for ch in name):
        return "%r: link names cannot contain '/', ':' or white space" % name
    return None


def check_name(name, field="name"):
    err = name_error(name)
    if err:
        raise ConfigError(field, err)
    return name


def parse_mac(text, field="mac_address"):
    """``"02:42:ac:11:00:02"`` -> 6 bytes; multicast and all-zero addresses are refused, as
    the kernel would refuse them for an Ethernet link (EADDRNOTAVAIL)."""
    parts = text.split(":") if isinstance(text, str) else ()
    if len(parts) != 6 or any(len(p) != 2 for p in parts):
        raise ConfigError(field, "%r is not a MAC address like 02:42:ac:11:00:02" % (text,))
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ConfigError(field, "%r is not a MAC address like 02:42:ac:11:00:02" % (text,))
    if raw[0] & 1:
        raise ConfigError(field, "%s is a multicast address" % text)
    if raw == bytes(6):
        raise ConfigError(field, "00:00:00:00:00:00 is not a usable address")
    return raw


def format_mac(raw):
    return ":".join("%02x" % b for b in raw)


# --- reading ---------------------------------------------------------------------------------

class Link:
    """What the kernel says about a link (from ``RTM_NEWLINK``)."""

    __slots__ = ("index", "name", "flags", "mtu", "txqueuelen", "address", "master", "parent",
                 "kind", "info_data", "slave_kind", "operstate", "netnsid", "alias")

    def __init__(self, msg):
        a = _c.attr_map(msg.attrs)
        self.index = msg.header.index
        self.flags = msg.header.flags
        self.name = _c.get_string(a.get(_c.IFLA_IFNAME, b""))
        self.mtu = _c.get_u32(a[_c.IFLA_MTU]) if _c.IFLA_MTU in a else None
        self.txqueuelen = _c.get_u32(a[_c.IFLA_TXQLEN]) if _c.IFLA_TXQLEN in a else None
        self.address = format_mac(a[_c.IFLA_ADDRESS]) if _c.IFLA_ADDRESS in a else None
        self.master = _c.get_u32(a[_c.IFLA_MASTER]) if _c.IFLA_MASTER in a else 0
        self.parent = _c.get_u32(a[_c.IFLA_LINK]) if _c.IFLA_LINK in a else 0
        self.operstate = _c.get_u8(a[_c.IFLA_OPERSTATE]) if _c.IFLA_OPERSTATE in a else None
        self.netnsid = (_c.get_s32(a[_c.IFLA_LINK_NETNSID])
                        if _c.IFLA_LINK_NETNSID in a else None)
        self.alias = _c.get_string(a[_c.IFLA_IFALIAS]) if _c.IFLA_IFALIAS in a else ""
        info = _c.attr_map(_c.decode_attrs(a.get(_c.IFLA_LINKINFO, b"")))
        self.kind = _c.get_string(info[_c.IFLA_INFO_KIND]) if _c.IFLA_INFO_KIND in info else None
        self.slave_kind = (_c.get_string(info[_c.IFLA_INFO_SLAVE_KIND])
                           if _c.IFLA_INFO_SLAVE_KIND in info else None)
        self.info_data = info.get(_c.IFLA_INFO_DATA, b"")

    @property
    def up(self):
        return bool(self.flags & _c.IFF_UP)

    def __repr__(self):
        return "Link(%d %s kind=%s mtu=%s up=%s master=%d)" % (
            self.index, self.name, self.kind, self.mtu, self.up, self.master)


_SKIP_STATS = (_c.IFLA_EXT_MASK, _c.u32(_c.RTEXT_FILTER_SKIP_STATS))


def _target(link):
    """The ``ifinfomsg`` and attributes that address ``link`` (index or name), and its label."""
    if isinstance(link, int) and not isinstance(link, bool):
        return _c.IfInfoMsg(index=link), [], "#%d" % link
    check_name(link, "link")
    return _c.IfInfoMsg(), [(_c.IFLA_IFNAME, _c.string(link))], link


def get(sock, link):
    """The :class:`Link` named ``link`` (name or index); ENODEV when there is none."""
    hdr, attrs, label = _target(link)
    msgs = sock.request(_c.RTM_GETLINK, 0, hdr, attrs + [_SKIP_STATS], "look up link", label)
    for msg in msgs:
        if msg.type == _c.RTM_NEWLINK:
            return Link(msg)
    raise NetlinkError(_errno.ENODEV, "look up link", label, "no link in the kernel's answer")


def index(sock, link):
    """The index of ``link``: itself when it is already one. ENODEV when there is none."""
    if isinstance(link, int) and not isinstance(link, bool):
        return link
    raw = check_name(link, "link").encode()
    try:
        out = _fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, _IFREQ.pack(raw, 0))
    except OSError as e:
        raise NetlinkError(e.errno or _errno.ENODEV, "look up link", link)
    return _IFREQ.unpack(out)[1]


def dump(sock):
    """Every link in the socket's namespace."""
    msgs = sock.dump(_c.RTM_GETLINK, _c.IfInfoMsg(), [_SKIP_STATS], "list links")
    return [Link(m) for m in msgs if m.type == _c.RTM_NEWLINK]


# --- changing a link -------------------------------------------------------------------------

def _set(sock, link, op, attrs=(), flags=0, change=0, family=0):
    hdr, target, label = _target(link)
    hdr.flags, hdr.change, hdr.family = flags, change, family
    sock.request(_c.RTM_SETLINK, 0, hdr, target + list(attrs), op, label)


def configure(sock, link, up=None, mtu=None, txqueuelen=None, address=None, master=None):
    """Several settings in one ``RTM_SETLINK`` (the kernel applies the up/down flag last);
    ``None`` leaves a setting alone, ``master`` 0 frees the link from its master."""
    attrs = []
    if mtu is not None:
        attrs.append((_c.IFLA_MTU, _c.u32(mtu)))
    if txqueuelen is not None:
        attrs.append((_c.IFLA_TXQLEN, _c.u32(txqueuelen)))
    if address is not None:
        raw = parse_mac(address, "mac address") if isinstance(address, str) else bytes(address)
        attrs.append((_c.IFLA_ADDRESS, raw))
    if master is not None:
        attrs.append((_c.IFLA_MASTER, _c.u32(index(sock, master))))
    flag = 0 if up is None else _c.IFF_UP
    _set(sock, link, "configure", attrs, flags=_c.IFF_UP if up else 0, change=flag)


def set_up(sock, link):
    _set(sock, link, "set up", flags=_c.IFF_UP, change=_c.IFF_UP)


def set_down(sock, link):
    _set(sock, link, "set down", flags=0, change=_c.IFF_UP)


def set_alias(sock, link, alias):
    """The link's alias (``IFLA_IFALIAS``, /sys/class/net/NAME/ifalias): free text of at most
    255 bytes, which the kernel keeps and reports but never acts on; "" removes it."""
    raw = alias.encode()
    if len(raw) > 255:  # IFALIASZ - 1
        raise ConfigError("link alias", "%d bytes is more than 255" % len(raw))
    _set(sock, link, "set alias", [(_c.IFLA_IFALIAS, raw)])


def set_mtu(sock, link, mtu):
    _set(sock, link, "set mtu %d" % mtu, [(_c.IFLA_MTU, _c.u32(mtu))])


def set_txqueuelen(sock, link, qlen):
    _set(sock, link, "set txqueuelen %d" % qlen, [(_c.IFLA_TXQLEN, _c.u32(qlen))])


def set_address(sock, link, mac):
    """Set the MAC address; ``mac`` is text (checked: multicast is refused) or 6 bytes."""
    raw = parse_mac(mac, "mac address") if isinstance(mac, str) else bytes(mac)
    _set(sock, link, "set mac address %s" % format_mac(raw), [(_c.IFLA_ADDRESS, raw)])


def rename(sock, link, new_name):
    """Rename a link (the kernel wants it down: EBUSY otherwise)."""
    check_name(new_name, "new name")
    idx = index(sock, link)
    hdr = _c.IfInfoMsg(index=idx)
    label = link if isinstance(link, str) else "#%d" % idx
    sock.request(_c.RTM_SETLINK, 0, hdr, [(_c.IFLA_IFNAME, _c.string(new_name))],
                 "rename to %s" % new_name, label)


def set_master(sock, link, master):
    """Enslave ``link`` to ``master`` (a bridge, say), named or by index."""
    idx = index(sock, master)
    _set(sock, link, "set master %s" % master, [(_c.IFLA_MASTER, _c.u32(idx))])


def set_nomaster(sock, link):
    _set(sock, link, "set nomaster", [(_c.IFLA_MASTER, _c.u32(0))])


def set_netns_pid(sock, link, pid):
    """Move ``link`` into the network namespace of process ``pid``."""
    _set(sock, link, "move to netns of pid %d" % pid, [(_c.IFLA_NET_NS_PID, _c.u32(pid))])


def set_netns_fd(sock, link, fd):
    """Move ``link`` into the network namespace the open file ``fd`` refers to."""
    _set(sock, link, "move to netns fd %d" % fd, [(_c.IFLA_NET_NS_FD, _c.u32(fd))])


def set_hairpin(sock, port, on=True):
    """Hairpin mode on a bridge port: frames may leave by the port they came in by.

    ``AF_BRIDGE`` SETLINK with ``IFLA_PROTINFO`` flagged ``NLA_F_NESTED``: without the flag
    the bridge reads the attribute as the old single-byte port state.
    """
    # The bridge's SETLINK handler finds the port by index only.
    _set(sock, index(sock, port), "set hairpin %s" % ("on" if on else "off"),
         [(_c.IFLA_PROTINFO | _c.NLA_F_NESTED, [(_c.IFLA_BRPORT_MODE, _c.u8(1 if on else 0))])],
         family=_c.AF_BRIDGE)


def bridge_ports(sock):
    """``{port index: {IFLA_BRPORT_* id: payload}}`` from an ``AF_BRIDGE`` link dump."""
    msgs = sock.dump(_c.RTM_GETLINK, _c.IfInfoMsg(family=_c.AF_BRIDGE), (), "list bridge ports")
    out = {}
    for m in msgs:
        prot = m.attr(_c.IFLA_PROTINFO)
        if m.type == _c.RTM_NEWLINK and prot is not None:
            out[m.header.index] = _c.attr_map(_c.decode_attrs(prot))
    return out


# --- creating and deleting -------------------------------------------------------------------

def _link_attrs(name, mtu=None, txqueuelen=None, address=None, netns_pid=None,
                netns_fd=None, master=None):
    attrs = [(_c.IFLA_IFNAME, _c.string(check_name(name)))]
    if mtu:
        attrs.append((_c.IFLA_MTU, _c.u32(mtu)))
    if txqueuelen:
        attrs.append((_c.IFLA_TXQLEN, _c.u32(txqueuelen)))
    if address is not None:
        raw = parse_mac(address, "mac address") if isinstance(address, str) else bytes(address)
        attrs.append((_c.IFLA_ADDRESS, raw))
    if netns_pid is not None:
        attrs.append((_c.IFLA_NET_NS_PID, _c.u32(netns_pid)))
    if netns_fd is not None:
        attrs.append((_c.IFLA_NET_NS_FD, _c.u32(netns_fd)))
    if master is not None:
        attrs.append((_c.IFLA_MASTER, _c.u32(master)))
    return attrs


def add(sock, name, kind, data=None, parent=None, up=False, op=None, **settings):
    """Create a link of ``kind``; ``data`` is its ``IFLA_INFO_DATA`` chain, ``parent`` the
    index of its lower link (vlan, macvlan), ``settings`` any of mtu, txqueuelen, address,
    netns_pid, netns_fd, master (an index). EEXIST when the name is taken."""
    info = [(_c.IFLA_INFO_KIND, kind.encode())]
    if data is not None:
        info.append((_c.IFLA_INFO_DATA, data))
    attrs = _link_attrs(name, **settings)
    if parent is not None:
        attrs.append((_c.IFLA_LINK, _c.u32(parent)))
    attrs.append((_c.IFLA_LINKINFO, info))
    hdr = _c.IfInfoMsg(flags=_c.IFF_UP if up else 0, change=_c.IFF_UP if up else 0)
    sock.request(_c.RTM_NEWLINK, _c.NLM_F_CREATE | _c.NLM_F_EXCL, hdr, attrs,
                 op or "create %s link" % kind, name)


def add_veth(sock, name, peer, peer_netns_pid=None, peer_netns_fd=None, mtu=None,
             txqueuelen=None, master=None, up=False, peer_settings=None):
    """Create the veth pair ``name``/``peer``. The peer is born inside the namespace of
    process ``peer_netns_pid`` or of the open namespace file ``peer_netns_fd`` when given
    (never moved: no 16 ms move); ``mtu`` and ``txqueuelen`` apply to both ends, ``master``
    (an index) and ``up`` to ``name`` only. ``peer_settings`` adds other peer settings
    (address, ...)."""
    peer_attrs = _link_attrs(peer, mtu=mtu, txqueuelen=txqueuelen, netns_pid=peer_netns_pid,
                             netns_fd=peer_netns_fd, **(peer_settings or {}))
    # VETH_INFO_PEER holds a whole ifinfomsg followed by the peer's attributes.
    data = [(_c.VETH_INFO_PEER, _c.IfInfoMsg().pack() + _c.encode_attrs(peer_attrs))]
    op = "create veth pair %s/%s" % (name, peer)
    if master is not None:
        op += " with master #%d" % master
    add(sock, name, "veth", data, up=up, op=op,
        mtu=mtu, txqueuelen=txqueuelen, master=master)


def add_bridge(sock, name, address=None, up=False):
    add(sock, name, "bridge", up=up, address=address)


def add_vlan(sock, name, parent, vlan_id):
    """An 802.1Q vlan link on ``parent`` (name or index); ``vlan_id`` 0 to 4094."""
    if isinstance(vlan_id, bool) or not isinstance(vlan_id, int) or not 0 <= vlan_id <= 4094:
        raise ConfigError("vlan id", "%r is not a vlan id (0 to 4094)" % (vlan_id,))
    add(sock, name, "vlan", [(_c.IFLA_VLAN_ID, _c.u16(vlan_id))], parent=index(sock, parent))


def _macvlan_data(mode):
    if mode not in MACVLAN_MODES:
        raise ConfigError("macvlan mode", "%r is not one of %s"
                          % (mode, ", ".join(sorted(MACVLAN_MODES))))
    return [(_c.IFLA_MACVLAN_MODE, _c.u32(MACVLAN_MODES[mode]))]


def add_macvlan(sock, name, parent, mode="bridge"):
    add(sock, name, "macvlan", _macvlan_data(mode), parent=index(sock, parent))


def add_macvtap(sock, name, parent, mode="bridge"):
    add(sock, name, "macvtap", _macvlan_data(mode), parent=index(sock, parent))


def delete(sock, link):
    """Delete a link (a veth takes its peer with it; a bridge frees its ports)."""
    hdr, attrs, label = _target(link)
    sock.request(_c.RTM_DELLINK, 0, hdr, attrs, "delete link", label)
