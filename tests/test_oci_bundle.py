"""The OCI bundle loader (minins.oci.bundle): every config.json field the runtime-spec defines
for Linux, turned into minins's model or refused by its OCI name; hypothesis-made specs give a
Bundle or a ConfigError, never another exception."""
import copy
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins import caps, config
from minins.errors import ConfigError
from minins.oci import bundle

NO_LSM = {"apparmor": False, "selinux": False}
BUNDLE = "/bundles/b1"


def spec(**changes):
    """runc spec's default, with the top-level ``changes`` (None deletes)."""
    s = bundle.default_spec()
    s["process"]["terminal"] = False
    for key, value in changes.items():
        if value is None:
            s.pop(key, None)
        else:
            s[key] = value
    return s


def with_(path, value, base=None):
    """The default spec with the dotted ``path`` set to ``value`` (None deletes)."""
    s = copy.deepcopy(base) if base is not None else spec()
    node = s
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return s


def conv(s, **kw):
    kw.setdefault("lsm", NO_LSM)
    return bundle.from_spec(s, BUNDLE, **kw)


def refused(s, field, words="", **kw):
    with pytest.raises(ConfigError) as e:
        conv(s, **kw)
    assert e.value.field == field, str(e.value)
    assert words in e.value.message, str(e.value)
    assert "\n" not in str(e.value)
    return e.value


# --- the default spec ---------------------------------------------------------------------------

def test_default_spec_converts():
    b = conv(spec())
    cfg = b.config
    assert b.args == ("sh",)
    assert b.rootfs == cfg.root_fs == BUNDLE + "/rootfs"
    assert b.bundle == BUNDLE
    assert cfg.mount_config.readonly_fs
    assert cfg.hostname == "runc"
    assert [ns.type for ns in cfg.namespaces] == ["NEWPID", "NEWNET", "NEWIPC", "NEWUTS",
                                                  "NEWNS"]
    assert cfg.rlimits == (config.Rlimit(type=7, hard=1024, soft=1024),)
    assert cfg.no_new_privileges
    assert not cfg.restrict_sys
    assert cfg.mount_config.system_mounts is False
    assert [m.destination for m in cfg.mount_config.mounts] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert all(m.oci for m in cfg.mount_config.mounts)
    assert b.hooks == {name: () for name in bundle.HOOK_NAMES}
    assert b.annotations == {}
    assert b.console_size is None
    assert b.spec["hostname"] == "runc"


def test_default_spec_is_runcs_shape():
    s = bundle.default_spec()
    assert s["ociVersion"] == "1.0.2-dev"
    assert list(s) == ["ociVersion", "process", "root", "hostname", "mounts", "linux"]
    assert s["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    r = bundle.default_spec(rootless=True, uid=1000, gid=1001)
    assert r["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert r["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 1001, "size": 1}]
    assert "resources" not in r["linux"]
    assert {"type": "network"} not in r["linux"]["namespaces"]
    assert {"type": "user"} in r["linux"]["namespaces"]
    sys_mount = [m for m in r["mounts"] if m["destination"] == "/sys"][0]
    assert sys_mount["options"][0] == "rbind"
    assert "gid=5" not in [o for m in r["mounts"] for o in m.get("options", ())]
    conv(r)  # the rootless default converts too


def test_runc_spec_output_is_the_same(tmp_path):
    """``runc spec`` on this host writes the same document (when runc is installed)."""
    import shutil
    import subprocess

    if not shutil.which("runc"):
        pytest.skip("runc is not installed")
    subprocess.run(["runc", "spec"], cwd=str(tmp_path), check=True)
    with open(str(tmp_path / "config.json")) as f:
        assert json.load(f) == bundle.default_spec()
    (tmp_path / "r").mkdir()
    subprocess.run(["runc", "spec", "--rootless"], cwd=str(tmp_path / "r"), check=True)
    with open(str(tmp_path / "r" / "config.json")) as f:
        assert json.load(f) == bundle.default_spec(rootless=True)


def test_load_reads_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(spec(hostname="h1")))
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path), lsm=NO_LSM)
    assert e.value.field == "root.path" and "not a directory" in e.value.message
    (tmp_path / "rootfs").mkdir()
    b = bundle.load(str(tmp_path), lsm=NO_LSM)
    assert b.config.hostname == "h1"
    assert b.rootfs == str(tmp_path / "rootfs")


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path))
    assert "config.json" in str(e.value) and e.value.field == ""
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path))
    assert "config.json" in str(e.value) and "not valid JSON" in str(e.value)


