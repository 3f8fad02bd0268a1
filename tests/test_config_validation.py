"""Every check of config validation, through the public entry (``config.loads``): each bad
value is rejected with a ConfigError naming its field, and the value just inside the limit is
accepted -- so that deleting a check, or moving its limit by one, fails here.

Limits and their sources: HOST_NAME_MAX 64 (sethostname(2)); RLIM_NLIMITS 16, limits
0..RLIM_INFINITY = 2**64-1 (getrlimit(2)); ids 0..2**32-2 (user_namespaces(7)); device
minor numbers 20 bits (linux/kdev_t.h); permission bits 0..0o7777 (chmod(2)).
"""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins import config
from minins.errors import ConfigError

TOP_ID = 2 ** 32 - 2
U64 = 2 ** 64 - 1


def doc(namespaces=(), **kw):
    d = {"namespaces": [{"type": t} for t in namespaces]}
    d.update(kw)
    return d


def ok(d):
    cfg = config.loads(json.dumps(d))
    assert config.validate(cfg) is cfg
    return cfg


def bad(d, field, words=""):
    with pytest.raises(ConfigError) as e:
        config.loads(json.dumps(d))
    assert e.value.field == field, str(e.value)
    assert words in e.value.message, str(e.value)
    assert str(e.value).startswith(field + ": ")


# --- the network and cgroup sections are checked too --------------------------------------------

def test_a_bad_network_is_found_by_validate():
    bad(doc(["NEWNET"], networks=[{"type": "loopback"}, {"type": "wifi"}]),
        "networks[1].type", "unknown network type")
    bad(doc(["NEWNET"], networks=[{"type": "veth", "veth_prefix": "v"}]),
        "networks[0].bridge", "needs a bridge")
    ok(doc(["NEWNET"], networks=[{"type": "loopback"}]))


def test_stop_signal_must_be_a_signal_that_stops_something():
    for good in ("", "TERM", "SIGUSR1", "sigint", "1", "64", "RTMIN+3"):
        assert ok(doc(stop_signal=good)).stop_signal == good
    bad(doc(stop_signal="NOPE"), "stop_signal", "unknown signal")
    bad(doc(stop_signal="0"), "stop_signal", "stops nothing")
    bad(doc(stop_signal="65"), "stop_signal", "unknown signal")


def test_a_bad_route_is_found_by_validate():
    bad(doc(["NEWNET"], routes=[{"destination": "10.0.0.0/8"}]), "routes[0]",
        "needs a gateway or an interface_name")


def test_routes_alone_need_a_network_namespace():
    bad(doc(routes=[{"destination": "10.0.0.0/8", "interface_name": "eth0"}]), "routes",
        "needs a NEWNET namespace")
    bad(doc(networks=[{"type": "loopback"}], routes=[{"destination": "10.0.0.0/8"}]),
        "networks", "needs a NEWNET namespace")


@pytest.mark.parametrize("cgroups,field", [
    ({"blkio_weight": 5}, "cgroups.blkio_weight"),
    ({"cpu_shares": 1}, "cgroups.cpu_shares"),
    ({"allowed_devices": [{"type": 120, "cgroup_permissions": "rwm"}]},
     "cgroups.allowed_devices[0].type"),
])
def test_a_bad_cgroup_is_found_by_validate(cgroups, field):
    bad(doc(cgroups=cgroups), field)


def test_a_good_cgroup_passes():
    ok(doc(cgroups={"blkio_weight": 10, "cpu_shares": 2}))


# --- namespaces and id maps ---------------------------------------------------------------------

def test_namespace_paths():
    ok({"namespaces": [{"type": "NEWIPC", "path": "/proc/1/ns/ipc"}, {"type": "NEWUTS"}]})
    bad({"namespaces": [{"type": "NEWIPC", "path": "proc/1/ns/ipc"}]}, "namespaces[0].path",
        "absolute")


def test_every_namespace_type_once():
    ok(doc(sorted(set(config.NAMESPACE_TYPES) - {"NEWUSER"})))
    bad(doc(["NEWPID", "NEWNS", "NEWPID"]), "namespaces[2].type", "listed twice")


MAP = [{"container_id": 0, "host_id": 1000, "size": 1}]


