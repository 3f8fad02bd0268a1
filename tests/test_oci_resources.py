"""minins.oci.resources.to_cgroup: OCI linux.resources (runtime-spec config-linux.md,
"Control groups") to minins.config.Cgroup fields, in runc 1.1's meaning, with errors named by
the OCI field. Pure: no kernel."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins.cgroups import values
from minins.config import (DEFAULT_ALLOWED_DEVICES, Cgroup, Device, HugepageLimit, IfPrioMap,
                           ThrottleDevice, WeightDevice)
from minins.errors import ConfigError
from minins.oci.resources import OCI_NAMES, to_cgroup

P = "linux.resources"


def bad(resources, field, words="", update=False):
    with pytest.raises(ConfigError) as e:
        to_cgroup(resources, update=update)
    assert e.value.field == P + "." + field if field else P, str(e.value)
    assert words in e.value.message, str(e.value)
    return e.value


def test_nothing_sets_nothing_and_unknown_properties_are_ignored():
    assert to_cgroup(None) == {}
    assert to_cgroup({}) == {}
    assert to_cgroup({"misc": {"x": 1}, "memory": {"future": 1}, "cpu": None}) == {}
    bad([], "", "must be an object, not a list")
    bad({"memory": 5}, "memory", "must be an object, not an integer")


def test_the_path_prefix_is_the_callers():
    with pytest.raises(ConfigError) as e:
        to_cgroup({"pids": {"limit": "1"}}, path="resources")
    assert e.value.field == "resources.pids.limit"


# --- memory --------------------------------------------------------------------------------

def test_memory_fields():
    assert to_cgroup({"memory": {"limit": 64 << 20, "reservation": 32 << 20,
                                 "swap": 128 << 20, "kernelTCP": 1 << 20, "swappiness": 0,
                                 "disableOOMKiller": True, "useHierarchy": True}}) == {
        "memory": 64 << 20, "memory_reservation": 32 << 20, "memory_swap": 128 << 20,
        "kernel_memory_tcp": 1 << 20, "memory_swappiness": 0, "oom_kill_disable": True}
    # zero is unset (runc), false disables nothing
    assert to_cgroup({"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernelTCP": 0,
                                 "disableOOMKiller": False}}) == {}


def test_swap_left_out_stays_unlimited_and_lifting_memory_lifts_it():
    assert to_cgroup({"memory": {"limit": 1 << 20}}) == {"memory": 1 << 20, "memory_swap": -1}
    assert to_cgroup({"memory": {"limit": -1}}) == {"memory": -1, "memory_swap": -1}
    assert to_cgroup({"memory": {"limit": -1, "swap": -1}}) == {"memory": -1,
                                                                "memory_swap": -1}
    assert to_cgroup({"memory": {"reservation": 5}}) == {"memory_reservation": 5}
    # an update leaves the swap it does not name as it is, unless memory is lifted
    assert to_cgroup({"memory": {"limit": 1 << 20}}, update=True) == {"memory": 1 << 20}
    assert to_cgroup({"memory": {"limit": -1}}, update=True) == {"memory": -1,
                                                                 "memory_swap": -1}


def test_memory_kernel_is_accepted_and_ignored_as_runc_does():
    assert to_cgroup({"memory": {"kernel": 1 << 30}}) == {}
    bad({"memory": {"kernel": "1G"}}, "memory.kernel", "must be an integer, not a string")


@pytest.mark.parametrize("key", ["limit", "reservation", "swap", "kernel", "kernelTCP"])
def test_memory_byte_fields_at_their_edges(key):
    top = 2 ** 63 - 1
    if key == "swap":
        assert to_cgroup({"memory": {"limit": top, "swap": top}})["memory_swap"] == top
    else:
        to_cgroup({"memory": {key: top}})
        to_cgroup({"memory": {key: -1}})
    bad({"memory": {key: -2}}, "memory." + key, "-1 (unlimited), 0 (unset)")
    bad({"memory": {key: top + 1}}, "memory." + key, "up to 2**63-1")
    bad({"memory": {key: 1.0}}, "memory." + key, "must be an integer, not a number")
    bad({"memory": {key: True}}, "memory." + key, "must be an integer, not a boolean")


def test_memory_swap_errors_name_the_oci_field():
    bad({"memory": {"limit": 2 << 20, "swap": 1 << 20}}, "memory.swap", "at least memory")
    bad({"memory": {"swap": 1 << 20}}, "memory.swap", "needs a memory limit")


def test_swappiness_and_the_booleans():
    assert to_cgroup({"memory": {"swappiness": 100}}) == {"memory_swappiness": 100}
    bad({"memory": {"swappiness": 101}}, "memory.swappiness", "must be 0..100 (got 101)")
    bad({"memory": {"swappiness": -1}}, "memory.swappiness", "0..")
    bad({"memory": {"disableOOMKiller": 1}}, "memory.disableOOMKiller", "true or false")
    bad({"memory": {"useHierarchy": False}}, "memory.useHierarchy", "false is not supported")
    bad({"memory": {"useHierarchy": "yes"}}, "memory.useHierarchy", "true or false")


# --- cpu -----------------------------------------------------------------------------------

def test_cpu_fields():
    assert to_cgroup({"cpu": {"shares": 1024, "quota": 50000, "period": 100000,
                              "realtimeRuntime": 1000, "realtimePeriod": 1000000,
                              "cpus": "0-1", "mems": "0", "idle": 1, "burst": 1000}}) == {
        "cpu_shares": 1024, "cpu_quota": 50000, "cpu_period": 100000, "cpu_rt_runtime": 1000,
        "cpu_rt_period": 1000000, "cpuset_cpus": "0-1", "cpuset_mems": "0", "cpu_idle": 1,
        "cpu_burst": 1000}
    assert to_cgroup({"cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                              "realtimePeriod": 0, "cpus": "", "mems": ""}}) == {}
    # 0 is a setting for idle and burst
    assert to_cgroup({"cpu": {"idle": 0, "burst": 0}}) == {"cpu_idle": 0, "cpu_burst": 0}


def test_cpu_negative_quota_and_runtime_are_unlimited_as_the_kernel_reads_them():
    low = -2 ** 63
    assert to_cgroup({"cpu": {"quota": low, "realtimeRuntime": -7}}) == {
        "cpu_quota": -1, "cpu_rt_runtime": -1}
    bad({"cpu": {"quota": low - 1}}, "cpu.quota", "an int64")
    bad({"cpu": {"quota": 2 ** 63}}, "cpu.quota", "an int64")


def test_cpu_errors_name_the_oci_field():
    bad({"cpu": {"shares": 1}}, "cpu.shares", "2..262144")
    bad({"cpu": {"shares": -1}}, "cpu.shares", "0..18446744073709551615")
    bad({"cpu": {"shares": 2 ** 64}}, "cpu.shares", "0..")
    bad({"cpu": {"quota": 999}}, "cpu.quota", "1000..")
    bad({"cpu": {"period": 999}}, "cpu.period", "1000..1000000")
    bad({"cpu": {"cpus": "0-"}}, "cpu.cpus", "0-3,5")
    bad({"cpu": {"mems": 0}}, "cpu.mems", "must be a string, not an integer")
    bad({"cpu": {"realtimePeriod": 1000, "realtimeRuntime": 1001}}, "cpu.realtimeRuntime",
        "must not exceed")
    bad({"cpu": {"realtimePeriod": 2 ** 64 // 1000 + 1}}, "cpu.realtimePeriod", "1..")
    bad({"cpu": {"idle": 2}}, "cpu.idle", "must be 0 or 1 (got 2)")
    bad({"cpu": {"idle": -1}}, "cpu.idle", "must be 0 or 1 (got -1)")
    bad({"cpu": {"burst": 5001, "quota": 5000}}, "cpu.burst", "must not exceed")


# --- pids ----------------------------------------------------------------------------------

def test_pids():
    assert to_cgroup({"pids": {"limit": 10}}) == {"pids_limit": 10}
    assert to_cgroup({"pids": {"limit": 0}}) == {}
    assert to_cgroup({"pids": {"limit": -5}}) == {"pids_limit": -1}
    assert to_cgroup({"pids": {"limit": values.PIDS_LIMIT_MAX}}) == {
        "pids_limit": values.PIDS_LIMIT_MAX}
    bad({"pids": {"limit": values.PIDS_LIMIT_MAX + 1}}, "pids.limit", "PID_MAX_LIMIT")
    # required in runtime-spec 1.0, optional since: absent is unset
    assert to_cgroup({"pids": {}}) == to_cgroup({"pids": {"limit": None}}) == {}


# --- blockIO -------------------------------------------------------------------------------

def test_block_io():
    got = to_cgroup({"blockIO": {
        "weight": 10, "leafWeight": 1000,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 500},
                         {"major": 8, "minor": 16, "leafWeight": 20},
                         {"major": 8, "minor": 32, "weight": 0, "leafWeight": 30}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1 << 20}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 2 ** 64 - 1}],
        "throttleWriteIOPSDevice": [{"major": 259, "minor": 1, "rate": 7}]}})
    assert got == {
        "blkio_weight": 10, "blkio_leaf_weight": 1000,
        "blkio_weight_device": (WeightDevice(major=8, minor=0, weight=500),
                                WeightDevice(major=8, minor=16, leaf_weight=20),
                                WeightDevice(major=8, minor=32, leaf_weight=30)),
        "blkio_throttle_read_bps_device": (ThrottleDevice(major=8, minor=0, rate=1 << 20),),
        "blkio_throttle_write_bps_device": (ThrottleDevice(major=8, minor=0, rate=0),),
        "blkio_throttle_read_iops_device": (ThrottleDevice(major=8, minor=0,
                                                           rate=2 ** 64 - 1),),
        "blkio_throttle_write_iops_device": (ThrottleDevice(major=259, minor=1, rate=7),)}
    assert to_cgroup({"blockIO": {"weight": 0, "weightDevice": [],
                                  "throttleReadBpsDevice": []}}) == {}


def test_block_io_errors():
    for key in ("weight", "leafWeight"):
        bad({"blockIO": {key: 9}}, "blockIO." + key, "10..1000")
        bad({"blockIO": {key: 1001}}, "blockIO." + key, "10..1000")
        to_cgroup({"blockIO": {key: 1000}})
    bad({"blockIO": {"weightDevice": [{"minor": 0, "weight": 10}]}},
        "blockIO.weightDevice[0].major", "is required")
    bad({"blockIO": {"weightDevice": [{"major": 8, "weight": 10}]}},
        "blockIO.weightDevice[0].minor", "is required")
    bad({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 9}]}},
        "blockIO.weightDevice[0].weight", "10..1000")
    bad({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 9}]}},
        "blockIO.weightDevice[0].leafWeight", "10..1000")
    bad({"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}},
        "blockIO.weightDevice[0]", "neither")
    bad({"blockIO": {"weightDevice": [{"major": 4096, "minor": 0, "weight": 10}]}},
        "blockIO.weightDevice[0].major", "0..4095")
    bad({"blockIO": {"weightDevice": {}}}, "blockIO.weightDevice", "must be a list")
    bad({"blockIO": {"weightDevice": [7]}}, "blockIO.weightDevice[0]", "must be an object")
    bad({"blockIO": {"weight": 65536}}, "blockIO.weight", "0..65535")
    bad({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 65536}]}},
        "blockIO.weightDevice[0].leafWeight", "0..65535")
    for key in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                "throttleWriteIOPSDevice"):
        bad({"blockIO": {key: [[]]}}, "blockIO.%s[0]" % key, "must be an object, not a list")
        bad({"blockIO": {key: 5}}, "blockIO." + key, "must be a list, not an integer")
    bad({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0}]}},
        "blockIO.throttleWriteIOPSDevice[0].rate", "is required")
    bad({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": -1, "rate": 1}]}},
        "blockIO.throttleReadBpsDevice[0].minor", "0..1048575")
    bad({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": -1}]}},
        "blockIO.throttleReadBpsDevice[0].rate", "0..")


# --- hugepageLimits ------------------------------------------------------------------------

def test_hugepage_limits():
    assert to_cgroup({"hugepageLimits": [{"pageSize": "2MB", "limit": 0},
                                         {"pageSize": "1GB", "limit": 1 << 30}]}) == {
        "hugetlb_limit": (HugepageLimit(page_size="2MB", limit=0),
                          HugepageLimit(page_size="1GB", limit=1 << 30))}
    assert to_cgroup({"hugepageLimits": []}) == {}
    bad({"hugepageLimits": [{"limit": 1}]}, "hugepageLimits[0].pageSize", "is required")
    bad({"hugepageLimits": ["2MB"]}, "hugepageLimits[0]", "must be an object, not a string")
    bad({"hugepageLimits": {}}, "hugepageLimits", "must be a list, not an object")
    bad({"hugepageLimits": [{"pageSize": "2MB"}]}, "hugepageLimits[0].limit", "is required")
    bad({"hugepageLimits": [{"pageSize": "2MiB", "limit": 1}]}, "hugepageLimits[0].pageSize",
        "page size")
    bad({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 ** 63}]},
        "hugepageLimits[0].limit", "0..")


# --- devices -------------------------------------------------------------------------------

RUNC_DEFAULTS = tuple(d.replace(path="", file_mode=0) for d in DEFAULT_ALLOWED_DEVICES)


def dev(kind, major, minor, access):
    return Device(type=ord(kind), major_number=major, minor_number=minor,
                  cgroup_permissions=access)


def test_devices_as_podman_sends_them():
    got = to_cgroup({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        {"allow": True, "type": "b", "major": 8, "access": "r"}]})
    assert got == {"allow_all_devices": False,
                   "allowed_devices": (dev("c", 10, 200, "rwm"), dev("b", 8, -1, "r"))
                   + RUNC_DEFAULTS}
    assert values.device_rules(Cgroup(**got))[:2] == [("c", 10, 200, "rwm"),
                                                      ("b", 8, -1, "r")]


def test_devices_are_replayed_as_the_kernel_applies_them():
    rules = [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mw"},
             {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},
             {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rw"},
             {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 7, "access": "w"},
             {"allow": False, "type": "c", "major": 9, "minor": 9, "access": "w"},
             {"allow": True, "type": "c", "major": 136, "access": ""}]
    assert to_cgroup({"devices": rules})["allowed_devices"] == (
        dev("c", 1, 3, "rwm"), dev("c", 1, 7, "rm"), dev("c", 136, -1, "rwm")) + RUNC_DEFAULTS


def test_a_type_a_rule_resets_everything_before_it():
    allow_all = {"allow": True, "access": "rwm"}
    got = to_cgroup({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 3},
                                 allow_all,
                                 {"allow": True, "type": "b", "major": 8, "minor": 0}]})
    assert got == {"allow_all_devices": True, "allowed_devices": ()}
    got = to_cgroup({"devices": [allow_all, {"allow": False, "type": "a", "access": "m"},
                                 {"allow": True, "type": "c", "major": 1, "minor": 3}]})
    assert got["allowed_devices"] == (dev("c", 1, 3, "rwm"),) + RUNC_DEFAULTS
    assert to_cgroup({"devices": []}) == {"allow_all_devices": False,
                                          "allowed_devices": RUNC_DEFAULTS}


def test_device_rule_errors():
    bad({"devices": [{"allow": True}, {"allow": False, "type": "c", "major": 1, "minor": 3}]},
        "devices[1]", "deny rule after every device was allowed")
    bad({"devices": [{"type": "c"}]}, "devices[0].allow", "is required")
    bad({"devices": [{"allow": "yes"}]}, "devices[0].allow", "true or false")
    bad({"devices": [{"allow": True, "type": "u"}]}, "devices[0].type", "a (all), b")
    bad({"devices": [{"allow": True, "type": "a", "major": 1}]}, "devices[0].type",
        "no major or minor")
    assert to_cgroup({"devices": [{"allow": True, "type": "c", "major": -1, "minor": -1,
                                   "access": "m"}]})["allowed_devices"][0] == dev(
        "c", -1, -1, "m")
    bad({"devices": [{"allow": True, "type": "c", "major": 4096}]}, "devices[0].major",
        "-1 (any) or 0..4095")
    bad({"devices": [{"allow": True, "type": "c", "minor": -2}]}, "devices[0].minor",
        "-1 (any) or 0..1048575")
    bad({"devices": [{"allow": True, "type": "c", "access": "rwx"}]}, "devices[0].access",
        "r, w and m")
    bad({"devices": {}}, "devices", "must be a list")
    bad({"devices": [None]}, "devices[0]", "must be an object, not null")


def test_an_update_leaves_devices_alone_but_still_checks_them():
    assert to_cgroup({"devices": [{"allow": True}, {"allow": False, "type": "c"}]},
                     update=True) == {}
    bad({"devices": [{"allow": 1}]}, "devices[0].allow", "true or false", update=True)


# --- network, rdma, unified ----------------------------------------------------------------

def test_network():
    assert to_cgroup({"network": {"classID": 0x100001, "priorities": [
        {"name": "eth0", "priority": 5}, {"name": "lo"}]}}) == {
        "net_cls_classid": 0x100001,
        "net_prio_ifpriomap": (IfPrioMap(interface="eth0", priority=5),
                               IfPrioMap(interface="lo", priority=0))}
    assert to_cgroup({"network": {"classID": 0, "priorities": []}}) == {}
    assert to_cgroup({"network": {"classID": 2 ** 32 - 1}})["net_cls_classid"] == 2 ** 32 - 1
    bad({"network": {"classID": 2 ** 32}}, "network.classID", "0..4294967295")
    bad({"network": {"priorities": [{"priority": 1}]}}, "network.priorities[0].name",
        "is required")
    assert to_cgroup({"network": {"priorities": [{"name": "x" * 15}]}}) == {
        "net_prio_ifpriomap": (IfPrioMap(interface="x" * 15),)}
    bad({"network": {"priorities": [1]}}, "network.priorities[0]", "must be an object")
    bad({"network": {"priorities": {}}}, "network.priorities", "must be a list")
    for name in ("x" * 16, "a/b", "a b", ""):
        bad({"network": {"priorities": [{"name": name}]}}, "network.priorities[0].name",
            "interface name")
    bad({"network": {"priorities": [{"name": "a:b"}]}}, "network.priorities[0].name",
        "interface name")
    bad({"network": {"priorities": [{"name": "lo", "priority": 2 ** 32}]}},
        "network.priorities[0].priority", "0..4294967295")


def test_rdma_is_refused_unless_empty():
    assert to_cgroup({"rdma": {}}) == {}
    bad({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "rdma", "not supported")


def test_unified():
    assert to_cgroup({"unified": {"memory.high": "1G", "io.max": "8:0 rbps=1"}}) == {
        "unified": (("memory.high", "1G"), ("io.max", "8:0 rbps=1"))}
    assert to_cgroup({"unified": {}}) == {}
    bad({"unified": {"memory.high": 5}}, "unified.memory.high", "must be a string")
    bad({"unified": {"cgroup.procs": "1"}}, "unified.cgroup.procs", "runtime's to write")
    bad({"unified": {"memory": "1"}}, "unified", "not a cgroup v2 file name")


def test_every_cgroup_field_an_oci_field_can_set_has_an_oci_name():
    own = {"name", "parent", "freezer", "slice", "driver", "scope_prefix"}
    assert set(OCI_NAMES) == set(Cgroup.field_names()) - own


# --- any JSON ------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-2 ** 65, 2 ** 65) | st.floats() \
    | st.text(max_size=6)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)
NUMBERS = st.sampled_from([-2 ** 63 - 1, -2 ** 63, -2, -1, 0, 1, 2, 9, 10, 100, 101, 999, 1000,
                           1001, 262144, 262145, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64])
KEYS = {"memory": ["limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                   "disableOOMKiller", "useHierarchy"],
        "cpu": ["shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus",
                "mems", "idle", "burst"],
        "pids": ["limit"],
        "blockIO": ["weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                    "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                    "throttleWriteIOPSDevice"],
        "network": ["classID", "priorities"]}
ITEM_KEYS = ["major", "minor", "weight", "leafWeight", "rate", "pageSize", "limit", "name",
             "priority", "allow", "type", "access"]
item = st.dictionaries(st.sampled_from(ITEM_KEYS), NUMBERS | json_scalars
                       | st.sampled_from(["c", "b", "a", "rw", "2MB", "lo"]), max_size=5)
field_value = NUMBERS | json_values | st.lists(item, max_size=3)
sections = st.fixed_dictionaries({}, optional={
    section: st.dictionaries(st.sampled_from(keys), field_value, max_size=4) | json_values
    for section, keys in KEYS.items()})
resources = sections | st.fixed_dictionaries({}, optional={
    "devices": st.lists(item, max_size=4) | json_values,
    "hugepageLimits": st.lists(item, max_size=3) | json_values,
    "unified": st.dictionaries(st.text(max_size=8), st.text(max_size=4) | json_scalars,
                               max_size=3) | json_values,
    "rdma": json_values}) | json_values


@given(resources, st.booleans())
def test_any_json_gives_valid_fields_or_one_config_error(res, update):
    try:
        out = to_cgroup(res, update=update)
    except ConfigError as e:
        assert e.field == P or e.field.startswith(P + "."), e.field
        assert "\n" not in str(e)
        return
    cg = Cgroup(**out)
    values.validate(cg)
    # what it returns survives container.json's round trip
    assert Cgroup.from_json(cg.to_json()) == cg
