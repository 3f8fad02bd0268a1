"""The child side of the process pipeline: what the forked processes do before the command runs.

One pipeline, two kinds (:data:`INIT`, a new container; :data:`EXEC`, a process joining a
running one), as runc's ``linuxStandardInit`` and ``linuxSetnsInit``. Both are plain Python in
processes forked from the runtime, never re-executed:

``intermediate`` runs in the process forked by :func:`minins.libc.fork` (CPython's after-fork
handling ran; it is single-threaded). It joins the namespaces given by path (user first, mnt
last), makes a new user namespace and waits for its maps (INIT), unshares the other
namespaces (INIT), waits until the runtime has put it in the container's cgroups, and -- when
the container has a PID namespace -- clones the final process with ``CLONE_PARENT``, so that it
is the runtime's own child and inside that namespace. It reports that pid and exits.

``process_main`` runs in the final process. It blocks until the runtime releases it, runs the
steps of :data:`STEPS` that belong to its kind, reports SETUP_DONE, waits for the start (START
on the sync socket, or a reader on ``exec.fifo`` for a detached container), and execs. Any
exception is sent to the runtime with its errno and the step it happened in, and the process
exits; it never returns into the runtime's code.

Nothing here imports a module at run time: everything is imported by the runtime before it
forks, so a lock held by another thread of an embedding program can never stall the child.
The shared helpers (:func:`dup_stdio`, :func:`become_root`, :func:`report_and_exit`,
:func:`close_fds`) are public names of this module.
"""
import errno
import os

from . import namespaces as _ns
from . import rootfs as _rootfs
from . import security as _security
from . import sync
from .config import DEFAULT_PATH, NAMESPACE_TYPES
from .errors import ConfigError, ContainerError, SyscallError
from .fspath import missing_interpreter

INIT = "init"
EXEC = "exec"

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
SIGKILL = 9
CLONE_NEWUSER = NAMESPACE_TYPES["NEWUSER"]
CLONE_NEWCGROUP = NAMESPACE_TYPES["NEWCGROUP"]
CLOSE_RANGE_CLOEXEC = 1 << 2


class Child:
    """The plan (:class:`minins.process.Plan`, immutable) plus the little a child learns on
    the way: the step it is in (for error reports), the user's home (from the identity step)
    and the bind sources the runtime sent. Attribute reads fall through to the plan, so that
    the subsystems (:mod:`minins.rootfs`, :mod:`minins.security`) read ``ctx.config``,
    ``ctx.lc`` ... from one object."""

    def __init__(self, plan):
        self.plan = plan
        self.step = plan.kind
        self.home = None  # the user's home directory (the identity step finds it)
        self.sources = {}  # mount index -> O_PATH fd of a bind source (MOUNT_SOURCES)
        self.proc_self = None  # O_PATH fd of our /proc/self dir, opened before any setns
        self.fifo_writer = None  # a detached init's end of exec.fifo, once a starter opened it
        self.pty = None  # (master, slave) of the container's terminal, once allocated

    def __getattr__(self, name):
        return getattr(self.plan, name)

    def name(self, what):
        return "%s: %s" % (self.plan.kind, what)


def report_and_exit(ctx, exc):
    """Send ``exc`` to the runtime (or the starter, for a detached init) and exit 1."""
    try:
        payload = sync.error_payload(exc, ctx.step)
        if ctx.fifo_writer is not None:
            import json

            os.write(ctx.fifo_writer, json.dumps(payload).encode())
        else:
            sync.send(ctx.sock, sync.ERROR, payload)
    finally:
        os._exit(1)


# --- re-executing from the sealed interpreter --------------------------------------------------

_FD_FIELDS = ("exec_fifo", "tid_fd")


