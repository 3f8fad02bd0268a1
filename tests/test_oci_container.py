"""OCI bundles run on the real kernel: a busybox rootfs, a config.json from runc spec's default
with one field changed per test, loaded by minins.oci.bundle and run by minins; each field is
checked from inside the container. Mounts are made only in the containers' own mount
namespaces (and, where a test needs a shared source, in a private namespace of a forked
child)."""
import json
import os
import shutil
import tempfile

import pytest

from minins import libc, rootfs
from minins.oci import bundle

from kernel import USERNS, in_private_ns, needs_root, run_captured
from rootfs_util import build_rootfs

pytestmark = needs_root

MS_SHARED = 1 << 20
NEWUTS = 0x04000000
NO_LSM = {"apparmor": False, "selinux": False}


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="minins-test-oci-")
    os.chmod(d, 0o755)
    try:
        build_rootfs(os.path.join(d, "rootfs"))
        os.makedirs(os.path.join(d, "rootfs", "data"))
        with open(os.path.join(d, "rootfs", "data", "file"), "w") as f:
            f.write("from the image\n")
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture(params=["new mount API", "mount(2) fallback"])
def api(request):
    """With the new mount API, or the fallback forced (the init is forked from here)."""
    if request.param == "new mount API" and not rootfs._has_new_api(libc):
        pytest.skip("this kernel has no mount_setattr (Linux 5.12)")
    saved = rootfs._new_api[0]
    rootfs._new_api[0] = request.param == "new mount API"
    try:
        yield request.param
    finally:
        rootfs._new_api[0] = saved


def default(script):
    s = bundle.default_spec()
    s["process"]["terminal"] = False
    s["process"]["args"] = ["/bin/sh", "-c", script]
    s["root"]["path"] = "../rootfs"
    return s


def run(base, tmp_path, s, **kw):
    """Write ``s`` as the bundle's config.json (the bundle in tmp_path, the rootfs shared),
    load it and run it; ``(code, out, err)``."""
    bdir = tmp_path / "bundle"
    bdir.mkdir(exist_ok=True)
    (bdir / "config.json").write_text(json.dumps(s))
    if not os.path.exists(str(tmp_path / "rootfs")):
        os.symlink(os.path.join(base, "rootfs"), str(tmp_path / "rootfs"))
    b = bundle.load(str(bdir), lsm=NO_LSM, **kw)
    return run_captured(b.config, b.args, state_root=str(tmp_path / "state"))


def ok(base, tmp_path, s, **kw):
    code, out, err = run(base, tmp_path, s, **kw)
    assert code == 0, (out, err)
    return out


def ok_cg(base, tmp_path, s):
    """``ok`` for a spec with linux.resources: skipped where this process's cgroup cannot
    delegate the controllers (a cgroup v2 leaf that holds processes)."""
    from minins.errors import ContainerError

    try:
        return ok(base, tmp_path, s)
    except ContainerError as e:
        if "does not delegate" in str(e) or "not available in the cgroup" in str(e):
            pytest.skip(str(e))
        raise


def mountinfo(text):
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        rows[fields[4]] = {"opts": fields[5].split(","), "optional": fields[6:sep],
                           "type": fields[sep + 1], "super": fields[sep + 3].split(","),
                           "root": fields[3]}
    return rows


def status(text):
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


# --- the default: runc spec's config.json ---------------------------------------------------

