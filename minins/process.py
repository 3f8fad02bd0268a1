"""The host side of the process pipeline, shared by both kinds of process it starts.

A new container (:mod:`minins.container`) and a process joining one (:mod:`minins.execin`)
start the same way: the runtime declares a :class:`Plan`, :func:`spawn` forks the intermediate
(:func:`minins.child.intermediate`), the kind's own host steps run between the sync messages
(id maps, cgroups, network for an init; cgroups for an exec), :func:`await_pid` learns the
final process's pid, and :func:`start` releases it to exec. :func:`foreground` is the one loop
that runs either kind in the foreground of ``minins run`` or ``minins exec``, and
:func:`relay_console` the one terminal relay.

The sync protocol is documented in :mod:`minins.sync`.
"""
import os

from . import child as _child
from . import libc as _libc
from . import sync
from .errors import ContainerError, MininsError
from .plan import Plan, SharedPid  # noqa: F401 - the pipeline's record, named here too

SIGKILL = 9

def watch_pid(pid, lc=_libc):
    """A pidfd for ``pid``, or ``None`` on a kernel without pidfd_open (before 5.3)."""
    try:
        return lc.pidfd_open(pid)
    except OSError:
        return None


class Spawned:
    """The intermediate process :func:`spawn` forked: its pid, a pidfd on it (or None), the
    runtime's end of the sync socket and the shared pid slot. :meth:`close` releases what is
    ours; :meth:`reap` waits for the intermediate once."""

    def __init__(self, pid, pidfd, sock, tid):
        self.pid, self.pidfd, self.sock, self.tid = pid, pidfd, sock, tid

    def reap(self, kill=False, unless=None):
        """Reap the intermediate once (never signal a pid after reaping it: it may belong to
        someone else by then). When it is the final process itself (``unless``), the final
        process's own wait does that."""
        pid, self.pid = self.pid, None
        if pid is None or pid == unless:
            return
        if kill:
            os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)

    def follow(self, pid, lc=_libc):
        """From now on :attr:`pidfd` watches ``pid`` (the final process), not the
        intermediate, which has exited or is about to."""
        if self.pidfd is not None:
            os.close(self.pidfd)
        self.pidfd = watch_pid(pid, lc)

    def close(self):
        """Idempotent."""
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.tid.close()


class prompt_gil:
    """``with prompt_gil():`` -- while the runtime's side waits on its child in many short
    blocking steps (each a system call that releases the GIL and must win it back), let other
    threads of an embedding program hold the GIL for 50 us at a time instead of 5 ms
    (sys.setswitchinterval), then restore what was set. Without other threads it changes
    nothing. tools/bench_embed.py measures it."""

    INTERVAL = 5e-5

    def __enter__(self):
        import sys

        self._before = sys.getswitchinterval()
        if self._before > self.INTERVAL:
            sys.setswitchinterval(self.INTERVAL)
        return self

    def __exit__(self, *exc):
        import sys

        sys.setswitchinterval(self._before)
        return False


def spawn(make_plan, lc=_libc):
    """Fork the intermediate for the plan that ``make_plan(child_end, runtime_end, tid)``
    returns (``tid`` a :class:`SharedPid`); the runtime's side as :class:`Spawned`. The
    child's end is closed here."""
    runtime_end, child_end = sync.socketpair()
    tid = SharedPid()
    try:
        plan = make_plan(child_end, runtime_end, tid)
        pid = lc.fork()
    except BaseException:
        child_end.close()
        runtime_end.close()
        tid.close()
        raise
    if pid == 0:
        if plan.interpreter_fd is not None:
            _child.reexec(plan)  # never returns
        _child.intermediate(plan)  # never returns
    child_end.close()
    return Spawned(pid, watch_pid(pid, lc), runtime_end, tid)


# --- the runtime's executable, out of the container's reach (CVE-2019-5736) -------------------

_INTERPRETER = []  # the sealed copy, made once per runtime process


