"""Finding the hierarchies and the caller's own cgroup, and placing a container's cgroup."""
import os

from minins.cgroups import discovery as d

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:32 /docker/abc /mnt/memory\\040copy rw - cgroup cgroup rw,memory
"""
PROC_HYBRID = """\
12:memory:/user.slice/session-1.scope
11:cpu,cpuacct:/user.slice
10:cpuset:/
2:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
"""
UNIFIED = """\
25 1 8:1 / / rw - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def test_hybrid_host():
    h = d.from_tables(d.parse_mountinfo(HYBRID), d.parse_proc_cgroup(PROC_HYBRID))
    assert h.mode == "hybrid"
    assert h.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                    "cpuset": "/sys/fs/cgroup/cpuset", "memory": "/sys/fs/cgroup/memory",
                    # co-mounted, as both subsystems are named (made only when configured)
                    "net_cls": "/sys/fs/cgroup/net_cls,net_prio",
                    "net_prio": "/sys/fs/cgroup/net_cls,net_prio"}
    assert h.unified == "/sys/fs/cgroup/unified"
    assert h.own["memory"] == "/user.slice/session-1.scope"
    assert h.own["cpuacct"] == "/user.slice"
    assert h.own[d.UNIFIED] == "/user.slice/session-1.scope"
    # relative: under the caller's own cgroup; absolute: from the hierarchy's root
    assert h.place("memory", "docker/c1") == (
        "/sys/fs/cgroup/memory/user.slice/session-1.scope/docker/c1",
        "/sys/fs/cgroup/memory/user.slice/session-1.scope")
    assert h.place("cpuset", "c1") == ("/sys/fs/cgroup/cpuset/c1", "/sys/fs/cgroup/cpuset")
    assert h.place("cpu", "/minins/c1") == ("/sys/fs/cgroup/cpu,cpuacct/minins/c1",
                                           "/sys/fs/cgroup/cpu,cpuacct")
    assert h.place(d.UNIFIED, "c1")[0] == "/sys/fs/cgroup/unified/user.slice/session-1.scope/c1"


def test_unified_host_and_escapes():
    h = d.from_tables(d.parse_mountinfo(UNIFIED), {d.UNIFIED: "/system.slice/x.service"})
    assert (h.mode, h.v1, h.unified) == ("unified", {}, "/sys/fs/cgroup")
    assert h.own_dir(d.UNIFIED) == "/sys/fs/cgroup/system.slice/x.service"
    assert d.parse_mountinfo(HYBRID)[-1][0] == "/mnt/memory copy"


def test_a_hierarchy_mounted_from_below_its_root():
    # A bind mount of /docker/abc: /proc/self/cgroup still names paths from the real root.
    mounts = [("/mnt/memory", "cgroup", "/docker/abc", ("rw", "memory"))]
    h = d.from_tables(mounts, {"memory": "/docker/abc/inner"})
    assert h.own["memory"] == "/inner"
    assert d.from_tables(mounts, {"memory": "/docker/abc"}).own["memory"] == "/"


def test_proc_cgroup_lines():
    own = d.parse_proc_cgroup("5:devices:/a\n4:cpu,cpuacct:/b\n1:name=systemd:/c\n0::/d\n")
    assert own == {"devices": "/a", "cpu": "/b", "cpuacct": "/b", "name=systemd": "/c",
                   d.UNIFIED: "/d"}


def test_join_normalises_slashes():
    assert d.join("/sys/fs/cgroup/", "/a//b/") == "/sys/fs/cgroup/a/b"
    assert d.join("/x", "") == "/x"
    assert d.join("/x", "/") == "/x"


def test_this_host():
    h = d.discover()
    assert h.mode in ("legacy", "hybrid", "unified")
    for key in list(h.v1) + ([d.UNIFIED] if h.unified else []):
        assert os.path.isdir(h.own_dir(key)), key


def test_at_root_lays_out_a_temporary_tree(tmp_path):
    for name in ("memory", "cpu,cpuacct", "unified", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("")
    h = d.at_root(str(tmp_path))
    assert h.v1 == {"memory": str(tmp_path / "memory"), "cpu": str(tmp_path / "cpu,cpuacct"),
                    "cpuacct": str(tmp_path / "cpu,cpuacct")}
    assert h.unified == str(tmp_path / "unified")
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("memory\n")
    assert d.at_root(str(v2)).mode == "unified"
