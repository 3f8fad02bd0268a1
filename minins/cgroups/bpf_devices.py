"""cgroup v2 device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program built here, in Python.

cgroup v2 has no devices.allow; the kernel instead runs the BPF programs attached to a cgroup
(attach type BPF_CGROUP_DEVICE) on every open and mknod of a device node, with a
``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}`` in r1, where
``access_type`` is ``(BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*``. A return of 1 allows.

:func:`program` is pure: the rules minins has (deny everything, then allow each rule; the
first matching rule allows) become one block of eBPF instructions per rule, the same shape
runc and crun generate. :func:`attach` loads it with ``bpf(BPF_PROG_LOAD)`` and attaches it
with ``BPF_F_ALLOW_MULTI``, then detaches any program that was there before, so a cgroup is
never without a filter while it is replaced.

Man pages: bpf(2); kernel: Documentation/bpf/standardization/instruction-set.rst,
include/uapi/linux/bpf.h, kernel/bpf/cgroup.c (__cgroup_bpf_check_dev_permission).
"""
import ctypes as _ct
import errno as _errno
import os as _os
import struct as _struct
import sys as _sys

from ..errors import SyscallError

# bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h)
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE = 1, 2, 4
BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
TYPE_CODES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}

# Opcodes: class | size/op | mode/source (instruction-set.rst).
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K: if dst != imm goto pc + 1 + off
JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
EXIT = 0x95  # BPF_JMP | BPF_EXIT
LICENSE = b"Apache\0"
INSN_SIZE = 8
_ORDER = {"little": "<", "big": ">"}  # struct's prefix for each byte order
_INSN = {order: _struct.Struct(prefix + "BBhi") for order, prefix in _ORDER.items()}


def insn(code, dst=0, src=0, off=0, imm=0, byteorder=_sys.byteorder):
    """One 8-byte instruction, ``struct bpf_insn {u8 code; u8 dst_reg:4, src_reg:4; s16 off;
    s32 imm;}`` (include/uapi/linux/bpf.h), in ``byteorder`` (``"little"`` or ``"big"``;
    default the host's, which is what the kernel reads). The register nibbles follow the
    bitfield order of the C ABI: dst in the low nibble on a little-endian host, in the high
    nibble on a big-endian one (s390x, ppc64)."""
    regs = (src << 4 | dst) if byteorder == "little" else (dst << 4 | src)
    return _INSN[byteorder].pack(code, regs, off, imm)


# r2 = device type, r3 = requested access, r4 = major, r5 = minor
_PREAMBLE = (
    (LDX_MEM_W, 2, 1, 0, 0), (AND32_K, 2, 0, 0, 0xFFFF),
    (LDX_MEM_W, 3, 1, 0, 0), (RSH32_K, 3, 0, 0, 16),
    (LDX_MEM_W, 4, 1, 4, 0),
    (LDX_MEM_W, 5, 1, 8, 0),
)


def _verdict(allow):
    return [(MOV32_K, 0, 0, 0, 1 if allow else 0), (EXIT, 0, 0, 0, 0)]


def _block(rule):
    """The instructions of one allow rule, as ``(code, dst, src, off, imm)``: each test jumps
    past the block when it fails."""
    kind, major, minor, access = rule
    tests = []  # (code, dst, src, imm, is_jump)
    if kind != "a":
        tests.append((JNE_K, 2, 0, TYPE_CODES[kind], True))
    mask = 0
    for c in access:
        mask |= ACCESS_BITS[c]
    if kind != "a" and mask != 7:
        # (requested & allowed) != requested: something asked for is not allowed here
        tests.append((MOV32_X, 1, 3, 0, False))
        tests.append((AND32_K, 1, 0, mask, False))
        tests.append((JNE_X, 1, 3, 0, True))
    if major >= 0:
        tests.append((JNE_K, 4, 0, major, True))
    if minor >= 0:
        tests.append((JNE_K, 5, 0, minor, True))
    total = len(tests) + 2
    out = [(code, dst, src, total - i - 1 if jump else 0, imm)
           for i, (code, dst, src, imm, jump) in enumerate(tests)]
    return out + _verdict(True)


def program(rules, byteorder=_sys.byteorder):
    """The eBPF program (bytes) that allows exactly what one of ``rules`` allows.

    ``rules`` are ``(type, major, minor, access)`` as :func:`minins.cgroups.values.device_rule`
    returns them; ``type`` ``a`` allows every device (nothing after it is reachable, and the
    verifier rejects unreachable code, so the program stops there). ``byteorder`` is the
    host's unless a test asks for the other one.
    """
    key = (tuple(rules), byteorder)
    prog = _cache.get(key)
    if prog is None:
        if len(_cache) >= 8:
            _cache.clear()
        prog = _cache[key] = _build(key[0], byteorder)
    return prog


_cache = {}  # most containers of a process share one rule set


def _build(rules, byteorder=_sys.byteorder):
    out = list(_PREAMBLE)
    for rule in rules:
        out.extend(_block(rule))
        if rule[0] == "a":
            break
    else:
        out.extend(_verdict(False))
    return b"".join(insn(*i, byteorder=byteorder) for i in out)


# --- loading and attaching -------------------------------------------------------------------

class _ProgLoadAttr(_ct.Structure):
    _fields_ = [("prog_type", _ct.c_uint32), ("insn_cnt", _ct.c_uint32),
                ("insns", _ct.c_uint64), ("license", _ct.c_uint64),
                ("log_level", _ct.c_uint32), ("log_size", _ct.c_uint32),
                ("log_buf", _ct.c_uint64), ("kern_version", _ct.c_uint32),
                ("prog_flags", _ct.c_uint32), ("prog_name", _ct.c_char * 16)]


