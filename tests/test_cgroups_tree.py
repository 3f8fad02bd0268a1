"""Both drivers against a temporary tree whose kernel part is played by FakeKernelFs:
every file written, controllers delegated, errors named, and nothing left behind when any
single step fails."""
import errno
import os

import pytest

from cgroups_support import FakeKernelFs, cgroup_config, device
from minins import cgroups
from minins.cgroups import stats as st
from minins.cgroups.discovery import UNIFIED, Hierarchies
from minins.errors import ContainerError, SyscallError

V1 = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "freezer")
ALL_V2 = ("cpuset", "cpu", "io", "memory", "pids")
FULL = dict(memory=64 << 20, memory_reservation=32 << 20, cpu_shares=512, cpu_quota=50000,
            cpu_period=100000, cpuset_cpus="1", blkio_weight=500, pids_limit=20,
            allowed_devices=[device("c", 1, 3), device("c", 136, -1, "rw")])


def v1_tree(tmp_path, **kw):
    fs = FakeKernelFs(str(tmp_path), v1=kw.pop("v1", V1), v2=kw.pop("v2", None), **kw)
    hier = Hierarchies({s: str(tmp_path / s) for s in (os.listdir(str(tmp_path)))
                        if s != "unified"},
                       fs.v2_root, {s: "/" for s in V1 + (UNIFIED,)})
    return fs, hier


def v2_tree(tmp_path, controllers=ALL_V2, enabled=ALL_V2):
    fs = FakeKernelFs(str(tmp_path), v2=controllers, v2_only=True)
    fs.write(str(tmp_path / "cgroup.subtree_control"), " ".join("+" + c for c in enabled))
    fs.log.clear()
    return fs, Hierarchies({}, str(tmp_path), {UNIFIED: "/"})


def read(path):
    with open(path) as f:
        return f.read()


# --- v1 ---------------------------------------------------------------------------------------

def test_v1_apply_writes_every_file_then_joins(tmp_path):
    fs, hier = v1_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c1", **FULL), hier, fs)
    assert mgr.driver == "cgroupfs-v1"
    assert mgr.paths == {s: str(tmp_path / s / "c1") for s in V1}
    mgr.apply(4242)
    p = mgr.paths
    assert read(p["cpuset"] + "/cpuset.cpus") == "1\n"
    assert read(p["cpuset"] + "/cpuset.mems") == "0\n"  # copied from the parent
    assert read(p["devices"] + "/devices.deny") == "a\n"
    assert read(p["devices"] + "/devices.allow") == "c 1:3 rwm\nc 136:* rw\n"
    assert read(p["memory"] + "/memory.limit_in_bytes") == "%d\n" % (64 << 20)
    assert read(p["memory"] + "/memory.soft_limit_in_bytes") == "%d\n" % (32 << 20)
    assert read(p["memory"] + "/memory.memsw.limit_in_bytes") == "%d\n" % (128 << 20)
    assert read(p["cpu"] + "/cpu.shares") == "512\n"
    assert read(p["cpu"] + "/cpu.cfs_quota_us") == "50000\n"
    assert read(p["pids"] + "/pids.max") == "20\n"
    assert read(p["blkio"] + "/blkio.weight") == "500\n"
    ops = [(op, os.path.relpath(path, str(tmp_path))) for op, path, _ in fs.log]
    joins = [i for i, (op, path) in enumerate(ops) if path.endswith("cgroup.procs")]
    assert len(joins) == len(V1)
    assert joins[0] > max(i for i, (op, path) in enumerate(ops) if op == "mkdir"), \
        "every limit is set before the process joins any cgroup"
    assert [path.split("/")[0] for op, path in ops if path.endswith("cgroup.procs")] == list(V1)
    fs.exit(4242)
    mgr.destroy()
    assert fs.tree() == sorted([str(tmp_path)] + [str(tmp_path / s) for s in V1])


