"""User-namespace ID mapping arithmetic (user_namespaces(7)), pure: no kernel, no I/O.

A mapping ``IDMap(container_id, host_id, size)`` says that ids ``container_id ..
container_id + size - 1`` inside the namespace are ``host_id .. host_id + size - 1`` outside.
This module translates ids both ways, validates a set of mappings by the rules the kernel
applies when ``/proc/PID/uid_map`` is written (kernel/user_namespace.c, ``map_write``), and
renders and parses that file's text.
"""
from .errors import ConfigError
from .record import INT, Field, Record

__all__ = [
    "IDMap",
    "MAX_ID",
    "MAX_LINES",
    "host_id_from_mapping",
    "container_id_from_mapping",
    "get_host_root_uid",
    "get_host_root_gid",
    "validate_mappings",
    "render",
    "parse",
]

MAX_ID = 2 ** 32 - 2  # (u32)-1 is the kernel's "no id" and can never be mapped
MAX_LINES = 340  # UID_GID_MAP_MAX_EXTENTS since Linux 4.15


class IDMap(Record):
    """One line of a uid_map or gid_map. All three fields are always written to JSON."""

    FIELDS = (
        Field("container_id", INT, 0, omit=False),
        Field("host_id", INT, 0, omit=False),
        Field("size", INT, 0, omit=False),
    )


def _translate(id_, mappings, src, dst):
    for m in mappings:
        start = getattr(m, src)
        if start <= id_ < start + m.size:
            return getattr(m, dst) + (id_ - start)
    return None


def host_id_from_mapping(container_id, mappings):
    """The host id that ``container_id`` maps to, or ``None`` when no mapping covers it."""
    return _translate(container_id, mappings, "container_id", "host_id")


def container_id_from_mapping(host_id, mappings):
    """The id inside the namespace that ``host_id`` appears as, or ``None``."""
    return _translate(host_id, mappings, "host_id", "container_id")


def _host_root(config, attr, kind):
    if not _has_userns(config):
        return 0
    mappings = getattr(config, attr)
    if not mappings:
        raise ConfigError(attr, "a user namespace is configured (NEWUSER) but there are no %s "
                          "mappings" % kind)
    host = host_id_from_mapping(0, mappings)
    if host is None:
        raise ConfigError(attr, "a user namespace is configured (NEWUSER) but no mapping "
                          "covers %s 0 (root)" % kind)
    return host


def _has_userns(config):
    return any(ns.type == "NEWUSER" for ns in config.namespaces)


def get_host_root_uid(config):
    """The host uid that root in the container is: 0 without a user namespace."""
    return _host_root(config, "uid_mappings", "uid")


def get_host_root_gid(config):
    """The host gid that root in the container is: 0 without a user namespace."""
    return _host_root(config, "gid_mappings", "gid")


def validate_mappings(mappings, field="uid_mappings"):
    """Raise :class:`ConfigError` naming the first bad line, by the kernel's rules: size at
    least 1; every id of a range within 0..2**32-2 on both sides; no two ranges overlapping on
    the container side nor on the host side; at most 340 lines."""
    if len(mappings) > MAX_LINES:
        raise ConfigError(field, "at most %d mappings are allowed, not %d"
                          % (MAX_LINES, len(mappings)))
    for i, m in enumerate(mappings):
        here = "%s[%d]" % (field, i)
        if m.size < 1:
            raise ConfigError(here + ".size", "must be at least 1")
        for name in ("container_id", "host_id"):
            start = getattr(m, name)
            if start < 0 or start > MAX_ID:
                raise ConfigError("%s.%s" % (here, name), "must be within 0..%d" % MAX_ID)
            if start + m.size - 1 > MAX_ID:
                raise ConfigError(here + ".size", "the range %s %d..%d goes past %d"
                                  % (name, start, start + m.size - 1, MAX_ID))
    for name in ("container_id", "host_id"):
        ranges = sorted((getattr(m, name), getattr(m, name) + m.size, i)
                        for i, m in enumerate(mappings))
        for (_, end, i), (start, _, j) in zip(ranges, ranges[1:]):
            if start < end:
                a, b = sorted((i, j))
                raise ConfigError("%s[%d]" % (field, b), "overlaps %s[%d] on the %s side"
                                  % (field, a, "container" if name == "container_id" else "host"))


def render(mappings):
    """The exact text to write to ``/proc/PID/uid_map`` or ``gid_map`` (one write)."""
    return "".join("%d %d %d\n" % (m.container_id, m.host_id, m.size) for m in mappings)


def parse(text):
    """Parse the text of a uid_map/gid_map file (as written or as read back) into IDMaps."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError("id map line %d: expected three unsigned integers: %r" % (n, line))
        out.append(IDMap(container_id=int(parts[0]), host_id=int(parts[1]), size=int(parts[2])))
    return tuple(out)
