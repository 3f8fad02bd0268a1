"""Network namespaces owned by a test, and independent witnesses of what is inside them.

A :class:`Netns` is a forked child that unshares its network namespace (and a private mount
namespace where it mounts its own sysfs, so that ``/proc/<pid>/root/sys/class/net`` shows that
namespace's links), then blocks reading a pipe. Closing the pipe, or the test process dying,
ends the child; the namespace and every link in it die with it. Nothing is created in the
host's namespace.

Witnesses: sysfs (above) and iproute2 (``ip -j``) run inside the namespace with ``nsenter``,
where both are installed.
"""
import json
import os
import shutil
import subprocess

import pytest

from minins import libc
from minins.netlink import sock as nlsock

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
HAVE_IP = bool(shutil.which("ip") and shutil.which("nsenter"))


def _child(ready_w, hold_r):
    code = 1
    try:
        libc.unshare(CLONE_NEWNET | CLONE_NEWNS)
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks out
        libc.mount("sysfs", "/sys", "sysfs", 0)
        os.write(ready_w, b"1")
        os.read(hold_r, 1)  # EOF: the owner closed the pipe or died
        code = 0
    finally:
        os._exit(code)


class Netns:
    """A network namespace that lives until :meth:`close`."""

    def __init__(self):
        ready_r, ready_w = os.pipe()
        hold_r, hold_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os.close(hold_w)
            _child(ready_w, hold_r)
        os.close(ready_w)
        os.close(hold_r)
        self.pid, self._hold = pid, hold_w
        try:
            ok = os.read(ready_r, 1) == b"1"
            os.close(ready_r)
            if not ok:
                raise OSError("the namespace holder failed to start (no CLONE_NEWNET?)")
            self.path = "/proc/%d/ns/net" % pid
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self._reap()
            raise

    def _reap(self):
        os.close(self._hold)
        os.waitpid(self.pid, 0)

    def close(self):
        os.close(self.fd)
        self._reap()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def inode(self):
        return os.fstat(self.fd).st_ino

    def socket(self):
        """A minins netlink socket inside this namespace."""
        return nlsock.open_in_netns(self.fd, self.path)

    def enter(self):
        """``with ns.enter():`` -- the calling thread is inside this namespace."""
        return nlsock.thread_in_netns(self.fd, self.path)

    @property
    def sysfs(self):
        return "/proc/%d/root/sys/class/net" % self.pid

    def sys(self, link, attr):
        """The text of ``/sys/class/net/<link>/<attr>`` as this namespace sees it."""
        with open("%s/%s/%s" % (self.sysfs, link, attr)) as f:
            return f.read().strip()

    def links(self):
        return set(os.listdir(self.sysfs))

    def ip(self, *args):
        """``ip -j -d ARGS`` inside the namespace, parsed; ``None`` without iproute2."""
        if not HAVE_IP:
            return None
        out = subprocess.run(["nsenter", "--net=" + self.path, "ip", "-j", "-d"] + list(args),
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out) if out.strip() else []


@pytest.fixture
def netns():
    """A factory of namespaces that are all closed when the test ends."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    made = []

    def make():
        try:
            ns = Netns()
        except OSError as e:
            pytest.skip("cannot create a network namespace here: %s" % e)
        made.append(ns)
        return ns

    yield make
    for ns in reversed(made):
        ns.close()
