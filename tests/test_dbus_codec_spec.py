"""The D-Bus codec against the Specification's own rules, written out here independently:
a small reference marshaller (the alignment table, the array length that leaves out the
padding before the first element, "l"/"B" byte order) that every value must encode to and
decode from byte for byte; hand-built messages for each message type and header field code;
and the limits at their exact edges (signatures of 255 bytes, 32 nested arrays and 32
nested structs, 64 containers in all, arrays of 2**26 bytes, messages of 2**27 bytes)."""
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins.dbus import codec as c

# Specification, "Marshaling (Wire Format)": alignment and size of every type.
SPEC_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8,
              "h": 4, "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}
SPEC_FORMAT = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q",
               "t": "Q", "d": "d", "h": "I"}
RANGES = {"y": (0, 255), "n": (-2 ** 15, 2 ** 15 - 1), "q": (0, 2 ** 16 - 1),
          "i": (-2 ** 31, 2 ** 31 - 1), "u": (0, 2 ** 32 - 1), "h": (0, 2 ** 32 - 1),
          "x": (-2 ** 63, 2 ** 63 - 1), "t": (0, 2 ** 64 - 1)}
# Specification, "Message Format": type codes and header field codes.
MESSAGE_TYPES = {"METHOD_CALL": 1, "METHOD_RETURN": 2, "ERROR": 3, "SIGNAL": 4}
FIELD_CODES = {"path": 1, "interface": 2, "member": 3, "error_name": 4, "reply_serial": 5,
               "destination": 6, "sender": 7, "signature": 8, "unix_fds": 9}
FIELD_TYPES = {"path": "o", "interface": "s", "member": "s", "error_name": "s",
               "reply_serial": "u", "destination": "s", "sender": "s", "signature": "g",
               "unix_fds": "u"}


def sig_of(t):
    if isinstance(t, str):
        return t
    if t[0] == "a":
        return "a" + sig_of(t[1])
    if t[0] == "(":
        return "(" + "".join(sig_of(m) for m in t[1:]) + ")"
    return "{" + sig_of(t[1]) + sig_of(t[2]) + "}"


class Ref(object):
    """The reference marshaller: ``buf`` holds the message so far (offsets count from 0)."""

    def __init__(self, order, offset=0):
        self.e = "<" if order == "l" else ">"
        self.buf = bytearray(offset)

    def align(self, n):
        while len(self.buf) % n:
            self.buf.append(0)

    def put(self, t, v):
        code = t if isinstance(t, str) else t[0]
        if code in SPEC_FORMAT:
            self.align(SPEC_ALIGN[code])
            self.buf += struct.pack(self.e + SPEC_FORMAT[code], v)
        elif code in "so":
            self.align(4)
            raw = v.encode()
            self.buf += struct.pack(self.e + "I", len(raw)) + raw + b"\0"
        elif code == "g":
            raw = v.encode()
            self.buf += bytes([len(raw)]) + raw + b"\0"
        elif code == "v":
            self.put("g", v.signature)
            self.put(parse_type(v.signature), v.value)
        elif code == "a":
            self.align(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            elem = t[1]
            self.align(SPEC_ALIGN[elem if isinstance(elem, str) else elem[0]])
            start = len(self.buf)
            items = v.items() if isinstance(v, dict) else v
            for item in items:
                self.put(elem, item)
            self.buf[at:at + 4] = struct.pack(self.e + "I", len(self.buf) - start)
        else:  # struct or dict entry
            self.align(8)
            for m, mv in zip(t[1:], v):
                self.put(m, mv)


def parse_type(sig):
    """The parsed form of one complete type (the reference's own parser)."""
    t, rest = _one(sig)
    assert not rest
    return t


def _one(sig):
    if sig[0] == "a":
        if sig[1] == "{":
            k, rest = _one(sig[2:])
            v, rest = _one(rest)
            assert rest[0] == "}"
            return ("a", ("{", k, v)), rest[1:]
        e, rest = _one(sig[1:])
        return ("a", e), rest
    if sig[0] == "(":
        members, rest = [], sig[1:]
        while rest[0] != ")":
            m, rest = _one(rest)
            members.append(m)
        return ("(",) + tuple(members), rest[1:]
    return sig[0], sig[1:]


def reference(sig_types, values, order="l", offset=0):
    r = Ref(order, offset)
    for t, v in zip(sig_types, values):
        r.put(t, v)
    return bytes(r.buf[offset:])


BASICS = sorted(SPEC_ALIGN.keys() - {"a", "(", "{", "v"})
TYPES = st.recursive(
    st.sampled_from(BASICS + ["v"]),
    lambda inner: st.one_of(
        inner.map(lambda t: ("a", t)),
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: ("(",) + tuple(ts)),
        st.tuples(st.sampled_from(BASICS), inner).map(lambda kv: ("a", ("{",) + kv))),
    max_leaves=6)


