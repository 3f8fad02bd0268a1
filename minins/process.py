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

import _signal  # cheap, built in
import _thread

from . import child as _child
from . import libc as _libc
from . import sealed as _sealed
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

    def __init__(self, pid, pidfd, sock, tid, born_in_cgroup=False):
        self.pid, self.pidfd, self.sock, self.tid = pid, pidfd, sock, tid
        self.born_in_cgroup = born_in_cgroup  # cloned into spawn's cgroup_fd

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
    nothing. :meth:`prompt` and :meth:`relax` do the same by hand, each any number of times.
    The interval is the process's: while several threads are inside, the first one in saves
    it and the last one out restores it. tools/bench_embed.py measures it."""

    INTERVAL = 5e-5
    _lock = _thread.allocate_lock()
    _inside = [0, None]  # how many are prompting, the interval they found

    def __init__(self):
        self._prompting = False

    def __enter__(self):
        self.prompt()
        return self

    def __exit__(self, *exc):
        self.relax()
        return False

    def prompt(self):
        import sys

        if self._prompting:
            return
        self._prompting = True
        with self._lock:
            inside = self._inside
            if inside[0] == 0:
                inside[1] = sys.getswitchinterval()
                if inside[1] > self.INTERVAL:
                    sys.setswitchinterval(self.INTERVAL)
            inside[0] += 1

    def relax(self):
        import sys

        if not self._prompting:
            return
        self._prompting = False
        with self._lock:
            inside = self._inside
            inside[0] -= 1
            if inside[0] == 0:
                sys.setswitchinterval(inside[1])


def spawn(make_plan, lc=_libc, cgroup_fd=None):
    """Fork the intermediate for the plan that ``make_plan(child_end, runtime_end, tid)``
    returns (``tid`` a :class:`SharedPid`); the runtime's side as :class:`Spawned`. The
    child's end is closed here.

    ``cgroup_fd``: a cgroup v2 directory to clone the intermediate into at birth
    (:func:`minins.libc.fork_into_cgroup`), where that can be done: the real libc, and no
    other thread in this process (a raw clone runs no atfork handler). Whether it was is
    ``Spawned.born_in_cgroup``; if not (any clone3 error, e.g. ENOSYS on an older kernel or
    under qemu-user), the intermediate is forked as usual and the caller migrates it."""
    runtime_end, child_end = sync.socketpair()
    tid = SharedPid()
    born = False
    try:
        plan = make_plan(child_end, runtime_end, tid)
        if plan.interpreter_fd is None:
            plan.preload()
        pid = None
        if cgroup_fd is not None and lc is _libc and _single_threaded():
            try:
                pid = lc.fork_into_cgroup(cgroup_fd)
                born = True
            except MininsError:
                pid = None
        if pid is None:
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
    return Spawned(pid, watch_pid(pid, lc), runtime_end, tid, born)


def _single_threaded():
    """Is this the process's only thread (``/proc/self/task`` lists one)?"""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


# --- the forked helper: a start that does not compete for the GIL -----------------------------

def other_threads():
    """Does this process run other Python threads (``threading.active_count() > 1``)? Without
    the threading module loaded, no thread was started through it: False, and nothing is
    imported to find out."""
    import sys

    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


_HELPER_MAX = 1 << 20  # bound of one helper message (a pickled result or error)


def in_helper(body, keep=(), callback=None):
    """Run ``body(ctl)`` in a forked, single-threaded helper process; return what it returns
    or raise what it raises (pickled across: the same type, errno and attributes).

    Why: in a program whose other threads keep the interpreter busy, every blocking system
    call of the runtime's side must win the GIL back afterwards (up to the switch interval,
    5 ms, behind each busy thread), and a container's start makes hundreds of them. In the
    helper, a copy of this process with only the calling thread, none of them waits; the
    caller blocks in one ``recv`` while the body runs, and makes a handful of other calls
    with a 50 us switch interval (:class:`prompt_gil`): before the fork, and from the body's
    :func:`helper_exited` (its cleanup, overlapped with our wake-up) to the end.

    ``keep``: the descriptors the body needs (besides 0, 1, 2 and the sealed interpreter
    copy); every other descriptor is closed in the helper, so that it holds none of the
    program's pipes or sockets while it lives. With ``callback``, the body calls
    :func:`helper_started` once its process runs: ``callback()`` then runs here, in the
    calling thread, while the helper waits; if it raises, :func:`helper_started` returns
    False in the body, which should undo what it made, and the error is raised here once the
    body has returned. An
    exception in the caller while it waits (KeyboardInterrupt, say) makes ``ctl`` readable in
    the helper (see :func:`helper_aborted`), and is raised once the helper is done.

    The messages (one ``SOCK_SEQPACKET`` datagram each, on the socket pair ``ctl`` is the
    helper's end of): ``started`` (helper -> caller, only with a callback; the helper waits
    for ``go`` or ``abort``), ``abort`` (caller -> helper, at any time), ``exited`` (helper ->
    caller: the body's process is gone, the cleanup begins) and, last, the pickled
    ``(kind, value, modules)``: ``"result"`` or ``"error"``, and the modules the helper
    imported. EOF without it: the helper died (killed, say).

    The helper: parent-death signal SIGKILL (like the init's, it fires when the *thread* that
    called this exits); signals this process handles in Python are ignored in it (SIGCHLD is
    reset to its default), so it never runs the program's code; it never logs or prints (a
    lock another thread held at the fork stays held in it) and ends with ``os._exit``."""
    import pickle

    gil = prompt_gil()
    gil.prompt()
    try:
        parent = os.getpid()
        mine, theirs = sync.socketpair()
        try:
            pid = _libc.fork()
        except BaseException:
            mine.close()
            theirs.close()
            raise
        if pid == 0:
            mine.close()
            _helper_main(body, theirs, set(keep), parent)  # never returns
        theirs.close()
        # While the body runs, the program's threads keep their own interval: switching
        # every 50 us, they would spend on futexes the CPU the helper needs.
        gil.relax()
        try:
            return _helper_result(mine, callback, gil, pickle)
        finally:
            gil.prompt()
            mine.close()
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass  # the program reaps every child itself
    finally:
        gil.relax()


