"""JSON without the start-up cost of the ``json`` package.

``import json`` pulls in ``re`` and ``enum`` (10-15 ms here), more than the rest of a
container start. CPython's C accelerator ``_json`` has everything needed -- a scanner and a
string escaper -- so this module drives it directly and falls back to ``json`` on an
interpreter without it. Output and errors match ``json.dumps``/``json.loads``.
"""
try:
    import _json as _c
except ImportError:  # pragma: no cover - other Python implementations
    _c = None

__all__ = ["dumps", "loads"]

_WS = " \t\n\r"


def _reject_constant(name):
    raise ValueError("JSON constant %s is not allowed" % name)


class _Context:
    # The attributes _json.make_scanner reads from json.JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo = None


_scan = _c.make_scanner(_Context()) if _c is not None else None


def loads(text):
    """Decode one JSON document; ``ValueError`` (a ``json.JSONDecodeError``) when invalid."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = 0
    while start < len(text) and text[start] in _WS:
        start += 1
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        from json import JSONDecodeError

        raise JSONDecodeError("Expecting value", text, stop.value) from None
    while end < len(text) and text[end] in _WS:
        end += 1
    if end != len(text):
        from json import JSONDecodeError

        raise JSONDecodeError("Extra data", text, end)
    return value


if _c is not None:
    _quote = _c.encode_basestring_ascii
else:  # pragma: no cover
    def _quote(s):
        from json.encoder import py_encode_basestring_ascii

        return py_encode_basestring_ascii(s)


def _encode(obj, out, indent, depth):
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_quote(obj))
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError("out of range float values are not JSON compliant: %r" % obj)
        out.append(float.__repr__(obj))
    elif isinstance(obj, (list, tuple)):
        _container(obj, out, indent, depth, "[", "]", lambda item, d: _encode(item, out, indent, d))
    elif isinstance(obj, dict):
        def pair(item, d):
            key, value = item
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings, not %r" % (key,))
            out.append(_quote(key))
            out.append(": ")
            _encode(value, out, indent, d)

        _container(list(obj.items()), out, indent, depth, "{", "}", pair)
    else:
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _container(items, out, indent, depth, opening, closing, emit):
    if not items:
        out.append(opening + closing)
        return
    out.append(opening)
    sep = ", " if indent is None else ","
    for i, item in enumerate(items):
        if i:
            out.append(sep)
        if indent is not None:
            out.append("\n" + " " * (indent * (depth + 1)))
        emit(item, depth + 1)
    if indent is not None:
        out.append("\n" + " " * (indent * depth))
    out.append(closing)


def dumps(obj, indent=None):
    """Encode like ``json.dumps(obj, indent=indent)`` (ASCII output)."""
    out = []
    _encode(obj, out, indent, 0)
    return "".join(out)
