"""Manager.set, the update path (runc update), for the cgroupfs drivers: against a temporary
tree played by FakeKernelFs for both, and against the host's real v1 hierarchies (the order
of memory and memory+swap that the kernel insists on). The systemd driver's set is in
test_cgroups_systemd_fake.py and, against the real systemd, test_cgroups_systemd.py."""
import os

import pytest

from cgroups_support import Child, cgroup_config, idle, unique_name
from minins import cgroups
from minins.cgroups.discovery import UNIFIED, discover
from minins.errors import ConfigError
from test_cgroups_tree import v1_tree, v2_tree


def read(path):
    with open(path) as f:
        return f.read()


def test_v2_set_writes_only_what_changes(tmp_path):
    fs, hier = v2_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c1", memory=64 << 20, cpu_quota=50000,
                                            cpu_period=100000, pids_limit=20), hier, fs)
    mgr.apply(4242)
    p = mgr.paths[UNIFIED]
    fs.log.clear()
    mgr.set(cgroup_config(memory=128 << 20, pids_limit=-1))
    assert fs.log == [("write", p + "/memory.max", str(128 << 20)),
                      ("write", p + "/pids.max", "max")]  # no swap derived on update
    fs.log.clear()
    mgr.set(cgroup_config(cpu_period=50000))  # cpu.max takes both: the quota stays
    assert fs.log == [("write", p + "/cpu.max", "50000 50000")]
    fs.log.clear()
    mgr.set(cgroup_config(memory=128 << 20, memory_swap=192 << 20, cpu_shares=2048))
    assert read(p + "/memory.swap.max") == "%d\n" % (64 << 20)
    assert read(p + "/cpu.weight") == "%d\n" % cgroups.values.shares_to_weight(2048)
    with pytest.raises(ConfigError) as e:
        mgr.set(cgroup_config(blkio_weight=5), field="update")
    assert str(e.value).startswith("update.blkio_weight: must be 10..1000")


def test_v1_set_writes_only_what_changes_and_never_devices(tmp_path):
    fs, hier = v1_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c1", memory=64 << 20, pids_limit=20), hier,
                              fs)
    mgr.apply(4242)
    p = mgr.paths
    fs.log.clear()
    mgr.set(cgroup_config(pids_limit=30, cpu_quota=20000, cpuset_cpus="0"))
    assert sorted(fs.log) == sorted([("write", p["pids"] + "/pids.max", "30"),
                                     ("write", p["cpu"] + "/cpu.cfs_quota_us", "20000"),
                                     ("write", p["cpuset"] + "/cpuset.cpus", "0")])
    loaded = cgroups.load_manager_from_state(mgr.to_state(), fs=fs)
    fs.log.clear()
    loaded.set(cgroup_config(memory=32 << 20))
    assert fs.log == [("write", p["memory"] + "/memory.limit_in_bytes", str(32 << 20))]


HIER = discover()


@pytest.mark.skipif(os.geteuid() != 0 or "memory" not in HIER.v1,
                    reason="needs root and the cgroup v1 memory hierarchy")
def test_v1_memory_above_the_old_memory_plus_swap_goes_in_the_right_order():
    mgr = cgroups.new_manager(cgroup_config(name=unique_name("set"), memory=32 << 20),
                              HIER, driver="v1")
    kid = Child(idle)
    try:
        mgr.apply(kid.pid)
        p = mgr.paths["memory"]
        if not os.path.exists(p + "/memory.memsw.limit_in_bytes"):
            pytest.skip("no swap accounting in this kernel (memory.memsw.*)")
        assert read(p + "/memory.memsw.limit_in_bytes") == "%d\n" % (64 << 20)
        # 128 MiB of memory is above the old 64 MiB of memory+swap: the kernel refuses
        # memory first (EINVAL); set writes memory+swap first then
        mgr.set(cgroup_config(memory=128 << 20, memory_swap=256 << 20))
        assert read(p + "/memory.limit_in_bytes") == "%d\n" % (128 << 20)
        assert read(p + "/memory.memsw.limit_in_bytes") == "%d\n" % (256 << 20)
        mgr.set(cgroup_config(memory=16 << 20, memory_swap=32 << 20))  # and down again
        assert read(p + "/memory.limit_in_bytes") == "%d\n" % (16 << 20)
    finally:
        kid.close()
        mgr.destroy()


def test_v2_set_writes_io_max_lines_and_names_a_missing_file(tmp_path):
    from minins.config import ThrottleDevice
    from minins.errors import ContainerError

    fs, hier = v2_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c1", pids_limit=5), hier, fs)
    mgr.apply(4242)
    p = mgr.paths[UNIFIED]
    with open(p + "/io.max", "w"):
        pass  # the fake kernel has no io.max of its own
    fs.log.clear()
    mgr.set(cgroup_config(blkio_throttle_read_bps_device=(
        ThrottleDevice(major=8, minor=0, rate=7), ThrottleDevice(major=8, minor=16, rate=0))))
    assert fs.log == [("write", p + "/io.max", "8:0 rbps=7"),
                      ("write", p + "/io.max", "8:16 rbps=max")]  # one write(2) a line
    with pytest.raises(ContainerError) as e:
        mgr.set(cgroup_config(cpu_idle=1), field="update")
    assert str(e.value).startswith("update.cpu_idle: %s has no cpu.idle" % p)
    with pytest.raises(ConfigError) as e:
        mgr.set(cgroup_config(memory_swappiness=1), field="update")
    assert e.value.field == "update.memory_swappiness"


def test_v1_set_refuses_unified_and_a_subsystem_the_container_has_not(tmp_path):
    from minins.config import HugepageLimit

    fs, hier = v1_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c1", pids_limit=5), hier, fs)
    mgr.apply(4242)
    fs.log.clear()
    with pytest.raises(ConfigError) as e:
        mgr.set(cgroup_config(unified={"memory.high": "1"}), field="update")
    assert e.value.field == "update.unified"
    from minins.errors import ContainerError

    with pytest.raises(ContainerError) as e:
        mgr.set(cgroup_config(hugetlb_limit=(HugepageLimit(page_size="2MB", limit=0),)))
    assert "needs the hugetlb controller" in str(e.value)
    assert fs.log == []
