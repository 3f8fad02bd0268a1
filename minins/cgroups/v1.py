"""The cgroup v1 driver: one directory per hierarchy, written straight to cgroupfs.

Every subsystem of the seed (devices, memory, cpu, cpuset, cpuacct, blkio, perf_event,
freezer) plus pids, in the fixed order of :data:`~.values.V1_SUBSYSTEMS`: each directory is
made and filled with its limits before the process joins any of them, so the container never
runs unconfined; joining writes the pid to ``cgroup.procs``. A failure anywhere undoes
everything: the pid goes back to the caller's own cgroups (where a process the caller forked
starts) and the directories made are removed.

On a hybrid host the v2 hierarchy is used as well (key ``unified``): it has no controllers
there, but it gives ``cgroup.kill``, which kills a whole container atomically.

Kernel: Documentation/admin-guide/cgroup-v1/{cgroups,cpusets,devices,memory,freezer-subsystem,
pids}.rst, blkio-controller.rst; Documentation/scheduler/sched-bwc.rst.
"""
import errno as _errno
import time as _time

from ..errors import ContainerError, SyscallError
from . import values
from .base import FREEZE_TIMEOUT, FsManager, cgroup_path, poll_until, wait_events
from .discovery import UNIFIED


class V1Manager(FsManager):
    driver = "cgroupfs-v1"

    def __init__(self, settings, paths, fs, hier=None, field="cgroups", bases=None):
        FsManager.__init__(self, settings, paths, fs, field)
        self._hier = hier
        self._bases = bases or {}

    @classmethod
    def create(cls, settings, hier, fs, name, field="cgroups"):
        rel = cgroup_path(settings, name)
        paths, bases = {}, {}
        wanted = values.units(values.plan_v1(settings))
        for subsystem in values.V1_SUBSYSTEMS:
            if subsystem in values.V1_ON_DEMAND and subsystem not in wanted:
                continue  # made only for a container that sets its limits
            if subsystem in hier.v1:
                paths[subsystem], bases[subsystem] = hier.place(subsystem, rel)
        if hier.unified:
            paths[UNIFIED], bases[UNIFIED] = hier.place(UNIFIED, rel)
        return cls(settings, paths, fs, hier, field, bases)

    # --- apply -----------------------------------------------------------------------------

    def _build(self, pid, created, joined):
        """Check, create, write the limits, join ``pid`` (see FsManager.apply)."""
        values.check_version(self.settings, False, self.field)
        plan = values.plan_v1(self.settings)
        for subsystem, field in values.units(plan).items():
            if subsystem not in self.paths:
                raise ContainerError("%s.%s: needs the %s controller, which no mounted "
                                     "cgroup v1 hierarchy has" % (self.field, field, subsystem))
        by_unit = {}
        for w in plan:
            by_unit.setdefault(w.unit, []).append(w)
        for path, keys in self._groups():
            hook = self._copy_cpuset if "cpuset" in keys else None
            self._mkdirs(path, self._bases[keys[0]], created, hook)
            for key in keys:
                for w in by_unit.get(key, ()):
                    self._write_one(path, w)
        self._join(pid, joined)

    def _groups(self):
        """``[(directory, [keys])]``: co-mounted subsystems (cpu,cpuacct) share one."""
        groups = {}
        for key, path in self.paths.items():
            groups.setdefault(path, []).append(key)
        return list(groups.items())

    def _copy_cpuset(self, path, leaf):
        # A new cpuset has no cpus and no mems, and no task can enter it until it has both:
        # copy them from the parent, unless the config sets them on the leaf.
        parent = path.rsplit("/", 1)[0]
        for name in ("cpus", "mems"):
            if leaf and getattr(self.settings, "cpuset_" + name):
                continue
            value = self.fs.read("%s/cpuset.%s" % (parent, name)).strip()
            self.fs.write("%s/cpuset.%s" % (path, name), value)

    def _write_one(self, path, w):
        """Write ``w`` to the first of its files that exists (ENOENT: try the next); an
        optional write is skipped when none does. Device rules share one open file."""
        for n, name in enumerate(w.files):
            try:
                if isinstance(w.value, tuple):
                    self.fs.write_lines(path + "/" + name, w.value)
                else:
                    self.fs.write(path + "/" + name, w.value)
                return
            except SyscallError as e:
                if e.errno == _errno.ENOENT and e.op == "open":
                    if n + 1 < len(w.files) or w.optional:
                        continue
                    raise ContainerError(
                        "%s.%s: %s has no %s (is that feature of the %s controller enabled "
                        "in this kernel?)" % (self.field, w.field, path,
                                              " or ".join(w.files), w.unit))
                raise SyscallError(e.errno, "write", e.path,
                                   "%s.%s: %s" % (self.field, w.field, e.detail or w.value))

    def _join(self, pid, joined):
        pid = str(pid)
        for path, keys in self._groups():
            self.fs.write(path + "/cgroup.procs", pid)
            joined.extend(keys)

    def join(self, pid):
        self._join(pid, [])

    def set_settings(self, settings, field="cgroups"):
        """Write the changed limit files (see :meth:`~.base.Manager.set`). A memory limit
        above the current memory+swap limit is refused by the kernel (EINVAL): then
        memory+swap goes first."""
        values.check_version(settings, False, field)
        plan = [w for w in values.plan_v1(settings, update=True) if w.unit != "devices"]
        for subsystem, name in values.units(plan).items():
            if subsystem not in self.paths:
                raise ContainerError("%s.%s: needs the %s controller, which this container's "
                                     "cgroups do not have" % (field, name, subsystem))
        saved, self.field = self.field, field
        try:
            pending = list(plan)
            while pending:
                w = pending.pop(0)
                try:
                    self._write_one(self.paths[w.unit], w)
                except SyscallError as e:
                    swap = [x for x in pending if x.field == "memory_swap"]
                    if w.field != "memory" or e.errno != _errno.EINVAL or not swap:
                        raise
                    self._write_one(self.paths[w.unit], swap[0])
                    pending.remove(swap[0])
                    self._write_one(self.paths[w.unit], w)
        finally:
            self.field = saved

    # --- freezer, pids, kill ---------------------------------------------------------------

    def _freezer(self):
        path = self.paths.get("freezer")
        if path is None:
            raise ContainerError("%s: no freezer: no cgroup v1 hierarchy has the freezer "
                                 "controller" % self.field)
        return path + "/freezer.state"

    def freezer_state(self):
        state = self.fs.read(self._freezer()).strip()
        return state if state in (values.FROZEN, values.THAWED) else values.FREEZING

    def freeze(self, timeout=FREEZE_TIMEOUT):
        path = self._freezer()
        deadline = _time.monotonic() + timeout
        self.fs.write(path, values.FROZEN)
        tries = [0]

        def frozen():
            state = self.fs.read(path).strip()
            if state == values.FROZEN:
                return True
            tries[0] += 1
            if tries[0] % 16 == 0:
                # Asking again makes the kernel re-signal tasks that slipped through.
                self.fs.write(path, values.FROZEN)
            return False

        if not poll_until(frozen, deadline):
            self.fs.write(path, values.THAWED)
            raise ContainerError("%s: freeze: %s still FREEZING after %.1f s (thawed it "
                                 "again); a task may be stuck in the kernel"
                                 % (self.field, path, timeout))

    def thaw(self, timeout=FREEZE_TIMEOUT):
        path = self._freezer()
        self.fs.write(path, values.THAWED)
        if not poll_until(lambda: self.fs.read(path).strip() == values.THAWED,
                          _time.monotonic() + timeout):
            raise ContainerError("%s: thaw: %s not THAWED after %.1f s"
                                 % (self.field, path, timeout))

    def pids(self):
        for key in ("freezer", "devices"):
            if key in self.paths:
                return self._pids_under(self.paths[key])
        return self._pids_under(self._dirs()[0])

    def _kill_file(self):
        path = self.paths.get(UNIFIED)
        if path and self.fs.exists(path + "/cgroup.kill"):
            return path + "/cgroup.kill"
        return None

    def _thaw_after_kill(self):
        if "freezer" in self.paths and self.freezer_state() != values.THAWED:
            self.thaw()

    def _wait_empty(self, deadline):
        if self._kill_file():
            return wait_events(self.fs, self.paths[UNIFIED], "populated", "0", deadline)
        return poll_until(lambda: not self.pids(), deadline)

    # --- stats, oom ------------------------------------------------------------------------

    def stats(self):
        from .stats import stats_v1

        return stats_v1(self.paths, self.fs)

    def oom_kills(self):
        from .oom import oom_kill_count

        if "memory" not in self.paths:
            return None
        return oom_kill_count(self.fs.read(self.paths["memory"] + "/memory.oom_control"))

    def oom_events(self):
        from .oom import V1OomEvents

        if "memory" not in self.paths:
            raise ContainerError("%s: OOM events need the memory controller, which no "
                                 "mounted cgroup v1 hierarchy has" % self.field)
        return V1OomEvents(self.paths["memory"], self.fs)