def reexec(plan):
    """The forked intermediate, before anything else: exec the sealed copy of the interpreter
    (:func:`minins.process.sealed_interpreter`) and go on as :func:`intermediate` there, with
    the same plan (its descriptors inherited, the rest as JSON in a memfd). From then on no
    process of ours that enters the container runs the host's executable file (CVE-2019-5736).
    Never returns."""
    import json
    import sys

    ctx = Child(plan)
    ctx.step = ctx.name("re-execute")
    try:
        plan.runtime_sock.close()
        keep = [plan.sock.fileno()] + [fd for _t, fd, _p in plan.ns_fds]
        keep += [fd for fd in (plan.stdio or ()) if fd is not None]
        keep += [getattr(plan, f) for f in _FD_FIELDS if getattr(plan, f) is not None]
        for fd in keep:
            os.set_inheritable(fd, True)
        data = {name: getattr(plan, name) for name in plan._fields
                if name not in ("config", "sock", "runtime_sock", "lc", "interpreter_fd",
                                "tid_addr", "seccomp")}
        data["config"] = plan.config.to_json()
        if plan.seccomp is not None:
            from .seccomp import load as _seccomp

            if plan.seccomp.listener is not None:
                plan.seccomp.listener.set_inheritable(True)
            data["seccomp"] = _seccomp.to_json(plan.seccomp)
        data["sock"] = plan.sock.fileno()
        blob = os.memfd_create("minins-plan", 0)
        os.write(blob, json.dumps(data).encode())
        os.lseek(blob, 0, os.SEEK_SET)
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        boot = ("import sys; sys.path.insert(0, %r); from minins import child; "
                "child.resume(%d)" % (here, blob))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        # the standard library is where the base installation has it (a venv has none)
        env["PYTHONHOME"] = "%s:%s" % (sys.base_prefix, sys.base_exec_prefix)
        os.execve(plan.interpreter_fd, [sys.executable or "python3", "-s", "-S", "-c", boot],
                  env)
    except BaseException as e:  # noqa: B902
        report_and_exit(ctx, e)


def resume(blob):
    """In the re-executed interpreter: rebuild the plan from the memfd ``blob`` and run the
    intermediate. Never returns."""
    import json
    import socket

    from . import config as _config
    from . import libc
    from . import plan as process

    with os.fdopen(blob, "rb") as f:
        data = json.loads(f.read().decode())
    data["config"] = _config.Config.from_json(data["config"])
    data["sock"] = socket.socket(fileno=data["sock"])
    data["ns_fds"] = tuple(tuple(x) for x in data["ns_fds"])
    if data["stdio"] is not None:
        data["stdio"] = tuple(data["stdio"])
    data["args"] = tuple(data["args"])
    if data.get("seccomp") is not None:
        from .seccomp import load as _seccomp

        data["seccomp"] = _seccomp.from_json(data["seccomp"])
    tid = process.SharedPid(data["tid_fd"]) if data.get("tid_fd") is not None else None
    for _t, fd, _p in data["ns_fds"]:
        os.set_inheritable(fd, False)
    data["sock"].set_inheritable(False)
    if data.get("exec_fifo") is not None:
        os.set_inheritable(data["exec_fifo"], False)
    plan = process.Plan(tid_addr=tid.address if tid else None, lc=libc,
                        runtime_sock=_Closed(), **data)
    plan.preload()  # (here, while the runtime joins the cgroups, not in the init)
    intermediate(plan)


class _Closed:
    """The runtime's end of the socket, already closed before the re-exec."""

    def close(self):
        pass


def intermediate(plan):
    """The first forked process. Never returns."""
    ctx = Child(plan)
    try:
        lc = plan.lc
        plan.runtime_sock.close()
        ctx.step = ctx.name("parent death signal")
        lc.prctl(PR_SET_PDEATHSIG, SIGKILL, op="prctl PR_SET_PDEATHSIG")
        if not plan.new_userns:
            # Not dumpable at once: a process of the container must not reach our descriptors
            # (namespace files, bind sources, the console) through /proc or ptrace. With a new
            # user namespace only after its maps: a rootless runtime cannot write the maps of
            # a non-dumpable process.
            lc.prctl(PR_SET_DUMPABLE, 0, op="prctl PR_SET_DUMPABLE")
        if plan.stdio is not None:
            ctx.step = ctx.name("stdio")
            dup_stdio(plan.stdio, lc)
        ctx.proc_self = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        ctx.step = ctx.name("join namespaces")
        _ns.join(plan.ns_fds, lc)
        _ns.close(plan.ns_fds)
        if plan.new_userns:
            ctx.step = ctx.name("user namespace")
            lc.unshare(CLONE_NEWUSER)
            sync.send(plan.sock, sync.USERNS_READY)
            sync.expect(plan.sock, sync.USERNS_MAPPED)
        if plan.in_userns:
            become_root(ctx)
        if plan.new_userns:
            lc.prctl(PR_SET_DUMPABLE, 0, op="prctl PR_SET_DUMPABLE")
        if plan.unshare_flags:
            ctx.step = ctx.name("namespaces")
            lc.unshare(plan.unshare_flags)
        if plan.wait_cgroups:
            # The final process is forked after this: it is born in the container's cgroups
            # and can run nothing before it is in them.
            ctx.step = ctx.name("wait for the cgroups")
            sync.expect(plan.sock, sync.CGROUPS_JOINED)
        os.close(ctx.proc_self)
        ctx.proc_self = None
        if plan.fork_into_pid_ns:
            ctx.step = ctx.name("fork into the PID namespace")
            pid = lc.clone_parent(plan.tid_addr)
            if pid == 0:
                process_main(ctx)  # never returns
            sync.send(plan.sock, sync.INIT_PID, {"pid": pid})
            os._exit(0)
        sync.send(plan.sock, sync.INIT_PID, {"pid": os.getpid()})
        process_main(ctx)
    except BaseException as e:  # noqa: B902 - the child must never unwind into the runtime
        report_and_exit(ctx, e)


