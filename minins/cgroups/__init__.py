"""cgroups: limits, the freezer, kill-all, stats and OOM events, for v1 and v2 hosts.

    from minins import cgroups
    mgr = cgroups.new_manager(cfg.cgroups)  # v1 driver on legacy/hybrid hosts, v2 on unified
    mgr.apply(pid)                          # create, set limits, put pid in (undone on error)
    mgr.freeze(); mgr.thaw(); mgr.freezer_state()
    mgr.pids(); mgr.stats(); mgr.oom_events(); mgr.join(other_pid)
    mgr.set(new_limits)                     # the update path; or, from a state:
    cgroups.update(state, resources.to_cgroup(r, update=True))  # runc update -r
    mgr.kill_all(); mgr.destroy()
    state.update(mgr.to_state())            # later: cgroups.load_manager_from_state(state)

Two drivers implement :class:`.base.Manager`: cgroupfs (:mod:`.v1`, :mod:`.v2`: minins
writes the cgroup files itself) and systemd (:mod:`.systemd`: a transient scope unit over
D-Bus, cgroupfs for the rest), chosen by the config's ``driver`` (``cgroupfs`` by default).
The state records which one made the cgroups (``cgroup_driver``) and the unit
(``cgroup_unit``), and every later command uses that one. Nothing here is imported until a
command needs it; :func:`validate` (pure) is what the config checker calls.

Kernel: Documentation/admin-guide/cgroup-v1/, Documentation/admin-guide/cgroup-v2.rst;
man pages: cgroups(7), bpf(2), eventfd(2), inotify(7).
"""
from .values import parse, validate  # pure: what the config checker imports

# The appliers load on first use, so that importing this package (to validate) loads none.
_LAZY = {"FREEZE_TIMEOUT": "base", "KILL_TIMEOUT": "base", "Manager": "base",
         "UNIFIED": "discovery", "Hierarchies": "discovery", "at_root": "discovery",
         "discover": "discovery", "CHECKED": "fs", "REAL": "fs", "REMOVE_TIMEOUT": "fs",
         "CgroupFs": "fs"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import importlib

    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value

__all__ = ["new_manager", "load_manager", "load_manager_from_state", "update", "validate", "oom_note", "discover", "at_root", "Hierarchies",
           "Manager", "CgroupFs", "UNIFIED", "FREEZE_TIMEOUT", "KILL_TIMEOUT",
           "REMOVE_TIMEOUT"]


def new_manager(cgroup_config, root=None, fs=None, field="cgroups", driver=None,
                connect=None):  # noqa: C901
    """A manager for ``cgroup_config`` (``minins.config.Cgroup`` or anything with its
    attributes); nothing is created until :meth:`~.base.Manager.apply`.

    The config's ``driver`` picks cgroupfs (``""`` or ``"cgroupfs"``) or systemd
    (``"systemd"``: a scope ``<scope_prefix>-<name>.scope`` in ``slice``); asking for
    systemd on a host not booted with it is a :class:`~minins.errors.ConfigError` naming
    ``<field>.driver``. ``root``: ``None`` to discover this host's hierarchies; a
    :class:`Hierarchies`; or a directory laid out like ``/sys/fs/cgroup`` (see
    :func:`at_root`). The cgroupfs v1 driver is used when any v1 hierarchy is mounted
    (legacy and hybrid hosts, as the seed did), the v2 driver on a unified host;
    ``driver="v2"`` (or ``"v1"``) forces one, e.g. the v2 driver on a hybrid host's unified
    hierarchy; ``driver="systemd"`` forces the systemd driver. ``connect``: a callable
    returning a :class:`minins.dbus.systemd.Systemd` (tests; default: systemd's private
    socket, else the system bus). With no name in the config a unique one is made up.
    """
    from .discovery import Hierarchies, at_root, discover
    from .fs import REAL

    settings = parse(cgroup_config, field)
    if driver == "systemd" or (driver is None and settings.driver == "systemd"):
        from . import systemd

        if connect is None:
            systemd.check(field)
        hier = discover() if root is None else (
            root if isinstance(root, Hierarchies) else at_root(root))
        return systemd.SystemdManager.create(settings, hier, fs or REAL,
                                             settings.name or _unique_name(), field, connect)
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


DRIVERS = ("cgroupfs-v1", "cgroupfs-v2", "systemd-v1", "systemd-v2")


def load_manager(paths, fs=None, driver=None, unit=None, connect=None):
    """Rebuild a manager from what ``state.json`` recorded -- ``paths``
    (``cgroup_paths``), ``driver`` (``cgroup_driver``: one of :data:`DRIVERS`, the
    ``driver`` of the manager that made them) and ``unit`` (``cgroup_unit``, the systemd
    driver's scope) -- to freeze, thaw, list, kill, update, read stats or OOM events, join
    or destroy a running container. ``driver=None`` is for states written before the
    driver was recorded: the cgroupfs driver, v1 or v2 as ``paths`` show."""
    from .discovery import UNIFIED
    from .fs import CHECKED

    from ..errors import StateError

    fs = fs or CHECKED  # saved paths are input: rmdir of cgroupfs directories only
    paths = dict(paths or {})
    if not paths:
        raise StateError("no cgroup paths were saved for this container")
    if driver is not None and driver not in DRIVERS:
        raise StateError("cgroup_driver %r is not one of %s" % (driver, ", ".join(DRIVERS)))
    if driver in ("systemd-v1", "systemd-v2"):
        if not unit:
            raise StateError("cgroup_driver %s needs the unit's name (cgroup_unit)" % driver)
        from .systemd import SystemdManager

        return SystemdManager.load(paths, unit, driver == "systemd-v2", fs, connect)
    if driver == "cgroupfs-v2" or (driver is None and set(paths) == {UNIFIED}):
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


def load_manager_from_state(state, fs=None, connect=None):
    """:func:`load_manager` with the ``cgroup_paths``, ``cgroup_driver`` and
    ``cgroup_unit`` of a state (``minins.state.load``), or ``None`` when the container has
    no cgroups."""
    if not state.get("cgroup_paths"):
        return None
    return load_manager(state["cgroup_paths"], fs, state.get("cgroup_driver"),
                        state.get("cgroup_unit"), connect)


def update(target, resources, field="cgroups", connect=None):
    """Change the limits of a running container (``runc update``): ``target`` is its
    :class:`Manager`, or its state (a dict with ``cgroup_paths``, ``cgroup_driver``,
    ``cgroup_unit``, as ``minins.state`` loads it); ``resources`` a
    ``minins.config.Cgroup``, or a dict of its fields (what
    :func:`minins.oci.resources.to_cgroup` returns). Unset fields (0, ``""``, -1 where 0
    is a value, empty lists) stay as they are; device rules and the freezer are not
    changed. Returns the manager.

    Raises :class:`~minins.errors.ConfigError` naming ``field`` for a bad value or one this
    cgroup version cannot take, :class:`~minins.errors.StateError` when the container has
    no cgroups, :class:`~minins.errors.SyscallError` when the kernel refuses a value."""
    mgr = target
    if isinstance(target, dict):
        mgr = load_manager_from_state(target, connect=connect)
        if mgr is None:
            from ..errors import StateError

            raise StateError("the container has no cgroups to update")
    if isinstance(resources, dict):
        from ..config import Cgroup

        resources = Cgroup(**resources)
    mgr.set(resources, field)
    return mgr


def _unique_name():
    import os

    return "minins-" + os.urandom(6).hex()
