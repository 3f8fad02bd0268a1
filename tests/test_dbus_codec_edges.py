"""The D-Bus codec's checks one by one, each with the reason it gives (D-Bus Specification:
"Valid Signatures", "Valid Object Paths", "Marshaling"): what a bad signature, object path,
Python value or byte string is refused for, and which nearby good ones pass."""
import pytest

from minins.dbus import codec as c


@pytest.mark.parametrize("sig, why", [
    ("(", "struct not closed"), ("(y", "struct not closed"), ("()", "empty struct"),
    ("{yy}", "dict entry outside an array"), (")", "unbalanced ')'"), ("}", "unbalanced '}'"),
    ("z", "unknown type code 'z'"), ("a", "ends inside a type"), ("a{", "key must be a basic"),
    ("a{vy}", "key must be a basic"), ("a{(y)y}", "key must be a basic"),
    ("a{y}", "unbalanced '}'"), ("a{yyy}", "exactly a key and a value"),
    ("a{yy", "exactly a key and a value"), ("a{y", "ends inside a type"),
])
def test_bad_signatures_say_why(sig, why):
    with pytest.raises(c.DecodeError) as e:
        c.parse_signature(sig)
    assert e.value.name == c.INVALID_SIGNATURE and why in str(e.value), str(e.value)


def test_good_signatures_near_the_bad_ones():
    assert c.parse_signature("") == ()
    assert c.parse_signature("a{yy}") == (("a", ("{", "y", "y")),)
    assert c.parse_signature("a{sa{sv}}") == (("a", ("{", "s", ("a", ("{", "s", "v")))),)
    assert c.parse_signature("a{ya(y)}") == (("a", ("{", "y", ("a", ("(", "y")))),)
    assert c.parse_signature("ay(y)") == (("a", "y"), ("(", "y"))
    assert c.parse_signature("(yv)(a{gh})") == (("(", "y", "v"), ("(", ("a", ("{", "g", "h"))))
    for sig in ("a{yy}", "(yv)", "aav", "a{s(ii)}"):
        assert c.unparse(c.parse_single(sig)) == sig


def test_a_signature_must_be_text():
    for bad in (5, 1.5, b"y"):
        with pytest.raises(c.DecodeError) as e:
            c.parse_signature(bad)
        assert e.value.name == c.INVALID_SIGNATURE and "must be a string" in str(e.value)


def test_a_signature_is_the_same_the_second_time():
    # parsed signatures are remembered; the answer must not change
    for sig in ("a{sv}", "(yy)", "x"):
        assert c.parse_signature(sig) == c.parse_signature(sig) == c.parse_signature(sig + "")
    for _ in range(2):
        with pytest.raises(c.DecodeError):
            c.parse_signature("a{vy}")
    many = ["(" + code * n + ")" for code in "yui" for n in range(1, 254)]  # 759 of them
    for _ in range(2):
        for sig in many:
            assert c.parse_signature(sig) == (("(",) + (sig[1],) * (len(sig) - 2),)


@pytest.mark.parametrize("path, ok", [
    ("/", True), ("/a", True), ("/a/b_9/Z", True), ("/_", True), ("//", False),
    ("/a/", False), ("a", False), ("", False), ("/a//b", False), ("/a-b", False),
    ("/é", False), ("/a.b", False), ("/a b", False), (5, False), ("/\u0663", False),
])
def test_object_paths(path, ok):
    assert c.valid_object_path(path) is ok
    if ok:
        assert c.unmarshal("o", c.marshal("o", [path])) == (path,)
    else:
        with pytest.raises(c.EncodeError):
            c.marshal("o", [path])


