"""The pure netlink codec: layouts, alignment, nesting, status messages, round trips, and
clean failures on truncated or garbage input. No kernel needed (except the C compiler used to
check the constants against the uapi headers, where one is installed)."""
import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins.netlink import codec as c

# --- constants against the kernel's headers --------------------------------------------------

_NOT_IN_HEADERS = {"NLA_TYPE_MASK", "NLMSGHDR_LEN"}
_HEADERS = ("sys/socket.h", "linux/netlink.h", "linux/rtnetlink.h", "linux/if_link.h",
            "linux/if_addr.h", "linux/veth.h", "linux/if.h")


def _constant_names():
    return sorted(n for n in dir(c) if n.isupper() and isinstance(getattr(c, n), int)
                  and n not in _NOT_IN_HEADERS)


def test_constants_match_the_uapi_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not os.path.exists("/usr/include/linux/rtnetlink.h"):
        pytest.skip("needs a C compiler and the kernel's uapi headers")
    names = _constant_names()
    src = "".join("#include <%s>\n" % h for h in _HEADERS) + "#include <stdio.h>\nint main(void){\n"
    src += "".join('printf("%%s %%lld\\n", "%s", (long long)(%s));\n' % (n, n) for n in names)
    src += "return 0;}\n"
    (tmp_path / "k.c").write_text(src)
    subprocess.run([cc, "-o", str(tmp_path / "k"), str(tmp_path / "k.c")], check=True,
                   capture_output=True)
    out = subprocess.run([str(tmp_path / "k")], check=True, capture_output=True, text=True)
    kernel = {n: int(v) for n, v in (line.split() for line in out.stdout.splitlines())}
    assert {n: getattr(c, n) for n in names} == kernel
    assert c.NLA_TYPE_MASK == kernel["NLA_F_NESTED"] - 1 - kernel["NLA_F_NET_BYTEORDER"]


# --- layouts ---------------------------------------------------------------------------------

def test_header_sizes_are_the_kernels():
    assert len(c.IfInfoMsg().pack()) == 16
    assert len(c.IfAddrMsg().pack()) == 8
    assert len(c.RtMsg().pack()) == 12
    assert c.NLMSGHDR_LEN == 16


def test_request_layout_byte_by_byte():
    data = c.encode(c.RTM_SETLINK, c.NLM_F_REQUEST | c.NLM_F_ACK, 7, 0,
                    c.IfInfoMsg(index=3, flags=1, change=1), [(c.IFLA_MTU, c.u32(1400))])
    expect = (struct.pack("=IHHII", 40, 19, 5, 7, 0)
              + struct.pack("=BxHiII", 0, 0, 3, 1, 1)
              + struct.pack("=HHI", 8, 4, 1400))
    assert data == expect


def test_attributes_are_padded_to_four_bytes_but_lengths_are_not():
    data = c.encode_attrs([(1, b"a"), (2, b"bcdef"), (3, b"")])
    assert data == (struct.pack("=HH", 5, 1) + b"a\0\0\0"
                    + struct.pack("=HH", 9, 2) + b"bcdef\0\0\0"
                    + struct.pack("=HH", 4, 3))
    assert c.decode_attrs(data) == [(1, b"a"), (2, b"bcdef"), (3, b"")]


def test_nested_attributes_and_the_nested_flag():
    tree = [(c.IFLA_LINKINFO, [(c.IFLA_INFO_KIND, b"veth"),
                               (c.IFLA_INFO_DATA, [(c.VETH_INFO_PEER, b"\0" * 16)])]),
            (c.IFLA_PROTINFO | c.NLA_F_NESTED, [(c.IFLA_BRPORT_MODE, c.u8(1))])]
    outer = c.decode_attrs(c.encode_attrs(tree))
    assert [t for t, _ in outer] == [18, 12 | 0x8000]
    info = c.decode_attrs(outer[0][1])
    assert info[0] == (c.IFLA_INFO_KIND, b"veth")
    assert c.decode_attrs(info[1][1]) == [(c.VETH_INFO_PEER, b"\0" * 16)]
    assert c.attr_map(outer)[c.IFLA_PROTINFO] == outer[1][1]  # flag bits masked off


def test_payload_helpers():
    assert c.get_u32(c.u32(0xDEADBEEF)) == 0xDEADBEEF
    assert c.get_s32(c.s32(-5)) == -5
    assert c.get_u16(c.u16(4094)) == 4094
    assert c.get_u8(c.u8(255)) == 255
    assert c.get_string(c.string("eth0")) == "eth0"
    assert c.get_string(b"eth0\0\0\0garbage") == "eth0"
    with pytest.raises(c.DecodeError):
        c.get_u32(b"\1\2")


