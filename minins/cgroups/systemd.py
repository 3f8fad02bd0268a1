"""The systemd cgroup driver: the container's cgroup is a transient scope unit.

On a host booted with systemd, systemd owns the cgroup tree: a runtime that makes cgroups
behind its back may see them moved or removed. This driver asks systemd instead, over D-Bus
(:mod:`minins.dbus.systemd`), as runc's and crun's systemd drivers do:

1. ``StartTransientUnit`` of ``<prefix>-<name>.scope`` (runc's naming; prefix ``minins``
   by default) in ``cgroups.slice`` (default ``system.slice``) with ``PIDs=[pid]``,
   ``Delegate=yes`` (the subtree is the container's), ``DefaultDependencies=no`` (not
   stopped before the runtime at shutdown), the ``*Accounting=yes`` properties and the
   limits systemd has properties for, in the names of the host's cgroup version
   (:func:`~.values.systemd_properties`); then it waits, bounded, for the job's
   ``JobRemoved`` and checks its result is ``done``.
2. The cgroupfs driver for the same directories (``/sys/fs/cgroup/<slice path>/<unit>``)
   writes what systemd has no property for (on v1: swap, the soft limit, cpusets), the CPU
   quota exactly (systemd rounds it to whole percents) and the device rules (a BPF program
   on v2, which replaces systemd's), and makes the v1 hierarchies systemd does not manage
   (cpuset, freezer, perf_event).
3. Freeze, thaw, pids, kill-all, stats and OOM events are the cgroupfs driver's, on those
   directories. ``set`` changes limits with ``SetUnitProperties`` and cgroupfs. ``destroy``
   stops the unit (``StopUnit``, waiting for its job; a unit systemd already collected is
   fine) and removes what the cgroupfs driver made.

Reference: systemd.scope(5), systemd.resource-control(5), org.freedesktop.systemd1(5);
runc's libcontainer/cgroups/systemd (the unit name and property choices).
"""
import errno as _errno
import os as _os
import time as _time

from ..errors import ConfigError, ContainerError, DBusError, SyscallError
from . import values
from .base import FREEZE_TIMEOUT, KILL_TIMEOUT, Manager
from .discovery import UNIFIED
from .fs import REMOVE_TIMEOUT

JOB_TIMEOUT = 30.0  # seconds for systemd's start or stop job
COLLECT_WAIT = 5.0  # seconds to let systemd collect a scope whose processes are all gone


