"""Enter a running container: the seed's ``ExecIn`` and nsenter, with their lessons learnt.

:func:`exec_in` runs a command inside the container whose data path holds ``state.json``:

1. The state is a claim: the init is pinned with a pidfd and must still be the process the
   state names (same pid *and* start time, not a zombie). A stopped container, or one whose
   pid now belongs to someone else, is refused. So is a paused one.
2. The init's namespace files are opened by the runtime, and the start time is checked again
   afterwards: the descriptors are the container's, not a recycled pid's.
3. The runtime forks; the child is **non-dumpable** at once (so nothing in the container can
   open its /proc/PID/exe, /proc/PID/fd or ptrace it -- the class of runc's CVE-2019-5736),
   and blocks. The runtime puts it in every cgroup of the container *before* releasing it
   (the seed's race, moby#10046): whatever it forks is born inside them.
4. The child joins the namespaces in a safe order -- user first when the container has its
   own (the seed never joined it), then ipc, uts, net, pid, cgroup, and mnt last (#58) --
   and forks again with ``CLONE_PARENT`` so that the command is really in the PID namespace
   and still the runtime's own child. It reports that pid (INIT_PID) and exits; the command's
   process waits for a second RELEASE, so that nothing it sends can overtake the INIT_PID on
   the socket they share.
5. That process applies the container's environment, rlimits, labels, user, capabilities and
   no_new_privileges, changes to the working directory *inside* the container (setns put it
   at the container's root; no host directory is reachable -- CVE-2024-21626), marks every
   descriptor but 0, 1 and 2 close-on-exec, and execs. The sync channel and its messages are
   the same as a container start's (:mod:`minins.sync`).

The exit code is the command's (128+N for a signal N), as for ``run`` (the seed's ExecIn
forgot the +128).
"""
import errno
import os

from . import config as _config
from . import init as _init
from . import libc as _libc
from . import namespaces as _ns
from . import security as _security
from . import state as _state
from . import sync
from .errors import ContainerError, MininsError, StateError, SyscallError
from .exitstatus import exit_code_from_status

PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1
SIGKILL = 9


def running_state(data_path):
    """The container's state, checked against the kernel; ``(state, pidfd)`` with the init
    pinned. :class:`StateError` when it is not running."""
    st = _state.load(data_path)
    pid = st["init_pid"]
    try:
        pidfd = _libc.pidfd_open(pid)
    except SyscallError as e:
        if e.errno == errno.ESRCH:
            raise StateError("container %s is not running (its init %d has exited)"
                             % (st.get("id", data_path), pid)) from None
        raise
    if not _state.init_alive(st):
        os.close(pidfd)
        raise StateError("container %s is not running (pid %d is no longer its init)"
                         % (st.get("id", data_path), pid))
    return st, pidfd


