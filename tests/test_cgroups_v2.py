"""The v2 driver on the real unified hierarchy, as root. Focused: it also runs inside the
throw-away cgroup-v2 guest (tools/vm-cgroup-v2-tests), where code is 20-45x slower.

On a hybrid host (v2 hierarchy without controllers) the core features run for real:
cgroup.procs, cgroup.freeze, cgroup.kill, BPF device programs, and the clear error for
controllers bound to v1; the limit tests skip, naming the controller they need. In the guest
every controller is there and everything runs. Every cgroup is made under this process's own
v2 cgroup and removed on every path.
"""
import errno
import os
import signal
import time

import pytest

from cgroups_support import (Child, Counter, alive, cgroup_config, device, forker, idle, tree,
                             unique_name, wait_for)
from minins import cgroups
from minins.cgroups import bpf_devices
from minins.cgroups.discovery import UNIFIED, discover
from minins.cgroups.fs import CgroupFs
from minins.errors import ContainerError, SyscallError

HIER = discover()
OWN = HIER.own_dir(UNIFIED) if HIER.unified else None
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroup v2 tests need root"),
    pytest.mark.skipif(not HIER.unified, reason="no cgroup v2 hierarchy is mounted here"),
]


def delegated():
    """The controllers this process's own v2 cgroup gives its children."""
    with open(OWN + "/cgroup.subtree_control") as f:
        return set(f.read().split())


def needs(*controllers):
    missing = sorted(set(controllers) - delegated()) if HIER.unified else list(controllers)
    return pytest.mark.skipif(bool(missing), reason="%s not delegated to children of %s "
                              "(a hybrid host binds them to v1): run tools/vm-cgroup-v2-tests"
                              % (" ".join(missing), OWN))


@pytest.fixture
def managers():
    made, kids = [], []

    class Factory(object):
        def manager(self, fs=None, **kw):
            kw.setdefault("name", unique_name("v2"))
            mgr = cgroups.new_manager(cgroup_config(**kw), HIER, fs, driver="v2")
            made.append(mgr)
            return mgr

        def child(self, fn):
            kid = Child(fn)
            kids.append(kid)
            return kid

    yield Factory()
    for mgr in made:
        try:
            if os.path.isdir(mgr.paths[UNIFIED]):
                mgr.kill_all(timeout=5)
        finally:
            mgr.destroy()
    for kid in kids:
        kid.close()


def read(path):
    with open(path) as f:
        return f.read()


def own_subtree():
    return sorted(dp for dp, _, _ in os.walk(OWN))


def test_the_default_driver_follows_the_host():
    mgr = cgroups.new_manager(cgroup_config(name="c"))
    assert mgr.driver == ("cgroupfs-v1" if HIER.v1 else "cgroupfs-v2")
    assert mgr.paths[UNIFIED] == OWN.rstrip("/") + "/c"  # under our own cgroup
    assert not os.path.exists(mgr.paths[UNIFIED])  # nothing made before apply


