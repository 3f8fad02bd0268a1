"""OOM events, one per kill (issue 11, section 6): the watcher, the command line, and what a
container start or ``run`` says when the memory limit killed the container.

The real ones run on this host's memory cgroup (v1 here; v2 where the memory controller is
there), as root, below this process's own cgroup; a fake cgroupfs plays the kernel's part for
the order of wake-ups and counts.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from kernel import container_python

from cgroups_support import Child, cgroup_config, unique_name
from minins import cgroups, config
from minins.cgroups import oom
from minins.cgroups.discovery import discover

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIER = discover()
ROOT = os.geteuid() == 0
V1_MEMORY = "memory" in HIER.v1
V2_MEMORY = bool(HIER.unified) and not V1_MEMORY and os.path.exists(
    os.path.join(HIER.unified, "cgroup.controllers")) and "memory" in open(
    os.path.join(HIER.unified, "cgroup.controllers")).read().split()
needs_memcg = pytest.mark.skipif(not ROOT or not (V1_MEMORY or V2_MEMORY),
                                 reason="needs root and a memory cgroup controller")


# --- pure -------------------------------------------------------------------------------------

def test_the_kill_counter_is_read_from_either_file():
    assert oom.oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == 3
    assert oom.oom_kill_count("low 0\nhigh 0\nmax 9\noom 4\noom_kill 2\n") == 2
    assert oom.oom_kill_count("oom_kill_disable 0\nunder_oom 1\n") is None  # before 4.13


def _fake_memcg(tmp_path, kills):
    d = tmp_path / "memcg"
    d.mkdir(exist_ok=True)
    (d / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill %d\n"
                                          % kills)
    (d / "cgroup.event_control").write_text("")
    return str(d)


def _wake(events, times):
    import struct

    os.write(events.fileno(), struct.pack("=Q", times))  # what the kernel's eventfd_signal does


def test_v1_many_wakeups_for_one_kill_counted_late_are_one_event(tmp_path):
    from minins.cgroups.fs import REAL

    path = _fake_memcg(tmp_path, 2)
    with oom.V1OomEvents(path, REAL) as events:
        assert events.wait(0) == 0
        _wake(events, 6)  # six failed charges under OOM; the kill is not counted yet
        assert events.wait(0) == 0 and events.pending
        timer = threading.Timer(0.05, _fake_memcg, (tmp_path, 3))
        timer.start()
        assert events.wait(5) == 1  # the late count, seen without another wake-up
        timer.join()
        _wake(events, 2)  # more wake-ups, no more kills
        assert events.wait(SETTLE + 0.3) == 0 and not events.pending
        assert events.total == 1
        os.unlink(path + "/cgroup.event_control")  # the cgroup goes: the kernel signals
        _wake(events, 1)
        assert events.wait(5) is None


def test_v1_without_a_kill_counter_a_batch_of_wakeups_is_one_event(tmp_path):
    from minins.cgroups.fs import REAL

    path = _fake_memcg(tmp_path, 0)
    (tmp_path / "memcg" / "memory.oom_control").write_text("oom_kill_disable 0\n"
                                                           "under_oom 0\n")  # before 4.13
    with oom.V1OomEvents(path, REAL) as events:
        _wake(events, 1)
        assert events.wait(5) == 1


# --- the real kernel --------------------------------------------------------------------------

def hog(out):
    buf = bytearray(512 << 20)
    for i in range(0, len(buf), 4096):  # touch every page: charged to the cgroup
        buf[i] = 1
    os.write(out, b"survived\n")


def churn(out):
    # A new shmem page at every turn, charged to the cgroup (what a shell writing a file on a
    # tmpfs in a loop does): each charge that fails under OOM wakes a v1 watcher again.
    fd = os.memfd_create("churn")
    os.write(out, b"ready\n")
    i = 0
    while True:
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % i, 0)
        i += 1


@pytest.fixture
def memcg():
    made, kids = [], []

    class Factory(object):
        def manager(self, **kw):
            mgr = cgroups.new_manager(cgroup_config(name=unique_name("oom"), **kw), HIER)
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


SETTLE = 1.0  # oom.SETTLE


def test_settle_is_the_watchers():
    assert oom.SETTLE == SETTLE


def kernel_kills(mgr):
    """The kernel's oom_kill counter, read here (not through minins)."""
    if "memory" in mgr.paths:
        path = mgr.paths["memory"] + "/memory.oom_control"
    else:
        path = mgr.paths["unified"] + "/memory.events"
    with open(path) as f:
        return int(dict(line.split() for line in f)["oom_kill"])


