"""The netlink codec at its exact edges, with every expected datagram written out by hand
with struct (netlink(7), linux/netlink.h): lengths of exactly the header size and one less,
attribute lengths at 65535 and 65536, padding of 1..3 bytes, the short NLMSG_DONE of old
kernels, error messages that echo the request whole or capped, and the extended ack."""
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins.netlink import codec as c

HDR = struct.Struct("=IHHII")  # struct nlmsghdr
NLA = struct.Struct("=HH")  # struct nlattr


def nlmsg(mtype, body, flags=0, seq=1, pid=2, length=None):
    return HDR.pack(16 + len(body) if length is None else length, mtype, flags, seq, pid) + body


def nla(atype, payload, pad=True):
    raw = NLA.pack(4 + len(payload), atype) + payload
    return raw + b"\0" * ((-len(raw) % 4) if pad else 0)


# --- alignment and attributes --------------------------------------------------------------------

@pytest.mark.parametrize("n,aligned", [(0, 0), (1, 4), (2, 4), (3, 4), (4, 4), (5, 8), (7, 8),
                                       (8, 8), (65535, 65536)])
def test_align(n, aligned):
    assert c.align(n) == aligned


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5])
def test_each_attribute_is_padded_to_four(size):
    payload = bytes(range(1, size + 1))
    assert c.encode_attrs([(7, payload)]) == nla(7, payload)
    assert c.encode_attrs([(7, payload), (8, b"\xff")]) == nla(7, payload) + nla(8, b"\xff")


def test_the_longest_attribute_and_one_byte_more():
    c.encode_attrs([(1, b"x" * (0xFFFF - 4))])
    with pytest.raises(ValueError, match="65535"):
        c.encode_attrs([(1, b"x" * (0xFFFF - 3))])
    # a nest is measured whole
    with pytest.raises(ValueError):
        c.encode_attrs([(1, [(2, b"x" * (0xFFFF - 8))])])
    assert len(c.encode_attrs([(1, [(2, b"x" * (0xFFFF - 12))])])) == 0xFFFF - 3


@pytest.mark.parametrize("atype", [0, 1, 0x7FFF, 0xFFFF])
def test_attribute_types_fit_16_bits(atype):
    assert c.encode_attrs([(atype, b"")]) == NLA.pack(4, atype)


@pytest.mark.parametrize("atype", [-1, 0x10000])
def test_attribute_types_outside_16_bits(atype):
    with pytest.raises(ValueError, match="out of range"):
        c.encode_attrs([(atype, b"")])


def test_decode_attrs_edges():
    # an empty attribute (length 4) is the smallest; the last one may come unpadded
    assert c.decode_attrs(NLA.pack(4, 3)) == [(3, b"")]
    assert c.decode_attrs(nla(1, b"ab") + nla(2, b"abc", pad=False)) == [(1, b"ab"),
                                                                         (2, b"abc")]
    # start and end select a window
    raw = b"zz" + nla(5, b"q") + b"yy"
    assert c.decode_attrs(raw, 2, 2 + 8) == [(5, b"q")]
    assert c.decode_attrs(raw, 2, 2) == []


@pytest.mark.parametrize("raw", [
    b"\x04", b"\x04\x00\x03",  # 1 and 3 bytes: not even a header
    NLA.pack(3, 1),  # length below the header's 4
    NLA.pack(0, 1),
    NLA.pack(9, 1) + b"abcd",  # one byte past the end
    nla(1, b"") + NLA.pack(7, 2) + b"ab",
])
def test_decode_attrs_rejects(raw):
    with pytest.raises(c.DecodeError):
        c.decode_attrs(raw)


def test_decode_attrs_accepts_a_length_of_exactly_what_is_left():
    assert c.decode_attrs(NLA.pack(8, 1) + b"abcd") == [(1, b"abcd")]


def test_attr_map_masks_the_flag_bits_and_the_last_wins():
    attrs = [(1 | c.NLA_F_NESTED, b"a"), (2 | c.NLA_F_NET_BYTEORDER, b"b"), (1, b"c"),
             (0x3FFF, b"d")]
    assert c.attr_map(attrs) == {1: b"c", 2: b"b", 0x3FFF: b"d"}
    assert c.NLA_TYPE_MASK == 0x3FFF


