"""Pure cgroup values: validation, unit conversions, device rule text, and the write plans."""
import types

import pytest
from hypothesis import given, settings, strategies as st

from cgroups_support import cgroup_config, device
from minins.cgroups import values
from minins.errors import ConfigError


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, field, words", [
    (dict(blkio_weight=5), "cgroups.blkio_weight", "10..1000"),
    (dict(blkio_weight=1001), "cgroups.blkio_weight", "10..1000"),
    (dict(cpu_shares=1), "cgroups.cpu_shares", "2..262144"),
    (dict(cpu_shares=262145), "cgroups.cpu_shares", "2..262144"),
    (dict(cpu_quota=999), "cgroups.cpu_quota", "1000"),
    (dict(cpu_quota=-2), "cgroups.cpu_quota", "at least -1"),
    (dict(cpu_period=999), "cgroups.cpu_period", "1000..1000000"),
    (dict(cpu_period=1000001), "cgroups.cpu_period", "1000..1000000"),
    (dict(memory=-2), "cgroups.memory", "at least -1"),
    (dict(memory="1g"), "cgroups.memory", "integer"),
    (dict(memory=True), "cgroups.memory", "integer"),
    (dict(memory_swap=100), "cgroups.memory_swap", "needs a memory limit"),
    (dict(memory=200, memory_swap=100), "cgroups.memory_swap", "at least memory"),
    (dict(pids_limit=-5), "cgroups.pids_limit", "at least -1"),
    (dict(cpuset_cpus="0-"), "cgroups.cpuset_cpus", "0-3,5"),
    (dict(cpuset_mems="a"), "cgroups.cpuset_mems", "0-3,5"),
    (dict(cpuset_cpus="3-1"), "cgroups.cpuset_cpus", "0-3,5"),
    (dict(freezer="PAUSED"), "cgroups.freezer", "FROZEN, THAWED"),
    (dict(name="a/b"), "cgroups.name", "one path component"),
    (dict(name=".."), "cgroups.name", "one path component"),
    (dict(parent="x/../y"), "cgroups.parent", "'..'"),
    (dict(name="a\0b"), "cgroups.name", "one-line"),
    (dict(allow_all_devices="yes"), "cgroups.allow_all_devices", "true or false"),
    (dict(allowed_devices=[device("x", 1, 3)]), "cgroups.allowed_devices[0].type", "99"),
    (dict(allowed_devices=[device("c", 1, 3), device("c", -2, 3)]),
     "cgroups.allowed_devices[1].major_number", "-1 (any)"),
    (dict(allowed_devices=[device("c", 1, 0x100000)]),
     "cgroups.allowed_devices[0].minor_number", "0..1048575"),
    (dict(allowed_devices=[device("c", 1, 3, "rx")]),
     "cgroups.allowed_devices[0].cgroup_permissions", "r, w and m"),
    (dict(allowed_devices=[device("c", 1, 3, "")]),
     "cgroups.allowed_devices[0].cgroup_permissions", "r, w and m"),
    (dict(allowed_devices=[device("c", 1, 3, "rr")]),
     "cgroups.allowed_devices[0].cgroup_permissions", "r, w and m"),
    (dict(allowed_devices=[device("a", 1, -1)]), "cgroups.allowed_devices[0].type",
     "no major or minor"),
])
def test_validate_names_the_field(kw, field, words):
    with pytest.raises(ConfigError) as exc:
        values.validate(cgroup_config(**kw))
    assert exc.value.field == field
    assert words in str(exc.value)
    assert str(exc.value).startswith(field + ": ")


def test_validate_uses_the_callers_field_and_accepts_the_seed_config():
    with pytest.raises(ConfigError) as exc:
        values.validate(cgroup_config(blkio_weight=1), "x.cgroups")
    assert str(exc.value) == "x.cgroups.blkio_weight: must be 10..1000 (or 0: unset)"
    seed = cgroup_config(name="docker-koye", parent="docker", memory=1 << 30,
                         memory_swap=-1, cpu_shares=512, cpu_quota=-1, cpu_period=100000,
                         cpuset_cpus="0-1", cpuset_mems="0", blkio_weight=500,
                         freezer="THAWED", pids_limit=-1,
                         allowed_devices=[device("c", -1, -1, "m"), device("c", 136, -1),
                                          device("a", -1, -1, "rwm"), device("c", 1, 3, "mwr")])
    assert values.validate(seed) is seed
    s = values.parse(seed)
    assert s.rules[-1] == ("c", 1, 3, "rwm")  # permissions in canonical order


