"""The cgroup fields added for OCI linux.resources (issue 13): their checks at the kernel's
edges, the files each driver plans for them, and what one cgroup version cannot take.

Limits: memory.swappiness 0..100 (runc; the kernel takes up to 200 since 5.8);
cpu.rt_runtime_us at most max_rt_runtime = MAX_BW ns and not above the period, cpu.rt_period_us
not 0 and at most U64_MAX ns (kernel/sched/rt.c, sched-rt-group.rst); cpu.idle 0 or 1
(kernel/sched/fair.c); cfs burst at most the quota (sched-bwc.rst); blkio weights 10..1000
(blkio-controller.rst); io.max rbps/wbps/riops/wiops (cgroup-v2.rst, "IO Interface Files");
hugetlb.<size>.limit_in_bytes / .max (hugetlb.rst); net_cls.classid a u32, net_prio.ifpriomap
"ifname prio" (net_cls.rst, net_prio.rst); interface names at most 15 bytes (IFNAMSIZ - 1).
"""
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroups_support import values_bad as bad, values_ok as ok
from minins.cgroups import values
from minins.config import HugepageLimit, IfPrioMap, ThrottleDevice, WeightDevice
from minins.errors import ConfigError

W = values.Write


# --- defaults and types --------------------------------------------------------------------

def test_an_old_config_without_the_new_attributes_parses_to_their_unset_values():
    old = types.SimpleNamespace(name="c", memory=5 << 20, allow_all_devices=True)
    s = values.parse(old)
    assert (s.kernel_memory_tcp, s.memory_swappiness, s.oom_kill_disable) == (0, -1, False)
    assert (s.cpu_rt_period, s.cpu_rt_runtime, s.cpu_idle, s.cpu_burst) == (0, 0, -1, -1)
    assert (s.blkio_leaf_weight, s.net_cls_classid) == (0, 0)
    assert s.blkio_weight_device == s.hugetlb_limit == s.net_prio_ifpriomap == ()
    assert s.unified == () and all(getattr(s, n) == () for n in values.THROTTLES)
    assert values.plan_v1(s) == [W("memory", "memory.limit_in_bytes", 5 << 20, "memory"),
                                 W("memory", "memory.memsw.limit_in_bytes", 10 << 20,
                                   "memory_swap", optional=True)]
    assert values.unsupported(s, True) is None and values.unsupported(s, False) is None


@pytest.mark.parametrize("name,lowest", [("kernel_memory_tcp", -1), ("memory_swappiness", -1),
                                         ("cpu_rt_period", 0), ("cpu_rt_runtime", -1),
                                         ("cpu_idle", -1), ("cpu_burst", -1),
                                         ("blkio_leaf_weight", 0), ("net_cls_classid", 0)])
def test_new_integers_have_a_lowest_value_and_must_be_integers(name, lowest):
    ok(**{name: lowest})
    bad(name, "must be at least %d" % lowest, **{name: lowest - 1})
    bad(name, "must be an integer", **{name: True})


def test_oom_kill_disable_is_a_boolean():
    assert ok(oom_kill_disable=True).oom_kill_disable is True
    bad("oom_kill_disable", "true or false", oom_kill_disable=1)


@pytest.mark.parametrize("name,row,attr", [
    ("blkio_weight_device", WeightDevice(major=8, minor=0, weight=100), "weight"),
    ("blkio_throttle_read_bps_device", ThrottleDevice(major=8, minor=0, rate=1), "rate"),
    ("hugetlb_limit", HugepageLimit(page_size="2MB", limit=0), "limit"),
    ("net_prio_ifpriomap", IfPrioMap(interface="eth0", priority=1), "priority")])
def test_list_items_are_type_checked_by_attribute(name, row, attr):
    ok(**{name: (row,)})
    bad("%s[1].%s" % (name, attr), "must be an integer", **{
        name: (row, row.replace(**{attr: "1"}))})
    bad(name, "must be a list", **{name: 5})