def test_mappings_need_a_new_user_namespace_not_a_joined_one():
    joined = {"namespaces": [{"type": "NEWUSER", "path": "/proc/1/ns/user"}]}
    ok(joined)
    bad(dict(joined, uid_mappings=MAP), "uid_mappings", "need a new user namespace")
    bad(dict(joined, gid_mappings=MAP), "gid_mappings", "need a new user namespace")
    bad(doc(gid_mappings=MAP), "gid_mappings", "need a new user namespace")


def test_a_new_user_namespace_needs_both_maps():
    bad(doc(["NEWUSER"], gid_mappings=MAP), "uid_mappings", "needs mappings")
    bad(doc(["NEWUSER"], uid_mappings=MAP), "gid_mappings", "needs mappings")
    ok(doc(["NEWUSER"], uid_mappings=MAP, gid_mappings=MAP))


def test_gid_0_and_the_last_id_in_maps():
    zero = [{"container_id": 0, "host_id": 0, "size": 1}]
    ok(doc(["NEWUSER"], uid_mappings=zero, gid_mappings=zero))
    last = [{"container_id": 0, "host_id": TOP_ID, "size": 1}]
    ok(doc(["NEWUSER"], uid_mappings=MAP, gid_mappings=last))
    past = [{"container_id": 0, "host_id": TOP_ID + 1, "size": 1}]
    bad(doc(["NEWUSER"], uid_mappings=MAP, gid_mappings=past), "gid_mappings[0].host_id",
        "within")


# --- the process --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["h" * 64, "é" * 32, "x"])
def test_a_hostname_of_at_most_64_bytes(name):
    assert ok(doc(["NEWUTS"], hostname=name)).hostname == name


@pytest.mark.parametrize("name", ["h" * 65, "é" * 32 + "h", "é" * 33])
def test_a_hostname_of_65_bytes_is_too_long(name):
    bad(doc(["NEWUTS"], hostname=name), "hostname", "at most 64 bytes")


@pytest.mark.parametrize("env", ["BROKEN", "=x", "="])
def test_environment_needs_a_name_and_an_equals_sign(env):
    bad(doc(environment=["A=1", env]), "environment[1]", "NAME=VALUE")


def test_environment_values_may_be_empty_or_hold_equals_signs():
    ok(doc(environment=["A=", "B==", "C=x=y"]))


def test_working_dir():
    ok(doc(working_dir="/srv"))
    bad(doc(working_dir="srv"), "working_dir", "absolute")


@pytest.mark.parametrize("user", ["root", "0", "1000:1000", "daemon:adm"])
def test_user_forms_accepted(user):
    assert ok(doc(user=user)).user == user


@pytest.mark.parametrize("user", ["a:b:c", "a:", ":b", ":", "1::2"])
def test_user_forms_rejected(user):
    bad(doc(user=user), "user", "name|uid[:group|gid]")


def test_additional_groups_from_0_to_the_last_id():
    ok(doc(additional_groups=[0, 1, TOP_ID]))
    bad(doc(additional_groups=[0, TOP_ID + 1]), "additional_groups[1]",
        "within 0..4294967294")
    bad(doc(additional_groups=[-1]), "additional_groups[0]", "within")


def test_ambient_capabilities_within_the_bounding_set():
    ok(doc(capabilities=["CHOWN", "KILL"], ambient_capabilities=["KILL", "CHOWN"]))
    ok(doc(capabilities=["SETGID"], ambient_capabilities=["SETGID"]))
    bad(doc(capabilities=["KILL"], ambient_capabilities=["KILL", "CHOWN"]),
        "ambient_capabilities[1]", "CHOWN must also be in capabilities")
    bad(doc(capabilities=["SETGID"], ambient_capabilities=["KILL"]),
        "ambient_capabilities[0]", "KILL must also be in capabilities")


# --- rlimits -----------------------------------------------------------------------------------

def rl(t, soft=1, hard=1):
    return {"type": t, "soft": soft, "hard": hard}


def test_rlimit_types_0_and_15_are_valid_16_is_not():
    ok(doc(rlimits=[rl(0), rl(15)]))
    bad(doc(rlimits=[rl(15), rl(16)]), "rlimits[1].type", "RLIMIT_* number within 0..15")
    bad(doc(rlimits=[rl(-1)]), "rlimits[0].type", "within 0..15")


def test_an_rlimit_listed_twice():
    bad(doc(rlimits=[rl(7), rl(3), rl(7)]), "rlimits[2].type", "resource 7 is listed twice")


