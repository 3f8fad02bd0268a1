"""The one seam between minins and the kernel: thin ctypes wrappers, one per system call.

Each function makes one call, checks it, and raises :class:`minins.errors.SyscallError`
(an ``OSError`` carrying the errno, the operation and the path) when it fails; nothing returns
-1. Composite logic (the pivot_root dance, the uid_map writing order, ...) lives in the modules
above, which take this module as a parameter so that tests can put a recording fake in its
place (``tests/fakes.py``; ``tests/test_libc.py`` keeps the two in step).

libc is opened with ``ctypes.CDLL(None, use_errno=True)`` and every prototype is declared.
Calls that glibc or musl do not both wrap (pivot_root, capget/capset, setns's friends
pidfd_open and close_range, bpf, openat2, prlimit64, clone, the new mount API, seccomp) go through
``syscall(2)`` with the number for the running architecture from :mod:`minins.arch`; no
glibc-only symbol is used, so minins runs on musl too.

Man pages: unshare(2), setns(2), mount(2), umount(2), pivot_root(2), chroot(2), prctl(2),
capget(2), prlimit(2), clone(2), pidfd_open(2), pidfd_send_signal(2), close_range(2),
eventfd(2), inotify(7), bpf(2), openat2(2), ioctl(2), sethostname(2), open_tree(2),
move_mount(2), fsopen(2), fsconfig(2), fsmount(2), mount_setattr(2), seccomp(2).
"""
import ctypes as _ct
import os as _os

from . import arch as _arch
from .errors import SyscallError

_libc = _ct.CDLL(None, use_errno=True)
# The Python C API, called with the GIL held, for fork/clone (see fork() below).
_pyapi = _ct.PyDLL(None, use_errno=True)
_NR = _arch.numbers()

c_int, c_uint, c_long, c_ulong = _ct.c_int, _ct.c_uint, _ct.c_long, _ct.c_ulong
c_char_p, c_void_p, c_uint64 = _ct.c_char_p, _ct.c_void_p, _ct.c_uint64


_used = set()  # the C library's symbols this module uses (LIBC_SYMBOLS, below)


def _fn(name, restype, *argtypes, lib=_libc):
    """A fresh function pointer for ``name`` with the given prototype."""
    if not name.startswith("Py"):  # the PyOS_* hooks are CPython's, not libc's
        _used.add(name)
    f = lib[name]
    f.restype = restype
    f.argtypes = argtypes
    return f


def _sys(name, *argtypes, lib=_libc):
    """``syscall(SYS_name, ...)`` with a declared prototype; returns a callable taking the args."""
    _used.add("syscall")
    f = lib["syscall"]
    f.restype = c_long
    f.argtypes = (c_long,) + argtypes
    nr = _NR[name]
    return lambda *args: f(nr, *args)


def _fail(op, path=None, detail=None):
    return SyscallError(_ct.get_errno(), op, path, detail)


def _b(path):
    return None if path is None else _os.fsencode(path)


def _s(path):
    return None if path is None else _os.fsdecode(path)


# --- namespaces ------------------------------------------------------------------------------

_unshare = _fn("unshare", c_int, c_int)
_setns = _fn("setns", c_int, c_int, c_int)


def unshare(flags):
    if _unshare(flags) == -1:
        raise _fail("unshare", detail="flags %#x" % flags)


def setns(fd, nstype=0, path=None):
    """Join the namespace ``fd`` refers to; ``path`` only names it in an error."""
    if _setns(fd, nstype) == -1:
        raise _fail("setns", path)


# --- processes -------------------------------------------------------------------------------

_before_fork = _fn("PyOS_BeforeFork", None, lib=_pyapi)
_after_fork_parent = _fn("PyOS_AfterFork_Parent", None, lib=_pyapi)
_after_fork_child = _fn("PyOS_AfterFork_Child", None, lib=_pyapi)
_clone = _sys("clone", c_ulong, c_void_p, c_void_p, c_void_p, c_void_p, lib=_pyapi)

CLONE_PARENT = 0x00008000
_SIGCHLD = 17


def _forked(pid, op):
    # Exactly what os.fork() does around the call, with the GIL held throughout (PyDLL).
    if pid == 0:
        _after_fork_child()
        return 0
    err = _ct.get_errno()
    _after_fork_parent()
    if pid < 0:
        raise SyscallError(err, op)
    return pid