def test_device_type_may_be_a_character():
    dev = types.SimpleNamespace(type="b", major_number=8, minor_number=-1,
                                cgroup_permissions="r")
    assert values.device_rule(dev) == ("b", 8, -1, "r")


def test_works_with_minins_config_records():
    config = pytest.importorskip("minins.config")
    cg = config.Cgroup(name="c1", memory=64 << 20, allowed_devices=(
        config.Device(type=99, major_number=1, minor_number=3, cgroup_permissions="rwm"),))
    s = values.parse(cg)
    assert (s.name, s.memory, s.rules) == ("c1", 64 << 20, [("c", 1, 3, "rwm")])


# --- conversions ---------------------------------------------------------------------------

def test_shares_to_weight_fixed_points():
    # crun's and runc's quadratic: minimum, default and maximum map exactly.
    assert values.shares_to_weight(0) == 0
    assert values.shares_to_weight(2) == 1
    assert values.shares_to_weight(1024) == 100
    assert values.shares_to_weight(262144) == 10000
    # runc's own table: just above the minimum and just below the maximum
    assert values.shares_to_weight(3) == 2
    assert values.shares_to_weight(262143) == 10000
    assert values.shares_to_weight(512) == 59  # ceil(10 ** 1.7647)


@given(st.integers(values.SHARES_MIN, values.SHARES_MAX - 1))
def test_shares_to_weight_is_monotonic_and_in_range(shares):
    a, b = values.shares_to_weight(shares), values.shares_to_weight(shares + 1)
    assert 1 <= a <= b <= 10000


@given(st.integers(10, 1000))
def test_blkio_to_io_weight_range(weight):
    w = values.blkio_to_io_weight(weight)
    assert 1 <= w <= 10000
    assert values.blkio_to_io_weight(10) == 1 and values.blkio_to_io_weight(1000) == 10000


@given(memory=st.integers(-1, 1 << 40), swap=st.integers(-1, 1 << 41))
def test_memsw_rule_of_the_seed(memory, swap):
    v1 = values.memsw_v1(memory, swap)
    v2 = values.swap_max_v2(memory, swap)
    if swap > 0:
        assert v1 == swap
    elif swap == 0 and memory > 0:
        assert v1 == 2 * memory  # unset: twice the memory
    else:
        assert v1 is None  # -1 (unlimited) or no memory limit: nothing written
    # v2 limits swap alone: the same total, minus the memory
    assert v2 == (None if v1 is None else v1 - memory)


@pytest.mark.parametrize("quota, period, text", [
    (0, 0, None), (50000, 0, "50000"), (50000, 100000, "50000 100000"),
    (-1, 100000, "max 100000"), (-1, 0, "max"), (0, 20000, "max 20000"),
])
def test_cpu_max(quota, period, text):
    assert values.cpu_max_v2(quota, period) == text


@given(st.sets(st.integers(0, 300), min_size=1))
def test_parse_list_round_trip(cpus):
    text = ",".join(str(c) for c in sorted(cpus))
    assert values.parse_list(text) == tuple(sorted(cpus))
    lo, hi = min(cpus), max(cpus)
    assert values.parse_list("%d-%d" % (lo, hi)) == tuple(range(lo, hi + 1))


def test_rule_text():
    assert values.rule_text(("c", 1, 3, "rwm")) == "c 1:3 rwm"
    assert values.rule_text(("c", 136, -1, "rwm")) == "c 136:* rwm"
    assert values.rule_text(("b", -1, -1, "m")) == "b *:* m"
    assert values.rule_text(("a", -1, -1, "rwm")) == "a *:* rwm"


# --- plans -----------------------------------------------------------------------------------

FULL = dict(memory=64 << 20, memory_reservation=32 << 20, cpu_shares=512, cpu_quota=50000,
            cpu_period=100000, cpuset_cpus="0", cpuset_mems="0", blkio_weight=500,
            pids_limit=20, allowed_devices=[device("c", 1, 3), device("c", 136, -1, "rw")])