def values_of(t, depth=0):
    if t in RANGES:
        return st.integers(*RANGES[t])
    if t == "b":
        return st.booleans()
    if t == "d":
        return st.floats(allow_nan=False)
    if t == "s":
        return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                       max_size=6)
    if t == "o":
        return st.sampled_from(["/", "/a", "/org/freedesktop/DBus", "/a_1/B2"])
    if t == "g":
        return st.sampled_from(["", "y", "a{sv}", "(ii)as"])
    if t == "v":
        inner = TYPES if depth < 2 else st.sampled_from(BASICS)
        return inner.flatmap(lambda it: values_of(it, depth + 1).map(
            lambda v: c.Variant(sig_of(it), v)))
    if t[0] == "a":
        if t[1] == "y":
            return st.binary(max_size=9)
        if isinstance(t[1], tuple) and t[1][0] == "{":
            return st.dictionaries(values_of(t[1][1], depth), values_of(t[1][2], depth),
                                   max_size=3)
        return st.lists(values_of(t[1], depth), max_size=3)
    return st.tuples(*[values_of(m, depth) for m in t[1:]])


SEQUENCES = st.lists(TYPES.flatmap(lambda t: values_of(t).map(lambda v: (t, v))),
                     min_size=1, max_size=4)


@settings(max_examples=60)
@given(SEQUENCES, st.sampled_from("lB"), st.integers(0, 15))
def test_values_are_the_reference_bytes_and_back(pairs, order, offset):
    types = [t for t, _ in pairs]
    vals = [v for _, v in pairs]
    sig = "".join(sig_of(t) for t in types)
    assert c.parse_signature(sig) == tuple(types)
    want = reference(types, vals, order, offset)
    assert c.marshal(sig, vals, order, offset) == want
    assert c.unmarshal(sig, want, order, offset) == tuple(vals)


@pytest.mark.parametrize("code", sorted(SPEC_FORMAT))
@pytest.mark.parametrize("order", "lB")
def test_each_fixed_type_after_a_byte_is_padded_to_its_alignment(code, order):
    value = {"b": True, "d": 1.5}.get(code, RANGES.get(code, (0, 1))[1])
    got = c.marshal("y" + code, [7, value], order)
    pad = SPEC_ALIGN[code] - 1
    assert got == b"\x07" + b"\0" * pad + struct.pack(
        ("<" if order == "l" else ">") + SPEC_FORMAT[code], value)
    assert c.unmarshal("y" + code, got, order) == (7, value)
    if pad:  # the padding must be zero on reading
        bad = bytearray(got)
        bad[pad] = 1
        with pytest.raises(c.DecodeError):
            c.unmarshal("y" + code, bytes(bad), order)


ONE_OF = {"y": 3, "b": True, "n": -2, "q": 2, "i": -3, "u": 3, "x": -4, "t": 4, "d": 0.5,
          "h": 1, "s": "ab", "o": "/a", "g": "ai", "v": c.Variant("q", 9)}


@pytest.mark.parametrize("code", sorted(ONE_OF))
@pytest.mark.parametrize("order", "lB")
def test_an_array_of_each_type_at_each_offset(code, order):
    # the array's first element starts at the element's alignment, which the length leaves out
    t = parse_type("a" + code)
    for offset in range(8):
        for items in ([], [ONE_OF[code]], [ONE_OF[code]] * 2):
            want = reference([t], [items], order, offset)
            assert c.marshal("a" + code, [items], order, offset) == want, (offset, items)
            back = bytes(items) if code == "y" else items  # ay reads as bytes
            assert c.unmarshal("a" + code, want, order, offset) == (back,)