# --- top level --------------------------------------------------------------------------------

def test_oci_version():
    refused(spec(ociVersion=None), "ociVersion", "must be set")
    refused(spec(ociVersion="2.0.0"), "ociVersion")
    refused(spec(ociVersion=1), "ociVersion", "string")
    for v in ("1.0.0", "1.0.2-dev", "1.1.0", "1.2.0"):
        conv(spec(ociVersion=v))


def test_unknown_properties_are_ignored():
    s = spec(somethingNew={"x": 1})
    s["process"]["futureField"] = True
    s["linux"]["futureField"] = [1]
    s["mounts"][0]["futureField"] = 2
    conv(s)


@pytest.mark.parametrize("path", sorted(bundle.UNSUPPORTED))
def test_unsupported_properties_are_refused_by_name(path):
    e = refused(with_(path, {"x": 1}), path)
    assert "not supported" in e.message


def test_intel_rdt_message():
    e = refused(with_("linux.intelRdt", {"closID": "x"}), "linux.intelRdt")
    assert str(e) == "linux.intelRdt: not supported"


def test_not_an_object():
    with pytest.raises(ConfigError):
        bundle.from_spec([], BUNDLE)
    refused(spec(process=[]), "process", "object")
    refused(spec(process=None), "process", "must be set")
    refused(spec(linux="x"), "linux", "object")


# --- root -------------------------------------------------------------------------------------

def test_root():
    b = conv(spec(root={"path": "/abs/rootfs"}))
    assert b.rootfs == "/abs/rootfs"
    assert not b.config.mount_config.readonly_fs
    assert conv(spec(root={"path": "sub/../r"})).rootfs == BUNDLE + "/r"
    refused(spec(root=None), "root", "must be set")
    refused(spec(root={}), "root.path", "must be set")
    refused(spec(root={"path": "r", "readonly": "yes"}), "root.readonly")


# --- process ----------------------------------------------------------------------------------

def test_args_env_cwd_terminal():
    s = with_("process.args", ["/bin/echo", "a b"])
    s = with_("process.env", ["A=1", "B=", "C=x=y"], s)
    s = with_("process.cwd", "/work", s)
    s = with_("process.terminal", True, s)
    s = with_("process.consoleSize", {"height": 24, "width": 80}, s)
    b = conv(s)
    assert b.args == ("/bin/echo", "a b")
    assert b.config.environment == ("A=1", "B=", "C=x=y")
    assert b.config.working_dir == "/work"
    assert b.config.tty
    assert b.console_size == (24, 80)


def test_process_errors():
    refused(with_("process.args", []), "process.args", "must not be empty")
    refused(with_("process.args", None), "process.args", "must not be empty")
    refused(with_("process.args", ["a", 1]), "process.args[1]", "string")
    refused(with_("process.env", ["NOEQUALS"]), "process.env[0]", "NAME=VALUE")
    refused(with_("process.cwd", "rel"), "process.cwd", "absolute")
    refused(with_("process.cwd", None), "process.cwd", "must be set")
    refused(with_("process.terminal", 1), "process.terminal", "true or false")
    refused(with_("process.consoleSize", {"height": -1, "width": 1}),
            "process.consoleSize.height")
    refused(with_("process.args", ["a\0b"]), "process.args[0]", "NUL")


def test_user():
    s = with_("process.user", {"uid": 1000, "gid": 50, "umask": 0o027,
                               "additionalGids": [10, 20]})
    cfg = conv(s).config
    assert cfg.user == "1000:50"
    assert cfg.umask == 0o027
    assert cfg.additional_groups == (10, 20)
    assert conv(spec()).config.umask is None
    refused(with_("process.user.uid", -1), "process.user.uid")
    refused(with_("process.user.gid", 2 ** 32), "process.user.gid")
    refused(with_("process.user.umask", 0o1000), "process.user.umask")
    refused(with_("process.user.additionalGids", ["x"]), "process.user.additionalGids[0]")


def test_capabilities_five_sets():
    s = with_("process.capabilities", {
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_CHOWN"],
        "ambient": ["CAP_CHOWN"]})
    cfg = conv(s).config
    assert cfg.capabilities == ("CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW")
    assert cfg.effective_capabilities == ("CAP_KILL",)
    assert cfg.permitted_capabilities == ("CAP_KILL", "CAP_CHOWN")
    assert cfg.inheritable_capabilities == ("CAP_CHOWN",)
    assert cfg.ambient_capabilities == ("CAP_CHOWN",)


