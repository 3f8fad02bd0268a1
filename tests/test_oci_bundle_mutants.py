"""The OCI bundle loader (minins.oci.bundle) checked at its edges, against numbers written out
here from their sources, never read from the module's own tables: mount(2)'s MS_* flags
(<sys/mount.h>), mount_setattr(2)'s MOUNT_ATTR_* bits (linux/mount.h), the RLIMIT_* resource
numbers (asm-generic/resource.h), capability numbers (linux/capability.h), runc 1.1's
``runc spec`` document, and every numeric range at its exact edge (the last value taken and
the first refused, with the range the error names). Written so that a wrong line of the loader
(issue 17: a flipped comparison, a constant moved by one, a deleted statement) fails a test."""
import copy
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins import config
from minins.errors import ConfigError
from minins.oci import bundle
from test_oci_bundle import BUNDLE, NO_LSM, conv, refused, spec, with_  # noqa: F401

SELINUX = {"apparmor": False, "selinux": True}

# <sys/mount.h> (glibc; the same numbers as linux/mount.h), mount(2)
MS = {
    "RDONLY": 1, "NOSUID": 2, "NODEV": 4, "NOEXEC": 8, "SYNCHRONOUS": 16, "REMOUNT": 32,
    "MANDLOCK": 64, "DIRSYNC": 128, "NOSYMFOLLOW": 256, "NOATIME": 1024,
    "NODIRATIME": 2048, "BIND": 4096, "MOVE": 8192, "REC": 16384, "SILENT": 32768,
    "POSIXACL": 65536, "UNBINDABLE": 131072, "PRIVATE": 262144, "SLAVE": 524288,
    "SHARED": 1048576, "RELATIME": 2097152, "I_VERSION": 8388608,
    "STRICTATIME": 16777216, "LAZYTIME": 33554432,
}

# mount(8)'s option -> (sets the flag?, MS_ name); "defaults" sets nothing
OPTIONS = {
    "acl": (True, "POSIXACL"), "noacl": (False, "POSIXACL"),
    "async": (False, "SYNCHRONOUS"), "sync": (True, "SYNCHRONOUS"),
    "atime": (False, "NOATIME"), "noatime": (True, "NOATIME"),
    "bind": (True, "BIND"),
    "dev": (False, "NODEV"), "nodev": (True, "NODEV"),
    "diratime": (False, "NODIRATIME"), "nodiratime": (True, "NODIRATIME"),
    "dirsync": (True, "DIRSYNC"),
    "exec": (False, "NOEXEC"), "noexec": (True, "NOEXEC"),
    "iversion": (True, "I_VERSION"), "noiversion": (False, "I_VERSION"),
    "lazytime": (True, "LAZYTIME"), "nolazytime": (False, "LAZYTIME"),
    "loud": (False, "SILENT"), "silent": (True, "SILENT"),
    "mand": (True, "MANDLOCK"), "nomand": (False, "MANDLOCK"),
    "relatime": (True, "RELATIME"), "norelatime": (False, "RELATIME"),
    "strictatime": (True, "STRICTATIME"), "nostrictatime": (False, "STRICTATIME"),
    "remount": (True, "REMOUNT"),
    "ro": (True, "RDONLY"), "rw": (False, "RDONLY"),
    "suid": (False, "NOSUID"), "nosuid": (True, "NOSUID"),
    "symfollow": (False, "NOSYMFOLLOW"), "nosymfollow": (True, "NOSYMFOLLOW"),
}
PROPAGATION = {"private": MS["PRIVATE"], "shared": MS["SHARED"], "slave": MS["SLAVE"],
               "unbindable": MS["UNBINDABLE"]}

# linux/mount.h, mount_setattr(2)
ATTR_RDONLY, ATTR_NOSUID, ATTR_NODEV, ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
ATTR__ATIME, ATTR_RELATIME, ATTR_NOATIME, ATTR_STRICTATIME = 0x70, 0x0, 0x10, 0x20
ATTR_NODIRATIME, ATTR_NOSYMFOLLOW = 0x80, 0x200000
# runtime-spec 1.1's recursive options -> (MOUNT_ATTR_* set, MOUNT_ATTR_* cleared). An atime
# mode is set with the whole MOUNT_ATTR__ATIME mask cleared (the kernel refuses it otherwise).
REC = {
    "rro": (ATTR_RDONLY, 0), "rrw": (0, ATTR_RDONLY),
    "rnosuid": (ATTR_NOSUID, 0), "rsuid": (0, ATTR_NOSUID),
    "rnodev": (ATTR_NODEV, 0), "rdev": (0, ATTR_NODEV),
    "rnoexec": (ATTR_NOEXEC, 0), "rexec": (0, ATTR_NOEXEC),
    "rnodiratime": (ATTR_NODIRATIME, 0), "rdiratime": (0, ATTR_NODIRATIME),
    "rnosymfollow": (ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, ATTR_NOSYMFOLLOW),
    "rrelatime": (ATTR_RELATIME, ATTR__ATIME), "rnorelatime": (0, 0),
    "rnoatime": (ATTR_NOATIME, ATTR__ATIME), "ratime": (0, ATTR__ATIME),
    "rstrictatime": (ATTR_STRICTATIME, ATTR__ATIME), "rnostrictatime": (0, ATTR__ATIME),
}

# asm-generic/resource.h (getrlimit(2)), in the kernel's order
RLIMIT_NAMES = ["CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK",
                "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"]

# linux/capability.h, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40)
CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
             "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
             "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
             "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
             "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
             "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
             "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]

U32 = 4294967295
U64 = 18446744073709551615


def within(lo, hi):
    return "must be within %d..%d" % (lo, hi)


def mounts_of(*mounts):
    return conv(spec(mounts=list(mounts))).config.mount_config.mounts


def one_mount(options, type="tmpfs", source="tmpfs"):
    return mounts_of({"destination": "/x", "type": type, "source": source,
                      "options": list(options)})[0]


# --- mount(2) flags -----------------------------------------------------------------------------

def _expected_flags(options):
    """runc's parseMountOptions written out: a later option overrides an earlier one."""
    flags, data = 0, []
    for opt in options:
        if opt in OPTIONS:
            on, name = OPTIONS[opt]
            flags = flags | MS[name] if on else flags & ~MS[name]
        elif opt == "rbind":
            flags |= MS["BIND"] | MS["REC"]
        elif opt == "defaults":
            pass
        elif opt:
            data.append(opt)
    return flags, ",".join(data)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_each_option_sets_or_clears_the_kernels_flag(name):
    on, flag = OPTIONS[name]
    bit = MS[flag]
    assert bundle.parse_mount_options([name]) == ((bit if on else 0), (), "")
    assert bundle.parse_mount_options(["x=1", name], "o") == ((bit if on else 0), (), "x=1")
    # after every option that sets a flag, only its own bit changes
    setters = sorted(o for o, (s, _f) in OPTIONS.items() if s)
    every = 0
    for o in setters:
        every |= MS[OPTIONS[o][1]]
    assert bundle.parse_mount_options(setters)[0] == every
    assert bundle.parse_mount_options(setters + [name])[0] == (every | bit if on
                                                               else every & ~bit)


