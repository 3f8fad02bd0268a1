"""The v1 driver on this host's real hierarchies, as root.

Every cgroup is made under this process's own cgroup in each hierarchy and removed on every
path (the ``managers`` fixture kills and destroys whatever a test left); the "containers" are
plain forked processes (:class:`cgroups_support.Child`).
"""
import errno
import os
import signal
import time

import pytest

from cgroups_support import (Child, Counter, alive, cgroup_config, device, forker, idle, tree,
                             unique_name, wait_for)
from minins import cgroups
from minins.cgroups.discovery import UNIFIED, Hierarchies, discover
from minins.cgroups.fs import CgroupFs
from minins.errors import SyscallError

HIER = discover()
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroup v1 tests need root"),
    pytest.mark.skipif(not HIER.v1, reason="no cgroup v1 hierarchy is mounted here"),
]


def needs(*subsystems):
    missing = [s for s in subsystems if s not in HIER.v1]
    return pytest.mark.skipif(bool(missing), reason="no v1 hierarchy for %s" % missing)


@pytest.fixture
def managers():
    """Make managers and children; on the way out kill, reap and remove everything."""
    made, kids = [], []

    class Factory(object):
        def manager(self, hier=HIER, fs=None, **kw):
            kw.setdefault("name", unique_name("v1"))
            mgr = cgroups.new_manager(cgroup_config(**kw), hier, fs)
            made.append(mgr)
            return mgr

        def child(self, fn):
            kid = Child(fn)
            kids.append(kid)
            return kid

    yield Factory()
    for mgr in made:
        try:
            if mgr.paths and any(os.path.isdir(p) for p in mgr.paths.values()):
                mgr.kill_all(timeout=5)
        finally:
            mgr.destroy()
    for kid in kids:
        kid.close()


def read(path):
    with open(path) as f:
        return f.read()


def test_limits_are_set_in_the_kernel_and_exec_joins(managers):
    cpus = read(HIER.own_dir("cpuset") + "/cpuset.cpus").strip() if "cpuset" in HIER.v1 else ""
    last = cpus.replace(",", "-").split("-")[-1]
    mgr = managers.manager(memory=64 << 20, memory_reservation=16 << 20, cpu_shares=512,
                           cpu_quota=25000, cpu_period=50000, cpuset_cpus=last,
                           pids_limit=50, blkio_weight=300,
                           allowed_devices=[device("c", 1, 3), device("c", 136, -1, "rw")])
    kid = managers.child(idle)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line() == "ready"
    p = mgr.paths
    if "memory" in p:
        assert int(read(p["memory"] + "/memory.limit_in_bytes")) == 64 << 20
        assert int(read(p["memory"] + "/memory.soft_limit_in_bytes")) == 16 << 20
        if os.path.exists(p["memory"] + "/memory.memsw.limit_in_bytes"):
            assert int(read(p["memory"] + "/memory.memsw.limit_in_bytes")) == 128 << 20
    if "cpu" in p:
        assert read(p["cpu"] + "/cpu.shares") == "512\n"
        assert read(p["cpu"] + "/cpu.cfs_period_us") == "50000\n"
        assert read(p["cpu"] + "/cpu.cfs_quota_us") == "25000\n"
    if "cpuset" in p:
        assert read(p["cpuset"] + "/cpuset.cpus").strip() == last
        assert read(p["cpuset"] + "/cpuset.mems") == read(HIER.own_dir("cpuset")
                                                          + "/cpuset.mems")
    if "pids" in p:
        assert read(p["pids"] + "/pids.max") == "50\n"
    if "blkio" in p:
        weight = [f for f in ("blkio.weight", "blkio.bfq.weight")
                  if os.path.exists(p["blkio"] + "/" + f)][0]
        assert read(p["blkio"] + "/" + weight).split()[-1] == "300"
    if "devices" in p:
        assert read(p["devices"] + "/devices.list").split("\n")[:2] == ["c 1:3 rwm",
                                                                         "c 136:* rw"]
    own = read("/proc/%d/cgroup" % kid.pid)
    for key, path in p.items():
        rel = path[len(HIER.mount(key)):]
        assert (":%s:%s\n" % ("" if key == UNIFIED else key, rel) in own
                or ",%s" % key in own), (key, own)
    second = managers.child(idle)
    cgroups.load_manager(mgr.paths).join(second.pid)  # what `minins exec` does
    assert sorted(mgr.pids()) == sorted([kid.pid, second.pid])
    assert read("/proc/%d/cgroup" % second.pid) == own


@needs("memory")
def test_memory_limit_gets_the_process_oom_killed_and_the_event_is_seen(managers):
    mgr = managers.manager(memory=32 << 20)

    def hog(out):
        buf = bytearray(256 << 20)
        for i in range(0, len(buf), 4096):  # touch every page: now it is charged
            buf[i] = 1
        os.write(out, b"survived\n")
    kid = managers.child(hog)
    mgr.apply(kid.pid)
    with mgr.oom_events() as events:
        assert events.wait(0) == 0
        kid.go()
        status = kid.wait(30)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert events.wait(10) >= 1
        assert events.total >= 1
        stats = mgr.stats()["cgroup_stats"]["memory_stats"]
        assert stats["failcnt"] > 0 and stats["max_usage"] >= 30 << 20
        mgr.destroy()
        assert events.wait(10) is None  # removal ends the stream


