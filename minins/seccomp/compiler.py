"""Compile an OCI seccomp profile into a classic BPF program (``struct sock_filter[]``).

:func:`compile_profile` is pure: (profile, native architecture) -> a list of
``(code, jt, jf, k)`` (u16, u8, u8, u32); :func:`pack` turns it into the bytes seccomp(2)
takes. The program is read by the kernel against ``struct seccomp_data`` (linux/seccomp.h)::

    offset 0: int nr;  4: u32 arch;  8: u64 instruction_pointer;  16 + 8*i: u64 args[i]

Layout (every path ends in a ``ret``; all jumps go forward)::

    ld  arch
    jeq AUDIT_ARCH(native)          -> native section
    jeq AUDIT_ARCH(other) / ja      -> that section        (one pair per other architecture)
    ret <bad architecture>                                   (SECCOMP_RET_KILL_THREAD)
    section, per AUDIT_ARCH value:
      ld  nr
      a balanced binary search (jge) over the syscall-number line cut into segments: runs
      of numbers with the same unconditional verdict are merged into one segment, so the
      ~350 allowed calls of the default profile become a few dozen segments; a number
      the table has no name for (newer than its headers, or a gap) returns ENOSYS unless
      the default allows it, as runc's patched filter does (see :func:`_unknown_value`);
      a leaf is ``ret <verdict>`` or the argument block of one syscall:
        per rule (conditional rules first, see :mod:`.profile`): the conditions, each
        jumping to the next rule when it fails, then ``ret <action>``; finally
        ``ret <default>``.

x32 shares x86_64's AUDIT_ARCH: the x86_64 table owns numbers below ``__X32_SYSCALL_BIT``
(0x40000000) and x32 the numbers above; the half of a listed architecture not in the
profile gets the bad-architecture action, as libseccomp does. A 64-bit argument is compared
as two 32-bit halves (high, then low; the supported ABIs are little-endian, so the low half
is at ``16 + 8*i``), on 32-bit architectures (x86, arm) only the low half.

Limits (kernel ``BPF_MAXINSNS`` and the 8-bit jt/jf): a conditional jump farther than 255 goes
through a ``ja`` (32-bit offset); more than 4096 instructions is a ConfigError.

Sources: seccomp(2), Documentation/userspace-api/seccomp_filter.rst, linux/filter.h,
libseccomp's gen_bpf.c (read, not copied) for the architecture and x32 handling.
"""
import struct as _struct

from ..errors import ConfigError
from . import profile as _profile
from . import tables as _tables

# linux/bpf_common.h
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JA = 0x05  # BPF_JMP | BPF_JA
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGT = 0x25
JGE = 0x35
AND = 0x54  # BPF_ALU | BPF_AND | BPF_K
RET = 0x06  # BPF_RET | BPF_K

MAX_INSNS = 4096  # BPF_MAXINSNS
MAX_JUMP = 255
ENOSYS = 38

_OFF_NR, _OFF_ARCH, _OFF_ARGS = 0, 4, 16
_SPACE = 1 << 32
BAD_ARCH = _profile.RET_KILL_THREAD

# table -> the part of the number line it owns within its AUDIT_ARCH
_RANGES = {"x86_64": (0, _tables.X32_SYSCALL_BIT), "x32": (_tables.X32_SYSCALL_BIT, _SPACE)}

__all__ = ["compile_profile", "pack", "MAX_INSNS"]


def _arch_tables(profile, native):
    """Tables the filter covers, native first: the profile's ``architectures`` (those minins
    has tables for), or only the native one when the list is empty (runc and libseccomp add
    the native architecture in any case)."""
    names = [native]
    for a in profile.architectures:
        t = _tables.ARCHES.get(a)
        if t is not None and t not in names:
            names.append(t)
    return names


