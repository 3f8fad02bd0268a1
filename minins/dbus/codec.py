"""The D-Bus wire format, pure: values to bytes and back, messages and their headers.

No socket, no bus. Everything follows the D-Bus Specification, "Type System" and "Message
Protocol":

* **Types.** Basic: ``y`` byte, ``b`` boolean (a uint32 that is 0 or 1), ``n``/``q`` int16
  and uint16, ``i``/``u`` int32 and uint32, ``x``/``t`` int64 and uint64, ``d`` IEEE 754
  double, ``h`` a Unix fd index (a uint32; minins passes no descriptors), ``s`` string,
  ``o`` object path, ``g`` signature. Containers: ``aT`` array, ``(T...)`` struct, ``{KV}``
  dict entry (only as an array element, K basic), ``v`` variant.
* **Python values.** Integers for the integer types, ``bool`` for ``b``, ``float`` for ``d``,
  ``str`` for ``s o g``, ``bytes`` for ``ay``, ``list`` for other arrays (any iterable when
  encoding), ``dict`` for ``a{KV}`` (or a list of pairs when encoding), ``tuple`` for
  structs, :class:`Variant` for ``v``.
* **Alignment.** Every value starts at a multiple of its alignment counted from the start of
  the message (the body starts 8-aligned, so from the start of the body too): 1 for ``y g
  v``, 2 for ``n q``, 4 for ``b i u h s o a``, 8 for ``x t d``, structs and dict entries.
  Padding bytes are zero. An array's length counts its elements' bytes only, not the padding
  between the length and the first element, which is there even when the array is empty.
* **Byte order.** Read in either (``l`` little, ``B`` big, the message's first byte);
  written in the one asked for, little-endian by default.
* **Messages.** A 12-byte fixed header (byte order, type, flags, version 1, body length,
  serial), the header fields as ``a(yv)``, padding to 8, the body whose signature is the
  ``SIGNATURE`` field.

Limits of the specification enforced on both sides: signatures at most 255 bytes, 32
nested arrays and 32 nested structs per signature, 64 levels of containers in all (arrays,
structs, dict entries and variants together, as libdbus validates a body: a variant's
signature starts its own count of 32 and 32), arrays at most 64 MiB,
messages at most 128 MiB. Malformed input -- truncated data, lengths that run past the end,
non-zero padding, booleans other than 0 and 1, strings that are not UTF-8 or hold a NUL,
invalid object paths or signatures, unknown type codes, a body that is shorter or longer
than its signature -- raises :class:`DecodeError`; the decoder always moves forward, so it
cannot loop.
"""
import struct as _struct

from ..errors import DBusError

# Message types and flags (Specification: "Message Format").
METHOD_CALL = 1
METHOD_RETURN = 2
ERROR = 3
SIGNAL = 4
TYPE_NAMES = {METHOD_CALL: "method_call", METHOD_RETURN: "method_return", ERROR: "error",
              SIGNAL: "signal"}

NO_REPLY_EXPECTED = 0x1
NO_AUTO_START = 0x2
ALLOW_INTERACTIVE_AUTHORIZATION = 0x4

PROTOCOL_VERSION = 1
LITTLE, BIG = "l", "B"

# Header fields: code -> (attribute of Message, signature).
FIELD_PATH = 1
FIELD_INTERFACE = 2
FIELD_MEMBER = 3
FIELD_ERROR_NAME = 4
FIELD_REPLY_SERIAL = 5
FIELD_DESTINATION = 6
FIELD_SENDER = 7
FIELD_SIGNATURE = 8
FIELD_UNIX_FDS = 9
HEADER_FIELDS = {
    FIELD_PATH: ("path", "o"),
    FIELD_INTERFACE: ("interface", "s"),
    FIELD_MEMBER: ("member", "s"),
    FIELD_ERROR_NAME: ("error_name", "s"),
    FIELD_REPLY_SERIAL: ("reply_serial", "u"),
    FIELD_DESTINATION: ("destination", "s"),
    FIELD_SENDER: ("sender", "s"),
    FIELD_SIGNATURE: ("signature", "g"),
    FIELD_UNIX_FDS: ("unix_fds", "u"),
}
# What each message type must carry.
REQUIRED_FIELDS = {
    METHOD_CALL: ("path", "member"),
    METHOD_RETURN: ("reply_serial",),
    ERROR: ("error_name", "reply_serial"),
    SIGNAL: ("path", "interface", "member"),
}