@pytest.mark.parametrize("getter,size,value", [
    (c.get_u8, 1, 0xFE), (c.get_u16, 2, 0xFEFD), (c.get_u32, 4, 0xFEFDFCFB),
    (c.get_s32, 4, -1),
])
def test_payload_getters_take_exactly_their_size_and_no_less(getter, size, value):
    fmt = {1: "=B", 2: "=H", 4: "=I"}[size] if value >= 0 else "=i"
    raw = struct.pack(fmt, value)
    assert getter(raw) == value
    assert getter(raw + b"\x55\x66") == value  # longer: the first bytes count
    with pytest.raises(c.DecodeError, match="is %d bytes, needs %d" % (size - 1, size)):
        getter(raw[:-1])


def test_payload_packers_are_native_and_exact():
    assert c.u8(255) == b"\xff"
    assert c.u16(0x1234) == struct.pack("=H", 0x1234)
    assert c.u32(0xFFFFFFFF) == b"\xff" * 4
    assert c.s32(-2) == struct.pack("=i", -2)
    assert c.string("eth0") == b"eth0\0"


def test_get_string_stops_at_the_first_nul():
    assert c.get_string(b"lo\0\0\0") == "lo"
    assert c.get_string(b"lo\0x\0") == "lo"
    assert c.get_string(b"veth") == "veth"
    assert c.get_string(b"") == ""
    assert c.get_string(b"\xff\0") == "\ufffd"


# --- headers -------------------------------------------------------------------------------------

def test_headers_by_position_and_name():
    h = c.IfAddrMsg(2, 24, 0, 253, 7)
    assert h.astuple() == (2, 24, 0, 253, 7)
    assert c.IfAddrMsg(family=2, prefixlen=24, scope=253, index=7) == h
    assert h != c.IfAddrMsg(2, 24, 0, 253, 8)
    assert not (h != c.IfAddrMsg(2, 24, 0, 253, 7))
    assert h != c.RtMsg(2, 24, 0, 253, 7)
    assert repr(h) == "IfAddrMsg(family=2, prefixlen=24, flags=0, scope=253, index=7)"
    assert h.pack() == struct.pack("=BBBBI", 2, 24, 0, 253, 7)
    assert c.IfAddrMsg.unpack(b"\0\0" + h.pack(), 2) == h
    assert c.IfAddrMsg.unpack(h.pack() + b"\0") == h  # from the start by default
    with pytest.raises(TypeError):
        c.IfAddrMsg(1, 2, 3, 4, 5, 6)
    with pytest.raises(TypeError):
        c.IfAddrMsg(colour=1)


# --- messages: lengths and padding ---------------------------------------------------------------

def test_a_bare_header_is_the_smallest_message():
    [m] = c.decode(nlmsg(c.NLMSG_NOOP, b""))
    assert (m.type, m.flags, m.seq, m.pid, m.payload) == (c.NLMSG_NOOP, 0, 1, 2, b"")


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7])
def test_message_bodies_are_padded_but_lengths_are_not(size):
    body = bytes(range(1, size + 1))
    m = c.Message(0x99, 0, 1, 2, payload=body)
    raw = m.encode()
    assert raw == nlmsg(0x99, body) + b"\0" * (-size % 4)
    # two of them back to back: the second starts at the aligned offset
    [a, b] = c.decode(raw + nlmsg(0x98, b"\x01"))
    assert (a.payload, b.type, b.payload) == (body, 0x98, b"\x01")


def test_a_request_is_not_padded_after_its_last_attribute():
    raw = c.encode(c.RTM_GETLINK, c.NLM_F_REQUEST, 3, 0, c.IfInfoMsg(index=1),
                   [(c.IFLA_IFNAME, c.string("lo"))])
    assert raw == (HDR.pack(16 + 16 + 8, c.RTM_GETLINK, c.NLM_F_REQUEST, 3, 0)
                   + struct.pack("=BxHiII", 0, 0, 1, 0, 0) + nla(c.IFLA_IFNAME, b"lo\0"))
    assert c.encode(c.RTM_GETADDR) == HDR.pack(16, c.RTM_GETADDR, 0, 0, 0)


@pytest.mark.parametrize("raw", [
    b"", ])
def test_nothing_is_no_messages(raw):
    assert c.decode(raw) == []