def test_plan_v1_writes_every_seed_file_in_subsystem_order():
    plan = values.plan_v1(values.parse(cgroup_config(**FULL)))
    got = [(w.unit, w.files[0], w.value) for w in plan]
    assert got == [
        ("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0"),
        ("devices", "devices.deny", "a"),
        ("devices", "devices.allow", ("c 1:3 rwm", "c 136:* rw")),
        ("memory", "memory.limit_in_bytes", str(64 << 20)),
        ("memory", "memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
        ("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("pids", "pids.max", "20"),
        ("blkio", "blkio.weight", "500"),
    ]
    order = [values.V1_SUBSYSTEMS.index(w.unit) for w in plan]
    assert order == sorted(order)
    memsw = plan[6]
    assert memsw.optional and memsw.field == "memory_swap"  # derived: skipped without swap
    assert plan[-1].files == ("blkio.weight", "blkio.bfq.weight")


def test_plan_v2_converts_the_seed_values():
    plan = values.plan_v2(values.parse(cgroup_config(**FULL)))
    got = {w.files[0]: w.value for w in plan}
    assert got == {"cpuset.cpus": "0", "cpuset.mems": "0", "cpu.weight": "59",
                   "cpu.max": "50000 100000", "io.weight": str(values.blkio_to_io_weight(500)),
                   "memory.low": str(32 << 20), "memory.max": str(64 << 20),
                   "memory.swap.max": str(64 << 20), "pids.max": "20"}
    assert values.units(plan) == {"cpuset": "cpuset_cpus", "cpu": "cpu_shares",
                                  "io": "blkio_weight", "memory": "memory_reservation",
                                  "pids": "pids_limit"}


def test_plans_of_an_empty_config_and_of_explicit_swap():
    empty = values.parse(cgroup_config())
    assert values.plan_v1(empty) == [] and values.plan_v2(empty) == []
    s = values.parse(cgroup_config(memory=100 << 20, memory_swap=300 << 20, pids_limit=-1))
    v1 = {w.files[0]: w for w in values.plan_v1(s)}
    assert v1["memory.memsw.limit_in_bytes"].value == str(300 << 20)
    assert not v1["memory.memsw.limit_in_bytes"].optional  # asked for: must be there
    assert v1["pids.max"].value == "max"
    v2 = {w.files[0]: w.value for w in values.plan_v2(s)}
    assert v2["memory.swap.max"] == str(200 << 20)
    no_dev = values.parse(cgroup_config(allowed_devices=[]))
    assert [w.value for w in values.plan_v1(no_dev)] == ["a"]  # deny all, allow nothing


small = st.integers(0, 3)
devices = st.builds(lambda k, a, b, p: device(k, a, b, p), st.sampled_from("bc"),
                    st.integers(-1, 300), st.integers(-1, 300),
                    st.sampled_from(["r", "w", "m", "rw", "rwm", "wm"]))


@settings(max_examples=200)
@given(memory=st.sampled_from([0, -1, 1 << 20, 1 << 30]), swap=st.sampled_from([0, -1]),
       shares=st.sampled_from([0, 2, 1024, 262144]), quota=st.sampled_from([0, -1, 1000]),
       period=st.sampled_from([0, 1000, 100000]), pids=st.sampled_from([0, -1, 1, 100]),
       weight=st.sampled_from([0, 10, 1000]), devs=st.lists(devices, max_size=4),
       allow_all=st.booleans())
def test_plans_mention_only_what_is_set(memory, swap, shares, quota, period, pids, weight,
                                        devs, allow_all):
    s = values.parse(cgroup_config(memory=memory, memory_swap=swap, cpu_shares=shares,
                                   cpu_quota=quota, cpu_period=period, pids_limit=pids,
                                   blkio_weight=weight, allowed_devices=devs,
                                   allow_all_devices=allow_all))
    for plan in (values.plan_v1(s), values.plan_v2(s)):
        fields = {w.field for w in plan}
        assert ("memory" in fields) == bool(memory)
        assert ("cpu_shares" in fields) == bool(shares)
        assert ("pids_limit" in fields) == bool(pids)
        assert ("blkio_weight" in fields) == bool(weight)
        assert bool(fields & {"cpu_quota", "cpu_period"}) == bool(quota or period)
        for w in plan:
            values_ = w.value if isinstance(w.value, tuple) else (w.value,)
            assert all(v and "\n" not in v for v in values_)
    v1_devices = [w for w in values.plan_v1(s) if w.unit == "devices"]
    assert bool(v1_devices) == (not allow_all)
