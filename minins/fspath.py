"""Resolve paths inside a root directory without ever leaving it (openat2(2), path_resolution(7)).

A container image is untrusted: ``/etc`` in it may be a symlink to the host's ``/etc``, and a
mount destination resolved naively would then land on the host. Every path minins mounts onto,
creates or binds inside a rootfs is opened here relative to a descriptor of the rootfs, with
symlinks interpreted as if the rootfs were ``/`` (``RESOLVE_IN_ROOT``), and the mount then
targets the opened descriptor through ``/proc/self/fd/N`` rather than a path that could be
swapped in between.

Where ``openat2`` is missing (before Linux 5.6, or under qemu-user) the same resolution is
done by hand: component by component with ``O_PATH | O_NOFOLLOW``, reading each symlink and
restarting absolute targets at the root, ``..`` never climbing above it, at most 40 links.
That choice is made per call: one failed openat2 changes nothing for the next.

The rules both follow (path_resolution(7), openat2(2)), for a path given here: empty and "."
components are dropped; ".." goes up, never above the root; a symlink's target replaces it, an
absolute one from the root; inside a target, "." and a trailing "/" need a directory; a
component after a non-directory is ENOTDIR; a missing one ENOENT; the 41st link ELOOP.
"""
import errno
import os
import stat

from . import libc as _libc
from .errors import SyscallError

O_PATH = getattr(os, "O_PATH", 0o10000000)
_MAX_LINKS = 40  # MAXSYMLINKS: path_resolution(7)

# The openat2 errors that mean "openat2 cannot be used here", not "this path cannot be
# opened": ENOSYS (before Linux 5.6, qemu-user) and EPERM (seccomp profiles written before
# openat2 existed answer unknown system calls with EPERM -- Docker's before 20.10). Not E2BIG
# nor EINVAL: E2BIG is a struct open_how larger than the kernel knows, and ours is the first
# version (24 bytes, OPEN_HOW_SIZE_VER0) that every kernel with openat2 takes; EINVAL is an
# unknown or invalid flag, and RESOLVE_IN_ROOT and RESOLVE_NO_MAGICLINKS came with openat2
# itself, so it can only be the caller's ``flags`` -- which the by-hand walk would not check.
_UNSUPPORTED = (errno.ENOSYS, errno.EPERM)
# EAGAIN: with RESOLVE_IN_ROOT the kernel could not be sure a ".." did not escape (a rename
# raced the lookup); openat2(2) says the caller may retry.
_AGAIN_TRIES = 8


def _components(path):
    """The components of a path given to this module: empty ones and "." dropped (so a
    trailing "/" and "./" mean nothing), ".." kept."""
    return [c for c in path.split("/") if c and c != "."]


def _target_components(target):
    """The components of a symlink's target, as the kernel reads them: "." kept (it needs a
    directory), and a trailing "/" read as a final "." (path_resolution(7))."""
    parts = [c for c in target.split("/") if c]
    if parts and target.endswith("/"):
        parts.append(".")
    return parts