def test_defaults_and_rbind():
    assert bundle.parse_mount_options(["defaults"]) == (0, (), "")
    assert bundle.parse_mount_options(["ro", "defaults"]) == (MS["RDONLY"], (), "")
    assert bundle.parse_mount_options(["rbind"]) == (MS["BIND"] | MS["REC"], (), "")
    assert bundle.parse_mount_options(["rbind", "bind"])[0] == MS["BIND"] | MS["REC"]


@pytest.mark.parametrize("name", sorted(PROPAGATION))
def test_propagation_options_are_the_kernels_numbers(name):
    flag = PROPAGATION[name]
    assert bundle.parse_mount_options([name]) == (0, (flag,), "")
    assert bundle.parse_mount_options(["r" + name]) == (0, (flag | MS["REC"],), "")
    s = spec(linux=dict(spec()["linux"], rootfsPropagation="r" + name))
    assert conv(s).config.mount_config.rootfs_propagation == flag | MS["REC"]
    s = spec(linux=dict(spec()["linux"], rootfsPropagation=name))
    assert conv(s).config.mount_config.rootfs_propagation == flag


_opt = st.sampled_from(sorted(OPTIONS) + ["rbind", "defaults", "size=1m", "mode=755", "",
                                          "uid=5"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_opt, max_size=12))
def test_any_option_list_gives_runcs_flags(options):
    flags, data = _expected_flags(options)
    assert bundle.parse_mount_options(options) == (flags, (), data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted(PROPAGATION) + ["r" + p for p in PROPAGATION]
                                + ["ro", "mode=1"]), max_size=6))
def test_propagation_changes_are_kept_in_order(options):
    want = tuple(PROPAGATION[o] if o in PROPAGATION else PROPAGATION[o[1:]] | MS["REC"]
                 for o in options if o not in ("ro", "mode=1"))
    got = bundle.parse_mount_options(options)
    assert got[1] == want
    assert got[0] == (MS["RDONLY"] if "ro" in options else 0)
    assert got[2] == ",".join(o for o in options if o == "mode=1")


def test_refused_options_name_their_index():
    with pytest.raises(ConfigError) as e:
        bundle.parse_mount_options(["ro", "", "ridmap"], "mounts[3].options")
    assert e.value.field == "mounts[3].options[2]"
    assert e.value.message == "ridmap: ID-mapped mounts are not supported"
    with pytest.raises(ConfigError) as e:
        bundle.parse_mount_options(["copy-symlink"])
    assert (e.value.field, e.value.message) == (
        "options[0]", "copy-symlink: crun's extension is not supported")


def test_empty_options_are_no_data():
    assert bundle.parse_mount_options(["", "a", "", "b", ""]) == (0, (), "a,b")


# --- mount_setattr(2) attributes ----------------------------------------------------------------

def _expected_attrs(options):
    set_, clr = 0, 0
    for opt in options:
        if opt in REC:
            on, off = REC[opt]
            set_ = (set_ & ~off) | on
            clr |= off
    return set_, clr


@pytest.mark.parametrize("name", sorted(REC))
def test_each_recursive_option_is_its_attribute(name):
    m = one_mount([name, "nosuid"])
    assert (m.rec_attr_set, m.rec_attr_clr) == REC[name]
    assert m.flags == MS["NOSUID"]  # a recursive option is no mount(2) flag and no data
    assert m.data == ""


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(REC) + ["ro", "size=1m"]), max_size=8))
def test_any_recursive_option_list(options):
    m = one_mount(options)
    assert (m.rec_attr_set, m.rec_attr_clr) == _expected_attrs(options)
    assert m.flags == (MS["RDONLY"] if "ro" in options else 0)
    assert m.data == ",".join(o for o in options if o == "size=1m")


def test_recursive_atime_modes_replace_each_other():
    m = one_mount(["rnoatime", "rstrictatime"])
    assert (m.rec_attr_set, m.rec_attr_clr) == (ATTR_STRICTATIME, ATTR__ATIME)
    m = one_mount(["rstrictatime", "rrelatime"])
    assert (m.rec_attr_set, m.rec_attr_clr) == (ATTR_RELATIME, ATTR__ATIME)
    m = one_mount(["rro", "rnoexec", "rrw"])
    assert (m.rec_attr_set, m.rec_attr_clr) == (ATTR_NOEXEC, ATTR_RDONLY)


# --- the mounts list ----------------------------------------------------------------------------

def test_tmpcopyup_is_removed_and_marks_the_tmpfs():
    m = one_mount(["tmpcopyup", "nodev", "tmpcopyup", "size=1k"])
    assert (m.copy_up, m.flags, m.data) == (True, MS["NODEV"], "size=1k")
    m = one_mount(["nodev"])
    assert m.copy_up is False
    refused(spec(mounts=[{"destination": "/x", "type": "proc", "source": "proc",
                          "options": ["tmpcopyup"]}]),
            "mounts[0].options", "tmpcopyup is for a tmpfs, not 'proc'")


def test_mappings_on_a_mount_are_refused():
    for key in ("uidMappings", "gidMappings"):
        refused(spec(mounts=[{"destination": "/x", "type": "tmpfs", "source": "t",
                              key: []}]),
                "mounts[0].uidMappings", "ID-mapped mounts are not supported")


def test_bind_by_option_or_by_type():
    m = one_mount(["bind"], type="none", source="vol")
    assert (m.type, m.flags, m.source) == ("bind", MS["BIND"], BUNDLE + "/vol")
    m = one_mount(["ro"], type="bind", source="/abs/../abs2/./v")
    assert (m.type, m.flags, m.source) == ("bind", MS["BIND"] | MS["RDONLY"], "/abs2/v")
    m = one_mount(["rbind"], type="ext4", source="../v")
    assert (m.type, m.flags, m.source) == ("bind", MS["BIND"] | MS["REC"], "/bundles/v")
    refused(spec(mounts=[{"destination": "/x", "type": "bind", "source": ""}]),
            "mounts[0].source", "a bind mount needs a source")
    refused(spec(mounts=[{"destination": "/x", "type": "none", "options": ["rbind"]}]),
            "mounts[0].source", "a bind mount needs a source")


def test_a_filesystem_mount_keeps_its_source_and_type():
    m = one_mount(["ro"], type="tmpfs", source="rel/../src")
    assert (m.type, m.source, m.flags) == ("tmpfs", "rel/../src", MS["RDONLY"])
    refused(spec(mounts=[{"destination": "/x", "source": "s"}]), "mounts[0].type",
            "must name a filesystem type (or use the bind option), not ''")
    refused(spec(mounts=[{"destination": "/x", "type": "none", "source": "s"}]),
            "mounts[0].type", "not 'none'")


def test_mount_fields_are_kept_in_order():
    ms = mounts_of({"destination": "/a", "type": "tmpfs", "source": "t1", "options": ["ro"]},
                   {"destination": "/b", "type": "proc", "source": "proc"},
                   {"destination": "/c", "type": "bind", "source": "/s",
                    "options": ["rprivate", "rro"]})
    assert [(m.destination, m.type, m.oci) for m in ms] == [
        ("/a", "tmpfs", True), ("/b", "proc", True), ("/c", "bind", True)]
    assert ms[2].propagation == (MS["PRIVATE"] | MS["REC"],)
    assert (ms[2].rec_attr_set, ms[2].rec_attr_clr) == (ATTR_RDONLY, 0)
    refused(spec(mounts=[{"destination": "/a", "type": "tmpfs"}, "x"]), "mounts[1]",
            "must be an object")
    refused(spec(mounts=[{"destination": "/a", "type": "tmpfs", "options": [1]}]),
            "mounts[0].options[0]")