def test_default_spec_mounts_exactly_what_it_lists(base, tmp_path, api):
    rows = mountinfo(ok(base, tmp_path, default("cat /proc/self/mountinfo")))
    assert rows["/"]["opts"][0] == "ro"  # root.readonly
    assert rows["/proc"]["type"] == "proc"
    assert rows["/dev"]["type"] == "tmpfs" and "strictatime" not in rows["/dev"]["opts"]
    assert "nosuid" in rows["/dev"]["opts"] and "mode=755" in rows["/dev"]["super"]
    assert rows["/dev/pts"]["type"] == "devpts" and "gid=5" in rows["/dev/pts"]["super"]
    assert {"nosuid", "nodev", "noexec"} <= set(rows["/dev/shm"]["opts"])
    assert rows["/dev/mqueue"]["type"] == "mqueue"
    assert rows["/sys"]["type"] == "sysfs" and rows["/sys"]["opts"][0] == "ro"
    assert rows["/sys/fs/cgroup"]["opts"][0] == "ro"
    # maskedPaths and readonlyPaths of the spec
    assert rows["/proc/sys"]["opts"][0] == "ro"
    assert rows["/sys/firmware"]["type"] == "tmpfs"
    # nothing minins adds of its own (its default /tmp and /run tmpfs)
    assert "/tmp" not in rows and "/run" not in rows
    points = set(rows) - {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"}
    assert all(p.startswith(("/proc/", "/sys/")) for p in points), points


def test_default_spec_devices_and_links(base, tmp_path):
    out = ok(base, tmp_path, default("ls -l /dev"))
    for name in ("null", "zero", "full", "tty", "random", "urandom"):
        assert " %s\n" % name in out + "\n", out
    assert "ptmx -> pts/ptmx" in out and "fd -> /proc/self/fd" in out


# --- process --------------------------------------------------------------------------------

def test_args_env_cwd(base, tmp_path):
    s = default('echo "$FOO|$BAR|$(pwd)"; echo "$0" "$1"')
    s["process"]["args"] += ["zero", "one"]
    s["process"]["env"] = ["PATH=/bin", "FOO=a b", "BAR="]
    s["process"]["cwd"] = "/data"
    assert ok(base, tmp_path, s) == "a b||/data\nzero one\n"


def test_missing_cwd_is_made(base, tmp_path):
    s = default("pwd; ls -ld /made/here | cut -c1-10")
    s["root"]["readonly"] = False
    s["process"]["cwd"] = "/made/here"
    shutil.rmtree(os.path.join(base, "rootfs", "made"), ignore_errors=True)
    try:
        assert ok(base, tmp_path, s) == "/made/here\ndrwxr-xr-x\n"
    finally:
        shutil.rmtree(os.path.join(base, "rootfs", "made"), ignore_errors=True)


def test_user_umask_additional_gids(base, tmp_path):
    s = default("id; umask")
    s["process"]["user"] = {"uid": 1000, "gid": 1000, "umask": 0o027,
                            "additionalGids": [20, 30]}
    out = ok(base, tmp_path, s)
    ident, mask = out.splitlines()
    assert ident.startswith("uid=1000(alice) gid=1000(alice) groups=")
    groups = ident.split("groups=")[1]
    # an explicit gid: additionalGids only, none of /etc/group's (libcontainer's GetExecUser
    # fills supplementary groups in the implicit form only)
    for g in ("20", "30"):
        assert g in groups.split(","), ident
    for g in ("10(wheel)", "50(staff)"):
        assert g not in groups.split(","), ident
    assert mask == "0027"


def test_default_umask_is_0022(base, tmp_path):
    assert ok(base, tmp_path, default("umask")) == "0022\n"


def test_rlimits(base, tmp_path):
    s = default("ulimit -n; ulimit -Hn; ulimit -c; ulimit -s")
    s["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256},
        {"type": "RLIMIT_CORE", "hard": 2 ** 64 - 1, "soft": 2 ** 64 - 1},
        {"type": "RLIMIT_STACK", "hard": 16 << 20, "soft": 4 << 20}]
    assert ok(base, tmp_path, s).split() == ["256", "512", "unlimited", str(4 << 10)]


def _mask(*names):
    from minins import caps

    return "%016x" % caps.mask_of(names)


def test_five_capability_sets(base, tmp_path):
    s = default("cat /proc/self/status")
    s["process"]["user"] = {"uid": 1000, "gid": 1000}
    s["process"]["noNewPrivileges"] = False
    s["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"],
        "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"],
        "ambient": ["CAP_CHOWN"]}
    st = status(ok(base, tmp_path, s))
    # exec as uid 1000: the permitted and effective sets become the ambient one
    assert st["CapBnd"] == _mask("KILL", "CHOWN", "NET_RAW", "SETUID")
    assert st["CapInh"] == _mask("CHOWN", "NET_RAW")
    assert st["CapAmb"] == _mask("CHOWN")
    assert st["CapPrm"] == _mask("CHOWN")
    assert st["CapEff"] == _mask("CHOWN")
    assert st["NoNewPrivs"] == "0"