def fork():
    """``os.fork()``: libc's fork (its atfork handlers run) with CPython's before/after-fork
    handling done in C, around the call. It must be: a fork made through ctypes returns into
    the interpreter's loop before ``PyOS_AfterFork_Child`` could run, and when another thread
    had asked for the GIL just then, the child's first eval-breaker check tries to hand the
    GIL over through a mutex that thread held at the fork -- forever (seen with 8 busy
    threads). The child is single-threaded. (On 3.12+ Python may warn that the process has
    threads; minins's child only execs.)"""
    try:
        return _os.fork()
    except OSError as e:
        raise SyscallError(e.errno, "fork") from None


CLONE_PARENT_SETTID = 0x00100000


def clone_parent(tid_addr=None):
    """Fork a sibling: a child whose parent is our parent (``CLONE_PARENT``).

    With ``tid_addr`` (the address of a 32-bit int, e.g. in a MAP_SHARED page the parent can
    read too) the kernel stores the child's pid there before either process runs again
    (``CLONE_PARENT_SETTID``): the runtime learns it even if we die right after.

    A raw clone runs no libc atfork handler, so call it only from a single-threaded process
    (a child made by :func:`fork`), where no other thread can hold a lock. CPython's own
    after-fork handling is run in the new process as ``os.fork`` would.
    """
    flags = CLONE_PARENT | _SIGCHLD | (CLONE_PARENT_SETTID if tid_addr else 0)
    _before_fork()
    # parent_tid is the third argument of clone on every supported architecture
    return _forked(_clone(flags, None, tid_addr, None, None), "clone")


CLONE_INTO_CGROUP = 0x200000000


class _CloneArgs(_ct.Structure):
    """struct clone_args (linux/sched.h), version 2 (CLONE_ARGS_SIZE_VER2: 88 bytes)."""
    _fields_ = [(name, c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
        "tls", "set_tid", "set_tid_size", "cgroup")]


_clone3 = _sys("clone3", c_void_p, _ct.c_size_t, lib=_pyapi)


def fork_into_cgroup(cgroup_fd):
    """:func:`fork`, but the child is born in the cgroup v2 directory ``cgroup_fd`` (clone3(2)
    with ``CLONE_INTO_CGROUP``, Linux 5.7): no migration, so none of the RCU grace period the
    first write to a ``cgroup.procs`` waits for (cgroup-v2.rst, "Organizing Processes").

    A raw clone runs no libc atfork handler: call it only from a single-threaded process (as
    :func:`clone_parent`). Raises :class:`SyscallError` (op ``clone3``) with the kernel's
    errno: ENOSYS before Linux 5.3 or where clone3 is filtered or not emulated, E2BIG or
    EINVAL before 5.7, and the errors of a migration into that cgroup (EBUSY, EOPNOTSUPP,
    EACCES); the caller then forks and migrates the usual way."""
    args = _CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=_SIGCHLD, cgroup=cgroup_fd)
    _before_fork()
    return _forked(_clone3(_ct.byref(args), _ct.sizeof(args)), "clone3")


_gettid = _sys("gettid")


def gettid():
    return _gettid()


_prctl = _fn("prctl", c_int, c_int, c_ulong, c_ulong, c_ulong, c_ulong)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0, op=None):
    ret = _prctl(option, arg2, arg3, arg4, arg5)
    if ret == -1:
        raise _fail(op or "prctl", detail="option %d" % option)
    return ret


_pidfd_open = _sys("pidfd_open", c_int, c_uint)
_pidfd_send_signal = _sys("pidfd_send_signal", c_int, c_int, c_void_p, c_uint)


def pidfd_open(pid, flags=0):
    fd = _pidfd_open(pid, flags)
    if fd == -1:
        raise _fail("pidfd_open", str(pid))
    return fd


def pidfd_send_signal(pidfd, sig):
    if _pidfd_send_signal(pidfd, sig, None, 0) == -1:
        raise _fail("pidfd_send_signal", detail="signal %d" % sig)


_close_range = _sys("close_range", c_uint, c_uint, c_uint)

CLOSE_RANGE_CLOEXEC = 1 << 2


def close_range(first, last=0xFFFFFFFF, flags=0):
    if _close_range(first, last, flags) == -1:
        raise _fail("close_range", detail="%d..%d" % (first, last))


class _Rlimit64(_ct.Structure):
    _fields_ = [("cur", c_uint64), ("max", c_uint64)]


_prlimit64 = _sys("prlimit64", c_int, c_int, c_void_p, c_void_p)
RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


def prlimit(pid, resource, limits=None):
    """Set (when ``limits`` is ``(soft, hard)``) and return the old ``(soft, hard)``."""
    old = _Rlimit64()
    new = None if limits is None else _ct.byref(_Rlimit64(limits[0], limits[1]))
    if _prlimit64(pid, resource, new, _ct.byref(old)) == -1:
        raise _fail("setrlimit" if limits else "getrlimit", detail="resource %d" % resource)
    return old.cur, old.max


