"""The rtnetlink wire format, pure: bytes in, messages out, and back. No socket, no kernel.

A datagram holds one or more messages, each a ``struct nlmsghdr`` (16 bytes, native byte
order) followed by a family header (``ifinfomsg``, ``ifaddrmsg`` or ``rtmsg``) and a chain of
attributes (``struct nlattr``: 2-byte length, 2-byte type, payload, padded to 4 bytes).
Attributes nest: a payload may itself be a chain. Whether a payload is a chain cannot be read
off the wire (only some senders set ``NLA_F_NESTED``), so :func:`decode` returns payloads as
bytes and the caller, who knows the attribute, parses nested ones with :func:`decode_attrs`.

Every kernel constant below is given with its number, never as a position in a list, so a
missing row cannot shift the others; ``tests/test_netlink_codec.py`` checks them against the
kernel's uapi headers where a C compiler is installed.

Malformed input (short buffers, lengths that run past the end or below the header size,
trailing garbage) raises :class:`DecodeError`, a ``ValueError``; the decoder always advances,
so it cannot loop forever.

Man pages and docs: netlink(7), rtnetlink(7), netlink(3), rtnetlink(3); the kernel's
Documentation/userspace-api/netlink/intro.rst; uapi linux/netlink.h, linux/rtnetlink.h,
linux/if_link.h, linux/if_addr.h, linux/veth.h.
"""
import struct as _struct

# --- linux/netlink.h -------------------------------------------------------------------------
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100      # in an NLMSG_ERROR: the request was not echoed back whole
NLM_F_ACK_TLVS = 0x200    # in an NLMSG_ERROR or NLMSG_DONE: extended-ack attributes follow

NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2

NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

# --- linux/rtnetlink.h -----------------------------------------------------------------------
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

RTA_DST = 1
RTA_SRC = 2
RTA_IIF = 3
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_TABLE = 15

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
RTN_UNICAST = 1
RTN_LOCAL = 2
RTM_F_CLONED = 0x200

RTEXT_FILTER_SKIP_STATS = 1 << 3

# --- linux/if_link.h, linux/if.h, linux/veth.h -----------------------------------------------
IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_LINK_NETNSID = 37

IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4

VETH_INFO_PEER = 1
IFLA_VLAN_ID = 1
IFLA_MACVLAN_MODE = 1
MACVLAN_MODE_PRIVATE = 1
MACVLAN_MODE_VEPA = 2
MACVLAN_MODE_BRIDGE = 4
MACVLAN_MODE_PASSTHRU = 8
MACVLAN_MODE_SOURCE = 16
IFLA_BRPORT_MODE = 4

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000

# --- linux/if_addr.h -------------------------------------------------------------------------
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_FLAGS = 8
IFA_F_NODAD = 0x02
IFA_F_PERMANENT = 0x80

# Address families, from linux/socket.h (kept here so that the codec needs no socket module).
AF_UNSPEC = 0
AF_INET = 2
AF_BRIDGE = 7
AF_INET6 = 10


class DecodeError(ValueError):
    """Bytes that are not a well-formed netlink message."""


def align(n):
    """``NLMSG_ALIGN`` / ``NLA_ALIGN``: round up to a multiple of 4."""
    return (n + 3) & ~3


# --- attribute payloads ----------------------------------------------------------------------

_U8, _U16, _U32, _S32 = (_struct.Struct(f) for f in ("=B", "=H", "=I", "=i"))


def u8(v):
    return _U8.pack(v)


def u16(v):
    return _U16.pack(v)


def u32(v):
    return _U32.pack(v)


def s32(v):
    return _S32.pack(v)


def string(s):
    """A NUL-terminated string payload (``NLA_NUL_STRING``, what the kernel expects for names)."""
    return s.encode() + b"\0"


def _get(st, payload, what):
    if len(payload) < st.size:
        raise DecodeError("%s attribute is %d bytes, needs %d" % (what, len(payload), st.size))
    return st.unpack_from(payload)[0]


def get_u8(payload):
    return _get(_U8, payload, "u8")


def get_u16(payload):
    return _get(_U16, payload, "u16")


def get_u32(payload):
    return _get(_U32, payload, "u32")


def get_s32(payload):
    return _get(_S32, payload, "s32")


def get_string(payload):
    """Text up to the first NUL (the kernel pads some strings)."""
    return bytes(payload).split(b"\0", 1)[0].decode(errors="replace")


# --- attributes ------------------------------------------------------------------------------

_NLA = _struct.Struct("=HH")