@needs_memcg
@pytest.mark.parametrize("churners", [0, 2])
def test_one_oom_kill_is_one_event(memcg, churners):
    mgr = memcg.manager(memory=32 << 20, memory_swap=32 << 20)
    kid = memcg.child(hog)
    mgr.apply(kid.pid)
    others = [memcg.child(churn) for _ in range(churners)]
    for other in others:
        mgr.join(other.pid)
        other.go()
        assert other.line() == "ready"
    with mgr.oom_events() as events:
        assert events.wait(0) == 0 and kernel_kills(mgr) == 0
        kid.go()
        status = kid.wait(60)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert events.wait(10) >= 1
        for other in others:  # however they ended, they go now
            try:
                os.kill(other.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            other.wait(30)
        # However many times the kernel woke the watcher meanwhile, it reports the kills
        # the kernel counted, no more: past the settling time too.
        while events.wait(SETTLE + 0.5):
            pass
        assert events.total == kernel_kills(mgr) == mgr.oom_kills() >= 1
        mgr.destroy()
        assert events.wait(10) is None  # removal ends the stream


def _watch_lines(state_root, cid):
    return subprocess.Popen([sys.executable, "-m", "minins", "--root", state_root, "oom", cid],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_event_fd(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target in ("anon_inode:[eventfd]", "anon_inode:inotify"):
                return
        time.sleep(0.005)
    raise AssertionError("the oom watcher never registered")


# The hog makes itself the OOM killer's certain pick (anyone may raise their own
# oom_score_adj; lowering it needs CAP_SYS_RESOURCE, which a test cannot count on).
HOG = [container_python(), "-c",
       "open('/proc/self/oom_score_adj', 'w').write('1000')\n"
       "b = []\nwhile True: b.append(bytearray(1 << 20))"]
# A shell rewriting a file on the container's /tmp (a tmpfs) in a loop, as a busy container
# does: each charge that fails under OOM wakes a v1 watcher again. It ranks between the hog and
# the idle init: a dead hog's pages can stay charged for a moment after it has left the
# cgroup's task list, and a charge in that moment kills someone else than the hog.
CHURN = ["/bin/sh", "-c", "echo 500 > /proc/self/oom_score_adj; "
         "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done"]


def _usage(mgr):
    if "memory" in mgr.paths:
        path = mgr.paths["memory"] + "/memory.usage_in_bytes"
    else:
        path = mgr.paths["unified"] + "/memory.current"
    with open(path) as f:
        return int(f.read())


def _wait_until_uncharged(mgr, limit, timeout=30):
    """Until the killed hog's pages are given back to the cgroup (a condition, polled)."""
    deadline = time.monotonic() + timeout
    while _usage(mgr) > limit // 2:
        assert time.monotonic() < deadline, "the hog's memory was never uncharged"
        time.sleep(0.005)


@needs_memcg
def test_minins_oom_prints_one_line_per_kill(tmp_path):
    from minins import execin
    from minins.container import Container

    state_root = str(tmp_path / "state")
    limit = 32 << 20
    cfg = config.default_config().replace(cgroups=config.Cgroup(memory=limit, memory_swap=limit))
    null = open(os.devnull, "wb")
    cid = unique_name("oomy")
    # the init charges nothing: only the churner and the hogs are ever OOM-killed
    c = Container(cfg, ["/bin/sh", "-c", "exec sleep 1000000"], id=cid,
                  state_root=state_root, stdout=null, stderr=null)
    c.create()
    try:
        c.start()
        churner = execin.Entry(c.data_path, CHURN, stdout=null, stderr=null)
        churner.create()
        churner.start()
        watcher = _watch_lines(state_root, cid)
        try:
            _wait_for_event_fd(watcher.pid)
            for _ in range(3):
                assert execin.exec_in(c.data_path, HOG, stdout=null, stderr=null) == 137
                _wait_until_uncharged(c.cgroups, limit)
            time.sleep(SETTLE + 0.5)  # wake-ups after the kills must add nothing
            kills = kernel_kills(c.cgroups)
            assert kills >= 3
        finally:
            c.kill(signal.SIGKILL)
            churner.wait()
    finally:
        c.wait()  # removes the cgroup: the watcher's stream ends
        null.close()
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert sum(e["oom_kills"] for e in events) == kills == events[-1]["total"], out
    assert len(events) <= kills, out


def _memory_doc(limit):
    return dict(config.default_config().to_json(),
                cgroups={"memory": limit, "memory_swap": limit})


@needs_memcg
def test_a_start_killed_by_the_memory_limit_says_so(tmp_path):
    path = str(tmp_path / "c.json")
    with open(path, "w") as f:
        json.dump(_memory_doc(128 << 10), f)  # 128 KiB: the init cannot even start
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", str(tmp_path / "state"),
                           "run", "--config", path, "--", "true"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 125, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("minins: error: "), proc.stderr
    assert "OOM-killed" in lines[0] and "memory limit 131072" in lines[0], lines[0]
    assert not os.listdir(str(tmp_path / "state"))


@needs_memcg
def test_run_killed_by_the_memory_limit_gives_a_hint(tmp_path):
    path = str(tmp_path / "c.json")
    with open(path, "w") as f:
        json.dump(_memory_doc(32 << 20), f)
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", str(tmp_path / "state"),
                           "run", "--config", path, "--"] + HOG, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    assert proc.stderr.splitlines() == [
        "minins: the container was OOM-killed (memory limit %d)" % (32 << 20)], proc.stderr


@needs_memcg
def test_run_exiting_137_by_itself_gets_no_oom_hint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", str(tmp_path / "state"),
                           "run", "--", "sh", "-c", "exit 137"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137 and proc.stderr == "", proc.stderr
