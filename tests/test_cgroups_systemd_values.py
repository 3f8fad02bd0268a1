"""The systemd driver's pure parts: unit and slice names, runc's ``slice:prefix:name``,
the properties systemd is told (per cgroup version and systemd version) and what is left
for cgroupfs; choosing the driver from the config and the state. The driver against a real
systemd is tests/test_cgroups_systemd.py (in the guest)."""
import os
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroups_support import cgroup_config, device
from minins import cgroups
from minins.cgroups import values
from minins.errors import ConfigError, StateError

WORD = st.text("abcdefghijklmnopqrstuvwxyzABCZ0189_.", min_size=1, max_size=8).filter(
    lambda w: w != "." and not w.endswith(".slice"))
UNIT_PART = st.text("abcxyzABC0189_.-", min_size=1, max_size=12).filter(  # ':' splits
    lambda w: not w.endswith(".slice"))


@given(st.lists(WORD, min_size=1, max_size=5))
def test_a_dash_in_a_slice_name_is_a_level_of_the_tree(words):
    name = "-".join(words) + ".slice"
    path = values.expand_slice(name)
    levels = path.split("/")
    assert len(levels) == len(words) and levels[-1] == name
    assert levels == ["-".join(words[:n + 1]) + ".slice" for n in range(len(words))]


@pytest.mark.parametrize("bad", ["system", "a.service", "-a.slice", "a-.slice",
                                 "a--b.slice", "a/b.slice", "a b.slice", ".slice"])
def test_bad_slice_names_are_config_errors(bad):
    with pytest.raises(ConfigError) as e:
        values.parse(cgroup_config(driver="systemd", slice=bad))
    assert str(e.value).startswith("cgroups.slice: %r is not a slice name" % bad)


def test_the_root_slice():
    assert values.expand_slice("-.slice") == ""
    assert values.expand_slice("system.slice") == "system.slice"
    assert values.expand_slice("machine-minins.slice") == "machine.slice/machine-minins.slice"


@given(st.one_of(st.just(""), st.lists(WORD, min_size=1, max_size=3).map(
    lambda ws: "-".join(ws) + ".slice")), st.one_of(st.just(""), UNIT_PART), UNIT_PART)
def test_runc_cgroups_path_form_parses(slice_, prefix, name):
    got = values.parse_cgroups_path("%s:%s:%s" % (slice_, prefix, name))
    assert got == (slice_ or "system.slice", prefix, name)
    unit = values.scope_name(prefix, name)
    assert unit == ("%s-%s.scope" % (prefix, name) if prefix else name + ".scope")


@pytest.mark.parametrize("bad, why", [
    ("/abs/path", "expected the form slice:prefix:name"),
    ("a:b", "expected the form slice:prefix:name"),
    ("a:b:c:d", "expected the form slice:prefix:name"),
    ("system.slice:minins:", "has no name"),
    ("bad slice:minins:c1", "is not a slice name"),
    ("system.slice:minins:c+1", "cannot be part of a systemd unit name"),
    ("system.slice:minins:x.slice", "a slice as the container's own unit"),
])
def test_runc_cgroups_path_errors_name_the_field(bad, why):
    with pytest.raises(ConfigError) as e:
        values.parse_cgroups_path(bad, "linux.cgroupsPath")
    assert str(e.value).startswith("linux.cgroupsPath: ") and why in str(e.value)


def test_unit_names_follow_runc():
    assert values.scope_name("minins", "c1") == "minins-c1.scope"
    assert values.scope_name("", "c1") == "c1.scope"
    with pytest.raises(ConfigError):
        values.scope_name("minins", "a/b")
    with pytest.raises(ConfigError):
        values.scope_name("minins", "x" * 250)