def encode_attrs(attrs):
    """Encode ``[(type, value), ...]``; a value is bytes, or a list/tuple of pairs (a nest).

    ``type`` is written as given: or it with :data:`NLA_F_NESTED` where the receiver wants the
    flag (the bridge's ``IFLA_PROTINFO`` does, to tell the nested form from the old u8).
    """
    out = []
    for atype, value in attrs:
        payload = encode_attrs(value) if isinstance(value, (list, tuple)) else bytes(value)
        n = 4 + len(payload)
        if n > 0xFFFF:
            raise ValueError("attribute %d is %d bytes; netlink allows 65535" % (atype, n))
        if not 0 <= atype <= 0xFFFF:
            raise ValueError("attribute type %r out of range" % (atype,))
        out.append(_NLA.pack(n, atype))
        out.append(payload)
        out.append(b"\0" * (-n & 3))
    return b"".join(out)


def decode_attrs(buf, start=0, end=None):
    """``[(type, payload bytes), ...]`` from ``buf[start:end]``; types keep their flag bits."""
    end = len(buf) if end is None else end
    out = []
    off = start
    while off < end:
        if end - off < 4:
            raise DecodeError("attribute header truncated at byte %d" % off)
        n, atype = _NLA.unpack_from(buf, off)
        if n < 4 or n > end - off:
            raise DecodeError("attribute %d at byte %d has length %d, %d bytes left"
                              % (atype, off, n, end - off))
        out.append((atype, bytes(buf[off + 4:off + n])))
        off += align(n)
    return out


def attr_map(attrs):
    """``{type without flag bits: payload}``; the last of repeated attributes wins."""
    return {atype & NLA_TYPE_MASK: payload for atype, payload in attrs}


# --- family headers --------------------------------------------------------------------------

class _Header:
    """A fixed C struct: fields by name, ``pack()``, ``unpack(buf, offset)``, equality."""

    __slots__ = ()
    _fields = ()
    _st = None

    def __init__(self, *args, **kwargs):
        values = dict(zip(self._fields, args))
        values.update(kwargs)
        for f in self._fields:
            setattr(self, f, values.pop(f, 0))
        if values or len(args) > len(self._fields):
            raise TypeError("%s has no field(s) %s" % (type(self).__name__, sorted(values)))

    def astuple(self):
        return tuple(getattr(self, f) for f in self._fields)

    def pack(self):
        return self._st.pack(*self.astuple())

    @classmethod
    def unpack(cls, buf, offset=0):
        return cls(*cls._st.unpack_from(buf, offset))

    def __eq__(self, other):
        return type(other) is type(self) and other.astuple() == self.astuple()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (f, getattr(self, f)) for f in self._fields))


class IfInfoMsg(_Header):
    """``struct ifinfomsg`` (16 bytes): a link."""
    __slots__ = _fields = ("family", "type", "index", "flags", "change")
    _st = _struct.Struct("=BxHiII")


class IfAddrMsg(_Header):
    """``struct ifaddrmsg`` (8 bytes): an address."""
    __slots__ = _fields = ("family", "prefixlen", "flags", "scope", "index")
    _st = _struct.Struct("=BBBBI")


class RtMsg(_Header):
    """``struct rtmsg`` (12 bytes): a route."""
    __slots__ = _fields = ("family", "dst_len", "src_len", "tos", "table", "protocol",
                           "scope", "type", "flags")
    _st = _struct.Struct("=BBBBBBBBI")


HEADERS = {
    RTM_NEWLINK: IfInfoMsg, RTM_DELLINK: IfInfoMsg, RTM_GETLINK: IfInfoMsg,
    RTM_SETLINK: IfInfoMsg,
    RTM_NEWADDR: IfAddrMsg, RTM_DELADDR: IfAddrMsg, RTM_GETADDR: IfAddrMsg,
    RTM_NEWROUTE: RtMsg, RTM_DELROUTE: RtMsg, RTM_GETROUTE: RtMsg,
}

_NLMSGHDR = _struct.Struct("=IHHII")
NLMSGHDR_LEN = _NLMSGHDR.size


# --- messages --------------------------------------------------------------------------------

class Message:
    """One netlink message.

    For the rtnetlink families ``header`` is the family struct and ``attrs`` its attribute
    chain; for other types ``payload`` holds the raw body. ``NLMSG_ERROR`` and ``NLMSG_DONE``
    carry ``error`` (a positive errno, 0 for an ACK or a clean end), the kernel's extended-ack
    text ``ext_msg`` and the offset of the offending attribute ``ext_offset`` when it sent
    them, and, for an error, the ``request`` nlmsghdr it answers as a 5-tuple.
    """

    __slots__ = ("type", "flags", "seq", "pid", "header", "attrs", "payload",
                 "error", "ext_msg", "ext_offset", "request")

    def __init__(self, type, flags=0, seq=0, pid=0, header=None, attrs=(), payload=b"",
                 error=0, ext_msg=None, ext_offset=None, request=None):
        self.type = type
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.header = header
        self.attrs = list(attrs)
        self.payload = payload
        self.error = error
        self.ext_msg = ext_msg
        self.ext_offset = ext_offset
        self.request = request

    def _key(self):
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other):
        return type(other) is type(self) and other._key() == self._key()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Message(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.__slots__)

    def attr(self, atype, default=None):
        """The payload of the last attribute ``atype`` (flag bits ignored)."""
        for t, payload in reversed(self.attrs):
            if t & NLA_TYPE_MASK == atype:
                return payload
        return default

    def encode(self):
        """The message as bytes. ERROR and DONE messages are encoded as the kernel sends
        them (for tests and fakes)."""
        if self.type in (NLMSG_ERROR, NLMSG_DONE):
            body = _encode_status(self)
        elif self.header is not None:
            body = self.header.pack() + encode_attrs(self.attrs)
        else:
            body = bytes(self.payload)
        return _NLMSGHDR.pack(NLMSGHDR_LEN + len(body), self.type, self.flags, self.seq,
                              self.pid) + body + b"\0" * (-len(body) & 3)


