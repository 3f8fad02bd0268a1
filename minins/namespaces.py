"""Namespaces: which to create, which to join, and in what order (namespaces(7), setns(2)).

Joining follows one fixed order: the user namespace first (it grants the capabilities the
other joins need), then ipc, uts, net, pid, cgroup, and the mount namespace last (after pid,
the lesson of libcontainer #58: once in another mount namespace, ``/proc`` is theirs).
Namespace files are opened and checked in the runtime, before anything is created, so a bad
path is a one-line error naming ``namespaces[i].path``; the forked child only calls setns on
the inherited descriptors.
"""
import os

from . import libc as _libc
from .config import NAMESPACE_TYPES
from .errors import ConfigError

JOIN_ORDER = ("NEWUSER", "NEWIPC", "NEWUTS", "NEWNET", "NEWPID", "NEWCGROUP", "NEWNS")
# /proc/PID/ns/<name> for each type
PROC_NAMES = {"NEWUSER": "user", "NEWIPC": "ipc", "NEWUTS": "uts", "NEWNET": "net",
              "NEWPID": "pid", "NEWCGROUP": "cgroup", "NEWNS": "mnt"}

NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), Linux 4.11
CLONE_FS = 0x00000200


def open_paths(cfg, lc=_libc):
    """Open the namespace files of ``cfg``: a list of ``(type, fd, path)`` in join order.

    The caller owns the descriptors (close them with :func:`close`). Each file is checked to
    be a namespace of the configured type.
    """
    index = {ns.type: i for i, ns in enumerate(cfg.namespaces)}
    opened = []
    try:
        for t in JOIN_ORDER:
            ns = cfg.namespace(t)
            if ns is None or not ns.path:
                continue
            field = "namespaces[%d].path" % index[t]
            try:
                fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise ConfigError(field, "cannot open %s: %s" % (ns.path, e.strerror)) from None
            opened.append((t, fd, ns.path))
            _check_type(fd, t, ns.path, field, lc)
    except BaseException:
        close(opened)
        raise
    return opened


def _check_type(fd, wanted, path, field, lc):
    try:
        kind = lc.ioctl(fd, NS_GET_NSTYPE, 0, op="ioctl NS_GET_NSTYPE", path=path)
    except OSError:
        raise ConfigError(field, "%s is not a namespace file" % path) from None
    if kind != NAMESPACE_TYPES[wanted]:
        names = {v: k for k, v in NAMESPACE_TYPES.items()}
        raise ConfigError(field, "%s is a %s namespace, not %s"
                          % (path, names.get(kind, "different"), wanted))


def close(opened):
    for _t, fd, _p in opened:
        try:
            os.close(fd)
        except OSError:
            pass


def join(opened, lc=_libc):
    """setns into each opened namespace, in order. Called in a single-threaded child."""
    if any(t in ("NEWUSER", "NEWNS") for t, _fd, _p in opened):
        lc.unshare(CLONE_FS)  # setns into user/mnt needs an unshared fs_struct
    for t, fd, path in opened:
        lc.setns(fd, NAMESPACE_TYPES[t], path)


def proc_path(pid, t, proc="/proc"):
    return "%s/%d/ns/%s" % (proc, pid, PROC_NAMES[t])


def same_namespace(pid_a, pid_b, t, proc="/proc"):
    """Do two processes share their namespace of type ``t``? (compares nsfs inodes)"""
    a = os.stat(proc_path(pid_a, t, proc))
    b = os.stat(proc_path(pid_b, t, proc))
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