class Entry:
    """One command entering a running container (see the module docstring)."""

    def __init__(self, data_path, args, *, stdin=None, stdout=None, stderr=None, tty=False,
                 env=(), cwd=None, user=None, lc=_libc):
        if not args:
            raise _config.ConfigError("args", "no command to run")
        self.data_path = data_path
        self.args = [os.fsdecode(a) for a in args]
        self.stdio = (stdin, stdout, stderr)
        self.tty = tty
        self.extra_env, self.cwd, self.user = tuple(env), cwd, user
        self.lc = lc
        self.pid = None
        self.console_master = None
        self._status = None
        self._cleanup = []

    def start(self):
        try:
            self._start()
        except BaseException as e:
            self.close(kill=True)
            if isinstance(e, MininsError):
                e.with_step(self._step)
            raise

    _step = "exec"

    def _start(self):
        self._step = "state"
        st, pidfd = running_state(self.data_path)
        self._cleanup.append(lambda: os.close(pidfd))
        self.state = st
        cfg = _config.Config.from_json(st.get("config") or {})
        cfg = cfg.replace(**self._overrides(cfg))
        mgr = None
        if st.get("cgroup_paths"):
            from . import cgroups

            mgr = cgroups.load_manager_from_state(st)
            if mgr.freezer_state() != "THAWED":
                raise StateError("container %s is paused; resume it first" % st.get("id"))
        self._step = "namespaces"
        fds = self._open_namespaces(st["init_pid"])
        self._cleanup.append(lambda: _ns.close(fds))
        if not _state.init_alive(st):  # the pid was recycled while we opened its files
            raise StateError("container %s stopped while we were entering it" % st.get("id"))
        stdio = self._stdio(cfg)
        self._step = "fork"
        runtime_end, child_end = sync.socketpair()
        self._cleanup.append(runtime_end.close)
        ctx = _init.ChildContext(cfg, self.args, child_end, runtime_end, fds, stdio, 0,
                                 pid_ns=any(t == "NEWPID" for t, _fd, _p in fds),
                                 new_userns=False, lc=self.lc)
        ctx.cap_last_cap = _security.cap_last_cap()
        ctx.lsm = _security.lsm_state()
        from .container import SharedPid, watch_pid

        tid = SharedPid()
        self._cleanup.append(tid.close)
        ctx.tid_addr = tid.address
        ctx.console = 0 if self.tty else None
        pid = self.lc.fork()
        if pid == 0:
            _enter(ctx)  # never returns
        child_end.close()
        self._pid1 = pid
        pidfd1 = watch_pid(pid, self.lc)
        if pidfd1 is not None:
            self._cleanup.append(lambda: os.close(pidfd1))
        _ns.close(fds)
        fds[:] = []
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        self._step = "cgroups"
        if mgr is not None:
            mgr.join(pid)  # before it can run anything: it waits for RELEASE
        self._step = "enter"
        sync.send(runtime_end, sync.RELEASE, {})
        try:
            self.pid = sync.expect(runtime_end, sync.INIT_PID, pidfd1)["pid"]
        except MininsError:
            if tid.value > 0:  # our first child died after forking the command's process
                self.pid = tid.value  # close(kill=True) kills and reaps it
            raise
        if self.pid != pid:
            os.waitpid(pid, 0)
        self._pid1 = None
        # The command's process waits for this second RELEASE: nothing it says can overtake
        # the INIT_PID above on the shared socket.
        sync.send(runtime_end, sync.RELEASE, {})
        sync.expect(runtime_end, sync.SETUP_DONE)
        sync.send(runtime_end, sync.START)
        kind, payload = sync.recv(runtime_end)
        if kind == sync.ERROR:
            raise sync.error_from_payload(payload)
        if kind is not sync.EOF:
            raise ContainerError("sync: unexpected %s after START" % kind)

    _pid1 = None
    _slave = None

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
            from . import console
            from . import idmap

            master, path = console.open_pty(self.lc)
            self.console_master = master
            self._cleanup.append(lambda: os.close(master))
            slave = console.open_slave(path, idmap.get_host_root_uid(cfg),
                                       idmap.get_host_root_gid(cfg))
            self._slave = slave
            return (slave, slave, slave)
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

    def close(self, kill=False):
        if kill:
            # Reap what we started: a PID namespace's dying init waits until every process
            # in it has been reaped, and ours are our children, not the init's.
            for pid in (self.pid, self._pid1):
                if pid is not None and self._status is None:
                    try:
                        os.kill(pid, SIGKILL)
                        os.waitpid(pid, 0)
                    except (ProcessLookupError, ChildProcessError):
                        pass
            self.pid = self._pid1 = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        while self._cleanup:
            self._cleanup.pop()()
        self.console_master = None


