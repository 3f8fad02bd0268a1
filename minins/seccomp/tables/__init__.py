"""Syscall tables for the architectures a seccomp filter can name.

One module per architecture, generated from the kernel's uapi headers by
``tools/gen_seccomp_tables.py`` (see that file for which header and package each comes
from): ``AUDIT_ARCH`` (the ``seccomp_data.arch`` value, ``AUDIT_ARCH_*`` of linux/audit.h)
and ``SYSCALLS`` (name -> number). x32 shares x86_64's AUDIT_ARCH; its numbers carry
``__X32_SYSCALL_BIT`` (0x40000000), which is how a filter tells the two apart.

Pure data; a table is imported only when a filter needs it.
"""
import sys as _sys

# OCI / libseccomp names (SCMP_ARCH_*) -> table module names
ARCHES = {
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_RISCV64": "riscv64",
}

# Architectures the OCI specification names that minins has no table for: accepted in a
# profile, never matched (a process of that architecture gets the bad-architecture action).
OTHER_ARCHES = (
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
)

# 32-bit architectures: only the low half of an argument is compared (libseccomp does the same)
BITS32 = frozenset(("x86", "arm"))

X32_SYSCALL_BIT = 0x40000000

_loaded = {}


def table(arch):
    """The table module of ``arch`` (``"x86_64"``, ``"x32"``, ``"x86"``, ``"aarch64"``,
    ``"arm"``, ``"riscv64"``): has ``AUDIT_ARCH`` and ``SYSCALLS``."""
    mod = _loaded.get(arch)
    if mod is None:
        name = __name__ + "." + arch
        __import__(name)  # not importlib: the package (and warnings) would cost a start ~1 ms
        mod = _loaded[arch] = _sys.modules[name]
    return mod


# minins.arch names (the running process) -> the table of its own ABI
NATIVE = {"x86_64": "x86_64", "aarch64": "aarch64", "arm": "arm", "riscv64": "riscv64"}