# --- identity and capabilities ---------------------------------------------------------------

class _CapHeader(_ct.Structure):
    _fields_ = [("version", _ct.c_uint32), ("pid", c_int)]


class _CapData(_ct.Structure):
    _fields_ = [("effective", _ct.c_uint32), ("permitted", _ct.c_uint32),
                ("inheritable", _ct.c_uint32)]


_CAP_V3 = 0x20080522
_capget = _sys("capget", c_void_p, c_void_p)
_capset = _sys("capset", c_void_p, c_void_p)


def capget(pid=0):
    """``(effective, permitted, inheritable)`` of ``pid`` (0: the caller), as 64-bit masks."""
    hdr = _CapHeader(_CAP_V3, pid)
    data = (_CapData * 2)()
    if _capget(_ct.byref(hdr), data) == -1:
        raise _fail("capget", str(pid) if pid else None)
    return tuple(getattr(data[0], f) | getattr(data[1], f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective, permitted, inheritable):
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        data[i].effective = effective >> (32 * i) & 0xFFFFFFFF
        data[i].permitted = permitted >> (32 * i) & 0xFFFFFFFF
        data[i].inheritable = inheritable >> (32 * i) & 0xFFFFFFFF
    if _capset(_ct.byref(hdr), data) == -1:
        raise _fail("capset", detail="effective %#x permitted %#x inheritable %#x"
                    % (effective, permitted, inheritable))


def setresuid(ruid, euid, suid):
    try:
        _os.setresuid(ruid, euid, suid)
    except OSError as e:
        raise SyscallError(e.errno, "setresuid", str(euid))


def setresgid(rgid, egid, sgid):
    try:
        _os.setresgid(rgid, egid, sgid)
    except OSError as e:
        raise SyscallError(e.errno, "setresgid", str(egid))


def setgroups(gids):
    try:
        _os.setgroups(list(gids))
    except OSError as e:
        raise SyscallError(e.errno, "setgroups", ",".join(map(str, gids)) or "(none)")


_sethostname = _fn("sethostname", c_int, c_char_p, _ct.c_size_t)


def sethostname(name):
    raw = name.encode()
    if _sethostname(raw, len(raw)) == -1:
        raise _fail("sethostname", name)


_setdomainname = _fn("setdomainname", c_int, c_char_p, _ct.c_size_t)


def setdomainname(name):
    """The NIS domain name of our UTS namespace (setdomainname(2))."""
    raw = name.encode()
    if _setdomainname(raw, len(raw)) == -1:
        raise _fail("setdomainname", name)


_personality = _fn("personality", c_int, c_ulong)
PER_LINUX = 0x0000
PER_LINUX32 = 0x0008
PER_QUERY = 0xFFFFFFFF


def personality(persona):
    """Set the execution domain (personality(2)); the previous one. PER_QUERY only asks."""
    _ct.set_errno(0)
    old = _personality(persona)
    if old == -1 and _ct.get_errno():
        raise _fail("personality", "%#x" % persona)
    return old


# --- mounts and the filesystem ---------------------------------------------------------------

_mount = _fn("mount", c_int, c_char_p, c_char_p, c_char_p, c_ulong, c_char_p)
_umount2 = _fn("umount2", c_int, c_char_p, c_int)
_pivot_root = _sys("pivot_root", c_char_p, c_char_p)
_chroot = _fn("chroot", c_int, c_char_p)


def mount(source, target, fstype, flags, data=None):
    if _mount(_b(source), _b(target), _b(fstype), flags, _b(data)) == -1:
        raise _fail("mount", _s(target))


def umount2(target, flags=0):
    if _umount2(_b(target), flags) == -1:
        raise _fail("umount", _s(target))


def pivot_root(new_root, put_old):
    if _pivot_root(_b(new_root), _b(put_old)) == -1:
        raise _fail("pivot_root", _s(new_root))


def chroot(path):
    if _chroot(_b(path)) == -1:
        raise _fail("chroot", _s(path))


def mknod(path, mode, device, dir_fd=None):
    try:
        _os.mknod(path, mode, device, dir_fd=dir_fd)
    except OSError as e:
        raise SyscallError(e.errno, "mknod", _s(path))


class _OpenHow(_ct.Structure):
    _fields_ = [("flags", c_uint64), ("mode", c_uint64), ("resolve", c_uint64)]


_openat2 = _sys("openat2", c_int, c_char_p, c_void_p, _ct.c_size_t)

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


def openat2(dirfd, path, flags, mode=0, resolve=0):
    how = _OpenHow(flags | _os.O_CLOEXEC, mode, resolve)
    fd = _openat2(dirfd, _b(path), _ct.byref(how), _ct.sizeof(how))
    if fd == -1:
        raise _fail("openat2", _s(path))
    return fd


# The new mount API (Linux 5.2; mount_setattr 5.12): mounts made and changed through
# descriptors, never through a path looked up again (open_tree(2), move_mount(2), fsopen(2),
# fsconfig(2), fsmount(2), mount_setattr(2); include/uapi/linux/mount.h).
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = _os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000


class _MountAttr(_ct.Structure):
    _fields_ = [("attr_set", c_uint64), ("attr_clr", c_uint64), ("propagation", c_uint64),
                ("userns_fd", c_uint64)]


_open_tree = _sys("open_tree", c_int, c_char_p, c_uint)
_move_mount = _sys("move_mount", c_int, c_char_p, c_int, c_char_p, c_uint)
_fsopen = _sys("fsopen", c_char_p, c_uint)
_fsconfig = _sys("fsconfig", c_int, c_uint, c_char_p, c_char_p, c_int)
_fsmount = _sys("fsmount", c_int, c_uint, c_uint)
_mount_setattr = _sys("mount_setattr", c_int, c_char_p, c_uint, c_void_p, _ct.c_size_t)


def open_tree(dirfd, path, flags, name=None):
    """A descriptor of the mount at ``dirfd``/``path``; with OPEN_TREE_CLONE a detached copy
    of it (and of its submounts with AT_RECURSIVE). ``name`` only names it in an error."""
    fd = _open_tree(dirfd, _b(path), flags)
    if fd == -1:
        raise _fail("open_tree", name or _s(path))
    return fd


def move_mount(from_fd, from_path, to_fd, to_path, flags, name=None):
    """Attach (or move) the mount ``from_fd``/``from_path`` onto ``to_fd``/``to_path``."""
    if _move_mount(from_fd, _b(from_path), to_fd, _b(to_path), flags) == -1:
        raise _fail("move_mount", name or _s(to_path))


def fsopen(fstype, flags=FSOPEN_CLOEXEC):
    """A filesystem context for a new superblock of ``fstype``."""
    fd = _fsopen(_b(fstype), flags)
    if fd == -1:
        raise _fail("fsopen", fstype)
    return fd


def fsconfig(fd, cmd, key=None, value=None, aux=0, name=None):
    """One parameter (or command) of the filesystem context ``fd``."""
    if _fsconfig(fd, cmd, _b(key), _b(value), aux) == -1:
        raise _fail("fsconfig", name, detail=key if value is None else "%s=%s" % (key, value))


def fsmount(fd, flags, attr_flags, name=None):
    """A detached mount of the superblock made by the context ``fd``, with MOUNT_ATTR_*."""
    mfd = _fsmount(fd, flags, attr_flags)
    if mfd == -1:
        raise _fail("fsmount", name)
    return mfd


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, name=None):
    """Change the per-mount attributes (MOUNT_ATTR_*) and the propagation (MS_PRIVATE,
    MS_SLAVE, ...) of the mount at ``dirfd``/``path``; of its submounts too with
    AT_RECURSIVE."""
    attr = _MountAttr(attr_set, attr_clr, propagation, 0)
    if _mount_setattr(dirfd, _b(path), flags, _ct.byref(attr), _ct.sizeof(attr)) == -1:
        raise _fail("mount_setattr", name or _s(path))