def test_v1_swap_accounting_and_bfq(tmp_path):
    fs, hier = v1_tree(tmp_path, swap=False, bfq=True)
    mgr = cgroups.new_manager(cgroup_config(memory=1 << 20, blkio_weight=300), hier, fs)
    mgr.apply(1)  # derived memsw skipped without swap accounting; BFQ takes the weight
    assert read(mgr.paths["blkio"] + "/blkio.bfq.weight") == "300\n"
    fs.exit(1)
    mgr.destroy()
    explicit = cgroup_config(memory=1 << 20, memory_swap=2 << 20)
    with pytest.raises(ContainerError) as exc:
        cgroups.new_manager(explicit, hier, fs).apply(1)
    assert "cgroups.memory_swap" in str(exc.value)
    assert "memory.memsw.limit_in_bytes" in str(exc.value)
    assert fs.tree() == sorted([str(tmp_path)] + [str(tmp_path / s) for s in V1])


def test_v1_missing_hierarchy_is_named_before_anything_is_made(tmp_path):
    fs, hier = v1_tree(tmp_path, v1=("memory", "devices"))
    with pytest.raises(ContainerError) as exc:
        cgroups.new_manager(cgroup_config(pids_limit=5), hier, fs).apply(1)
    assert str(exc.value).startswith("cgroups.pids_limit: needs the pids controller")
    assert fs.log == []


def test_parents_are_made_and_removed_and_shared_ones_stay(tmp_path):
    fs, hier = v1_tree(tmp_path, v1=("memory", "cpuset"))
    a = cgroups.new_manager(cgroup_config(name="a", parent="p/q"), hier, fs)
    b = cgroups.new_manager(cgroup_config(name="b", parent="p/q"), hier, fs)
    a.apply(1)
    b.apply(2)
    assert read(str(tmp_path / "cpuset/p/cpuset.cpus")) == "0-1\n"  # each new level copied
    fs.exit(1)
    fs.exit(2)
    a.destroy()  # p/q holds b: it stays
    assert os.path.isdir(str(tmp_path / "memory/p/q/b"))
    assert not os.path.exists(str(tmp_path / "memory/p/q/a"))
    b.destroy()  # b did not create p/q: it stays too (another owner's)
    assert os.path.isdir(str(tmp_path / "memory/p/q"))


def test_an_existing_relative_cgroup_is_refused_an_absolute_one_joined(tmp_path):
    fs, hier = v1_tree(tmp_path, v1=("memory",))
    fs.mkdir(str(tmp_path / "memory/taken"))
    with pytest.raises(SyscallError) as exc:
        cgroups.new_manager(cgroup_config(name="taken"), hier, fs).apply(1)
    assert exc.value.errno == errno.EEXIST and "exists already" in str(exc.value)
    mgr = cgroups.new_manager(cgroup_config(name="taken", parent="/"), hier, fs)
    mgr.apply(7)
    assert read(mgr.paths["memory"] + "/cgroup.procs") == "7\n"
    fs.exit(7)
    mgr.destroy()
    assert os.path.isdir(mgr.paths["memory"]), "not created by this manager: not removed"


def test_removal_gives_up_after_its_bound_naming_the_path(tmp_path):
    fs, hier = v1_tree(tmp_path, v1=("memory", "freezer"))
    mgr = cgroups.new_manager(cgroup_config(), hier, fs)
    mgr.apply(99)
    fs._move(str(tmp_path / "freezer"), "99")  # out of the freezer cgroup only
    with pytest.raises(SyscallError) as exc:
        mgr.destroy(timeout=0.05)
    assert exc.value.errno == errno.EBUSY
    assert exc.value.path == mgr.paths["memory"]
    assert "processes inside: 99" in str(exc.value)
    assert "attempts" in str(exc.value)
    assert not os.path.exists(mgr.paths["freezer"]), "the other hierarchies still went"


def test_loaded_manager_works_on_the_saved_paths(tmp_path):
    fs, hier = v1_tree(tmp_path, v1=("memory", "freezer", "cpuacct", "pids"))
    mgr = cgroups.new_manager(cgroup_config(name="c", pids_limit=9), hier, fs)
    mgr.apply(5)
    other = cgroups.load_manager(dict(mgr.paths), fs)
    assert other.driver == "cgroupfs-v1"
    other.freeze()
    assert mgr.freezer_state() == "FROZEN"
    other.thaw()
    assert other.freezer_state() == "THAWED"
    assert other.pids() == [5]
    assert other.stats()["cgroup_stats"]["pids_stats"] == {"current": 0, "limit": 9}
    with pytest.raises(ContainerError):
        other.apply(6)
    fs.exit(5)
    other.destroy()
    assert fs.tree() == sorted(str(tmp_path / s) for s in ("", "memory", "freezer",
                                                            "cpuacct", "pids"))


