"""No byte-order assumption: every kernel structure minins packs or reads is built and decoded
here in both byte orders (x86_64, aarch64, armv7 and riscv64 are little-endian; s390x and
big-endian ppc64, which runc and crun also ship for, are not), and a scan of the sources keeps
fixed little-endian formats out."""
import ast
import ctypes
import os
import pathlib
import re
import struct
import sys

import pytest
from hypothesis import given, settings, strategies as st

from minins import arch, libc
from minins.cgroups import bpf_devices as bd

ORDERS = ("little", "big")
PREFIX = {"little": "<", "big": ">"}
SWAPPED = {"little": ctypes.LittleEndianStructure, "big": ctypes.BigEndianStructure}
MININS = pathlib.Path(__file__).resolve().parent.parent / "minins"
PROC_SUPER_MAGIC = 0x9FA0
CGROUP2_SUPER_MAGIC = 0x63677270


# --- struct statfs: f_type ------------------------------------------------------------------

@pytest.mark.parametrize("byteorder", ORDERS)
@pytest.mark.parametrize("width", (4, 8))
def test_statfs_f_type_in_both_orders_and_widths(byteorder, width):
    """A 64-bit big-endian host keeps the magic's low bytes last: reading the first four bytes
    (what minins did) gives 0 there."""
    fmt = PREFIX[byteorder] + ("I" if width == 4 else "Q") + "QQ"
    for magic in (PROC_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, 0xEF53, 0xFFFFFFFF):
        buf = bytearray(struct.pack(fmt, magic, 0x1122334455667788, 0xFFFFFFFFFFFFFFFF))
        assert arch.statfs_f_type(buf, byteorder, width) == magic
    if byteorder == "big" and width == 8:
        assert int.from_bytes(buf[:4], "little") == 0


@settings(deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(ORDERS), st.sampled_from((4, 8)),
       st.binary(min_size=0, max_size=64))
def test_statfs_f_type_reads_only_its_own_bytes(magic, byteorder, width, rest):
    buf = magic.to_bytes(width, byteorder) + rest
    assert arch.statfs_f_type(buf, byteorder, width) == magic


def test_statfs_f_type_width_per_architecture():
    assert arch.statfs_f_type_width("s390x") == 4  # unsigned int f_type there
    assert arch.statfs_f_type_width("x86_64") == struct.calcsize("l")
    assert arch.statfs_f_type_width() in (4, 8)


def test_fstatfs_type_reads_the_hosts_structure():
    fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert libc.fstatfs_type(fd) == PROC_SUPER_MAGIC
    finally:
        os.close(fd)


# --- struct bpf_insn and bpf_cgroup_dev_ctx ------------------------------------------------

def test_bpf_insn_known_encodings():
    """``r2 = *(u32 *)(r1 + 4)`` and ``w2 &= 0xffff``, byte for byte, as a little-endian and a
    big-endian kernel read them (the register nibbles swap with the bitfield order)."""
    ldx = (bd.LDX_MEM_W, 2, 1, 4, 0)
    assert bd.insn(*ldx, byteorder="little") == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0])
    assert bd.insn(*ldx, byteorder="big") == bytes([0x61, 0x21, 0, 4, 0, 0, 0, 0])
    andk = (bd.AND32_K, 2, 0, 0, 0xFFFF)
    assert bd.insn(*andk, byteorder="little") == bytes([0x54, 0x02, 0, 0, 0xFF, 0xFF, 0, 0])
    assert bd.insn(*andk, byteorder="big") == bytes([0x54, 0x20, 0, 0, 0, 0, 0xFF, 0xFF])
    jump_back = (bd.JNE_K, 5, 0, -3, -1)
    assert bd.insn(*jump_back, byteorder="big") == bytes([0x55, 0x50, 0xFF, 0xFD] + [0xFF] * 4)
    assert bd.insn(*ldx) == bd.insn(*ldx, byteorder=sys.byteorder)


@settings(deadline=None)
@given(st.integers(0, 255), st.integers(0, 10), st.integers(0, 10),
       st.integers(-2 ** 15, 2 ** 15 - 1), st.integers(-2 ** 31, 2 ** 31 - 1),
       st.sampled_from(ORDERS))
def test_bpf_insn_decodes_back_in_its_order(code, dst, src, off, imm, byteorder):
    raw = bd.insn(code, dst, src, off, imm, byteorder=byteorder)
    c, regs, o, i = struct.unpack(PREFIX[byteorder] + "BBhi", raw)
    lo, hi = regs & 0xF, regs >> 4
    assert (c, o, i) == (code, off, imm)
    assert (lo, hi) == ((dst, src) if byteorder == "little" else (src, dst))


def test_the_two_orders_differ_and_the_host_one_is_the_default():
    rules = [("c", 1, 3, "rw"), ("b", 8, -1, "r")]
    little, big = bd.program(rules, "little"), bd.program(rules, "big")
    assert len(little) == len(big) and little != big
    assert bd.program(rules) == (little if sys.byteorder == "little" else big)


# --- the ctypes structures handed to the kernel ----------------------------------------------