MAX_SIGNATURE = 255
MAX_ARRAY = 1 << 26
MAX_MESSAGE = 1 << 27
MAX_ARRAY_DEPTH = 32
MAX_STRUCT_DEPTH = 32
MAX_DEPTH = 64
FIXED_HEADER = 16  # the 12 fixed bytes and the length of the header-field array

INCONSISTENT = "org.freedesktop.DBus.Error.InconsistentMessage"
INVALID_SIGNATURE = "org.freedesktop.DBus.Error.InvalidSignature"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


class DecodeError(DBusError, ValueError):
    """Bytes that are not a valid D-Bus value or message (or a bad signature)."""

    def __init__(self, message, name=INCONSISTENT):
        DBusError.__init__(self, name, message)

    def __reduce__(self):
        return (type(self), (self.message, self.name))


class EncodeError(DBusError, ValueError):
    """A Python value that does not fit the signature it is written as."""

    def __init__(self, message, name=INVALID_ARGS):
        DBusError.__init__(self, name, message)

    def __reduce__(self):
        return (type(self), (self.message, self.name))


class Variant(object):
    """A ``v`` value: the ``signature`` (one complete type) and the ``value``."""

    __slots__ = ("signature", "value")

    def __init__(self, signature, value):
        self.signature = signature
        self.value = value

    def __eq__(self, other):
        return (isinstance(other, Variant) and self.signature == other.signature
                and self.value == other.value)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Variant(%r, %r)" % (self.signature, self.value)


# --- signatures ------------------------------------------------------------------------------

# code -> (struct format, alignment) of the fixed-size types
_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
          "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}
_STRINGS = {"s": 4, "o": 4, "g": 1}
BASIC = frozenset(_FIXED) | frozenset(_STRINGS)
_ALIGN = dict([(c, a) for c, (_f, a) in _FIXED.items()] + list(_STRINGS.items()) +
              [("a", 4), ("(", 8), ("{", 8), ("v", 1)])

# A parsed type is a code for a basic type or "v", else ("a", element), ("(", members...)
# or ("{", key, value).
_parsed = {}


def parse_signature(sig):
    """The complete types of ``sig`` as a tuple of parsed types; raise :class:`DecodeError`
    (``InvalidSignature``) when it is not a valid signature."""
    got = _parsed.get(sig)
    if got is not None:
        return got
    if not isinstance(sig, str):
        raise DecodeError("signature must be a string, not %r" % (sig,), INVALID_SIGNATURE)
    if len(sig) > MAX_SIGNATURE:
        raise DecodeError("signature longer than %d bytes" % MAX_SIGNATURE, INVALID_SIGNATURE)
    out, pos = [], 0
    while pos < len(sig):
        t, pos = _parse_one(sig, pos, 0, 0)
        out.append(t)
    out = tuple(out)
    if len(_parsed) < 512:
        _parsed[sig] = out
    return out


def parse_single(sig):
    """The one complete type of ``sig`` (a variant's signature)."""
    types = parse_signature(sig)
    if len(types) != 1:
        raise DecodeError("%r is not a single complete type" % sig, INVALID_SIGNATURE)
    return types[0]


