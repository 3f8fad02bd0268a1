"""Where the cgroup hierarchies are, and where a container's cgroup goes in each.

:func:`discover` reads ``/proc/self/mountinfo`` (proc(5): the v1 hierarchies are ``cgroup``
mounts whose super options name their controllers; the v2 hierarchy is the ``cgroup2``
mount) and ``/proc/self/cgroup`` (cgroups(7): ``id:controllers:path``, ``0::path`` for v2).
The result, :class:`Hierarchies`, is a plain value: tests build one over a temporary tree
with :func:`at_root`, so nothing below it reads a fixed path.

Placement: a relative ``parent/name`` goes under the caller's own cgroup in each hierarchy
(never at a hierarchy's root by default); an absolute one is taken from the hierarchy's root.
"""
import os as _os

from .values import V1_SUBSYSTEMS

UNIFIED = "unified"  # the key of the v2 hierarchy in Hierarchies.own and in paths


class Hierarchies(object):
    """The mounted hierarchies and the caller's own cgroup in each.

    ``v1``: ``{subsystem: mount point}`` for the subsystems minins manages (co-mounted ones
    such as ``cpu,cpuacct`` share a mount point); ``unified``: the cgroup2 mount point or
    ``None``; ``own``: ``{subsystem or "unified": path relative to that mount}``.
    """

    __slots__ = ("v1", "unified", "own")

    def __init__(self, v1=None, unified=None, own=None):
        self.v1 = dict(v1 or {})
        self.unified = unified
        self.own = dict(own or {})

    @property
    def mode(self):
        """``legacy`` (v1 only), ``hybrid`` (v1 and a v2 hierarchy) or ``unified``."""
        if self.v1:
            return "hybrid" if self.unified else "legacy"
        return "unified" if self.unified else "none"

    def mount(self, key):
        return self.unified if key == UNIFIED else self.v1.get(key)

    def own_dir(self, key):
        """The caller's own cgroup directory in the hierarchy of ``key``."""
        return join(self.mount(key), self.own.get(key, "/"))

    def place(self, key, cgroup):
        """The directory of ``cgroup`` (``parent/name`` or ``/abs/path``) in ``key``'s
        hierarchy, and the directory it is placed under (the start of what may be created)."""
        if cgroup.startswith("/"):
            base = self.mount(key)
        else:
            base = self.own_dir(key)
        return join(base, cgroup), base

    def __repr__(self):
        return "Hierarchies(v1=%r, unified=%r, own=%r)" % (self.v1, self.unified, self.own)


def join(base, rel):
    """``base/rel`` with no doubled or trailing slash."""
    rel = rel.strip("/")
    if "//" in rel:
        rel = "/".join(p for p in rel.split("/") if p)
    if not rel:
        return base
    return (base if base[-1:] != "/" else base.rstrip("/")) + "/" + rel


def parse_mountinfo(text, fstypes=("cgroup", "cgroup2")):
    """``[(mount point, fstype, mount root, super options)]`` of the mounts in ``text`` (a
    ``/proc/PID/mountinfo``, proc(5)) whose type is one of ``fstypes`` (``None``: every
    mount), in the file's order."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstypes is None or fstype in fstypes:
            opts = tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else ()
            out.append((_unescape(fields[4]), fstype, _unescape(fields[3]), opts))
    return out


def _unescape(field):
    # proc(5): space, tab, newline and backslash are written as octal escapes.
    if "\\" not in field:
        return field
    return (field.encode().decode("unicode_escape").encode("latin-1")
            .decode(errors="surrogateescape"))


def parse_proc_cgroup(text):
    """``{subsystem or "unified": path}`` from ``/proc/<pid>/cgroup``."""
    own = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if parts[0] == "0" and controllers == "":
            own[UNIFIED] = path
            continue
        for name in controllers.split(","):
            if name:
                own[name] = path
    return own


def from_tables(mounts, own):
    """Build :class:`Hierarchies` from :func:`parse_mountinfo` and :func:`parse_proc_cgroup`."""
    v1, unified, own_rel = {}, None, {}
    for point, fstype, root, opts in mounts:
        if fstype == "cgroup2":
            if unified is None:
                unified = point
                own_rel[UNIFIED] = _relative(own.get(UNIFIED, "/"), root)
            continue
        for name in opts:
            if name in V1_SUBSYSTEMS and name not in v1:
                v1[name] = point
                own_rel[name] = _relative(own.get(name, "/"), root)
    return Hierarchies(v1, unified, own_rel)


def _relative(path, mount_root):
    # A hierarchy mounted from below its root (a bind mount of a sub-cgroup) shows paths
    # relative to the hierarchy's root in /proc/self/cgroup; drop the mount's own root.
    if mount_root not in ("/", "") and (path + "/").startswith(mount_root.rstrip("/") + "/"):
        path = path[len(mount_root.rstrip("/")):] or "/"
    return path


def discover(mountinfo="/proc/self/mountinfo", proc_cgroup="/proc/self/cgroup"):
    """The hierarchies mounted in this mount namespace and this process's cgroups."""
    with open(mountinfo) as f:
        mounts = parse_mountinfo(f.read())
    with open(proc_cgroup) as f:
        own = parse_proc_cgroup(f.read())
    return from_tables(mounts, own)


def at_root(root):
    """Hierarchies laid out under ``root`` the usual way, for tests and other roots.

    ``root`` holding ``cgroup.controllers`` is a v2 hierarchy; otherwise every directory
    named after subsystems (``memory``, ``cpu,cpuacct``) is a v1 hierarchy, and ``unified``
    under it, if it holds ``cgroup.controllers``, the v2 one. The own cgroup is ``/``.
    """
    if _os.path.exists(_os.path.join(root, "cgroup.controllers")):
        return Hierarchies({}, root, {UNIFIED: "/"})
    v1, unified = {}, None
    for entry in sorted(_os.listdir(root)):
        path = _os.path.join(root, entry)
        if _os.path.islink(path) or not _os.path.isdir(path):
            continue
        if entry == UNIFIED and _os.path.exists(_os.path.join(path, "cgroup.controllers")):
            unified = path
            continue
        for name in entry.split(","):
            if name in V1_SUBSYSTEMS:
                v1.setdefault(name, path)
    own = {name: "/" for name in v1}
    if unified:
        own[UNIFIED] = "/"
    return Hierarchies(v1, unified, own)
