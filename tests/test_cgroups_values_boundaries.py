"""cgroup values at their exact edges: each limit accepted and one past it rejected, the
unit conversions at known points, and the plans' field names, flags and order.

Limits: cpu.shares 2..262144 (kernel/sched MIN_SHARES, MAX_SHARES); cfs period 1000..1000000
and quota from 1000 µs (Documentation/scheduler/sched-bwc.rst); blkio.weight 10..1000
(blkio-controller.rst); majors 12 bits, minors 20 (linux/kdev_t.h); names one path component
of at most 255 bytes (NAME_MAX).
"""
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroups_support import cgroup_config, device, values_bad as bad, values_ok as ok
from minins.cgroups import values
from minins.errors import ConfigError


def test_validate_of_nothing_is_nothing():
    assert values.validate(None) is None


@pytest.mark.parametrize("name,lowest", [("memory", -1), ("memory_reservation", -1),
                                         ("memory_swap", -1), ("cpu_shares", 0),
                                         ("cpu_quota", -1), ("cpu_period", 0),
                                         ("blkio_weight", 0), ("pids_limit", -1)])
def test_each_integer_at_its_lowest_and_one_below(name, lowest):
    assert getattr(ok(**{name: lowest}), name) == lowest
    bad(name, "must be at least %d (got %d)" % (lowest, lowest - 1), **{name: lowest - 1})
    bad(name, "must be an integer (got True)", **{name: True})
    bad(name, "must be an integer", **{name: 1.0})


@pytest.mark.parametrize("name", ["name", "parent", "cpuset_cpus", "cpuset_mems", "freezer",
                                  "slice"])
def test_each_string_is_one_line(name):
    bad(name, "one-line string", **{name: "a\nb"})
    bad(name, "one-line string", **{name: "a\0b"})
    bad(name, "one-line string", **{name: 5})


def test_strings_are_kept():
    s = ok(name="n", parent="p/q", slice="s.slice", freezer="FROZEN")
    assert (s.name, s.parent, s.slice, s.freezer) == ("n", "p/q", "s.slice", "FROZEN")
    assert ok(freezer="THAWED").freezer == "THAWED"
    assert ok(name=None).name == ""


def test_a_name_of_255_bytes_and_of_256():
    assert ok(name="n" * 255).name == "n" * 255
    bad("name", "at most 255 bytes", name="n" * 256)
    bad("name", "one path component", name="é" * 128)
    bad("name", "one path component", name=".")
    assert ok(name="...").name == "..."


@pytest.mark.parametrize("parent", [".", "a/./b", "../a", "a/.."])
def test_parent_dot_components(parent):
    bad("parent", "must not contain", parent=parent)


def test_parent_may_be_absolute_or_nested():
    assert ok(parent="/a/b.c/..d").parent == "/a/b.c/..d"


def test_memory_swap_needs_memory_and_at_least_as_much():
    assert ok(memory=100, memory_swap=100).memory_swap == 100
    bad("memory_swap", "must be at least memory (100)", memory=100, memory_swap=99)
    bad("memory_swap", "needs a memory limit", memory=-1, memory_swap=1)
    bad("memory_swap", "needs a memory limit", memory=0, memory_swap=1)
    ok(memory=0, memory_swap=0)
    ok(memory=0, memory_swap=-1)
    ok(memory=5, memory_swap=-1)


@pytest.mark.parametrize("value,good", [(1, False), (2, True), (3, True), (262144, True),
                                        (262145, False)])
def test_cpu_shares_edges(value, good):
    if good:
        ok(cpu_shares=value)
    else:
        bad("cpu_shares", "must be 2..262144 (or 0: unset)", cpu_shares=value)


@pytest.mark.parametrize("value,good", [(1, False), (999, False), (1000, True), (1001, True)])
def test_cpu_quota_edges(value, good):
    if good:
        ok(cpu_quota=value)
    else:
        bad("cpu_quota", "must be 1000..", cpu_quota=value)


@pytest.mark.parametrize("value,good", [(1, False), (999, False), (1000, True),
                                        (1000000, True), (1000001, False)])
def test_cpu_period_edges(value, good):
    if good:
        ok(cpu_period=value)
    else:
        bad("cpu_period", "must be 1000..1000000 µs (or 0: unset)", cpu_period=value)


@pytest.mark.parametrize("value,good", [(1, False), (9, False), (10, True), (1000, True),
                                        (1001, False)])
def test_blkio_weight_edges(value, good):
    if good:
        ok(blkio_weight=value)
    else:
        bad("blkio_weight", "must be 10..1000 (or 0: unset)", blkio_weight=value)


