"""The OCI seccomp model at its edges (issue 17: every mutant of minins/seccomp/profile.py
caught): the SECCOMP_RET_* and flag values against the kernel's own header, the limits of
errnoRet, index and value on both sides, the fields' defaults. Pure."""
import os
import re

import pytest

from minins.errors import ConfigError
from minins.seccomp import profile

HEADER = "/usr/include/linux/seccomp.h"


def _header_values(prefix):
    if not os.path.exists(HEADER):
        pytest.skip("%s missing (linux-libc-dev)" % HEADER)
    with open(HEADER) as f:
        text = f.read()
    out = {}
    for name, value in re.findall(r"#define\s+(%s\w+)\s+\(?([0-9a-fA-Fx]+)U?L?\b" % prefix,
                                  text):
        out[name] = int(value, 0)
    for name, shift in re.findall(r"#define\s+(%s\w+)\s+\(1UL << (\d+)\)" % prefix, text):
        out[name] = 1 << int(shift)
    return out


def test_actions_are_the_kernels_seccomp_ret_values():
    ret = _header_values("SECCOMP_RET_")
    want = {"SCMP_ACT_KILL": ret["SECCOMP_RET_KILL_THREAD"],
            "SCMP_ACT_KILL_THREAD": ret["SECCOMP_RET_KILL_THREAD"],
            "SCMP_ACT_KILL_PROCESS": ret["SECCOMP_RET_KILL_PROCESS"],
            "SCMP_ACT_TRAP": ret["SECCOMP_RET_TRAP"],
            "SCMP_ACT_ERRNO": ret["SECCOMP_RET_ERRNO"] | 1,
            "SCMP_ACT_TRACE": ret["SECCOMP_RET_TRACE"] | 1,
            "SCMP_ACT_ALLOW": ret["SECCOMP_RET_ALLOW"],
            "SCMP_ACT_LOG": ret["SECCOMP_RET_LOG"],
            "SCMP_ACT_NOTIFY": ret["SECCOMP_RET_USER_NOTIF"]}
    assert {a: profile.action_value(a) for a in profile.ACTIONS} == want
    assert profile.action_value("SCMP_ACT_ERRNO", 0) == ret["SECCOMP_RET_ERRNO"]
    assert profile.action_value("SCMP_ACT_ERRNO", 38) == ret["SECCOMP_RET_ERRNO"] | 38