@needs("pids")
def test_pids_limit_makes_fork_fail_inside(managers):
    mgr = managers.manager(pids_limit=4)
    kid = managers.child(forker)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line() == "forked 3 then EAGAIN"
    assert len(mgr.pids()) == 4


@needs("freezer")
def test_a_frozen_container_makes_no_progress_and_resumes_after_thaw(managers):
    counter = Counter()
    mgr = managers.manager()
    kid = managers.child(lambda out: counter.spin())
    mgr.apply(kid.pid)
    kid.go()
    wait_for(lambda: counter.value() > 1000, what="the child to start counting")
    mgr.freeze()
    assert mgr.freezer_state() == "FROZEN"
    frozen_at = counter.value()
    end = time.monotonic() + 0.3  # watch it for a while: not a single step
    while time.monotonic() < end:
        assert counter.value() == frozen_at
    mgr.thaw()
    assert mgr.freezer_state() == "THAWED"
    wait_for(lambda: counter.value() > frozen_at + 1000, what="progress after thaw")


def _kill_all_leaves_nothing(managers, hier):
    mgr = managers.manager(hier=hier)
    kid = managers.child(tree)
    mgr.apply(kid.pid)
    kid.go()
    pids = {int(kid.line().split()[1]) for _ in range(3 * 4 + 2)}
    assert kid.pid in pids and len(pids) == 14
    assert all(alive(p) for p in pids)
    reaped = mgr.kill_all()
    assert list(reaped) == [kid.pid] and os.WTERMSIG(reaped[kid.pid]) == signal.SIGKILL
    kid.status = reaped[kid.pid]
    assert mgr.pids() == []
    wait_for(lambda: not any(alive(p) for p in pids), 5, "the orphans to be reaped by init")
    return mgr


@pytest.mark.parametrize("unified", [True, False], ids=["cgroup.kill", "freezer"])
@needs("freezer")
def test_kill_all_of_a_paused_container(managers, unified):
    if unified and not HIER.unified:
        pytest.skip("no cgroup v2 hierarchy here (not a hybrid host)")
    mgr = managers.manager(hier=HIER if unified else Hierarchies(HIER.v1, None, HIER.own))
    kid = managers.child(idle)
    mgr.apply(kid.pid)
    assert bool(mgr._kill_file()) == unified, "cgroup.kill needs Linux 5.14"
    kid.go()
    assert kid.line() == "ready"
    mgr.freeze()
    reaped = mgr.kill_all()  # a frozen v1 task dies only once thawed
    assert os.WTERMSIG(reaped[kid.pid]) == signal.SIGKILL
    kid.status = reaped[kid.pid]
    assert mgr.freezer_state() == "THAWED" and mgr.pids() == []


@pytest.mark.skipif(not HIER.unified, reason="no cgroup v2 hierarchy here (not a hybrid host)")
def test_kill_all_with_cgroup_kill_leaves_nothing(managers):
    mgr = _kill_all_leaves_nothing(managers, HIER)
    assert mgr._kill_file(), "cgroup.kill needs Linux 5.14"


@needs("freezer")
def test_kill_all_by_freeze_kill_thaw_leaves_nothing(managers):
    no_v2 = Hierarchies(HIER.v1, None, HIER.own)
    mgr = _kill_all_leaves_nothing(managers, no_v2)
    assert mgr._kill_file() is None
    assert mgr.freezer_state() == "THAWED"  # thawed again, always


def test_kill_all_without_a_freezer_still_leaves_nothing(managers):
    # Nothing stops the forker between listing and killing: the loop comes back for it.
    bare = Hierarchies({k: v for k, v in HIER.v1.items() if k != "freezer"}, None, HIER.own)
    mgr = _kill_all_leaves_nothing(managers, bare)
    assert "freezer" not in mgr.paths and mgr._kill_file() is None


@needs("devices")
def test_a_denied_device_cannot_be_opened(managers):
    mgr = managers.manager(allowed_devices=[device("c", 1, 3)])  # /dev/null only

    def try_open(out):
        for path in ("/dev/null", "/dev/zero", "/dev/full"):
            try:
                os.close(os.open(path, os.O_RDONLY))
                os.write(out, b"%s ok\n" % path.encode())
            except OSError as e:
                os.write(out, b"%s %s\n" % (path.encode(), errno.errorcode[e.errno].encode()))
    kid = managers.child(try_open)
    mgr.apply(kid.pid)
    kid.go()
    assert [kid.line() for _ in range(3)] == ["/dev/null ok", "/dev/zero EPERM",
                                              "/dev/full EPERM"]
    assert kid.wait() == 0