def test_freezer_values():
    bad("freezer", "must be FROZEN, THAWED or empty (got 'FREEZING')", freezer="FREEZING")


@pytest.mark.parametrize("text,cpus", [("0", (0,)), ("3-3", (3,)), ("0-2,1", (0, 1, 2)),
                                       (" 1,3 ", (1, 3)), ("65536", (65536,)),
                                       ("65535-65536", (65535, 65536))])
def test_parse_list_good(text, cpus):
    assert values.parse_list(text) == cpus


@pytest.mark.parametrize("text", ["", "-1", "1-", "a", "1-a", "3-2", "65537", "0-65537",
                                  "1,,2", "1-2-3"])
def test_parse_list_bad(text):
    assert values.parse_list(text) is None


def test_cpusets_are_checked_both():
    bad("cpuset_cpus", "0-3,5 (got '1-')", cpuset_cpus="1-")
    bad("cpuset_mems", "(got '2-1')", cpuset_mems="2-1")
    s = ok(cpuset_cpus="0-1", cpuset_mems="0")
    assert (s.cpuset_cpus, s.cpuset_mems) == ("0-1", "0")


# --- device rules --------------------------------------------------------------------------------

def rule(kind, major, minor, access="rwm"):
    return types.SimpleNamespace(type=kind, major_number=major, minor_number=minor,
                                 cgroup_permissions=access)


@pytest.mark.parametrize("kind,letter", [(97, "a"), (98, "b"), (99, "c"), ("a", "a"),
                                         ("b", "b"), ("c", "c")])
def test_rule_types(kind, letter):
    minor = -1
    assert values.device_rule(rule(kind, -1, minor)) == (letter, -1, -1, "rwm")


@pytest.mark.parametrize("kind", [96, 100, "cc", "", "d", None])
def test_rule_types_rejected(kind):
    with pytest.raises(ConfigError) as e:
        values.device_rule(rule(kind, 1, 1), "dev")
    assert e.value.field == "dev.type"


def test_rule_numbers_at_their_edges():
    assert values.device_rule(rule(99, 0xFFF, 0xFFFFF)) == ("c", 0xFFF, 0xFFFFF, "rwm")
    assert values.device_rule(rule(99, 0, 0)) == ("c", 0, 0, "rwm")
    for major, minor, field, top in ((0x1000, 0, "major_number", 4095),
                                     (0, 0x100000, "minor_number", 1048575),
                                     (-2, 0, "major_number", 4095),
                                     (0, -2, "minor_number", 1048575),
                                     (True, 0, "major_number", 4095),
                                     (0, None, "minor_number", 1048575)):
        with pytest.raises(ConfigError) as e:
            values.device_rule(rule(99, major, minor), "dev")
        assert e.value.field == "dev." + field
        assert "must be -1 (any) or 0..%d" % top in e.value.message


def test_all_devices_takes_no_numbers():
    for major, minor in ((1, -1), (-1, 1), (0, 0)):
        with pytest.raises(ConfigError, match="takes no major or minor"):
            values.device_rule(rule("a", major, minor))


@pytest.mark.parametrize("access,canonical", [("r", "r"), ("w", "w"), ("m", "m"),
                                              ("wr", "rw"), ("mr", "rm"), ("mw", "wm"),
                                              ("mwr", "rwm"), ("wmr", "rwm")])
def test_permissions_canonical(access, canonical):
    assert values.device_rule(rule(99, 1, 3, access))[3] == canonical


@pytest.mark.parametrize("access", ["", "rr", "x", "rwmr", None, 7])
def test_permissions_rejected(access):
    with pytest.raises(ConfigError) as e:
        values.device_rule(rule(99, 1, 3, access), "d")
    assert e.value.field == "d.cgroup_permissions"


def test_rules_and_allow_all():
    assert values.device_rules(cgroup_config(allowed_devices=[device("c", 1, 3)])) == [
        ("c", 1, 3, "rwm")]
    assert values.device_rules(cgroup_config()) is None  # every device allowed
    s = ok(allowed_devices=[device("b", 8, 0, "r")], allow_all_devices=True)
    assert s.rules is None
    s = ok(allowed_devices=[device("c", 1, 3), device("b", 8, -1, "r")])
    assert s.rules == [("c", 1, 3, "rwm"), ("b", 8, -1, "r")]
    with pytest.raises(ConfigError) as e:
        values.validate(cgroup_config(allowed_devices=[device("c", 1, 3), device("x", 1, 3)]))
    assert e.value.field == "cgroups.allowed_devices[1].type"


def test_rule_text_of_zero_numbers():
    assert values.rule_text(("c", 0, 0, "r")) == "c 0:0 r"