def encode(mtype, flags=0, seq=0, pid=0, header=None, attrs=()):
    """A request: ``nlmsghdr`` + ``header`` + ``attrs``, as bytes."""
    body = (header.pack() if header is not None else b"") + encode_attrs(attrs)
    return _NLMSGHDR.pack(NLMSGHDR_LEN + len(body), mtype, flags, seq, pid) + body


def _ext_attrs(msg):
    attrs = []
    if msg.ext_msg is not None:
        attrs.append((NLMSGERR_ATTR_MSG, string(msg.ext_msg)))
    if msg.ext_offset is not None:
        attrs.append((NLMSGERR_ATTR_OFFS, u32(msg.ext_offset)))
    return encode_attrs(attrs)


def _encode_status(msg):
    body = s32(-msg.error)
    if msg.type == NLMSG_ERROR:
        body += _NLMSGHDR.pack(*(msg.request or (NLMSGHDR_LEN, 0, 0, 0, 0)))
        if not msg.flags & NLM_F_CAPPED:
            body += b"\0" * (align((msg.request or (NLMSGHDR_LEN,))[0]) - NLMSGHDR_LEN)
    if msg.flags & NLM_F_ACK_TLVS:
        body += _ext_attrs(msg)
    return body


def decode(buf):
    """Every message in one datagram, in order."""
    out = []
    off, end = 0, len(buf)
    while off < end:
        if end - off < NLMSGHDR_LEN:
            raise DecodeError("message header truncated at byte %d (%d bytes left)"
                              % (off, end - off))
        n, mtype, flags, seq, pid = _NLMSGHDR.unpack_from(buf, off)
        if n < NLMSGHDR_LEN or n > end - off:
            raise DecodeError("message at byte %d has length %d, %d bytes left"
                              % (off, n, end - off))
        msg = Message(mtype, flags, seq, pid)
        _decode_body(msg, buf, off + NLMSGHDR_LEN, off + n)
        out.append(msg)
        off += align(n)
    return out


def _decode_body(msg, buf, start, end):
    if msg.type in (NLMSG_ERROR, NLMSG_DONE):
        _decode_status(msg, buf, start, end)
        return
    cls = HEADERS.get(msg.type)
    if cls is None:
        msg.payload = bytes(buf[start:end])
        return
    size = cls._st.size
    if end - start < size:
        raise DecodeError("type %d message has %d bytes, its header needs %d"
                          % (msg.type, end - start, size))
    msg.header = cls.unpack(buf, start)
    msg.attrs = decode_attrs(buf, start + align(size), end)


def _decode_status(msg, buf, start, end):
    if end - start < 4:
        if msg.type == NLMSG_DONE and end == start:
            return  # very old kernels sent an empty DONE
        raise DecodeError("status message has %d bytes, needs 4" % (end - start))
    msg.error = -_S32.unpack_from(buf, start)[0]
    tlv = start + 4
    if msg.type == NLMSG_ERROR:
        if end - tlv < NLMSGHDR_LEN:
            raise DecodeError("error message lacks the request header")
        msg.request = _NLMSGHDR.unpack_from(buf, tlv)
        echoed = NLMSGHDR_LEN if msg.flags & NLM_F_CAPPED else align(msg.request[0])
        if echoed < NLMSGHDR_LEN or echoed > end - tlv:
            raise DecodeError("error message echoes a request of length %d, %d bytes left"
                              % (msg.request[0], end - tlv))
        tlv += echoed
    if msg.flags & NLM_F_ACK_TLVS:
        ext = attr_map(decode_attrs(buf, tlv, end))
        if NLMSGERR_ATTR_MSG in ext:
            msg.ext_msg = get_string(ext[NLMSGERR_ATTR_MSG])
        if NLMSGERR_ATTR_OFFS in ext:
            msg.ext_offset = get_u32(ext[NLMSGERR_ATTR_OFFS])