# --- v2 ---------------------------------------------------------------------------------------

def test_v2_apply_writes_converted_values_and_a_device_program(tmp_path):
    fs, hier = v2_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c2", **FULL), hier, fs)
    assert mgr.driver == "cgroupfs-v2" and mgr.paths == {UNIFIED: str(tmp_path / "c2")}
    mgr.apply(31)
    p = mgr.paths[UNIFIED]
    expect = {"cpu.weight": "59", "cpu.max": "50000 100000", "cpuset.cpus": "1",
              "io.weight": "4950", "memory.max": str(64 << 20), "memory.low": str(32 << 20),
              "memory.swap.max": str(64 << 20), "pids.max": "20", "cgroup.procs": "31"}
    for name, value in expect.items():
        assert read(p + "/" + name) == value + "\n", name
    assert fs.log[-2][0] == "bpf" and fs.log[-1][1].endswith("cgroup.procs")
    assert fs.programs[p]  # built from the two rules
    fs.exit(31)
    mgr.destroy()
    assert fs.tree() == [str(tmp_path)]


def test_v2_enables_controllers_only_in_parents_it_creates(tmp_path):
    fs, hier = v2_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(name="c", parent="/minins/x", memory=1 << 20),
                              hier, fs)
    mgr.apply(1)
    top, mid = str(tmp_path / "minins"), str(tmp_path / "minins/x")
    assert read(top + "/cgroup.subtree_control").split() == ["memory", "cpu", "io", "pids"]
    assert set(read(mid + "/cgroup.subtree_control").split()) == {"memory", "cpu", "io", "pids"}
    assert read(mgr.paths[UNIFIED] + "/cgroup.subtree_control") == ""  # the leaf: none
    writes = [path for op, path, _ in fs.log if path.endswith("subtree_control")]
    assert str(tmp_path / "cgroup.subtree_control") not in writes, "the root is not ours"
    fs.exit(1)
    mgr.destroy()
    assert fs.tree() == [str(tmp_path)]


def test_v2_controller_bound_elsewhere_is_reported(tmp_path):
    fs, hier = v2_tree(tmp_path, controllers=("pids",), enabled=("pids",))
    hier.v1["memory"] = "/sys/fs/cgroup/memory"
    with pytest.raises(ContainerError) as exc:
        cgroups.new_manager(cgroup_config(memory=1 << 20), hier, fs, driver="v2").apply(1)
    msg = str(exc.value)
    assert msg.startswith("cgroups.memory: needs the memory controller, which is not "
                          "available in the cgroup v2 hierarchy at %s" % tmp_path)
    assert "bound to the cgroup v1 hierarchy at /sys/fs/cgroup/memory" in msg
    assert fs.log == []


def test_v2_controller_not_delegated_is_reported(tmp_path):
    fs, hier = v2_tree(tmp_path, enabled=("memory",))
    with pytest.raises(ContainerError) as exc:
        cgroups.new_manager(cgroup_config(pids_limit=3, memory=1 << 20), hier, fs).apply(1)
    msg = str(exc.value)
    assert msg.startswith("cgroups.pids_limit: needs the pids controller, which %s does not "
                          "delegate" % tmp_path)
    assert "cgroup.subtree_control, which has: memory" in msg
    assert fs.log == []


def test_v2_oom_events_from_memory_events(tmp_path):
    fs, hier = v2_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(memory=1 << 20), hier, fs)
    mgr.apply(1)
    events = mgr.oom_events()
    try:
        assert events.wait(0) == 0
        fs.write(mgr.paths[UNIFIED] + "/memory.events", "max 3\noom 2\noom_kill 2")
        assert events.wait(5) == 2
        fs.write(mgr.paths[UNIFIED] + "/memory.events", "max 4\noom 3\noom_kill 3")
        assert next(iter(events)) == 1
        assert events.total == 3
        fs.exit(1)
        mgr.destroy()
        assert events.wait(5) is None and list(events) == []  # the cgroup is gone
    finally:
        events.close()