class _AttachAttr(_ct.Structure):
    _fields_ = [("target_fd", _ct.c_uint32), ("attach_bpf_fd", _ct.c_uint32),
                ("attach_type", _ct.c_uint32), ("attach_flags", _ct.c_uint32),
                ("replace_bpf_fd", _ct.c_uint32)]


class _QueryAttr(_ct.Structure):
    # Kernels 6.17+ write the ``revision`` field (offset 56) whatever size is passed, so
    # the attr is declared up to it (runc hit the same bug).
    _fields_ = [("target_fd", _ct.c_uint32), ("attach_type", _ct.c_uint32),
                ("query_flags", _ct.c_uint32), ("attach_flags", _ct.c_uint32),
                ("prog_ids", _ct.c_uint64), ("prog_cnt", _ct.c_uint32),
                ("_pad", _ct.c_uint32), ("prog_attach_flags", _ct.c_uint64),
                ("link_ids", _ct.c_uint64), ("link_attach_flags", _ct.c_uint64),
                ("revision", _ct.c_uint64), ("_spare", _ct.c_uint64)]


class _GetFdAttr(_ct.Structure):
    _fields_ = [("prog_id", _ct.c_uint32), ("next_id", _ct.c_uint32),
                ("open_flags", _ct.c_uint32)]


def load(prog, path=None):
    """``BPF_PROG_LOAD`` the device program; returns its fd. On failure the verifier's log
    is in the error's detail."""
    from .. import libc

    buf = _ct.create_string_buffer(prog, len(prog))
    lic = _ct.create_string_buffer(LICENSE)
    attr = _ProgLoadAttr(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
                         insn_cnt=len(prog) // INSN_SIZE,
                         insns=_ct.addressof(buf), license=_ct.addressof(lic),
                         prog_name=b"minins_devices")
    raised_memlock = False
    for _ in range(30):
        try:
            return libc.bpf(BPF_PROG_LOAD, attr, "bpf prog load")
        except SyscallError as e:
            if e.errno == _errno.EAGAIN:  # the verifier was interrupted by a signal
                continue
            if e.errno == _errno.EPERM and not raised_memlock:
                # Before 5.11 BPF memory counted against RLIMIT_MEMLOCK (often 64 KiB).
                raised_memlock = True
                try:
                    libc.prlimit(0, 8, (libc.RLIM_INFINITY, libc.RLIM_INFINITY))
                    continue
                except SyscallError:
                    pass
            raise SyscallError(e.errno, "bpf prog load", path, _verifier_log(attr))
    raise SyscallError(_errno.EAGAIN, "bpf prog load", path, "interrupted 30 times")


def _verifier_log(attr):
    from .. import libc

    log = _ct.create_string_buffer(65536)
    attr.log_level, attr.log_size, attr.log_buf = 1, len(log), _ct.addressof(log)
    try:
        _os.close(libc.bpf(BPF_PROG_LOAD, attr))
        return None
    except SyscallError:
        lines = log.value.decode(errors="replace").strip().splitlines()
        return ("verifier: " + "; ".join(lines[-4:])[-400:]) if lines else None
    finally:
        attr.log_level, attr.log_size, attr.log_buf = 0, 0, 0


def query(cgroup_fd, path=None):
    """The ids of the device programs attached to the cgroup ``cgroup_fd``."""
    from .. import libc

    count = 16
    while True:
        ids = (_ct.c_uint32 * count)()
        attr = _QueryAttr(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE,
                          prog_ids=_ct.addressof(ids), prog_cnt=count)
        try:
            libc.bpf(BPF_PROG_QUERY, attr, "bpf prog query")
        except SyscallError as e:
            if e.errno == _errno.ENOSPC and attr.prog_cnt > count:
                count = attr.prog_cnt
                continue
            raise SyscallError(e.errno, "bpf prog query", path)
        return list(ids[:attr.prog_cnt])


def _prog_fd(prog_id):
    from .. import libc

    return libc.bpf(BPF_PROG_GET_FD_BY_ID, _GetFdAttr(prog_id=prog_id), "bpf prog get fd")


def attach(cgroup_fd, prog, path=None, replace=True):
    """Load ``prog``, attach it to the cgroup, and (with ``replace``) detach the device
    programs that were attached before."""
    from .. import libc

    old = query(cgroup_fd, path) if replace else ()
    prog_fd = load(prog, path)
    try:
        attr = _AttachAttr(target_fd=cgroup_fd, attach_bpf_fd=prog_fd,
                           attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI)
        try:
            libc.bpf(BPF_PROG_ATTACH, attr)
        except SyscallError as e:
            raise SyscallError(e.errno, "bpf prog attach", path)
    finally:
        _os.close(prog_fd)
    for prog_id in old:
        _detach(cgroup_fd, prog_id, path)


def _detach(cgroup_fd, prog_id, path):
    from .. import libc

    try:
        fd = _prog_fd(prog_id)
    except SyscallError as e:
        if e.errno in (_errno.ENOENT, _errno.EPERM, _errno.EACCES):
            return  # gone already, or hidden from us by an LSM: it can only deny more
        raise
    try:
        libc.bpf(BPF_PROG_DETACH, _AttachAttr(target_fd=cgroup_fd, attach_bpf_fd=fd,
                                              attach_type=BPF_CGROUP_DEVICE))
    except SyscallError as e:
        if e.errno != _errno.ENOENT:
            raise SyscallError(e.errno, "bpf prog detach", path, "program id %d" % prog_id)
    finally:
        _os.close(fd)
