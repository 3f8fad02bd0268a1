"""Every libc wrapper called for real at least once, and the fake kept in step."""
import errno
import inspect
import os
import signal
import stat
import tempfile

import pytest

from minins import libc
from minins.errors import SyscallError

from fakes import FakeLibc
from kernel import needs_root


def public_functions(obj):
    return {n for n, f in inspect.getmembers(obj, callable)
            if not n.startswith("_") and (inspect.isfunction(f) or inspect.ismethod(f))
            and getattr(f, "__module__", None) in ("minins.libc", "fakes")}


def test_fake_and_real_have_the_same_calls():
    real = public_functions(libc)
    fake = public_functions(FakeLibc()) - {"names"}
    assert real == fake, "libc and tests/fakes.py differ: %s" % sorted(real ^ fake)


def test_fake_has_the_same_signatures():
    for name in public_functions(libc):
        real = list(inspect.signature(getattr(libc, name)).parameters)
        fake = list(inspect.signature(getattr(FakeLibc(), name)).parameters)
        assert real == fake, name


def in_child(fn):
    """Run ``fn`` in a forked child; its exception text (or None) comes back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            fn()
            msg = b""
        except BaseException as e:  # noqa: B902
            msg = ("%s: %s" % (type(e).__name__, e)).encode() or b"?"
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out.decode() or None


def raises_errno(err, fn, *args, **kw):
    with pytest.raises(SyscallError) as e:
        fn(*args, **kw)
    assert e.value.errno == err and isinstance(e.value, OSError)
    return e.value


def test_errors_name_operation_and_path():
    e = raises_errno(errno.ENOENT, libc.mount, None, "/no/such/dir", "proc", 0)
    assert str(e) == "mount /no/such/dir: ENOENT (No such file or directory)"
    raises_errno(errno.ENOENT, libc.chroot, "/no/such/dir")
    raises_errno(errno.EINVAL, libc.umount2, "/proc", 0x80000000)


def test_gettid_prctl_capget():
    assert libc.gettid() == os.getpid()
    assert libc.prctl(3) in (0, 1)  # PR_GET_DUMPABLE
    raises_errno(errno.EINVAL, libc.prctl, 0x7FFFFFFF)
    eff, perm, inh = libc.capget()
    assert eff & ~perm == 0
    assert libc.capget(os.getpid()) == (eff, perm, inh)


def test_prlimit_reads_and_rejects():
    soft, hard = libc.prlimit(0, 7)  # RLIMIT_NOFILE
    assert (soft, hard) == tuple(__import__("resource").getrlimit(7))
    raises_errno(errno.EINVAL, libc.prlimit, 0, 7, (hard + 1 if hard < 2 ** 63 else 2, 1))


def test_pidfd():
    fd = libc.pidfd_open(os.getpid())
    try:
        libc.pidfd_send_signal(fd, 0)
    finally:
        os.close(fd)
    raises_errno(errno.EBADF, libc.pidfd_send_signal, -1, 0)
    raises_errno(errno.EINVAL, libc.pidfd_open, os.getpid(), 0xFFFF)


def test_events():
    efd = libc.eventfd(3)
    assert os.read(efd, 8) == (3).to_bytes(8, "little")
    os.close(efd)
    ifd = libc.inotify_init1()
    try:
        assert libc.inotify_add_watch(ifd, "/tmp", libc.IN_MODIFY) >= 1
        raises_errno(errno.ENOENT, libc.inotify_add_watch, ifd, "/no/such", libc.IN_MODIFY)
    finally:
        os.close(ifd)
    raises_errno(errno.EINVAL, libc.eventfd, 0, 0x7FFF)


def test_bpf_rejects_an_empty_map():
    import ctypes

    attr = (ctypes.c_uint8 * 72)()
    e = raises_errno(errno.EINVAL, libc.bpf, 0, attr)  # BPF_MAP_CREATE with nothing set
    assert "command 0" in str(e)


def test_ioctl_ns_type_and_enotty():
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        assert libc.ioctl(fd, 0xB703) == 0x40000000
    finally:
        os.close(fd)
    with tempfile.TemporaryFile() as f:
        raises_errno(errno.ENOTTY, libc.ioctl, f.fileno(), 0xB703)


def test_openat2_resolves_in_root(tmp_path):
    (tmp_path / "etc").symlink_to("/elsewhere/etc")  # resolved in the root: no such dir
    root = os.open(str(tmp_path), os.O_PATH)
    try:
        raises_errno(errno.ENOENT, libc.openat2, root, "etc/hostname", os.O_PATH,
                     resolve=libc.RESOLVE_IN_ROOT)
        fd = libc.openat2(root, ".", os.O_PATH | os.O_DIRECTORY)
        os.close(fd)
    finally:
        os.close(root)


def test_mknod_makes_a_fifo(tmp_path):
    libc.mknod(str(tmp_path / "p"), stat.S_IFIFO | 0o600, 0)
    assert stat.S_ISFIFO(os.stat(str(tmp_path / "p")).st_mode)
    raises_errno(errno.EEXIST, libc.mknod, str(tmp_path / "p"), stat.S_IFIFO | 0o600, 0)


def test_close_range_and_reset_signals_in_a_child():
    def child():
        r, w = os.pipe()
        libc.close_range(r, r)
        try:
            os.fstat(r)
        except OSError:
            pass
        else:
            raise AssertionError("close_range left the fd open")
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        libc.reset_signals()
        assert signal.getsignal(signal.SIGPIPE) in (signal.SIG_DFL, signal.SIG_IGN)
        with open("/proc/self/status") as f:
            status = f.read()
        assert "SigIgn:\t0000000000000000" in status, status
    assert in_child(child) is None


@needs_root
def test_namespace_and_mount_calls_in_a_child(tmp_path):
    target = str(tmp_path)

    def child():
        libc.unshare(0x00020000 | 0x04000000)  # NEWNS | NEWUTS
        libc.mount(None, "/", None, 0x4000 | 1 << 18)  # MS_REC | MS_PRIVATE
        libc.mount("tmpfs", target, "tmpfs", 0, "size=1m")
        os.mkdir(target + "/old")
        libc.sethostname("minins-libc-test")
        assert os.uname().nodename == "minins-libc-test"
        fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
        libc.setns(fd, 0x04000000, "/proc/self/ns/uts")
        os.close(fd)
        raises_errno(errno.ENOENT, libc.pivot_root, target, target + "/nope")
        raises_errno(errno.EINVAL, libc.unshare, 0x1)  # not a CLONE_NEW* flag
        raises_errno(errno.EBADF, libc.setns, -1, 0)
        libc.chroot("/")
        os.chdir(target)
        libc.pivot_root(".", "old")
        libc.umount2("/old", 2)  # MNT_DETACH
        assert os.listdir("/") == ["old"]
        libc.umount2("/", 2)
    assert in_child(child) is None


@needs_root
def test_identity_calls_in_a_child():
    def child():
        eff, perm, inh = libc.capget()
        libc.capset(eff & ~(1 << 12), perm & ~(1 << 12), inh)  # drop CAP_NET_ADMIN
        assert not libc.capget()[0] >> 12 & 1
        libc.setgroups([1, 2])
        libc.setresgid(1, 1, 1)
        libc.setresuid(1, 1, 1)
        assert os.getresuid() == (1, 1, 1) and os.getresgid() == (1, 1, 1)
        raises_errno(errno.EPERM, libc.setresuid, 0, 0, 0)
        raises_errno(errno.EPERM, libc.setgroups, [0])
        raises_errno(errno.EPERM, libc.setresgid, 0, 0, 0)
        raises_errno(errno.EPERM, libc.sethostname, "x")
    assert in_child(child) is None


def test_fork_and_clone_parent():
    def child():
        libc.unshare(0x20000000) if os.geteuid() == 0 else None
        pid = libc.clone_parent()
        if pid == 0:
            os._exit(5)
        # the sibling is our parent's child, not ours
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, 0)
        os.write(w, str(pid).encode())
    r, w = os.pipe()
    pid = libc.fork()
    if pid == 0:
        os.close(r)
        try:
            child()
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        sibling = int(f.read())
    assert os.waitpid(pid, 0)[1] == 0
    _, status = os.waitpid(sibling, 0)
    assert os.WEXITSTATUS(status) == 5


def test_seccomp_asks_the_kernel_for_actions():
    import ctypes

    allow = ctypes.c_uint32(0x7FFF0000)
    assert libc.seccomp(2, 0, allow) == 0  # SECCOMP_GET_ACTION_AVAIL
    raises_errno(errno.EOPNOTSUPP, libc.seccomp, 2, 0, ctypes.c_uint32(0x12340000))
