"""The cgroupfs seam: every file operation the drivers make, in one small class.

:class:`CgroupFs` maps each method to one or two system calls and raises
:class:`~minins.errors.SyscallError` (errno, operation, path, and the value written) on
failure. The drivers take an instance as a parameter, so tests run them against a temporary
tree with a subclass that plays the kernel's part (creating the interface files on mkdir,
injecting an errno at a chosen step, recording the BPF program).

Also here: :func:`remove_tree`, the bounded removal with backoff on EBUSY; and
:class:`CheckedCgroupFs` (:data:`CHECKED`), the seam for managers rebuilt from a state file,
whose ``rmdir`` removes only cgroupfs directories and never crosses into another filesystem
(:func:`fs_magic`: statfs(2)'s ``CGROUP_SUPER_MAGIC``/``CGROUP2_SUPER_MAGIC``).

Man pages: open(2), write(2), mkdir(2), rmdir(2); kernel: cgroup-v1/cgroups.rst,
cgroup-v2.rst ("Removing a cgroup": only an empty cgroup with no live task can go).
"""
import errno as _errno
import os as _os
import stat as _stat
import time as _time

from ..errors import SyscallError

_WRITE = _os.O_WRONLY | _os.O_CLOEXEC
_READ = _os.O_RDONLY | _os.O_CLOEXEC