@pytest.mark.parametrize("sig, value, raw", [
    ("yas", [1, ["ab"]], b"\x01\0\0\0\x07\0\0\0\x02\0\0\0ab\0"),
    ("y(y)", [1, (2,)], b"\x01" + b"\0" * 7 + b"\x02"),
    ("ya{yy}", [1, {2: 3}], b"\x01\0\0\0\x02\0\0\0" + b"\x02\x03"),
    ("yv", [1, c.Variant("q", 2)], b"\x01\x01q\0\x02\0"),
    ("yg", [1, "y"], b"\x01\x01y\0"),
    ("yo", [1, "/"], b"\x01\0\0\0\x01\0\0\0/\0"),
    ("yan", [1, [2]], b"\x01\0\0\0\x02\0\0\0\x02\0"),
])
def test_containers_and_strings_start_at_their_alignment(sig, value, raw):
    assert c.marshal(sig, value) == raw
    assert c.unmarshal(sig, raw) == tuple(value)


# --- limits at their edges -------------------------------------------------------------------

def test_a_signature_of_255_bytes_is_the_longest():
    longest = "y" * 255
    assert len(c.parse_signature(longest)) == 255
    assert c.marshal("g", [longest]) == b"\xff" + longest.encode() + b"\0"
    assert c.unmarshal("g", b"\xff" + longest.encode() + b"\0") == (longest,)
    with pytest.raises(c.DecodeError) as e:
        c.parse_signature(longest + "y")
    assert e.value.name == c.INVALID_SIGNATURE and "longer than 255" in str(e.value)


@pytest.mark.parametrize("inner", ["y", "a{yy}", "a{ya{yy}}"])
def test_32_nested_arrays_are_allowed_and_33_are_not(inner):
    # the array of dict entries counts, also inside a dict entry's value
    arrays = 32 - inner.count("a")
    ok = "a" * arrays + inner
    assert len(c.parse_signature(ok)) == 1
    with pytest.raises(c.DecodeError) as e:
        c.parse_signature("a" + ok)
    assert "more than 32 nested arrays" in str(e.value)


@pytest.mark.parametrize("inner", ["y", "a{yy}"])
def test_32_nested_structs_are_allowed_and_33_are_not(inner):
    # a dict entry counts as a struct
    structs = 32 - inner.count("{")
    ok = "(" * structs + inner + ")" * structs
    assert len(c.parse_signature(ok)) == 1
    with pytest.raises(c.DecodeError) as e:
        c.parse_signature("(" + ok + ")")
    assert "more than 32 nested structs" in str(e.value)


@pytest.mark.parametrize("around", [("a{y", "}"), ("a{ya{y", "}}"), ("(a{y", "})")])
def test_a_dict_entry_counts_as_a_struct_for_what_it_holds(around):
    # the structs inside a dict entry's value count from the entry's own level
    before, after = around
    used = before.count("{") + before.count("(")
    ok = before + "(" * (32 - used) + "y" + ")" * (32 - used) + after
    assert len(c.parse_signature(ok)) == 1
    with pytest.raises(c.DecodeError) as e:
        c.parse_signature(before + "(" * (33 - used) + "y" + ")" * (33 - used) + after)
    assert "more than 32 nested structs" in str(e.value)


def _variants(levels):
    v = c.Variant("y", 5)
    for _ in range(levels - 1):
        v = c.Variant("v", v)
    return v


def test_64_nested_containers_are_allowed_and_65_are_not():
    # variants count: 64 variants, each a container of the next
    ok = b"\x01v\0" * 63 + b"\x01y\0\x05"
    assert c.marshal("v", [_variants(64)]) == ok
    assert c.unmarshal("v", ok) == (_variants(64),)
    with pytest.raises(c.EncodeError) as e:
        c.marshal("v", [_variants(65)])
    assert "nested more than 64 deep" in str(e.value)
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("v", b"\x01v\0" + ok)
    assert "nested more than 64 deep" in str(e.value)
    # an array and a struct count too: 62 variants inside an array of structs
    deep = ("a(v)", [[(_variants(62),)]])
    raw = c.marshal(*deep)
    assert c.unmarshal(deep[0], raw) == tuple(deep[1])
    with pytest.raises(c.EncodeError):
        c.marshal("a(v)", [[(_variants(63),)]])


