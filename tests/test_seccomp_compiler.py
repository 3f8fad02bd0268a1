"""The seccomp compiler, checked by running its programs in a small classic-BPF interpreter
against a direct evaluation of the profile (written here, independently of the compiler)."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minins.errors import ConfigError
from minins.seccomp import compiler, default, tables
from minins.seccomp import profile as P

M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1
AUDIT = {name: tables.table(name).AUDIT_ARCH for name in tables.ARCHES.values()}
KILL_THREAD = 0


# --- a classic BPF interpreter (the subset seccomp accepts) ----------------------------------

def run_bpf(prog, data):
    """Run ``prog`` over ``data`` (bytes of struct seccomp_data) like the kernel; also checks
    the shape the kernel's checker insists on (forward jumps inside the program, no falling
    off the end, reads of aligned words inside seccomp_data)."""
    assert 0 < len(prog) <= 4096
    pc, a, steps = 0, 0, 0
    while True:
        assert 0 <= pc < len(prog), "ran off the program at %d" % pc
        code, jt, jf, k = prog[pc]
        assert 0 <= jt <= 255 and 0 <= jf <= 255 and 0 <= k <= M32 and 0 <= code <= 0xFFFF
        if code not in (0x15, 0x25, 0x35, 0x45):  # only a conditional jump has jt/jf
            assert jt == jf == 0, "jt/jf on a non-jump at %d" % pc
        steps += 1
        assert steps <= len(prog)  # forward only: never more steps than instructions
        if code == 0x20:  # ld [k]
            assert k % 4 == 0 and k + 4 <= 64
            a = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x54:  # and #k
            a &= k
            pc += 1
        elif code == 0x05:  # ja
            pc += 1 + k
        elif code in (0x15, 0x25, 0x35, 0x45):
            test = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[code]
            pc += 1 + (jt if test else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError("instruction %#x is not one seccomp takes" % code)


def seccomp_data(nr, audit, args):
    return struct.pack("<iIQ6Q", nr if nr < 1 << 31 else nr - (1 << 32), audit, 0, *args)


# --- the direct evaluation -------------------------------------------------------------------

def listed_tables(prof, native):
    names = [native] + [tables.ARCHES[a] for a in prof.architectures if a in tables.ARCHES]
    return set(names)


def owner(audit, nr, listed):
    """The table that decides (audit, nr), or None for the bad-architecture action."""
    candidates = [t for t in listed if AUDIT[t] == audit]
    if not candidates:
        return None
    if audit == AUDIT["x86_64"]:
        want = "x32" if nr >= tables.X32_SYSCALL_BIT else "x86_64"  # libseccomp: jge
        return want if want in candidates else None
    return candidates[0]


def holds(index, op, value, value2, args, bits32):
    a, v, v2 = args[index], value, value2
    if bits32:
        a, v, v2 = a & M32, v & M32, v2 & M32
    return {
        "SCMP_CMP_EQ": a == v, "SCMP_CMP_NE": a != v, "SCMP_CMP_LT": a < v,
        "SCMP_CMP_LE": a <= v, "SCMP_CMP_GT": a > v, "SCMP_CMP_GE": a >= v,
        "SCMP_CMP_MASKED_EQ": (a & v) == v2,
    }[op]


def ret_of(action, errno_ret):
    base = {"SCMP_ACT_KILL": 0, "SCMP_ACT_KILL_THREAD": 0, "SCMP_ACT_KILL_PROCESS": 0x80000000,
            "SCMP_ACT_TRAP": 0x30000, "SCMP_ACT_ERRNO": 0x50000, "SCMP_ACT_TRACE": 0x7FF00000,
            "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_LOG": 0x7FFC0000,
            "SCMP_ACT_NOTIFY": 0x7FC00000}[action]
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return base | (1 if errno_ret is None else errno_ret)
    return base


_BY_NUMBER = {}


def names_of(t, nr):
    if t not in _BY_NUMBER:
        rev = _BY_NUMBER[t] = {}
        for n, num in tables.table(t).SYSCALLS.items():
            rev.setdefault(num, set()).add(n)
    return _BY_NUMBER[t].get(nr, set())


def evaluate(prof, native, audit, nr, args):
    t = owner(audit, nr, listed_tables(prof, native))
    if t is None:
        return KILL_THREAD
    bits32 = t in ("x86", "arm")
    names = names_of(t, nr)
    if not names and prof.defaultAction not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
                                                "SCMP_ACT_TRACE"):
        return 0x50000 | 38  # a number the table has no name for: ENOSYS, as under runc
    rules = [r for r in prof.syscalls if names & set(r.names)]
    for r in rules:
        # one argument compared twice: the conditions are alternatives (runc's split rules)
        both = any if len(set(c.index for c in r.args)) < len(r.args) else all
        if r.args and both(holds(c.index, c.op, c.value, c.valueTwo, args, bits32)
                           for c in r.args):
            return ret_of(r.action, r.errnoRet)
    for r in rules:
        if not r.args:
            return ret_of(r.action, r.errnoRet)
    return ret_of(prof.defaultAction, prof.defaultErrnoRet)


# --- strategies ------------------------------------------------------------------------------

NAMES = ["read", "write", "getpid", "clone", "personality", "keyctl", "unshare", "socket",
         "mmap", "mmap2", "arch_prctl", "set_tls", "breakpoint", "riscv_flush_icache",
         "rt_sigaction", "open", "openat", "no_such_call", "exit_group", "ioctl"]
ACTIONS = sorted(P.ACTIONS)
INTERESTING = [0, 1, 2, 8, 0x7E020000, M32, 1 << 32, (1 << 32) + 1, M64, M64 - 1, 1 << 63]
values = st.one_of(st.sampled_from(INTERESTING), st.integers(0, M64), st.integers(0, 300))


@st.composite
def actions(draw, notify=True):
    action = draw(st.sampled_from([a for a in ACTIONS if notify or a != "SCMP_ACT_NOTIFY"]))
    errno_ret = None
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        errno_ret = draw(st.one_of(st.none(), st.integers(0, 4095)))
    return action, errno_ret


@st.composite
def rules(draw):
    action, errno_ret = draw(actions())
    args = tuple(P.SeccompArg(index=draw(st.integers(0, 5)), value=draw(values),
                              valueTwo=draw(values), op=draw(st.sampled_from(P.OPERATORS)))
                 for _ in range(draw(st.integers(0, 3))))
    return P.SeccompSyscall(names=tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1,
                                                      max_size=4))),
                            action=action, errnoRet=errno_ret, args=args)


@st.composite
def profiles(draw):
    action, errno_ret = draw(actions(notify=False))
    return P.Seccomp(
        defaultAction=action, defaultErrnoRet=errno_ret,
        architectures=tuple(draw(st.lists(st.sampled_from(sorted(tables.ARCHES)),
                                          max_size=4))),
        syscalls=tuple(draw(st.lists(rules(), max_size=8))))


NATIVES = sorted(tables.NATIVE.values())


def near(v):
    """Values on both sides of ``v``'s edges, in either half."""
    return st.sampled_from([v, (v + 1) & M64, (v - 1) & M64, (v + (1 << 32)) & M64,
                            (v - (1 << 32)) & M64, v & M32, v | (M32 << 32)])