# --- devices ------------------------------------------------------------------------------------

def _devices(*devs):
    return {d.path: d for d in conv(with_("linux.devices", list(devs))).config
            .mount_config.device_nodes}


def test_the_six_default_nodes_are_always_there():
    nodes = _devices()
    # runc's default devices (libcontainer/specconv): char devices, mode 0666
    want = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7), "/dev/tty": (5, 0),
            "/dev/random": (1, 8), "/dev/urandom": (1, 9)}
    assert {p: (d.major_number, d.minor_number) for p, d in nodes.items()} == want
    assert {d.type for d in nodes.values()} == {ord("c")}


def test_device_numbers_at_their_edges():
    dev = {"path": "/dev/e", "type": "b", "major": 4095, "minor": 1048575, "fileMode": 0,
           "uid": U32 - 1, "gid": U32 - 1}
    d = _devices(dev)["/dev/e"]
    assert (d.type, d.major_number, d.minor_number) == (ord("b"), 4095, 1048575)
    assert (d.file_mode, d.uid, d.gid, d.cgroup_permissions) == (0, U32 - 1, U32 - 1, "rwm")
    # 2^32 - 1 is a uid_t the loader takes and minins's validation refuses ((uid_t) -1 means
    # "no change" to chown(2)), under the name of the node in the whole list (after the six)
    for key in ("uid", "gid"):
        refused(with_("linux.devices", [dict(dev, **{key: U32})]),
                "linux.devices[6].%s" % key, "must be within 0..4294967294")
    d = _devices(dict(dev, major=0, minor=0))["/dev/e"]
    assert (d.major_number, d.minor_number) == (0, 0)
    for key, lo, hi in (("major", 0, 4095), ("minor", 0, 1048575), ("uid", 0, U32),
                        ("gid", 0, U32), ("fileMode", 0, 0o177777)):
        for bad in (lo - 1, hi + 1):
            refused(with_("linux.devices", [dict(dev, **{key: bad})]),
                    "linux.devices[0].%s" % key, within(lo, hi))


def test_device_file_mode_keeps_the_permission_bits():
    base = {"path": "/dev/m", "type": "c", "major": 1, "minor": 1}
    for mode, want in ((0o177777, 0o7777), (0o20666, 0o666), (0o7777, 0o7777), (0o10000, 0),
                       (0o4755, 0o4755), (1, 1)):
        assert _devices(dict(base, fileMode=mode))["/dev/m"].file_mode == want, oct(mode)
    assert _devices(base)["/dev/m"].file_mode == 0o666  # runc's default
    d = _devices(base)["/dev/m"]
    assert (d.uid, d.gid) == (0, 0)


def test_device_types():
    nodes = _devices({"path": "/dev/c", "type": "c", "major": 1, "minor": 2},
                     {"path": "/dev/u", "type": "u", "major": 3, "minor": 4},
                     {"path": "/dev/b", "type": "b", "major": 5, "minor": 6},
                     {"path": "/dev/p", "type": "p"},
                     {"path": "/dev/p2", "type": "p", "major": 7, "minor": 8})
    assert [(p, chr(nodes[p].type), nodes[p].major_number, nodes[p].minor_number)
            for p in ("/dev/c", "/dev/u", "/dev/b", "/dev/p", "/dev/p2")] == [
        ("/dev/c", "c", 1, 2), ("/dev/u", "c", 3, 4), ("/dev/b", "b", 5, 6),
        ("/dev/p", "p", 0, 0), ("/dev/p2", "p", 7, 8)]
    for kind in ("c", "b", "u"):
        refused(with_("linux.devices", [{"path": "/dev/x", "type": kind, "major": 1}]),
                "linux.devices[0].minor", "must be set")
        refused(with_("linux.devices", [{"path": "/dev/x", "type": kind, "minor": 1}]),
                "linux.devices[0].major", "must be set")
    refused(with_("linux.devices", [{"path": "/dev/x", "type": "", "major": 1, "minor": 1}]),
            "linux.devices[0].type", "must be c, b, u or p, not ''")
    refused(with_("linux.devices", [{"path": "/dev/x", "type": "cb", "major": 1, "minor": 1}]),
            "linux.devices[0].type")


@pytest.mark.parametrize("path,ok", [
    ("/dev/x", True), ("/dev/a/b", True), ("/dev/..x", True), ("/dev/x..", True),
    ("/dev/.x", True), ("/dev/x/.hidden", True),
    ("/dev/../etc/x", False), ("/dev/x/..", False), ("/dev/./x", False), ("/dev/x/.", False),
    ("/dev/a/../b", False), ("/devx/y", False), ("/dev", False), ("/etc/dev/x", False),
])
def test_device_paths_stay_under_dev(path, ok):
    s = with_("linux.devices", [{"path": path, "type": "c", "major": 1, "minor": 1}])
    if ok:
        assert path in {d.path for d in conv(s).config.mount_config.device_nodes}
    else:
        refused(s, "linux.devices[0].path", "must be an absolute path under /dev")


def test_a_relative_device_path_is_named():
    refused(with_("linux.devices", [{"path": "dev/x", "type": "c", "major": 1, "minor": 1}]),
            "linux.devices[0].path", "must be an absolute path, not 'dev/x'")


# --- the mount namespace, labels and propagation ---------------------------------------------

def _no_mountns(**linux):
    s = spec(mounts=[], root={"path": "rootfs"}, hostname=None)
    s["linux"] = dict({"namespaces": [{"type": "pid"}]}, **linux)
    return s


def test_mount_settings_each_need_a_mount_namespace():
    assert conv(_no_mountns()).config.mount_config is None
    msg = "mounts, root.readonly and the mount settings need a mount namespace"
    refused(_no_mountns(rootfsPropagation="private"), "linux.namespaces", msg)
    refused(with_("root.readonly", True, _no_mountns()), "linux.namespaces", msg)
    refused(spec(mounts=[{"destination": "/x", "type": "tmpfs"}], root={"path": "rootfs"},
                 hostname=None, linux={"namespaces": [{"type": "pid"}]}),
            "linux.namespaces", msg)
    refused(_no_mountns(mountLabel="system_u:object_r:t:s0"), "linux.namespaces", msg,
            lsm=SELINUX)
    # without SELinux the label is dropped first, so it needs nothing
    assert conv(_no_mountns(mountLabel="l")).config.mount_config is None


def test_mount_config_fields():
    mc = conv(spec()).config.mount_config
    assert (mc.readonly_fs, mc.mount_label, mc.system_mounts, mc.rootfs_propagation) == \
        (True, "", False, 0)
    mc = conv(with_("root.readonly", False)).config.mount_config
    assert mc.readonly_fs is False
    mc = conv(with_("linux.mountLabel", "m"), lsm=SELINUX).config.mount_config
    assert mc.mount_label == "m"