def compile_profile(profile, native):
    """The BPF program for ``profile`` (a validated :class:`~.profile.Seccomp`) on a process
    of table architecture ``native`` (``"x86_64"``, ``"aarch64"``, ...): a list of
    ``(code, jt, jf, k)``. Raises ConfigError when the kernel's limits cannot be met."""
    default = _profile.default_value(profile)
    sections = {}  # AUDIT_ARCH -> [table name, ...]
    order = []
    for name in _arch_tables(profile, native):
        audit = _tables.table(name).AUDIT_ARCH
        if audit not in sections:
            sections[audit] = []
            order.append(audit)
        sections[audit].append(name)
    bodies = [_section(profile, sections[a], default) for a in order]
    prog = [(LD_W_ABS, 0, 0, _OFF_ARCH)]
    others = order[1:]
    prog.append((JEQ, 2 * len(others) + 1, 0, order[0]))
    after = sum(len(b) for b in bodies[:1])  # sections laid out after the prologue
    for i, audit in enumerate(others):
        # distance from the ja to its section: the rest of the prologue, then the sections
        rest = 2 * (len(others) - i - 1) + 1
        prog.append((JEQ, 0, 1, audit))
        prog.append((JA, 0, 0, rest + after))
        after += len(bodies[i + 1])
    prog.append((RET, 0, 0, BAD_ARCH))
    for b in bodies:
        prog.extend(b)
    if len(prog) > MAX_INSNS:
        raise ConfigError("seccomp", "the filter needs %d BPF instructions; the kernel takes "
                          "at most %d" % (len(prog), MAX_INSNS))
    return prog


def _unknown_value(profile, default):
    """What a number the table has no name for returns: ENOSYS, so that libc falls back from
    a call newer than the tables (``fchmodat2`` -> ``fchmodat``) as it does under runc, whose
    filter answers ENOSYS above the profile's last syscall (libcontainer/seccomp/patchbpf);
    the profile's default when that allows the call (ALLOW, LOG; TRACE: the tracer decides,
    as in runc)."""
    if profile.defaultAction in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        return default
    return _profile.RET_ERRNO | ENOSYS


def _known_or_not(numbers, lo, hi, default, unknown):
    """Marks for :func:`_overlay` over [lo, hi): ``unknown`` from ``lo`` and after every
    number the table knows, then ``default`` at every known number (the overlay merges the
    equal neighbours)."""
    known = [n for n in numbers if lo <= n < hi]
    marks = {lo: ("ret", unknown)}
    marks.update((n + 1, ("ret", unknown)) for n in known if n + 1 < hi)
    marks.update((n, ("ret", default)) for n in known)
    return marks


def _section(profile, names, default):
    """The program for one AUDIT_ARCH value: ``ld nr`` and the search."""
    unknown = _unknown_value(profile, default)
    segments = [(0, _SPACE, ("ret", BAD_ARCH))]
    for name in names:
        t = _tables.table(name)
        lo, hi = _RANGES.get(name, (0, _SPACE))
        bits32 = name in _tables.BITS32
        marks = _known_or_not(t.SYSCALLS.values(), lo, hi, default, unknown)
        for nr, rules in _profile.rules_by_number(profile, t.SYSCALLS).items():
            if not lo <= nr < hi:
                continue
            if len(rules) == 1 and not rules[0][0]:
                marks[nr] = ("ret", rules[0][1])
            else:
                marks[nr] = ("block", rules, bits32)
        segments = _overlay(segments, lo, hi, marks, default)
    return [(LD_W_ABS, 0, 0, _OFF_NR)] + _search(segments, default)


def _overlay(segments, lo, hi, marks, default):
    """Replace [lo, hi) of ``segments`` with the verdicts in ``marks`` (start -> verdict;
    ``None`` means the default), merging neighbours with the same plain return."""
    out = [s for s in segments if s[1] <= lo or s[0] >= hi]
    for s in segments:  # keep the parts of a segment outside [lo, hi)
        if s[0] < lo < s[1]:
            out.append((s[0], lo, s[2]))
        if s[0] < hi < s[1]:
            out.append((hi, s[1], s[2]))
    starts = sorted(marks)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else hi
        verdict = marks[start] or ("ret", default)
        out.append((start, end, verdict))
    out.sort()
    merged = []
    for seg in out:
        if merged and merged[-1][2] == seg[2] and seg[2][0] == "ret" and merged[-1][1] == seg[0]:
            merged[-1] = (merged[-1][0], seg[1], seg[2])
        else:
            merged.append(seg)
    return merged


def _search(segments, default):
    """A balanced binary search over ``segments`` (sorted, covering the number line), the
    syscall number in A. Returns a self-contained instruction list."""
    if len(segments) == 1:
        return _leaf(segments[0][2], default)
    mid = len(segments) // 2
    left = _search(segments[:mid], default)
    right = _search(segments[mid:], default)
    pivot = segments[mid][0]
    if len(left) <= MAX_JUMP:
        return [(JGE, len(left), 0, pivot)] + left + right
    return [(JGE, 0, 1, pivot), (JA, 0, 0, len(left))] + left + right


