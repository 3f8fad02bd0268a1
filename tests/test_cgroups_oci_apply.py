"""OCI linux.resources on the real kernel: to_cgroup's fields applied by the cgroupfs drivers
to a new container's cgroups, then changed on the running container through
cgroups.update (the update path of runc update), each value read back from the kernel.

The v1 tests run on this hybrid host; the v2 tests run where this process's own v2 cgroup
delegates the controllers (the cgroup-v2 guest: tools/vm-cgroup-v2-tests) and skip here,
naming what they need. Every cgroup is made under this process's own cgroups and removed on
every path; every process is a child of the test, killed and reaped."""
import functools
import os

import pytest

from cgroups_support import Child, idle, unique_name
from minins import cgroups
from minins.cgroups.discovery import UNIFIED, discover
from minins.config import Cgroup
from minins.errors import ConfigError, ContainerError
from minins.oci.resources import to_cgroup

HIER = discover()
pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="cgroup tests need root")]


def read(path):
    with open(path) as f:
        return f.read()


def v1_needs(*subsystems):
    missing = [s for s in subsystems if s not in HIER.v1]
    return pytest.mark.skipif(bool(missing), reason="no cgroup v1 hierarchy has %s on this "
                              "host" % " ".join(missing))


def v2_needs(*controllers):
    """Skip unless this process's v2 cgroup delegates ``controllers`` when the test runs (not
    at collection: systemd as PID 1 takes cpu and io out of the root's subtree_control again
    when no unit of its own asks for them, e.g. after the systemd driver's tests)."""
    def wrap(fn):
        @functools.wraps(fn)
        def test(*args, **kwargs):
            own = HIER.own_dir(UNIFIED) if HIER.unified else None
            have = set(read(own + "/cgroup.subtree_control").split()) if own else set()
            missing = [c for c in controllers if c not in have]
            if missing:
                pytest.skip("%s not delegated to children of this process's v2 cgroup (a "
                            "hybrid host binds them to v1): run tools/vm-cgroup-v2-tests"
                            % " ".join(missing))
            return fn(*args, **kwargs)
        return test
    return wrap


def block_device():
    """``(major, minor)`` of a disk of this host (throttles need an existing device)."""
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram", "zram")):
            major, minor = read("/sys/block/%s/dev" % name).strip().split(":")
            return int(major), int(minor)
    return None


def bfq_device():
    for name in sorted(os.listdir("/sys/block")):
        try:
            if "[bfq]" in read("/sys/block/%s/queue/scheduler" % name):
                major, minor = read("/sys/block/%s/dev" % name).strip().split(":")
                return int(major), int(minor)
        except OSError:
            continue
    return None


@pytest.fixture
def containers():
    made, kids = [], []

    class Factory(object):
        def start(self, resources, driver):
            """A child in new cgroups with the limits of OCI ``resources``."""
            fields = to_cgroup(resources)
            fields.setdefault("allow_all_devices", True)
            cg = Cgroup(name=unique_name("oci"), **fields)
            mgr = cgroups.new_manager(cg, HIER, driver=driver)
            made.append(mgr)
            kid = Child(idle)
            kids.append(kid)
            mgr.apply(kid.pid)
            kid.go()
            assert kid.line() == "ready"
            return mgr

    yield Factory()
    for kid in kids:
        kid.close()
    for mgr in made:
        mgr.destroy()


# --- v1 ------------------------------------------------------------------------------------