@pytest.mark.parametrize("raw", [
    b"\0" * 15,  # one byte short of a header
    HDR.pack(15, 0x99, 0, 0, 0),  # a length one short of the header
    HDR.pack(17, 0x99, 0, 0, 0),  # one byte past the end
    nlmsg(c.NLMSG_NOOP, b"") + b"\0" * 15,  # a second header cut short
])
def test_message_length_edges_rejected(raw):
    with pytest.raises(c.DecodeError):
        c.decode(raw)


@pytest.mark.parametrize("mtype,cls", [(c.RTM_NEWLINK, c.IfInfoMsg), (c.RTM_NEWADDR, c.IfAddrMsg),
                                       (c.RTM_NEWROUTE, c.RtMsg)])
def test_family_header_of_exactly_its_size_and_one_byte_less(mtype, cls):
    size = cls._st.size
    [m] = c.decode(nlmsg(mtype, b"\0" * size))
    assert m.header == cls() and m.attrs == []
    with pytest.raises(c.DecodeError, match="its header needs %d" % size):
        c.decode(nlmsg(mtype, b"\0" * (size - 1)))


def test_header_sizes():
    assert (c.IfInfoMsg._st.size, c.IfAddrMsg._st.size, c.RtMsg._st.size) == (16, 8, 12)
    assert c.NLMSGHDR_LEN == 16


@pytest.mark.parametrize("mtype", [c.RTM_NEWLINK, c.RTM_DELLINK, c.RTM_GETLINK, c.RTM_SETLINK,
                                   c.RTM_NEWADDR, c.RTM_DELADDR, c.RTM_GETADDR,
                                   c.RTM_NEWROUTE, c.RTM_DELROUTE, c.RTM_GETROUTE])
def test_every_rtnetlink_type_gets_its_header(mtype):
    size = c.HEADERS[mtype]._st.size
    [m] = c.decode(nlmsg(mtype, b"\0" * size + nla(3, b"x")))
    assert type(m.header) is c.HEADERS[mtype]
    assert m.attrs[-1] == (3, b"x")


# --- status messages -----------------------------------------------------------------------------

def test_short_done_messages():
    [m] = c.decode(nlmsg(c.NLMSG_DONE, b""))  # old kernels: no errno at all
    assert (m.type, m.error) == (c.NLMSG_DONE, 0)
    for short in (1, 2, 3):
        with pytest.raises(c.DecodeError, match="status message has %d bytes, needs 4" % short):
            c.decode(nlmsg(c.NLMSG_DONE, b"\0" * short))
    [m] = c.decode(nlmsg(c.NLMSG_DONE, struct.pack("=i", -5)))
    assert m.error == 5


def test_an_empty_error_is_not_a_done():
    with pytest.raises(c.DecodeError, match="has 0 bytes"):
        c.decode(nlmsg(c.NLMSG_ERROR, b""))


def request(length=16, mtype=c.RTM_NEWLINK, flags=5, seq=9, pid=0):
    return HDR.pack(length, mtype, flags, seq, pid)


def test_error_echoing_the_whole_request():
    req = request(20) + b"abcd"
    [m] = c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", -17) + req))
    assert (m.error, m.request) == (17, (20, c.RTM_NEWLINK, 5, 9, 0))
    # an unaligned request length is echoed padded
    req = request(18) + b"ab\0\0"
    [m] = c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", -1) + req))
    assert m.request[0] == 18
    with pytest.raises(c.DecodeError, match="echoes a request of length 18"):
        c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", -1) + request(18) + b"ab"))


def test_error_with_exactly_a_request_header():
    [m] = c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", 0) + request(16)))
    assert m.error == 0 and m.request[0] == 16
    with pytest.raises(c.DecodeError, match="lacks the request header"):
        c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", 0) + request(16)[:15]))


def test_error_echoing_a_request_shorter_than_a_header_is_malformed():
    with pytest.raises(c.DecodeError, match="echoes a request of length 12"):
        c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", -1) + request(12)))
    # but capped, only the header is there whatever its length says
    [m] = c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", -1) + request(12),
                         flags=c.NLM_F_CAPPED))
    assert m.request[0] == 12