@given(st.sets(st.integers(0, 300), min_size=1, max_size=40))
def test_cpu_bitmasks_hold_exactly_the_listed_cpus(cpus):
    mask = values.cpu_bitmask(",".join(map(str, sorted(cpus))))
    got = {n for n in range(len(mask) * 8) if mask[n // 8] >> (n % 8) & 1}
    assert got == cpus and mask[-1] != 0
    assert values.cpu_bitmask("0-3,8") == b"\x0f\x01"


@given(st.integers(1000, 10 ** 7), st.integers(1000, 1000000))
def test_the_quota_per_second_is_rounded_up_to_a_percent(quota, period):
    per_sec = values.cpu_quota_per_sec(quota, period)
    exact = quota * 1000000 / period
    assert per_sec % 10000 == 0 and exact <= per_sec < exact + 10000
    assert values.cpu_quota_per_sec(-1, period) == values.USEC_INFINITY
    assert values.cpu_quota_per_sec(50000, 0) == 500000  # the default period, 100 ms


def test_systemd_versions():
    assert values.systemd_version("252.22-1~deb12u1") == 252
    assert values.systemd_version("v255") == 255
    assert values.systemd_version("255-stable") == 255
    assert values.systemd_version("unknown") == 0


def test_proc_devices_and_device_allow():
    majors = values.parse_proc_devices(
        "Character devices:\n  1 mem\n  4 tty\n136 pts\n\nBlock devices:\n  8 sd\n259 blkext\n")
    assert majors == {("c", 1): "mem", ("c", 4): "tty", ("c", 136): "pts", ("b", 8): "sd",
                      ("b", 259): "blkext"}
    rules = [("c", 1, 3, "rwm"), ("c", 136, -1, "rw"), ("b", 8, -1, "r"), ("c", 250, -1, "r"),
             ("c", -1, -1, "m"), ("a", -1, -1, "rwm"), ("b", 7, 0, "rwm")]
    assert values.systemd_device_allow(rules, majors) == [
        ("/dev/char/1:3", "rwm"), ("char-pts", "rw"), ("block-sd", "r"), ("char-*", "m"),
        ("char-*", "rwm"), ("block-*", "rwm"), ("/dev/block/7:0", "rwm")]


FULL = dict(memory=64 << 20, memory_reservation=16 << 20, memory_swap=96 << 20,
            cpu_shares=512, cpu_quota=25000, cpu_period=50000, pids_limit=50,
            blkio_weight=500, cpuset_cpus="0-1", cpuset_mems="0",
            allowed_devices=[device("c", 1, 3)])


def props_of(props):
    return {name: (sig, value) for name, sig, value in props}


def test_v2_properties_and_what_is_left_for_cgroupfs():
    s = values.parse(cgroup_config(**FULL))
    props, rest = values.systemd_properties(s, unified=True, version=252)
    assert props_of(props) == {
        "MemoryMax": ("t", 64 << 20), "MemoryLow": ("t", 16 << 20),
        "MemorySwapMax": ("t", 32 << 20), "CPUWeight": ("t", 59), "IOWeight": ("t", 4950),
        "AllowedCPUs": ("ay", b"\x03"), "AllowedMemoryNodes": ("ay", b"\x01"),
        "TasksMax": ("t", 50), "CPUQuotaPeriodUSec": ("t", 50000),
        "CPUQuotaPerSecUSec": ("t", 500000), "DevicePolicy": ("s", "strict"),
        "DeviceAllow": ("a(ss)", [("/dev/char/1:3", "rwm")])}
    # cgroupfs: the exact CPU quota and the device program; nothing systemd set exactly
    plan = values.plan_v2(rest)
    assert [w.files[0] for w in plan] == ["cpu.max"]
    assert plan[0].value == "25000 50000" and rest.rules == [("c", 1, 3, "rwm")]


def test_v1_properties_use_the_legacy_names():
    s = values.parse(cgroup_config(**FULL))
    props, rest = values.systemd_properties(s, unified=False, version=252)
    got = props_of(props)
    assert got["MemoryLimit"] == ("t", 64 << 20) and got["CPUShares"] == ("t", 512)
    assert got["BlockIOWeight"] == ("t", 500) and got["TasksMax"] == ("t", 50)
    assert not {"MemoryMax", "CPUWeight", "IOWeight", "AllowedCPUs", "MemorySwapMax"} & set(got)
    files = [w.files[0] for w in values.plan_v1(rest)]
    assert files == ["cpuset.cpus", "cpuset.mems", "devices.deny", "devices.allow",
                     "memory.limit_in_bytes", "memory.soft_limit_in_bytes",
                     "memory.memsw.limit_in_bytes", "cpu.cfs_period_us", "cpu.cfs_quota_us"]
    assert [n for n, _s, _v in values.accounting_properties(False)][-1] == "BlockIOAccounting"


def test_older_systemd_gets_fewer_properties():
    s = values.parse(cgroup_config(**FULL))
    props, rest = values.systemd_properties(s, unified=True, version=241)
    got = props_of(props)
    assert "CPUQuotaPeriodUSec" not in got and "AllowedCPUs" not in got
    assert (rest.cpuset_cpus, rest.cpuset_mems) == ("0-1", "0")
    props, rest = values.systemd_properties(s, unified=True, version=231)
    assert "MemoryMax" not in props_of(props) and rest.memory == 64 << 20


def test_update_repeats_no_device_policy_and_derives_no_swap():
    s = values.parse(cgroup_config(memory=128 << 20, allow_all_devices=True))
    props, rest = values.systemd_properties(s, unified=True, update=True)
    assert props_of(props) == {"MemoryMax": ("t", 128 << 20)}
    first, _ = values.systemd_properties(s, unified=True)
    assert props_of(first)["DevicePolicy"] == ("s", "auto")
    assert props_of(first)["MemorySwapMax"] == ("t", 128 << 20)  # derived: twice memory
    assert [w.files[0] for w in values.plan_v2(s, update=True)] == ["memory.max"]
    assert [w.files[0] for w in values.plan_v1(s, update=True)] == ["memory.limit_in_bytes"]


def test_unlimited_is_infinity():
    s = values.parse(cgroup_config(memory=-1, pids_limit=-1, cpu_quota=-1))
    got = props_of(values.systemd_properties(s, unified=True)[0])
    assert got["MemoryMax"] == got["TasksMax"] == got["CPUQuotaPerSecUSec"] == (
        "t", values.USEC_INFINITY)


def test_driver_settings_are_validated():
    with pytest.raises(ConfigError) as e:
        values.parse(cgroup_config(driver="sytemd"))
    assert str(e.value) == "cgroups.driver: must be cgroupfs or systemd (or empty: cgroupfs), " \
                           "not 'sytemd'"
    with pytest.raises(ConfigError) as e:
        values.parse(cgroup_config(driver="systemd", parent="x"))
    assert str(e.value).startswith("cgroups.parent: is for the cgroupfs driver")
    with pytest.raises(ConfigError) as e:
        values.parse(cgroup_config(driver="systemd", name="a+b"))
    assert str(e.value).startswith("cgroups.name: 'a+b' cannot be part of a systemd unit name")
    values.parse(cgroup_config(driver="cgroupfs", slice="system.slice"))


def test_container_json_carries_the_driver():
    from minins import config

    cfg = config.Config.from_json({"cgroups": {"driver": "systemd", "slice": "machine.slice",
                                               "scope_prefix": "pod"}})
    assert (cfg.cgroups.driver, cfg.cgroups.slice, cfg.cgroups.scope_prefix) == (
        "systemd", "machine.slice", "pod")


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="this host runs systemd")
def test_asking_for_systemd_without_it_is_one_line():
    with pytest.raises(ConfigError) as e:
        cgroups.new_manager(cgroup_config(driver="systemd", name="c1"))
    msg = str(e.value)
    assert msg == ("cgroups.driver: systemd was asked for, but this host was not booted with "
                   "systemd (/run/systemd/system does not exist); use the cgroupfs driver")


def test_the_state_names_the_driver_and_load_manager_takes_it(tmp_path):
    from minins.cgroups.systemd import SystemdManager
    from minins.cgroups.v1 import V1Manager
    from minins.cgroups.v2 import V2Manager

    p = str(tmp_path / "c1")
    assert isinstance(cgroups.load_manager({"unified": p}, driver="cgroupfs-v2"), V2Manager)
    # recorded, not guessed: a v1 manager whose only path is the unified one
    assert isinstance(cgroups.load_manager({"unified": p}, driver="cgroupfs-v1"), V1Manager)
    mgr = cgroups.load_manager_from_state({"cgroup_paths": {"unified": p},
                                           "cgroup_driver": "systemd-v2",
                                           "cgroup_unit": "minins-c1.scope"})
    assert isinstance(mgr, SystemdManager) and mgr.unit == "minins-c1.scope"
    assert mgr.to_state() == {"cgroup_driver": "systemd-v2", "cgroup_unit": "minins-c1.scope",
                              "cgroup_paths": {"unified": p}}
    assert cgroups.load_manager_from_state({"cgroup_paths": {}}) is None
    with pytest.raises(StateError):
        cgroups.load_manager({"unified": p}, driver="systemd-v2")  # no unit
    with pytest.raises(StateError):
        cgroups.load_manager({"unified": p}, driver="lxc")
    fs = cgroups.new_manager(cgroup_config(name="c1"), root=_v2_root(tmp_path))
    assert fs.to_state()["cgroup_driver"] == "cgroupfs-v2" and fs.to_state()["cgroup_unit"] == ""


def _v2_root(tmp_path):
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    return str(root)


@pytest.mark.skipif(os.path.isdir("/run/systemd/system") or os.geteuid() != 0,
                    reason="needs root on a host without systemd")
def test_the_command_line_asks_for_the_driver():
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for driver, why in (("systemd", "cgroups.driver: systemd was asked for, but this host "
                                    "was not booted with systemd"),
                        ("sytemd", "cgroups.driver: must be cgroupfs or systemd")):
        p = subprocess.run([sys.executable, "-m", "minins", "run", "--cgroup-driver", driver,
                            "--", "true"], cwd=root, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode()
        assert p.returncode == 125 and err.count("\n") == 1 and why in err, err
    # refused before anything is made, and not blamed on a state file
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([sys.executable, "-m", "minins", "--root", tmp, "run", "--id", "sd1",
                            "--cgroup-driver", "systemd", "--", "true"], cwd=root,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode()
        assert p.returncode == 125 and err.startswith(
            "minins: error: preflight: cgroups.driver: systemd was asked for"), err
        assert os.listdir(tmp) == []
