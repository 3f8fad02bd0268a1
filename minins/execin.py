"""Enter a running container: the seed's ``ExecIn`` and nsenter, with their lessons learnt.

:func:`exec_in` runs a command inside the container whose data path holds ``state.json``:

1. The state is a claim: the init is pinned with a pidfd and must still be the process the
   state names (same pid *and* start time, not a zombie). A stopped container, or one whose
   pid now belongs to someone else, is refused. So is a paused one.
2. The init's namespace files are opened by the runtime, and the start time is checked again
   afterwards: the descriptors are the container's, not a recycled pid's.
3. The runtime forks the pipeline's intermediate (:mod:`minins.process`, kind EXEC); it is
   **non-dumpable** at once (so nothing in the container can open its /proc/PID/exe,
   /proc/PID/fd or ptrace it -- the class of runc's CVE-2019-5736).
4. The intermediate joins the namespaces in a safe order -- user first when the container has
   its own (the seed never joined it), then ipc, uts, net, pid, cgroup, and mnt last (#58) --
   and waits until the runtime has put it in every cgroup of the container (the seed's race,
   moby#10046). Only then does it fork again with ``CLONE_PARENT``, so that the command's
   process is born in the cgroups, really in the PID namespace, and still the runtime's own
   child. It reports that pid (INIT_PID) and exits; the command's process waits for RELEASE,
   so that nothing it sends can overtake the INIT_PID on the socket they share.
5. That process applies the container's environment, rlimits, labels, user, capabilities and
   no_new_privileges, changes to the working directory *inside* the container (setns put it
   at the container's root; no host directory is reachable -- CVE-2024-21626), marks every
   descriptor but 0, 1 and 2 close-on-exec, and execs. The sync channel and its messages are
   the same as a container start's (:mod:`minins.sync`).

The exit code is the command's (128+N for a signal N), as for ``run`` (the seed's ExecIn
forgot the +128).
"""
import os

from . import config as _config
from . import libc as _libc
from . import namespaces as _ns
from . import process as _process
from . import security as _security
from . import state as _state
from . import statecheck as _statecheck
from . import sync
from .child import EXEC
from .errors import MininsError, StateError, SyscallError
from .exitstatus import exit_code_from_status

SIGKILL = 9
PR_SET_CHILD_SUBREAPER = 36


