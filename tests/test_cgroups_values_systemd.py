"""The systemd driver's pure values at their boundaries: unit-name lengths and characters
(systemd.unit(5)), the property thresholds per systemd version (systemd.resource-control(5),
the "Added in version" of each setting and NEWS), the quota per second rounded up to a whole
percent, the uint64 "infinity", /proc/devices (proc(5)) and DeviceAllow= specifiers."""
import struct
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroups_support import cgroup_config, device
from minins.cgroups import values
from minins.errors import ConfigError

# systemd.unit(5): a unit name is at most 255 characters (UNIT_NAME_MAX is 256 with the NUL)
# of ASCII letters, digits, ":", "-", "_", ".", and "\".
UNIT_CHARACTERS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   ":-_.\\")
UINT64_MAX = struct.unpack("=Q", b"\xff" * 8)[0]


def props_of(props):
    return {name: (sig, value) for name, sig, value in props}


# --- names ---------------------------------------------------------------------------------

def test_a_slice_name_of_255_characters_is_valid_and_256_is_not():
    name = "a" * (255 - len(".slice")) + ".slice"
    assert len(name) == 255 and values.expand_slice(name) == name
    with pytest.raises(ConfigError) as e:
        values.expand_slice("a" + name, "linux.cgroupsPath")
    assert str(e.value).startswith("linux.cgroupsPath: ")


def test_a_scope_name_of_255_characters_is_valid_and_256_is_not():
    name = "c" * (255 - len(".scope"))
    assert values.scope_name("", name) == name + ".scope"
    assert len(values.scope_name("p", name[len("p-"):])) == 255
    for prefix, longer in (("", name + "c"), ("p", name[1:])):
        with pytest.raises(ConfigError) as e:
            values.scope_name(prefix, longer, "linux.cgroupsPath")
        assert "is longer than 255 characters" in str(e.value)


def test_a_unit_name_may_use_every_allowed_character_at_once():
    # all of them together: a set equal to the allowed set is still a subset of it
    assert values.scope_name("", UNIT_CHARACTERS) == UNIT_CHARACTERS + ".scope"
    assert values.scope_name(UNIT_CHARACTERS, "c1") == UNIT_CHARACTERS + "-c1.scope"
    name = UNIT_CHARACTERS.replace("-", "").replace(".", "") + ".slice"
    assert values.expand_slice(name) == name


@given(st.text(UNIT_CHARACTERS, min_size=1, max_size=40),
       st.sampled_from(" /+@!é\t"))
def test_one_character_outside_the_set_spoils_a_name(name, bad):
    assert values.scope_name("", name) == name + ".scope"
    with pytest.raises(ConfigError):
        values.scope_name("", name + bad)
    with pytest.raises(ConfigError):
        values.scope_name(bad + name, "c1")


# --- /proc/devices and DeviceAllow= ----------------------------------------------------------

def test_proc_devices_skips_what_is_not_a_major_and_a_name_in_a_section():
    text = ("7 before-any-section\n"
            "Character devices:\n  1 mem\nabc notanumber\n 12\n  5   \n 10 misc\n"
            "\nBlock devices:\n  8 sd\nxx yy\n")
    assert values.parse_proc_devices(text) == {("c", 1): "mem", ("c", 10): "misc",
                                               ("b", 8): "sd"}
    assert values.parse_proc_devices("") == {}


@given(st.integers(0, values.MAX_MAJOR), st.integers(0, values.MAX_MINOR),
       st.sampled_from("cb"), st.sampled_from(["r", "rw", "rwm", "m"]))
def test_a_rule_with_a_major_and_a_minor_is_its_node(major, minor, kind, access):
    word = {"c": "char", "b": "block"}[kind]
    assert values.systemd_device_allow([(kind, major, minor, access)], {}) == [
        ("/dev/%s/%d:%d" % (word, major, minor), access)]


def test_major_zero_is_a_number_not_a_wildcard():
    assert values.systemd_device_allow([("c", 0, 5, "rwm"), ("b", 0, 0, "r")], {}) == [
        ("/dev/char/0:5", "rwm"), ("/dev/block/0:0", "r")]
    assert values.systemd_device_allow([("c", 0, -1, "rw")], {("c", 0): "zero"}) == [
        ("char-zero", "rw")]


def test_the_drivers_names_reach_device_allow():
    s = values.parse(cgroup_config(allowed_devices=[device("c", 136, -1, "rw"),
                                                    device("c", 1, 3)]))
    props, _ = values.systemd_properties(s, unified=True, majors={("c", 136): "pts"})
    assert props_of(props)["DeviceAllow"] == ("a(ss)", [("char-pts", "rw"),
                                                       ("/dev/char/1:3", "rwm")])
    props, _ = values.systemd_properties(s, unified=True)  # no names: the node only
    assert props_of(props)["DeviceAllow"] == ("a(ss)", [("/dev/char/1:3", "rwm")])


# --- CPU quota per second, bitmasks, infinity ------------------------------------------------

