"""Immutable records with a declared JSON schema.

A record class lists its :class:`Field` s; a field knows its JSON name (the attribute name),
its kind (how a JSON value is checked and converted) and its default. Records are built from
JSON with every value checked -- an unknown key is an error with a did-you-mean hint -- and
written back to the same JSON, leaving out values equal to their default the way Go's
``omitempty`` does (unless the field says otherwise).

Pure: no kernel, no I/O; cheap to import (no dataclasses, typing or json).
"""
from .errors import ConfigError

__all__ = ["Record", "Field", "STR", "BOOL", "INT", "ListOf", "Optional", "text_error"]


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


def _type_name(value):
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def text_error(value):
    """Why the string ``value`` cannot go to the kernel (which takes UTF-8 bytes), or ``""``:
    a lone surrogate (JSON's ``"\\udcff"``, or a non-UTF-8 byte smuggled in by
    ``surrogateescape``) has no UTF-8 encoding."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return ("must be valid Unicode text: %r at position %d is a lone surrogate, which "
                "has no UTF-8 encoding" % (value[e.start], e.start))
    return ""


class _Kind:
    name = "?"

    def load(self, value, path):
        raise NotImplementedError

    def dump(self, value):
        return value


class _Str(_Kind):
    name = "a string"

    def load(self, value, path):
        if not isinstance(value, str):
            raise ConfigError(path, "must be a string, not %s" % _type_name(value))
        if "\0" in value:
            raise ConfigError(path, "must not contain a NUL character")
        return value


class _Bool(_Kind):
    name = "a boolean"

    def load(self, value, path):
        if type(value) is not bool:
            raise ConfigError(path, "must be true or false, not %s" % _type_name(value))
        return value


class _Int(_Kind):
    name = "an integer"

    def load(self, value, path):
        if type(value) is not int:
            raise ConfigError(path, "must be an integer, not %s" % _type_name(value))
        return value


STR, BOOL, INT = _Str(), _Bool(), _Int()


def _as_kind(kind):
    if isinstance(kind, type) and issubclass(kind, Record):
        return _RecordKind(kind)
    return kind


class ListOf(_Kind):
    def __init__(self, item):
        self.item = _as_kind(item)
        self.name = "a list"

    def load(self, value, path):
        if not isinstance(value, list):
            raise ConfigError(path, "must be a list, not %s" % _type_name(value))
        return tuple(self.item.load(v, "%s[%d]" % (path, i)) for i, v in enumerate(value))

    def dump(self, value):
        return [self.item.dump(v) for v in value]


class Optional(_Kind):
    """A value that may be absent (None); JSON null is accepted as absent."""

    def __init__(self, item):
        self.item = _as_kind(item)
        self.name = self.item.name

    def load(self, value, path):
        return None if value is None else self.item.load(value, path)

    def dump(self, value):
        return None if value is None else self.item.dump(value)


class _RecordKind(_Kind):
    def __init__(self, cls):
        self.cls = cls
        self.name = "an object"

    def load(self, value, path):
        return self.cls.from_json(value, path)

    def dump(self, value):
        return value.to_json()


class Field:
    """One attribute of a record. ``kind`` is STR/BOOL/INT, a ListOf, an Optional, or a Record
    class; ``omit`` says whether the default is left out when writing JSON."""

    __slots__ = ("name", "kind", "default", "omit")

    def __init__(self, name, kind, default=None, omit=True):
        self.name = name
        self.kind = _as_kind(kind)
        self.default = default
        self.omit = omit


class Record:
    """Base of immutable value objects. Subclasses set ``FIELDS`` (a tuple of Field)."""

    FIELDS = ()

    def __init__(self, **values):
        for f in self.FIELDS:
            object.__setattr__(self, f.name, values.pop(f.name, f.default))
        if values:
            raise TypeError("%s has no field %s" % (type(self).__name__, ", ".join(sorted(values))))

    def __setattr__(self, name, value):
        raise AttributeError("%s is immutable; use .replace()" % type(self).__name__)

    __delattr__ = __setattr__

    def _values(self):
        return tuple(getattr(self, f.name) for f in self.FIELDS)

    def __eq__(self, other):
        return type(self) is type(other) and self._values() == other._values()

    def __hash__(self):
        return hash((type(self),) + self._values())

    def __repr__(self):
        shown = ("%s=%r" % (f.name, getattr(self, f.name)) for f in self.FIELDS
                 if getattr(self, f.name) != f.default)
        return "%s(%s)" % (type(self).__name__, ", ".join(shown))

    def replace(self, **changes):
        values = {f.name: getattr(self, f.name) for f in self.FIELDS}
        values.update(changes)
        return type(self)(**values)

    @classmethod
    def field_names(cls):
        return tuple(f.name for f in cls.FIELDS)

    @classmethod
    def from_json(cls, data, path=""):
        """Build from a decoded JSON object, checking every key and value."""
        if not isinstance(data, dict):
            raise ConfigError(path, "must be an object, not %s" % _type_name(data))
        names = {f.name: f for f in cls.FIELDS}
        for key in data:
            if key not in names:
                shown = key if key.isprintable() and key else repr(key)  # one line, visible
                raise ConfigError(_join(path, shown), "unknown field" + _hint(key, names))
        values = {}
        for key, value in data.items():
            values[key] = names[key].kind.load(value, _join(path, key))
        return cls(**values)

    def to_json(self):
        """The JSON object (a dict of plain values) this record was loaded from."""
        out = {}
        for f in self.FIELDS:
            value = getattr(self, f.name)
            if f.omit and value == f.default:
                continue
            out[f.name] = f.kind.dump(value)
        return out


def _hint(key, names):
    import difflib  # only on the error path

    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    return "; did you mean %r?" % close[0] if close else ""