class Entry:
    """One command entering a running container (see the module docstring). It has the
    interface :func:`minins.process.foreground` drives: :meth:`create` (everything up to the
    exec), :meth:`start`, :meth:`wait`, :meth:`kill`, :meth:`destroy`."""

    def __init__(self, data_path, args, *, stdin=None, stdout=None, stderr=None, tty=False,
                 env=(), cwd=None, user=None, lc=_libc, overrides=None, detached=False,
                 preserve_fds=0):
        if not args:
            raise _config.ConfigError("args", "no command to run")
        self.data_path = data_path
        self.args = tuple(os.fsdecode(a) for a in args)
        self.stdio = (stdin, stdout, stderr)
        self.tty = tty
        self.extra_env, self.cwd, self.user = tuple(env), cwd, user
        self.lc = lc
        # new (OCI, runc's exec: minins.runc): Config fields of the process itself (a
        # process.json), set after env/cwd/user; ``detached``: the process outlives us (no
        # parent-death signal: `exec -d`); ``preserve_fds``: 3..3+N-1 stay open in it
        self.overrides = dict(overrides or {})
        self.detached = detached
        self.preserve_fds = preserve_fds
        self.pid = None
        self.console_master = None
        self.state = None
        self._status = None
        self._spawned = None
        self._cleanup = []

    def create(self):
        try:
            with _process.prompt_gil():
                self._create()
        except BaseException as e:
            orphan = getattr(e, "orphan", None)
            if orphan and self.pid is None:
                self.pid = orphan
            self.destroy()
            if isinstance(e, MininsError):
                e.with_step(self._step)
            raise

    _step = "exec"

    def _create(self):
        self._step = "state"
        st, pidfd = _statecheck.pin_running(self.data_path)
        self._cleanup.append(lambda: os.close(pidfd))
        self.state = st
        cfg = _config.Config.from_json(st.get("config") or {})
        cfg = cfg.replace(**self._overrides(cfg))
        if self.overrides:
            cfg = cfg.replace(**self.overrides)
        mgr = into = None
        if st.get("cgroup_paths"):
            from . import cgroups

            mgr = cgroups.load_manager_from_state(st)
            if mgr.freezer_state() != "THAWED":
                raise StateError("container %s is paused; resume it first" % st.get("id"))
            if getattr(mgr, "open_dir", None) is not None and self.lc is _libc:
                into = mgr.open_dir()  # v2: the process is cloned into it (no migration)
                self._cleanup.append(lambda: os.close(into))
            else:
                mgr.prime(st["init_pid"])  # the join's grace period, beside the work up to it
        self._step = "namespaces"
        fds = self._open_namespaces(st["init_pid"])
        self._cleanup.append(lambda: _ns.close(fds))
        if not _state.init_alive(st):  # the pid was recycled while we opened its files
            raise StateError("container %s stopped while we were entering it" % st.get("id"))
        stdio = self._stdio(cfg)
        in_userns = any(t == "NEWUSER" for t, _fd, _p in fds)
        guard = _process.sealed_interpreter() if _process.needs_sealed_interpreter(
            cfg, self.lc) else None
        prepared = None
        if cfg.seccomp is not None:  # the container's profile
            from .seccomp import load as _seccomp

            prepared = _seccomp.prepare_for(cfg, st.get("id", ""), self.data_path, self.lc)
            self._cleanup.append(prepared.close)

        def plan(child_end, runtime_end, tid):
            return _process.Plan(
                kind=EXEC, config=cfg, args=self.args, sock=child_end,
                runtime_sock=runtime_end, ns_fds=tuple(fds), stdio=stdio,
                in_userns=in_userns,
                fork_into_pid_ns=any(t == "NEWPID" for t, _fd, _p in fds),
                wait_cgroups=mgr is not None, tid_addr=tid.address, tid_fd=tid.fd,
                interpreter_fd=guard,
                console=0 if self.tty else None,
                cap_last_cap=_security.cap_last_cap(), lsm=_security.lsm_state(),
                seccomp=prepared, lc=self.lc,
                parent_death_signal=0 if self.detached else SIGKILL,
                preserve_fds=self.preserve_fds)

        self._step = "fork"
        spawned = self._spawned = _process.spawn(plan, self.lc, into)
        self._cleanup.append(spawned.close)
        _ns.close(fds)
        fds[:] = []
        if mgr is not None:
            self._step = "cgroups"
            if not spawned.born_in_cgroup:
                mgr.join(spawned.pid)  # before the command's process exists: born in them
            sync.send(spawned.sock, sync.CGROUPS_JOINED)
        self._step = "enter"
        self.pid = _process.await_pid(spawned)
        spawned.reap(unless=self.pid)
        spawned.follow(self.pid, self.lc)
        sync.send(spawned.sock, sync.RELEASE, {})
        master = _process.await_setup(spawned, self.tty)
        if master is not None:
            self.console_master = master
            self._cleanup.append(lambda: os.close(master))

    def start(self):
        try:
            self._step = "start"
            _process.start(self._spawned.sock)
        except BaseException as e:
            self.destroy()
            if isinstance(e, MininsError):
                e.with_step(self._step)
            raise

    def _overrides(self, cfg):
        out = {}
        if self.extra_env:
            env = [e for e in cfg.environment
                   if e.partition("=")[0] not in {x.partition("=")[0] for x in self.extra_env}]
            out["environment"] = tuple(env) + self.extra_env
        if self.cwd:
            out["working_dir"] = self.cwd
        if self.user is not None:
            out["user"] = self.user
            if not any(e.startswith("HOME=") for e in self.extra_env):  # that user's own
                out["environment"] = tuple(e for e in out.get("environment", cfg.environment)
                                           if not e.startswith("HOME="))
        return out

    def _open_namespaces(self, pid):
        """The init's namespaces that are not ours already, in join order."""
        opened = []
        try:
            for t in _ns.JOIN_ORDER:
                path = _ns.proc_path(pid, t)
                try:
                    if _ns.same_namespace(os.getpid(), pid, t):
                        continue
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue  # a kernel without that namespace type
                except OSError as e:
                    raise SyscallError(e.errno, "open", path) from None
                opened.append((t, fd, path))
        except BaseException:
            _ns.close(opened)
            raise
        return opened

    def _stdio(self, cfg):
        if self.tty:
            return None  # the process makes a pty of the container's devpts its stdio
        fds = tuple(f if f is None or isinstance(f, int) else f.fileno() for f in self.stdio)
        return fds if any(fd is not None for fd in fds) else None

    def wait(self):
        """Wait for the command; its exit code. Everything is released afterwards."""
        try:
            if self._status is None:
                _, self._status = os.waitpid(self.pid, 0)
            return exit_code_from_status(self._status)
        finally:
            self.close()

    def kill(self, sig=SIGKILL):
        if self.pid is not None and self._status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self):
        self.close(kill=True)

    def close(self, kill=False):
        if kill:
            # Reap what we started: a PID namespace's dying init waits until every process
            # in it has been reaped, and ours are our children, not the init's.
            spawned = self._spawned
            for pid in (self.pid, spawned.pid if spawned is not None else None):
                if pid is not None and self._status is None:
                    try:
                        os.kill(pid, SIGKILL)
                        os.waitpid(pid, 0)
                    except (ProcessLookupError, ChildProcessError):
                        pass
            if spawned is not None:
                spawned.pid = None
            self.pid = None
        while self._cleanup:
            self._cleanup.pop()()
        self.console_master = None


def exec_in(data_path, args, *, stdin=None, stdout=None, stderr=None, tty=False, env=(),
            cwd=None, user=None, start_callback=None):
    """Run ``args`` inside the running container at ``data_path``; return the exit code."""
    e = Entry(data_path, args, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, env=env,
              cwd=cwd, user=user)
    e.create()
    e.start()
    if start_callback is not None:
        start_callback()
    if e.console_master is not None:
        _process.relay_console(e, 0 if stdin is None else _fd(stdin),
                               1 if stdout is None else _fd(stdout))
    return e.wait()


def run_foreground(data_path, args, tty=False, env=(), cwd=None, user=None):
    """``minins exec`` in the foreground (:func:`minins.process.foreground`). Where the
    container shares the host's PID namespace, whatever the command leaves behind would be
    reparented out of our sight: we become a child subreaper and reap it (the seed's #273 and
    #369)."""
    e = Entry(data_path, args, tty=tty, env=env, cwd=cwd, user=user)
    subreaper = _state.load(data_path).get("pid_namespace") is False
    if subreaper:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, op="prctl PR_SET_CHILD_SUBREAPER")
    return _process.foreground(e, after=_reap_orphans if subreaper else None)


def _reap_orphans(_entry=None):
    """Reap the zombies reparented to us; the living go on without us."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _fd(f):
    return f if isinstance(f, int) else f.fileno()