def _parse_one(sig, pos, arrays, structs):
    def bad(why):
        return DecodeError("signature %r at %d: %s" % (sig, pos, why), INVALID_SIGNATURE)

    if pos >= len(sig):
        raise bad("ends inside a type")
    c = sig[pos]
    if c in BASIC or c == "v":
        return c, pos + 1
    if c == "a":
        if arrays + 1 > MAX_ARRAY_DEPTH:
            raise bad("more than %d nested arrays" % MAX_ARRAY_DEPTH)
        if pos + 1 < len(sig) and sig[pos + 1] == "{":
            return _parse_dict(sig, pos + 1, arrays + 1, structs, bad)
        elem, end = _parse_one(sig, pos + 1, arrays + 1, structs)
        return ("a", elem), end
    if c == "(":
        if structs + 1 > MAX_STRUCT_DEPTH:
            raise bad("more than %d nested structs" % MAX_STRUCT_DEPTH)
        members, p = [], pos + 1
        while True:
            if p >= len(sig):
                raise bad("struct not closed")
            if sig[p] == ")":
                break
            t, p = _parse_one(sig, p, arrays, structs + 1)
            members.append(t)
        if not members:
            raise bad("empty struct")
        return ("(",) + tuple(members), p + 1
    if c == "{":
        raise bad("dict entry outside an array")
    if c in ")}":
        raise bad("unbalanced %r" % c)
    raise bad("unknown type code %r" % c)


def _parse_dict(sig, pos, arrays, structs, bad):
    if structs + 1 > MAX_STRUCT_DEPTH:
        raise bad("more than %d nested structs" % MAX_STRUCT_DEPTH)
    if pos + 1 >= len(sig) or sig[pos + 1] not in BASIC:
        raise bad("a dict entry's key must be a basic type")
    key = sig[pos + 1]
    value, p = _parse_one(sig, pos + 2, arrays, structs + 1)
    if p >= len(sig) or sig[p] != "}":
        raise bad("a dict entry holds exactly a key and a value")
    return ("a", ("{", key, value)), p + 1


def unparse(t):
    """The signature text of a parsed type."""
    if isinstance(t, str):
        return t
    if t[0] == "a":
        return "a" + unparse(t[1])
    if t[0] == "(":
        return "(" + "".join(unparse(m) for m in t[1:]) + ")"
    return "{" + unparse(t[1]) + unparse(t[2]) + "}"


def _align_of(t):
    return _ALIGN[t if isinstance(t, str) else t[0]]


def valid_object_path(path):
    """``/`` or ``/`` followed by ``/``-separated non-empty elements of ``[A-Za-z0-9_]``."""
    if not isinstance(path, str) or not path.startswith("/"):
        return False
    if path == "/":
        return True
    for part in path[1:].split("/"):
        if not part or not all(c.isascii() and (c.isalnum() or c == "_") for c in part):
            return False
    return True


# --- writing ---------------------------------------------------------------------------------