def test_the_nesting_count_goes_back_down_after_each_container():
    # containers side by side do not add up, and leaving one gives back exactly its level
    siblings = [(1,)] * 70
    ok = ("a(y)v", [siblings, _variants(64)])
    raw = c.marshal(*ok)
    assert c.unmarshal(ok[0], raw) == tuple(ok[1])
    too_deep = b"\x01v\0" + raw[len(c.marshal("a(y)", [siblings])):]
    with pytest.raises(c.EncodeError):
        c.marshal("a(y)v", [siblings, _variants(65)])
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("a(y)v", c.marshal("a(y)", [siblings]) + too_deep)
    assert "nested more than 64 deep" in str(e.value)


def test_an_array_of_2_26_bytes_is_the_longest():
    limit = 1 << 26
    raw = c.marshal("ay", [bytes(limit)])
    assert raw[:4] == struct.pack("<I", limit) and len(raw) == 4 + limit
    assert c.unmarshal("ay", raw) == (bytes(limit),)
    del raw
    with pytest.raises(c.EncodeError) as e:
        c.marshal("ay", [bytes(limit + 1)])
    assert "over the %d limit" % limit in str(e.value)
    # on reading, the length alone decides: 2**26 is only short of data, one more is refused
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("ay", struct.pack("<I", limit))
    assert "runs past the end" in str(e.value)
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("ay", struct.pack("<I", limit + 1))
    assert "over the" in str(e.value)


def _prefix(body_len, fields_len, order="l"):
    e = "<" if order == "l" else ">"
    return order.encode() + bytes([1, 0, 1]) + struct.pack(e + "III", body_len, 1, fields_len)


@pytest.mark.parametrize("order", "lB")
def test_message_lengths_up_to_2_27_bytes(order):
    limit = 1 << 27
    assert c.message_length(_prefix(0, 0, order)) == 16
    assert c.message_length(_prefix(3, 5, order)) == 16 + 5 + 3 + 3  # fields padded to 8
    assert c.message_length(_prefix(limit - 16, 0, order)) == limit
    assert c.message_length(_prefix(0, 1 << 26, order)) == 16 + (1 << 26)
    for body_len, fields_len, why in ((limit - 15, 0, "over the"), (limit, 0, "over the"),
                                      (limit + 1, 0, "out of range"),
                                      (0, (1 << 26) + 1, "out of range")):
        with pytest.raises(c.DecodeError) as e:
            c.message_length(_prefix(body_len, fields_len, order))
        assert why in str(e.value)
    with pytest.raises(c.DecodeError) as e:
        c.message_length(_prefix(0, 0, order)[:15])
    assert "truncated" in str(e.value)


def test_a_message_of_2_27_bytes_is_the_longest_to_write():
    limit = 1 << 27

    def reply(*body):
        return c.Message(c.METHOD_RETURN, 1, reply_serial=1, signature="ayay", body=body)

    head = len(c.encode_message(reply(b"", b""))) - 8  # two empty arrays: two lengths
    first = 1 << 26
    second = limit - head - 8 - first
    raw = c.encode_message(reply(bytes(first), bytes(second)))
    assert len(raw) == limit and c.message_length(raw[:16]) == limit
    assert c.decode_message(raw).body == (bytes(first), bytes(second))
    del raw
    with pytest.raises(c.EncodeError) as e:
        c.encode_message(reply(bytes(first), bytes(second + 1)))
    assert "message of %d bytes is over the %d limit" % (limit + 1, limit) in str(e.value)


# --- messages built by hand ------------------------------------------------------------------