def test_rlimit_values_up_to_infinity():
    ok(doc(rlimits=[rl(7, U64, U64), rl(8, 0, 0), rl(9, 0, U64)]))
    bad(doc(rlimits=[rl(7, 0, U64 + 1)]), "rlimits[0].hard", "within 0..2**64-1")
    bad(doc(rlimits=[rl(7, U64 + 1, U64 + 1)]), "rlimits[0].soft", "within 0..2**64-1")
    bad(doc(rlimits=[rl(7, -1, 0)]), "rlimits[0].soft", "within")
    bad(doc(rlimits=[rl(7, 0, -1)]), "rlimits[0].hard", "within")


def test_soft_may_equal_hard_but_not_exceed_it():
    ok(doc(rlimits=[rl(7, 5, 5)]))
    bad(doc(rlimits=[rl(7, U64, U64 - 1)]), "rlimits[0].soft",
        "must not exceed hard (%d)" % (U64 - 1))


@given(st.lists(st.integers(-2, 17), max_size=5), st.integers(-1, 3), st.integers(-1, 3))
def test_rlimits_generated(types, soft, hard):
    d = doc(rlimits=[rl(t, soft, hard) for t in types])
    dup = next((i for i, t in enumerate(types) if t in types[:i]), None)
    first_bad_type = next((i for i, t in enumerate(types) if not 0 <= t <= 15), None)
    if types and (soft < 0 or hard < 0 or soft > hard or first_bad_type is not None
                  or dup is not None):
        with pytest.raises(ConfigError) as e:
            config.loads(json.dumps(d))
        assert e.value.field.startswith("rlimits[")
    else:
        ok(d)


# --- mounts ------------------------------------------------------------------------------------

def mounts(*ms, **mc):
    mc = dict(mc)
    mc["mounts"] = list(ms)
    return doc(["NEWNS"], mount_config=mc)


def test_restrict_sys_with_a_mount_namespace():
    ok(doc(["NEWNS"], restrict_sys=True))
    bad(doc(["NEWUTS"], restrict_sys=True), "restrict_sys", "needs a NEWNS namespace")


def test_pivot_dir_must_be_absolute():
    ok(mounts(pivot_dir="/tmp"))
    bad(mounts(pivot_dir="tmp"), "mount_config.pivot_dir", "absolute")


def test_bind_and_tmpfs_mounts():
    ok(mounts({"type": "bind", "source": "/srv", "destination": "/srv"},
              {"type": "tmpfs", "destination": "/tmp"},
              {"type": "tmpfs", "source": "tmpfs", "destination": "/run"}))


def test_a_bind_source_must_be_absolute():
    bad(mounts({"type": "tmpfs", "destination": "/tmp"},
               {"type": "bind", "source": "srv", "destination": "/srv"}),
        "mount_config.mounts[1].source", "absolute source")
    bad(mounts({"type": "bind", "destination": "/srv"}), "mount_config.mounts[0].source")


@pytest.mark.parametrize("relabel", ["", "z", "Z"])
def test_relabel_accepted(relabel):
    ok(mounts({"type": "tmpfs", "destination": "/tmp", "relabel": relabel}))


@pytest.mark.parametrize("relabel", ["x", "zZ", "shared"])
def test_relabel_rejected(relabel):
    bad(mounts({"type": "tmpfs", "destination": "/tmp", "relabel": relabel}),
        "mount_config.mounts[0].relabel", "must be \"z\" or \"Z\"")


def test_private_and_slave_not_together():
    ok(mounts({"type": "tmpfs", "destination": "/a", "private": True},
              {"type": "tmpfs", "destination": "/b", "slave": True}))
    bad(mounts({"type": "tmpfs", "destination": "/a", "private": True, "slave": True}),
        "mount_config.mounts[0].slave", "both private and slave")


# --- device nodes ------------------------------------------------------------------------------

def node(**kw):
    d = {"type": 99, "path": "/dev/null", "major_number": 1, "minor_number": 3,
         "file_mode": 0o666}
    d.update(kw)
    return d


def nodes(*ds):
    return doc(["NEWNS"], mount_config={"device_nodes": list(ds)})


@pytest.mark.parametrize("kind", [99, 98])
def test_character_and_block_nodes(kind):
    ok(nodes(node(type=kind)))


