"""OOM events of a running container: wait for them, iterate over them, or poll a fd.

* v1: an eventfd registered on ``memory.oom_control`` through ``cgroup.event_control``
  (Documentation/admin-guide/cgroup-v1/memory.rst, "OOM Control"). The kernel signals the
  eventfd once per OOM in the cgroup, and once more when the cgroup is removed: after each
  wake-up the directory is checked, so removal ends the stream instead of counting as an OOM.
* v2: the ``oom_kill`` count in ``memory.events`` (cgroup-v2.rst), watched with inotify:
  the kernel sends IN_MODIFY when the file changes. kernfs sends nothing when the cgroup is
  removed, so the file is re-read at least every :data:`CHECK_INTERVAL` seconds and ENOENT
  ends the stream.

Man pages: eventfd(2), inotify(7), poll(2).
"""
import errno as _errno
import os as _os
import select as _select
import struct as _struct
import time as _time

from ..errors import SyscallError

CHECK_INTERVAL = 0.5


class OomEvents(object):
    """The OOM events of one cgroup from the moment this object was made.

    ``wait(timeout)`` returns the number of new events (at least 1), 0 when ``timeout``
    seconds passed without one, or ``None`` once the cgroup is gone; iterating yields the
    counts until then. ``fileno()`` is readable when something happened (then call
    ``wait(0)``). ``total`` counts every event seen. Close it (or use ``with``).
    """

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
        except BaseException:
            _os.close(efd)
            raise
        OomEvents.__init__(self, path, efd)
        self._fs = fs
        self._removed = False

    def _wait(self, timeout):
        if self._removed or not self._ready(timeout):
            return None if self._removed else 0
        try:
            n = _struct.unpack("=Q", _os.read(self._fd, 8))[0]
        except OSError as e:
            raise SyscallError(e.errno, "read eventfd", self.path + "/memory.oom_control")
        if not self._fs.exists(self.path + "/cgroup.event_control"):
            # The removal signal came in this count; report the OOMs before it, then end.
            self._removed = True
            return n - 1 if n > 1 else None
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
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

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