def test_ambient_needs_permitted_and_inheritable():
    """runc spec's default lists ambient capabilities without an inheritable set: the kernel
    cannot raise them, runc goes on without them, so does minins."""
    cfg = conv(spec()).config
    assert cfg.ambient_capabilities == ()
    assert cfg.inheritable_capabilities == ()


def test_no_capabilities_object_keeps_every_capability():
    cfg = conv(with_("process.capabilities", None)).config
    assert set(cfg.capabilities) == set(caps.CAPS)
    assert cfg.effective_capabilities is None


def test_capability_errors():
    refused(with_("process.capabilities.bounding", ["CAP_NOPE"]),
            "process.capabilities.bounding[0]", "unknown capability")
    refused(with_("process.capabilities.effective", "CAP_KILL"),
            "process.capabilities.effective", "list")


def test_rlimits():
    s = with_("process.rlimits", [{"type": name, "hard": 10, "soft": 5}
                                  for name in sorted(bundle.RLIMITS)])
    got = {rl.type: (rl.soft, rl.hard) for rl in conv(s).config.rlimits}
    assert got == {n: (5, 10) for n in range(16)}
    refused(with_("process.rlimits", [{"type": "NOFILE", "hard": 1, "soft": 1}]),
            "process.rlimits[0].type", "unknown resource")
    refused(with_("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}]),
            "process.rlimits[0].soft", "must not exceed")
    refused(with_("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 2 ** 64, "soft": 1}]),
            "process.rlimits[0].hard")
    refused(with_("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}] * 2),
            "process.rlimits[1].type", "twice")
    unlimited = 2 ** 64 - 1
    s = with_("process.rlimits", [{"type": "RLIMIT_CORE", "hard": unlimited,
                                   "soft": unlimited}])
    assert conv(s).config.rlimits[0].hard == unlimited


def test_no_new_privileges_and_oom_score():
    cfg = conv(with_("process.oomScoreAdj", -999, with_("process.noNewPrivileges", False))) \
        .config
    assert not cfg.no_new_privileges
    assert cfg.oom_score_adj == -999
    refused(with_("process.oomScoreAdj", 1001), "process.oomScoreAdj")


def test_lsm_labels():
    conv(with_("process.apparmorProfile", ""))
    conv(with_("process.selinuxLabel", ""))
    e = refused(with_("process.apparmorProfile", "docker-default"), "process.apparmorProfile",
                "not supported on this host")
    assert "AppArmor" in e.message
    # SELinux labels are accepted and dropped where SELinux is off (runc, crun).
    cfg = conv(with_("process.selinuxLabel", "system_u:r:t:s0",
                     with_("linux.mountLabel", "system_u:object_r:t:s0"))).config
    assert cfg.process_label == ""
    assert cfg.mount_config.mount_label == ""
    refused(with_("process.selinuxLabel", 7), "process.selinuxLabel")
    refused(with_("linux.mountLabel", ["x"]), "linux.mountLabel")
    selinux_only = {"apparmor": False, "selinux": True}
    cfg = conv(with_("process.selinuxLabel", "l", with_("linux.mountLabel", "m")),
               lsm=selinux_only).config
    assert (cfg.process_label, cfg.mount_config.mount_label) == ("l", "m")
    refused(with_("process.apparmorProfile", "p"), "process.apparmorProfile", "AppArmor",
            lsm=selinux_only)
    on = {"apparmor": True, "selinux": True}
    cfg = conv(with_("process.apparmorProfile", "p", with_("process.selinuxLabel", "l")),
               lsm=on).config
    assert (cfg.apparmor_profile, cfg.process_label) == ("p", "l")


# --- hostname, namespaces, ID maps ------------------------------------------------------------

def test_hostname_domainname():
    cfg = conv(spec(hostname="h", domainname="example.org")).config
    assert (cfg.hostname, cfg.domainname) == ("h", "example.org")
    no_uts = with_("linux.namespaces", [{"type": "mount"}], spec(hostname=None))
    refused(with_("domainname", "d", no_uts), "domainname", "NEWUTS")
    refused(spec(domainname="x" * 65), "domainname", "64")


def test_namespaces():
    s = with_("linux.namespaces", [{"type": t} for t in bundle.NAMESPACES if t != "user"])
    got = {ns.type for ns in conv(s).config.namespaces}
    assert got == set(bundle.NAMESPACES.values()) - {"NEWUSER"}
    s = with_("linux.namespaces", [{"type": "mount"}, {"type": "uts"},
                                   {"type": "network", "path": "/proc/1/ns/net"}])
    assert conv(s).config.namespace("NEWNET").path == "/proc/1/ns/net"
    refused(with_("linux.namespaces", [{"type": "mount"}, {"type": "mount"}]),
            "linux.namespaces[1].type", "twice")
    refused(with_("linux.namespaces", [{"type": "time"}]), "linux.namespaces[0].type",
            "not supported")
    refused(with_("linux.namespaces", [{"type": "bogus"}]), "linux.namespaces[0].type",
            "unknown")
    refused(with_("linux.namespaces", [{"type": "net", "path": "rel"}]),
            "linux.namespaces[0].type")
    refused(with_("linux.namespaces", [{"type": "network", "path": "rel"}]),
            "linux.namespaces[0].path", "absolute")


def test_loopback_in_a_new_network_namespace():
    assert conv(spec()).config.networks == (config.Network(type="loopback"),)
    s = with_("linux.namespaces", [{"type": "mount"}, {"type": "uts"},
                                   {"type": "network", "path": "/proc/1/ns/net"}])
    assert conv(s).config.networks == ()


def test_id_mappings():
    r = bundle.default_spec(rootless=True, uid=1000, gid=1000)
    r["process"]["terminal"] = False
    r["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg = conv(r).config
    assert cfg.uid_mappings == (config.IDMap(container_id=0, host_id=100000, size=65536),)
    assert cfg.gid_mappings == (config.IDMap(container_id=0, host_id=1000, size=1),)
    r["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1}]
    refused(r, "linux.uidMappings[0].size", "must be set")
    refused(with_("linux.uidMappings", [{"containerID": 0, "hostID": 0, "size": 1}]),
            "linux.uidMappings", "user namespace")


# --- mounts -----------------------------------------------------------------------------------

def test_mount_options_to_flags():
    b = bundle
    flags, prop, data = b.parse_mount_options(
        ["rbind", "ro", "nosuid", "nodev", "noexec", "noatime", "rslave", "private",
         "size=1m", "mode=755"])
    assert flags == b.MS_BIND | b.MS_REC | b.MS_RDONLY | b.MS_NOSUID | b.MS_NODEV | \
        b.MS_NOEXEC | b.MS_NOATIME
    assert prop == (b.MS_SLAVE | b.MS_REC, b.MS_PRIVATE)
    assert data == "size=1m,mode=755"
    # a later option overrides an earlier one (runc's order)
    assert b.parse_mount_options(["ro", "rw"])[0] == 0
    assert b.parse_mount_options(["nosuid", "suid", "dev", "exec"])[0] == 0
    assert b.parse_mount_options(["sync", "dirsync", "mand", "remount", "strictatime",
                                  "relatime", "nodiratime", "lazytime", "silent", "acl",
                                  "iversion"])[0] == \
        b.MS_SYNCHRONOUS | b.MS_DIRSYNC | b.MS_MANDLOCK | b.MS_REMOUNT | b.MS_STRICTATIME | \
        b.MS_RELATIME | b.MS_NODIRATIME | b.MS_LAZYTIME | b.MS_SILENT | b.MS_POSIXACL | \
        b.MS_I_VERSION


@pytest.mark.parametrize("name", sorted(bundle.MOUNT_FLAGS))
def test_every_mount_flag_option_round_trips(name):
    on, flag = bundle.MOUNT_FLAGS[name]
    s = spec(mounts=[{"destination": "/x", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", name]}])
    if name in ("bind", "rbind"):
        s["mounts"][0]["source"] = "/src"
    m = conv(s).config.mount_config.mounts[0]
    expect = (bundle.MS_NOSUID | flag) if on else (bundle.MS_NOSUID & ~flag)
    if name in ("bind", "rbind"):
        assert m.type == "bind"
    assert m.flags == expect
    assert config.loads(config.dumps(conv(s).config)).mount_config.mounts[0] == m


@pytest.mark.parametrize("name", sorted(bundle.PROPAGATION))
def test_every_propagation_option(name):
    s = spec(mounts=[{"destination": "/x", "type": "bind", "source": "/src",
                      "options": ["rbind", name]}])
    m = conv(s).config.mount_config.mounts[0]
    assert m.propagation == (bundle.PROPAGATION[name],)
    s = spec(linux=dict(spec()["linux"], rootfsPropagation=name))
    assert conv(s).config.mount_config.rootfs_propagation == bundle.PROPAGATION[name]


def test_recursive_attributes():
    s = spec(mounts=[{"destination": "/x", "type": "bind", "source": "/s",
                      "options": ["rbind", "rro", "rnosuid", "rnoatime", "rexec"]}])
    m = conv(s).config.mount_config.mounts[0]
    # new = (old & ~clr) | set (mount_setattr(2)); the atime mode with the whole mask cleared
    assert (m.rec_attr_set, m.rec_attr_clr) == (0x1 | 0x2 | 0x10, 0x70 | 0x8)
    assert m.flags == bundle.MS_BIND | bundle.MS_REC  # not mount(2) flags
    s["mounts"][0]["options"] += ["rrw", "rstrictatime"]
    m = conv(s).config.mount_config.mounts[0]
    assert (m.rec_attr_set, m.rec_attr_clr) == (0x2 | 0x20, 0x1 | 0x70 | 0x8)
    for name, (on, off) in bundle.RECURSIVE_ATTRS.items():
        assert off & 0x70 in (0, 0x70), name  # never a part of the atime mask


def test_tmpcopyup():
    s = spec(mounts=[{"destination": "/x", "type": "tmpfs", "source": "tmpfs",
                      "options": ["tmpcopyup", "ro", "mode=755"]}])
    m = conv(s).config.mount_config.mounts[0]
    assert m.copy_up and m.data == "mode=755" and m.flags == bundle.MS_RDONLY


def test_bind_sources_are_relative_to_the_bundle():
    s = spec(mounts=[{"destination": "/data", "type": "none", "source": "vol",
                      "options": ["bind"]}])
    m = conv(s).config.mount_config.mounts[0]
    assert (m.type, m.source) == ("bind", BUNDLE + "/vol")


def test_mount_errors():
    refused(spec(mounts=[{"destination": "rel", "type": "tmpfs"}]), "mounts[0].destination",
            "absolute")
    refused(spec(mounts=[{"destination": "/x", "type": "none", "source": "x"}]),
            "mounts[0].type", "filesystem type")
    refused(spec(mounts=[{"destination": "/x", "type": "bind"}]), "mounts[0].source",
            "needs a source")
    refused(spec(mounts=[{"destination": "/x", "type": "proc", "options": ["tmpcopyup"]}]),
            "mounts[0].options", "tmpcopyup is for a tmpfs")
    refused(spec(mounts=[{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}]),
            "mounts[0].options[0]", "not supported")
    refused(spec(mounts=[{"destination": "/x", "type": "tmpfs",
                          "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}]),
            "mounts[0].uidMappings", "not supported")
    refused(spec(mounts={}), "mounts", "list")
    refused(spec(mounts=[{"destination": "/x", "type": "tmpfs", "options": "ro"}]),
            "mounts[0].options", "list")


def test_mounts_need_a_mount_namespace():
    s = with_("linux.namespaces", [{"type": "pid"}], spec(hostname=None))
    refused(s, "linux.namespaces", "mount namespace")
    s = spec(mounts=[], root={"path": "rootfs"}, hostname=None)
    s["linux"] = {"namespaces": [{"type": "pid"}]}
    assert conv(s).config.mount_config is None


def test_masked_and_readonly_paths():
    s = with_("linux.maskedPaths", ["/proc/kcore"], with_("linux.readonlyPaths", []))
    cfg = conv(s).config
    assert cfg.masked_paths == ("/proc/kcore",)
    assert cfg.readonly_paths == ()
    refused(with_("linux.maskedPaths", ["proc"]), "linux.maskedPaths[0]", "absolute")


def test_devices():
    s = with_("linux.devices", [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20666,
         "uid": 0, "gid": 0},
        {"path": "/dev/u", "type": "u", "major": 1, "minor": 3},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660},
        {"path": "/dev/fifo", "type": "p"},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "uid": 7}])
    nodes = {d.path: d for d in conv(s).config.mount_config.device_nodes}
    assert nodes["/dev/fuse"].type == ord("c") and nodes["/dev/fuse"].file_mode == 0o666
    assert nodes["/dev/u"].type == ord("c") and nodes["/dev/u"].file_mode == 0o666
    assert nodes["/dev/sda"].type == ord("b") and nodes["/dev/sda"].file_mode == 0o660
    assert nodes["/dev/fifo"].type == ord("p")
    assert nodes["/dev/null"].uid == 7  # the spec's entry replaces the default one
    assert {"/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom"} <= set(nodes)
    refused(with_("linux.devices", [{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}]),
            "linux.devices[0].type")
    refused(with_("linux.devices", [{"path": "/dev/x", "type": "c", "minor": 1}]),
            "linux.devices[0].major", "must be set")
    refused(with_("linux.devices", [{"path": "/etc/x", "type": "c", "major": 1, "minor": 1}]),
            "linux.devices[0].path", "under /dev")


def test_sysctl():
    cfg = conv(with_("linux.sysctl", {"net.ipv4.ip_forward": "1",
                                      "kernel.shmmax": "100"})).config
    assert cfg.sysctl == ("kernel.shmmax=100", "net.ipv4.ip_forward=1")
    refused(with_("linux.sysctl", {"vm.swappiness": "1"}), "linux.sysctl[0]", "host")
    no_net = with_("linux.namespaces", [{"type": "mount"}], spec(hostname=None))
    refused(with_("linux.sysctl", {"net.ipv4.ip_forward": "1"}, no_net), "linux.sysctl[0]",
            "NEWNET")
    refused(with_("linux.sysctl", {"net.ipv4.ip_forward": 1}), "linux.sysctl.net.ipv4.ip_forward",
            "string")


def test_personality():
    assert conv(with_("linux.personality", {"domain": "LINUX32"})).config.personality == \
        "LINUX32"
    refused(with_("linux.personality", {"domain": "SVR4"}), "linux.personality.domain")
    refused(with_("linux.personality", {"domain": "LINUX", "flags": ["X"]}),
            "linux.personality.flags")


def test_seccomp():
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    cfg = conv(with_("linux.seccomp", prof)).config
    assert cfg.seccomp.defaultAction == "SCMP_ACT_ALLOW"
    with pytest.raises(ConfigError) as e:
        conv(with_("linux.seccomp", {"defaultAction": "SCMP_ACT_NOPE"}))
    assert e.value.field.startswith("linux.seccomp")


# --- cgroups ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path,parent,name", [
    ("/a/b/c", "/a/b", "c"), ("/c", "/", "c"), ("a/b", "a", "b"), ("c", "", "c"),
    ("//a//b/", "/a", "b"), ("./a/./b", "a", "b")])
def test_cgroups_path_cgroupfs(path, parent, name):
    cg = conv(with_("linux.cgroupsPath", path)).config.cgroups
    assert (cg.parent, cg.name, cg.driver) == (parent, name, "")


def test_cgroups_path_default_and_errors():
    cg = conv(spec()).config.cgroups
    assert (cg.parent, cg.name) == ("", "")  # the container's id below our own cgroup
    refused(with_("linux.cgroupsPath", "/a/../b"), "linux.cgroupsPath", "..")
    refused(with_("linux.cgroupsPath", "/"), "linux.cgroupsPath")


def test_cgroups_path_systemd():
    cg = conv(with_("linux.cgroupsPath", "machine.slice:libpod:abc"),
              systemd_cgroup=True).config.cgroups
    assert (cg.driver, cg.slice, cg.scope_prefix, cg.name) == \
        ("systemd", "machine.slice", "libpod", "abc")
    refused(with_("linux.cgroupsPath", "/a/b"), "linux.cgroupsPath", "slice:prefix:name",
            systemd_cgroup=True)
    assert conv(spec(), systemd_cgroup=True).config.cgroups.driver == "systemd"


def test_resources_go_through_the_converter_with_the_path():
    s = with_("linux.cgroupsPath", "/a/b", with_("linux.resources", {
        "memory": {"limit": 1 << 26}, "pids": {"limit": 50}, "cpu": {"shares": 512}}))
    cg = conv(s).config.cgroups
    assert (cg.parent, cg.name, cg.memory, cg.pids_limit, cg.cpu_shares) == \
        ("/a", "b", 1 << 26, 50, 512)
    assert cg.allowed_devices == ()  # no rules: the runtime's defaults (_plan_cgroups)
    cg = conv(spec()).config.cgroups  # runc spec's deny-all, then runc's default devices
    assert cg.allowed_devices and not cg.allow_all_devices
    refused(with_("linux.resources", {"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness")
    refused(with_("linux.resources", {"rdma": {"mlx": {"hcaHandles": 1}}}),
            "linux.resources.rdma")
    cg = conv(with_("linux.resources", {"pids": {"limit": 7}}), systemd_cgroup=True) \
        .config.cgroups
    assert (cg.driver, cg.pids_limit) == ("systemd", 7)


# --- hooks and annotations --------------------------------------------------------------------

def test_hooks():
    hooks = {name: [{"path": "/bin/hook-" + name, "args": ["h", name], "env": ["A=1"],
                     "timeout": 5}] for name in bundle.HOOK_NAMES}
    hooks["prestart"].append({"path": "/bin/second"})
    b = conv(spec(hooks=hooks))
    assert b.hooks["poststop"] == (bundle.Hook("/bin/hook-poststop", ("h", "poststop"),
                                               ("A=1",), 5),)
    assert b.hooks["prestart"][1] == bundle.Hook("/bin/second", (), (), None)
    refused(spec(hooks={"prestart": [{"path": "rel"}]}), "hooks.prestart[0].path", "absolute")
    refused(spec(hooks={"prestart": [{"path": "/x", "timeout": 0}]}),
            "hooks.prestart[0].timeout")
    refused(spec(hooks={"poststart": [{}]}), "hooks.poststart[0].path", "must be set")


def test_annotations():
    b = conv(spec(annotations={"org.example.k": "v", "a": ""}))
    assert b.annotations == {"org.example.k": "v", "a": ""}
    assert b.config.labels == ("a=", "org.example.k=v")
    refused(spec(annotations={"k": 1}), "annotations.k", "string")


# --- round trip through minins's own JSON ------------------------------------------------------

def test_model_round_trips():
    s = spec(hostname="h", domainname="d", annotations={"k": "v"})
    s["process"]["user"] = {"uid": 1, "gid": 2, "umask": 0o22, "additionalGids": [3]}
    s["process"]["oomScoreAdj"] = 100
    s["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    s["linux"]["sysctl"] = {"kernel.shmmax": "1"}
    s["linux"]["personality"] = {"domain": "LINUX"}
    s["linux"]["rootfsPropagation"] = "rshared"
    s["linux"]["devices"] = [{"path": "/dev/fifo", "type": "p"}]
    cfg = conv(s).config
    again = config.loads(config.dumps(cfg))
    assert again == cfg


# --- fuzz -------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 65, 2 ** 65) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)

_KEYS = ["process.args", "process.env", "process.cwd", "process.user", "process.user.uid",
         "process.capabilities", "process.capabilities.bounding", "process.rlimits",
         "process.terminal", "process.consoleSize", "process.oomScoreAdj", "root", "root.path",
         "mounts", "hostname", "domainname", "hooks", "hooks.prestart", "annotations",
         "linux", "linux.namespaces", "linux.uidMappings", "linux.devices",
         "linux.cgroupsPath", "linux.sysctl", "linux.maskedPaths", "linux.seccomp",
         "linux.personality", "linux.rootfsPropagation", "linux.resources", "ociVersion",
         "process.user.umask", "process.apparmorProfile"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KEYS), _json), max_size=4), st.booleans())
def test_fuzz_bundle_or_config_error(changes, systemd):
    s = spec()
    for path, value in changes:
        try:
            s = with_(path, value, s)
        except (AttributeError, TypeError):
            continue  # a parent replaced by a non-object: the document as it stands
    try:
        b = conv(s, systemd_cgroup=systemd)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(b.config, config.Config)
    config.validate(b.config)


_option = st.sampled_from(sorted(bundle.MOUNT_FLAGS) + sorted(bundle.PROPAGATION)
                          + sorted(bundle.RECURSIVE_ATTRS)
                          + ["size=1m", "mode=1777", "x", "", "tmpcopyup"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries(
    {"destination": st.sampled_from(["/a", "/proc", "rel", "/dev/x", ""]),
     "type": st.sampled_from(["tmpfs", "bind", "none", "proc", "", "cgroup"]),
     "source": st.sampled_from(["", "src", "/abs"]),
     "options": st.lists(_option, max_size=5)}), max_size=4))
def test_fuzz_mounts(mounts):
    try:
        b = conv(spec(mounts=mounts))
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    for m in b.config.mount_config.mounts:
        assert m.oci and m.destination.startswith("/")
        assert (m.type == "bind") == bool(m.flags & bundle.MS_BIND)
    assert config.loads(config.dumps(b.config)) == b.config


def test_bundle_paths_are_absolute(tmp_path):
    here = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        b = bundle.from_spec(spec(), ".", lsm=NO_LSM)
    finally:
        os.chdir(here)
    assert b.bundle == str(tmp_path) and b.rootfs == str(tmp_path / "rootfs")


# --- a process of its own (runc exec --process) -------------------------------------------------

def test_from_process():
    base = conv(spec()).config
    proc = {"args": ["/bin/ls", "-l"], "cwd": "/tmp", "env": ["A=1"], "terminal": True,
            "consoleSize": {"height": 10, "width": 20},
            "user": {"uid": 5, "gid": 6, "additionalGids": [7]},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]},
            "noNewPrivileges": False}
    cfg, args, size = bundle.from_process(proc, base, lsm=NO_LSM)
    assert args == ("/bin/ls", "-l") and size == (10, 20)
    assert (cfg.working_dir, cfg.environment, cfg.tty) == ("/tmp", ("A=1",), True)
    assert (cfg.user, cfg.additional_groups) == ("5:6", (7,))
    assert cfg.capabilities == ("CAP_KILL",) and not cfg.no_new_privileges
    assert cfg.hostname == base.hostname and cfg.mount_config == base.mount_config
    with pytest.raises(ConfigError) as e:
        bundle.from_process(dict(proc, args=[]), base, lsm=NO_LSM, path="process.json")
    assert e.value.field == "process.json.args"
    with pytest.raises(ConfigError) as e:
        bundle.from_process(dict(proc, cwd="rel"), base, lsm=NO_LSM)
    assert e.value.field == "process.cwd"


def test_from_process_without_capabilities_or_rlimits_keeps_the_containers():
    """libcontainer's exec: a process object that names no capabilities or rlimits runs with
    the container's, never with every capability root has."""
    base = conv(spec()).config
    assert base.capabilities and len(base.capabilities) < 20 and base.rlimits
    cfg, _a, _s = bundle.from_process({"args": ["/bin/true"], "cwd": "/"}, base, lsm=NO_LSM)
    for key in ("capabilities", "effective_capabilities", "permitted_capabilities",
                "inheritable_capabilities", "ambient_capabilities", "rlimits"):
        assert getattr(cfg, key) == getattr(base, key), key


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["args", "env", "cwd", "user", "terminal",
                                        "capabilities", "rlimits", "noNewPrivileges",
                                        "consoleSize", "oomScoreAdj", "apparmorProfile"]),
                       _json, max_size=4))
def test_fuzz_from_process(changes):
    base = conv(spec()).config
    proc = dict(spec()["process"], **changes)
    try:
        cfg, args, size = bundle.from_process(proc, base, lsm=NO_LSM)
    except ConfigError as e:
        assert "\n" not in str(e) and e.field.startswith("process")
        return
    assert args and config.validate(cfg) is cfg


def _paths(node, prefix=()):
    """Every path into the decoded JSON ``node``: keys of objects, indexes of lists."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


_RICH = spec(domainname="d", annotations={"a": "b"},
             hooks={"prestart": [{"path": "/h", "args": ["h"], "env": ["A=1"], "timeout": 1}]})
_RICH["process"]["user"]["umask"] = 0o22
_RICH["process"]["oomScoreAdj"] = 1
_RICH["process"]["consoleSize"] = {"height": 1, "width": 1}
_RICH["linux"].update(sysctl={"kernel.shmmax": "1"}, personality={"domain": "LINUX"},
                      rootfsPropagation="rslave", cgroupsPath="/a/b",
                      devices=[{"path": "/dev/f", "type": "p"}],
                      seccomp={"defaultAction": "SCMP_ACT_ALLOW"},
                      resources={"pids": {"limit": 5}, "memory": {"limit": 1 << 24}})
_RICH_PATHS = _paths(_RICH)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_RICH_PATHS), _json), min_size=1, max_size=3),
       st.booleans())
def test_fuzz_any_node_of_a_rich_spec(changes, systemd):
    """Any node of a spec that uses every field, replaced by any JSON value (or removed):
    a Bundle or a one-line ConfigError."""
    s = copy.deepcopy(_RICH)
    for path, value in changes:
        node = s
        try:
            for part in path[:-1]:
                node = node[part]
            if not path:
                s = value
            elif value is None and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced that path
    try:
        b = conv(s, systemd_cgroup=systemd)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    config.validate(b.config)
    assert config.loads(config.dumps(b.config)) == b.config


def test_the_rich_spec_converts():
    cfg = conv(_RICH).config  # the fuzz above starts from a valid document
    assert cfg.cgroups.pids_limit == 5 and cfg.personality == "LINUX"