@pytest.mark.parametrize("sig, value, why", [
    ("b", 1.0, "a boolean must be True or False"), ("b", "1", "a boolean must be"),
    ("b", 2, "a boolean must be"), ("b", -1, "a boolean must be"),
    ("d", True, "a double must be a number"), ("d", "1", "a double must be a number"),
    ("u", True, "takes an integer"), ("u", 1.0, "takes an integer"),
    ("y", 256, "does not fit type 'y'"), ("q", -1, "does not fit type 'q'"),
    ("s", b"x", "takes a string"), ("s", "\ud800", "not valid UTF-8"),
    ("s", "a\0", "may not hold a NUL"), ("o", "/\0", "not a valid object path"),
    ("o", "/a/", "not a valid object path"), ("g", "(", "struct not closed"),
    ("v", ("y", 1), "a variant must be a Variant"),
    ("v", c.Variant("yy", (1, 2)), "not a single complete type"),
    ("(yy)", (1,), "struct (yy) takes a tuple of 2"), ("(yy)", 5, "takes a tuple of 2"),
    ("ai", "ab", "array ai takes a list"), ("ai", b"ab", "array ai takes a list"),
    ("ai", {1: 2}, "array ai takes a list"), ("ai", 5, "array ai takes a list"),
    ("a{yy}", [(1, 2, 3)], "a dict entry is a (key, value) pair"),
    ("a{yy}", [5], "a dict entry is a (key, value) pair"),
])
def test_values_that_do_not_fit_say_why(sig, value, why):
    with pytest.raises(c.EncodeError) as e:
        c.marshal(sig, [value])
    assert why in str(e.value), str(e.value)


def test_the_python_forms_each_type_takes():
    assert c.marshal("b", [1]) == c.marshal("b", [True]) == b"\x01\0\0\0"
    assert c.marshal("b", [0]) == c.marshal("b", [False]) == b"\0\0\0\0"
    assert c.marshal("d", [1]) == c.marshal("d", [1.0])
    assert c.marshal("(yy)", [[1, 2]]) == c.marshal("(yy)", [(1, 2)]) == b"\x01\x02"
    assert c.marshal("ay", [bytearray(b"ab")]) == c.marshal("ay", [memoryview(b"ab")]) == \
        c.marshal("ay", [[97, 98]]) == b"\x02\0\0\0ab"
    assert c.marshal("a{yy}", [{1: 2}]) == c.marshal("a{yy}", [[(1, 2)]]) == \
        c.marshal("a{yy}", [[[1, 2]]]) == c.marshal("a{yy}", [iter([(1, 2)])])
    assert c.marshal("ai", [(n for n in (1, 2))]) == c.marshal("ai", [[1, 2]])
    assert c.unmarshal("a{yy}", c.marshal("a{yy}", [{1: 2, 3: 4}])) == ({1: 2, 3: 4},)
    assert c.unmarshal("b", b"\x01\0\0\0") == (True,)
    assert type(c.unmarshal("b", b"\0\0\0\0")[0]) is bool


def test_marshal_checks_its_arguments():
    with pytest.raises(c.EncodeError) as e:
        c.marshal("yy", [1])
    assert "signature 'yy' takes 2 values, got 1" in str(e.value)
    with pytest.raises(c.EncodeError) as e:
        c.marshal("y", [1, 2])
    assert "takes 1 values, got 2" in str(e.value)
    with pytest.raises(c.EncodeError) as e:
        c.marshal("y", [1], "x")
    assert "byte order must be" in str(e.value)
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("y", b"\1", "x")
    assert "byte order must be" in str(e.value)
    assert c.marshal("", []) == b"" and c.unmarshal("", b"") == ()
    # the values may come from any iterable, a one-shot one too
    assert c.marshal("yq", (v for v in (1, 2))) == c.marshal("yq", [1, 2]) == b"\x01\0\x02\0"


def test_where_a_bad_value_is_is_named():
    with pytest.raises(c.EncodeError) as e:
        c.marshal("ya(yv)", [1, [(1, c.Variant("s", "x")), (2, c.Variant("u", -1))]])
    assert e.value.message.startswith("value 1 (a(yv))[1][1]<u>: ")
    with pytest.raises(c.EncodeError) as e:
        c.marshal("a{sy}", [{"k": 300}])
    assert e.value.message.startswith("value 0 (a{sy})[0].value: ")
    with pytest.raises(c.EncodeError) as e:
        c.marshal("a{sy}", [{5: 1}])
    assert e.value.message.startswith("value 0 (a{sy})[0].key: ")


