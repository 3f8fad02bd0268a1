"""cgroups: limits, the freezer, kill-all, stats and OOM events, for v1 and v2 hosts.

    from minins import cgroups
    mgr = cgroups.new_manager(cfg.cgroups)  # v1 driver on legacy/hybrid hosts, v2 on unified
    mgr.apply(pid)                          # create, set limits, put pid in (undone on error)
    mgr.freeze(); mgr.thaw(); mgr.freezer_state()
    mgr.pids(); mgr.stats(); mgr.oom_events(); mgr.join(other_pid)
    mgr.kill_all(); mgr.destroy()
    state["cgroup_paths"] = mgr.paths       # later, elsewhere: cgroups.load_manager(paths)

The drivers write cgroupfs directly (:mod:`.v1`, :mod:`.v2`); :class:`.base.Manager` is the
interface a systemd driver would implement. Nothing here is imported until a command needs
it; :func:`validate` (pure) is what the config checker calls.

Kernel: Documentation/admin-guide/cgroup-v1/, Documentation/admin-guide/cgroup-v2.rst;
man pages: cgroups(7), bpf(2), eventfd(2), inotify(7).
"""
from .base import FREEZE_TIMEOUT, KILL_TIMEOUT, Manager
from .discovery import UNIFIED, Hierarchies, at_root, discover
from .fs import CHECKED, REAL, REMOVE_TIMEOUT, CgroupFs
from .values import parse, validate

__all__ = ["new_manager", "load_manager", "validate", "oom_note", "discover", "at_root", "Hierarchies",
           "Manager", "CgroupFs", "UNIFIED", "FREEZE_TIMEOUT", "KILL_TIMEOUT",
           "REMOVE_TIMEOUT"]


def new_manager(cgroup_config, root=None, fs=None, field="cgroups", driver=None):
    """A manager for ``cgroup_config`` (``minins.config.Cgroup`` or anything with its
    attributes); nothing is created until :meth:`~.base.Manager.apply`.

    ``root``: ``None`` to discover this host's hierarchies; a :class:`Hierarchies`; or a
    directory laid out like ``/sys/fs/cgroup`` (see :func:`at_root`). The v1 driver is used
    when any v1 hierarchy is mounted (legacy and hybrid hosts, as the seed did), the v2
    driver on a unified host; ``driver="v2"`` (or ``"v1"``) forces one, e.g. the v2 driver
    on a hybrid host's unified hierarchy. With no name in the config a unique one is made up.
    """
    settings = parse(cgroup_config, field)
    if root is None:
        hier = discover()
    elif isinstance(root, Hierarchies):
        hier = root
    else:
        hier = at_root(root)
    name = settings.name or _unique_name()
    fs = fs or REAL
    if driver not in (None, "v1", "v2"):
        raise ValueError("driver must be None, 'v1' or 'v2', not %r" % (driver,))
    if hier.v1 and driver != "v2":
        from .v1 import V1Manager

        return V1Manager.create(settings, hier, fs, name, field)
    if hier.unified and driver != "v1":
        from .v2 import V2Manager

        return V2Manager.create(settings, hier, fs, name, field)
    from ..errors import ContainerError

    raise ContainerError("%s: no cgroup %s hierarchy is mounted (see /proc/self/mountinfo)"
                         % (field, driver or "v1 or v2"))


def load_manager(paths, fs=None):
    """Rebuild a manager from ``paths`` (``state.json``'s ``cgroup_paths``) to freeze,
    thaw, list, kill, read stats or OOM events, join or destroy a running container.
    Saved paths are input: by default the removal goes through
    :data:`~.fs.CHECKED` (rmdir of cgroupfs directories only, never into another
    filesystem)."""
    fs = fs or CHECKED
    paths = dict(paths or {})
    if not paths:
        from ..errors import StateError

        raise StateError("no cgroup paths were saved for this container")
    if set(paths) == {UNIFIED}:
        from .v2 import V2Manager

        return V2Manager(None, paths, fs)
    from .v1 import V1Manager

    return V1Manager(None, paths, fs)


def oom_note(mgr, memory=0):
    """``"OOM-killed (memory limit N)"`` (``memory``: the configured limit in bytes, 0 for
    none) when the kernel's OOM killer has killed a process in ``mgr``'s memory cgroup, else
    ``None``. Call it before ``mgr.destroy()``, to say why a container's init died: the
    counter goes with the cgroup. Never raises (``None`` when it cannot tell)."""
    try:
        kills = mgr.oom_kills() if mgr is not None else None
    except (OSError, NotImplementedError):
        return None
    if not kills:
        return None
    return "OOM-killed (memory limit %d)" % memory if memory and memory > 0 else "OOM-killed"


def _unique_name():
    import os

    return "minins-" + os.urandom(6).hex()
