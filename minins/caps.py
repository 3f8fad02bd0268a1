"""Capability names and masks (capabilities(7), linux/capability.h).

Pure tables and arithmetic; applying a set to a process is :func:`minins.security.apply_caps`.
Names are accepted with or without the ``CAP_`` prefix, in any case; an unknown name is an
error (the seed silently ignored it).
"""
from .errors import ConfigError

__all__ = ["CAPS", "cap_number", "mask_of", "names_of", "DEFAULT_CAPS"]

# Numbers from linux/capability.h, given explicitly.
CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
    "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
    "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}
_BY_NUMBER = {n: name for name, n in CAPS.items()}

# The default set of today's runtimes (runc, crun, podman, Docker).
DEFAULT_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)


def cap_number(name, field="capabilities"):
    key = name.upper()
    if key.startswith("CAP_"):
        key = key[4:]
    try:
        return CAPS[key]
    except KeyError:
        raise ConfigError(field, "unknown capability %r" % name) from None


def mask_of(names, field="capabilities"):
    """The 64-bit mask of a list of names; ``field`` names the list in errors."""
    mask = 0
    for i, name in enumerate(names):
        mask |= 1 << cap_number(name, "%s[%d]" % (field, i))
    return mask


def names_of(mask):
    """``CAP_`` names of the bits set in ``mask`` (unknown bits as ``CAP_<n>``)."""
    return ["CAP_" + _BY_NUMBER.get(n, str(n)) for n in range(64) if mask >> n & 1]