def test_list_item_strings_are_type_checked():
    bad("hugetlb_limit[0].page_size", "must be a string",
        hugetlb_limit=(HugepageLimit(page_size=2, limit=1),))


def test_unified_is_pairs_of_strings_or_a_dict():
    assert ok(unified={"memory.high": "1G"}).unified == (("memory.high", "1G"),)
    assert ok(unified=(("a.b", "1"),)).unified == (("a.b", "1"),)
    for wrong in ((("a.b", 1),), (("a.b",),), ("a.b",)):
        bad("unified", "must be an object of strings", unified=wrong)


# --- ranges --------------------------------------------------------------------------------

def test_memory_ranges():
    ok(kernel_memory_tcp=values.MEMORY_MAX)
    bad("kernel_memory_tcp", "at most", kernel_memory_tcp=values.MEMORY_MAX + 1)
    ok(memory_swappiness=0)
    ok(memory_swappiness=100)
    bad("memory_swappiness", "0..100", memory_swappiness=101)


def test_realtime_ranges():
    assert values.RT_RUNTIME_MAX == 17592186044 and values.RT_PERIOD_MAX == 18446744073709551
    ok(cpu_rt_period=values.RT_PERIOD_MAX)
    bad("cpu_rt_period", "1..%d" % values.RT_PERIOD_MAX, cpu_rt_period=values.RT_PERIOD_MAX + 1)
    ok(cpu_rt_runtime=values.RT_RUNTIME_MAX)
    bad("cpu_rt_runtime", "at most", cpu_rt_runtime=values.RT_RUNTIME_MAX + 1)
    ok(cpu_rt_runtime=1000, cpu_rt_period=1000)
    ok(cpu_rt_runtime=-1, cpu_rt_period=1000)
    ok(cpu_rt_runtime=5000)  # the period the cgroup has is the kernel's to compare
    bad("cpu_rt_runtime", "must not exceed cpu_rt_period (1000", cpu_rt_runtime=1001,
        cpu_rt_period=1000)


def test_idle_and_burst_ranges():
    ok(cpu_idle=0)
    ok(cpu_idle=1)
    bad("cpu_idle", "0 or 1", cpu_idle=2)
    ok(cpu_burst=0)
    ok(cpu_burst=values.QUOTA_MAX)
    bad("cpu_burst", "at most", cpu_burst=values.QUOTA_MAX + 1)
    ok(cpu_burst=5000, cpu_quota=5000)
    ok(cpu_burst=5000, cpu_quota=-1)
    ok(cpu_burst=5000)  # the quota the cgroup has is the kernel's to compare
    bad("cpu_burst", "must not exceed cpu_quota (5000", cpu_burst=5001, cpu_quota=5000)


def test_weights_classid_and_devices():
    for w in (10, 1000):
        ok(blkio_leaf_weight=w)
    for w in (9, 1001):
        bad("blkio_leaf_weight", "10..1000", blkio_leaf_weight=w)
    ok(net_cls_classid=values.U32)
    bad("net_cls_classid", "at most", net_cls_classid=values.U32 + 1)
    edge = WeightDevice(major=values.MAX_MAJOR, minor=values.MAX_MINOR, weight=10,
                        leaf_weight=1000)
    ok(blkio_weight_device=(edge, WeightDevice(major=0, minor=0, leaf_weight=10)))
    for attr, value in (("major", values.MAX_MAJOR + 1), ("major", -1),
                        ("minor", values.MAX_MINOR + 1), ("minor", -1)):
        bad("blkio_weight_device[0].%s" % attr, "must be 0..",
            blkio_weight_device=(edge.replace(**{attr: value}),))
    for attr, value in (("weight", 9), ("weight", 1001), ("leaf_weight", 9),
                        ("leaf_weight", 1001)):
        bad("blkio_weight_device[0].%s" % attr, "10..1000",
            blkio_weight_device=(edge.replace(**{attr: value}),))
    bad("blkio_weight_device[0]", "neither", blkio_weight_device=(WeightDevice(major=8),))


