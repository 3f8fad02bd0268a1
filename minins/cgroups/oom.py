"""OOM events of a running container: wait for them, iterate over them, or poll a fd.

One event is one OOM *kill*, counted by the kernel's ``oom_kill`` counter of the memory
cgroup; the watchers report how much it grew.

* v1: an eventfd registered on ``memory.oom_control`` through ``cgroup.event_control``
  (Documentation/admin-guide/cgroup-v1/memory.rst, "OOM Control"). The kernel signals the
  eventfd every time the cgroup goes under OOM -- each charge attempt that fails, before the
  OOM killer has chosen a victim (mm/memcontrol-v1.c: memcg1_oom_prepare notifies, then
  mem_cgroup_out_of_memory kills) -- so one kill comes with any number of wake-ups, and the
  count may grow a moment after the wake-up. A wake-up is therefore only a cue: the
  ``oom_kill`` line of ``memory.oom_control`` (Linux 4.13+) is re-read, and for
  :data:`SETTLE` seconds after a wake-up it is re-read again with a short backoff, so a kill
  counted late is still reported once. (Without that line, on older kernels, each batch of
  wake-ups counts as one event.) The kernel also signals the eventfd when the cgroup is
  removed: once ``cgroup.event_control`` is gone the stream ends.
* v2: the ``oom_kill`` count in ``memory.events`` (cgroup-v2.rst), watched with inotify:
  the kernel sends IN_MODIFY when the file changes. kernfs sends nothing when the cgroup is
  removed, so the file is re-read at least every :data:`CHECK_INTERVAL` seconds and ENOENT
  ends the stream.

:func:`oom_kill_count` (pure) reads the counter out of either file's text; the managers'
``oom_kills()`` returns it for a container, e.g. to say why its init died.

Man pages: eventfd(2), inotify(7), poll(2).
"""
import errno as _errno
import os as _os
import select as _select
import struct as _struct
import time as _time

from ..errors import SyscallError

CHECK_INTERVAL = 0.5
SETTLE = 1.0  # v1: how long after a wake-up the kill counter is still re-read
_FIRST_RECHECK = 0.001