@st.composite
def calls(draw, prof, native):
    listed = sorted(listed_tables(prof, native))
    targets = [(t, tables.table(t).SYSCALLS[n], r) for r in prof.syscalls for n in r.names
               for t in listed if n in tables.table(t).SYSCALLS]
    args = [draw(values) for _ in range(6)]
    if targets and draw(st.integers(0, 3)):
        # aimed at a rule (3 times in 4): its number, its arguments at the edges of the
        # constants it compares with (each half on either side)
        t, nr, rule = draw(st.sampled_from(targets))
        audit = AUDIT[t]
        for c in rule.args:
            args[c.index] = draw(st.one_of(near(c.value), near(c.valueTwo)))
        return audit, nr, tuple(args)
    audit = draw(st.one_of(st.sampled_from([AUDIT[t] for t in listed]),
                           st.sampled_from(sorted(set(AUDIT.values()))), st.integers(0, M32)))
    nums = [nr for t, nr, _r in targets] or [0]
    nr = draw(st.one_of(st.sampled_from(nums), st.sampled_from(nums).map(lambda n: n + 1),
                        st.integers(0, M32)))
    return audit, nr, tuple(args)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_program_decides_like_the_profile(data):
    prof = data.draw(profiles())
    native = data.draw(st.sampled_from(NATIVES))
    prog = compiler.compile_profile(prof, native)
    for _ in range(8):
        audit, nr, args = data.draw(calls(prof, native))
        got = run_bpf(prog, seccomp_data(nr, audit, args))
        assert got == evaluate(prof, native, audit, nr, args), (audit, nr, args)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(NATIVES), st.sampled_from(sorted(tables.ARCHES.values())),
       st.integers(1, 4))