class _Writer(object):
    __slots__ = ("buf", "e", "depth")

    def __init__(self, order):
        self.buf = bytearray()
        self.e = "<" if order == LITTLE else ">"
        self.depth = 0

    def pad(self, align):
        n = -len(self.buf) % align
        if n:
            self.buf += b"\0" * n

    def fixed(self, code, value, where):
        fmt, align = _FIXED[code]
        if code == "b":
            if not isinstance(value, (bool, int)) or value not in (0, 1):
                raise EncodeError("%s: a boolean must be True or False, not %r" % (where, value))
            value = int(value)
        elif code == "d":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise EncodeError("%s: a double must be a number, not %r" % (where, value))
            value = float(value)
        elif type(value) is not int:
            raise EncodeError("%s: type %r takes an integer, not %r" % (where, code, value))
        self.pad(align)
        try:
            self.buf += _struct.pack(self.e + fmt, value)
        except _struct.error:
            raise EncodeError("%s: %r does not fit type %r" % (where, value, code)) from None

    def string(self, code, value, where):
        if not isinstance(value, str):
            raise EncodeError("%s: type %r takes a string, not %r" % (where, code, value))
        if code == "o" and not valid_object_path(value):
            raise EncodeError("%s: %r is not a valid object path" % (where, value))
        if code == "g":
            _checked_signature(value, where)
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodeError("%s: %r is not valid UTF-8" % (where, value)) from None
        if b"\0" in data:
            raise EncodeError("%s: a string may not hold a NUL byte" % where)
        if code == "g":
            self.buf.append(len(data))
        else:
            self.pad(4)
            self.buf += _struct.pack(self.e + "I", len(data))
        self.buf += data
        self.buf.append(0)

    def value(self, t, v, where):
        if isinstance(t, str) and t != "v":
            if t in _FIXED:
                self.fixed(t, v, where)
            else:
                self.string(t, v, where)
            return
        self.depth += 1  # the reader's limit on containers, variants included
        if self.depth > MAX_DEPTH:
            raise EncodeError("%s: containers (variants included) nested more than %d deep"
                              % (where, MAX_DEPTH))
        try:
            self.container(t, v, where)
        finally:
            self.depth -= 1

    def container(self, t, v, where):
        if t == "v":
            if not isinstance(v, Variant):
                raise EncodeError("%s: a variant must be a Variant, not %r" % (where, v))
            inner = _checked_signature(v.signature, where, single=True)
            self.string("g", v.signature, where)
            self.value(inner, v.value, where + "<%s>" % v.signature)
        elif t[0] == "a":
            self.array(t[1], v, where)
        elif t[0] == "(":
            if not isinstance(v, (tuple, list)) or len(v) != len(t) - 1:
                raise EncodeError("%s: struct %s takes a tuple of %d, not %r"
                                  % (where, unparse(t), len(t) - 1, v))
            self.pad(8)
            for n, (mt, mv) in enumerate(zip(t[1:], v)):
                self.value(mt, mv, "%s[%d]" % (where, n))
        else:  # dict entry
            self.pad(8)
            self.value(t[1], v[0], where + ".key")
            self.value(t[2], v[1], where + ".value")

    def array(self, elem, v, where):
        self.pad(4)
        at = len(self.buf)
        self.buf += b"\0\0\0\0"
        self.pad(_align_of(elem))
        start = len(self.buf)
        if elem == "y" and isinstance(v, (bytes, bytearray, memoryview)):
            self.buf += bytes(v)
        else:
            if isinstance(elem, tuple) and elem[0] == "{" and isinstance(v, dict):
                v = v.items()
            elif isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
                raise EncodeError("%s: array a%s takes a list, not %r"
                                  % (where, unparse(elem), v))
            for n, item in enumerate(v):
                if isinstance(elem, tuple) and elem[0] == "{" and (
                        not isinstance(item, (tuple, list)) or len(item) != 2):
                    raise EncodeError("%s[%d]: a dict entry is a (key, value) pair, not %r"
                                      % (where, n, item))
                self.value(elem, item, "%s[%d]" % (where, n))
        size = len(self.buf) - start
        if size > MAX_ARRAY:
            raise EncodeError("%s: array of %d bytes is over the %d limit"
                              % (where, size, MAX_ARRAY))
        _struct.pack_into(self.e + "I", self.buf, at, size)


def _checked_signature(sig, where, single=False):
    try:
        return parse_single(sig) if single else parse_signature(sig)
    except DecodeError as e:
        raise EncodeError("%s: %s" % (where, e.message), INVALID_SIGNATURE) from None