def dup_stdio(stdio, lc):
    """Make ``stdio`` (three descriptors or ``None`` each) our 0, 1 and 2."""
    # Copy every source above 2 first, so that a source that is itself 0, 1 or 2 is not
    # overwritten before it is used.
    copies = []
    for fd in stdio:
        try:
            copies.append(os.dup(fd) if fd is not None else None)
        except OSError as e:
            raise SyscallError(e.errno, "dup", "stdio fd %d" % fd) from None
    for target, fd in enumerate(copies):
        if fd is not None:
            lc.dup2(fd, target)
            os.close(fd)


def become_root(ctx):
    """Inside a (new or joined) user namespace, switch to its root: the ids the rest of the
    setup and its files are made with. Whether setgroups(2) is allowed is read from our own
    ``/proc/self/setgroups`` through the descriptor opened before any setns: after joining a
    mount namespace, ``/proc/self`` may name nothing (user_namespaces(7))."""
    ctx.step = ctx.name("become root in the user namespace")
    lc = ctx.lc
    lc.setresgid(0, 0, 0)
    lc.setresuid(0, 0, 0)
    if setgroups_allowed(ctx.proc_self):
        lc.setgroups([])


def setgroups_allowed(proc_self):
    """``/proc/self/setgroups`` says "allow" (read relative to ``proc_self``, an fd of our
    /proc/self). A failed read is an error, never a permission."""
    try:
        fd = os.open("setgroups", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_self)
    except FileNotFoundError:
        return True  # before Linux 3.19 there is no such file and setgroups is allowed
    except OSError as e:
        raise SyscallError(e.errno, "open", "/proc/self/setgroups") from None
    try:
        return os.read(fd, 64).strip() == b"allow"
    finally:
        os.close(fd)


def process_main(ctx):
    """The final process (the container's init, or the command joining it). Never returns."""
    try:
        plan, lc = ctx.plan, ctx.lc
        # Nothing may be sent before RELEASE: the intermediate's INIT_PID is on its way on the
        # same socket, and an ERROR overtaking it would leave the runtime without our pid (so
        # unable to reap us). Until then a dead runtime shows as EOF here.
        ctx.step = ctx.name("wait for release")
        release = wait_release(ctx)
        if plan.parent_death_signal:
            lc.prctl(PR_SET_PDEATHSIG, plan.parent_death_signal, op="prctl PR_SET_PDEATHSIG")
        for name, kinds, step in STEPS:
            if plan.kind in kinds:
                ctx.step = ctx.name(name)
                step(ctx, release)
        exec_when_started(ctx)
    except BaseException as e:  # noqa: B902
        report_and_exit(ctx, e)


def wait_release(ctx):
    while True:
        kind, payload, fds = sync.recv_fds(ctx.sock)
        if kind == sync.MOUNT_SOURCES and len(payload.get("keys", ())) == len(fds):
            ctx.sources = dict(zip(payload["keys"], fds))
            continue
        for fd in fds:
            os.close(fd)
        if kind == sync.RELEASE:
            return payload
        if kind == sync.ERROR:
            raise sync.error_from_payload(payload)
        raise ContainerError("sync: expected RELEASE, got %s" % (kind or "EOF"))