# --- conversions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shares,weight", [(0, 0), (1, 1), (2, 1), (3, 2), (100, 17),
                                           (1024, 100), (10000, 627), (262143, 10000),
                                           (262144, 10000), (262145, 10000), (10 ** 7, 10000)])
def test_shares_to_weight_points(shares, weight):
    assert values.shares_to_weight(shares) == weight


@pytest.mark.parametrize("blkio,io", [(0, 0), (10, 1), (11, 11), (500, 4950), (999, 9989),
                                      (1000, 10000)])
def test_blkio_to_io_weight_points(blkio, io):
    assert values.blkio_to_io_weight(blkio) == io


@pytest.mark.parametrize("memory,swap,v1,v2", [
    (100, 0, 200, 100), (100, -1, None, None), (100, 300, 300, 200), (0, 0, None, None),
    (-1, 0, None, None), (1, 0, 2, 1), (100, 100, 100, 0), (1, 1, 1, 0),
])
def test_swap_points(memory, swap, v1, v2):
    assert values.memsw_v1(memory, swap) == v1
    assert values.swap_max_v2(memory, swap) == v2


@pytest.mark.parametrize("quota,period,text", [(1, 0, "1"), (1, 1, "1 1"), (-1, 1, "max 1"),
                                               (0, 1, "max 1"), (-1, 0, "max")])
def test_cpu_max_points(quota, period, text):
    assert values.cpu_max_v2(quota, period) == text


# --- writes and plans ----------------------------------------------------------------------------

def test_write_records():
    w = values.Write("memory", "memory.max", 5, "memory")
    assert (w.files, w.value, w.optional) == (("memory.max",), "5", False)
    assert w == values.Write("memory", ["memory.max"], "5", "memory")
    assert w != values.Write("memory", "memory.max", 5, "memory", optional=True)
    assert w != values.Write("memory", "memory.high", 5, "memory")
    assert not (w != values.Write("memory", "memory.max", "5", "memory"))
    assert w != ("memory", ("memory.max",), "5", "memory", False)
    assert repr(w) == "Write('memory', ('memory.max',), '5', 'memory')"
    o = values.Write("devices", "devices.allow", ("a", "b"), "allowed_devices", True)
    assert o.value == ("a", "b")
    assert repr(o) == ("Write('devices', ('devices.allow',), ('a', 'b'), 'allowed_devices', "
                       "optional=True)")


def plans(**kw):
    s = values.parse(cgroup_config(**kw))
    return values.plan_v1(s), values.plan_v2(s)


def test_swap_writes_are_optional_only_when_derived():
    v1, v2 = plans(memory=100, memory_swap=0)
    assert [(w.files[0], w.value, w.optional) for w in v1] == [
        ("memory.limit_in_bytes", "100", False), ("memory.memsw.limit_in_bytes", "200", True)]
    assert [(w.files[0], w.value, w.optional) for w in v2] == [
        ("memory.max", "100", False), ("memory.swap.max", "100", True)]
    v1, v2 = plans(memory=100, memory_swap=150)
    assert [w.optional for w in v1] == [False, False]
    assert [(w.files[0], w.value, w.optional) for w in v2][-1] == ("memory.swap.max", "50",
                                                                   False)
    assert values.units(v2) == {"memory": "memory"}


def test_unlimited_values_are_written_as_max():
    v1, v2 = plans(memory=-1, memory_reservation=-1, pids_limit=-1)
    assert [(w.files[0], w.value) for w in v2] == [("memory.low", "max"), ("memory.max", "max"),
                                                   ("pids.max", "max")]
    assert [(w.files[0], w.value) for w in v1] == [("memory.limit_in_bytes", "-1"),
                                                   ("memory.soft_limit_in_bytes", "-1"),
                                                   ("pids.max", "max")]


def test_cpu_max_field_is_the_one_set():
    _, v2 = plans(cpu_period=100000)
    assert [(w.files[0], w.value, w.field) for w in v2] == [("cpu.max", "max 100000",
                                                             "cpu_period")]
    _, v2 = plans(cpu_quota=2000)
    assert [(w.files[0], w.value, w.field) for w in v2] == [("cpu.max", "2000", "cpu_quota")]
    v1, _ = plans(cpu_quota=-1)
    assert [(w.files[0], w.value) for w in v1] == [("cpu.cfs_quota_us", "-1")]


def test_each_cpuset_alone():
    v1, v2 = plans(cpuset_mems="0")
    assert [w.files[0] for w in v1] == ["cpuset.mems"] == [w.files[0] for w in v2]
    v1, v2 = plans(cpuset_cpus="1")
    assert [w.files[0] for w in v1] == ["cpuset.cpus"] == [w.files[0] for w in v2]