def test_attribute_too_long_is_refused():
    with pytest.raises(ValueError, match="65535"):
        c.encode_attrs([(1, b"x" * 65532)])
    c.encode_attrs([(1, b"x" * 65531)])  # exactly 65535 with its header


def test_header_rejects_unknown_fields():
    with pytest.raises(TypeError):
        c.IfInfoMsg(index=1, bogus=2)


# --- status messages -------------------------------------------------------------------------

def _kernel_error(err, seq, pid, request, text=None, offset=None, capped=True):
    """An NLMSG_ERROR built by hand the way the kernel lays it out (netlink_ack)."""
    flags = (c.NLM_F_CAPPED if capped else 0)
    body = struct.pack("=i", -err) + request[:16 if capped else len(request)]
    tlvs = []
    if text is not None:
        tlvs.append((c.NLMSGERR_ATTR_MSG, c.string(text)))
    if offset is not None:
        tlvs.append((c.NLMSGERR_ATTR_OFFS, c.u32(offset)))
    if tlvs:
        flags |= c.NLM_F_ACK_TLVS
        body += c.encode_attrs(tlvs)
    return struct.pack("=IHHII", 16 + len(body), c.NLMSG_ERROR, flags, seq, pid) + body


def test_error_with_extended_ack_capped_and_not():
    req = c.encode(c.RTM_SETLINK, 5, 9, 0, c.IfInfoMsg(index=2), [(c.IFLA_MTU, c.u32(1))])
    for capped in (True, False):
        [m] = c.decode(_kernel_error(22, 9, 77, req, "mtu less than device minimum", 32,
                                     capped))
        assert (m.type, m.seq, m.pid, m.error) == (c.NLMSG_ERROR, 9, 77, 22)
        assert m.ext_msg == "mtu less than device minimum" and m.ext_offset == 32
        assert m.request == (len(req), c.RTM_SETLINK, 5, 9, 0)


def test_ack_is_an_error_of_zero():
    req = c.encode(c.RTM_SETLINK, 5, 3)
    [m] = c.decode(_kernel_error(0, 3, 1, req))
    assert m.error == 0 and m.ext_msg is None


def test_done_with_and_without_error():
    ok = struct.pack("=IHHII", 20, c.NLMSG_DONE, c.NLM_F_MULTI, 4, 1) + struct.pack("=i", 0)
    bad = struct.pack("=IHHII", 20, c.NLMSG_DONE, c.NLM_F_MULTI, 4, 1) + struct.pack("=i", -16)
    empty = struct.pack("=IHHII", 16, c.NLMSG_DONE, 0, 4, 1)
    assert c.decode(ok)[0].error == 0
    assert c.decode(bad)[0].error == 16
    assert c.decode(empty)[0].error == 0


def test_several_messages_in_one_datagram_as_a_dump_sends_them():
    parts = [c.Message(c.RTM_NEWLINK, c.NLM_F_MULTI, 5, 9, c.IfInfoMsg(index=i),
                       [(c.IFLA_IFNAME, c.string("if%d" % i))]) for i in range(1, 4)]
    parts.append(c.Message(c.NLMSG_DONE, c.NLM_F_MULTI, 5, 9))
    msgs = c.decode(b"".join(m.encode() for m in parts))
    assert msgs == parts
    assert [c.get_string(m.attr(c.IFLA_IFNAME)) for m in msgs[:3]] == ["if1", "if2", "if3"]


def test_unknown_types_keep_their_payload():
    data = struct.pack("=IHHII", 21, 0x99, 0, 1, 2) + b"hello"
    [m] = c.decode(data + b"\0\0\0")
    assert m.header is None and m.payload == b"hello"


# --- round trips (hypothesis) ----------------------------------------------------------------

_types = st.integers(0, 0xFFFF)
_leaf = st.binary(max_size=40)
_trees = st.recursive(
    st.lists(st.tuples(_types, _leaf), max_size=4),
    lambda kids: st.lists(st.tuples(_types, st.one_of(_leaf, kids)), max_size=4),
    max_leaves=20)


def _decode_like(tree, data):
    """Decode ``data`` following the shape of ``tree`` (nests are known to the caller)."""
    got = c.decode_attrs(data)
    assert [t for t, _ in got] == [t for t, _ in tree]
    return [(t, _decode_like(v, p) if isinstance(v, list) else p)
            for (t, v), (_, p) in zip(tree, got)]


@given(_trees)
def test_attribute_trees_round_trip_and_every_attribute_starts_aligned(tree):
    data = c.encode_attrs(tree)
    assert len(data) % 4 == 0
    assert _decode_like(tree, data) == tree
    off = 0
    while off < len(data):
        assert off % 4 == 0
        n = struct.unpack_from("=H", data, off)[0]
        off += c.align(n)
    assert off == len(data)