@needs("cpuacct", "memory")
def test_stats_show_the_usage_the_test_caused(managers):
    mgr = managers.manager(pids_limit=10 if "pids" in HIER.v1 else 0)

    def work(out):
        while time.process_time() < 0.3:
            pass
        buf = bytearray(24 << 20)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        os.write(out, b"done\n")
        time.sleep(3600)
    kid = managers.child(work)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line(30) == "done"
    s = mgr.stats()["cgroup_stats"]
    usage = s["cpu_stats"]["cpu_usage"]
    assert usage["total_usage"] >= 0.25e9
    assert sum(usage["percpu_usage"]) == pytest.approx(usage["total_usage"], rel=0.05)
    assert usage["usage_in_usermode"] + usage["usage_in_kernelmode"] >= 0.2e9
    assert s["memory_stats"]["usage"] >= 24 << 20
    assert s["memory_stats"]["max_usage"] >= s["memory_stats"]["usage"]
    assert s["memory_stats"]["stats"]["rss"] + s["memory_stats"]["stats"].get(
        "shmem", 0) >= 20 << 20
    if "pids" in HIER.v1:
        assert s["pids_stats"] == {"current": 1, "limit": 10}
    import json

    shape = json.loads(json.dumps(mgr.stats()))  # plain JSON, the seed's keys
    assert set(shape["cgroup_stats"]["cpu_stats"]) == {"cpu_usage", "throttling_data"}
    assert set(shape["cgroup_stats"]["memory_stats"]) == {"usage", "max_usage", "failcnt",
                                                          "stats"}


def _own_subtrees():
    found = set()
    for key in list(HIER.v1) + ([UNIFIED] if HIER.unified else []):
        for dp, _, _ in os.walk(HIER.own_dir(key)):
            found.add(dp)
    return found


def test_a_dead_pid_fails_at_join_and_leaves_no_cgroup(managers):
    before = _own_subtrees()
    dead = managers.child(lambda out: 0)
    dead.close()  # killed and reaped: its pid is free
    mgr = managers.manager(memory=64 << 20, pids_limit=5,
                           allowed_devices=[device("c", 1, 3)])
    with pytest.raises(SyscallError) as exc:
        mgr.apply(dead.pid)
    assert exc.value.errno == errno.ESRCH and exc.value.path.endswith("/cgroup.procs")
    assert _own_subtrees() == before


class FailingFs(CgroupFs):
    """The real cgroupfs, with one write failing: the ``nth`` write to ``name``."""

    def __init__(self, name, nth):
        self.name, self.nth, self.seen = name, nth, 0

    def write(self, path, value):
        if path.endswith("/" + self.name):
            self.seen += 1
            if self.seen == self.nth:
                raise SyscallError(errno.EIO, "write", path, "injected")
        CgroupFs.write(self, path, value)


@pytest.mark.parametrize("name, nth", [("pids.max", 1), ("cgroup.procs", 4)])
def test_a_failure_half_way_leaves_no_cgroup_and_the_process_where_it_was(managers, name,
                                                                          nth):
    before = _own_subtrees()
    kid = managers.child(idle)
    origin = read("/proc/%d/cgroup" % kid.pid)
    mgr = managers.manager(fs=FailingFs(name, nth), memory=64 << 20, pids_limit=5,
                           cpu_shares=256, allowed_devices=[device("c", 1, 3)])
    with pytest.raises(SyscallError) as exc:
        mgr.apply(kid.pid)
    assert exc.value.errno == errno.EIO and exc.value.path.endswith(name)
    assert _own_subtrees() == before
    assert read("/proc/%d/cgroup" % kid.pid) == origin


def test_destroy_names_the_path_that_would_not_go(managers):
    mgr = managers.manager()
    kid = managers.child(idle)
    mgr.apply(kid.pid)
    t0 = time.monotonic()
    with pytest.raises(SyscallError) as exc:
        mgr.destroy(timeout=0.2)
    assert time.monotonic() - t0 < 2
    assert exc.value.errno == errno.EBUSY and exc.value.path in mgr.paths.values()
    assert "processes inside: %d" % kid.pid in str(exc.value)
    kid.status = mgr.kill_all()[kid.pid]
    mgr.destroy()
    assert not any(os.path.exists(p) for p in mgr.paths.values())


@needs("freezer")
def test_a_manager_loaded_from_saved_paths_pauses_lists_and_removes(managers):
    counter = Counter()
    mgr = managers.manager()
    kid = managers.child(lambda out: counter.spin())
    mgr.apply(kid.pid)
    kid.go()
    other = cgroups.load_manager(dict(mgr.paths))
    assert other.pids() == [kid.pid]
    other.freeze()
    assert mgr.freezer_state() == "FROZEN"
    other.thaw()
    wait_for(lambda: counter.value() > 0, what="the child to count")
    reaped = other.kill_all()
    assert list(reaped) == [kid.pid] and os.WTERMSIG(reaped[kid.pid]) == signal.SIGKILL
    kid.status = reaped[kid.pid]
    other.destroy()
    assert not any(os.path.exists(p) for p in mgr.paths.values())