@v1_needs("memory")
def test_v1_memory_settings_and_their_update(containers):
    mgr = containers.start({"memory": {"limit": 64 << 20, "reservation": 32 << 20,
                                       "kernelTCP": 16 << 20, "swappiness": 7,
                                       "disableOOMKiller": True, "kernel": 1 << 20,
                                       "useHierarchy": True}}, "v1")
    p = mgr.paths["memory"]
    assert read(p + "/memory.limit_in_bytes") == "%d\n" % (64 << 20)
    assert read(p + "/memory.soft_limit_in_bytes") == "%d\n" % (32 << 20)
    assert read(p + "/memory.kmem.tcp.limit_in_bytes") == "%d\n" % (16 << 20)
    assert read(p + "/memory.swappiness") == "7\n"
    assert "oom_kill_disable 1\n" in read(p + "/memory.oom_control")
    swap = os.path.exists(p + "/memory.memsw.limit_in_bytes")
    unlimited = read(p + "/memory.memsw.limit_in_bytes") if swap else None
    if swap:  # no swap in the config: unlimited, as runc leaves it (no 2x rule)
        assert int(unlimited) > 1 << 60
    state = mgr.to_state()
    cgroups.update(state, to_cgroup({"memory": {"limit": 128 << 20, "swappiness": 0}},
                                    update=True))
    assert read(p + "/memory.limit_in_bytes") == "%d\n" % (128 << 20)
    assert read(p + "/memory.swappiness") == "0\n"
    if not swap:
        return
    cgroups.update(state, to_cgroup({"memory": {"limit": 128 << 20, "swap": 256 << 20}},
                                    update=True))
    assert read(p + "/memory.memsw.limit_in_bytes") == "%d\n" % (256 << 20)
    # lifting memory lifts swap with it; memory first would be refused (above memsw)
    cgroups.update(state, to_cgroup({"memory": {"limit": -1}}, update=True))
    assert read(p + "/memory.memsw.limit_in_bytes") == unlimited
    assert read(p + "/memory.limit_in_bytes") == unlimited


@v1_needs("cpu")
def test_v1_cpu_settings_and_their_update(containers):
    if not os.path.exists(os.path.join(HIER.own_dir("cpu"), "cpu.rt_runtime_us")):
        pytest.skip("no cpu.rt_runtime_us: this kernel has no CONFIG_RT_GROUP_SCHED")
    mgr = containers.start({"cpu": {"shares": 512, "quota": 20000, "period": 50000,
                                    "burst": 10000, "realtimePeriod": 500000,
                                    "realtimeRuntime": 1000}}, "v1")
    p = mgr.paths["cpu"]
    assert read(p + "/cpu.shares") == "512\n"
    assert read(p + "/cpu.cfs_quota_us") == "20000\n"
    assert read(p + "/cpu.cfs_period_us") == "50000\n"
    assert read(p + "/cpu.cfs_burst_us") == "10000\n"
    assert read(p + "/cpu.rt_period_us") == "500000\n"
    assert read(p + "/cpu.rt_runtime_us") == "1000\n"
    cgroups.update(mgr, to_cgroup({"cpu": {"quota": -1, "realtimeRuntime": 2000, "idle": 1}},
                                  update=True))
    assert read(p + "/cpu.cfs_quota_us") == "-1\n"
    assert read(p + "/cpu.rt_runtime_us") == "2000\n"
    assert read(p + "/cpu.idle") == "1\n"
    # the kernel's own range: more RT time than the period is refused by minins first
    with pytest.raises(ConfigError) as e:
        to_cgroup({"cpu": {"realtimeRuntime": 600000, "realtimePeriod": 500000}})
    assert e.value.field == "linux.resources.cpu.realtimeRuntime"


@v1_needs("pids")
def test_v1_pids_limit_and_its_update(containers):
    mgr = containers.start({"pids": {"limit": 5}}, "v1")
    p = mgr.paths["pids"]
    assert read(p + "/pids.max") == "5\n"
    cgroups.update(mgr.to_state(), to_cgroup({"pids": {"limit": -1}}, update=True))
    assert read(p + "/pids.max") == "max\n"


