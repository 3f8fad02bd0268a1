"""The one error model of minins.

Every error minins raises on purpose is a :class:`MininsError`. Three kinds matter to callers:

* :class:`SyscallError` -- a system call failed. It *is* an :class:`OSError` (``errno``,
  ``strerror`` and ``filename`` are set), and it says which operation on which path failed::

      mount /proc: EPERM (Operation not permitted)

  Errors raised inside the container cross the sync channel as (errno, op, path, detail) and
  are rebuilt here with the errno intact (see :mod:`minins.sync`).
* :class:`ConfigError` -- bad input, named by its field path (``uid_mappings[1].size: must be
  at least 1``). Raised before anything is created.
* :class:`StateError` -- a container that does not exist, or is not in the state a command
  needs.
* :class:`ContainerError` -- anything else that went wrong with a container (the init died
  before it reported, a protocol violation, a resource that would not go away).
* :class:`DBusError` -- a D-Bus peer answered with an error, or sent what the wire format
  does not allow; it carries the D-Bus error name (``org.freedesktop.systemd1.NoSuchUnit``).

Any error may carry the ``step`` of the container's life it happened in ("cgroups",
"network", "init: mounts", ...); ``str()`` then starts with it.
"""
import errno as _errno
import os as _os

__all__ = [
    "MininsError",
    "SyscallError",
    "ConfigError",
    "StateError",
    "ContainerError",
    "DBusError",
    "errno_name",
]


def errno_name(err):
    """``EPERM`` for 1; ``E123`` for a number the platform does not name."""
    return _errno.errorcode.get(err, "E%d" % err)


class MininsError(Exception):
    """Base of every error minins raises on purpose."""

    step = None

    def with_step(self, step):
        """Record the step this error happened in, unless an inner step is already known."""
        if self.step is None:
            self.step = step
        return self

    def _prefix(self):
        return "%s: " % self.step if self.step else ""


class SyscallError(OSError, MininsError):
    """A failed system call: an ``OSError`` that names the operation and the path.

    ``op`` is the call as a user would name it (``mount``, ``setns``, ``write uid_map``),
    ``path`` the file, link or object it was applied to (may be ``None``), ``detail`` an
    optional extra (the kernel's extended-ack text for netlink, say).
    """

    def __init__(self, err, op, path=None, detail=None):
        err = int(err)
        OSError.__init__(self, err, _os.strerror(err), path)
        self.op = op
        self.path = path
        self.detail = detail

    def __str__(self):
        where = "%s %s" % (self.op, self.path) if self.path else self.op
        text = "%s%s: %s (%s)" % (self._prefix(), where, errno_name(self.errno), self.strerror)
        if self.detail:
            text += ": %s" % self.detail
        return text

    def __reduce__(self):
        return (_rebuild_syscall_error, (self.errno, self.op, self.path, self.detail, self.step))

    @classmethod
    def from_oserror(cls, exc, op, path=None):
        """Wrap an ``OSError`` raised by the ``os`` module, keeping its errno."""
        if isinstance(exc, SyscallError):
            return exc
        return cls(exc.errno or _errno.EIO, op, path if path is not None else exc.filename)


def _rebuild_syscall_error(err, op, path, detail, step):
    e = SyscallError(err, op, path, detail)
    e.step = step
    return e


class ConfigError(MininsError, ValueError):
    """Bad configuration or command-line input, named by its field path."""

    def __init__(self, field, message):
        ValueError.__init__(self, field, message)
        self.field = field
        self.message = message

    def __str__(self):
        if self.field:
            return "%s%s: %s" % (self._prefix(), self.field, self.message)
        return self._prefix() + self.message


class StateError(MininsError):
    """A container that does not exist, or is in the wrong state for what was asked."""

    def __init__(self, message):
        MininsError.__init__(self, message)
        self.message = message

    def __str__(self):
        return self._prefix() + self.message


class ContainerError(MininsError):
    """A failure that is neither a syscall nor bad input: the init died before it reported, a
    message that breaks the sync protocol, a cgroup that could not be removed."""

    def __init__(self, message):
        MininsError.__init__(self, message)
        self.message = message

    def __str__(self):
        return self._prefix() + self.message


class DBusError(MininsError):
    """An error from D-Bus: ``name`` is the D-Bus error name
    (``org.freedesktop.DBus.Error.ServiceUnknown``, ``org.freedesktop.systemd1.NoSuchUnit``),
    ``message`` its text, ``op`` the call that got it (``StartTransientUnit minins-c1.scope``).

    Malformed wire data is a :class:`minins.dbus.codec.DecodeError`, a subclass, named
    ``org.freedesktop.DBus.Error.InconsistentMessage`` (or ``InvalidSignature``).
    """

    def __init__(self, name, message="", op=None):
        MininsError.__init__(self, name, message)
        self.name = name
        self.message = message
        self.op = op

    def __str__(self):
        text = self._prefix()
        if self.op:
            text += "%s: " % self.op
        text += self.name
        if self.message:
            text += ": %s" % self.message
        return text

    def __reduce__(self):
        return (type(self), (self.name, self.message, self.op))