def _helper_result(mine, callback, gil, pickle):
    pending = []  # an error of ours, raised once the helper is done
    while True:
        try:
            data = _recv_last(mine)
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt while it runs
            if pending:
                raise
            pending.append(e)
            _abort_helper(mine)
            continue
        if data == b"started":
            try:
                callback()
            except BaseException as e:  # noqa: B902
                pending.append(e)
                _abort_helper(mine)
                continue
            try:
                mine.send(b"go")
            except OSError:
                pass  # the helper is gone: the next read says so
            continue
        if data == b"exited":
            gil.prompt()  # what is left is short: the cleanup, then the result
            continue
        if not data:
            if pending:
                raise pending[0]
            raise ContainerError("the runtime's helper process exited without a word")
        kind, value, modules = pickle.loads(data)
        _load_modules(modules)
        if pending:
            raise pending[0]
        if kind == "error":
            raise value
        return value


def _recv_last(sock):
    """One message; ``b""`` once the helper is gone. A peer that died with a message of
    ours unread is reported as ECONNRESET once, before what it sent last (unix(7))."""
    for _ in range(2):
        try:
            return sock.recv(_HELPER_MAX)
        except ConnectionResetError:
            continue
    return b""


def _abort_helper(sock):
    try:
        sock.send(b"abort")
    except OSError:
        pass  # gone already: its result (or EOF) is what comes next


def _load_modules(names):
    """Import here what the helper imported and we lack, so that the next helper, a copy of
    us, has it already (the first start pays once)."""
    import sys

    for name in names:
        if name not in sys.modules:
            try:
                __import__(name)
            except Exception:  # noqa: B902 - only a head start
                pass


def helper_started(ctl):
    """Inside :func:`in_helper`'s body, once its process runs, when the caller has a
    callback: let it run, and wait for it. False when it raised (or the caller was
    interrupted): the body should undo what it made."""
    ctl.send(b"started")
    return ctl.recv(16) == b"go"


def helper_exited(ctl):
    """Inside :func:`in_helper`'s body, once its process has exited: tell the caller, which
    shortens its switch interval again while the body cleans up."""
    ctl.send(b"exited")


def helper_aborted(ctl, pidfd):
    """Inside :func:`in_helper`'s body: wait until the process behind ``pidfd`` exits (False)
    or the caller gives up (True: an exception in the calling thread, or the caller gone)."""
    import select

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(ctl.fileno(), select.POLLIN)
    ready = dict(poller.poll())
    return pidfd not in ready


def _helper_main(body, ctl, keep, parent):
    """The helper's whole life. Never returns."""
    import gc
    import sys

    # The program's objects are never collected here: one holding a descriptor closed below
    # would close, when finalized, whatever of ours got that number since.
    gc.freeze()
    modules = set(sys.modules)
    try:
        try:
            _libc.prctl(1, SIGKILL, op="prctl PR_SET_PDEATHSIG")  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)  # the caller died before the line above
            _quiet_signals()
            keep.update((0, 1, 2, ctl.fileno()))
            keep.update(_INTERPRETER)
            _close_all_but(keep)
            msg = ("result", body(ctl))
        except BaseException as e:  # noqa: B902 - never unwind into the program's code
            msg = ("error", e)
        new = [m for m in list(sys.modules) if m not in modules]
        import pickle

        try:
            data = pickle.dumps(msg + (new,))
        except Exception:  # noqa: B902 - an attribute pickle cannot carry
            err = sync.error_from_payload(sync.error_payload(msg[1])) if msg[0] == "error" \
                else ContainerError("the helper's result cannot be sent: %r" % (msg[1],))
            data = pickle.dumps(("error", err, new))
        ctl.send(data)
    finally:
        os._exit(0)


def _quiet_signals():
    """In the helper: a signal the program handles in Python is the program's business
    (ignored here: a Ctrl-C reaches the whole process group, and the caller turns its
    KeyboardInterrupt into an abort); SIGCHLD back to its default, for our waitpid."""
    for sig in _signal.valid_signals():
        try:
            handler = _signal.getsignal(sig)
        except (ValueError, OSError):
            continue
        if callable(handler):
            _signal.signal(sig, _signal.SIG_DFL if sig == _signal.SIGCHLD else _signal.SIG_IGN)


def _close_all_but(keep):
    """Close every descriptor not in ``keep``: close_range(2) over the gaps (5.9), else each
    one /proc/self/fd lists."""
    try:
        first = 0
        for fd in sorted(keep) + [None]:
            last = 0xFFFFFFFF if fd is None else fd - 1
            if first <= last:
                _libc.close_range(first, last)
            if fd is None:
                break
            first = fd + 1
    except OSError:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass


# --- the runtime's executable, out of the container's reach (CVE-2019-5736) -------------------

_INTERPRETER = _sealed.COPIES  # the sealed copy, made once per runtime process


def sealed_interpreter():
    """The sealed copy of the interpreter (:func:`minins.sealed.copy`)."""
    return _sealed.copy()


def needs_sealed_interpreter(cfg, lc=_libc):
    """Must a forked process re-execute from the sealed copy (:func:`minins.sealed.needed`)?"""
    return _sealed.needed(cfg, lc)


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