def _leaf(verdict, default):
    if verdict[0] == "ret":
        return [(RET, 0, 0, verdict[1])]
    _kind, rules, bits32 = verdict
    out = []
    for conds, ret in rules:
        if not conds:
            out.append((RET, 0, 0, ret))
            return out
        out.extend(_rule(conds, ret, bits32))
    out.append((RET, 0, 0, default))
    return out


_F = "fail"


def _rule(conds, ret, bits32):
    """Conditions of one rule (all must hold) then ``ret``; a failed condition jumps to the
    instruction after the ``ret`` (the next rule). At most 6 conditions, one per argument
    (:func:`~.profile.rules_by_number` splits a rule comparing one argument twice), so every
    jump fits in 8 bits."""
    body = []
    for index, op, value, value2 in conds:
        body.extend(_condition(index, op, value, value2, bits32))
    body.append((RET, 0, 0, ret))
    end = len(body)
    out = []
    for i, (code, jt, jf, k) in enumerate(body):
        if jt == _F:
            jt = end - i - 1
        if jf == _F:
            jf = end - i - 1
        out.append((code, jt, jf, k))
    return out


def _condition(index, op, value, value2, bits32):
    """One comparison of ``args[index]`` with ``value`` (and ``value2`` for MASKED_EQ); a
    list whose jumps are relative, or ``_F`` for "condition false". Falls through when true.
    """
    lo_off = _OFF_ARGS + 8 * index
    hi_off = lo_off + 4
    vlo, vhi = value & 0xFFFFFFFF, value >> 32 & 0xFFFFFFFF
    ld_lo, ld_hi = (LD_W_ABS, 0, 0, lo_off), (LD_W_ABS, 0, 0, hi_off)
    if op == "SCMP_CMP_MASKED_EQ":
        w_lo, w_hi = value2 & 0xFFFFFFFF, value2 >> 32 & 0xFFFFFFFF
        low = [ld_lo, (AND, 0, 0, vlo), (JEQ, 0, _F, w_lo)]
        if bits32:
            return low
        return [ld_hi, (AND, 0, 0, vhi), (JEQ, 0, _F, w_hi)] + low
    if bits32:
        return [ld_lo, _LOW_TEST[op](vlo)]
    # 64-bit: decide on the high half when it differs, on the low half when it is equal.
    # After ``ld hi``: 'hi > vhi' and 'hi < vhi' jump to the verdict the op gives them.
    gt, lt = _HIGH_VERDICT[op]
    # layout: ld hi; jgt vhi; jeq vhi; ld lo; <low test>   (the condition is 5 insns)
    # from jgt (index 1): 'true' lands after the condition -> offset 3; from jeq (index 2):
    # 'not equal' means hi < vhi.
    return [
        ld_hi,
        (JGT, 3 if gt else _F, 0, vhi),
        (JEQ, 0, 2 if lt else _F, vhi),
        ld_lo,
        _LOW_TEST[op](vlo),
    ]


# op -> (verdict when hi > vhi, verdict when hi < vhi)
_HIGH_VERDICT = {
    "SCMP_CMP_EQ": (False, False),
    "SCMP_CMP_NE": (True, True),
    "SCMP_CMP_GT": (True, False),
    "SCMP_CMP_GE": (True, False),
    "SCMP_CMP_LT": (False, True),
    "SCMP_CMP_LE": (False, True),
}

# op -> the low-half test on A (falls through when true, ``_F`` when false)
_LOW_TEST = {
    "SCMP_CMP_EQ": lambda v: (JEQ, 0, _F, v),
    "SCMP_CMP_NE": lambda v: (JEQ, _F, 0, v),
    "SCMP_CMP_GT": lambda v: (JGT, 0, _F, v),
    "SCMP_CMP_GE": lambda v: (JGE, 0, _F, v),
    "SCMP_CMP_LT": lambda v: (JGE, _F, 0, v),
    "SCMP_CMP_LE": lambda v: (JGT, _F, 0, v),
}


def pack(prog):
    """``struct sock_filter[]`` in the host's byte order (u16 code, u8 jt, u8 jf, u32 k)."""
    s = _struct.Struct("=HBBI")
    return b"".join(s.pack(*insn) for insn in prog)
