"""System call numbers for the architectures minins runs on, and the layout facts that differ
between them (word size, byte order).

Only calls that libc does not wrap everywhere (glibc and musl alike) are listed: minins calls
them through ``syscall(2)``. The numbers come from the kernel's uapi headers
(``asm/unistd_64.h`` on x86_64, ``asm-generic/unistd.h`` for aarch64 and riscv64,
``asm/unistd-eabi.h`` for 32-bit arm EABI); ``tests/test_arch.py`` checks them against those
headers wherever they are installed.

Pure data: nothing here touches the kernel.
"""
import os as _os
import struct as _struct

# One row per call, columns in the order of ARCHES. Numbers are given explicitly, never by
# position in a list, so a missing row cannot shift the others.
ARCHES = ("x86_64", "aarch64", "arm", "riscv64")

_TABLE = {
    #                      x86_64 aarch64 arm  riscv64
    "clone":              (56, 220, 120, 220),
    "pivot_root":         (155, 41, 218, 41),
    "capget":             (125, 90, 184, 90),
    "capset":             (126, 91, 185, 91),
    "gettid":             (186, 178, 224, 178),
    "setns":              (308, 268, 375, 268),
    "unshare":            (272, 97, 337, 97),
    "prlimit64":          (302, 261, 369, 261),
    "bpf":                (321, 280, 386, 280),
    "pidfd_send_signal":  (424, 424, 424, 424),
    "pidfd_open":         (434, 434, 434, 434),
    "open_tree":          (428, 428, 428, 428),
    "move_mount":         (429, 429, 429, 429),
    "fsopen":             (430, 430, 430, 430),
    "fsconfig":           (431, 431, 431, 431),
    "fsmount":            (432, 432, 432, 432),
    "clone3":             (435, 435, 435, 435),
    "close_range":        (436, 436, 436, 436),
    "openat2":            (437, 437, 437, 437),
    "mount_setattr":      (442, 442, 442, 442),
    "seccomp":            (317, 277, 383, 277),
}

SYSCALLS = {
    arch: {name: row[i] for name, row in _TABLE.items()} for i, arch in enumerate(ARCHES)
}


class UnsupportedArchitecture(RuntimeError):
    pass


def normalize(machine, pointer_size):
    """Map ``uname -m`` and the process's pointer size to one of ARCHES, or ``None``.

    A 32-bit process on an aarch64 kernel (an armhf userland) uses the arm table: the syscall
    ABI is the process's, not the kernel's.
    """
    m = machine.lower()
    if m in ("x86_64", "amd64"):
        return "x86_64" if pointer_size == 8 else None  # x32 and i386 are not supported
    if m in ("aarch64", "arm64", "armv8b", "armv8l") or m.startswith("arm"):
        return "aarch64" if pointer_size == 8 and not m.startswith("armv") else "arm"
    if m == "riscv64":
        return "riscv64" if pointer_size == 8 else None
    return None


def current():
    """The running process's architecture name, or raise :class:`UnsupportedArchitecture`."""
    machine = _os.uname().machine
    arch = normalize(machine, _struct.calcsize("P"))
    if arch is None:
        raise UnsupportedArchitecture(
            "minins: unsupported architecture %r (%d-bit); supported: %s"
            % (machine, 8 * _struct.calcsize("P"), ", ".join(ARCHES))
        )
    return arch


def numbers(arch=None):
    """The syscall table for ``arch`` (default: the running one)."""
    return SYSCALLS[arch or current()]


def statfs_f_type_width(machine=None):
    """Bytes of ``f_type``, the first field of libc's ``struct statfs``: a ``long`` (glibc's
    ``__fsword_t``, musl's ``unsigned long``: 8 bytes on 64-bit, 4 on 32-bit arm), except on
    s390x, whose kernel and libc declare it ``unsigned int`` (statfs(2), NOTES)."""
    machine = machine or _os.uname().machine
    return 4 if machine == "s390x" else _struct.calcsize("l")


def statfs_f_type(buf, byteorder=None, width=None):
    """The ``f_type`` (the filesystem magic of statfs(2)) at the start of a ``struct statfs``
    held in ``buf``: ``width`` bytes (default :func:`statfs_f_type_width`) in ``byteorder``
    (``"little"`` or ``"big"``, default the host's). On a big-endian 64-bit host the magic's
    low bytes come last, so reading the first four bytes would give 0."""
    import sys

    width = width or statfs_f_type_width()
    return int.from_bytes(bytes(buf[:width]), byteorder or sys.byteorder)