# --- any single failing step leaves nothing --------------------------------------------------

def _steps(make):
    fs, hier, cfg = make()
    cgroups.new_manager(cfg, hier, fs).apply(4242)
    return len(fs.log)


def _v1_case(tmp_path):
    def make():
        root = tmp_path / ("t%d" % len(os.listdir(str(tmp_path))))
        root.mkdir()
        fs, hier = v1_tree(root, v2=())
        return fs, hier, cgroup_config(parent="a/b", freezer="FROZEN", **FULL)
    return make


def _v2_case(tmp_path):
    def make():
        root = tmp_path / ("t%d" % len(os.listdir(str(tmp_path))))
        root.mkdir()
        fs, hier = v2_tree(root)
        return fs, hier, cgroup_config(parent="a/b", freezer="FROZEN", **FULL)
    return make


@pytest.mark.parametrize("case", [_v1_case, _v2_case], ids=["v1", "v2"])
def test_a_failure_at_any_step_undoes_everything(tmp_path, case):
    make = case(tmp_path)
    total = _steps(make)
    assert total > 15
    for n in range(1, total + 1):
        fs, hier, cfg = make()
        before = fs.tree()
        fs.fail_at = (n, errno.EIO)
        mgr = cgroups.new_manager(cfg, hier, fs)
        with pytest.raises(SyscallError) as exc:
            mgr.apply(4242)
        assert exc.value.errno == errno.EIO, n
        assert fs.tree() == before, "step %d: %s left behind" % (n, fs.log[n - 1])
        for path in before:  # the pid went back where it started, nowhere else
            procs = path + "/cgroup.procs"
            if os.path.exists(procs):
                assert set(read(procs).split()) <= {"4242"}


# --- stats parsing ----------------------------------------------------------------------------

CFQ = """8:0 Read 1282048
8:0 Write 2195456
8:0 Sync 2195456
8:0 Async 1282048
8:0 Total 3477504
Total 3477504
"""


def test_parse_blkio_and_io_stat():
    got = st.parse_blkio(CFQ)
    assert got[0] == {"major": 8, "minor": 0, "op": "Read", "value": 1282048}
    assert len(got) == 5
    assert st.parse_blkio("8:0 6792\n") == [{"major": 8, "minor": 0, "op": "", "value": 6792}]
    with pytest.raises(ValueError):
        st.parse_blkio("8:0 Read\n")
    nbytes, nios = st.parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    assert nbytes == [{"major": 259, "minor": 0, "op": "Read", "value": 10},
                      {"major": 259, "minor": 0, "op": "Write", "value": 20}]
    assert [e["value"] for e in nios] == [1, 2]


def test_stats_shape_from_a_tree(tmp_path):
    fs, hier = v2_tree(tmp_path)
    mgr = cgroups.new_manager(cgroup_config(), hier, fs)
    mgr.apply(1)
    p = mgr.paths[UNIFIED]
    fs.write(p + "/cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 4\n"
             "nr_throttled 1\nthrottled_usec 3")
    fs.write(p + "/memory.current", "4096")
    fs.write(p + "/memory.events", "max 6\noom_kill 0")
    s = mgr.stats()["cgroup_stats"]
    assert s["cpu_stats"]["cpu_usage"] == {"total_usage": 7000, "percpu_usage": [],
                                           "usage_in_kernelmode": 2000,
                                           "usage_in_usermode": 5000}
    assert s["cpu_stats"]["throttling_data"] == {"periods": 4, "throttled_periods": 1,
                                                 "throttled_time": 3000}
    assert (s["memory_stats"]["usage"], s["memory_stats"]["failcnt"]) == (4096, 6)
    assert s["memory_stats"]["stats"] == {"anon": 0, "file": 0}
    assert set(s) == {"cpu_stats", "memory_stats", "blkio_stats", "pids_stats"}
    fs.exit(1)
    mgr.destroy()
