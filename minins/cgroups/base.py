"""The cgroup driver interface, and what the two cgroupfs drivers share.

:class:`Manager` is the one interface the container code calls; a driver is any class that
implements it. The v1 and v2 cgroupfs drivers (:mod:`.v1`, :mod:`.v2`) derive from
:class:`FsManager`; a systemd driver (transient scope units over D-Bus) would implement
:class:`Manager` directly and may reuse :class:`FsManager`'s freezer, kill and stats code on
the paths systemd gives it.

Kill-all follows the seed's ``killAllPids`` for containers without their own PID namespace:
``cgroup.kill`` where the kernel has it (v2, Linux 5.14+), otherwise freeze, SIGKILL every
pid, thaw (always, even on error); then wait until the cgroup is empty and reap the pids that
are this process's children. It repeats until nothing is left or its bound passes.

Man pages: kill(2), waitpid(2), poll(2); kernel: cgroup-v2.rst (cgroup.kill, cgroup.events),
cgroup-v1/freezer-subsystem.rst.
"""
import errno as _errno
import os as _os
import time as _time

from ..errors import ContainerError, SyscallError
from . import values
from .fs import REMOVE_TIMEOUT, remove_tree

FREEZE_TIMEOUT = 5.0
KILL_TIMEOUT = 10.0
SIGKILL = 9  # the same number on every Linux architecture


class Manager(object):
    """One container's cgroups. Every driver implements these.

    ``paths`` maps each subsystem (v1) or ``"unified"`` (v2) to the container's cgroup
    directory; it is what state.json keeps, and :func:`minins.cgroups.load_manager` rebuilds
    a manager from it in another process.
    """

    driver = None
    paths = None

    def apply(self, pid):
        """Create the cgroups, set every configured limit, put ``pid`` in. On failure undo
        what was created (and move ``pid`` back) before raising."""
        raise NotImplementedError

    def join(self, pid):
        """Put another process into every hierarchy of the container."""
        raise NotImplementedError

    def prime(self, member):
        """Get the kernel's wait for the next :meth:`join` under way in the background, if
        the driver can (see :meth:`FsManager.prime`); ``member`` is a pid in the container's
        cgroups. Never fails. The default does nothing."""

    def freeze(self, timeout=FREEZE_TIMEOUT):
        """Freeze, and return once the kernel reports FROZEN (raise after ``timeout``)."""
        raise NotImplementedError

    def thaw(self, timeout=FREEZE_TIMEOUT):
        raise NotImplementedError

    def freezer_state(self):
        """``FROZEN``, ``THAWED``, or ``FREEZING`` while the kernel is still at it."""
        raise NotImplementedError

    def pids(self):
        """The container's processes (its cgroup and the cgroups it made below it)."""
        raise NotImplementedError

    def kill_all(self, timeout=KILL_TIMEOUT):
        """SIGKILL every process of the container; return ``{pid: wait status}`` of those
        that were this process's children and were reaped."""
        raise NotImplementedError

    def stats(self):
        """``{"cgroup_stats": {...}}`` in the seed's JSON shape (see :mod:`.stats`)."""
        raise NotImplementedError

    def oom_events(self):
        """An :class:`~.oom.OomEvents` for the container's memory cgroup."""
        raise NotImplementedError

    def oom_kills(self):
        """How many processes the OOM killer has killed in the container's memory cgroup so
        far (the kernel's ``oom_kill`` counter), or ``None`` when that is not known (no
        memory controller; v1 before Linux 4.13). Read it before :meth:`destroy`: to tell
        that an init died of the memory limit. Raises SyscallError if the cgroup is gone."""
        raise NotImplementedError

    def set(self, resources, field="cgroups"):
        """Change the limits of a running container (the update path, ``runc update``):
        ``resources`` is a cgroup config (``minins.config.Cgroup``) whose set fields are
        the new values -- 0 or ``""`` leaves a limit as it is, -1 lifts it. Device rules
        and the freezer are not changed here. Raise :class:`ConfigError` for a bad value
        (named by ``field``), :class:`SyscallError` when the kernel refuses one."""
        raise NotImplementedError

    def destroy(self, timeout=REMOVE_TIMEOUT):
        """Remove the container's cgroups, retrying EBUSY with backoff until ``timeout``."""
        raise NotImplementedError

    unit = None  # the systemd unit that holds the cgroups (the systemd driver only)

    def to_state(self):
        """What ``state.json`` keeps so that :func:`minins.cgroups.load_manager_from_state`
        rebuilds this manager: ``cgroup_driver``, ``cgroup_unit`` and ``cgroup_paths``."""
        return {"cgroup_driver": self.driver, "cgroup_unit": self.unit or "",
                "cgroup_paths": dict(self.paths)}