@pytest.mark.parametrize("name", values.THROTTLES)
def test_throttle_ranges(name):
    ok(**{name: (ThrottleDevice(major=values.MAX_MAJOR, minor=values.MAX_MINOR,
                                rate=values.U64),)})
    ok(**{name: (ThrottleDevice(major=0, minor=0, rate=0),)})
    bad("%s[0].rate" % name, "0..2**64-1", **{name: (ThrottleDevice(rate=values.U64 + 1),)})
    bad("%s[0].rate" % name, "0..2**64-1", **{name: (ThrottleDevice(rate=-1),)})
    bad("%s[0].major" % name, "0..4095", **{name: (ThrottleDevice(major=4096),)})
    bad("%s[0].minor" % name, "0..1048575", **{name: (ThrottleDevice(minor=-1),)})


def test_hugepage_sizes_and_limits():
    assert values.hugepage_bytes("64KB") == 64 << 10
    assert values.hugepage_bytes("2MB") == 2 << 20
    assert values.hugepage_bytes("1GB") == 1 << 30
    for wrong in ("2M", "MB", "02MB", "2mb", "2 MB", "-2MB", "2TB", "\u0662MB", ""):
        assert values.hugepage_bytes(wrong) is None, wrong
        bad("hugetlb_limit[0].page_size", "page size",
            hugetlb_limit=(HugepageLimit(page_size=wrong, limit=1),))
    ok(hugetlb_limit=(HugepageLimit(page_size="2MB", limit=values.MEMORY_MAX),))
    bad("hugetlb_limit[0].limit", "0..", hugetlb_limit=(
        HugepageLimit(page_size="2MB", limit=values.MEMORY_MAX + 1),))
    bad("hugetlb_limit[0].limit", "0..", hugetlb_limit=(
        HugepageLimit(page_size="2MB", limit=-1),))


def test_ifpriomap_names_and_priorities():
    ok(net_prio_ifpriomap=(IfPrioMap(interface="x" * 15, priority=values.U32),))
    for name in ("", "x" * 16, ".", "..", "a/b", "a:b", "a b", "a\tb", "a\nb", "\u00e9" * 8):
        bad("net_prio_ifpriomap[0].interface", "interface name",
            net_prio_ifpriomap=(IfPrioMap(interface=name, priority=1),))
    ok(net_prio_ifpriomap=(IfPrioMap(interface="\u00e9" * 7, priority=0),))
    for prio in (-1, values.U32 + 1):
        bad("net_prio_ifpriomap[0].priority", "0..%d" % values.U32,
            net_prio_ifpriomap=(IfPrioMap(interface="lo", priority=prio),))


def test_unified_keys():
    ok(unified={"memory.high": "max", "cgroup.max.depth": "3", "io.max": "8:0 rbps=1\n"})
    for key in ("memory", ".high", "memory.", "a/b.c", "../x.y", "\udcff.x"):
        bad("unified", "not a cgroup v2 file name", unified={key: "1"})
    for key in values.UNIFIED_FORBIDDEN:
        bad("unified." + key, "runtime's to write", unified={key: "1"})
    bad("unified.memory.high", "without NUL", unified={"memory.high": "1\0"})
    bad("unified.memory.high", "without NUL", unified={"memory.high": "\udcff"})


# --- what v1 and v2 cannot take ---------------------------------------------------------

V1_ONLY = [("kernel_memory_tcp", 1 << 20, "memory.kmem.tcp.limit_in_bytes"),
           ("memory_swappiness", 0, "memory.swappiness"),
           ("oom_kill_disable", True, "memory.oom_control"),
           ("cpu_rt_period", 1000, "cpu.rt_period_us"),
           ("cpu_rt_runtime", -1, "cpu.rt_runtime_us"),
           ("blkio_leaf_weight", 10, "blkio.leaf_weight"),
           ("net_cls_classid", 1, "net_cls.classid"),
           ("net_prio_ifpriomap", (IfPrioMap(interface="lo"),), "net_prio.ifpriomap")]