def open_in_root(rootfd, path, flags=O_PATH, lc=_libc):
    """An fd for ``path`` resolved inside the directory ``rootfd`` (close-on-exec).

    ``openat2(RESOLVE_IN_ROOT)`` where the kernel has it; the by-hand walk for this call only
    when openat2 fails with an error of :data:`_UNSUPPORTED` (ENOSYS, EPERM). EAGAIN is
    tried again, 8 tries in all, then the by-hand walk (a rename racing every try must not
    fail the call); any other error -- ENOENT, ENOTDIR, ELOOP (a magic link, or more
    than 40 links), EXDEV, EINVAL -- is raised as :class:`SyscallError` ("openat2", path).
    """
    rel = "/".join(_components(path)) or "."
    for attempt in range(_AGAIN_TRIES):
        try:
            return lc.openat2(rootfd, rel, flags,
                              resolve=_libc.RESOLVE_IN_ROOT | _libc.RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            if e.errno in _UNSUPPORTED:
                return _walk(rootfd, path, flags)
            if e.errno != errno.EAGAIN:
                raise
    return _walk(rootfd, path, flags)  # EAGAIN every time: renames keep racing the lookup


def _walk(rootfd, path, flags, create=None, mode=0o755, owner=None):
    """The by-hand resolution: an fd opened with ``flags`` on the final component. With
    ``create`` ("dir" or "file"), missing components are made on the way (directories, and
    the last one as ``create`` says), symlink targets included -- always inside the root --
    and given to ``owner`` (``(uid, gid)``) when one is named."""
    todo = _components(path)
    # (descriptor, name in its parent) of the directories from the root down
    stack = [(os.dup(rootfd), ".")]
    links = 0
    try:
        while todo:
            name = todo.pop(0)
            if name == ".":  # only from a link's target; the directory is already open
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop()[0])
                continue
            last = not todo
            try:
                fd = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1][0])
            except FileNotFoundError:
                if create is None:
                    raise
                _make(name, stack[-1][0], mode, last and create == "file", path)
                fd = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1][0])
                if owner is not None and not stat.S_ISLNK(os.fstat(fd).st_mode):
                    os.chown(fd_path(fd), owner[0], owner[1])
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                links += 1
                if links > _MAX_LINKS:
                    os.close(fd)
                    raise SyscallError(errno.ELOOP, "open", path)
                target = os.readlink("", dir_fd=fd)  # readlinkat on the O_PATH link itself
                os.close(fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop()[0])
                todo = _target_components(target) + todo
                continue
            if todo and not stat.S_ISDIR(os.fstat(fd).st_mode):
                os.close(fd)  # "file/..", "file/." and "file/x" as the kernel has them
                raise SyscallError(errno.ENOTDIR, "open", path)
            stack.append((fd, name))
        if flags == O_PATH:
            return os.dup(stack[-1][0])
        if len(stack) == 1:
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[0][0])
        # the final object again, now with the caller's flags
        return os.open(stack[-1][1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-2][0])
    except OSError as e:
        if isinstance(e, SyscallError):
            raise
        raise SyscallError(e.errno, "open", path) from None
    finally:
        for fd, _ in stack:
            os.close(fd)


def real_path(fd):
    """The path the kernel has for ``fd`` (from /proc/self/fd)."""
    return os.readlink("/proc/self/fd/%d" % fd)


def fd_path(fd):
    """A path naming exactly the object ``fd`` refers to, for mount(2) and friends."""
    return "/proc/self/fd/%d" % fd


def mkdir_all_in_root(rootfd, path, mode=0o755, final_file=False, owner=None):
    """Create ``path`` inside the root -- directories, and an empty file at the end when
    ``final_file`` -- following existing symlinks only inside the root; what is made is
    given to ``owner`` (``(uid, gid)``) when one is named. Returns an O_PATH fd of the final
    component."""
    return _walk(rootfd, path, O_PATH, "file" if final_file else "dir", mode, owner)


def _make(name, parent, mode, as_file, path):
    # One component, created with O_EXCL/NOFOLLOW semantics: an existing entry (even a
    # symlink) is left alone and then resolved inside the root by the caller.
    try:
        if as_file:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=parent))
        else:
            os.mkdir(name, mode, dir_fd=parent)
    except FileExistsError:
        pass
    except OSError as e:
        raise SyscallError(e.errno, "mkdir" if not as_file else "create", path) from None


def write_file(path, text, detail=None):
    """Write ``text`` to an existing file in one write(2) -- the kernel's files (uid_map,
    attr/exec, ...) take their value in one piece -- raising SyscallError("write", path)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise SyscallError(e.errno, "write", path, detail) from None


def missing_interpreter(program):
    """Why ``execve(program)`` said ENOENT although ``program`` exists: ``"its interpreter
    X (on its #! line) does not exist"`` for a script, a note on the ELF program
    interpreter (the dynamic loader) otherwise; ``None`` when ``program`` itself is missing.
    execve(2): ENOENT "the file or a script or ELF interpreter does not exist"; the kernel
    reads at most the first 256 bytes of a script (BINPRM_BUF_SIZE)."""
    try:
        with open(program, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].split()
        if not words:
            return "its #! line names no interpreter"
        interpreter = os.fsdecode(words[0])
        if not os.path.exists(interpreter):
            return "its interpreter %s (on its #! line) does not exist" % interpreter
        return "its interpreter %s (on its #! line) could not be started" % interpreter
    if head.startswith(b"\x7fELF"):
        return "the file exists; the program interpreter (dynamic loader) it names does not"
    return None