def exec_when_started(ctx):
    """Find the command, report SETUP_DONE, wait for the start, and exec (never returns). A
    failed execve raises an error naming the program, with its errno (126/127 on the command
    line)."""
    plan, lc = ctx.plan, ctx.lc
    ctx.step = ctx.name("find the command")
    program, env = resolve_command(ctx)
    ctx.step = ctx.name("wait for start")
    sync.send(plan.sock, sync.SETUP_DONE)
    if plan.exec_fifo is None:
        sync.expect(plan.sock, sync.START)
    else:
        # Detached: the runtime goes away now; `minins start` opens exec.fifo for reading
        # (our open blocks until then), reads the byte we write, and then reads until EOF:
        # nothing more means the exec succeeded (our end is close-on-exec), an error payload
        # means it did not.
        plan.sock.close()
        fd = os.open("/proc/self/fd/%d" % plan.exec_fifo, os.O_WRONLY | os.O_CLOEXEC)
        ctx.fifo_writer = fd
        os.write(fd, b"0")
    if plan.hooks and plan.hooks.get("startContainer"):
        ctx.step = ctx.name("startContainer hooks")
        _run_hooks(ctx, "startContainer", "created")
    ctx.step = ctx.name("exec")
    lc.reset_signals()
    if plan.seccomp is not None:
        from .seccomp import load as _seccomp  # imported by the runtime before the fork

        _seccomp.seccomp_step(ctx, "exec")  # with no_new_privileges: as late as possible
    try:
        lc.execve(program, list(plan.args), env)
    except SyscallError as e:
        detail = missing_interpreter(program) if e.errno == errno.ENOENT else None
        raise SyscallError(e.errno, "exec", plan.args[0], detail) from None


# --- the steps, in order (libcontainer-system.md section 2b; runc's standard and setns init) ---

def _enter_root(ctx, release):
    # setns into the mount namespace put us at its root; never keep a host directory
    # (CVE-2024-21626). Explicit, so that a fake sees it.
    ctx.lc.chdir("/")


def _cgroup_namespace(ctx, release):
    # After the runtime put us in our cgroups, so that they are the namespace's root.
    if ctx.config.clone_flags() & CLONE_NEWCGROUP:
        ctx.lc.unshare(CLONE_NEWCGROUP)


def _session(ctx, release):
    # Always a session of its own: a process that kept the caller's controlling terminal could
    # push keystrokes into it with TIOCSTI (bubblewrap's CVE-2017-5226).
    ctx.lc.setsid()


def _console(ctx, release):
    """With a terminal: a pty of the container's own devpts (allocated during the mounts for
    a new container, here for a process joining one), its master sent to the runtime
    (CONSOLE), its slave our stdio and controlling terminal."""
    if ctx.console is None:
        return
    if ctx.pty is None:
        from . import console

        ctx.pty = console.open_pty_in(None, ctx.lc)
    master, slave = ctx.pty
    sync.send_fds(ctx.sock, sync.CONSOLE, {}, [master])
    os.close(master)
    dup_stdio((slave, slave, slave), ctx.lc)
    os.close(slave)
    ctx.pty = None
    _security.take_console(ctx)


def _network(ctx, release):
    cfg = ctx.config
    if cfg.networks or cfg.routes:
        from . import network  # imported by the runtime before the fork

        network.initialize(cfg.networks, cfg.routes, release.get("network_state") or {})


def _rlimits(ctx, release):
    for rl in ctx.config.rlimits:
        ctx.lc.prlimit(0, rl.type, (rl.soft, rl.hard))


def _mounts(ctx, release):
    if ctx.config.has_namespace("NEWNS"):
        _rootfs.setup(ctx)


def _create_container_hooks(ctx, release):
    # runtime-spec config.md: in the container's namespaces, after createRuntime (the
    # runtime ran those before RELEASE) and before pivot_root (the mounts step does it)
    if ctx.hooks and ctx.hooks.get("createContainer"):
        _run_hooks(ctx, "createContainer", "creating")


def _run_hooks(ctx, kind, status):
    from . import hooks  # imported by the runtime before the fork (minins.runc)

    state = dict(ctx.hooks.get("state") or {}, status=status, pid=os.getpid())
    hooks.run_all(ctx.hooks, kind, state, ctx.lc)