@pytest.mark.parametrize("name,value,file", V1_ONLY)
def test_v1_only_settings_are_refused_on_v2(name, value, file):
    s = ok(**{name: value})
    assert values.unsupported(s, True) == (
        name, "not supported on cgroup v2 (v1's %s has no v2 file)" % file)
    assert values.unsupported(s, False) is None
    with pytest.raises(ConfigError) as e:
        values.check_version(s, True, "x")
    assert str(e.value) == "x.%s: not supported on cgroup v2 (v1's %s has no v2 file)" % (
        name, file)
    values.check_version(s, False, "x")


def test_leaf_weight_of_a_device_is_refused_on_v2_by_its_index():
    s = ok(blkio_weight_device=(WeightDevice(major=8, weight=10),
                                WeightDevice(major=9, leaf_weight=10)))
    assert values.unsupported(s, True) == (
        "blkio_weight_device[1].leaf_weight",
        "not supported on cgroup v2 (v1's blkio.leaf_weight_device has no v2 file)")
    assert values.unsupported(ok(blkio_weight_device=(WeightDevice(major=8, weight=10),)),
                              True) is None


def test_unified_is_refused_on_v1_only():
    s = ok(unified={"memory.high": "1"})
    assert values.unsupported(s, False) == ("unified", "needs cgroup v2 (this host's cgroups "
                                                       "are v1)")
    assert values.unsupported(s, True) is None
    with pytest.raises(ConfigError) as e:
        values.check_version(s, False)
    assert e.value.field == "cgroups.unified"


# --- plans -----------------------------------------------------------------------------------

def full():
    return ok(memory=64 << 20, memory_swap=-1, kernel_memory_tcp=1 << 20, memory_swappiness=0,
              oom_kill_disable=True, cpu_rt_period=1000000, cpu_rt_runtime=1000,
              cpu_shares=512, cpu_quota=5000, cpu_period=10000, cpu_burst=0, cpu_idle=0,
              blkio_weight=100, blkio_leaf_weight=200,
              blkio_weight_device=(WeightDevice(major=8, minor=0, weight=300),
                                   WeightDevice(major=8, minor=16, leaf_weight=400)),
              blkio_throttle_read_bps_device=(ThrottleDevice(major=8, minor=0, rate=10),),
              blkio_throttle_write_bps_device=(ThrottleDevice(major=8, minor=0, rate=0),
                                               ThrottleDevice(major=8, minor=16, rate=20)),
              blkio_throttle_read_iops_device=(ThrottleDevice(major=8, minor=16, rate=30),),
              blkio_throttle_write_iops_device=(ThrottleDevice(major=8, minor=0, rate=40),),
              hugetlb_limit=(HugepageLimit(page_size="2MB", limit=2 << 20),
                             HugepageLimit(page_size="1GB", limit=0)),
              net_cls_classid=0x100001,
              net_prio_ifpriomap=(IfPrioMap(interface="lo", priority=2),
                                  IfPrioMap(interface="eth0", priority=0)),
              pids_limit=10)