def test_every_syscall_of_a_table_compiles_and_decides(native, name, spread):
    """Every syscall with its own verdict (no neighbours merged): the search tree is as big as
    it gets and needs long jumps; every number is still decided like the profile says."""
    t = tables.table(name)
    scmp = [k for k, v in tables.ARCHES.items() if v == name][0]
    rules_ = tuple(P.SeccompSyscall(names=(n,), action="SCMP_ACT_ERRNO", errnoRet=i % (spread * 97))
                   for i, n in enumerate(sorted(t.SYSCALLS)))
    prof = P.Seccomp(defaultAction="SCMP_ACT_ALLOW", architectures=(scmp,), syscalls=rules_)
    prog = compiler.compile_profile(prof, native)
    assert len(prog) <= 4096
    assert any(code == compiler.JA for code, _jt, _jf, _k in prog)  # long jumps were needed
    for n, nr in t.SYSCALLS.items():
        for probe in (nr, nr + 1):
            got = run_bpf(prog, seccomp_data(probe, t.AUDIT_ARCH, (0,) * 6))
            assert got == evaluate(prof, native, t.AUDIT_ARCH, probe, (0,) * 6), (n, probe)


def test_too_big_a_program_is_a_config_error():
    rules_ = []
    for name in tables.ARCHES.values():
        for i, n in enumerate(sorted(tables.table(name).SYSCALLS)):
            rules_.append(P.SeccompSyscall(names=(n,), action="SCMP_ACT_ERRNO", errnoRet=i % 4000))
    prof = P.Seccomp(defaultAction="SCMP_ACT_ALLOW", architectures=tuple(tables.ARCHES),
                     syscalls=tuple(rules_))
    with pytest.raises(ConfigError, match="at most 4096"):
        compiler.compile_profile(prof, "x86_64")


def test_exactly_4096_instructions_are_taken():
    """BPF_MAXINSNS is a maximum, not a bound to stay under: 4096 compiles, 4097 does not.
    Rules of 6 (EQ) and 7 (MASKED_EQ) instructions on one syscall make the count exact."""
    def prof(n_eq, n_masked):
        def rule(i, op):
            return P.SeccompSyscall(names=("personality",), action="SCMP_ACT_ERRNO",
                                    args=(P.SeccompArg(index=0, value=i, op=op),))
        return P.Seccomp(defaultAction="SCMP_ACT_ALLOW", syscalls=tuple(
            [rule(i, "SCMP_CMP_EQ") for i in range(n_eq)]
            + [rule(i, "SCMP_CMP_MASKED_EQ") for i in range(n_masked)]))

    def size(p):
        try:
            return len(compiler.compile_profile(p, "x86_64"))
        except ConfigError as e:
            return int(e.message.split("needs ")[1].split()[0])

    base = size(prof(0, 0))
    found = {}
    for n_masked in range(7):
        guess = (4096 - base - 7 * n_masked) // 6
        for n_eq in range(guess - 3, guess + 4):
            found.setdefault(size(prof(n_eq, n_masked)), (n_eq, n_masked))
    assert 4096 in found and 4097 in found
    assert len(compiler.compile_profile(prof(*found[4096]), "x86_64")) == 4096
    with pytest.raises(ConfigError, match="needs 4097 BPF instructions"):
        compiler.compile_profile(prof(*found[4097]), "x86_64")