_fstatfs = _fn("fstatfs", c_int, c_int, c_void_p)
_STATFS_SIZE = 256  # larger than struct statfs on every ABI (120 bytes on 64-bit, 64/84 on arm)


def fstatfs_type(fd):
    """The filesystem magic number (f_type) of the file ``fd`` is on (statfs(2))."""
    buf = (_ct.c_uint8 * _STATFS_SIZE)()
    if _fstatfs(fd, buf) == -1:
        raise _fail("fstatfs", "fd %d" % fd)
    return _arch.statfs_f_type(buf)


# --- events ----------------------------------------------------------------------------------

_eventfd = _fn("eventfd", c_int, c_uint, c_int)
_inotify_init1 = _fn("inotify_init1", c_int, c_int)
_inotify_add_watch = _fn("inotify_add_watch", c_int, c_int, c_char_p, _ct.c_uint32)

EFD_CLOEXEC = _os.O_CLOEXEC
IN_CLOEXEC = _os.O_CLOEXEC
IN_NONBLOCK = _os.O_NONBLOCK
IN_MODIFY = 0x00000002


def eventfd(initval=0, flags=EFD_CLOEXEC):
    fd = _eventfd(initval, flags)
    if fd == -1:
        raise _fail("eventfd")
    return fd


def inotify_init1(flags=IN_CLOEXEC):
    fd = _inotify_init1(flags)
    if fd == -1:
        raise _fail("inotify_init1")
    return fd