class FsManager(Manager):
    """Shared code of the cgroupfs drivers. Subclasses give ``_build(pid, created, joined)``
    (what apply does between its checks and its undo), :meth:`pids`, the freezer,
    ``_kill_file()`` (``cgroup.kill`` or ``None``) and ``_wait_empty(deadline)``."""

    def __init__(self, settings, paths, fs, field="cgroups"):
        self.settings = settings  # values.Settings; None when rebuilt from saved paths
        self.paths = dict(paths)
        self.fs = fs
        self.field = field
        self._hier = None
        self._created = []  # directories this manager made, in the order it made them
        self._removed = set()
        self._applied = False
        self._loaded = settings is None

    def prime(self, member):
        """Start the RCU grace period the next migration would wait for, in a thread, while
        the caller goes on with work that needs no cgroup (opening namespaces, forking).

        The first write to any ``cgroup.procs`` after a quiet while waits for a grace period
        (the kernel's cgroup_threadgroup_rwsem is a percpu rwsem: its writer waits in
        rcu_sync_enter; about 10 ms here), and later writers within about a grace period do
        not. Writing ``member`` where it is already is a migration that moves nothing: the
        thread re-writes it into the first of our directories, and only after that
        directory's ``cgroup.procs`` lists it (a process someone moved out stays out). Errors
        are ignored: the real :meth:`join` reports its own."""
        import _thread

        try:
            _thread.start_new_thread(self._prime_now, (member,))
        except RuntimeError:
            pass

    def _prime_now(self, member):
        """:meth:`prime`'s thread: True when it wrote ``member``."""
        path = self._dirs()[0] + "/cgroup.procs"
        try:
            if str(member) in self.fs.read(path).split():
                self.fs.write(path, str(member))
                return True
        except Exception:  # noqa: B902 - a background nicety, never an error
            pass
        return False

    # --- directories -------------------------------------------------------------------------

    def _dirs(self):
        """The distinct cgroup directories, in the order of ``paths``."""
        return list(dict.fromkeys(self.paths.values()))

    def _mkdirs(self, path, base, created, made=None, leaf=True):
        """mkdir ``path`` and its missing parents below ``base``; append each made directory
        to ``created`` and call ``made(directory, is_leaf)``. A leaf that exists already is
        an error for a relative cgroup (another container's, or a leftover) and is joined
        for an absolute one."""
        try:
            self.fs.mkdir(path)
        except SyscallError as e:
            parent = path.rsplit("/", 1)[0]
            if e.errno == _errno.ENOENT and len(parent) > len(base):
                self._mkdirs(parent, base, created, made, leaf=False)
                self.fs.mkdir(path)
            elif e.errno == _errno.EEXIST and (not leaf or self._absolute()):
                return
            elif e.errno == _errno.EEXIST:
                raise SyscallError(e.errno, "mkdir", path, "a cgroup of that name exists "
                                   "already (another container, or one left behind)")
            elif e.errno == _errno.ENOENT:
                raise SyscallError(e.errno, "mkdir", path, "the cgroup it goes under, %s, "
                                   "does not exist" % base)
            else:
                raise
        created.append(path)
        if made is not None:
            made(path, leaf)

    def apply(self, pid):
        """Create, set every limit, join ``pid`` (the driver's ``_build``), freeze when the
        config says FROZEN; on any failure move ``pid`` back and remove what was created."""
        if self._loaded or self._applied:
            raise ContainerError("%s: apply needs a new manager (this one %s)" % (
                self.field, "was loaded from saved paths" if self._loaded else "applied"))
        created, joined = [], []
        try:
            self._build(pid, created, joined)
            if self.settings.freezer == values.FROZEN:
                self.freeze()
        except BaseException:
            self._undo(pid, joined, created)
            raise
        self._created = created
        self._applied = True

    def _absolute(self):
        return self.settings.parent.startswith("/")

    def set(self, resources, field="cgroups"):
        self.set_settings(values.parse(resources, field), field)

    def set_settings(self, settings, field="cgroups"):
        """:meth:`set` with checked :class:`~.values.Settings` (the driver writes them)."""
        raise NotImplementedError

    def _undo(self, pid, joined, created):
        """Move ``pid`` back to this process's own cgroups (where a process it forked
        starts), then remove what apply created. Best effort: the error that brought us here
        is the one the caller sees."""
        for key in joined:
            try:
                self.fs.write(self._hier.own_dir(key) + "/cgroup.procs", str(pid))
            except SyscallError:
                pass  # it exited meanwhile
        for path in reversed(created):
            try:
                remove_tree(self.fs, path, timeout=0.5)
            except SyscallError:
                pass

    def destroy(self, timeout=REMOVE_TIMEOUT):
        """Remove the container's cgroups (and the cgroups the container made inside them),
        then the parents apply created, if nothing else uses them. A manager rebuilt by
        ``load_manager`` removes the leaf cgroups it was given. After a failure, calling it
        again retries what is left."""
        if self._loaded:
            leaves = [d for d in self._dirs() if d not in self._removed]
        else:
            made = set(self._created)
            leaves = [d for d in self._dirs() if d in made]
        first = None
        for path in leaves:
            try:
                remove_tree(self.fs, path, timeout, busy_pids=self._procs_of)
                self._removed.add(path)
            except SyscallError as e:
                first = first or e
        kept = []
        for path in reversed(self._created):
            if path in self._removed:
                continue
            if path in leaves:
                kept.append(path)
                continue
            try:
                self.fs.rmdir(path)
            except SyscallError as e:
                if e.errno in (_errno.EBUSY, _errno.ENOTEMPTY) and first is not None:
                    kept.append(path)  # still holds one of ours: retry next time
                # else another container's cgroup is in it now: it stays
        self._created = kept[::-1]
        if first is not None:
            raise first

    # --- processes -----------------------------------------------------------------------------

    def _procs_of(self, path):
        try:
            return [int(p) for p in self.fs.read(path + "/cgroup.procs").split()]
        except SyscallError as e:
            if e.errno in (_errno.ENOENT, _errno.ENODEV):
                return []
            raise

    def _pids_under(self, path):
        out = self._procs_of(path)
        for sub in self.fs.subdirs(path):
            out.extend(self._pids_under(sub))
        return out

    def kill_all(self, timeout=KILL_TIMEOUT):
        deadline = _time.monotonic() + timeout
        reaped = {}
        while True:
            pids = self.pids()
            if not pids:
                return reaped
            if _time.monotonic() > deadline:
                raise ContainerError("%s: kill-all: processes %s still in %s after %.1f s"
                                     % (self.field, " ".join(map(str, pids[:20])),
                                        self._main_dir(), timeout))
            try:
                kill = self._kill_file()
                if kill:
                    self.fs.write(kill, "1")
                    self._thaw_after_kill()
                else:
                    self._freeze_kill_thaw(pids, deadline)
                self._wait_empty(deadline)
            except SyscallError as e:
                # the cgroup went away: empty, and collected (systemd removes an emptied scope)
                if e.errno not in (_errno.ENOENT, _errno.ENODEV):
                    raise
            reaped.update(reap(pids, deadline))

    def _freeze_kill_thaw(self, pids, deadline):
        """Freeze so nothing forks between the listing and the signals, SIGKILL each pid,
        thaw whatever happens (a frozen v1 task dies only once thawed). Without a freezer,
        or when freezing times out (a task stuck in the kernel), kill what is listed; the
        caller's loop comes back for anything forked meanwhile."""
        frozen = False
        try:
            self.freeze(timeout=max(0.1, min(FREEZE_TIMEOUT, deadline - _time.monotonic())))
            frozen = True
            pids = self.pids()
        except ContainerError:
            pass
        try:
            for pid in pids:
                try:
                    _os.kill(pid, SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                self.thaw()

    def _thaw_after_kill(self):
        """Hook: after cgroup.kill. v2's freezer lets a fatal signal through; v1's does
        not, so the v1 driver thaws a paused container here."""

    def _main_dir(self):
        return self._dirs()[0] if self.paths else "(no cgroup)"


def reap(pids, deadline):
    """Reap those of ``pids`` that are our children: ``{pid: status}``. One that is still
    finishing its exit (out of the cgroup, not yet a zombie) is waited for on a pidfd until
    ``deadline``; one that is still running after that is left to the caller."""
    out = {}
    for pid in pids:
        try:
            got, status = _os.waitpid(pid, _os.WNOHANG)
            if got == 0 and _exited(pid, deadline):
                got, status = _os.waitpid(pid, _os.WNOHANG)
        except ChildProcessError:
            continue  # not ours (or reaped already)
        if got == pid:
            out[pid] = status
    return out


def _exited(pid, deadline):
    """Wait until ``pid`` exits (its pidfd becomes readable) or ``deadline``."""
    import select

    from .. import libc

    try:
        fd = libc.pidfd_open(pid)
    except SyscallError:
        return True  # gone already, or no pidfd_open (< 5.3): let waitpid say
    try:
        left = max(0.0, deadline - _time.monotonic())
        return bool(select.select([fd], [], [], left)[0])
    finally:
        _os.close(fd)


def cgroup_path(settings, name):
    """``parent/name``: relative, or absolute when the parent is."""
    parent = settings.parent
    return (parent.rstrip("/") + "/" + name) if parent else name


def poll_until(check, deadline, first=0.0001, longest=0.01):
    """Call ``check()`` until it is true or ``deadline`` passes, pausing 0.1 ms, doubling to
    10 ms: for kernel facts that have no notification (v1 freezer.state, cgroup.procs)."""
    pause = first
    spins = 3  # freezing a few idle tasks usually completes within microseconds
    while True:
        if check():
            return True
        left = deadline - _time.monotonic()
        if left <= 0:
            return False
        if spins:
            spins -= 1
            continue
        _time.sleep(min(pause, left))
        pause = min(pause * 2, longest)


def wait_events(fs, path, key, want, deadline):
    """Wait until ``path/cgroup.events`` has ``key want`` (``frozen 1``, ``populated 0``):
    the kernel wakes poll(2) with POLLPRI when the file changes. True, or False at
    ``deadline``."""
    import select

    fd = fs.open(path + "/cgroup.events")
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        while True:
            try:
                text = _os.pread(fd, 4096, 0).decode()
            except OSError as e:
                raise SyscallError(e.errno, "read", path + "/cgroup.events")
            for line in text.splitlines():
                k, _, v = line.partition(" ")
                if k == key and v == want:
                    return True
            left = deadline - _time.monotonic()
            if left <= 0:
                return False
            poller.poll(max(1, int(left * 1000)))
    finally:
        _os.close(fd)