def test_capped_error_with_extended_ack():
    tlvs = nla(c.NLMSGERR_ATTR_MSG, b"bad mtu\0") + nla(c.NLMSGERR_ATTR_OFFS,
                                                        struct.pack("=I", 36))
    raw = nlmsg(c.NLMSG_ERROR, struct.pack("=i", -22) + request(1000) + tlvs,
                flags=c.NLM_F_CAPPED | c.NLM_F_ACK_TLVS)
    [m] = c.decode(raw)
    assert (m.error, m.ext_msg, m.ext_offset) == (22, "bad mtu", 36)
    assert m.encode() == raw
    # the same attributes without NLM_F_ACK_TLVS are not read
    [m] = c.decode(nlmsg(c.NLMSG_ERROR, struct.pack("=i", -22) + request(1000) + tlvs,
                         flags=c.NLM_F_CAPPED))
    assert (m.ext_msg, m.ext_offset) == (None, None)


def test_done_with_extended_ack():
    tlvs = nla(c.NLMSGERR_ATTR_MSG, b"dump interrupted\0")
    raw = nlmsg(c.NLMSG_DONE, struct.pack("=i", -4) + tlvs, flags=c.NLM_F_ACK_TLVS)
    [m] = c.decode(raw)
    assert (m.error, m.ext_msg, m.ext_offset, m.request) == (4, "dump interrupted", None, None)
    assert m.encode() == raw
    raw = nlmsg(c.NLMSG_DONE, struct.pack("=i", 0) + nla(c.NLMSGERR_ATTR_OFFS,
                                                         struct.pack("=I", 7)),
                flags=c.NLM_F_ACK_TLVS)
    [m] = c.decode(raw)
    assert (m.ext_msg, m.ext_offset) == (None, 7)
    assert m.encode() == raw


def test_encoding_an_error_as_the_kernel_sends_it():
    uncapped = c.Message(c.NLMSG_ERROR, 0, 4, 5, error=95, request=(18, 16, 5, 4, 0))
    assert uncapped.encode() == nlmsg(c.NLMSG_ERROR, struct.pack("=i", -95)
                                      + request(18, 16, 5, 4) + b"\0" * 4, 0, 4, 5)
    capped = c.Message(c.NLMSG_ERROR, c.NLM_F_CAPPED, 4, 5, error=95,
                       request=(18, 16, 5, 4, 0))
    assert capped.encode() == nlmsg(c.NLMSG_ERROR, struct.pack("=i", -95)
                                    + request(18, 16, 5, 4), c.NLM_F_CAPPED, 4, 5)
    ack = c.Message(c.NLMSG_ERROR, 0, 4, 5)
    assert ack.encode() == nlmsg(c.NLMSG_ERROR, b"\0" * 4 + HDR.pack(16, 0, 0, 0, 0), 0, 4, 5)
    done = c.Message(c.NLMSG_DONE, c.NLM_F_MULTI, 4, 5)
    assert done.encode() == nlmsg(c.NLMSG_DONE, b"\0" * 4, c.NLM_F_MULTI, 4, 5)


def test_message_attr_and_equality():
    m = c.Message(c.RTM_NEWLINK, header=c.IfInfoMsg(index=1),
                  attrs=[(3, b"a"), (3 | c.NLA_F_NESTED, b"b"), (4, b"c")])
    assert m.attr(3) == b"b" and m.attr(4) == b"c" and m.attr(5) is None
    assert m.attr(5, b"none") == b"none"
    assert m == c.Message(c.RTM_NEWLINK, header=c.IfInfoMsg(index=1),
                          attrs=[(3, b"a"), (3 | c.NLA_F_NESTED, b"b"), (4, b"c")])
    assert m != c.Message(c.RTM_NEWLINK, header=c.IfInfoMsg(index=2))
    assert not (m != m)
    assert repr(m).startswith("Message(type=16, flags=0, seq=0, pid=0, header=IfInfoMsg(")


@given(st.binary(max_size=9), st.integers(0, 3))
def test_decode_skips_exactly_the_padding(payload, extra):
    first = nlmsg(0x99, payload) + b"\0" * (-len(payload) % 4)
    second = nlmsg(0x98, b"\x07" * extra)
    msgs = c.decode(first + second)
    assert [(m.type, m.payload) for m in msgs] == [(0x99, payload), (0x98, b"\x07" * extra)]