@pytest.mark.parametrize("kind", [97, 100, 0, 120])
def test_other_node_types_are_rejected(kind):
    bad(nodes(node(), node(type=kind)), "mount_config.device_nodes[1].type",
        "must be 99 (c), 98 (b) or 112 (p)")


@pytest.mark.parametrize("path", ["/dev/x/../../etc/passwd", "/dev/..", "/devices/null",
                                  "dev/null"])
def test_node_paths_stay_under_dev(path):
    bad(nodes(node(path=path)), "mount_config.device_nodes[0].path", "under /dev")


def test_node_numbers():
    ok(nodes(node(major_number=0, minor_number=0), node(path="/dev/y", minor_number=0xFFFFF)))
    for name in ("major_number", "minor_number"):
        bad(nodes(node(**{name: 0x100000})), "mount_config.device_nodes[0].%s" % name,
            "device number")
        bad(nodes(node(**{name: -1})), "mount_config.device_nodes[0].%s" % name, "no wildcard")


def test_node_file_mode_is_permission_bits():
    ok(nodes(node(file_mode=0o7777), node(path="/dev/z", file_mode=0)))
    bad(nodes(node(file_mode=0o10000)), "mount_config.device_nodes[0].file_mode",
        "permission bits")
    bad(nodes(node(file_mode=-1)), "mount_config.device_nodes[0].file_mode")


def test_node_owner_ids():
    ok(nodes(node(uid=0, gid=TOP_ID), node(path="/dev/z", uid=TOP_ID, gid=0)))
    for name in ("uid", "gid"):
        bad(nodes(node(**{name: TOP_ID + 1})), "mount_config.device_nodes[0].%s" % name,
            "within 0..4294967294")
        bad(nodes(node(**{name: -1})), "mount_config.device_nodes[0].%s" % name, "within")


# --- text the kernel cannot take, at every depth ----------------------------------------------

@pytest.mark.parametrize("field,extra", [
    ("hostname", {"hostname": "a\udcff"}),  # a top-level string
    ("environment[1]", {"environment": ["A=1", "B=\ud800"]}),  # an item of a list
    ("mount_config.mounts[0].destination",  # a field of a record in a list in a record
     {"mount_config": {"mounts": [{"type": "tmpfs", "destination": "/x\udcff"}]}}),
    ("cgroups.parent", {"cgroups": {"parent": "p\udcff"}}),  # a field of a record
])
def test_a_lone_surrogate_is_refused_by_its_field_at_any_depth(field, extra):
    ns = ["NEWUTS", "NEWNS"]  # what a hostname and mounts need
    bad(doc(ns, **extra), field, "lone surrogate")
    ok(doc(ns, **{k: (v.replace("\udcff", "").replace("\ud800", "") if isinstance(v, str)
                      else json.loads(json.dumps(v).replace("\\udcff", "")
                                      .replace("\\ud800", "")))
                  for k, v in extra.items()}))


def test_node_numbers_at_the_kernels_limits():
    # 12 bits of major and 20 of minor (linux/kdev_t.h): the largest of each is a node
    ok(nodes(node(major_number=0xFFF, minor_number=0xFFFFF)))
    bad(nodes(node(major_number=0x1000)), "mount_config.device_nodes[0].major_number",
        "within 0..4095")
    bad(nodes(node(minor_number=0x100000)), "mount_config.device_nodes[0].minor_number",
        "within 0..1048575")


def test_a_seccomp_profile_set_in_the_library_is_validated_too():
    """config.loads validates a profile as it reads it; a Config built in Python (replace)
    goes through validate alone."""
    from minins.seccomp import profile

    good = profile.loads({"defaultAction": "SCMP_ACT_ALLOW"})
    cfg = config.default_config()
    assert config.validate(cfg.replace(seccomp=good)).seccomp is good
    assert config.validate(cfg.replace(seccomp="default")).seccomp == "default"
    assert config.validate(cfg.replace(seccomp=None)).seccomp is None
    with pytest.raises(ConfigError) as e:
        config.validate(cfg.replace(seccomp=good.replace(defaultAction="SCMP_ACT_XX")))
    assert e.value.field == "seccomp.defaultAction" and "unknown action" in e.value.message
    with pytest.raises(ConfigError) as e:
        config.validate(cfg.replace(seccomp=42))
    assert e.value.field == "seccomp" and "OCI seccomp object" in e.value.message