def test_a_denied_device_cannot_be_opened(managers):
    mgr = managers.manager(allowed_devices=[device("c", 1, 3), device("c", 1, 5, "r")])
    scratch = "/dev/shm/minins-test-node-%d" % os.getpid()

    def try_open(out):
        for path, flags in (("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY),
                            ("/dev/zero", os.O_WRONLY), ("/dev/full", os.O_RDONLY)):
            try:
                os.close(os.open(path, flags))
                os.write(out, b"ok\n")
            except OSError as e:
                os.write(out, errno.errorcode[e.errno].encode() + b"\n")
        try:  # mknod of an allowed device without 'm': denied too
            os.mknod(scratch, 0o600 | 0o020000, os.makedev(1, 5))
            os.unlink(scratch)
            os.write(out, b"ok\n")
        except OSError as e:
            os.write(out, errno.errorcode[e.errno].encode() + b"\n")
    kid = managers.child(try_open)
    mgr.apply(kid.pid)
    fd = os.open(mgr.paths[UNIFIED], os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf_devices.query(fd)) == 1  # one program, ours
    finally:
        os.close(fd)
    kid.go()
    assert [kid.line() for _ in range(5)] == ["ok", "ok", "EPERM", "EPERM", "EPERM"]
    assert kid.wait() == 0


def test_joining_an_existing_cgroup_replaces_its_device_program(managers):
    first = managers.manager(allowed_devices=[device("c", 1, 3)])
    holder = managers.child(idle)
    first.apply(holder.pid)
    name = os.path.basename(first.paths[UNIFIED])
    own = HIER.own[UNIFIED].rstrip("/") or ""
    again = managers.manager(name=name, parent=own + "/",
                             allowed_devices=[device("c", 1, 5, "r")])
    assert again.paths == first.paths  # absolute: the same cgroup, joined as given

    def try_open(out):
        for path in ("/dev/null", "/dev/zero"):
            try:
                os.close(os.open(path, os.O_RDONLY))
                os.write(out, b"ok\n")
            except OSError as e:
                os.write(out, errno.errorcode[e.errno].encode() + b"\n")
    kid = managers.child(try_open)
    again.apply(kid.pid)
    fd = os.open(first.paths[UNIFIED], os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf_devices.query(fd)) == 1  # the old program was detached
    finally:
        os.close(fd)
    kid.go()
    assert [kid.line(), kid.line()] == ["EPERM", "ok"]
    kid.wait()
    again.destroy()
    assert os.path.isdir(first.paths[UNIFIED]), "not made by the second manager: it stays"


def test_a_frozen_container_makes_no_progress_and_resumes_after_thaw(managers):
    counter = Counter()
    mgr = managers.manager()
    kid = managers.child(lambda out: counter.spin())
    mgr.apply(kid.pid)
    kid.go()
    wait_for(lambda: counter.value() > 1000, 60, "the child to start counting")
    mgr.freeze()
    assert mgr.freezer_state() == "FROZEN"
    assert read(mgr.paths[UNIFIED] + "/cgroup.events").split()[-1] == "1"
    frozen_at = counter.value()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        assert counter.value() == frozen_at
    mgr.thaw()
    assert mgr.freezer_state() == "THAWED"
    wait_for(lambda: counter.value() > frozen_at + 1000, 60, "progress after thaw")


def test_kill_all_leaves_nothing_behind(managers):
    mgr = managers.manager()
    kid = managers.child(tree)
    mgr.apply(kid.pid)
    kid.go()
    pids = {int(kid.line(60).split()[1]) for _ in range(14)}
    assert kid.pid in pids and all(alive(p) for p in pids)
    assert mgr._kill_file(), "cgroup.kill (Linux 5.14+)"
    reaped = mgr.kill_all()
    assert list(reaped) == [kid.pid] and os.WTERMSIG(reaped[kid.pid]) == signal.SIGKILL
    kid.status = reaped[kid.pid]
    assert mgr.pids() == []
    assert read(mgr.paths[UNIFIED] + "/cgroup.events").startswith("populated 0")
    wait_for(lambda: not any(alive(p) for p in pids), 30, "the orphans to be reaped by init")


def test_kill_all_of_a_paused_container(managers):
    mgr = managers.manager()
    kid = managers.child(idle)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line(60) == "ready"
    mgr.freeze()
    reaped = mgr.kill_all()  # v2's freezer lets SIGKILL through
    assert os.WTERMSIG(reaped[kid.pid]) == signal.SIGKILL
    kid.status = reaped[kid.pid]
    assert mgr.pids() == []


def test_controllers_that_are_not_here_are_named(managers):
    have = delegated()
    missing = [c for c in ("memory", "pids", "cpu") if c not in have]
    if not missing:
        pytest.skip("every controller is delegated here")
    field = {"memory": "memory", "pids": "pids_limit", "cpu": "cpu_shares"}[missing[0]]
    value = {"memory": 1 << 20, "pids_limit": 5, "cpu_shares": 512}[field]
    mgr = managers.manager(**{field: value})
    before = own_subtree()
    with pytest.raises(ContainerError) as exc:
        mgr.apply(os.getpid())
    msg = str(exc.value)
    assert msg.startswith("cgroups.%s: needs the %s controller, which " % (field, missing[0]))
    if missing[0] in HIER.v1:
        assert "bound to the cgroup v1 hierarchy at %s" % HIER.v1[missing[0]] in msg
    assert own_subtree() == before


@needs("memory")
def test_a_cgroup_holding_processes_cannot_delegate_and_says_so(managers):
    outer = managers.manager()
    kid = managers.child(idle)
    outer.apply(kid.pid)  # a cgroup with a process in it, like a service's own cgroup
    inner = managers.manager(parent=outer.paths[UNIFIED][len(HIER.unified):],
                             memory=16 << 20)
    with pytest.raises(ContainerError) as exc:
        inner.apply(os.getpid())
    assert str(exc.value).startswith(
        "cgroups.memory: needs the memory controller, which %s does not delegate (it is "
        "not in its cgroup.subtree_control, which has: nothing)" % outer.paths[UNIFIED])
    assert os.listdir(outer.paths[UNIFIED]) and not os.path.exists(inner.paths[UNIFIED])
    with pytest.raises(OSError) as kernel:  # the kernel's own answer, for the record
        with open(outer.paths[UNIFIED] + "/cgroup.subtree_control", "w") as f:
            f.write("+memory")
    assert kernel.value.errno == errno.EBUSY


class FailingFs(CgroupFs):
    def __init__(self, name):
        self.name = name

    def write(self, path, value):
        if path.endswith("/" + self.name):
            raise SyscallError(errno.EIO, "write", path, "injected")
        CgroupFs.write(self, path, value)


def test_a_failure_half_way_leaves_no_cgroup(managers):
    before = own_subtree()
    kid = managers.child(idle)
    origin = read("/proc/%d/cgroup" % kid.pid)
    mgr = managers.manager(fs=FailingFs("cgroup.procs"), parent="outer/inner",
                           allowed_devices=[device("c", 1, 3)])
    with pytest.raises(SyscallError) as exc:
        mgr.apply(kid.pid)
    assert exc.value.errno == errno.EIO
    assert own_subtree() == before
    assert read("/proc/%d/cgroup" % kid.pid) == origin


@needs("memory", "pids", "cpu")
def test_limits_are_set_in_the_kernel(managers):
    have = delegated()
    kw = dict(memory=64 << 20, memory_reservation=16 << 20, cpu_shares=512, cpu_quota=25000,
              cpu_period=50000, pids_limit=50)
    if "io" in have:
        kw["blkio_weight"] = 500
    if "cpuset" in have:
        kw["cpuset_cpus"] = "0"
    mgr = managers.manager(**kw)
    kid = managers.child(idle)
    mgr.apply(kid.pid)
    p = mgr.paths[UNIFIED]
    assert read(p + "/memory.max") == "%d\n" % (64 << 20)
    assert read(p + "/memory.low") == "%d\n" % (16 << 20)
    if os.path.exists(p + "/memory.swap.max"):
        assert read(p + "/memory.swap.max") == "%d\n" % (64 << 20)
    assert read(p + "/cpu.weight") == "59\n"
    assert read(p + "/cpu.max") == "25000 50000\n"
    assert read(p + "/pids.max") == "50\n"
    if "io" in have:
        assert read(p + "/io.weight").split()[-1] == "4950"
    if "cpuset" in have:
        assert read(p + "/cpuset.cpus") == "0\n"
    assert read("/proc/%d/cgroup" % kid.pid).endswith(p[len(HIER.unified):] + "\n")


@needs("memory")
def test_memory_limit_gets_the_process_oom_killed_and_the_event_is_seen(managers):
    mgr = managers.manager(memory=32 << 20, memory_swap=32 << 20)  # no swap at all

    def hog(out):
        buf = bytearray(256 << 20)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        os.write(out, b"survived\n")
    kid = managers.child(hog)
    mgr.apply(kid.pid)
    with mgr.oom_events() as events:
        kid.go()
        status = kid.wait(120)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert events.wait(30) >= 1
        memory = mgr.stats()["cgroup_stats"]["memory_stats"]
        assert memory["failcnt"] > 0 and memory["stats"]["anon"] >= 0
        mgr.destroy()
        assert events.wait(30) is None  # removal ends the stream


@needs("pids")
def test_pids_limit_makes_fork_fail_inside(managers):
    mgr = managers.manager(pids_limit=4)
    kid = managers.child(forker)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line(60) == "forked 3 then EAGAIN"
    assert mgr.stats()["cgroup_stats"]["pids_stats"] == {"current": 4, "limit": 4}


def test_stats_show_the_usage_the_test_caused(managers):
    mgr = managers.manager()

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
    assert kid.line(120) == "done"
    s = mgr.stats()["cgroup_stats"]
    usage = s["cpu_stats"]["cpu_usage"]
    assert usage["total_usage"] >= 0.25e9  # cpu.stat is a core file: always there
    assert usage["usage_in_usermode"] + usage["usage_in_kernelmode"] >= 0.2e9
    if "memory" in delegated():
        assert s["memory_stats"]["usage"] >= 24 << 20
        assert s["memory_stats"]["stats"]["anon"] >= 20 << 20


@needs("memory", "pids")
def test_parents_it_creates_delegate_controllers_and_go_away(managers):
    before = own_subtree()
    mgr = managers.manager(parent="outer", memory=64 << 20, pids_limit=10)
    kid = managers.child(idle)
    mgr.apply(kid.pid)
    outer = os.path.dirname(mgr.paths[UNIFIED])
    assert {"memory", "pids"} <= set(read(outer + "/cgroup.subtree_control").split())
    assert read(mgr.paths[UNIFIED] + "/pids.max") == "10\n"
    kid.status = mgr.kill_all()[kid.pid]
    mgr.destroy()
    assert own_subtree() == before
