"""Users and groups of the *container*: ``/etc/passwd`` and ``/etc/group`` parsing, and the
resolution of the configured ``user`` (``name|uid[:group|gid]``) the way libcontainer's
``GetExecUser`` does it. The parsing is pure: the init reads the files (after pivot_root, so
they are the image's, never the host's) with :func:`read_small`, which refuses what could
hang or flood it, and passes their text in.

passwd(5), group(5).
"""
import os
import stat

from .errors import ConfigError

__all__ = ["ExecUser", "parse_passwd", "parse_group", "resolve_user", "read_small"]

MAX_FILE = 4 << 20  # bytes: more than any passwd or group file, less than an attack


class ExecUser:
    __slots__ = ("uid", "gid", "sgids", "home")

    def __init__(self, uid, gid, sgids, home):
        self.uid, self.gid, self.sgids, self.home = uid, gid, tuple(sgids), home

    def __eq__(self, other):
        return isinstance(other, ExecUser) and (self.uid, self.gid, self.sgids, self.home) == \
            (other.uid, other.gid, other.sgids, other.home)

    def __repr__(self):
        return "ExecUser(uid=%d, gid=%d, sgids=%r, home=%r)" % (self.uid, self.gid, self.sgids,
                                                                self.home)


def _fields(text, n):
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < n:
            continue
        yield parts


def _id(text):
    return int(text) if text.isdigit() else None


def parse_passwd(text):
    """``[(name, uid, gid, home)]``; malformed lines are skipped, as libc does."""
    out = []
    for p in _fields(text, 7):
        uid, gid = _id(p[2]), _id(p[3])
        if uid is not None and gid is not None:
            out.append((p[0], uid, gid, p[5]))
    return out


def parse_group(text):
    """``[(name, gid, [members])]``."""
    out = []
    for p in _fields(text, 4):
        gid = _id(p[2])
        if gid is not None:
            out.append((p[0], gid, [m for m in p[3].split(",") if m]))
    return out


def resolve_user(spec, passwd_text="", group_text="", additional_groups=(), field="user"):
    """The uid, gid, supplementary gids and home for ``spec`` (default: root, ``0:0``).

    A name must exist in the passwd (or group) text; a number need not (it is used as is, as
    every runtime does). Supplementary groups are the groups that list the user by name, but
    only in the implicit form (no ``:group``: an explicit group means exactly that group, as in
    libcontainer's ``GetExecUser``, so ``uid:gid`` from an OCI bundle gets no groups the image
    lists), then ``additional_groups``.
    """
    user, _, group = (spec or "").partition(":")
    users = parse_passwd(passwd_text)
    groups = parse_group(group_text)
    entry = None
    if user == "" or user.isdigit():
        uid = int(user) if user else 0
        entry = next((u for u in users if u[1] == uid), None)
    else:
        entry = next((u for u in users if u[0] == user), None)
        if entry is None:
            raise ConfigError(field, "no user %r in the container's /etc/passwd" % user)
        uid = entry[1]
    gid = entry[2] if entry else 0
    home = entry[3] if entry and entry[3] else "/"
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((g for g in groups if g[0] == group), None)
            if g is None:
                raise ConfigError(field, "no group %r in the container's /etc/group" % group)
            gid = g[1]
    sgids = []
    if entry is not None and not group:
        sgids = [g[1] for g in groups if entry[0] in g[2]]
    for g in additional_groups:
        if g not in sgids:
            sgids.append(g)
    return ExecUser(uid, gid, sgids, home)


def read_small(path, limit=MAX_FILE):
    """The text of a small regular file of the container's (passwd, group), or "" -- never a
    FIFO that would hang us, nor a device or a file over ``limit`` bytes that would eat our
    memory: the image is untrusted. Undecodable bytes become U+FFFD."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return ""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return ""
        return os.read(fd, limit).decode("utf-8", "replace")
    finally:
        os.close(fd)