def test_plan_v1_of_every_new_field_in_order():
    assert values.plan_v1(full()) == [
        W("memory", "memory.limit_in_bytes", 64 << 20, "memory"),
        W("memory", "memory.kmem.tcp.limit_in_bytes", 1 << 20, "kernel_memory_tcp"),
        W("memory", "memory.swappiness", 0, "memory_swappiness"),
        W("memory", "memory.oom_control", "1", "oom_kill_disable"),
        W("cpu", "cpu.rt_period_us", 1000000, "cpu_rt_period"),
        W("cpu", "cpu.rt_runtime_us", 1000, "cpu_rt_runtime"),
        W("cpu", "cpu.shares", 512, "cpu_shares"),
        W("cpu", "cpu.cfs_period_us", 10000, "cpu_period"),
        W("cpu", "cpu.cfs_quota_us", 5000, "cpu_quota"),
        W("cpu", "cpu.cfs_burst_us", 0, "cpu_burst"),
        W("cpu", "cpu.idle", 0, "cpu_idle"),
        W("pids", "pids.max", "10", "pids_limit"),
        W("blkio", ("blkio.weight", "blkio.bfq.weight"), 100, "blkio_weight"),
        W("blkio", "blkio.leaf_weight", 200, "blkio_leaf_weight"),
        W("blkio", ("blkio.weight_device", "blkio.bfq.weight_device"), ("8:0 300",),
          "blkio_weight_device"),
        W("blkio", "blkio.leaf_weight_device", ("8:16 400",), "blkio_weight_device"),
        W("blkio", "blkio.throttle.read_bps_device", ("8:0 10",),
          "blkio_throttle_read_bps_device"),
        W("blkio", "blkio.throttle.write_bps_device", ("8:0 0", "8:16 20"),
          "blkio_throttle_write_bps_device"),
        W("blkio", "blkio.throttle.read_iops_device", ("8:16 30",),
          "blkio_throttle_read_iops_device"),
        W("blkio", "blkio.throttle.write_iops_device", ("8:0 40",),
          "blkio_throttle_write_iops_device"),
        W("hugetlb", "hugetlb.2MB.limit_in_bytes", 2 << 20, "hugetlb_limit"),
        W("hugetlb", "hugetlb.1GB.limit_in_bytes", 0, "hugetlb_limit"),
        W("net_cls", "net_cls.classid", 0x100001, "net_cls_classid"),
        W("net_prio", "net_prio.ifpriomap", ("lo 2", "eth0 0"), "net_prio_ifpriomap"),
    ]
    # every subsystem in the order V1_SUBSYSTEMS makes and joins them
    order = [values.V1_SUBSYSTEMS.index(w.unit) for w in values.plan_v1(full())]
    assert order == sorted(order)


def test_plan_v1_and_v2_leave_unset_new_fields_out():
    s = ok(cpu_idle=-1, cpu_burst=-1, memory_swappiness=-1)
    assert values.plan_v1(s) == [] and values.plan_v2(s) == []
    s = ok(cpu_idle=0, cpu_burst=0)  # 0 is a setting for both
    assert values.plan_v2(s) == [W("cpu", "cpu.max.burst", 0, "cpu_burst"),
                                 W("cpu", "cpu.idle", 0, "cpu_idle")]
    s = ok(cpu_idle=1, cpu_burst=7)
    assert values.plan_v1(s) == [W("cpu", "cpu.cfs_burst_us", 7, "cpu_burst"),
                                 W("cpu", "cpu.idle", 1, "cpu_idle")]
    assert values.plan_v2(s) == [W("cpu", "cpu.max.burst", 7, "cpu_burst"),
                                 W("cpu", "cpu.idle", 1, "cpu_idle")]


