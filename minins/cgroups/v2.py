"""The cgroup v2 driver: one directory in the unified hierarchy.

Limits go to ``memory.max``, ``memory.low``, ``memory.swap.max``, ``cpu.weight`` (from the
seed's shares), ``cpu.max``, ``cpuset.cpus``/``cpuset.mems``, ``io.weight`` and
``pids.max``; device rules become a BPF program (:mod:`.bpf_devices`). Everything is set
before the process joins through ``cgroup.procs``; a failure undoes it all.

Controllers: a cgroup can use a controller only if its parent lists it in
``cgroup.subtree_control``, and a cgroup that holds processes cannot enable any there (the
"no internal processes" rule), except the root. So the driver enables controllers only in
the parents it creates, and checks before creating anything that the cgroup it builds under
already delegates the ones the config needs; when it does not, or when the controller is
bound to a v1 hierarchy (hybrid hosts), the error says which and where.

Kernel: Documentation/admin-guide/cgroup-v2.rst.
"""
import errno as _errno
import time as _time

from ..errors import ContainerError, SyscallError
from . import values
from .base import FREEZE_TIMEOUT, FsManager, cgroup_path, wait_events
from .discovery import UNIFIED

# Enabled in parents the driver creates even when the config sets no limit, for stats.
_STATS_CONTROLLERS = ("cpu", "io", "memory", "pids")