def test_rootfs_propagation_errors():
    names = "private, rprivate, rshared, rslave, runbindable, shared, slave, unbindable"
    refused(with_("linux.rootfsPropagation", "bogus"), "linux.rootfsPropagation",
            "must be one of %s, not 'bogus'" % names)
    assert conv(with_("linux.rootfsPropagation", "")).config.mount_config \
        .rootfs_propagation == 0


# --- process ------------------------------------------------------------------------------------

def test_rlimit_numbers_are_the_kernels():
    s = with_("process.rlimits", [{"type": "RLIMIT_" + n, "hard": 100 + i, "soft": i}
                                  for i, n in enumerate(RLIMIT_NAMES)])
    got = conv(s).config.rlimits
    assert [(r.type, r.soft, r.hard) for r in got] == [(i, i, 100 + i)
                                                      for i in range(len(RLIMIT_NAMES))]
    assert len(bundle.RLIMITS) == 16  # RLIM_NLIMITS
    import resource  # the C library's numbers, where Python has them

    for name in RLIMIT_NAMES:
        if hasattr(resource, "RLIMIT_" + name):
            assert getattr(resource, "RLIMIT_" + name) == RLIMIT_NAMES.index(name), name


def test_rlimit_values_at_their_edges():
    def rl(**kw):
        return with_("process.rlimits", [dict({"type": "RLIMIT_CORE"}, **kw)])

    got = conv(rl(hard=U64, soft=U64)).config.rlimits
    assert [(r.type, r.hard, r.soft) for r in got] == [(4, U64, U64)]
    got = conv(rl(hard=0, soft=0)).config.rlimits
    assert [(r.hard, r.soft) for r in got] == [(0, 0)]
    got = conv(rl(hard=7, soft=7)).config.rlimits  # soft may equal hard
    assert [(r.hard, r.soft) for r in got] == [(7, 7)]
    refused(rl(hard=U64 + 1, soft=0), "process.rlimits[0].hard", within(0, U64))
    refused(rl(hard=-1, soft=0), "process.rlimits[0].hard", within(0, U64))
    refused(rl(hard=U64, soft=U64 + 1), "process.rlimits[0].soft", within(0, U64))
    refused(rl(hard=1, soft=-1), "process.rlimits[0].soft", within(0, U64))
    refused(rl(hard=6, soft=7), "process.rlimits[0].soft", "must not exceed hard (6)")
    refused(rl(soft=7), "process.rlimits[0].hard", "must be set")
    refused(rl(hard=7), "process.rlimits[0].soft", "must be set")
    refused(with_("process.rlimits", [{"hard": 1, "soft": 1}]), "process.rlimits[0].type",
            "unknown resource ''")
    refused(with_("process.rlimits", ["RLIMIT_CORE"]), "process.rlimits[0]",
            "must be an object")