def sealed_interpreter():
    """A sealed, close-on-exec memfd copy of the running interpreter's executable.

    Every process the runtime sends into a container first re-executes from it
    (:func:`minins.child.reexec`), so that its ``/proc/PID/exe`` -- which a script starting
    with ``#!/proc/self/exe`` run by it would inherit -- is this copy, never the host's file:
    the copy is sealed (F_SEAL_WRITE, memfd_create(2)), and writing to it could only change
    the copy. runc and crun protect their binary the same way. Made once per runtime process
    (a copy of the executable, which for a Python linked against libpython is a few KiB).
    Raises :class:`SyscallError` when the kernel has no memfd (before 3.17)."""
    if _INTERPRETER:
        return _INTERPRETER[0]
    import fcntl

    from .errors import SyscallError

    exe = os.readlink("/proc/self/exe")
    try:
        src = os.open(exe, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno, "open", exe) from None
    try:
        fd = os.memfd_create("minins-runtime", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            size, done = os.fstat(src).st_size, 0
            while done < size:
                n = os.sendfile(fd, src, done, size - done)
                if n == 0:
                    raise SyscallError(5, "copy", exe, "short read")  # EIO
                done += n
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                        | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        except BaseException:
            os.close(fd)
            raise
    except OSError as e:
        if isinstance(e, SyscallError):
            raise
        raise SyscallError(e.errno, "seal a copy of", exe) from None
    finally:
        os.close(src)
    _INTERPRETER.append(fd)
    return fd


def needs_sealed_interpreter(cfg, lc=_libc):
    """Must the processes entering a container made from ``cfg`` run from the sealed copy?

    Skipped only where writing the runtime's executable is impossible from the container:
    with a user namespace whose maps contain neither host uid 0 nor the executable's owner,
    when the file is writable by its owner only (then no process of the container has a uid,
    nor a capability over the file, that could open it for writing). And with a fake libc
    (tests of the child's steps), which a re-executed process would not keep."""
    if lc is not _libc:
        return False
    if os.geteuid() != 0 and not os.access("/proc/self/exe", os.W_OK):
        # Rootless: the container holds at most our own uid (and capabilities only in its
        # own user namespace, which owns no host file): what we cannot write, it cannot.
        return False
    ns = cfg.namespace("NEWUSER")
    if ns is None or ns.path:
        return True  # no user namespace, or one we cannot see the maps of
    try:
        st = os.stat("/proc/self/exe")
    except OSError:
        return True
    if st.st_mode & 0o022:
        return True  # group- or world-writable: anyone may
    from .idmap import container_id_from_mapping

    return any(container_id_from_mapping(uid, cfg.uid_mappings) is not None
               for uid in (0, st.st_uid))


def await_pid(spawned):
    """The final process's pid from INIT_PID; when the intermediate died after cloning it,
    the pid the kernel wrote to the shared slot is kept on the error (``exc.orphan``), so
    that the caller can kill and reap it."""
    try:
        pid = sync.expect(spawned.sock, sync.INIT_PID, spawned.pidfd).get("pid")
    except MininsError as e:
        e.orphan = spawned.tid.value if spawned.tid.value > 0 else None
        raise
    if not isinstance(pid, int) or pid <= 0:
        raise ContainerError("sync: INIT_PID without a valid pid")
    return pid


def await_setup(spawned, console=False):
    """Wait for SETUP_DONE; with ``console``, first for CONSOLE and the pty master it carries,
    which is returned (else ``None``)."""
    master = None
    if console:
        import select

        poller = select.poll()
        poller.register(spawned.sock.fileno(), select.POLLIN)
        if spawned.pidfd is not None:
            poller.register(spawned.pidfd, select.POLLIN)
        poller.poll()
        kind, payload, fds = sync.recv_fds(spawned.sock)
        if kind == sync.CONSOLE and len(fds) == 1:
            master = fds[0]
        else:
            for fd in fds:
                os.close(fd)
            if kind == sync.ERROR:
                raise sync.error_from_payload(payload)
            if kind is sync.EOF:
                raise ContainerError("the container process exited before CONSOLE")
            raise ContainerError("sync: expected CONSOLE, got %s" % kind)
    try:
        sync.expect(spawned.sock, sync.SETUP_DONE, spawned.pidfd)
    except BaseException:
        if master is not None:
            os.close(master)
        raise
    return master


def start(sock):
    """Release the final process to exec (START); return once it has (EOF), or raise the
    error it reported (a failed execve: its errno, 126/127 on the command line)."""
    sync.send(sock, sync.START)
    kind, payload = sync.recv(sock)
    if kind == sync.ERROR:
        raise sync.error_from_payload(payload)
    if kind is not sync.EOF:
        raise ContainerError("sync: unexpected %s after START" % kind)


def relay_console(proc, stdin=0, stdout=1):
    """Relay the pty of ``proc`` (anything with ``console_master``, ``pid``, ``lc`` and
    ``destroy()``) to our terminal in raw mode until its process exits."""
    from . import console

    try:
        with console.RawMode(stdin):
            console.copy_window_size(stdin, proc.console_master)
            console.relay(proc.console_master, proc.pid, stdin, stdout, proc.lc)
    except BaseException:
        proc.destroy()
        raise


# --- the foreground --------------------------------------------------------------------------

import _signal  # noqa: E402 - cheap, built in

FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT,
             _signal.SIGUSR1, _signal.SIGUSR2)
