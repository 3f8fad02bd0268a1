"""The container side: what the forked processes do before the command runs.

Two stages, both plain Python in processes forked from the runtime (never re-executed):

``stage1`` runs in the intermediate process, forked by :func:`minins.libc.fork` (CPython's
after-fork handling ran; it is single-threaded). It joins the namespaces given by path, makes
a new user namespace and waits for its maps, unshares the other namespaces, and -- when the
container has a PID namespace -- forks the init with ``CLONE_PARENT`` so that the init is the
runtime's own child and PID 1 of the new namespace. Then it reports the init's pid and exits.

``init_main`` runs in the init. It blocks until the runtime releases it (cgroups joined,
network made, state saved), sets up the container (:data:`SETUP_STEPS`), reports SETUP_DONE,
blocks again until START, and execs. Any exception is sent to the runtime with its errno and
the step it happened in, and the process exits; it never returns into the runtime's code.

Nothing here imports a module: everything it needs is imported by the runtime before it forks,
so a lock held by another thread of an embedding program can never stall the child.
"""
import os

from . import libc as _libc
from . import namespaces as _ns
from . import rootfs as _rootfs
from . import security as _security
from . import sync
from .config import NAMESPACE_TYPES, DEFAULT_PATH

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
SIGKILL = 9
CLONE_NEWUSER = NAMESPACE_TYPES["NEWUSER"]
CLONE_NEWCGROUP = NAMESPACE_TYPES["NEWCGROUP"]


class ChildContext:
    """What the runtime hands to the forked processes (built before the fork)."""

    in_userns = False  # the container has a user namespace (new or joined)
    gid5_mapped = True  # gid 5 (tty) exists in it, for devpts's gid=5
    console_path = None  # the pty slave to bind on /dev/console
    cap_last_cap = 40  # /proc/sys/kernel/cap_last_cap, read by the runtime
    home = None  # the user's home, found by the identity step
    sources = {}  # O_PATH fds of host paths to bind, opened for us (see rootfs.open_sources)
    wait_cgroups = False  # the runtime puts the intermediate in cgroups: wait before cloning
    lsm = {"apparmor": False, "selinux": False}  # the host's LSMs, probed by the runtime
    tid_addr = None  # where the kernel writes the init's pid for the runtime (CLONE_PARENT_SETTID)
    seccomp = None  # a minins.seccomp.load.Prepared filter, installed by seccomp_step

    def __init__(self, config, args, sock, runtime_sock, ns_fds, stdio, flags, pid_ns,
                 new_userns, lc=_libc, console=None):
        self.config = config
        self.args = list(args)
        self.sock = sock  # the child end of the sync channel
        self.runtime_sock = runtime_sock  # the runtime's end: closed at once in the child
        self.ns_fds = ns_fds  # [(type, fd, path)] in join order
        self.stdio = stdio  # (in, out, err) descriptors, or None to inherit
        self.flags = flags  # CLONE_NEW* to unshare, without USER and CGROUP
        self.pid_ns = pid_ns  # a new or joined PID namespace: fork the init
        self.new_userns = new_userns
        self.console = console  # a pty slave descriptor when the config asks for a tty
        self.lc = lc
        self.step = "start"


def _report_and_exit(ctx, exc):
    try:
        sync.send(ctx.sock, sync.ERROR, sync.error_payload(exc, ctx.step))
    finally:
        os._exit(1)


def stage1(ctx):
    """The intermediate process. Never returns."""
    try:
        lc = ctx.lc
        ctx.runtime_sock.close()
        ctx.step = "init: parent death signal"
        lc.prctl(PR_SET_PDEATHSIG, SIGKILL, op="prctl PR_SET_PDEATHSIG")
        if ctx.stdio is not None:
            ctx.step = "init: stdio"
            _dup_stdio(ctx.stdio)
        ctx.step = "init: join namespaces"
        _ns.join(ctx.ns_fds, lc)
        _ns.close(ctx.ns_fds)
        if ctx.new_userns:
            ctx.step = "init: user namespace"
            lc.unshare(CLONE_NEWUSER)
            sync.send(ctx.sock, sync.USERNS_READY)
            sync.expect(ctx.sock, sync.USERNS_MAPPED)
        if ctx.new_userns or any(t == "NEWUSER" for t, _fd, _p in ctx.ns_fds):
            _become_root(ctx)
        # Not dumpable until exec (the init inherits it): a process sharing a namespace with
        # us must not reach our descriptors (bind sources, the console) through /proc or
        # ptrace. Only now: the runtime had to write our uid_map, which a rootless runtime
        # cannot do to a non-dumpable process.
        lc.prctl(PR_SET_DUMPABLE, 0, op="prctl PR_SET_DUMPABLE")
        ctx.step = "init: namespaces"
        if ctx.flags:
            lc.unshare(ctx.flags)
        if ctx.wait_cgroups:
            ctx.step = "init: wait for the cgroups"
            sync.expect(ctx.sock, sync.CGROUPS_JOINED)
        if ctx.pid_ns:
            ctx.step = "init: fork the init"
            pid = lc.clone_parent(ctx.tid_addr)
            if pid == 0:
                init_main(ctx)  # never returns
            sync.send(ctx.sock, sync.INIT_PID, {"pid": pid})
            os._exit(0)
        sync.send(ctx.sock, sync.INIT_PID, {"pid": os.getpid()})
        init_main(ctx)
    except BaseException as e:  # noqa: B902 - the child must never unwind into the runtime
        _report_and_exit(ctx, e)