def test_rlimits_listed_twice_and_kept_in_order():
    s = with_("process.rlimits", [{"type": "RLIMIT_NOFILE", "hard": 3, "soft": 2},
                                  {"type": "RLIMIT_CPU", "hard": 5, "soft": 4},
                                  {"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}])
    refused(s, "process.rlimits[2].type", "RLIMIT_NOFILE is listed twice")
    s["process"]["rlimits"].pop()
    got = conv(s).config.rlimits
    assert [(r.type, r.hard, r.soft) for r in got] == [(7, 3, 2), (0, 5, 4)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(RLIMIT_NAMES), st.integers(0, U64),
                          st.integers(0, U64)), max_size=5, unique_by=lambda t: t[0]))
def test_any_rlimits(items):
    s = with_("process.rlimits", [{"type": "RLIMIT_" + n, "hard": h, "soft": so}
                                  for n, h, so in items])
    bad = [i for i, (n, h, so) in enumerate(items) if so > h]
    if bad:
        refused(s, "process.rlimits[%d].soft" % bad[0], "must not exceed hard (%d)"
                % items[bad[0]][1])
        return
    got = conv(s).config.rlimits
    assert [(r.type, r.hard, r.soft) for r in got] == [
        (RLIMIT_NAMES.index(n), h, so) for n, h, so in items]


def test_user_ids_at_their_edges():
    cfg = conv(with_("process.user", {"uid": U32, "gid": U32, "additionalGids": [0, U32 - 1],
                                      "umask": 0o777})).config
    assert (cfg.user, cfg.additional_groups, cfg.umask) == ("%d:%d" % (U32, U32),
                                                           (0, U32 - 1), 0o777)
    cfg = conv(with_("process.user", {"umask": 0})).config
    assert (cfg.user, cfg.additional_groups, cfg.umask) == ("0:0", (), 0)
    assert conv(with_("process.user", {})).config.umask is None
    assert conv(with_("process.user", None)).config.user == "0:0"
    for key in ("uid", "gid"):
        for bad in (-1, U32 + 1):
            refused(with_("process.user." + key, bad), "process.user." + key, within(0, U32))
    for bad in (-1, U32 + 1):
        refused(with_("process.user.additionalGids", [1, bad]),
                "process.user.additionalGids[1]", within(0, U32))
    refused(with_("process.user.umask", -1), "process.user.umask", within(0, 0o777))
    refused(with_("process.user.umask", 0o1000), "process.user.umask", within(0, 0o777))


def test_oom_score_adj_at_its_edges():
    for v in (-1000, 1000, 0):
        assert conv(with_("process.oomScoreAdj", v)).config.oom_score_adj == v
    assert conv(spec()).config.oom_score_adj is None
    for bad in (-1001, 1001):
        refused(with_("process.oomScoreAdj", bad), "process.oomScoreAdj", within(-1000, 1000))


def test_console_size_at_its_edges():
    def size(**kw):
        return bundle.from_spec(with_("process.consoleSize", kw), BUNDLE, lsm=NO_LSM) \
            .console_size

    assert size(height=0, width=0) == (0, 0)
    assert size(height=65535, width=65535) == (65535, 65535)
    assert size(height=24, width=80) == (24, 80)
    assert conv(spec()).console_size is None
    for key, other in (("height", "width"), ("width", "height")):
        for bad in (-1, 65536):
            refused(with_("process.consoleSize", {key: bad, other: 1}),
                    "process.consoleSize." + key, within(0, 65535))
        refused(with_("process.consoleSize", {other: 1}), "process.consoleSize." + key,
                "must be set")
    refused(with_("process.consoleSize", [24, 80]), "process.consoleSize", "must be an object")


def test_env_entries():
    cfg = conv(with_("process.env", ["A=", "B==c", "C=d=e"])).config
    assert cfg.environment == ("A=", "B==c", "C=d=e")
    for i, bad in ((0, "A"), (0, "=x"), (0, "="), (1, "")):
        env = ["OK=1"] * i + [bad]
        refused(with_("process.env", env), "process.env[%d]" % i,
                "must be NAME=VALUE, not %r" % bad)


def test_cwd_and_terminal():
    cfg = conv(with_("process.cwd", "/w", with_("process.terminal", True))).config
    assert (cfg.working_dir, cfg.tty) == ("/w", True)
    assert conv(spec()).config.tty is False
    refused(with_("process.cwd", ""), "process.cwd", "must be set")
    refused(with_("process.cwd", None), "process.cwd", "must be set")
    refused(with_("process.cwd", "w"), "process.cwd", "must be an absolute path, not 'w'")
    refused(with_("process.terminal", "yes"), "process.terminal")


def test_default_capabilities_are_every_one_in_the_kernels_order():
    cfg = conv(with_("process.capabilities", None)).config
    assert list(cfg.capabilities) == CAP_NAMES
    for key in ("effective_capabilities", "permitted_capabilities",
                "inheritable_capabilities"):
        assert getattr(cfg, key) is None, key


@pytest.mark.parametrize("missing", ["bounding", "permitted", "inheritable"])
def test_ambient_needs_all_three_other_sets(missing):
    sets = {k: ["CAP_KILL", "CAP_CHOWN"] for k in ("bounding", "permitted", "inheritable",
                                                     "effective")}
    sets["ambient"] = ["CAP_KILL", "CAP_CHOWN"]
    assert conv(with_("process.capabilities", sets)).config.ambient_capabilities == \
        ("CAP_KILL", "CAP_CHOWN")
    sets[missing] = ["CAP_CHOWN"]
    assert conv(with_("process.capabilities", sets)).config.ambient_capabilities == \
        ("CAP_CHOWN",)


def test_capability_lists_name_their_index():
    refused(with_("process.capabilities.permitted", ["CAP_KILL", "CAP_NOPE"]),
            "process.capabilities.permitted[1]", "unknown capability 'CAP_NOPE'")
    refused(with_("process.capabilities.ambient", ["CAP_X"]),
            "process.capabilities.ambient[0]", "unknown capability")
    refused(with_("process.capabilities", "all"), "process.capabilities", "must be an object")


def test_lsm_state_defaults_to_the_hosts():
    from minins import security

    host = security.lsm_state()
    s = with_("linux.mountLabel", "m", with_("process.selinuxLabel", "l"))
    cfg = bundle.from_spec(s, BUNDLE).config
    want = ("l", "m") if host["selinux"] else ("", "")
    assert (cfg.process_label, cfg.mount_config.mount_label) == want
    s = with_("process.apparmorProfile", "unconfined")
    if host["apparmor"]:
        assert bundle.from_spec(s, BUNDLE).config.apparmor_profile == "unconfined"
    else:
        with pytest.raises(ConfigError) as e:
            bundle.from_spec(s, BUNDLE)
        assert e.value.field == "process.apparmorProfile"


def test_no_new_privileges():
    assert conv(with_("process.noNewPrivileges", None)).config.no_new_privileges is False
    assert conv(with_("process.noNewPrivileges", True)).config.no_new_privileges is True


# --- the rest of the document --------------------------------------------------------------------

def test_id_map_numbers_at_their_edges():
    r = bundle.default_spec(rootless=True, uid=1000, gid=1000)
    r["process"]["terminal"] = False
    r["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1},
                                 {"containerID": 1, "hostID": U32 - 1, "size": 1}]
    cfg = conv(r).config
    assert cfg.uid_mappings == (config.IDMap(container_id=0, host_id=0, size=1),
                                config.IDMap(container_id=1, host_id=U32 - 1, size=1))
    for key in ("containerID", "hostID", "size"):
        for bad in (-1, U32 + 1):
            m = {"containerID": 0, "hostID": 0, "size": 1}
            m[key] = bad
            r["linux"]["gidMappings"] = [m]
            refused(r, "linux.gidMappings[0].%s" % key, within(0, U32))
    # 2^32 - 1 passes the loader and is refused by minins's validation, under its own name
    for key, ours in (("containerID", "container_id"), ("hostID", "host_id")):
        m = {"containerID": 0, "hostID": 0, "size": 1}
        m[key] = U32
        r["linux"]["gidMappings"] = [m]
        refused(r, "linux.gidMappings[0].%s" % ours, "must be within 0..4294967294")
    r["linux"]["gidMappings"] = [7]
    refused(r, "linux.gidMappings[0]", "must be an object")


def test_hook_timeouts_at_their_edges():
    def hook(**kw):
        return spec(hooks={"poststop": [dict({"path": "/h"}, **kw)]})

    assert conv(hook(timeout=1)).hooks["poststop"][0].timeout == 1
    assert conv(hook(timeout=2 ** 31 - 1)).hooks["poststop"][0].timeout == 2 ** 31 - 1
    assert conv(hook()).hooks["poststop"][0].timeout is None
    for bad in (0, 2 ** 31):
        refused(hook(timeout=bad), "hooks.poststop[0].timeout", within(1, 2 ** 31 - 1))
    refused(hook(timeout="5"), "hooks.poststop[0].timeout")


def test_hooks_in_every_list():
    hooks = {name: [{"path": "/h/" + name, "args": [name], "env": ["N=" + name]},
                    {"path": "/h2", "timeout": 3}] for name in bundle.HOOK_NAMES}
    got = conv(spec(hooks=hooks)).hooks
    assert list(got) == ["prestart", "createRuntime", "createContainer", "startContainer",
                         "poststart", "poststop"]
    for name in got:
        assert got[name] == (bundle.Hook("/h/" + name, (name,), ("N=" + name,), None),
                             bundle.Hook("/h2", (), (), 3))
    refused(spec(hooks={"createRuntime": [{"path": "/h"}, {"path": ""}]}),
            "hooks.createRuntime[1].path", "must be set")
    refused(spec(hooks={"startContainer": [{"path": "h"}]}), "hooks.startContainer[0].path",
            "must be an absolute path, not 'h'")
    refused(spec(hooks={"poststart": ["/h"]}), "hooks.poststart[0]", "must be an object")
    refused(spec(hooks={"poststart": [{"path": "/h", "env": "A=1"}]}),
            "hooks.poststart[0].env", "must be a list")
    refused(spec(hooks={"poststart": [{"path": "/h", "args": [1]}]}),
            "hooks.poststart[0].args[0]")
    refused(spec(hooks=[]), "hooks", "must be an object")


def test_namespace_paths_and_order():
    s = with_("linux.namespaces", [{"type": "user"}, {"type": "mount"},
                                   {"type": "cgroup", "path": "/proc/7/ns/cgroup"},
                                   {"type": "uts"}, {"type": "ipc", "path": ""}])
    s["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    s["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    got = [(ns.type, ns.path) for ns in conv(s).config.namespaces]
    assert got == [("NEWUSER", ""), ("NEWNS", ""), ("NEWCGROUP", "/proc/7/ns/cgroup"),
                   ("NEWUTS", ""), ("NEWIPC", "")]
    refused(with_("linux.namespaces", [{"type": "pid"}, {"type": "mount"}, {"type": "pid"}]),
            "linux.namespaces[2].type", "namespace pid is listed twice")
    refused(with_("linux.namespaces", [{"type": "mount"}, {"type": "time"}]),
            "linux.namespaces[1].type", "time namespaces are not supported")
    refused(with_("linux.namespaces", [{"type": ""}]), "linux.namespaces[0].type",
            "unknown namespace type ''; known: cgroup, ipc, mount, network, pid, user, uts")
    refused(with_("linux.namespaces", [{"type": "uts", "path": "x"}]),
            "linux.namespaces[0].path", "must be an absolute path, not 'x'")
    refused(with_("linux.namespaces", ["pid"]), "linux.namespaces[0]", "must be an object")


def test_loopback_only_for_a_new_network_namespace():
    s = with_("linux.namespaces", [{"type": "mount"}, {"type": "uts"}])
    assert conv(s).config.networks == ()
    s = with_("linux.namespaces", [{"type": "mount"}, {"type": "uts"}, {"type": "network"}])
    assert conv(s).config.networks == (config.Network(type="loopback"),)


def test_sysctl_sorted_and_named():
    s = with_("linux.sysctl", {"net.b": "2", "kernel.shmmax": "3", "net.a": "1"})
    assert conv(s).config.sysctl == ("kernel.shmmax=3", "net.a=1", "net.b=2")
    assert conv(with_("linux.sysctl", {})).config.sysctl == ()
    refused(with_("linux.sysctl", ["net.a=1"]), "linux.sysctl", "must be an object")


def test_personality_flags_may_be_empty():
    cfg = conv(with_("linux.personality", {"domain": "LINUX", "flags": []})).config
    assert cfg.personality == "LINUX"
    assert conv(spec()).config.personality == ""
    refused(with_("linux.personality", {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
            "linux.personality.flags", "not supported (the specification defines none)")
    refused(with_("linux.personality", {}), "linux.personality.domain",
            "must be LINUX or LINUX32, not ''")


def test_masked_and_readonly_paths_keep_their_order():
    s = with_("linux.maskedPaths", ["/b", "/a"], with_("linux.readonlyPaths", ["/d", "/c"]))
    cfg = conv(s).config
    assert (cfg.masked_paths, cfg.readonly_paths) == (("/b", "/a"), ("/d", "/c"))
    refused(with_("linux.readonlyPaths", ["/ok", "no"]), "linux.readonlyPaths[1]",
            "must be an absolute path, not 'no'")


def test_annotations_become_sorted_labels():
    b = conv(spec(annotations={"z": "1", "a": "2=3"}))
    assert b.annotations == {"z": "1", "a": "2=3"}
    assert b.config.labels == ("a=2=3", "z=1")


def test_root_path():
    b = conv(spec(root={"path": "/abs/./r/"}))
    assert b.rootfs == b.config.root_fs == "/abs/r"
    b = conv(spec(root={"path": "r/../s"}))
    assert b.rootfs == BUNDLE + "/s"
    assert conv(spec(root={"path": "rootfs"})).config.mount_config.readonly_fs is False
    refused(spec(root={"path": ""}), "root.path", "must be set")
    refused(spec(root={}), "root.path", "must be set")
    refused(spec(root=None), "root", "must be set")
    refused(spec(root={"path": "r", "readonly": 1}), "root.readonly")


def test_oci_version():
    for v in ("1.0.0", "1.1.0-rc.1", "1.2.0", "1."):
        assert conv(spec(ociVersion=v)).spec["ociVersion"] == v
    refused(spec(ociVersion=None), "ociVersion", "must be set")
    refused(spec(ociVersion=""), "ociVersion", "must be set")
    refused(spec(ociVersion="0.9"), "ociVersion",
            "'0.9' is not a version of runtime-spec 1 (minins speaks 1.0 and 1.1)")
    refused(spec(ociVersion="1"), "ociVersion", "not a version")
    refused(spec(ociVersion="11.0"), "ociVersion", "not a version")


def test_unsupported_properties_and_their_null():
    for dotted in ("linux.intelRdt", "process.scheduler", "vm"):
        head, _, tail = dotted.partition(".")
        s = spec()
        if tail:
            s[head][tail] = None  # null is the property absent
        else:
            s[head] = None
        conv(s)
        if tail:
            s[head][tail] = {}
        else:
            s[head] = {}
        refused(s, dotted)
    # a parent that is not an object is that parent's own error, not a crash
    refused(spec(process=["sh"]), "process", "must be an object")
    refused(spec(linux="x"), "linux", "must be an object")


def test_the_first_unsupported_property_in_name_order():
    s = spec(vm={}, windows={})
    s["linux"]["timeOffsets"] = {}
    refused(s, "linux.timeOffsets", "not supported (no time namespace)")


# --- errors found by minins.config.validate, named by their OCI field --------------------------

@pytest.mark.parametrize("ours,theirs", [
    ("mount_config.mounts[2].type", "mounts[2].type"),
    ("mount_config.device_nodes[7].major_number", "linux.devices[7].major_number"),
    ("mount_config", "mounts"), ("mount_config.pivot_dir", "mounts.pivot_dir"),
    ("root_fs", "root.path"), ("user", "process.user"), ("user.x", "process.user.x"),
    ("user[0]", "process.user[0]"), ("username", "username"), ("users", "users"),
    ("working_dir", "process.cwd"), ("environment[3]", "process.env[3]"),
    ("capabilities[1]", "process.capabilities.bounding[1]"),
    ("ambient_capabilities[0]", "process.capabilities.ambient[0]"),
    ("cgroups.name", "linux.cgroupsPath.name"), ("cgroups.parent", "linux.cgroupsPath.parent"),
    ("cgroups.slice", "linux.cgroupsPath.slice"),
    ("cgroups.driver", "linux.cgroupsPath.driver"),
    ("cgroups.scope_prefix", "linux.cgroupsPath.scope_prefix"),
    ("cgroups.memory", "linux.resources (cgroups.memory)"),
    ("cgroups.name2", "linux.resources (cgroups.name2)"),
    ("cgroups", "linux.cgroupsPath"), ("cgroupsx", "cgroupsx"),
    ("uid_mappings[1]", "linux.uidMappings[1]"), ("sysctl[0]", "linux.sysctl[0]"),
    ("labels", "annotations"), ("umask", "process.user.umask"),
    ("personality", "linux.personality"), ("hostname", "hostname"), ("", ""),
    ("restrict_sys", "restrict_sys"),
])
def test_minins_fields_are_named_by_their_oci_field(ours, theirs):
    assert bundle._oci_field(ours) == theirs


def test_a_validation_error_is_named_by_the_oci_field():
    refused(spec(hostname="h" * 65), "hostname", "64")
    refused(spec(hostname="h" * 64, domainname="d" * 65), "domainname", "64")
    assert conv(spec(hostname="h" * 64)).config.hostname == "h" * 64
    refused(with_("linux.sysctl", {"kernel.panic": "1"}), "linux.sysctl[0]", "host")


@pytest.mark.parametrize("field,path,want", [
    ("process.args", "process.json", "process.json.args"),
    ("process", "p", "p"),
    ("processes", "p", "pes"),
    ("process.cwd", "process", "process.cwd"),
    ("linux.x", "p.json", "linux.x"),
    ("", "p.json", ""),
])
def test_named_from(field, path, want):
    assert bundle._named_from(field, path) == want


def test_from_process_names_validation_errors_from_its_path():
    base = conv(spec()).config
    proc = {"args": ["/bin/true"], "cwd": "/", "capabilities": {
        "bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"],
        "effective": ["CAP_KILL"], "ambient": ["CAP_KILL"]}}
    cfg, args, size = bundle.from_process(proc, base, lsm=NO_LSM, path="p.json")
    assert (cfg.ambient_capabilities, args, size) == (("CAP_KILL",), ("/bin/true",), None)
    # an ambient capability beyond the container's is refused by validate, named from path
    bad = dict(proc, capabilities=dict(proc["capabilities"], effective=["CAP_NOPE"]))
    with pytest.raises(ConfigError) as e:
        bundle.from_process(bad, base, lsm=NO_LSM, path="p.json")
    assert e.value.field == "p.json.capabilities.effective[0]"
    no_uts = conv(with_("linux.namespaces", [{"type": "mount"}], spec(hostname=None))).config
    with pytest.raises(ConfigError) as e:
        bundle.from_process({"args": ["x"], "cwd": "/", "env": ["HOME"]}, no_uts,
                            lsm=NO_LSM, path="p.json")
    assert e.value.field == "p.json.env[0]"


def test_from_process_validation_error_names():
    base = conv(spec()).config
    cfg = base.replace(hostname="h" * 65)  # wrong already: validate names it from OCI
    with pytest.raises(ConfigError) as e:
        bundle.from_process({"args": ["x"], "cwd": "/"}, cfg, lsm=NO_LSM, path="p.json")
    assert (e.value.field, "64" in e.value.message) == ("hostname", True)
    proc = {"args": ["x"], "cwd": "/", "capabilities": {"bounding": ["CAP_KILL"],
                                                        "ambient": ["CAP_KILL"]}}
    cfg, _a, _s = bundle.from_process(proc, base, lsm=NO_LSM)
    assert cfg.ambient_capabilities == ()  # neither permitted nor inheritable


def test_from_process_console_size_and_rlimits():
    base = conv(spec()).config
    proc = {"args": ["x"], "cwd": "/", "consoleSize": {"height": 3, "width": 4},
            "rlimits": [{"type": "RLIMIT_CPU", "hard": 9, "soft": 8}]}
    cfg, args, size = bundle.from_process(proc, base, lsm=NO_LSM)
    assert size == (3, 4)
    assert [(r.type, r.hard, r.soft) for r in cfg.rlimits] == [(0, 9, 8)]
    cfg, _a, _s = bundle.from_process(dict(proc, rlimits=[]), base, lsm=NO_LSM)
    assert cfg.rlimits == base.rlimits
    with pytest.raises(ConfigError) as e:
        bundle.from_process(dict(proc, consoleSize={"height": -1, "width": 1}), base,
                            lsm=NO_LSM, path="x.json")
    assert (e.value.field, e.value.message) == ("x.json.consoleSize.height", within(0, 65535))
    with pytest.raises(ConfigError) as e:
        bundle.from_process(None, base, lsm=NO_LSM, path="x.json")
    assert (e.value.field, e.value.message) == ("x.json", "must be set")


# --- load ---------------------------------------------------------------------------------------

def test_load_a_bundle_directory(tmp_path):
    import json

    (tmp_path / "rootfs").mkdir()
    s = spec(hostname="loaded")
    s["linux"]["cgroupsPath"] = "m.slice:p:n"
    s["process"]["selinuxLabel"] = "lab"
    (tmp_path / "config.json").write_text(json.dumps(s))
    here = os.getcwd()
    os.chdir(str(tmp_path.parent))
    try:
        b = bundle.load(tmp_path.name, systemd_cgroup=True, lsm=SELINUX)
    finally:
        os.chdir(here)
    assert (b.bundle, b.rootfs) == (str(tmp_path), str(tmp_path / "rootfs"))
    assert b.config.hostname == "loaded" and b.spec == s
    assert (b.config.cgroups.driver, b.config.cgroups.slice) == ("systemd", "m.slice")
    assert b.config.process_label == "lab"
    assert b.args == ("sh",) and b.hooks["prestart"] == ()


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path), lsm=NO_LSM)
    assert e.value.field == ""
    assert e.value.message == "cannot read %s: No such file or directory" % (
        tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path), lsm=NO_LSM)
    assert e.value.message.startswith(str(tmp_path / "config.json") + ": ")
    import json

    (tmp_path / "config.json").write_text(json.dumps(spec()))
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path), lsm=NO_LSM)
    assert (e.value.field, e.value.message) == (
        "root.path", "%s is not a directory" % (tmp_path / "rootfs"))
    (tmp_path / "rootfs").write_text("a file")
    with pytest.raises(ConfigError) as e:
        bundle.load(str(tmp_path), lsm=NO_LSM)
    assert e.value.field == "root.path"