def test_flags_are_the_kernels():
    flags = _header_values("SECCOMP_FILTER_FLAG_")
    for name in profile.FLAGS:
        assert profile.FLAGS[name] == flags[name]
    p = profile.loads({"defaultAction": "SCMP_ACT_ALLOW", "flags": sorted(profile.FLAGS)})
    assert p.flag_bits() == (flags["SECCOMP_FILTER_FLAG_TSYNC"] | flags["SECCOMP_FILTER_FLAG_LOG"]
                             | flags["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    p = profile.loads({"defaultAction": "SCMP_ACT_ALLOW",
                       "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                       "listenerPath": "/run/agent.sock",
                       "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]})
    assert p.flag_bits() == (flags["SECCOMP_FILTER_FLAG_LOG"]
                             | flags["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
                             | flags["SECCOMP_FILTER_FLAG_NEW_LISTENER"])


def _one(**rule):
    rule.setdefault("names", ["acct"])
    rule.setdefault("action", "SCMP_ACT_ERRNO")
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}


def _refused(data, field):
    with pytest.raises(ConfigError) as e:
        profile.loads(data)
    assert e.value.field == field
    return e.value.message


@pytest.mark.parametrize("errno_ret", [0, 4095])
def test_errno_ret_edges_accepted(errno_ret):
    p = profile.loads(_one(errnoRet=errno_ret))
    assert profile.action_value(p.syscalls[0].action, p.syscalls[0].errnoRet) == \
        0x50000 | errno_ret
    d = profile.loads({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno_ret})
    assert profile.default_value(d) == 0x50000 | errno_ret


@pytest.mark.parametrize("errno_ret", [-1, 4096])
def test_errno_ret_edges_refused(errno_ret):
    assert "0..4095" in _refused(_one(errnoRet=errno_ret), "seccomp.syscalls[0].errnoRet")


def test_default_value_is_the_default_actions():
    assert profile.default_value(profile.loads({"defaultAction": "SCMP_ACT_LOG"})) == 0x7FFC0000
    assert profile.default_value(profile.loads({"defaultAction": "SCMP_ACT_ERRNO"})) == 0x50001


@pytest.mark.parametrize("index", [0, 5])
def test_index_edges_accepted(index):
    p = profile.loads(_one(args=[{"index": index, "value": 1, "op": "SCMP_CMP_EQ"}]))
    assert p.syscalls[0].args[0].index == index


@pytest.mark.parametrize("index", [-1, 6])
def test_index_edges_refused(index):
    _refused(_one(args=[{"index": index, "value": 1, "op": "SCMP_CMP_EQ"}]),
             "seccomp.syscalls[0].args[0].index")


@pytest.mark.parametrize("name", ["value", "valueTwo"])
@pytest.mark.parametrize("value", [0, 1 << 63, (1 << 64) - 1])
def test_value_edges_accepted(name, value):
    arg = {"index": 1, "op": "SCMP_CMP_MASKED_EQ", name: value}
    p = profile.loads(_one(args=[arg]))
    assert getattr(p.syscalls[0].args[0], name) == value


@pytest.mark.parametrize("name", ["value", "valueTwo"])
@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_value_edges_refused(name, value):
    arg = {"index": 1, "op": "SCMP_CMP_MASKED_EQ", name: value}
    assert "2^64-1" in _refused(_one(args=[arg]), "seccomp.syscalls[0].args[0].%s" % name)


def test_an_arg_without_index_value_and_value_two_compares_arg0_with_0():
    p = profile.loads(_one(args=[{"op": "SCMP_CMP_EQ"}]))
    a = p.syscalls[0].args[0]
    assert (a.index, a.value, a.valueTwo) == (0, 0, 0)
    assert profile.rules_by_number(p, {"acct": 163}) == {
        163: [(((0, "SCMP_CMP_EQ", 0, 0),), 0x50001)]}


def test_listener_path_must_be_absolute():
    data = _one(action="SCMP_ACT_NOTIFY")
    data["listenerPath"] = "run/agent.sock"
    assert "absolute" in _refused(data, "seccomp.listenerPath")
    data["listenerPath"] = "/run/agent.sock"
    assert profile.loads(data).listenerPath == "/run/agent.sock"


def test_a_missing_action_says_it_must_be_set():
    assert "must be set" in _refused({"syscalls": []}, "seccomp.defaultAction")
    assert "must be set" in _refused({"defaultAction": "SCMP_ACT_ALLOW",
                                      "syscalls": [{"names": ["acct"]}]},
                                     "seccomp.syscalls[0].action")


def test_tsync_with_notify_adds_tsync_esrch():
    flags = _header_values("SECCOMP_FILTER_FLAG_")
    notify = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
              "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
              "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]}
    assert profile.loads(notify).flag_bits() == (
        flags["SECCOMP_FILTER_FLAG_TSYNC"] | flags["SECCOMP_FILTER_FLAG_NEW_LISTENER"]
        | flags["SECCOMP_FILTER_FLAG_TSYNC_ESRCH"])
    notify["flags"] = ["SECCOMP_FILTER_FLAG_LOG"]
    assert profile.loads(notify).flag_bits() == (
        flags["SECCOMP_FILTER_FLAG_LOG"] | flags["SECCOMP_FILTER_FLAG_NEW_LISTENER"])
    plain = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}
    assert profile.loads(plain).flag_bits() == flags["SECCOMP_FILTER_FLAG_TSYNC"]


def test_trace_carries_errno_zero():
    assert profile.action_value("SCMP_ACT_TRACE", 0) == _header_values(
        "SECCOMP_RET_")["SECCOMP_RET_TRACE"]


def test_one_argument_compared_twice_splits_the_rule_as_runc():
    eq16 = {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}
    eq17 = {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}
    a1 = {"index": 1, "value": 17, "op": "SCMP_CMP_EQ"}
    twice = profile.loads(_one(names=["socket"], args=[eq16, eq17]))
    assert profile.rules_by_number(twice, {"socket": 41}) == {41: [
        (((0, "SCMP_CMP_EQ", 16, 0),), 0x50001), (((0, "SCMP_CMP_EQ", 17, 0),), 0x50001)]}
    # two arguments, same operator and valueTwo: one rule, both must hold
    both = profile.loads(_one(names=["socket"], args=[eq16, a1]))
    assert profile.rules_by_number(both, {"socket": 41}) == {41: [
        (((0, "SCMP_CMP_EQ", 16, 0), (1, "SCMP_CMP_EQ", 17, 0)), 0x50001)]}
