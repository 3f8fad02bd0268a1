"""The v2 device program: its meaning, checked by running it in a small eBPF interpreter
against the v1 rule semantics, and its acceptance by the kernel's verifier."""
import os
import struct
import sys

import pytest
from hypothesis import given, settings, strategies as st

from minins.cgroups import bpf_devices as bd

BITS = {"m": bd.BPF_DEVCG_ACC_MKNOD, "r": bd.BPF_DEVCG_ACC_READ, "w": bd.BPF_DEVCG_ACC_WRITE}
KIND = {"b": bd.BPF_DEVCG_DEV_BLOCK, "c": bd.BPF_DEVCG_DEV_CHAR}
U64 = (1 << 64) - 1


ORDERS = ("little", "big")
PREFIX = {"little": "<", "big": ">"}


def decode(prog, byteorder=sys.byteorder):
    """``(code, dst, src, off, imm)`` per instruction: ``struct bpf_insn`` in ``byteorder``,
    its ``dst_reg:4, src_reg:4`` bitfields allocated from the low bits on a little-endian ABI,
    from the high bits on a big-endian one."""
    assert len(prog) % 8 == 0
    out = []
    for i in range(0, len(prog), 8):
        code, regs, off, imm = struct.unpack_from(PREFIX[byteorder] + "BBhi", prog, i)
        lo, hi = regs & 0xF, regs >> 4
        out.append((code, lo, hi, off, imm) if byteorder == "little" else (code, hi, lo, off, imm))
    return out


def run(prog, kind, major, minor, access, byteorder=sys.byteorder):
    """Interpret the few opcodes the program uses; ``r1`` points at bpf_cgroup_dev_ctx
    (``u32 access_type, major, minor``, in the same byte order as the program)."""
    ctx = struct.pack(PREFIX[byteorder] + "III", access << 16 | KIND[kind], major, minor)
    insns = decode(prog, byteorder)
    reg = [0] * 11
    reg[1] = "ctx"
    pc = steps = 0
    while True:
        steps += 1
        assert steps < 10000
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == bd.LDX_MEM_W:
            assert reg[src] == "ctx" and off in (0, 4, 8)
            reg[dst] = struct.unpack_from(PREFIX[byteorder] + "I", ctx, off)[0]
        elif code == bd.AND32_K:
            reg[dst] = reg[dst] & imm & 0xFFFFFFFF
        elif code == bd.RSH32_K:
            reg[dst] = (reg[dst] & 0xFFFFFFFF) >> imm
        elif code == bd.MOV32_K:
            reg[dst] = imm & 0xFFFFFFFF
        elif code == bd.MOV32_X:
            reg[dst] = reg[src] & 0xFFFFFFFF
        elif code == bd.JNE_K:
            if reg[dst] != imm & U64:  # imm is sign-extended to 64 bits
                pc += off
        elif code == bd.JNE_X:
            if reg[dst] != reg[src]:
                pc += off
        elif code == bd.EXIT:
            return reg[0]
        else:
            raise AssertionError("unexpected opcode %#x" % code)


def reachable_all(prog, byteorder=sys.byteorder):
    """What the verifier insists on: every instruction reachable, every jump in range,
    no path falling off the end."""
    insns = decode(prog, byteorder)
    seen, todo = set(), [0]
    while todo:
        pc = todo.pop()
        if pc in seen:
            continue
        assert 0 <= pc < len(insns), "jump or fall-through out of the program"
        seen.add(pc)
        code, _, _, off, _ = insns[pc]
        if code == bd.EXIT:
            continue
        todo.append(pc + 1)
        if code in (bd.JNE_K, bd.JNE_X):
            todo.append(pc + 1 + off)
    return len(seen) == len(insns)


def allowed(rules, kind, major, minor, access):
    """The v1 device cgroup's answer for a deny-all list plus these allow rules."""
    for rk, rmaj, rmin, racc in rules:
        if rk == "a":
            return True
        if rk == kind and rmaj in (-1, major) and rmin in (-1, minor) \
                and set(access) <= set(racc):
            return True
    return False


perms = st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"])
numbers = st.sampled_from([-1, 0, 1, 3, 5, 136, 4095])
rules_st = st.lists(st.tuples(st.sampled_from("bc"), numbers, numbers, perms), max_size=6)
with_all = st.tuples(rules_st, st.booleans(), st.integers(0, 6)).map(
    lambda t: t[0][:t[2]] + [("a", -1, -1, "rwm")] + t[0][t[2]:] if t[1] else t[0])
queries = st.tuples(st.sampled_from("bc"), st.sampled_from([0, 1, 3, 5, 136, 4095, 7]),
                    st.sampled_from([0, 1, 3, 5, 9, 1048575]), perms)


@settings(max_examples=300)
@given(with_all, st.lists(queries, min_size=1, max_size=20), st.sampled_from(ORDERS))
def test_program_means_what_v1_rules_mean(rules, qs, byteorder):
    """In the host's byte order and in the other one (s390x, ppc64 are big-endian)."""
    prog = bd.program(rules, byteorder)
    assert reachable_all(prog, byteorder)
    for kind, major, minor, access in qs:
        mask = 0
        for c in access:
            mask |= BITS[c]
        got = run(prog, kind, major, minor, mask, byteorder)
        assert got == (1 if allowed(rules, kind, major, minor, access) else 0), \
            (rules, kind, major, minor, access)


def test_program_shapes():
    deny_all = bd.program([])
    assert len(deny_all) == 8 * (6 + 2)  # the loads, then "return 0"
    assert run(deny_all, "c", 1, 3, 2) == 0
    rwm = bd.program([("c", 1, 3, "rwm")])
    # full access needs no access test: type, major, minor, then allow
    assert len(rwm) == 8 * (6 + 3 + 2 + 2)
    everything = bd.program([("c", 1, 3, "r"), ("a", -1, -1, "rwm"), ("b", 8, 0, "r")])
    assert reachable_all(everything)  # nothing emitted after the 'a' rule
    assert run(everything, "b", 259, 1, 7) == 1
    assert bd.program([("c", 1, 3, "r")]) is bd.program([("c", 1, 3, "r")])  # cached


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF_PROG_LOAD needs root (CAP_BPF)")
@settings(max_examples=25, deadline=None)
@given(with_all)
def test_the_kernel_verifier_accepts_every_shape(rules):
    fd = bd.load(bd._build(tuple(rules)))
    os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF_PROG_LOAD needs root (CAP_BPF)")
def test_a_rejected_program_reports_the_verifier_log():
    from minins.errors import SyscallError

    bad = bd.insn(bd.MOV32_K, 0, imm=1)  # no exit: falls off the end
    with pytest.raises(SyscallError) as exc:
        bd.load(bad, "/sys/fs/cgroup/x")
    assert exc.value.op == "bpf prog load" and exc.value.path == "/sys/fs/cgroup/x"
    assert "verifier" in str(exc.value)