class CgroupFs(object):
    """The real cgroup filesystem."""

    def mkdir(self, path):
        try:
            _os.mkdir(path, 0o755)
        except OSError as e:
            raise SyscallError(e.errno, "mkdir", path)

    def rmdir(self, path):
        try:
            _os.rmdir(path)
        except OSError as e:
            raise SyscallError(e.errno, "rmdir", path)

    def write(self, path, value):
        """Write ``value`` (str) in one write(2), as the kernel wants one value per write."""
        data = value.encode() if isinstance(value, str) else value
        try:
            fd = _os.open(path, _WRITE)
        except OSError as e:
            raise SyscallError(e.errno, "open", path)
        try:
            _os.write(fd, data)
        except OSError as e:
            raise SyscallError(e.errno, "write", path, "value %r" % data.decode(errors="replace"))
        finally:
            _os.close(fd)

    def write_lines(self, path, values):
        """Write each value with its own write(2) on one open file (devices.allow rules)."""
        try:
            fd = _os.open(path, _WRITE)
        except OSError as e:
            raise SyscallError(e.errno, "open", path)
        try:
            for value in values:
                try:
                    _os.write(fd, value.encode())
                except OSError as e:
                    raise SyscallError(e.errno, "write", path, "value %r" % value)
        finally:
            _os.close(fd)

    def read(self, path):
        try:
            fd = _os.open(path, _READ)
        except OSError as e:
            raise SyscallError(e.errno, "open", path)
        try:
            chunks = []
            while True:
                chunk = _os.read(fd, 65536)
                if not chunk:
                    return b"".join(chunks).decode()
                chunks.append(chunk)
        except OSError as e:
            raise SyscallError(e.errno, "read", path)
        finally:
            _os.close(fd)

    def exists(self, path):
        return _os.path.exists(path)

    def subdirs(self, path):
        """The child cgroups of ``path`` (ENOENT: none)."""
        try:
            with _os.scandir(path) as it:
                return [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []
        except OSError as e:
            raise SyscallError(e.errno, "scandir", path)

    def open(self, path, flags=_READ):
        try:
            return _os.open(path, flags | _os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno, "open", path)

    def attach_devices(self, path, rules, replace=True):
        """Load the BPF device program for ``rules`` and attach it to the cgroup ``path``;
        with ``replace``, detach the device programs that were there before."""
        from . import bpf_devices

        fd = self.open(path, _os.O_RDONLY | _os.O_DIRECTORY)
        try:
            bpf_devices.attach(fd, bpf_devices.program(rules), path, replace)
        finally:
            _os.close(fd)


REAL = CgroupFs()

CGROUP_SUPER_MAGIC = 0x27E0EB  # linux/magic.h: statfs(2)'s f_type of cgroup v1
CGROUP2_SUPER_MAGIC = 0x63677270  # and of cgroup v2
CGROUP_MAGICS = (CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC)
_AT_FDCWD = -100
_have_openat2 = [True]


def open_dir(path, symlinks=True):
    """An ``O_PATH`` descriptor of the directory ``path`` (its last component never
    followed), or ``None`` when it does not exist. With ``symlinks=False`` no component may
    be a symlink (:class:`SyscallError` ELOOP): one openat2(2) with ``RESOLVE_NO_SYMLINKS``
    (Linux 5.6), else realpath(3) and open(2)."""
    from .. import libc

    flags = _os.O_PATH | _os.O_NOFOLLOW | _os.O_DIRECTORY | _os.O_CLOEXEC
    if not symlinks and _have_openat2[0]:
        try:
            return libc.openat2(_AT_FDCWD, path, flags, resolve=libc.RESOLVE_NO_SYMLINKS)
        except OSError as e:
            if e.errno == _errno.ENOENT and _os.path.realpath(path) == path:
                return None
            if e.errno not in (_errno.ENOSYS, _errno.EPERM):  # before 5.6; old seccomp
                return _open_error(e.errno, path)
            _have_openat2[0] = False
    if not symlinks and _os.path.realpath(path) != path:
        return _open_error(_errno.ELOOP, path)
    try:
        return _os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        return _open_error(e.errno, path)


def _open_error(err, path):
    if err == _errno.ELOOP or (err in (_errno.ENOTDIR, _errno.ENOENT)
                               and _os.path.islink(path)):
        raise SyscallError(_errno.ELOOP, "open", path, "a component is a symlink")
    if err == _errno.ENOENT:  # a symlink further up, found by realpath
        raise SyscallError(_errno.ELOOP, "open", path, "a component is a symlink")
    raise SyscallError(err, "open", path)


def fs_magic(path, symlinks=True):
    """statfs(2)'s ``f_type`` of the directory ``path`` (see :func:`open_dir`); ``None``
    when it does not exist."""
    from .. import libc

    fd = open_dir(path, symlinks)
    if fd is None:
        return None
    try:
        return libc.fstatfs_type(fd)
    finally:
        _os.close(fd)


class CheckedCgroupFs(CgroupFs):
    """The seam for managers rebuilt from saved paths (a state file is input):
    ``rmdir`` only removes a real directory (not a symlink) on cgroupfs, on the same
    filesystem as its parent, and raises :class:`~minins.errors.StateError` for anything
    else. :func:`remove_tree` calls ``rmdir`` on a directory before it lists it
    (``subdirs`` never follows a symlink), so a removal never descends into another
    filesystem mounted inside a cgroup."""

    def rmdir(self, path):
        _check_removable(path)
        CgroupFs.rmdir(self, path)


CHECKED = CheckedCgroupFs()


def _check_removable(path):
    from ..errors import StateError

    try:
        st = _os.lstat(path)
    except OSError as e:
        raise SyscallError(e.errno, "rmdir", path) from None  # ENOENT: gone already
    if not _stat.S_ISDIR(st.st_mode):
        raise StateError("cgroup_paths: refusing to remove %s: not a directory" % path)
    parent = _os.path.dirname(path.rstrip("/")) or "/"
    if _os.lstat(parent).st_dev != st.st_dev:
        raise StateError("cgroup_paths: refusing to remove %s: another filesystem is mounted "
                         "there" % path)
    magic = fs_magic(path)
    if magic is not None and magic not in CGROUP_MAGICS:
        raise StateError("cgroup_paths: refusing to remove %s: not a cgroup directory "
                         "(filesystem magic %#x)" % (path, magic))

# Removal: rounds of rmdir with doubling pauses (10, 20, 40, ... ms), for at most this long.
REMOVE_TIMEOUT = 2.0
_FIRST_PAUSE = 0.01


def remove_tree(fs, path, timeout=REMOVE_TIMEOUT, busy_pids=None):
    """Remove the cgroup ``path`` and any cgroups the container made below it, deepest first.

    EBUSY (a task still exiting) and ENOTEMPTY are retried with doubling pauses until
    ``timeout``; ENOENT counts as removed. Returns ``None`` when ``path`` is gone, else raises
    the last :class:`SyscallError`, naming the path that would not go (and, through
    ``busy_pids(path)``, what still holds it).
    """
    deadline = _time.monotonic() + timeout
    pause = _FIRST_PAUSE
    attempts = 0
    while True:
        attempts += 1
        err = _remove_once(fs, path)
        if err is None:
            return None
        left = deadline - _time.monotonic()
        if err.errno not in (_errno.EBUSY, _errno.ENOTEMPTY) or left <= 0:
            detail = "still there after %d attempts in %.2f s" % (attempts, timeout)
            pids = busy_pids(err.path) if busy_pids else None
            if pids:
                detail += "; processes inside: %s" % " ".join(map(str, pids[:20]))
            raise SyscallError(err.errno, "rmdir", err.path, detail)
        _time.sleep(min(pause, left))
        pause *= 2


def _remove_once(fs, path):
    """One depth-first pass; the first error or ``None`` when ``path`` is gone. The
    directory is listed only when rmdir fails: cgroups rarely have children."""
    try:
        fs.rmdir(path)
        return None
    except SyscallError as e:
        if e.errno == _errno.ENOENT:
            return None
        if e.errno not in (_errno.EBUSY, _errno.ENOTEMPTY):
            return e
        first = e
    subs = fs.subdirs(path)
    if not subs:
        return first
    for sub in subs:
        err = _remove_once(fs, sub)
        if err is not None:
            return err
    try:
        fs.rmdir(path)
    except SyscallError as e:
        if e.errno != _errno.ENOENT:
            return e
    return None