def hand_message(mtype, serial, fields, sig="", body=(), flags=0, order="l"):
    """The Specification's message layout, from the reference marshaller: the fixed header,
    the header fields as a(yv) (in the order given), padding to 8, the body."""
    body_raw = reference([parse_type(t) for t in _split(sig)], body, order) if sig else b""
    e = "<" if order == "l" else ">"
    head = order.encode() + bytes([mtype, flags, 1]) + struct.pack(e + "II", len(body_raw),
                                                                    serial)
    entries = [(FIELD_CODES[name], c.Variant(FIELD_TYPES[name], v)) for name, v in fields]
    r = Ref(order, 12)
    r.put(("a", ("(", "y", "v")), entries)
    r.align(8)
    return head + bytes(r.buf[12:]) + body_raw


def _split(sig):
    out = []
    while sig:
        t, rest = _one(sig)
        out.append(sig[:len(sig) - len(rest)])
        sig = rest
    return out


CASES = [
    ("METHOD_CALL", [("path", "/o"), ("interface", "org.x.I"), ("member", "Do"),
                     ("destination", "org.x"), ("signature", "su")], ("a", 7)),
    ("METHOD_RETURN", [("reply_serial", 9), ("destination", ":1.5"),
                       ("sender", "org.x"), ("signature", "as")], (["p", "q"],)),
    ("ERROR", [("error_name", "org.x.Error.Bad"), ("reply_serial", 3),
               ("signature", "s")], ("why",)),
    ("SIGNAL", [("path", "/"), ("interface", "org.x.I"), ("member", "Changed"),
                ("unix_fds", 0)], ()),
]


@pytest.mark.parametrize("name, fields, body", CASES)
@pytest.mark.parametrize("order", "lB")
def test_each_message_type_and_header_field_is_the_specifications(name, fields, body, order):
    mtype = MESSAGE_TYPES[name]
    assert getattr(c, name) == mtype
    sig = dict(fields).get("signature", "")
    raw = hand_message(mtype, 77, fields, sig, body, order=order)
    msg = c.Message(mtype, 77, body=body, **dict(fields))
    # the encoder writes the fields in the order of their codes, as the hand list has them
    assert c.encode_message(msg, order) == raw
    got = c.decode_message(raw)
    assert got == msg and got.order == order and got.type == mtype
    for field, value in fields:
        assert getattr(got, field) == value
    assert c.message_length(raw[:16]) == len(raw)


def test_the_flags_are_the_specifications():
    assert (c.NO_REPLY_EXPECTED, c.NO_AUTO_START, c.ALLOW_INTERACTIVE_AUTHORIZATION) == (
        0x1, 0x2, 0x4)
    m = c.method_call("org.x", "/", None, "M", flags=c.NO_AUTO_START
                      | c.ALLOW_INTERACTIVE_AUTHORIZATION)
    m.serial = 1
    raw = c.encode_message(m)
    assert raw[2] == 0x6 and c.decode_message(raw).flags == 0x6
    s = c.signal("/", "org.x.I", "S")
    s.serial = 2
    assert c.encode_message(s)[2] == 0x1


def test_unknown_header_fields_are_skipped_and_known_ones_must_have_their_type():
    fields = [("path", "/"), ("member", "M")]
    raw = bytearray(hand_message(1, 5, fields))
    at = raw.index(b"\x03\x01s")
    raw[at] = 10  # code 10 is not defined: ignored
    with pytest.raises(c.DecodeError) as e:
        c.decode_message(bytes(raw))
    assert "without the member header field" in str(e.value)
    for name, sig, value in (("reply_serial", "s", "x"), ("unix_fds", "s", "x"),
                             ("signature", "s", "y"), ("sender", "u", 1)):
        entries = [(FIELD_CODES["path"], c.Variant("o", "/")),
                   (FIELD_CODES["member"], c.Variant("s", "M")),
                   (FIELD_CODES[name], c.Variant(sig, value))]
        r = Ref("l", 12)
        r.put(("a", ("(", "y", "v")), entries)
        r.align(8)
        msg = b"l\x01\0\x01" + struct.pack("<II", 0, 5) + bytes(r.buf[12:])
        with pytest.raises(c.DecodeError) as e:
            c.decode_message(msg)
        assert "header field %s has type %r" % (name, sig) in str(e.value)