def test_a_syscall_with_many_argument_rules():
    rules_ = tuple(P.SeccompSyscall(names=("personality",), action="SCMP_ACT_ERRNO",
                                    errnoRet=i + 1,
                                    args=tuple(P.SeccompArg(index=j, value=i, op="SCMP_CMP_GE")
                                               for j in range(6)))
                   for i in range(40))
    prof = P.Seccomp(defaultAction="SCMP_ACT_ALLOW", syscalls=rules_)
    prog = compiler.compile_profile(prof, "x86_64")
    nr = tables.table("x86_64").SYSCALLS["personality"]
    for v in (0, 5, 39, 1 << 40):
        args = (v,) * 6
        assert run_bpf(prog, seccomp_data(nr, AUDIT["x86_64"], args)) == \
            evaluate(prof, "x86_64", AUDIT["x86_64"], nr, args)


@pytest.mark.parametrize("block_at", [None, 0, 126])
def test_a_left_subtree_of_exactly_255_and_256_instructions(block_at):
    """The 8-bit jt reaches 255 instructions: a left subtree of 255 is jumped over directly,
    one of 256 (made with one 4-instruction argument block among 126 one-instruction
    leaves) through a ``ja``. Every segment start is decided as its segment says."""
    block = ("block", [(((0, "SCMP_CMP_EQ", 7, 0),), 0x50007)], True)
    n = 254 if block_at is not None else 256
    segments = [(i, i + 1, ("ret", 0x50000 | (i + 10))) for i in range(n)]
    segments[-1] = (n - 1, 1 << 32, segments[-1][2])
    if block_at is not None:
        segments[block_at] = (block_at, block_at + 1, block)
    body = compiler._search(segments, 0x7FFF0000)
    prog = [(0x20, 0, 0, 0)] + body
    left = 127 if block_at is not None else 128
    first = body[0]
    if block_at is None:
        assert first[:2] == (0x35, 255)  # 128 leaves + 127 jge = 255: fits
    else:
        assert first[:3] == (0x35, 0, 1) and body[1][0] == 0x05  # 256: through a ja
    for start, _end, verdict in segments[:left + 2]:
        got = run_bpf(prog, seccomp_data(start, 0, (7,) + (0,) * 5))
        assert got == (verdict[1] if verdict[0] == "ret" else 0x50007)