_u8, _u16, _u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
_headers = st.one_of(
    st.builds(c.IfInfoMsg, _u8, _u16, st.integers(-2 ** 31, 2 ** 31 - 1), _u32, _u32),
    st.builds(c.IfAddrMsg, _u8, _u8, _u8, _u8, _u32),
    st.builds(c.RtMsg, _u8, _u8, _u8, _u8, _u8, _u8, _u8, _u8, _u32))
_TYPE_OF = {c.IfInfoMsg: (16, 17, 18, 19), c.IfAddrMsg: (20, 21, 22), c.RtMsg: (24, 25, 26)}


@st.composite
def _family_messages(draw):
    hdr = draw(_headers)
    mtype = draw(st.sampled_from(_TYPE_OF[type(hdr)]))
    attrs = draw(st.lists(st.tuples(_types, _leaf), max_size=6))
    return c.Message(mtype, draw(_u16), draw(_u32), draw(_u32), hdr, attrs)


@st.composite
def _status_messages(draw):
    mtype = draw(st.sampled_from((c.NLMSG_ERROR, c.NLMSG_DONE)))
    flags = draw(st.sampled_from((0, c.NLM_F_MULTI))) | draw(st.sampled_from(
        (0, c.NLM_F_ACK_TLVS)))
    request = None
    if mtype == c.NLMSG_ERROR:
        flags |= draw(st.sampled_from((0, c.NLM_F_CAPPED)))
        request = (draw(st.integers(16, 200)), draw(_u16), draw(_u16), draw(_u32), draw(_u32))
    text = offset = None
    if flags & c.NLM_F_ACK_TLVS:
        text = draw(st.none() | st.text(st.characters(blacklist_characters="\0",
                                                        blacklist_categories=("Cs",)),
                                         max_size=30))
        offset = draw(st.none() | _u32)
    return c.Message(mtype, flags, draw(_u32), draw(_u32), error=draw(st.integers(0, 4095)),
                     ext_msg=text, ext_offset=offset, request=request)


_messages = st.one_of(_family_messages(), _status_messages())


@given(st.lists(_messages, min_size=1, max_size=5))
def test_datagrams_round_trip(msgs):
    data = b"".join(m.encode() for m in msgs)
    assert c.decode(data) == msgs


@given(_family_messages())
def test_encode_and_message_encode_agree(m):
    assert c.encode(m.type, m.flags, m.seq, m.pid, m.header, m.attrs) == m.encode()


def _boundaries(msgs):
    out, off = {0}, 0
    for m in msgs:
        off += len(m.encode())
        out.add(off)
    return out


@given(st.lists(_messages, min_size=1, max_size=3), st.data())
def test_truncation_raises_a_clean_error(msgs, data):
    raw = b"".join(m.encode() for m in msgs)
    cut = data.draw(st.integers(0, len(raw) - 1))
    if cut in _boundaries(msgs):
        assert len(c.decode(raw[:cut])) == sorted(_boundaries(msgs)).index(cut)
    else:
        with pytest.raises(c.DecodeError):
            c.decode(raw[:cut])


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_garbage_raises_decode_error_or_decodes(raw):
    try:
        msgs = c.decode(raw)
    except c.DecodeError:
        return
    assert all(isinstance(m, c.Message) for m in msgs)


@given(st.binary(max_size=120))
def test_garbage_attributes_raise_decode_error_or_decode(raw):
    try:
        attrs = c.decode_attrs(raw)
    except c.DecodeError:
        return
    assert sum(c.align(4 + len(p)) for _t, p in attrs) >= len(raw)


@pytest.mark.parametrize("raw", [
    struct.pack("=IHHII", 0, 16, 0, 0, 0),           # length 0: would never advance
    struct.pack("=IHHII", 15, 16, 0, 0, 0),          # shorter than its own header
    struct.pack("=IHHII", 64, 16, 0, 0, 0),          # longer than the datagram
    struct.pack("=IHHII", 20, 16, 0, 0, 0) + b"\0" * 4,  # ifinfomsg cut short
    struct.pack("=IHHII", 36, 16, 0, 0, 0) + b"\0" * 16 + struct.pack("=HH", 0, 3),  # nla 0
    struct.pack("=IHHII", 36, 16, 0, 0, 0) + b"\0" * 16 + struct.pack("=HH", 9, 3),  # nla long
    struct.pack("=IHHII", 18, 2, 0, 0, 0) + b"\0\0",  # error without its errno
    struct.pack("=IHHII", 20, 2, 0, 0, 0) + b"\0" * 4,  # error without the request header
    struct.pack("=IHHII", 36, 2, 0, 0, 0) + b"\0" * 4 + struct.pack("=IHHII", 99, 0, 0, 0, 0),
    b"\1\2\3",
])
def test_specific_malformations(raw):
    with pytest.raises(c.DecodeError):
        c.decode(raw)