@v1_needs("blkio")
def test_v1_block_io_throttles_and_weight(containers):
    dev = block_device()
    if dev is None:
        pytest.skip("no disk in /sys/block to throttle")
    major, minor = dev
    mgr = containers.start({"blockIO": {
        "weight": 300,
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}],
        "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 2 << 20}],
        "throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 200}]}}, "v1")
    p = mgr.paths["blkio"]
    assert read(p + "/blkio.throttle.read_bps_device") == "%d:%d %d\n" % (major, minor, 1 << 20)
    assert read(p + "/blkio.throttle.write_bps_device") == "%d:%d %d\n" % (major, minor,
                                                                          2 << 20)
    assert read(p + "/blkio.throttle.read_iops_device") == "%d:%d 100\n" % (major, minor)
    assert read(p + "/blkio.throttle.write_iops_device") == "%d:%d 200\n" % (major, minor)
    weight = "blkio.weight" if os.path.exists(p + "/blkio.weight") else "blkio.bfq.weight"
    assert read(p + "/" + weight).split()[-1] == "300"
    # rate 0 removes the rule (blkio-controller.rst)
    cgroups.update(mgr, to_cgroup({"blockIO": {"throttleReadBpsDevice": [
        {"major": major, "minor": minor, "rate": 0}]}}, update=True))
    assert read(p + "/blkio.throttle.read_bps_device") == ""


@v1_needs("blkio")
def test_v1_device_weights_where_a_disk_uses_bfq(containers):
    dev = bfq_device()
    if dev is None:
        pytest.skip("no disk uses the bfq I/O scheduler here (per-device weights are BFQ's "
                    "or CFQ's); minins does not change a host's scheduler")
    mgr = containers.start({"blockIO": {"weightDevice": [
        {"major": dev[0], "minor": dev[1], "weight": 500}]}}, "v1")
    p = mgr.paths["blkio"]
    name = ("blkio.weight_device" if os.path.exists(p + "/blkio.weight_device")
            else "blkio.bfq.weight_device")
    assert "%d:%d 500" % dev in read(p + "/" + name)


@v1_needs("blkio")
def test_v1_a_missing_interface_file_is_named_with_its_field(containers):
    probe = os.path.join(HIER.own_dir("blkio"), "blkio.leaf_weight")
    if os.path.exists(probe):
        pytest.skip("this kernel has CFQ's blkio.leaf_weight")
    with pytest.raises(ContainerError) as e:
        containers.start({"blockIO": {"leafWeight": 100}}, "v1")
    assert "cgroups.blkio_leaf_weight" in str(e.value)
    assert "blkio.leaf_weight" in str(e.value)


@v1_needs("devices")
def test_v1_oci_device_rules_reach_devices_list(containers):
    mgr = containers.start({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"},
        {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "r"},
        {"allow": True, "type": "c", "major": 1, "minor": 12, "access": "r"},
        {"allow": False, "type": "c", "major": 1, "minor": 12, "access": "r"}]}, "v1")
    listed = read(mgr.paths["devices"] + "/devices.list").splitlines()
    assert "c 10:200 rw" in listed
    assert "c 1:11 w" in listed  # the deny took r away
    assert not [line for line in listed if line.startswith("c 1:12 ")]  # nothing left
    assert "c 1:3 rwm" in listed  # runc's defaults follow
    assert "a *:* rwm" not in listed


@v1_needs("memory")
def test_v1_refuses_unified_before_making_anything():
    name = unique_name("oci")
    cg = Cgroup(name=name, allow_all_devices=True,
                **to_cgroup({"unified": {"memory.high": "1G"}}))
    mgr = cgroups.new_manager(cg, HIER, driver="v1")
    with pytest.raises(ConfigError) as e:
        mgr.apply(os.getpid())
    assert str(e.value) == "cgroups.unified: needs cgroup v2 (this host's cgroups are v1)"
    assert not any(os.path.exists(p) for p in mgr.paths.values())


@v1_needs("hugetlb")
def test_v1_hugetlb(containers):
    mgr = containers.start({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}, "v1")
    assert read(mgr.paths["hugetlb"] + "/hugetlb.2MB.limit_in_bytes") == "%d\n" % (4 << 20)


@v1_needs("net_cls", "net_prio")
def test_v1_network(containers):
    mgr = containers.start({"network": {"classID": 0x100001,
                                        "priorities": [{"name": "lo", "priority": 3}]}}, "v1")
    assert read(mgr.paths["net_cls"] + "/net_cls.classid") == "%d\n" % 0x100001
    assert "lo 3" in read(mgr.paths["net_prio"] + "/net_prio.ifpriomap")