@pytest.mark.parametrize("sig, raw, why", [
    ("y", b"", "truncated: type 'y' needs 1 bytes, 0 left"),
    ("q", b"\0", "truncated: type 'q' needs 2 bytes, 1 left"),
    ("t", b"\0" * 7, "needs 8 bytes, 7 left"),
    ("yq", b"\x01", "truncated (padding to 2)"),
    ("yq", b"\x01\x01\x02\x00", "non-zero padding"),
    ("yt", b"\x01" + b"\0" * 6 + b"\x01" + b"\0" * 8, "non-zero padding"),
    ("b", b"\x03\0\0\0", "boolean 3 is neither 0 nor 1"),
    ("g", b"", "signature length"),
    ("g", b"\x02y", "string of 2 bytes"),
    ("s", b"\x01\0\0", "string length"),
    ("s", b"\x01\0\0\0a", "string of 1 bytes"),
    ("g", b"\x01yX", "not terminated by NUL"),
    ("g", b"\x02\0y\0", "holds a NUL"),
    ("s", b"\x01\0\0\0\xff\0", "not valid UTF-8"),
    ("o", b"\x02\0\0\0/a\0\0", "bytes left after"),
    ("o", b"\x01\0\0\0a\0", "'a' is not a valid object path"),
    ("ay", b"\x03\0\0\0ab", "runs past the end"),
    ("at", b"\x08\0\0\0\x01\0\0\0" + b"\0" * 8, "non-zero padding"),
    ("at", b"\x08\0\0\0", "truncated (padding to 8)"),
    ("ay", b"\x01\0\0", "array length"),
    ("(yy)", b"\x01", "needs 1 bytes, 0 left"),
    ("v", b"\x01z\0", "unknown type code"),
])
def test_malformed_bytes_say_why(sig, raw, why):
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal(sig, raw)
    assert why in str(e.value), str(e.value)
    assert e.value.name in (c.INCONSISTENT, c.INVALID_SIGNATURE)


def test_an_array_ends_exactly_at_its_length():
    # the elements must fill the length exactly: a last element that runs past it is cut
    raw = b"\x06\0\0\0" + b"\x01\0\0\0\x02\0" + b"\0\0"
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("aiq", raw)
    assert "truncated" in str(e.value)
    # after the array, reading goes on to the end of the data again
    assert c.unmarshal("ayu", b"\x01\0\0\0\x07\0\0\0\x05\0\0\0") == (b"\x07", 5)
    assert c.unmarshal("aqq", b"\x02\0\0\0\x07\0\x08\0") == ([7], 8)
    assert c.unmarshal("aau", b"\x0c\0\0\0\x08\0\0\0\x01\0\0\0\x02\0\0\0") == ([[1, 2]],)


def test_leftover_bytes_only_when_asked_for():
    assert c.unmarshal("y", b"\x01\x02", exact=False) == (1,)
    with pytest.raises(c.DecodeError) as e:
        c.unmarshal("y", b"\x01\x02\x03")
    assert "2 bytes left after the values of 'y'" in str(e.value)


def test_message_constructors():
    m = c.method_call("org.x", "/o", "org.x.I", "M", "s", ["a"], flags=c.NO_AUTO_START)
    assert (m.type, m.serial, m.flags, m.body, m.signature) == (c.METHOD_CALL, 0, 2, ("a",), "s")
    assert (m.destination, m.path, m.interface, m.member) == ("org.x", "/o", "org.x.I", "M")
    s = c.signal("/o", "org.x.I", "S", "u", (1,))
    assert (s.type, s.flags, s.destination, s.body) == (c.SIGNAL, c.NO_REPLY_EXPECTED, None, (1,))
    assert c.signal("/o", "org.x.I", "S", destination=":1.2").destination == ":1.2"
    assert c.Message(c.METHOD_RETURN, 3, reply_serial=1).signature == ""
    plain = c.method_call("org.x", "/o", "org.x.I", "M")
    assert plain.flags == 0  # a reply is expected, the bus may start the service
    plain.serial = 1
    assert c.encode_message(plain)[2] == 0
    with pytest.raises(c.EncodeError) as e:
        c.encode_message(c.method_call("org.x", "/o", None, "M"))
    assert "serial must be 1..2**32-1, not 0" in str(e.value)


def test_decode_message_wants_exactly_one_message():
    m = c.method_call("org.x", "/o", None, "M", "u", (5,))
    m.serial = 4
    raw = c.encode_message(m)
    assert c.decode_message(bytearray(raw)) == m
    for bad in (raw + b"\0", raw[:-1]):
        with pytest.raises(c.DecodeError) as e:
            c.decode_message(bad)
        assert "message length is %d but %d bytes were given" % (len(raw), len(bad)) in str(
            e.value)
    assert c.message_length(raw[:16]) == c.message_length(raw) == len(raw)