def _enter(ctx):
    """The first child: non-dumpable, wait to be put in the cgroups, join, fork. Never
    returns."""
    try:
        lc = ctx.lc
        ctx.step = "exec: non-dumpable"
        lc.prctl(PR_SET_DUMPABLE, 0, op="prctl PR_SET_DUMPABLE")
        ctx.runtime_sock.close()
        lc.prctl(PR_SET_PDEATHSIG, SIGKILL, op="prctl PR_SET_PDEATHSIG")
        ctx.step = "exec: wait for the cgroups"
        sync.expect(ctx.sock, sync.RELEASE)
        if ctx.stdio is not None:
            _init._dup_stdio(ctx.stdio)
        ctx.step = "exec: join namespaces"
        _ns.join(ctx.ns_fds, lc)
        _ns.close(ctx.ns_fds)
        if any(t == "NEWUSER" for t, _fd, _p in ctx.ns_fds):
            _init._become_root(ctx)
        if ctx.pid_ns:
            ctx.step = "exec: fork into the PID namespace"
            pid = lc.clone_parent(ctx.tid_addr)
            if pid:
                sync.send(ctx.sock, sync.INIT_PID, {"pid": pid})
                os._exit(0)
        else:
            sync.send(ctx.sock, sync.INIT_PID, {"pid": os.getpid()})
        # Sent once the runtime has our pid: only then may we report anything (an ERROR
        # must not overtake our parent's INIT_PID).
        sync.expect(ctx.sock, sync.RELEASE)
        lc.prctl(PR_SET_PDEATHSIG, SIGKILL, op="prctl PR_SET_PDEATHSIG")
        _finish(ctx)
    except BaseException as e:  # noqa: B902 - never unwind into the runtime's code
        _init._report_and_exit(ctx, e)


def _finish(ctx):
    lc, cfg = ctx.lc, ctx.config
    ctx.step = "exec: working directory"
    os.chdir("/")  # setns put us at the container's root; never keep a host directory
    ctx.step = "exec: session"
    # Always a session of its own: a process that kept the caller's controlling terminal
    # could push keystrokes into it with TIOCSTI (bubblewrap's CVE-2017-5226).
    os.setsid()
    if ctx.console is not None:
        _security.take_console(ctx)
    ctx.step = "exec: rlimits"
    for rl in cfg.rlimits:
        lc.prlimit(0, rl.type, (rl.soft, rl.hard))
    ctx.step = "exec: labels"
    _security.apply_labels(ctx)
    ctx.step = "exec: identity"
    _security.finalize(ctx)
    ctx.step = "exec: close descriptors"
    _init._close_fds(ctx, None)
    _init.exec_when_started(ctx, "exec")


def exec_in(data_path, args, *, stdin=None, stdout=None, stderr=None, tty=False, env=(),
            cwd=None, user=None, start_callback=None):
    """Run ``args`` inside the running container at ``data_path``; return the exit code."""
    e = Entry(data_path, args, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, env=env,
              cwd=cwd, user=user)
    e.start()
    if start_callback is not None:
        start_callback()
    _relay(e, stdin, stdout)
    return e.wait()


def _relay(e, stdin=None, stdout=None):
    if e.console_master is None:
        return
    from . import console

    src = 0 if stdin is None else _fd(stdin)
    try:
        with console.RawMode(src):
            console.copy_window_size(src, e.console_master)
            console.relay(e.console_master, e.pid, src, 1 if stdout is None else _fd(stdout))
    except BaseException:
        e.close(kill=True)
        raise


PR_SET_CHILD_SUBREAPER = 36


def run_foreground(data_path, args, tty=False, env=(), cwd=None, user=None):
    """``minins exec`` in the foreground: signals we receive go to the command (it has a
    session of its own, so the terminal's do not reach it), SIGWINCH resizes its terminal.
    Where the container shares the host's PID namespace, whatever the command leaves behind
    would be reparented out of our sight: we become a child subreaper and reap it (the seed's
    #273 and #369)."""
    from .runner import install_handlers, restore_handlers

    e = Entry(data_path, args, tty=tty, env=env, cwd=cwd, user=user)
    started, queued = [False], []

    def on_signal(sig, _frame):
        if started[0] and e.pid is not None and e._status is None:
            os.kill(e.pid, sig)
        else:
            queued.append(sig)

    previous = install_handlers(on_signal, e if tty else None)
    try:
        subreaper = _state.load(data_path).get("pid_namespace") is False
        if subreaper:
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, op="prctl PR_SET_CHILD_SUBREAPER")
        e.start()
        started[0] = True
        for sig in queued:
            os.kill(e.pid, sig)
        _relay(e)
        code = e.wait()
        if subreaper:
            _reap_orphans()
        return code
    finally:
        restore_handlers(previous)


def _reap_orphans():
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