def test_an_architecture_without_a_table_is_accepted_and_never_matched():
    listed = P.loads({"defaultAction": "SCMP_ACT_ERRNO",
                      "architectures": ["SCMP_ARCH_MIPS", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                      "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]})
    plain = listed.replace(architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"))
    assert compiler.compile_profile(listed, "x86_64") == compiler.compile_profile(plain, "x86_64")


@pytest.mark.parametrize("native", NATIVES)
@pytest.mark.parametrize("caps", [(), ("CAP_SYS_ADMIN", "SYS_PTRACE"), tuple(
    "CAP_" + c for c in ("CHOWN", "SYS_CHROOT", "AUDIT_WRITE"))])
def test_the_default_profile_compiles_and_decides(native, caps):
    prof = default.default_profile(caps, native, "6.1.0")
    P.validate(prof)
    prog = compiler.compile_profile(prof, native)
    assert len(prog) <= 4096
    for t in listed_tables(prof, native):
        audit = AUDIT[t]
        for n, nr in tables.table(t).SYSCALLS.items():
            args = (0x10000000, 0, 0, 0, 0, 0)
            for near_nr in (max(nr - 1, 0), nr, nr + 1):  # and its neighbours, maybe unknown
                assert run_bpf(prog, seccomp_data(near_nr, audit, args)) == \
                    evaluate(prof, native, audit, near_nr, args), (t, n, near_nr)


def test_default_profile_verdicts():
    prof = default.default_profile(("CHOWN",), "x86_64", "6.1.0")
    prog = compiler.compile_profile(prof, "x86_64")
    sc = tables.table("x86_64").SYSCALLS
    audit = AUDIT["x86_64"]

    def verdict(name, *args):
        return run_bpf(prog, seccomp_data(sc[name], audit, args + (0,) * (6 - len(args))))

    eperm, allow = 0x50001, 0x7FFF0000
    assert verdict("keyctl") == verdict("add_key") == verdict("unshare") == eperm
    assert verdict("getpid") == verdict("read") == allow
    assert verdict("clone", 0x11) == allow  # fork-like flags
    assert verdict("clone", 0x10000000) == eperm  # CLONE_NEWUSER
    assert verdict("clone3") == 0x50000 | 38  # ENOSYS, so libc falls back to clone
    assert verdict("personality", 8) == allow and verdict("personality", 1) == eperm
    # an x32 call while x32 is listed, an i386 call through int 0x80
    assert run_bpf(prog, seccomp_data(tables.table("x32").SYSCALLS["getpid"], audit,
                                      (0,) * 6)) == allow
    assert run_bpf(prog, seccomp_data(tables.table("x86").SYSCALLS["keyctl"],
                                      AUDIT["x86"], (0,) * 6)) == eperm
    with_admin = compiler.compile_profile(
        default.default_profile(("SYS_ADMIN",), "x86_64", "6.1.0"), "x86_64")
    assert run_bpf(with_admin, seccomp_data(sc["unshare"], audit, (0,) * 6)) == allow


def test_a_call_newer_than_the_tables_gets_enosys_as_under_runc():
    """runc answers ENOSYS for a syscall newer than the profile knows, so that libc falls back
    (glibc 2.39's fchmodat2, 452 on x86_64, to fchmodat); the default's EPERM would not let it.
    Numbers the table has no name for get ENOSYS unless the default allows them."""
    sc = tables.table("x86_64").SYSCALLS
    audit = AUDIT["x86_64"]
    newer = max(sc.values()) + 2
    gap = next(n for n in range(1, max(sc.values())) if n not in sc.values())
    prof = default.default_profile(("CHOWN",), "x86_64", "6.1.0")
    prog = compiler.compile_profile(prof, "x86_64")
    for nr in (newer, gap, tables.X32_SYSCALL_BIT - 1):
        assert run_bpf(prog, seccomp_data(nr, audit, (0,) * 6)) == 0x50000 | 38, nr
    assert run_bpf(prog, seccomp_data(sc["keyctl"], audit, (0,) * 6)) == 0x50001
    # arm's table ends in its private calls (0xf0000...): a gap below them is unknown too
    arm = tables.table("arm").SYSCALLS
    arm_gap = max(n for n in arm.values() if n < 0xF0000) + 1
    aprog = compiler.compile_profile(default.default_profile(("CHOWN",), "arm", "6.1.0"), "arm")
    assert run_bpf(aprog, seccomp_data(arm_gap, AUDIT["arm"], (0,) * 6)) == 0x50000 | 38
    for action, want in (("SCMP_ACT_ALLOW", 0x7FFF0000), ("SCMP_ACT_LOG", 0x7FFC0000),
                         ("SCMP_ACT_TRACE", 0x7FF00001), ("SCMP_ACT_KILL_PROCESS", 0x50026)):
        p = P.Seccomp(defaultAction=action)
        assert run_bpf(compiler.compile_profile(p, "x86_64"),
                       seccomp_data(newer, audit, (0,) * 6)) == want, action


def test_one_argument_compared_twice_is_two_alternatives_as_in_runc():
    """runc splits a rule whose conditions compare one argument twice into a rule per
    condition (libseccomp refuses the rule); ANDing them instead made the classic "deny
    socket for AF_NETLINK and AF_PACKET" rule deny neither."""
    prof = P.loads({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]})
    prog = compiler.compile_profile(prof, "x86_64")
    sc = tables.table("x86_64").SYSCALLS
    audit = AUDIT["x86_64"]

    def verdict(name, *args):
        return run_bpf(prog, seccomp_data(sc[name], audit, args + (0,) * (6 - len(args))))

    assert verdict("socket", 16) == verdict("socket", 17) == 0x50001
    assert verdict("socket", 2) == 0x7FFF0000
    # different arguments: still all must hold
    assert verdict("personality", 8, 9) == 0x50001
    assert verdict("personality", 8, 0) == verdict("personality", 0, 9) == 0x7FFF0000


def test_x32_calls_are_not_x86_64_calls():
    """Without x32 listed, a number with __X32_SYSCALL_BIT gets the bad-architecture action,
    never the verdict of the x86_64 call with the same low bits (and the reverse)."""
    prof = P.Seccomp(defaultAction="SCMP_ACT_ERRNO",
                     syscalls=(P.SeccompSyscall(names=("getpid",), action="SCMP_ACT_ALLOW"),))
    prog = compiler.compile_profile(prof, "x86_64")
    nr = tables.table("x86_64").SYSCALLS["getpid"]
    audit = AUDIT["x86_64"]
    assert run_bpf(prog, seccomp_data(nr, audit, (0,) * 6)) == 0x7FFF0000
    assert run_bpf(prog, seccomp_data(nr | 0x40000000, audit, (0,) * 6)) == KILL_THREAD
    only_x32 = compiler.compile_profile(prof.replace(architectures=("SCMP_ARCH_X32",)), "x32")
    assert run_bpf(only_x32, seccomp_data(nr, audit, (0,) * 6)) == KILL_THREAD
    assert run_bpf(only_x32, seccomp_data(nr | 0x40000000, audit, (0,) * 6)) == 0x7FFF0000


def test_foreign_architecture_is_killed():
    prof = P.Seccomp(defaultAction="SCMP_ACT_ALLOW")
    prog = compiler.compile_profile(prof, "aarch64")
    assert run_bpf(prog, seccomp_data(1, AUDIT["aarch64"], (0,) * 6)) == 0x7FFF0000
    assert run_bpf(prog, seccomp_data(1, AUDIT["arm"], (0,) * 6)) == KILL_THREAD


def test_32_bit_architectures_compare_the_low_half_only():
    prof = P.Seccomp(defaultAction="SCMP_ACT_ALLOW", syscalls=(P.SeccompSyscall(
        names=("personality",), action="SCMP_ACT_ERRNO",
        args=(P.SeccompArg(index=0, value=8, op="SCMP_CMP_EQ"),)),))
    prog = compiler.compile_profile(prof, "arm")
    nr = tables.table("arm").SYSCALLS["personality"]
    assert run_bpf(prog, seccomp_data(nr, AUDIT["arm"], ((5 << 32) | 8,) + (0,) * 5)) == 0x50001
    assert not any(k == 20 for code, _t, _f, k in prog if code == 0x20)  # no high-half load


def test_pack_is_struct_sock_filter():
    prog = [(0x20, 0, 0, 4), (0x15, 1, 2, 0xC000003E), (0x06, 0, 0, 0x7FFF0000)]
    raw = compiler.pack(prog)
    assert len(raw) == 24
    assert struct.unpack("=HBBI", raw[8:16]) == (0x15, 1, 2, 0xC000003E)


@pytest.mark.parametrize("native", ["x86_64", "arm"])
@pytest.mark.parametrize("op", P.OPERATORS)
def test_every_operator_at_every_edge(native, op):
    """Each operator against constants with either half zero, one or all ones, and arguments
    one step away in either half: the places a two-halves comparison can get wrong."""
    edges = [0, 1, M32, 1 << 32, (1 << 32) + 1, (5 << 32) | 7, M64, 1 << 63, 0x7E020000]
    nr = tables.table(native).SYSCALLS["read"]
    audit = AUDIT[native]
    for value in edges:
        for value2 in (0, value, 7):
            prof = P.Seccomp(defaultAction="SCMP_ACT_ALLOW", syscalls=(P.SeccompSyscall(
                names=("read",), action="SCMP_ACT_ERRNO", errnoRet=9,
                args=(P.SeccompArg(index=2, value=value, valueTwo=value2, op=op),)),))
            prog = compiler.compile_profile(prof, native)
            for arg in {value, value2, (value + 1) & M64, (value - 1) & M64,
                        (value + (1 << 32)) & M64, (value - (1 << 32)) & M64, value & M32,
                        value | (M32 << 32), 0, M64}:
                args = (0, 0, arg, 0, 0, 0)
                assert run_bpf(prog, seccomp_data(nr, audit, args)) == \
                    evaluate(prof, native, audit, nr, args), (op, hex(value), hex(arg))


# --- the number line: overlaying a table's verdicts, merging neighbours -----------------------

def _verdict_at(segments, n):
    for start, end, verdict in segments:
        if start <= n < end:
            return verdict
    raise AssertionError("%d is in no segment" % n)


@st.composite
def _overlays(draw):
    space = draw(st.integers(2, 40))
    cuts = sorted(draw(st.sets(st.integers(1, space - 1), max_size=6)))
    bounds = [0] + cuts + [space]
    verdicts = st.sampled_from([("ret", 1), ("ret", 2), ("ret", 3)])
    segments = [(a, b, draw(verdicts)) for a, b in zip(bounds, bounds[1:])]
    # [lo, hi) often on a segment's boundary, where off-by-one mistakes live
    points = st.one_of(st.sampled_from(bounds), st.integers(0, space))
    lo, hi = sorted(draw(st.tuples(points, points)))
    if lo == hi:
        hi = min(space, lo + 1)
        lo = hi - 1
    starts = {lo} | draw(st.sets(st.integers(lo, hi - 1), max_size=5))
    marks = {s: draw(st.one_of(st.none(), verdicts, st.just(("block", ((), 9), False))))
             for s in sorted(starts)}
    return space, segments, lo, hi, marks


@given(_overlays())
def test_overlay_replaces_its_range_keeps_the_rest_and_merges_equal_returns(case):
    space, segments, lo, hi, marks = case
    default = 2
    out = compiler._overlay(segments, lo, hi, marks, default)
    # a partition of the number line, in order
    assert out[0][0] == 0 and out[-1][1] == space
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(out, out[1:]))
    for n in range(space):
        if lo <= n < hi:
            start = max(s for s in marks if s <= n)
            assert _verdict_at(out, n) == (marks[start] or ("ret", default)), n
        else:
            assert _verdict_at(out, n) == _verdict_at(segments, n), n
    # as few segments as the verdicts allow: no two plain returns alike side by side
    assert not any(a[2] == b[2] and a[2][0] == "ret" for a, b in zip(out, out[1:])), out


def test_a_leaf_ends_at_its_first_unconditional_rule():
    ret = compiler.RET
    assert compiler._leaf(("ret", 7), 1) == [(ret, 0, 0, 7)]
    assert compiler._leaf(("block", [((), 5)], False), 1) == [(ret, 0, 0, 5)]
    cond = ((0, "SCMP_CMP_EQ", 3, 0),)  # (index, op, value, valueTwo), as rules_by_number gives
    leaf = compiler._leaf(("block", [(cond, 4), ((), 5), (cond, 6)], False), 1)
    assert leaf[-1] == (ret, 0, 0, 5)  # nothing after it: the rest could never run
    assert leaf[:-1] == compiler._rule(cond, 4, False)
    leaf = compiler._leaf(("block", [(cond, 4)], False), 1)
    assert leaf == compiler._rule(cond, 4, False) + [(ret, 0, 0, 1)]  # then the default


@pytest.mark.parametrize("native", ["x86_64", "aarch64", "arm"])
def test_allowing_every_call_by_name_is_the_program_of_allowing_everything(native):
    """A rule without arguments is a plain return, merged with its neighbours: naming every
    syscall of the table with the default's own action gives the same program as naming
    none (not one block per syscall)."""
    arch = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
            "arm": "SCMP_ARCH_ARM"}[native]
    names = sorted(tables.table(native).SYSCALLS)
    every = P.loads({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch],
                     "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
    none = P.loads({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]})
    assert compiler.compile_profile(every, native) == compiler.compile_profile(none, native)