# --- runc spec's document, written out -----------------------------------------------------------

_NSD = ["nosuid", "noexec", "nodev"]
_CAPS3 = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
# runc 1.1.x `runc spec` (libcontainer/specconv.Example), as it prints it
RUNC_SPEC = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": _CAPS3, "effective": _CAPS3, "permitted": _CAPS3,
                         "ambient": _CAPS3},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": _NSD},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                       {"type": "mount"}],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}


def _rootless(uid, gid):
    """runc spec --rootless (specconv.ToRootless): a user namespace instead of a network one,
    our ids mapped to root, /sys bound from the host, no devpts gid and no resources."""
    r = copy.deepcopy(RUNC_SPEC)
    r["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    r["linux"]["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    r["linux"]["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    del r["linux"]["resources"]
    r["mounts"][2]["options"].remove("gid=5")
    r["mounts"][5] = {"destination": "/sys", "type": "none", "source": "/sys",
                      "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    return r


def test_default_spec_is_runc_spec_to_the_letter():
    assert bundle.default_spec() == RUNC_SPEC
    assert bundle.default_spec(rootless=True, uid=1000, gid=1001) == _rootless(1000, 1001)
    assert bundle.default_spec(rootless=True) == _rootless(os.geteuid(), os.getegid())
    assert bundle.default_spec(rootless=True, uid=0, gid=0) == _rootless(0, 0)
    # a fresh document each time: changing one changes no other
    a = bundle.default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["mounts"][4]["options"].append("ro")
    assert bundle.default_spec() == RUNC_SPEC


def test_default_spec_converts_to_runc_spec_values():
    b = conv(bundle.default_spec())
    cfg = b.config
    assert (cfg.user, cfg.tty, cfg.working_dir) == ("0:0", True, "/")
    assert [(r.type, r.hard, r.soft) for r in cfg.rlimits] == [(7, 1024, 1024)]
    ms = cfg.mount_config.mounts
    assert [(m.destination, m.flags) for m in ms] == [
        ("/proc", 0),
        ("/dev", MS["NOSUID"] | MS["STRICTATIME"]),
        ("/dev/pts", MS["NOSUID"] | MS["NOEXEC"]),
        ("/dev/shm", MS["NOSUID"] | MS["NOEXEC"] | MS["NODEV"]),
        ("/dev/mqueue", MS["NOSUID"] | MS["NOEXEC"] | MS["NODEV"]),
        ("/sys", MS["NOSUID"] | MS["NOEXEC"] | MS["NODEV"] | MS["RDONLY"]),
        ("/sys/fs/cgroup", MS["NOSUID"] | MS["NOEXEC"] | MS["NODEV"] | MS["RELATIME"]
         | MS["RDONLY"])]
    assert ms[2].data == "newinstance,ptmxmode=0666,mode=0620,gid=5"


# --- the typed accessors, through the fields that use them ---------------------------------------

def test_strings_must_have_a_utf8_encoding():
    refused(spec(hostname="\ud800"), "hostname",
            "must be valid Unicode text (a lone surrogate has no UTF-8 encoding)")
    refused(with_("process.args", ["sh", "\udfff"]), "process.args[1]", "lone surrogate")
    refused(spec(annotations={"\ud800": "v"}), "annotations.\ud800", "lone surrogate")
    assert conv(spec(hostname="h\u00e9")).config.hostname == "h\u00e9"


def test_wrong_json_types_are_named():
    refused(spec(hostname=5), "hostname", "string")
    refused(with_("process.args", "sh"), "process.args", "must be a list, not ")
    refused(with_("process.args", []), "process.args", "must not be empty")
    refused(with_("process.args", None), "process.args", "must not be empty")
    refused(with_("process.env", {"A": "1"}), "process.env", "must be a list")
    refused(with_("process.user", [0, 0]), "process.user", "must be an object, not ")
    refused(with_("process.user.uid", "0"), "process.user.uid")
    refused(with_("process.user.uid", True), "process.user.uid")
    refused(with_("process.noNewPrivileges", 1), "process.noNewPrivileges")
    refused(spec(process=None), "process", "must be set")
    refused(with_("linux.maskedPaths", "/proc"), "linux.maskedPaths", "must be a list")
    with pytest.raises(ConfigError) as e:
        conv(None)
    assert (e.value.field, e.value.message) == ("", "must be set")
    with pytest.raises(ConfigError) as e:
        conv([spec()])
    assert e.value.field == "" and e.value.message.startswith("must be an object, not ")


def test_absent_lists_and_objects_are_empty():
    s = spec()
    for key in ("env", "rlimits"):
        del s["process"][key]
    s["process"]["capabilities"] = {}
    s["linux"] = {"namespaces": [{"type": "mount"}, {"type": "uts"}]}
    del s["mounts"]
    cfg = conv(s).config
    assert (cfg.environment, cfg.rlimits, cfg.capabilities, cfg.masked_paths) == \
        ((), (), (), ())
    assert (cfg.effective_capabilities, cfg.ambient_capabilities) == ((), ())
    assert cfg.mount_config.mounts == () and cfg.networks == ()
    assert (cfg.uid_mappings, cfg.gid_mappings, cfg.sysctl) == ((), (), ())
    assert conv(spec(linux=None, mounts=None, hostname=None, root={"path": "r"})) \
        .config.mount_config is None


@pytest.mark.parametrize("path,want", [
    ("a.slice:p:n", ("a.slice", "p", "n")), (":p:n", ("", "p", "n")),
    ("s.slice::", ("s.slice", "", "")), ("", ("", "", "")),
])
def test_systemd_cgroups_path_parts(path, want):
    cg = conv(with_("linux.cgroupsPath", path), systemd_cgroup=True).config.cgroups
    assert (cg.slice, cg.scope_prefix, cg.name, cg.driver) == want + ("systemd",)


@pytest.mark.parametrize("path", ["a", "a:b", "a:b:c:d", "/a/b"])
def test_systemd_cgroups_path_needs_three_parts(path):
    refused(with_("linux.cgroupsPath", path), "linux.cgroupsPath",
            "with the systemd driver must be slice:prefix:name, not %r" % path,
            systemd_cgroup=True)


@pytest.mark.parametrize("path", ["..", "/..", "a/..", "/.", ".", "//", "./.", "a/../b"])
def test_cgroupfs_path_refusals(path):
    refused(with_("linux.cgroupsPath", path), "linux.cgroupsPath",
            "must name a cgroup below the root, without '..', not %r" % path)


@pytest.mark.parametrize("path,parent,name", [
    ("/a/b/c/d", "/a/b/c", "d"), ("a/b/c", "a/b", "c"), ("/x/", "/", "x"), ("x/.", "", "x"),
    ("a..b/c", "a..b", "c"),
])
def test_cgroupfs_paths(path, parent, name):
    cg = conv(with_("linux.cgroupsPath", path)).config.cgroups
    assert (cg.parent, cg.name, cg.driver) == (parent, name, "")


def test_resources_only_when_given():
    assert conv(with_("linux.resources", None)).config.cgroups == config.Cgroup()
    cg = conv(with_("linux.resources", {"pids": {"limit": 9}})).config.cgroups
    assert cg.pids_limit == 9
    refused(with_("linux.resources", []), "linux.resources", "must be an object")


def test_seccomp_absent_or_not_an_object():
    assert conv(spec()).config.seccomp is None
    refused(with_("linux.seccomp", "x"), "linux.seccomp", "must be an object")


def test_bundle_dir_is_made_absolute_and_normal(tmp_path):
    b = bundle.from_spec(spec(), "/bundles/./x/../b1/", lsm=NO_LSM)
    assert (b.bundle, b.rootfs) == (BUNDLE, BUNDLE + "/rootfs")
    assert b.console_size is None and b.annotations == {}
    assert b.spec == spec()


# --- the first problem is the one named -----------------------------------------------------------

def test_a_bad_env_entry_is_named_before_later_problems():
    """from_spec names the first problem in the document's order (process before mounts):
    an env entry without '=' is found by the loader itself, before minins's validation."""
    for bad in ("A", "=x"):
        s = with_("process.env", ["OK=1", bad], with_("process.oomScoreAdj", 5000))
        refused(s, "process.env[1]", "must be NAME=VALUE, not %r" % bad)
        s = with_("process.env", [bad], spec(mounts=[{"destination": "rel"}]))
        refused(s, "process.env[0]", "must be NAME=VALUE")
    base = conv(spec()).config
    with pytest.raises(ConfigError) as e:
        bundle.from_process({"args": ["x"], "cwd": "/", "env": ["A"],
                             "oomScoreAdj": 5000}, base, lsm=NO_LSM, path="p.json")
    assert (e.value.field, e.value.message) == ("p.json.env[0]", "must be NAME=VALUE, not 'A'")


def test_soft_above_hard_is_named_before_later_problems():
    s = with_("process.rlimits", [{"type": "RLIMIT_CPU", "hard": 1, "soft": 2}],
              with_("process.oomScoreAdj", 5000))
    refused(s, "process.rlimits[0].soft", "must not exceed hard (1)")
    s = with_("process.rlimits", [{"type": "RLIMIT_CPU", "hard": 1, "soft": 2},
                                  {"type": "RLIMIT_CORE", "hard": 1, "soft": 1},
                                  {"type": "RLIMIT_CORE", "hard": 1, "soft": 1}])
    refused(s, "process.rlimits[0].soft", "must not exceed hard (1)")


def test_personality_must_be_an_object():
    refused(with_("linux.personality", "LINUX"), "linux.personality", "must be an object")
    refused(with_("linux.personality", ["LINUX"]), "linux.personality", "must be an object")


def test_load_names_the_file_by_its_absolute_path(tmp_path):
    import json

    here = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        with pytest.raises(ConfigError) as e:
            bundle.load("b", lsm=NO_LSM)
        assert e.value.message == "cannot read %s: No such file or directory" % (
            tmp_path / "b" / "config.json")
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "config.json").write_text("[1,")
        with pytest.raises(ConfigError) as e:
            bundle.load("b", lsm=NO_LSM)
        assert e.value.message.startswith(str(tmp_path / "b" / "config.json") + ": ")
        (tmp_path / "b" / "config.json").write_text(json.dumps(spec()))
        with pytest.raises(ConfigError) as e:
            bundle.load("b", lsm=NO_LSM)
        assert e.value.message == "%s is not a directory" % (tmp_path / "b" / "rootfs")
    finally:
        os.chdir(here)