def marshal(signature, values, order=LITTLE, offset=0):
    """The bytes of ``values`` (a sequence, one per complete type of ``signature``) in
    byte order ``order`` (``"l"`` or ``"B"``), aligned as if they started ``offset`` bytes
    into a message (0 for a body). Raise :class:`EncodeError` when they do not fit."""
    types = parse_signature(signature)
    values = tuple(values)
    if len(values) != len(types):
        raise EncodeError("signature %r takes %d values, got %d"
                          % (signature, len(types), len(values)))
    if order not in (LITTLE, BIG):
        raise EncodeError("byte order must be 'l' or 'B', not %r" % (order,))
    w = _Writer(order)
    w.buf += b"\0" * (offset % 8)
    for n, (t, v) in enumerate(zip(types, values)):
        w.value(t, v, "value %d (%s)" % (n, unparse(t)))
    return bytes(w.buf[offset % 8:])


# --- reading ---------------------------------------------------------------------------------

class _Reader(object):
    __slots__ = ("data", "pos", "end", "e", "depth")

    def __init__(self, data, order, pos=0, end=None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.e = "<" if order == LITTLE else ">"
        self.depth = 0

    def fail(self, why):
        return DecodeError("at byte %d: %s" % (self.pos, why))

    def pad(self, align):
        n = -self.pos % align
        if not n:
            return
        if self.pos + n > self.end:
            raise self.fail("truncated (padding to %d)" % align)
        if any(self.data[self.pos:self.pos + n]):
            raise self.fail("non-zero padding")
        self.pos += n

    def take(self, n, what):
        if n > self.end - self.pos:
            raise self.fail("truncated: %s needs %d bytes, %d left"
                            % (what, n, self.end - self.pos))
        p = self.pos
        self.pos += n
        return p

    def fixed(self, code):
        fmt, align = _FIXED[code]
        self.pad(align)
        p = self.take(align, "type %r" % code)
        v = _struct.unpack_from(self.e + fmt, self.data, p)[0]
        if code == "b":
            if v > 1:
                raise DecodeError("at byte %d: boolean %d is neither 0 nor 1" % (p, v))
            return bool(v)
        return v

    def string(self, code):
        if code == "g":
            n = self.data[self.take(1, "signature length")]
        else:
            self.pad(4)
            n = _struct.unpack_from(self.e + "I", self.data, self.take(4, "string length"))[0]
        p = self.take(n + 1, "string of %d bytes" % n)
        raw = bytes(self.data[p:p + n])
        if self.data[p + n] != 0:
            raise DecodeError("at byte %d: string not terminated by NUL" % (p + n))
        if b"\0" in raw:
            raise DecodeError("at byte %d: string holds a NUL byte" % p)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("at byte %d: string is not valid UTF-8" % p) from None
        if code == "o" and not valid_object_path(text):
            raise DecodeError("at byte %d: %r is not a valid object path" % (p, text))
        if code == "g":
            parse_signature(text)
        return text

    def value(self, t):
        if isinstance(t, str):
            if t in _FIXED:
                return self.fixed(t)
            if t in _STRINGS:
                return self.string(t)
            sig = self.string("g")
            inner = parse_single(sig)
        # a container: arrays, structs, dict entries and variants together nest at most
        # 64 deep in a message (a variant's signature restarts the per-signature limits)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("containers (variants included) nested more than %d deep"
                            % MAX_DEPTH)
        try:
            if isinstance(t, str):
                return Variant(sig, self.value(inner))
            if t[0] == "a":
                return self.array(t[1])
            self.pad(8)
            if t[0] == "(":
                return tuple(self.value(m) for m in t[1:])
            return (self.value(t[1]), self.value(t[2]))
        finally:
            self.depth -= 1

    def array(self, elem):
        self.pad(4)
        n = _struct.unpack_from(self.e + "I", self.data, self.take(4, "array length"))[0]
        if n > MAX_ARRAY:
            raise self.fail("array of %d bytes is over the %d limit" % (n, MAX_ARRAY))
        self.pad(_align_of(elem))
        end = self.pos + n
        if end > self.end:
            raise self.fail("array of %d bytes runs past the end (%d left)"
                            % (n, self.end - self.pos))
        if elem == "y":
            self.pos = end
            return bytes(self.data[end - n:end])
        outer, self.end = self.end, end
        try:
            items = []
            while self.pos < end:
                items.append(self.value(elem))
        finally:
            self.end = outer
        if isinstance(elem, tuple) and elem[0] == "{":
            return dict(items)
        return items