def test_units_skip_optional_writes_and_keep_the_first_field():
    plan = [values.Write("memory", "memory.memsw.limit_in_bytes", 1, "memory_swap", True),
            values.Write("cpu", "cpu.weight", 1, "cpu_shares"),
            values.Write("cpu", "cpu.max", "max", "cpu_quota"),
            values.Write("memory", "memory.max", 1, "memory")]
    assert values.units(plan) == {"cpu": "cpu_shares", "memory": "memory"}
    assert values.units(plan[:1]) == {}


@given(st.integers(values.SHARES_MIN, values.SHARES_MAX))
def test_shares_round_the_quadratic_up(shares):
    import math
    l2 = math.log2(shares)
    exact = 10 ** ((l2 * l2 + 125 * l2) / 612.0 - 7.0 / 34.0)
    w = values.shares_to_weight(shares)
    if values.SHARES_MIN < shares < values.SHARES_MAX:
        assert w - 1 < exact <= w


def test_a_config_without_the_attributes_is_all_unset():
    s = values.parse(types.SimpleNamespace())
    assert [getattr(s, n) for n in ("memory", "memory_reservation", "memory_swap",
                                    "cpu_shares", "cpu_quota", "cpu_period", "blkio_weight",
                                    "pids_limit")] == [0] * 8
    assert [getattr(s, n) for n in ("name", "parent", "cpuset_cpus", "cpuset_mems",
                                    "freezer", "slice")] == [""] * 6
    assert s.rules == []
    assert values.plan_v2(s) == []


def test_the_smallest_memory_with_swap():
    s = ok(memory=1, memory_swap=1)
    assert (s.memory, s.memory_swap) == (1, 1)


def test_explicit_swap_of_one_byte_is_not_optional():
    v1, v2 = plans(memory=1, memory_swap=1)
    assert [(w.files[0], w.value, w.optional) for w in v1] == [
        ("memory.limit_in_bytes", "1", False), ("memory.memsw.limit_in_bytes", "1", False)]
    assert [(w.files[0], w.value, w.optional) for w in v2] == [
        ("memory.max", "1", False), ("memory.swap.max", "0", False)]


# --- the kernel's largest values (limits of the reliability work) -----------------------------

@pytest.mark.parametrize("value,good", [(2 ** 44 - 2, True), (2 ** 44 - 1, True),
                                        (2 ** 44, False)])
def test_cpu_quota_at_the_kernels_max_bw(value, good):
    if good:
        ok(cpu_quota=value)
    else:
        bad("cpu_quota", "must be 1000..17592186044415 µs", cpu_quota=value)


@pytest.mark.parametrize("name", ["memory", "memory_reservation", "memory_swap"])
def test_memory_limits_at_long_max(name):
    extra = {"memory": 1 << 20} if name == "memory_swap" else {}
    ok(**dict(extra, **{name: 2 ** 63 - 1}))
    ok(**dict(extra, **{name: 2 ** 63 - 2}))
    bad(name, "must be at most 9223372036854775807 bytes", **dict(extra, **{name: 2 ** 63}))


def test_pids_limit_at_pid_max_limit():
    import struct

    top = 4 * 1024 * 1024 if struct.calcsize("l") == 8 else 32768  # PID_MAX_LIMIT
    assert values.PIDS_LIMIT_MAX == top
    ok(pids_limit=top)
    ok(pids_limit=top - 1)
    bad("pids_limit", "must be at most %d" % top, pids_limit=top + 1)


def test_settings_copy_changes_only_what_it_is_told():
    s = ok(memory=1 << 20, pids_limit=10, name="c1")
    t = s.copy(memory=2 << 20)
    assert t is not s and (t.memory, t.pids_limit, t.name) == (2 << 20, 10, "c1")
    assert s.memory == 1 << 20  # the original is left alone
    assert all(getattr(t, n) == getattr(s, n) for n in values.Settings.__slots__
               if n != "memory")
    with pytest.raises(TypeError) as e:
        s.copy(memory=1, bogus=2, other=3)
    assert str(e.value) == "unknown settings: bogus, other"


def test_a_lone_surrogate_in_a_string_is_refused_by_its_field():
    bad("name", "lone surrogate", name="c\udcff")
    bad("cpuset_cpus", "lone surrogate", cpuset_cpus="0\ud800")


@pytest.mark.parametrize("prefix,good", [("minins", True), ("a:b-c_d.e\\x", True),
                                         ("sp ace", False), ("sl/ash", False)])
def test_scope_prefix_is_part_of_a_unit_name(prefix, good):
    if good:
        ok(scope_prefix=prefix)
    else:
        bad("scope_prefix", "cannot be part of a systemd unit name", scope_prefix=prefix)