def test_capabilities_as_root(base, tmp_path):
    s = default("cat /proc/self/status")
    s["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]}
    st = status(ok(base, tmp_path, s))
    assert st["CapBnd"] == _mask("KILL", "CHOWN", "NET_RAW")
    assert st["CapInh"] == _mask()
    assert st["NoNewPrivs"] == "1"
    # root's exec would grow the permitted set to the bounding set (capabilities(7));
    # no_new_privs keeps it within the one set before the exec, and root's effective set
    # is its permitted set
    assert st["CapPrm"] == _mask("KILL", "CHOWN")
    assert st["CapEff"] == _mask("KILL", "CHOWN")


def test_oom_score_adj(base, tmp_path):
    s = default("cat /proc/self/oom_score_adj")
    s["process"]["oomScoreAdj"] = 345
    assert ok(base, tmp_path, s) == "345\n"


# --- hostname, domainname, namespaces, ID maps ----------------------------------------------

def test_hostname_and_domainname(base, tmp_path):
    s = default("hostname; cat /proc/sys/kernel/domainname")
    s["hostname"] = "oci-host"
    s["domainname"] = "oci.example"
    assert ok(base, tmp_path, s) == "oci-host\noci.example\n"


def test_loopback_is_up(base, tmp_path):
    out = ok(base, tmp_path, default("cat /sys/class/net/lo/flags; ls /sys/class/net"))
    assert int(out.split()[0], 16) & 1  # IFF_UP
    assert out.split()[1:] == ["lo"]  # a network namespace of its own


def test_namespace_path_is_joined(base, tmp_path):
    """A UTS namespace held by a forked child, with its own hostname, joined by path."""
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(w)
            os.close(r2)
            libc.unshare(NEWUTS)
            libc.sethostname("joined-uts")
            os.write(w2, b"1")
            os.read(r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(r)
    os.close(w2)
    try:
        assert os.read(r2, 1) == b"1"
        s = default("hostname")
        s.pop("hostname")
        s["linux"]["namespaces"] = [ns if ns["type"] != "uts" else
                                    {"type": "uts", "path": "/proc/%d/ns/uts" % pid}
                                    for ns in s["linux"]["namespaces"]]
        assert ok(base, tmp_path, s) == "joined-uts\n"
    finally:
        os.close(w)
        os.close(r2)
        os.waitpid(pid, 0)


@pytest.mark.skipif(not USERNS, reason="user namespaces are not available here")
def test_user_namespace_and_mappings(base, tmp_path):
    s = bundle.default_spec(rootless=True, uid=0, gid=0)
    s["process"]["terminal"] = False
    s["root"]["path"] = os.path.join(base, "rootfs")  # (tmp_path is 0700: not for root in it)
    s["process"]["args"] = ["/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"]
    s["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    s["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    out = ok(base, tmp_path, s)
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["0", "200000", "65536"] and lines[1] == ["0", "200000", "65536"]
    assert lines[2] == ["0"]


def test_devices(base, tmp_path):
    s = default("ls -ln /dev/fifo /dev/u0 /dev/blk /dev/null")
    s["linux"]["devices"] = [
        {"path": "/dev/fifo", "type": "p", "fileMode": 0o600, "uid": 7, "gid": 8},
        {"path": "/dev/u0", "type": "u", "major": 1, "minor": 5, "fileMode": 0o640},
        {"path": "/dev/blk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o660}]
    rows = {line.split()[-1]: line.split() for line in ok(base, tmp_path, s).splitlines()}
    assert rows["/dev/fifo"][0] == "prw-------" and rows["/dev/fifo"][2:4] == ["7", "8"]
    assert rows["/dev/u0"][0] == "crw-r-----" and rows["/dev/u0"][4:6] == ["1,", "5"]
    assert rows["/dev/blk"][0] == "brw-rw----" and rows["/dev/blk"][4:6] == ["7,", "200"]
    assert rows["/dev/null"][0] == "crw-rw-rw-"


def test_seccomp(base, tmp_path):
    s = default("mkdir /dev/shm/x 2>&1; echo rc=$?")
    s["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    out = ok(base, tmp_path, s)
    assert "rc=1" in out and "Operation not permitted" in out


# --- mounts ---------------------------------------------------------------------------------

def test_bind_with_mount_flags(base, tmp_path, api):
    src = tmp_path / "vol"
    src.mkdir()
    (src / "f").write_text("vol\n")
    s = default("cat /mnt/ro/f; touch /mnt/ro/x 2>&1; touch /mnt/rw/y && echo rw-ok; "
                "cat /mnt/nsf/link 2>&1; cat /proc/self/mountinfo")
    s["mounts"] += [
        {"destination": "/mnt/ro", "type": "bind", "source": str(src),
         "options": ["rbind", "ro", "nosuid", "nodev", "noexec", "noatime", "rprivate"]},
        {"destination": "/mnt/rw", "type": "none", "source": str(src),
         "options": ["bind", "rw", "nodiratime"]},
        {"destination": "/mnt/nsf", "type": "bind", "source": str(src),
         "options": ["bind", "nosymfollow"]}]
    os.symlink("f", str(src / "link"))
    out = ok(base, tmp_path, s)
    assert out.startswith("vol\n") and "Read-only file system" in out and "rw-ok" in out
    rows = mountinfo(out)
    ro = rows["/mnt/ro"]["opts"]
    assert ro[0] == "ro" and {"nosuid", "nodev", "noexec", "noatime"} <= set(ro)
    rw = rows["/mnt/rw"]["opts"]
    assert rw[0] == "rw" and "nodiratime" in rw and "noexec" not in rw
    assert "nosymfollow" in rows["/mnt/nsf"]["opts"]
    assert "cat: can't open '/mnt/nsf/link'" in out
    assert (src / "y").exists()


def test_recursive_attributes(base, tmp_path, api):
    """rro and rnosuid reach the submounts of a recursive bind (runtime-spec 1.1); plain ro
    only the top mount. The source tree is made in a private namespace of a forked child."""
    src = str(tmp_path / "tree")
    os.makedirs(src + "/sub")

    def inside():
        libc.mount("tmpfs", src + "/sub", "tmpfs", 0, "size=64k")
        s = default("cat /proc/self/mountinfo")
        s["mounts"] += [
            {"destination": "/mnt/rec", "type": "bind", "source": src,
             "options": ["rbind", "rro", "rnosuid", "rnoatime"]},
            {"destination": "/mnt/top", "type": "bind", "source": src,
             "options": ["rbind", "ro"]}]
        return run(base, tmp_path, s)

    code, out, err = in_private_ns(inside)
    assert code == 0, err
    rows = mountinfo(out)
    for point in ("/mnt/rec", "/mnt/rec/sub"):
        assert rows[point]["opts"][0] == "ro" and "nosuid" in rows[point]["opts"], point
        assert "noatime" in rows[point]["opts"], point
    assert rows["/mnt/top"]["opts"][0] == "ro"
    assert rows["/mnt/top/sub"]["opts"][0] == "rw"


def test_bind_a_file_relative_to_the_bundle(base, tmp_path):
    bdir = tmp_path / "bundle"
    bdir.mkdir()
    (bdir / "hosts").write_text("10.0.0.1 oci\n")
    s = default("cat /etc/hosts")
    s["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": "hosts",
                        "options": ["rbind", "ro"]})
    assert ok(base, tmp_path, s) == "10.0.0.1 oci\n"


def test_tmpfs_data_and_superblock_flags(base, tmp_path, api):
    s = default("cat /proc/self/mountinfo; stat -c %a /scratch")
    s["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "strictatime", "sync", "dirsync", "mode=1750",
                                    "size=128k"]})
    out = ok(base, tmp_path, s)
    row = mountinfo(out)["/scratch"]
    assert row["type"] == "tmpfs" and "nosuid" in row["opts"]
    assert {"sync", "dirsync"} <= set(row["opts"] + row["super"]), row
    assert "size=128k" in row["super"] and "mode=1750" in row["super"]
    assert out.splitlines()[-1] == "1750"


def test_tmpcopyup(base, tmp_path, api):
    """runc's tmpcopyup: the tmpfs starts with a copy of the image's directory (files,
    directories, symlinks, modes and owners), and writes go to the tmpfs only."""
    img = os.path.join(base, "rootfs", "copyme")
    os.makedirs(os.path.join(img, "sub"))
    with open(os.path.join(img, "sub", "f"), "w") as f:
        f.write("image data\n")
    os.chmod(os.path.join(img, "sub", "f"), 0o604)
    os.chown(os.path.join(img, "sub", "f"), 1000, 50)
    os.symlink("sub/f", os.path.join(img, "link"))
    s = default("cat /copyme/link 2>&1; stat -c '%A %u %g' /copyme/sub/f; "
                "echo new > /copyme/new && echo written; grep ' /copyme ' /proc/self/mountinfo")
    s["mounts"].append({"destination": "/copyme", "type": "tmpfs", "source": "tmpfs",
                        "options": ["tmpcopyup", "nosuid", "mode=755"]})
    try:
        out = ok(base, tmp_path, s).splitlines()
        assert out[0] == "image data"
        assert out[1] == "-rw----r-- 1000 50"
        assert out[2] == "written" and " - tmpfs " in out[3]
        assert not os.path.exists(os.path.join(img, "new"))
    finally:
        shutil.rmtree(img)


def test_mount_on_a_symlink_stays_in_the_rootfs(base, tmp_path):
    """An image's symlink to a host path leads the mount to that path inside the rootfs."""
    link = os.path.join(base, "rootfs", "escape")
    target = tempfile.mkdtemp(prefix="minins-oci-escape-", dir="/")
    os.symlink(target, link)
    s = default("cat /proc/self/mountinfo")
    s["root"]["readonly"] = False
    s["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"})
    try:
        rows = mountinfo(ok(base, tmp_path, s))
        assert target in rows  # the directory made inside the rootfs, at that name
        assert os.path.isdir(os.path.join(base, "rootfs", target.lstrip("/")))
        assert os.listdir(target) == []
    finally:
        os.unlink(link)
        os.rmdir(target)
        shutil.rmtree(os.path.join(base, "rootfs", target.lstrip("/")), ignore_errors=True)


def test_bind_over_proc_is_refused_except_lxcfs_files(base, tmp_path):
    src = tmp_path / "cpuinfo"
    src.write_text("fake cpuinfo\n")
    s = default("cat /proc/cpuinfo")
    s["mounts"].append({"destination": "/proc/cpuinfo", "type": "bind", "source": str(src),
                        "options": ["bind", "ro"]})
    assert ok(base, tmp_path, s) == "fake cpuinfo\n"
    s = default("true")
    s["mounts"].append({"destination": "/proc/self", "type": "bind", "source": str(tmp_path),
                        "options": ["bind"]})
    with pytest.raises(Exception) as e:
        run(base, tmp_path, s)
    assert "mounting over /proc is refused" in str(e.value)
    assert "mounts[7].destination" in str(e.value) and "mount_config" not in str(e.value)


def test_a_missing_bind_source_is_named_by_its_oci_field(base, tmp_path):
    from minins.errors import ConfigError

    s = default("true")
    s["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-src",
                        "options": ["bind"]})
    with pytest.raises(ConfigError) as e:
        run(base, tmp_path, s)
    assert e.value.field == "mounts[7].source" and "nonexistent-src" in e.value.message



def test_bind_propagation(base, tmp_path, api):
    src = str(tmp_path / "shared")
    os.mkdir(src)

    def inside():
        libc.mount("tmpfs", src, "tmpfs", 0, "size=64k")
        libc.mount(None, src, None, MS_SHARED)
        row = [line.split() for line in open("/proc/self/mountinfo")
               if line.split()[4] == src][0]
        group = [o for o in row[6:row.index("-")] if o.startswith("shared:")][0]
        s = default("cat /proc/self/mountinfo")
        s["mounts"] += [
            {"destination": "/mnt/slave", "type": "bind", "source": src,
             "options": ["rbind", "rslave"]},
            {"destination": "/mnt/private", "type": "bind", "source": src,
             "options": ["rbind", "rprivate"]},
            {"destination": "/mnt/shared", "type": "bind", "source": src,
             "options": ["rbind", "rshared"]},
            {"destination": "/mnt/unbindable", "type": "bind", "source": src,
             "options": ["rbind", "unbindable"]}]
        code, out, err = run(base, tmp_path, s)
        return group.split(":")[1], code, out, err

    group, code, out, err = in_private_ns(inside)
    assert code == 0, err
    rows = mountinfo(out)
    assert rows["/mnt/slave"]["optional"] == ["master:" + group]
    assert rows["/mnt/private"]["optional"] == []
    assert [o.split(":")[0] for o in rows["/mnt/shared"]["optional"]] == ["shared"]
    assert rows["/mnt/unbindable"]["optional"] == ["unbindable"]


def test_rootfs_propagation_slave(base, tmp_path, api):
    """rslave: the container's / receives what happens below the rootfs on the host (here a
    shared bind of it in a private namespace of a forked child)."""
    def inside():
        rfs = os.path.join(base, "rootfs")
        libc.mount(rfs, rfs, None, 0x1000)  # MS_BIND
        libc.mount(None, rfs, None, MS_SHARED)
        row = [line.split() for line in open("/proc/self/mountinfo")
               if line.split()[4] == rfs][-1]
        group = [o for o in row[6:row.index("-")] if o.startswith("shared:")][0]
        s = default("cat /proc/self/mountinfo")
        s["linux"]["rootfsPropagation"] = "rslave"
        s["root"]["path"] = rfs
        return group.split(":")[1], run(base, tmp_path, s)

    group, (code, out, err) = in_private_ns(inside)
    assert code == 0, err
    assert mountinfo(out)["/"]["optional"] == ["master:" + group]


@pytest.mark.parametrize("prop,expect", [("rshared", "shared"), ("rprivate", None),
                                         ("runbindable", "unbindable")])
def test_rootfs_propagation(base, tmp_path, prop, expect):
    s = default("cat /proc/self/mountinfo")
    s["linux"]["rootfsPropagation"] = prop
    optional = mountinfo(ok(base, tmp_path, s))["/"]["optional"]
    assert [o.split(":")[0] for o in optional] == ([expect] if expect else [])


def test_masked_and_readonly_paths(base, tmp_path):
    s = default("cat /proc/uptime 2>&1 | wc -c; ls /sys/kernel | wc -l; "
                "cat /proc/self/mountinfo")
    s["linux"]["maskedPaths"] = ["/proc/uptime", "/sys/kernel", "/proc/does-not-exist"]
    s["linux"]["readonlyPaths"] = ["/proc/sys/kernel", "/proc/version", "/sys/fs/cgroup/nope"]
    out = ok(base, tmp_path, s)
    lines = out.splitlines()
    assert lines[0].strip() == "0" and lines[1].strip() == "0"
    rows = mountinfo(out)
    assert rows["/proc/sys/kernel"]["opts"][0] == "ro"
    assert rows["/proc/version"]["opts"][0] == "ro"
    assert rows["/sys/kernel"]["type"] == "tmpfs" and rows["/sys/kernel"]["opts"][0] == "ro"
    assert "/proc/sys" not in rows  # only what the spec lists
    assert "/proc/keys" not in rows


def test_sysctl(base, tmp_path):
    s = default("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    s["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
    assert ok(base, tmp_path, s).split() == ["1", "1234"]
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read().strip() != "1234"  # the container's own IPC namespace only


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="LINUX32 shows as i686 on x86_64")
def test_personality(base, tmp_path):
    s = default("uname -m")
    s["linux"]["personality"] = {"domain": "LINUX32"}
    assert ok(base, tmp_path, s) == "i686\n"
    s["linux"]["personality"] = {"domain": "LINUX"}
    assert ok(base, tmp_path, s) == "x86_64\n"
    # set before a profile that refuses personality(2) is loaded
    s["linux"]["personality"] = {"domain": "LINUX32"}
    s["process"]["noNewPrivileges"] = False
    s["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]}
    assert ok(base, tmp_path, s) == "i686\n"


def test_cgroups_path_relative(base, tmp_path):
    name = "minins-oci-test-%d" % os.getpid()
    s = default("cat /proc/self/cgroup")
    s["linux"]["cgroupsPath"] = name + "/ctr"
    out = ok(base, tmp_path, s)
    paths = [line.split(":", 2)[2] for line in out.splitlines()]
    assert any(p.endswith("/%s/ctr" % name) for p in paths), out


def test_resources_are_applied(base, tmp_path):
    """linux.resources through ociresources' converter: the limits in the container's own
    cgroup, read from inside (the host's cgroup tree is visible without a cgroup namespace)."""
    s = default("cat /proc/self/cgroup")
    s["linux"]["resources"] = {"pids": {"limit": 42}, "memory": {"limit": 64 << 20},
                               "devices": [{"allow": False, "access": "rwm"}]}
    s["linux"]["cgroupsPath"] = "minins-oci-res-%d" % os.getpid()
    s["mounts"] = [m for m in s["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    s["mounts"].append({"destination": "/sys/fs/cgroup", "type": "bind",
                        "source": "/sys/fs/cgroup", "options": ["rbind", "ro"]})
    s["process"]["args"][2] = (  # v1: each controller's own hierarchy; v2: one
        "d() { p=$(grep -E \":$1:|^0::\" /proc/self/cgroup | head -1 | cut -d: -f3); "
        "if [ -d /sys/fs/cgroup/$1 ]; then echo /sys/fs/cgroup/$1$p; "
        "else echo /sys/fs/cgroup$p; fi; }; cat $(d pids)/pids.max; "
        "cat $(d memory)/memory.limit_in_bytes 2>/dev/null || cat $(d memory)/memory.max")
    assert ok_cg(base, tmp_path, s).split() == ["42", str(64 << 20)]


def test_cgroup_mount_with_a_cgroup_namespace(base, tmp_path):
    """With a cgroup namespace the cgroup mount shows the container's own cgroups at its
    root: the pids limit set through linux.resources is /sys/fs/cgroup/pids/pids.max (cgroup
    v1), or /sys/fs/cgroup/pids.max (v2)."""
    s = default("cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max "
                "/sys/fs/cgroup/pids.max 2>/dev/null; true")
    s["linux"]["namespaces"].append({"type": "cgroup"})
    s["linux"]["resources"] = {"pids": {"limit": 17}}
    s["linux"]["cgroupsPath"] = "minins-oci-cgns-%d" % os.getpid()
    out = ok_cg(base, tmp_path, s).splitlines()
    assert out[-1] == "17"
    assert all(line.endswith(":/") for line in out[:-1]), out  # the namespace's root


def test_cgroup_mount_without_a_cgroup_namespace(base, tmp_path):
    s = default("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true")
    s["linux"]["resources"] = {"pids": {"limit": 19}}
    s["linux"]["cgroupsPath"] = "minins-oci-nocgns-%d" % os.getpid()
    assert ok_cg(base, tmp_path, s).split() == ["19"]


def _points(text):
    """The mount points of a mountinfo text, in its order."""
    return [line.split()[4] for line in text.splitlines() if " - " in line]


def test_mounts_are_listed_in_the_config_order(base, tmp_path, api):
    """runtime-tools' "mounts": binds with no ``type`` and every propagation, between two
    tmpfs, appear in mountinfo in the config's order, after / (Linux 6.8+ lists a
    namespace's mounts by their creation: a bind copied before the rootfs came first)."""
    src = str(tmp_path / "shared")
    os.mkdir(src)

    def inside():
        libc.mount("tmpfs", src, "tmpfs", 0, "size=64k")
        libc.mount(None, src, None, MS_SHARED)
        s = default("cat /proc/self/mountinfo")
        s["mounts"] += [{"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"}]
        for i, prop in enumerate(("shared", "rslave", "private", "unbindable")):
            s["mounts"].append({"destination": "/mnt/b%d" % i, "source": src,
                                "options": ["rbind" if i % 2 else "bind", prop]})
        s["mounts"] += [{"destination": "/mnt/c", "type": "tmpfs", "source": "tmpfs"}]
        return run(base, tmp_path, s)

    code, out, err = in_private_ns(inside)
    assert code == 0, err
    wanted = ["/", "/proc", "/dev", "/mnt/a", "/mnt/b0", "/mnt/b1", "/mnt/b2", "/mnt/b3",
              "/mnt/c"]
    points = [p for p in _points(out) if p in wanted]
    assert points == wanted, out
    rows = mountinfo(out)
    assert [o.split(":")[0] for o in rows["/mnt/b0"]["optional"]] == ["shared"]
    assert [o.split(":")[0] for o in rows["/mnt/b1"]["optional"]] == ["master"]
    assert rows["/mnt/b2"]["optional"] == []
    assert rows["/mnt/b3"]["optional"] == ["unbindable"]


def test_selinux_labels_are_no_ops_without_selinux(base, tmp_path):
    """runtime-tools' linux_mount_label: where SELinux is off the labels are accepted and
    nothing is applied (no context= option on any mount, no exec label written)."""
    s = default("cat /proc/self/mountinfo; cat /proc/self/attr/current 2>/dev/null; true")
    s["linux"]["mountLabel"] = "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"
    s["process"]["selinuxLabel"] = "system_u:system_r:svirt_lxc_net_t:s0:c715,c811"
    s["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"})
    out = ok(base, tmp_path, s)
    rows = mountinfo(out)
    assert rows["/scratch"]["type"] == "tmpfs"
    assert not any(o.startswith("context=") for r in rows.values() for o in r["super"]), out
    assert "svirt" not in out