def unmarshal(signature, data, order=LITTLE, offset=0, exact=True):
    """The values of ``signature`` read from ``data`` (bytes) in byte order ``order``, as a
    tuple, aligned as if ``data`` started ``offset`` bytes into a message. With ``exact``,
    bytes left over are an error. Raise :class:`DecodeError` on malformed data."""
    types = parse_signature(signature)
    if order not in (LITTLE, BIG):
        raise DecodeError("byte order must be 'l' or 'B', not %r" % (order,))
    pad = offset % 8
    data = b"\0" * pad + bytes(data)
    r = _Reader(data, order, pad)
    out = tuple(r.value(t) for t in types)
    if exact and r.pos != len(data):
        raise DecodeError("%d bytes left after the values of %r" % (len(data) - r.pos,
                                                                    signature))
    return out


# --- messages --------------------------------------------------------------------------------

class Message(object):
    """One D-Bus message.

    ``type`` (:data:`METHOD_CALL`, :data:`METHOD_RETURN`, :data:`ERROR`, :data:`SIGNAL`),
    ``flags``, ``serial`` (1..2**32-1), the header fields (``path``, ``interface``,
    ``member``, ``error_name``, ``reply_serial``, ``destination``, ``sender``,
    ``signature``, ``unix_fds``; ``None`` when absent), and ``body``, a tuple of values
    matching ``signature``. ``order`` is the byte order it was read in.
    """

    __slots__ = ("type", "flags", "serial", "body", "order") + tuple(
        name for name, _sig in HEADER_FIELDS.values())

    def __init__(self, type, serial=0, flags=0, body=(), order=LITTLE, **fields):
        self.type = type
        self.serial = serial
        self.flags = flags
        self.body = tuple(body)
        self.order = order
        for name, _sig in HEADER_FIELDS.values():
            setattr(self, name, fields.pop(name, None))
        if fields:
            raise TypeError("unknown header fields: %s" % ", ".join(sorted(fields)))
        if self.signature is None:
            self.signature = ""

    def fields(self):
        """``{name: value}`` of the header fields present."""
        out = {}
        for name, _sig in HEADER_FIELDS.values():
            v = getattr(self, name)
            if v is not None and not (name == "signature" and v == ""):
                out[name] = v
        return out

    def __eq__(self, other):
        return (isinstance(other, Message) and self.type == other.type
                and self.serial == other.serial and self.flags == other.flags
                and self.body == other.body and self.fields() == other.fields())

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Message(%s, serial=%d, %s, body=%r)" % (
            TYPE_NAMES.get(self.type, self.type), self.serial,
            ", ".join("%s=%r" % kv for kv in sorted(self.fields().items())), self.body)


def method_call(destination, path, interface, member, signature="", body=(), flags=0):
    """A METHOD_CALL message (serial 0: the connection numbers it)."""
    return Message(METHOD_CALL, flags=flags, destination=destination, path=path,
                   interface=interface, member=member, signature=signature, body=body)


def signal(path, interface, member, signature="", body=(), destination=None):
    """A SIGNAL message."""
    return Message(SIGNAL, flags=NO_REPLY_EXPECTED, path=path, interface=interface,
                   member=member, signature=signature, body=body, destination=destination)