class SystemdManager(Manager):
    """A container's cgroups as the scope ``unit`` of systemd; the cgroupfs driver
    (``fs_manager``: :class:`~.v2.V2Manager` or :class:`~.v1.V1Manager`) works on the
    scope's directories."""

    def __init__(self, settings, unit, slice_, fs_manager, unified, field="cgroups",
                 connect=None):
        self.settings = settings  # None when loaded from a state
        self.unit = unit
        self.slice = slice_
        self.fs_manager = fs_manager
        self.unified = unified
        self.field = field
        self._connect = connect
        self._applied = False
        self._started = False

    @property
    def driver(self):
        return "systemd-v2" if self.unified else "systemd-v1"

    @property
    def paths(self):
        return self.fs_manager.paths

    @classmethod
    def create(cls, settings, hier, fs, name, field="cgroups", connect=None):
        """A manager for a new scope; nothing happens until :meth:`apply`."""
        from .v1 import V1Manager
        from .v2 import V2Manager

        prefix = settings.scope_prefix or values.DEFAULT_SCOPE_PREFIX
        unit = values.scope_name(prefix, name, field + ".name")
        slice_ = settings.slice or values.DEFAULT_SLICE
        slice_path = values.expand_slice(slice_, field + ".slice")
        # the cgroupfs side: an absolute cgroup /<slice path>/<unit>, joined where systemd
        # made it, created where it did not (v1 hierarchies systemd leaves alone)
        rest = settings.copy(parent="/" + slice_path, name=unit)
        if hier.v1:
            fs_manager = V1Manager.create(rest, hier, fs, unit, field)
        elif hier.unified:
            fs_manager = V2Manager.create(rest, hier, fs, unit, field)
        else:
            raise ContainerError("%s: no cgroup hierarchy is mounted (see "
                                 "/proc/self/mountinfo)" % field)
        return cls(settings, unit, slice_, fs_manager, not hier.v1, field, connect)

    @classmethod
    def load(cls, paths, unit, unified, fs, connect=None):
        """The manager of a running container, from what its state recorded."""
        from .v1 import V1Manager
        from .v2 import V2Manager

        fs_manager = (V2Manager if unified else V1Manager)(None, paths, fs)
        return cls(None, unit, None, fs_manager, unified, "cgroups", connect)

    def _systemd(self):
        """A connection to systemd; a one-line error naming the driver setting when
        systemd does not answer."""
        from ..dbus import systemd

        try:
            return self._connect() if self._connect is not None else systemd.connect()
        except (OSError, DBusError) as e:
            raise ContainerError("%s.driver: systemd does not answer on D-Bus (%s)"
                                 % (self.field, e)) from None

    # --- apply ---------------------------------------------------------------------------------

    def apply(self, pid):
        """Start the scope with ``pid`` in it, wait for systemd's job, then let cgroupfs
        write the rest. On any failure the unit is stopped again before raising."""
        if self.settings is None or self._applied:
            raise ContainerError("%s: apply needs a new manager (this one %s)" % (
                self.field, "was loaded from a state" if self.settings is None else "applied"))
        sd = self._systemd()
        try:
            version = sd.version()
            props, rest = values.systemd_properties(self.settings, self.unified, version,
                                                    self._majors())
            self._start(sd, pid, props + values.accounting_properties(self.unified, version))
            # same directories, the limits systemd did not take; it also freezes if asked
            self.fs_manager.settings = rest.copy(parent="/" + values.expand_slice(self.slice),
                                                 name=self.unit)
            self.fs_manager.apply(pid)
        except BaseException:
            if self._started:
                try:
                    self._stop(sd)
                except Exception:
                    pass  # the error that brought us here is the one to see
            sd.close()
            raise
        sd.close()
        self._applied = True

    def _majors(self):
        if not self.settings.rules or all(r[2] >= 0 or r[1] < 0 for r in self.settings.rules):
            return {}
        try:
            with open("/proc/devices") as f:
                return values.parse_proc_devices(f.read())
        except OSError:
            return {}

    def _start(self, sd, pid, props):
        base = [("Description", "s", "minins container %s" % self.unit),
                ("Slice", "s", self.slice),
                ("PIDs", "au", [pid]),
                ("Delegate", "b", True),
                ("DefaultDependencies", "b", False)]
        try:
            job = sd.start_transient_unit(self.unit, base + props, mode="replace")
        except DBusError as e:
            if e.name != "org.freedesktop.systemd1.UnitExists":
                raise
            # A scope whose stop timed out (the init, PID 1 of its namespace, ignores
            # SIGTERM) stays loaded as failed and keeps its name: reset it (runc does) and
            # start once more. An active unit is another container's: refused.
            if not self._reset_failed(sd):
                raise ContainerError(
                    "%s: systemd has a unit %s already (another container of that name, or "
                    "one left behind: systemctl stop %s)" % (self.field, self.unit, self.unit))
            job = sd.start_transient_unit(self.unit, base + props, mode="replace")
        self._started = True
        result = sd.wait_job(job, JOB_TIMEOUT)
        if result != "done":
            raise ContainerError("%s: systemd did not start %s: %s" % (
                self.field, self.unit, "no JobRemoved for %s within %.0f s" % (job, JOB_TIMEOUT)
                if result is None else "its job ended %r (see journalctl -u %s)"
                % (result, self.unit)))

    def _reset_failed(self, sd, wait=COLLECT_WAIT):
        """When the unit is loaded and failed: ``ResetFailedUnit``, then wait (``wait``
        seconds at most) until systemd has collected it. True when that happened."""
        from .base import poll_until

        if self._active_state(sd) != "failed":
            return False
        try:
            sd.reset_failed_unit(self.unit)
        except DBusError as e:
            if e.name != "org.freedesktop.systemd1.NoSuchUnit":
                raise
        return poll_until(lambda: self._active_state(sd) is None,
                          _time.monotonic() + wait, first=0.005, longest=0.1)

    def _stop(self, sd, timeout=JOB_TIMEOUT):
        """Stop the unit and wait for its job. A unit that is gone or inactive needs
        nothing; one that systemd is stopping by itself (its last process died) is waited
        for, not sent a StopUnit: in the guest, systemd 252 sometimes kept such a call
        unanswered for longer than any bound."""
        from .base import poll_until

        deadline = _time.monotonic() + timeout
        state = [self._active_state(sd)]

        def settled():
            if state[0] != "deactivating":
                return True
            state[0] = self._active_state(sd)
            return False

        if not poll_until(settled, deadline, first=0.02, longest=0.5):
            raise ContainerError("%s: systemd did not finish stopping %s within %.0f s"
                                 % (self.field, self.unit, timeout))
        if state[0] == "failed":
            self._reset_failed(sd, 0.0)  # the name is free again once systemd collects it
        if state[0] in (None, "inactive", "failed"):
            return
        try:
            job = sd.stop_unit(self.unit)
        except DBusError as e:
            if e.name == "org.freedesktop.systemd1.NoSuchUnit":
                return  # gone already: systemd collects a scope once it is empty
            raise
        result = sd.wait_job(job, max(0.0, deadline - _time.monotonic()))
        if result is None:
            result = self._stopped_anyway(sd)
        if result is None:
            raise ContainerError("%s: systemd did not stop %s within %.0f s"
                                 % (self.field, self.unit, timeout))
        if result not in ("done", "canceled"):
            raise ContainerError("%s: stopping %s ended %r (see journalctl -u %s)"
                                 % (self.field, self.unit, result, self.unit))

    def _active_state(self, sd):
        """The unit's ``ActiveState``, ``None`` when systemd has no such unit (loaded)."""
        from ..dbus import systemd

        try:
            return sd.unit_property(self.unit, systemd.UNIT, "ActiveState")
        except DBusError as e:
            if e.name == systemd.NO_SUCH_UNIT:
                return None
            raise

    def _stopped_anyway(self, sd):
        """``done`` when the unit is gone or inactive although no JobRemoved came (the job
        may have ended on a connection that was given up), else ``None``."""
        return "done" if self._active_state(sd) in (None, "inactive", "failed") else None

    # --- the update path -----------------------------------------------------------------------

    def set(self, resources, field="cgroups"):
        """New limits: ``SetUnitProperties`` for what systemd has properties for (runtime
        only), cgroupfs for the rest (see :meth:`~.base.Manager.set`)."""
        s = values.parse(resources, field)
        sd = self._systemd()
        try:
            props, rest = values.systemd_properties(s, self.unified, sd.version(), {},
                                                    update=True)
            if props:
                sd.set_unit_properties(self.unit, props)
        finally:
            sd.close()
        self.fs_manager.set_settings(rest, field)

    # --- the rest: the cgroupfs driver on the scope's directories ---------------------------

    def join(self, pid):
        self.fs_manager.join(pid)

    def freeze(self, timeout=FREEZE_TIMEOUT):
        self.fs_manager.freeze(timeout)

    def thaw(self, timeout=FREEZE_TIMEOUT):
        self.fs_manager.thaw(timeout)

    def freezer_state(self):
        return self.fs_manager.freezer_state()

    def pids(self):
        return self.fs_manager.pids()

    def kill_all(self, timeout=KILL_TIMEOUT):
        return self.fs_manager.kill_all(timeout)

    def stats(self):
        return self.fs_manager.stats()

    def oom_events(self):
        return self.fs_manager.oom_events()

    def destroy(self, timeout=REMOVE_TIMEOUT):
        """Stop the unit and wait for it (systemd removes the cgroups it made), then
        remove what the cgroupfs driver made. Calling it again retries."""
        if not self._collected(COLLECT_WAIT):
            sd = self._systemd()
            try:
                self._stop(sd, max(timeout, JOB_TIMEOUT))
            finally:
                sd.close()
        self.fs_manager.destroy(timeout)

    def _collected(self, wait):
        """True when the scope's cgroup is gone, or goes within ``wait`` seconds while
        empty: systemd stops and removes a scope whose processes are all gone by itself, so
        a container that ended needs no D-Bus call (nor does it meet systemd 252 busy
        collecting that very scope, which in the guest answered nothing for half a minute).
        False when processes are still in it, or there is no v2 directory to watch."""
        from .base import poll_until

        path = self.paths.get(UNIFIED)
        if path is None:
            return False
        busy = []

        def gone():
            try:
                events = self.fs_manager.fs.read(path + "/cgroup.events")
            except SyscallError as e:
                if e.errno in (_errno.ENOENT, _errno.ENODEV):
                    return True
                raise
            if "populated 1" in events:
                busy.append(True)
                return True
            return False

        poll_until(gone, _time.monotonic() + wait, first=0.005, longest=0.1)
        return not busy and not self.fs_manager.fs.exists(path)


def available(runtime_dir="/run/systemd/system"):
    """``None`` when systemd is the host's manager, else why not (for the one-line
    error)."""
    if not _os.path.isdir(runtime_dir):
        return "this host was not booted with systemd (%s does not exist)" % runtime_dir
    return None


def check(field="cgroups"):
    """Raise :class:`ConfigError` naming ``field.driver`` when systemd is not the host's
    manager; the manager's answer is checked when the scope is started."""
    why = available()
    if why is not None:
        raise ConfigError(field + ".driver", "systemd was asked for, but %s; use the "
                          "cgroupfs driver" % why)