class V2Manager(FsManager):
    driver = "cgroupfs-v2"

    def __init__(self, settings, paths, fs, hier=None, field="cgroups", base=None):
        FsManager.__init__(self, settings, paths, fs, field)
        self._hier = hier
        self._base = base
        self._prepared = None  # what prepare() created, until admit()

    @classmethod
    def create(cls, settings, hier, fs, name, field="cgroups"):
        path, base = hier.place(UNIFIED, cgroup_path(settings, name))
        return cls(settings, {UNIFIED: path}, fs, hier, field, base)

    @property
    def path(self):
        return self.paths[UNIFIED]

    # --- apply -----------------------------------------------------------------------------

    def _build(self, pid, created, joined):
        """Check, create, write the limits, join ``pid`` (see FsManager.apply)."""
        values.check_version(self.settings, True, self.field)
        plan = values.plan_v2(self.settings)
        needed = values.units(plan)
        self._check_controllers(needed)
        rules = self.settings.rules
        wanted = set(needed) | set(_STATS_CONTROLLERS)
        self._mkdirs(self.path, self._base, created,
                     lambda path, leaf: leaf or self._delegate(path, needed, wanted))
        self._write_plan(plan)
        if rules is not None:
            # a cgroup made just now has no program to replace: no need to ask
            self.fs.attach_devices(self.path, rules, replace=self.path not in created)
        if pid is not None:
            self.fs.write(self.path + "/cgroup.procs", str(pid))
            joined.append(UNIFIED)

    # --- a process born in the cgroup (clone3 CLONE_INTO_CGROUP) ----------------------------

    def prepare(self):
        """:meth:`apply` without a process: create the cgroup and write every limit, and
        return a descriptor of its directory (``O_PATH``) to clone a process into
        (:func:`minins.libc.fork_into_cgroup`); :meth:`admit` then finishes. A born process
        makes no migration, so it waits for no RCU grace period (about 10 ms). On failure
        nothing is left and the error is raised."""
        if self._loaded or self._applied or self._prepared is not None:
            raise ContainerError("%s: prepare needs a new manager" % self.field)
        created = []
        try:
            self._build(None, created, [])
            fd = self.open_dir()
        except BaseException:
            self._undo(None, [], created)
            raise
        self._prepared = self._created = created  # destroy() removes them until admit()
        return fd

    def open_dir(self):
        """A descriptor (``O_PATH``, close-on-exec) of the container's cgroup directory, to
        clone a process into (:func:`minins.libc.fork_into_cgroup`); the caller closes it.
        Raises :class:`SyscallError`."""
        import os

        try:
            return os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno, "open", self.path) from None

    def admit(self, pid, born):
        """After :meth:`prepare`: ``pid`` is the container's process, ``born`` in the cgroup
        or (when the clone into it could not be made) to be moved there now; then freeze
        when the config says FROZEN. On failure as :meth:`apply`."""
        created, self._prepared = self._prepared, None
        joined = [UNIFIED] if born else []
        try:
            if not born:
                self.fs.write(self.path + "/cgroup.procs", str(pid))
                joined.append(UNIFIED)
            if self.settings.freezer == values.FROZEN:
                self.freeze()
        except BaseException:
            self._undo(pid, joined, created)
            self._created = []
            raise
        self._created = created
        self._applied = True

    def _check_controllers(self, needed):
        """Fail before creating anything when a needed controller cannot be had."""
        if not needed:
            return
        parent = self.path.rsplit("/", 1)[0]
        while len(parent) > len(self._base) and not self.fs.exists(parent):
            parent = parent.rsplit("/", 1)[0]
        enabled = set(self.fs.read(parent + "/cgroup.subtree_control").split())
        missing = [c for c in needed if c not in enabled]
        if not missing:
            return
        root = self._hier.unified
        available = set(self.fs.read(root + "/cgroup.controllers").split())
        c = missing[0]
        where = "%s.%s: needs the %s controller" % (self.field, needed[c], c)
        if c not in available:
            v1 = self._hier.v1.get(c) if self._hier else None
            raise ContainerError("%s, which is not available in the cgroup v2 hierarchy at "
                                 "%s%s" % (where, root, " (it is bound to the cgroup v1 "
                                                        "hierarchy at %s)" % v1 if v1 else ""))
        raise ContainerError(
            "%s, which %s does not delegate (it is not in its cgroup.subtree_control, which "
            "has: %s). A cgroup that holds processes cannot enable controllers for its "
            "children; run minins from a cgroup that delegates %s, or give an absolute "
            "cgroups.parent" % (where, parent, " ".join(sorted(enabled)) or "nothing",
                                " ".join(missing)))

    def _delegate(self, path, needed, wanted):
        """Enable controllers for the children of a parent this driver created."""
        available = self.fs.read(path + "/cgroup.controllers").split()
        must = [c for c in available if c in needed]
        extra = [c for c in available if c in wanted and c not in needed]
        if must:
            self.fs.write(path + "/cgroup.subtree_control", " ".join("+" + c for c in must))
        for c in extra:
            try:
                self.fs.write(path + "/cgroup.subtree_control", "+" + c)
            except SyscallError:
                pass  # only for stats

    def _write_plan(self, plan):
        for w in plan:
            try:
                if isinstance(w.value, tuple):
                    self.fs.write_lines(self.path + "/" + w.files[0], w.value)
                else:
                    self.fs.write(self.path + "/" + w.files[0], w.value)
            except SyscallError as e:
                if e.errno == _errno.ENOENT and e.op == "open" and not w.optional:
                    raise ContainerError("%s.%s: %s has no %s (is the %s controller enabled "
                                         "for it, and is the feature in this kernel?)" % (
                                             self.field, w.field, self.path, w.files[0],
                                             w.unit or "cgroup"))
                if w.optional and e.errno == _errno.ENOENT and e.op == "open":
                    continue  # no swap accounting, and swap was not asked for
                raise SyscallError(e.errno, "write", e.path,
                                   "%s.%s: %s" % (self.field, w.field, e.detail or w.value))

    def join(self, pid):
        self.fs.write(self.path + "/cgroup.procs", str(pid))

    def set_settings(self, settings, field="cgroups"):
        """Write the changed limit files (see :meth:`~.base.Manager.set`)."""
        values.check_version(settings, True, field)
        plan = values.plan_v2(settings, update=True)
        if settings.cpu_period and not settings.cpu_quota:
            # cpu.max takes both numbers: keep the quota the cgroup has
            quota = self.fs.read(self.path + "/cpu.max").split()[0]
            plan = [values.Write(w.unit, w.files, "%s %d" % (quota, settings.cpu_period),
                                 w.field) if w.files == ("cpu.max",) else w for w in plan]
        saved, self.field = self.field, field
        try:
            self._write_plan(plan)
        finally:
            self.field = saved

    # --- freezer, pids, kill ---------------------------------------------------------------

    def freezer_state(self):
        events = self.fs.read(self.path + "/cgroup.events").split()
        if "frozen" in events and events[events.index("frozen") + 1] == "1":
            return values.FROZEN
        if self.fs.read(self.path + "/cgroup.freeze").strip() == "1":
            return values.FREEZING
        return values.THAWED

    def freeze(self, timeout=FREEZE_TIMEOUT):
        self._set_frozen("1", timeout)

    def thaw(self, timeout=FREEZE_TIMEOUT):
        self._set_frozen("0", timeout)

    def _set_frozen(self, want, timeout):
        if not self.fs.exists(self.path + "/cgroup.freeze"):
            raise ContainerError("%s: %s has no cgroup.freeze (the v2 freezer needs Linux "
                                 "5.2)" % (self.field, self.path))
        self.fs.write(self.path + "/cgroup.freeze", want)
        if wait_events(self.fs, self.path, "frozen", want, _time.monotonic() + timeout):
            return
        if want == "1":
            self.fs.write(self.path + "/cgroup.freeze", "0")
        raise ContainerError("%s: %s: %s not %s after %.1f s%s" % (
            self.field, "freeze" if want == "1" else "thaw", self.path,
            "frozen" if want == "1" else "thawed", timeout,
            " (thawed it again)" if want == "1" else ""))

    def pids(self):
        return self._pids_under(self.path)

    def _kill_file(self):
        kill = self.path + "/cgroup.kill"
        return kill if self.fs.exists(kill) else None

    def _wait_empty(self, deadline):
        return wait_events(self.fs, self.path, "populated", "0", deadline)

    # --- stats, oom ------------------------------------------------------------------------

    def stats(self):
        from .stats import stats_v2

        return stats_v2(self.path, self.fs)

    def oom_kills(self):
        from .oom import oom_kill_count

        if not self.fs.exists(self.path + "/memory.events"):
            return None
        return oom_kill_count(self.fs.read(self.path + "/memory.events")) or 0

    def oom_events(self):
        from .oom import V2OomEvents

        if not self.fs.exists(self.path + "/memory.events"):
            raise ContainerError("%s: OOM events need the memory controller, which %s does "
                                 "not have" % (self.field, self.path))
        return V2OomEvents(self.path, self.fs)