def encode_message(msg, order=LITTLE):
    """The bytes of ``msg`` in byte order ``order``. Raise :class:`EncodeError` when a
    required header field is missing, the serial is 0, or the body does not fit."""
    if not 1 <= msg.serial <= 0xFFFFFFFF:
        raise EncodeError("serial must be 1..2**32-1, not %r" % (msg.serial,))
    for name in REQUIRED_FIELDS.get(msg.type, ()):
        if getattr(msg, name) is None:
            raise EncodeError("a %s message needs the %s header field"
                              % (TYPE_NAMES[msg.type], name))
    body = marshal(msg.signature or "", msg.body, order)
    fields = []
    for code, (name, sig) in sorted(HEADER_FIELDS.items()):
        v = getattr(msg, name)
        if v is None or (name == "signature" and v == ""):
            continue
        fields.append((code, Variant(sig, v)))
    e = "<" if order == LITTLE else ">"
    head = _struct.pack(e + "cBBBII", order.encode(), msg.type, msg.flags, PROTOCOL_VERSION,
                        len(body), msg.serial)
    head += marshal("a(yv)", (fields,), order, offset=12)
    head += b"\0" * (-len(head) % 8)
    if len(head) + len(body) > MAX_MESSAGE:
        raise EncodeError("message of %d bytes is over the %d limit"
                          % (len(head) + len(body), MAX_MESSAGE))
    return head + body


def message_length(prefix):
    """The total length of the message that starts with ``prefix`` (at least its first 16
    bytes), so a reader knows how much to wait for. Raise :class:`DecodeError` when the
    prefix cannot start a message."""
    if len(prefix) < FIXED_HEADER:
        raise DecodeError("truncated: a message header has %d bytes, got %d"
                          % (FIXED_HEADER, len(prefix)))
    order = chr(prefix[0])
    if order not in (LITTLE, BIG):
        raise DecodeError("byte order %r is neither 'l' nor 'B'" % order)
    e = "<" if order == LITTLE else ">"
    body_len, _serial, fields_len = _struct.unpack_from(e + "III", prefix, 4)
    if body_len > MAX_MESSAGE or fields_len > MAX_ARRAY:
        raise DecodeError("message lengths out of range (body %d, header fields %d)"
                          % (body_len, fields_len))
    head = FIXED_HEADER + fields_len
    total = head + (-head % 8) + body_len
    if total > MAX_MESSAGE:
        raise DecodeError("message of %d bytes is over the %d limit" % (total, MAX_MESSAGE))
    return total


def decode_message(data):
    """The :class:`Message` that is exactly ``data``. Raise :class:`DecodeError` on
    anything malformed (see the module text)."""
    data = bytes(data)
    total = message_length(data)
    if total != len(data):
        raise DecodeError("message length is %d but %d bytes were given" % (total, len(data)))
    order = chr(data[0])
    e = "<" if order == LITTLE else ">"
    mtype, flags, version, body_len, serial = _struct.unpack_from(e + "BBBII", data, 1)
    if version != PROTOCOL_VERSION:
        raise DecodeError("protocol version %d, not %d" % (version, PROTOCOL_VERSION))
    if mtype == 0:
        raise DecodeError("message type 0 is invalid")
    if serial == 0:
        raise DecodeError("serial 0 is invalid")
    r = _Reader(data, order, 12, total - body_len)
    fields = {}
    for code, var in r.array(("(", "y", "v")):
        known = HEADER_FIELDS.get(code)
        if known is None:
            continue  # unknown header fields are ignored (Specification)
        name, sig = known
        if var.signature != sig:
            raise DecodeError("header field %s has type %r, not %r" % (name, var.signature,
                                                                       sig))
        fields[name] = var.value
    r.pad(8)
    if r.pos != total - body_len:
        raise DecodeError("header fields do not end where the body starts")
    for name in REQUIRED_FIELDS.get(mtype, ()):
        if name not in fields:
            raise DecodeError("a %s message without the %s header field"
                              % (TYPE_NAMES[mtype], name))
    if fields.get("reply_serial") == 0:
        raise DecodeError("reply serial 0 is invalid")
    signature = fields.pop("signature", "")
    body = unmarshal(signature, data[total - body_len:], order)
    return Message(mtype, serial, flags, body, order, signature=signature, **fields)