ABORTING = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT)
INSISTING = (_signal.SIGTERM, _signal.SIGINT)


def foreground(proc, stdin=0, stdout=1, after=None, created=None):
    """Run ``proc`` (a :class:`minins.container.Container` or :class:`minins.execin.Entry`:
    ``create()``, ``start()``, ``wait()``, ``kill(sig)``, ``destroy()``, ``pid``,
    ``console_master``) in the foreground; its exit code (128+N when signal N aborted the
    start).

    While it is being created, SIGINT, SIGTERM, SIGHUP and SIGQUIT abort the start (everything
    made so far is removed). Afterwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
    are forwarded to its process; a *second* SIGINT or SIGTERM kills it at once (SIGKILL), so
    that a PID 1 without handlers (``sleep``, ``python3 -m http.server``), which the kernel
    shields from the first, can still be stopped from the terminal. With a terminal, SIGWINCH
    copies our window size to its pty. The handlers never raise: a signal only records itself,
    and the code checks between steps, so no half-made container is ever left behind.
    ``created(proc)`` runs once it exists, before it starts (what it raises removes it);
    ``after(proc)`` runs once it has exited, before its exit code is returned."""
    phase = ["create"]
    aborted, queued, insisted = [], [], []

    def on_signal(sig, _frame):
        if phase[0] == "started":
            if sig in INSISTING:
                if insisted:
                    proc.kill(SIGKILL)
                    return
                insisted.append(sig)
            proc.kill(sig)
        elif phase[0] == "create":
            if sig in ABORTING and not aborted:
                aborted.append(sig)
        else:
            queued.append(sig)

    previous = install_handlers(on_signal, proc)
    try:
        proc.create()
        if aborted:
            proc.destroy()
            return 128 + aborted[0]
        if created is not None:
            try:
                created(proc)
            except BaseException:
                proc.destroy()
                raise
        phase[0] = "start"
        proc.start()
        phase[0] = "started"
        for sig in queued:
            proc.kill(sig)
        if proc.console_master is not None:
            relay_console(proc, stdin, stdout)
        code = proc.wait()
        if after is not None:
            after(proc)
        return code
    finally:
        restore_handlers(previous)


def install_handlers(on_signal, tty_owner=None):
    """``on_signal`` for every FORWARDED signal and, when ``tty_owner`` (anything with a
    ``console_master``) is given, SIGWINCH copying our window size to its pty. Returns what
    :func:`restore_handlers` puts back."""
    previous = {sig: _signal.signal(sig, on_signal) for sig in FORWARDED}
    if tty_owner is not None:
        def on_winch(_sig, _frame):
            if getattr(tty_owner, "console_master", None) is not None:
                from . import console

                console.copy_window_size(0, tty_owner.console_master)

        previous[_signal.SIGWINCH] = _signal.signal(_signal.SIGWINCH, on_winch)
    return previous


def restore_handlers(previous):
    for sig, handler in previous.items():
        _signal.signal(sig, handler)