@pytest.mark.parametrize("name, fields", [
    ("METHOD_CALL", [("path", "/")]), ("METHOD_CALL", [("member", "M")]),
    ("METHOD_RETURN", []), ("ERROR", [("reply_serial", 1)]),
    ("ERROR", [("error_name", "a.B")]), ("SIGNAL", [("path", "/"), ("member", "M")]),
    ("SIGNAL", [("interface", "a.B"), ("member", "M")]),
    ("SIGNAL", [("path", "/"), ("interface", "a.B")]),
])
def test_each_message_type_needs_its_header_fields(name, fields):
    mtype = MESSAGE_TYPES[name]
    with pytest.raises(c.DecodeError) as e:
        c.decode_message(hand_message(mtype, 1, fields))
    assert "a %s message without the" % name.lower() in str(e.value)
    with pytest.raises(c.EncodeError) as e:
        c.encode_message(c.Message(mtype, 1, **dict(fields)))
    assert "a %s message needs the" % name.lower() in str(e.value)


def test_a_message_of_an_unknown_type_needs_no_field():
    raw = hand_message(5, 1, [])
    got = c.decode_message(raw)
    assert got.type == 5 and got.fields() == {}
    assert c.encode_message(c.Message(5, 1)) == raw
    assert "Message(5, serial=1" in repr(got)


def test_serials_and_reply_serials():
    with pytest.raises(c.DecodeError) as e:
        c.decode_message(hand_message(2, 1, [("reply_serial", 0)]))
    assert "reply serial 0" in str(e.value)
    for serial in (1, 2 ** 32 - 1):
        raw = hand_message(2, serial, [("reply_serial", 2 ** 32 - 1)])
        assert c.encode_message(c.Message(2, serial, reply_serial=2 ** 32 - 1)) == raw
        assert c.decode_message(raw).serial == serial
    for serial in (0, 2 ** 32, -1):
        with pytest.raises(c.EncodeError) as e:
            c.encode_message(c.Message(2, serial, reply_serial=1))
        assert "serial must be" in str(e.value)


def test_the_byte_order_of_a_message_is_its_first_byte():
    for order in "lB":
        raw = hand_message(1, 3, [("path", "/"), ("member", "M"), ("signature", "u")],
                           "u", (0x01020304,), order=order)
        got = c.decode_message(raw)
        assert got.body == (0x01020304,) and got.order == order
    with pytest.raises(c.EncodeError):
        c.marshal("u", [1], "b")
    with pytest.raises(c.DecodeError):
        c.unmarshal("u", b"\0\0\0\0", "L")


# --- the small types -------------------------------------------------------------------------

def test_variants_compare_by_signature_and_value():
    a = c.Variant("u", 1)
    assert a == c.Variant("u", 1) and not a != c.Variant("u", 1)
    assert a != c.Variant("i", 1) and a != c.Variant("u", 2) and a != 1
    assert not (a == c.Variant("i", 1)) and not (a == c.Variant("u", 2))
    assert repr(a) == "Variant('u', 1)"
    with pytest.raises(TypeError):
        hash(a)


def test_messages_compare_by_type_serial_flags_fields_and_body():
    base = dict(path="/", member="M", signature="u", body=(1,))
    m = c.Message(1, 5, **base)
    assert m == c.Message(1, 5, **base) and not m != c.Message(1, 5, **base)
    for other in (c.Message(4, 5, **base), c.Message(1, 6, **base),
                  c.Message(1, 5, flags=1, **base), c.Message(1, 5, path="/", member="N",
                                                              signature="u", body=(1,)),
                  c.Message(1, 5, path="/", member="M", signature="u", body=(2,)), "x"):
        assert m != other and not m == other
    assert m.fields() == {"path": "/", "member": "M", "signature": "u"}
    assert c.Message(1, 5, path="/", member="M").fields() == {"path": "/", "member": "M"}
    assert repr(m) == "Message(method_call, serial=5, member='M', path='/', " \
                      "signature='u', body=(1,))"
    with pytest.raises(TypeError):
        c.Message(1, 5, colour="red")


def test_errors_keep_their_name_and_text_through_pickle():
    for err in (c.DecodeError("bad bytes"), c.EncodeError("bad value", c.INVALID_SIGNATURE)):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert (back.name, back.message) == (err.name, err.message)
    assert c.DecodeError("x").name == c.INCONSISTENT
    assert c.EncodeError("x").name == c.INVALID_ARGS