def inotify_add_watch(fd, path, mask):
    wd = _inotify_add_watch(fd, _b(path), mask)
    if wd == -1:
        raise _fail("inotify_add_watch", _s(path))
    return wd


# --- bpf -------------------------------------------------------------------------------------

_bpf = _sys("bpf", c_int, c_void_p, c_uint)


def bpf(cmd, attr, op="bpf"):
    """``bpf(cmd, &attr, sizeof attr)``; ``attr`` is a writable ctypes object or buffer."""
    ret = _bpf(cmd, _ct.byref(attr), _ct.sizeof(attr))
    if ret == -1:
        raise _fail(op, detail="command %d" % cmd)
    return ret


# --- seccomp ---------------------------------------------------------------------------------

_seccomp = _sys("seccomp", c_uint, c_uint, c_void_p)


def seccomp(operation, flags, arg, op="seccomp"):
    """``seccomp(operation, flags, &arg)``; ``arg`` is a ctypes object (a ``struct sock_fprog``
    for SECCOMP_SET_MODE_FILTER, a u32 action for SECCOMP_GET_ACTION_AVAIL). Returns the
    result: 0, or the listener descriptor with SECCOMP_FILTER_FLAG_NEW_LISTENER."""
    ret = _seccomp(operation, flags, _ct.byref(arg))
    if ret == -1:
        raise _fail(op, detail="operation %d flags %#x" % (operation, flags))
    return ret


# --- ioctl -----------------------------------------------------------------------------------

_ioctl_int = _fn("ioctl", c_int, c_int, c_ulong, c_ulong)
_ioctl_ptr = _fn("ioctl", c_int, c_int, c_ulong, c_void_p)


def ioctl(fd, request, arg=0, op="ioctl", path=None):
    """ioctl with an integer argument, or a ctypes object passed by reference."""
    if isinstance(arg, int):
        ret = _ioctl_int(fd, request, arg)
    else:
        ret = _ioctl_ptr(fd, request, _ct.byref(arg))
    if ret == -1:
        raise _fail(op, path, detail="request %#x" % request)
    return ret


# --- signals ---------------------------------------------------------------------------------

_signal_fn = _fn("signal", c_void_p, c_int, c_void_p)
_sigprocmask = _fn("sigprocmask", c_int, c_int, c_void_p, c_void_p)
_SIG_DFL = 0
_SIG_SETMASK = 2
_NSIG = 65


def reset_signals():
    """Every disposition back to SIG_DFL and an empty signal mask, just before execve.

    execve keeps ignored signals ignored and the mask as it is; CPython ignores SIGPIPE and
    SIGXFSZ, and the runtime may block some, none of which the container's program expects.
    Called in the child only: CPython's own handler table is not told.
    """
    for sig in range(1, _NSIG):
        if sig not in (9, 19):  # SIGKILL and SIGSTOP cannot be changed
            _signal_fn(sig, _SIG_DFL)  # EINVAL for the few libc reserves: nothing to undo
    empty = (_ct.c_ulong * (1024 // (8 * _ct.sizeof(_ct.c_ulong))))()
    if _sigprocmask(_SIG_SETMASK, empty, None) == -1:
        raise _fail("sigprocmask")


# --- the last steps of a child (through the seam, so that a fake can see their order) ---------

def setsid():
    """A new session (setsid(2)); the caller becomes its leader, without a terminal."""
    try:
        return _os.setsid()
    except OSError as e:
        raise SyscallError(e.errno, "setsid") from None


def chdir(path):
    try:
        _os.chdir(path)
    except OSError as e:
        raise SyscallError(e.errno, "chdir", _s(path)) from None


def dup2(fd, target):
    """``dup2(fd, target)``; the copy is inheritable (execve keeps it)."""
    try:
        return _os.dup2(fd, target)
    except OSError as e:
        raise SyscallError(e.errno, "dup2", "fd %d -> %d" % (fd, target)) from None


def execve(path, args, env):
    """execve(2): does not return; a failure raises with the program's path."""
    try:
        _os.execve(path, args, env)
    except OSError as e:
        raise SyscallError(e.errno, "exec", _s(path)) from None


# Every C library symbol used above, for tests/test_musl.py: each must exist in musl as well
# as in glibc.
LIBC_SYMBOLS = frozenset(_used)