def test_plan_v2_of_the_fields_v2_has():
    s = ok(memory=64 << 20, cpu_quota=5000, cpu_period=10000, cpu_burst=100, cpu_idle=1,
           blkio_weight=10,
           blkio_weight_device=(WeightDevice(major=8, minor=0, weight=1000),
                                WeightDevice(major=8, minor=16, weight=10),
                                WeightDevice(major=8, minor=32, leaf_weight=10)),
           blkio_throttle_read_bps_device=(ThrottleDevice(major=8, minor=0, rate=10),),
           blkio_throttle_write_bps_device=(ThrottleDevice(major=8, minor=0, rate=0),
                                            ThrottleDevice(major=8, minor=16, rate=20)),
           blkio_throttle_read_iops_device=(ThrottleDevice(major=8, minor=16, rate=30),),
           blkio_throttle_write_iops_device=(ThrottleDevice(major=8, minor=0, rate=40),),
           hugetlb_limit=(HugepageLimit(page_size="2MB", limit=4 << 20),),
           pids_limit=-1,
           unified=(("memory.high", "max"), ("cgroup.max.depth", "2")))
    assert values.plan_v2(s) == [
        W("cpu", "cpu.max", "5000 10000", "cpu_quota"),
        W("cpu", "cpu.max.burst", 100, "cpu_burst"),
        W("cpu", "cpu.idle", 1, "cpu_idle"),
        W("io", "io.weight", 1, "blkio_weight"),
        W("io", "io.weight", ("8:0 10000", "8:16 1"), "blkio_weight_device"),
        W("io", "io.max", ("8:0 rbps=10 wbps=max wiops=40", "8:16 wbps=20 riops=30"),
          "blkio_throttle_read_bps_device"),
        W("memory", "memory.max", 64 << 20, "memory"),
        W("memory", "memory.swap.max", 64 << 20, "memory_swap", optional=True),
        W("hugetlb", "hugetlb.2MB.max", 4 << 20, "hugetlb_limit"),
        W("pids", "pids.max", "max", "pids_limit"),
        W("memory", "memory.high", "max", "unified.memory.high"),
        W("", "cgroup.max.depth", "2", "unified.cgroup.max.depth"),
    ]
    # a core file needs no controller; the others name the field that needs theirs
    assert values.units(values.plan_v2(s)) == {"cpu": "cpu_quota", "io": "blkio_weight",
                                               "memory": "memory", "hugetlb": "hugetlb_limit",
                                               "pids": "pids_limit"}


def test_io_max_names_the_first_throttle_set():
    s = ok(blkio_throttle_write_iops_device=(ThrottleDevice(major=1, minor=2, rate=3),))
    assert values.io_max_v2(s) == ("1:2 wiops=3",)
    assert values.plan_v2(s) == [W("io", "io.max", ("1:2 wiops=3",),
                                   "blkio_throttle_write_iops_device")]
    assert values.io_max_v2(ok()) == ()


def test_update_lifts_swap_only_when_asked():
    lifted = ok(memory=-1, memory_swap=-1)
    assert values.plan_v1(lifted, update=True) == [
        W("memory", "memory.limit_in_bytes", -1, "memory"),
        W("memory", "memory.memsw.limit_in_bytes", -1, "memory_swap", optional=True)]
    assert values.plan_v2(lifted, update=True) == [
        W("memory", "memory.max", "max", "memory"),
        W("memory", "memory.swap.max", "max", "memory_swap", optional=True)]
    # a new cgroup has no swap limit: nothing to lift
    assert values.plan_v1(lifted) == [W("memory", "memory.limit_in_bytes", -1, "memory")]
    assert values.plan_v2(lifted) == [W("memory", "memory.max", "max", "memory")]
    kept = ok(memory=5 << 20)
    assert values.plan_v1(kept, update=True) == [
        W("memory", "memory.limit_in_bytes", 5 << 20, "memory")]
    assert values.plan_v2(kept, update=True) == [W("memory", "memory.max", 5 << 20, "memory")]


@given(st.lists(st.tuples(st.sampled_from(values.THROTTLES), st.integers(0, 3),
                          st.integers(0, 3), st.integers(0, 5)), max_size=8))
def test_io_max_has_one_line_per_device_with_each_throttle_once(rows):
    fields = {n: tuple(ThrottleDevice(major=a, minor=b, rate=r) for m, a, b, r in rows if m == n)
              for n in values.THROTTLES}
    lines = values.io_max_v2(ok(**fields))
    devices = [line.split()[0] for line in lines]
    assert len(devices) == len(set(devices)) == len({(a, b) for _, a, b, _ in rows})
    for line in lines:
        keys = [part.split("=")[0] for part in line.split()[1:]]
        assert keys == sorted(set(keys), key=["rbps", "wbps", "riops", "wiops"].index)