def _hostname(ctx, release):
    if ctx.config.hostname:
        ctx.lc.sethostname(ctx.config.hostname)


def _labels(ctx, release):
    _security.apply_labels(ctx)


def _identity(ctx, release):
    _security.finalize(ctx)


def _oom_score_adj(ctx, release):
    # new (OCI): process.oomScoreAdj, before the capabilities go (lowering it needs
    # CAP_SYS_RESOURCE); our own entry of the proc mounted now (the host's, before the
    # mounts), opened by our pid as the runtime knows it
    value = ctx.config.oom_score_adj
    if value is not None:
        from .fspath import write_file

        write_file("/proc/self/oom_score_adj", str(value), "process.oomScoreAdj")


def _domainname(ctx, release):
    if ctx.config.domainname:  # new (OCI): linux.domainname
        ctx.lc.setdomainname(ctx.config.domainname)


def _umask(ctx, release):
    if ctx.config.umask is not None:  # new (OCI): process.user.umask
        os.umask(ctx.config.umask)


def _personality(ctx, release):
    if ctx.config.personality:  # new (OCI): linux.personality
        from .libc import PER_LINUX, PER_LINUX32  # loaded already (resume)

        ctx.lc.personality({"LINUX": PER_LINUX, "LINUX32": PER_LINUX32}
                           [ctx.config.personality])


def _close_fds(ctx, release):
    close_fds(ctx.lc, ctx.preserve_fds or 0)


def close_fds(lc, preserve=0):
    """Nothing but 0, 1 and 2 may reach the command: mark every other descriptor close-on-exec
    (the sync socket already is; it tells the runtime the exec happened). With ``preserve``
    (runc's --preserve-fds N), 3..3+N-1 are kept, and open across the exec."""
    first = 3 + preserve
    for fd in range(3, first):
        try:
            os.set_inheritable(fd, True)
        except OSError as e:
            raise SyscallError(e.errno, "keep", "--preserve-fds descriptor %d" % fd) from None
    try:
        lc.close_range(first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    except OSError:  # before Linux 5.11
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= first:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass


BOTH = (INIT, EXEC)

#: ``(name, kinds, step)`` in the order they run; a step runs only for the kinds it names.
STEPS = (
    ("enter the root", (EXEC,), _enter_root),
    ("cgroup namespace", (INIT,), _cgroup_namespace),
    ("session", BOTH, _session),
    ("network", (INIT,), _network),
    ("rlimits", BOTH, _rlimits),
    ("oom score", (INIT,), _oom_score_adj),
    ("createContainer hooks", (INIT,), _create_container_hooks),  # new (OCI)
    ("mounts", (INIT,), _mounts),
    ("umask", BOTH, _umask),
    ("hostname", (INIT,), _hostname),
    ("domainname", (INIT,), _domainname),
    ("console", BOTH, _console),
    ("labels", BOTH, _labels),
    ("personality", (INIT,), _personality),  # before identity: seccomp may be loaded there
    ("identity", BOTH, _identity),
    ("close descriptors", BOTH, _close_fds),
)


def _environment(cfg):
    env = {}
    for item in cfg.environment:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def resolve_command(ctx):
    """The program to exec, looked up in the container's PATH, and the environment. HOME is
    the user's home from the image's passwd unless the configuration sets it."""
    env = _environment(ctx.config)
    env.setdefault("HOME", ctx.home or "/")
    if not ctx.args:
        raise ConfigError("args", "no command to run")
    return lookup(ctx.args[0], env.get("PATH", DEFAULT_PATH)), env


def lookup(name, path):
    """Find ``name`` like execvp would: a name with a slash is used as is; otherwise the
    first executable regular file in ``path``. A match that is not executable gives EACCES
    (exit 126), no match at all ENOENT (exit 127)."""
    if "/" in name:
        return name
    denied = None
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if (st.st_mode & 0o170000) != 0o100000:
            continue
        if os.access(candidate, os.X_OK):
            return candidate
        denied = candidate
    if denied is not None:
        raise SyscallError(13, "exec", denied)  # EACCES
    raise SyscallError(2, "exec", name, "not found in PATH %s" % path)  # ENOENT