def oom_kill_count(text):
    """The ``oom_kill`` value of ``memory.oom_control`` (v1) or ``memory.events`` (v2)
    text, or ``None`` when it has no such line (v1 before Linux 4.13)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class OomEvents(object):
    """The OOM events of one cgroup from the moment this object was made.

    ``wait(timeout)`` returns the number of new events (OOM kills, at least 1), 0 when
    ``timeout`` seconds passed without one, or ``None`` once the cgroup is gone; iterating
    yields the counts until then. ``fileno()`` is readable when something happened (then call
    ``wait(0)``); while :attr:`pending` is true a kill may still be counted without the fd
    becoming readable again, so call ``wait`` again within :data:`CHECK_INTERVAL` s.
    ``total`` counts every event seen. Close it (or use ``with``).
    """

    pending = False

    def __init__(self, path, fd):
        self.path = path
        self.total = 0
        self.gone = False
        self._fd = fd
        self._poll = _select.poll()
        self._poll.register(fd, _select.POLLIN)

    def fileno(self):
        return self._fd

    def wait(self, timeout=None):
        if self.gone:
            return None
        n = self._wait(timeout)
        if n is None:
            self.gone = True
        elif n:
            self.total += n
        return n

    def __iter__(self):
        while True:
            n = self.wait(None)
            if n is None:
                return
            yield n

    def close(self):
        if self._fd >= 0:
            _os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _ready(self, timeout):
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        while True:
            try:
                return bool(self._poll.poll(ms))
            except InterruptedError:  # pragma: no cover - PEP 475 retries already
                continue


class V1OomEvents(OomEvents):
    def __init__(self, path, fs):
        from .. import libc

        efd = libc.eventfd(0, libc.EFD_CLOEXEC)
        try:
            ofd = fs.open(path + "/memory.oom_control")
            try:
                fs.write(path + "/cgroup.event_control", "%d %d" % (efd, ofd))
            finally:
                _os.close(ofd)
            # Read after registering: a kill from now on grows the count past this.
            self._last = oom_kill_count(fs.read(path + "/memory.oom_control"))
        except BaseException:
            _os.close(efd)
            raise
        OomEvents.__init__(self, path, efd)
        self._fs = fs
        self._removed = False
        self._woken = None  # monotonic time of the last wake-up still settling

    @property
    def pending(self):
        """A wake-up came less than :data:`SETTLE` s ago: its kill may be counted yet."""
        return self._woken is not None and _time.monotonic() - self._woken <= SETTLE

    def _count(self):
        try:
            return oom_kill_count(self._fs.read(self.path + "/memory.oom_control"))
        except SyscallError as e:
            if e.errno in (_errno.ENOENT, _errno.ENODEV):
                self._removed = True
                return None
            raise

    def _wait(self, timeout):
        deadline = None if timeout is None else _time.monotonic() + timeout
        step = _FIRST_RECHECK
        while not self._removed:
            n = self._grown()
            if n:
                return n
            now = _time.monotonic()
            if self._woken is not None and now - self._woken > SETTLE:
                self._woken = None
            left = None if deadline is None else max(0.0, deadline - now)
            if self._woken is not None:  # a kill may be counted a moment after its wake-up
                left = step if left is None else min(left, step)
                step = min(step * 2, CHECK_INTERVAL)
            if self._ready(left):  # (a timeout of 0 still looks once)
                try:
                    wakeups = _struct.unpack("=Q", _os.read(self._fd, 8))[0]
                except OSError as e:
                    raise SyscallError(e.errno, "read eventfd",
                                       self.path + "/memory.oom_control")
                if not self._fs.exists(self.path + "/cgroup.event_control"):
                    self._removed = True  # the removal signal; the OOMs before it are lost
                    break
                if self._last is None:  # no oom_kill counter: a batch of wake-ups is one
                    return wakeups
                self._woken, step = _time.monotonic(), _FIRST_RECHECK
            elif deadline is not None and _time.monotonic() >= deadline:
                return self._grown() or 0
        return None

    def _grown(self):
        """The growth of the kill counter since last reported, once a wake-up came."""
        if self._last is None or self._woken is None:
            return 0
        count = self._count()
        if count is None or count <= self._last:
            return 0
        n, self._last = count - self._last, count
        return n


class V2OomEvents(OomEvents):
    def __init__(self, path, fs):
        from .. import libc

        ifd = libc.inotify_init1(libc.IN_CLOEXEC | libc.IN_NONBLOCK)
        try:
            libc.inotify_add_watch(ifd, path + "/memory.events", libc.IN_MODIFY)
            OomEvents.__init__(self, path, ifd)
            self._fs = fs
            self._last = self._count()
        except BaseException:
            _os.close(ifd)
            raise
        if self._last is None:
            raise SyscallError(_errno.ENOENT, "open", path + "/memory.events")

    def _count(self):
        try:
            text = self._fs.read(self.path + "/memory.events")
        except SyscallError as e:
            if e.errno in (_errno.ENOENT, _errno.ENODEV):
                return None
            raise
        return oom_kill_count(text) or 0

    def _wait(self, timeout):
        deadline = None if timeout is None else _time.monotonic() + timeout
        while True:
            count = self._count()
            if count is None:
                return None
            if count > self._last:
                n, self._last = count - self._last, count
                return n
            left = CHECK_INTERVAL if deadline is None else deadline - _time.monotonic()
            if left <= 0:
                return 0
            if self._ready(min(left, CHECK_INTERVAL)):
                self._drain()

    def _drain(self):
        try:
            while _os.read(self._fd, 4096):
                pass
        except BlockingIOError:
            pass