def _dup_stdio(stdio):
    # Copy every source above 2 first, so that a source that is itself 0, 1 or 2 is not
    # overwritten before it is used.
    copies = []
    for fd in stdio:
        try:
            copies.append(os.dup(fd) if fd is not None else None)
        except OSError as e:
            from .errors import SyscallError

            raise SyscallError(e.errno, "dup", "stdio fd %d" % fd) from None
    for target, fd in enumerate(copies):
        if fd is not None:
            os.dup2(fd, target)  # dup2 leaves the copy inheritable
            os.close(fd)


def _become_root(ctx):
    """Inside a (new or joined) user namespace, switch to its root: the ids the rest of the
    setup and its files are made with."""
    ctx.step = "init: become root in the user namespace"
    ctx.lc.setresgid(0, 0, 0)
    ctx.lc.setresuid(0, 0, 0)
    if _setgroups_allowed():
        ctx.lc.setgroups([])


def _setgroups_allowed():
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True


def init_main(ctx):
    """The init process. Never returns."""
    try:
        lc = ctx.lc
        # Nothing may be sent before RELEASE: the intermediate's INIT_PID is on its way on
        # the same socket, and an ERROR overtaking it would leave the runtime without our pid
        # (so unable to reap us). Until then a dead runtime shows as EOF here.
        ctx.step = "init: wait for release"
        release = _wait_release(ctx)
        ctx.step = "init: parent death signal"
        lc.prctl(PR_SET_PDEATHSIG, SIGKILL, op="prctl PR_SET_PDEATHSIG")
        for name, step in SETUP_STEPS:
            ctx.step = "init: " + name
            step(ctx, release)
        exec_when_started(ctx, "init")
    except BaseException as e:  # noqa: B902
        _report_and_exit(ctx, e)


def exec_when_started(ctx, who):
    """Find the command, report SETUP_DONE, wait for START, and exec (never returns). A failed
    execve raises an error naming the program, with its errno (126/127 on the command line)."""
    ctx.step = who + ": find the command"
    program, env = _resolve_command(ctx)
    ctx.step = who + ": wait for start"
    sync.send(ctx.sock, sync.SETUP_DONE)
    sync.expect(ctx.sock, sync.START)
    ctx.step = who + ": exec"
    ctx.lc.reset_signals()
    if ctx.seccomp is not None:
        from .seccomp import load as _seccomp  # imported by the runtime before the fork

        _seccomp.seccomp_step(ctx, "exec")  # with no_new_privileges: as late as possible
    try:
        os.execve(program, ctx.args, env)
    except OSError as e:
        from .errors import SyscallError

        raise SyscallError(e.errno, "exec", ctx.args[0]) from None


def _wait_release(ctx):
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
        from .errors import ContainerError

        raise ContainerError("sync: expected RELEASE, got %s" % (kind or "EOF"))


# --- the setup steps, in order (libcontainer-system.md section 2b) ---------------------------

def _cgroup_namespace(ctx, release):
    # After the runtime put us in our cgroups, so that they are the namespace's root.
    if ctx.config.clone_flags() & CLONE_NEWCGROUP:
        ctx.lc.unshare(CLONE_NEWCGROUP)


def _session(ctx, release):
    os.setsid()
    if ctx.console is not None:
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


def _hostname(ctx, release):
    if ctx.config.hostname:
        ctx.lc.sethostname(ctx.config.hostname)


def _labels(ctx, release):
    _security.apply_labels(ctx)


def _identity(ctx, release):
    _security.finalize(ctx)


def _close_fds(ctx, release):
    """Nothing but 0, 1 and 2 may reach the command: mark every other descriptor close-on-exec
    (the sync socket already is; it tells the runtime the exec happened)."""
    try:
        ctx.lc.close_range(3, 0xFFFFFFFF, _libc.CLOSE_RANGE_CLOEXEC)
    except OSError:  # before Linux 5.11
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass


SETUP_STEPS = (
    ("cgroup namespace", _cgroup_namespace),
    ("session", _session),
    ("network", _network),
    ("rlimits", _rlimits),
    ("mounts", _mounts),
    ("hostname", _hostname),
    ("labels", _labels),
    ("identity", _identity),
    ("close descriptors", _close_fds),
)


def _environment(cfg):
    env = {}
    for item in cfg.environment:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _resolve_command(ctx):
    """The program to exec, looked up in the container's PATH, and the environment."""
    env = _environment(ctx.config)
    env.setdefault("HOME", getattr(ctx, "home", None) or "/")
    if not ctx.args:
        from .errors import ConfigError

        raise ConfigError("args", "no command to run")
    return lookup(ctx.args[0], env.get("PATH", DEFAULT_PATH)), env


def lookup(name, path):
    """Find ``name`` like execvp would: a name with a slash is used as is; otherwise the
    first executable regular file in ``path``. A match that is not executable gives EACCES
    (exit 126), no match at all ENOENT (exit 127)."""
    from .errors import SyscallError

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