# Every ctypes structure of minins, with the kernel's layout (uapi headers) as a struct format
# without padding: the fields are naturally aligned on every ABI (a u64 at a multiple of 8 even
# on 32-bit arm), so the native layout is this one on every architecture, in either order.
LAYOUTS = {
    libc._Rlimit64: "QQ",  # struct rlimit64
    libc._CapHeader: "Ii",  # struct __user_cap_header_struct
    libc._CapData: "III",  # struct __user_cap_data_struct
    libc._OpenHow: "QQQ",  # struct open_how
    libc._MountAttr: "QQQQ",  # struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0)
    libc._CloneArgs: "QQQQQQQQQQQ",  # struct clone_args (linux/sched.h, CLONE_ARGS_SIZE_VER2)
    bd._ProgLoadAttr: "IIQQIIQII16s",  # union bpf_attr, BPF_PROG_LOAD, up to prog_name
    bd._AttachAttr: "IIIII",  # BPF_PROG_ATTACH / DETACH, up to replace_bpf_fd
    bd._QueryAttr: "IIIIQIIQQQQQ",  # BPF_PROG_QUERY, up to revision (see bpf_devices)
    bd._GetFdAttr: "III",  # BPF_PROG_GET_FD_BY_ID
}


def all_structures():
    import importlib
    import pkgutil

    import minins

    found = set()
    for mod in pkgutil.walk_packages(minins.__path__, "minins."):
        if mod.name in ("minins.__main__",):
            continue
        m = importlib.import_module(mod.name)
        for obj in vars(m).values():
            if isinstance(obj, type) and issubclass(obj, (ctypes.Structure, ctypes.Union)) \
                    and obj.__module__ == m.__name__:
                found.add(obj)
    return found


def test_every_structure_has_its_layout_checked_here():
    assert all_structures() == set(LAYOUTS), "add the new structure's layout to LAYOUTS"


def field_values(cls, fmt):
    """A distinct value per field (0 for padding), in the order of ``fmt``'s items."""
    codes = [c for _, c in re.findall(r"(\d*)([a-zA-Z])", fmt)]
    assert len(codes) == len(cls._fields_), cls.__name__
    out = []
    for n, ((name, _), c) in enumerate(zip(cls._fields_, codes)):
        if c == "s":
            out.append(b"minins%d" % n)
        elif c in "IQ":
            out.append(0x0102030405060708 * (n + 1) & (1 << (64 if c == "Q" else 32)) - 1)
        else:
            out.append(-n - 2)
        if name.startswith("_"):  # padding, never set
            out[-1] = 0
    return out


@pytest.mark.parametrize("byteorder", ORDERS)
@pytest.mark.parametrize("cls", sorted(LAYOUTS, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_structure_built_in_either_order_decodes_in_that_order(cls, byteorder):
    """The same fields declared in the given order (ctypes' Big/LittleEndianStructure, what
    the native class is on a host of that order) give exactly the kernel's layout in that
    order, and the native class gives it in the host's."""
    fmt = LAYOUTS[cls]
    values = field_values(cls, fmt)
    swapped = type(cls.__name__, (SWAPPED[byteorder],), {"_fields_": cls._fields_})
    assert ctypes.sizeof(cls) == ctypes.sizeof(swapped) == struct.calcsize(PREFIX[byteorder] + fmt)
    native, other = cls(), swapped()
    for (name, _), v in zip(cls._fields_, values):
        assert getattr(cls, name).offset == getattr(swapped, name).offset
        if not name.startswith("_"):
            setattr(native, name, v)
            setattr(other, name, v)
    assert bytes(other) == struct.pack(PREFIX[byteorder] + fmt, *values)
    assert bytes(native) == struct.pack("=" + fmt, *values)
    decoded = swapped.from_buffer_copy(struct.pack(PREFIX[byteorder] + fmt, *values))
    assert [getattr(decoded, n) for n, _ in cls._fields_] == values


# --- no fixed little-endian format in minins -----------------------------------------------

STRUCT_CALLS = {"pack", "unpack", "unpack_from", "pack_into", "iter_unpack", "calcsize", "Struct"}


def fixed_order_uses(tree):
    """``(line, what)`` for each struct format with ``<`` and each ``from_bytes``/``to_bytes``
    with ``"little"`` given literally. Network order (``!``, ``>``, ``"big"``) is allowed: IP
    addresses and ports are big-endian on every host."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        args = list(node.args) + [k.value for k in node.keywords]
        consts = [a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if node.func.attr in STRUCT_CALLS and consts and consts[0].startswith("<"):
            yield node.lineno, consts[0]
        if node.func.attr in ("from_bytes", "to_bytes") and "little" in consts:
            yield node.lineno, "byteorder 'little'"


def test_the_scan_finds_what_it_looks_for():
    bad = ast.parse("import struct\nstruct.pack('<I', 1)\nint.from_bytes(b, 'little')\n"
                    "x.to_bytes(4, byteorder='little')\nstruct.Struct('=I')\n")
    assert [line for line, _ in fixed_order_uses(bad)] == [2, 3, 4]


def test_minins_packs_kernel_structures_in_the_native_order():
    found = []
    for path in sorted(MININS.rglob("*.py")):
        for line, what in fixed_order_uses(ast.parse(path.read_text(), str(path))):
            found.append("%s:%d: %s" % (path.relative_to(MININS.parent), line, what))
    assert not found, "fixed little-endian layout (use '=' or sys.byteorder): %s" % found