@v1_needs("memory")
def test_v1_on_demand_hierarchies_are_made_only_when_used():
    cg = Cgroup(name=unique_name("oci"), allow_all_devices=True, memory=1 << 30)
    mgr = cgroups.new_manager(cg, HIER, driver="v1")
    assert not {"hugetlb", "net_cls", "net_prio"} & set(mgr.paths)


def test_update_of_a_container_without_cgroups_is_a_state_error():
    from minins.errors import StateError

    with pytest.raises(StateError):
        cgroups.update({"cgroup_paths": {}}, {"pids_limit": 5})


# --- v2 (the guest) --------------------------------------------------------------------------

@v2_needs("memory", "cpu", "pids")
def test_v2_memory_cpu_pids_and_update(containers):
    mgr = containers.start({"memory": {"limit": 64 << 20, "swap": 96 << 20},
                            "cpu": {"shares": 1024, "quota": 20000, "period": 50000,
                                    "burst": 5000, "idle": 0},
                            "pids": {"limit": 9},
                            "unified": {"memory.high": str(48 << 20)}}, "v2")
    p = mgr.paths[UNIFIED]
    assert read(p + "/memory.max") == "%d\n" % (64 << 20)
    assert read(p + "/memory.high") == "%d\n" % (48 << 20)
    if os.path.exists(p + "/memory.swap.max"):
        assert read(p + "/memory.swap.max") == "%d\n" % (32 << 20)
    assert read(p + "/cpu.weight") == "100\n"
    assert read(p + "/cpu.max") == "20000 50000\n"
    assert read(p + "/cpu.max.burst") == "5000\n"
    assert read(p + "/pids.max") == "9\n"
    assert read(p + "/cpu.idle") == "0\n"
    cgroups.update(mgr.to_state(), to_cgroup({"memory": {"limit": -1}, "pids": {"limit": -1}},
                                             update=True))
    assert read(p + "/memory.max") == "max\n"
    if os.path.exists(p + "/memory.swap.max"):
        assert read(p + "/memory.swap.max") == "max\n"
    assert read(p + "/pids.max") == "max\n"


@v2_needs("memory")
def test_v2_refuses_v1_only_settings_before_making_anything():
    cg = Cgroup(name=unique_name("oci"), allow_all_devices=True,
                **to_cgroup({"memory": {"swappiness": 10}}))
    mgr = cgroups.new_manager(cg, HIER, driver="v2")
    with pytest.raises(ConfigError) as e:
        mgr.apply(os.getpid())
    assert e.value.field == "cgroups.memory_swappiness"
    assert not os.path.exists(mgr.paths[UNIFIED])


@v2_needs("io")
def test_v2_io_max_of_a_real_disk(containers):
    dev = block_device()
    if dev is None:
        pytest.skip("no disk in /sys/block to throttle")
    mgr = containers.start({"blockIO": {
        "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 1 << 20}],
        "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 50}]}}, "v2")
    line = read(mgr.paths[UNIFIED] + "/io.max")
    assert line.startswith("%d:%d rbps=%d wbps=max riops=max wiops=50" % (dev[0], dev[1],
                                                                          1 << 20)), line


@v2_needs("hugetlb")
def test_v2_hugetlb(containers):
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2 MB huge pages on this machine")
    mgr = containers.start({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}, "v2")
    assert read(mgr.paths[UNIFIED] + "/hugetlb.2MB.max") == "%d\n" % (4 << 20)
    cgroups.update(mgr, to_cgroup({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]},
                                  update=True))
    assert read(mgr.paths[UNIFIED] + "/hugetlb.2MB.max") == "0\n"


@v2_needs("cpu")
def test_v2_cpu_idle_and_a_core_unified_key(containers):
    mgr = containers.start({"cpu": {"idle": 1}, "unified": {"cgroup.max.depth": "2"}}, "v2")
    p = mgr.paths[UNIFIED]
    assert read(p + "/cpu.idle") == "1\n"
    assert read(p + "/cgroup.max.depth") == "2\n"