def _rounded_up_per_sec(quota, period):
    exact = Fraction(quota * 1000000, period)
    steps = -(-exact // 10000)  # ceil
    return int(steps * 10000)


@given(st.integers(0, values.QUOTA_MAX), st.integers(values.PERIOD_MIN, values.PERIOD_MAX))
def test_the_quota_per_second_is_exactly_the_next_whole_percent(quota, period):
    assert values.cpu_quota_per_sec(quota, period) == _rounded_up_per_sec(quota, period)


@pytest.mark.parametrize("quota, period, per_sec", [
    (0, 100000, 0),  # no time at all is 0 %, not "no limit"
    (1, 1000000, 10000),  # 1 µs per second: rounded up to 1 %
    (2000001, 1000000, 2010000),  # just above 200 %: 201 %
    (100000, 100000, 1000000),  # one whole CPU
    (100001, 100000, 1010000),
])
def test_the_quota_per_second_at_the_percent_boundaries(quota, period, per_sec):
    assert values.cpu_quota_per_sec(quota, period) == per_sec


@pytest.mark.parametrize("quota", [1, 100001, 250000, 999999])
def test_no_period_is_the_kernels_default_of_100_ms(quota):
    # sched-bwc.rst: cpu.cfs_period_us defaults to 100000 µs
    assert values.cpu_quota_per_sec(quota, 0) == _rounded_up_per_sec(quota, 100000)


def test_no_limit_is_the_largest_uint64():
    assert values.cpu_quota_per_sec(-1, 100000) == UINT64_MAX
    s = values.parse(cgroup_config(memory=-1, pids_limit=-1, cpu_quota=-1))
    for name in ("MemoryMax", "TasksMax", "CPUQuotaPerSecUSec"):
        sig, value = props_of(values.systemd_properties(s, unified=True)[0])[name]
        assert sig == "t" and struct.pack("=Q", value) == b"\xff" * 8


def test_an_empty_cpu_list_is_an_empty_mask():
    assert values.cpu_bitmask("") == b""
    assert values.cpu_bitmask("0") == b"\x01"
    assert values.cpu_bitmask("7-8") == b"\x80\x01"


# --- what each systemd version is told ------------------------------------------------------

ALL = dict(memory=64 << 20, memory_reservation=16 << 20, memory_swap=96 << 20,
           cpu_shares=512, cpu_quota=25000, cpu_period=50000, pids_limit=50,
           blkio_weight=500, cpuset_cpus="0-1", cpuset_mems="0",
           allowed_devices=[device("c", 1, 3)])

# property -> (cgroup v2?, the first systemd version minins gives it to). MemorySwapMax=
# came in 232 and the v2 memory/CPU/IO properties go together; TasksMax= 227;
# CPUQuotaPeriodSec= 242; AllowedCPUs= and AllowedMemoryNodes= 244.
FIRST_VERSION = {
    "MemoryMax": (True, 232), "MemoryLow": (True, 232), "MemorySwapMax": (True, 232),
    "CPUWeight": (True, 232), "IOWeight": (True, 232),
    "AllowedCPUs": (True, 244), "AllowedMemoryNodes": (True, 244),
    "TasksMax": (False, 227), "CPUQuotaPeriodUSec": (False, 242),
}


@pytest.mark.parametrize("name", sorted(FIRST_VERSION))
def test_each_property_starts_at_its_systemd_version(name):
    unified_only, first = FIRST_VERSION[name]
    s = values.parse(cgroup_config(**ALL))
    for unified in ((True,) if unified_only else (True, False)):
        at = props_of(values.systemd_properties(s, unified, version=first)[0])
        before = props_of(values.systemd_properties(s, unified, version=first - 1)[0])
        assert name in at and name not in before
        latest = props_of(values.systemd_properties(s, unified)[0])
        assert latest[name] == at[name]


def test_what_systemd_sets_exactly_is_taken_out_of_the_rest():
    s = values.parse(cgroup_config(**ALL))
    _, rest = values.systemd_properties(s, unified=True)
    left = values.parse(cgroup_config(cpu_quota=25000, cpu_period=50000,
                                      allowed_devices=[device("c", 1, 3)]))
    for field in values.Settings.__slots__:
        assert getattr(rest, field) == getattr(left, field), field
    # an older systemd keeps the cpusets for cgroupfs, and before 232 everything
    _, rest = values.systemd_properties(s, unified=True, version=243)
    assert (rest.cpuset_cpus, rest.cpuset_mems, rest.memory_swap) == ("0-1", "0", 0)
    _, rest = values.systemd_properties(s, unified=True, version=226)
    for field in ("memory", "memory_reservation", "memory_swap", "cpu_shares",
                  "blkio_weight", "pids_limit"):
        assert getattr(rest, field) == getattr(s, field), field


@pytest.mark.parametrize("unified, version, io", [
    (True, None, "IOAccounting"), (True, 230, "IOAccounting"),
    (True, 229, "BlockIOAccounting"), (False, None, "BlockIOAccounting"),
    (False, 230, "BlockIOAccounting"),
])
def test_accounting_names_io_by_cgroup_and_systemd_version(unified, version, io):
    # systemd.resource-control(5): IOAccounting= since 230; BlockIOAccounting= is cgroup v1's
    got = values.accounting_properties(unified, version)
    assert got == [("MemoryAccounting", "b", True), ("CPUAccounting", "b", True),
                   ("TasksAccounting", "b", True), (io, "b", True)]
