"""The plan of the process pipeline: what the runtime hands to the processes it forks.

:class:`Plan` is declared whole before the fork and immutable; :class:`SharedPid` is the
shared slot the kernel writes the final process's pid into (CLONE_PARENT_SETTID). Both sides
of the pipeline (:mod:`minins.process`, :mod:`minins.child`) import them from here.
"""
import collections
import os

from . import libc as _libc

SIGKILL = 9

_PLAN_FIELDS = (
    # name, default, doc
    ("kind", None, "child.INIT (a new container) or child.EXEC (a process joining one)"),
    ("config", None, "the validated minins.config.Config the process is set up from"),
    ("args", (), "the command and its arguments: a tuple of str"),
    ("sock", None, "the child's end of the sync socketpair (socket.socket)"),
    ("runtime_sock", None, "the runtime's end: closed at once in the child"),
    ("ns_fds", (), "namespaces to join: ((type, fd, path), ...) in join order, user first"),
    ("stdio", None, "(in, out, err) descriptors to make 0, 1, 2 (None each: inherit), or None"),
    ("unshare_flags", 0, "CLONE_NEW* flags to unshare after joining (INIT; without USER and "
                         "CGROUP)"),
    ("new_userns", False, "unshare CLONE_NEWUSER and wait for the runtime to write the maps"),
    ("in_userns", False, "the process ends up in a user namespace (new or joined): become "
                         "its root"),
    ("fork_into_pid_ns", False, "clone the final process (CLONE_PARENT) so that it is in the "
                                "new or joined PID namespace"),
    ("wait_cgroups", False, "wait for CGROUPS_JOINED before forking the final process"),
    ("tid_addr", None, "address of a shared 32-bit slot for CLONE_PARENT_SETTID (int)"),
    ("gid5_mapped", True, "gid 5 (tty) exists in the container, for devpts's gid=5"),
    ("console_path", None, "the pty slave's path, to bind on /dev/console (INIT with a tty)"),
    ("console", None, "0 when fd 0 is a pty slave to make the controlling terminal, else None"),
    ("cap_last_cap", 40, "/proc/sys/kernel/cap_last_cap as the runtime read it"),
    ("lsm", None, "{'apparmor': bool, 'selinux': bool}: the host's LSMs, probed by the runtime"),
    ("parent_death_signal", SIGKILL, "signal the final process gets when the runtime dies; 0 "
                                     "for a detached init, which outlives it"),
    ("exec_fifo", None, "O_PATH fd of exec.fifo (a detached init waits on it for `start`), or "
                        "None to wait for START on the sync socket"),
    ("tid_fd", None, "memfd of the page holding ``tid_addr``'s slot, to map it again after a "
                     "re-exec"),
    ("interpreter_fd", None, "sealed memfd copy of our interpreter (see :func:`sealed_interpreter`)"
                             ": the intermediate re-executes from it first, or None"),
    ("seccomp", None, "a minins.seccomp.load.Prepared filter (the compiled program, its flags "
                      "and phase, a NOTIFY listener) or None"),
    ("hooks", None, "new (OCI): {'createContainer': [...], 'startContainer': [...], 'state': "
                    "{...}}: the hooks the final process runs (minins.hooks), or None"),
    ("preserve_fds", 0, "new (OCI): descriptors 3..3+N-1 stay open across the exec (runc "
                        "--preserve-fds)"),
    ("lc", _libc, "the system-call layer (minins.libc, or a recording fake in tests)"),
)


class Plan(collections.namedtuple("Plan", [f[0] for f in _PLAN_FIELDS])):
    """Everything the forked processes need, declared whole before the fork and immutable
    (as youki's ``ContainerArgs`` or the arguments of CPython's ``fork_exec``). Fields:

    """
    __slots__ = ()

    def preload(self):
        """Import what the child's steps import after it has joined the container's
        namespaces, where the minins package may not be found: before the fork, or first
        thing in the re-executed intermediate (:func:`minins.child.resume`)."""
        cfg = self.config
        if self.console is not None:
            from . import console  # noqa: F401
        if self.hooks:
            from . import hooks  # noqa: F401
        if cfg.networks or cfg.routes:
            from . import network  # noqa: F401


Plan.__new__.__defaults__ = tuple(f[1] for f in _PLAN_FIELDS)
Plan.__doc__ += "\n".join("    ``%s``: %s" % (name, doc) for name, _d, doc in _PLAN_FIELDS)


class SharedPid:
    """A 32-bit slot in a MAP_SHARED page of a memfd: a forked child clones with
    CLONE_PARENT_SETTID pointing at it, and the kernel writes the new pid where we can read it
    even if that child dies before it could tell us. A child that re-executes maps the same
    page again from :attr:`fd`."""

    def __init__(self, fd=None):
        import ctypes
        import mmap

        if fd is None:
            fd = os.memfd_create("minins-pid", os.MFD_CLOEXEC)
            os.ftruncate(fd, mmap.PAGESIZE)
        self.fd = fd
        self._map = mmap.mmap(fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED)
        self._slot = ctypes.c_int32.from_buffer(self._map)
        self.address = ctypes.addressof(self._slot)

    @property
    def value(self):
        return self._slot.value

    def close(self):
        if self._map is not None:
            del self._slot
            self._map.close()
            self._map = None
            os.close(self.fd)
