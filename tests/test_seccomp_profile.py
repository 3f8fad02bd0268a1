"""The OCI seccomp model: validation errors name the field; container.json's ``seccomp``."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins import config
from minins.errors import ConfigError
from minins.seccomp import default, profile

GOOD = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_TRACE", "errnoRet": 7, "args": None},
    ],
}


def with_(path, value):
    data = json.loads(json.dumps(GOOD))
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def test_a_good_profile_loads_and_round_trips():
    p = profile.loads(GOOD)
    assert p.defaultErrnoRet == 38 and p.syscalls[1].args[0].value == 8
    assert p.syscalls[3].args == ()
    again = profile.loads(json.loads(json.dumps(p.to_json())))
    assert again == p
    assert p.flag_bits() == 2


@pytest.mark.parametrize("path,value,field,text", [
    (("syscalls", 1, "args", 0, "op"), "SCMP_CMP_XX", "seccomp.syscalls[1].args[0].op",
     'unknown operator "SCMP_CMP_XX"'),
    (("defaultAction",), "SCMP_ACT_NOPE", "seccomp.defaultAction", 'unknown action "SCMP_ACT_NOPE"'),
    (("defaultAction",), "SCMP_ACT_NOTIFY", "seccomp.defaultAction", "cannot be the default"),
    (("syscalls", 0, "action"), "ALLOW", "seccomp.syscalls[0].action", 'unknown action "ALLOW"'),
    (("syscalls", 0, "errnoRet"), 1, "seccomp.syscalls[0].errnoRet", "SCMP_ACT_ALLOW takes no errno"),
    (("syscalls", 3, "errnoRet"), 70000, "seccomp.syscalls[3].errnoRet", "within 0..4095"),
    (("syscalls", 1, "args", 0, "index"), 6, "seccomp.syscalls[1].args[0].index", "within 0..5"),
    (("syscalls", 1, "args", 0, "value"), 1 << 64, "seccomp.syscalls[1].args[0].value", "2^64-1"),
    (("syscalls", 1, "args", 0, "value"), "8", "seccomp.syscalls[1].args[0].value", "integer"),
    (("syscalls", 0, "names"), [], "seccomp.syscalls[0].names", "at least one"),
    (("syscalls", 0, "names"), ["read", ""], "seccomp.syscalls[0].names[1]", "empty"),
    (("syscalls", 0, "nmes"), ["read"], "seccomp.syscalls[0].nmes", "did you mean 'names'"),
    (("architectures", 1), "SCMP_ARCH_Z80", "seccomp.architectures[1]", "unknown architecture"),
    (("flags", 0), "SECCOMP_FILTER_FLAG_NEW_LISTENER", "seccomp.flags[0]", "unknown flag"),
    (("defaultErrnoRet",), 5, None, None),  # fine with SCMP_ACT_ERRNO
    (("defaultErrnoRet",), -1, "seccomp.defaultErrnoRet", "within 0..4095"),
])
def test_errors_name_the_field(path, value, field, text):
    data = with_(path, value)
    if field is None:
        profile.loads(data)
        return
    with pytest.raises(ConfigError) as e:
        profile.loads(data)
    assert e.value.field == field
    assert text in e.value.message
    assert str(e.value).startswith(field + ": ")


def test_the_prefix_is_the_callers():
    with pytest.raises(ConfigError) as e:
        profile.loads(with_(("syscalls", 1, "args", 0, "op"), "SCMP_CMP_XX"), "linux.seccomp")
    assert str(e.value).startswith('linux.seccomp.syscalls[1].args[0].op: unknown operator '
                                   '"SCMP_CMP_XX"')


def test_notify_needs_a_listener_path_and_not_sendmsg():
    data = with_(("syscalls", 0, "action"), "SCMP_ACT_NOTIFY")
    data["syscalls"][0]["names"] = ["getpid"]
    with pytest.raises(ConfigError, match="seccomp.listenerPath: must be set"):
        profile.loads(data)
    data["listenerPath"] = "/run/agent.sock"
    assert profile.loads(data).flag_bits() & profile.FLAG_NEW_LISTENER
    data["syscalls"][0]["names"] = ["sendmsg"]
    with pytest.raises(ConfigError, match=r"seccomp.syscalls\[0\].names: SCMP_ACT_NOTIFY cannot"):
        profile.loads(data)


def test_errno_defaults_to_eperm():
    assert profile.action_value("SCMP_ACT_ERRNO") == 0x50001
    assert profile.action_value("SCMP_ACT_ERRNO", 38) == 0x50026
    assert profile.action_value("SCMP_ACT_ERRNO", 0) == 0x50000
    assert profile.action_value("SCMP_ACT_TRACE") == 0x7FF00001
    assert profile.action_value("SCMP_ACT_KILL") == profile.action_value("SCMP_ACT_KILL_THREAD") == 0
    assert profile.action_value("SCMP_ACT_KILL_PROCESS") == 0x80000000


def test_precedence_conditional_rules_first():
    p = profile.loads({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["personality"], "action": "SCMP_ACT_LOG",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_TRAP"},
    ]})
    rules = profile.rules_by_number(p, {"personality": 135})[135]
    assert rules == [(((0, "SCMP_CMP_EQ", 8, 0),), 0x7FFC0000), ((), 0x50001)]
    assert profile.rules_by_number(p, {"read": 0}) == {}  # a name the table lacks is skipped


# --- container.json ----------------------------------------------------------------------------

def test_container_json_accepts_the_oci_object():
    cfg = config.loads(json.dumps({"seccomp": GOOD}))
    assert isinstance(cfg.seccomp, profile.Seccomp)
    assert config.loads(config.dumps(cfg)).seccomp == cfg.seccomp


@pytest.mark.parametrize("value,expected", [(None, None), ("unconfined", None),
                                            ("default", "default")])
def test_container_json_sentinels(value, expected):
    assert config.loads(json.dumps({"seccomp": value})).seccomp == expected
    assert config.loads("{}").seccomp is None


def test_container_json_errors_name_the_field():
    with pytest.raises(ConfigError) as e:
        config.loads(json.dumps({"seccomp": with_(("syscalls", 3, "args"),
                                                  [{"index": 0, "op": "SCMP_CMP_XX"}])}))
    assert str(e.value) == ('seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_XX"; '
                            "known: " + ", ".join(profile.OPERATORS))
    with pytest.raises(ConfigError, match="seccomp: must be an OCI seccomp object"):
        config.loads(json.dumps({"seccomp": "strict"}))


def test_default_config_has_the_default_profile():
    assert config.default_config().seccomp == "default"
    assert json.loads(config.dumps(config.default_config()))["seccomp"] == "default"


def test_default_profile_follows_the_capabilities():
    plain = default.default_profile(("CHOWN",), "x86_64", "6.1.0")
    admin = default.default_profile(("CAP_SYS_ADMIN",), "x86_64", "6.1.0")

    def names(p, action):
        return {n for s in p.syscalls if s.action == action and not s.args for n in s.names}

    assert "unshare" not in names(plain, "SCMP_ACT_ALLOW")
    assert "unshare" in names(admin, "SCMP_ACT_ALLOW")
    assert "arch_prctl" in names(plain, "SCMP_ACT_ALLOW")
    assert "arch_prctl" not in names(default.default_profile((), "aarch64", "6.1.0"),
                                     "SCMP_ACT_ALLOW")
    assert plain.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    old = default.default_profile(("SYS_PTRACE",), "x86_64", "4.4.0")
    assert "ptrace" in names(old, "SCMP_ACT_ALLOW")  # through CAP_SYS_PTRACE, not minKernel
    assert "ptrace" not in names(default.default_profile((), "x86_64", "4.4.0"),
                                 "SCMP_ACT_ALLOW")
    assert "ptrace" in names(default.default_profile((), "x86_64", "4.8.0"), "SCMP_ACT_ALLOW")


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["names", "action", "args", "op", "index", "value",
                                         "defaultAction", "syscalls", "x"]), c, max_size=4),
                    max_leaves=12))
def test_arbitrary_json_gives_a_config_error_or_a_profile(data):
    try:
        p = profile.loads(data)
    except ConfigError as e:
        assert str(e).startswith("seccomp")
    else:
        assert isinstance(p, profile.Seccomp)
