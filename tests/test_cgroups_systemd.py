"""The systemd cgroup driver against a real systemd, as root. It runs where systemd is PID 1's
manager and answers on D-Bus -- in the pure cgroup v2 guest of tools/vm-cgroup-v2-tests
(systemd 252) -- and skips elsewhere, saying why.

A container's scope must show in ``systemctl status``, its limits in the unit's properties
and in the cgroup files; pause, resume, stats, kill-all, OOM events and ``set`` must work;
removal must leave no unit and no cgroup. Every scope is named after the test and stopped
on every path.
"""
import os
import signal
import subprocess
import time

import pytest

from cgroups_support import Child, Counter, alive, cgroup_config, device, idle, tree, wait_for
from minins import cgroups
from minins.cgroups import values
from minins.cgroups.discovery import UNIFIED, discover
from minins.errors import ConfigError, DBusError


def _systemd_here():
    if os.geteuid() != 0:
        return "the systemd driver tests need root"
    if not os.path.isdir("/run/systemd/system"):
        return "this host was not booted with systemd: run tools/vm-cgroup-v2-tests"
    from minins.dbus import systemd

    try:
        with systemd.connect(timeout=10) as sd:
            sd.version()
    except (OSError, DBusError) as e:
        return "systemd does not answer on D-Bus here (%s)" % e
    return None


WHY_NOT = _systemd_here()
pytestmark = [pytest.mark.root, pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))]
HIER = discover() if WHY_NOT is None else None


def unique(tag):
    return "t%s-%d-%s" % (tag, os.getpid(), os.urandom(3).hex())


def systemctl(*args):
    return subprocess.run(("systemctl", "--no-pager") + args, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120).stdout.decode()


def show(unit, *props):
    out = systemctl("show", unit, "-p", ",".join(props))
    got = {}
    for line in out.splitlines():  # a list property comes one line per entry
        if "=" in line:
            k, v = line.split("=", 1)
            got[k] = got[k] + "\n" + v if k in got else v
    return got


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture
def scopes():
    made, kids = [], []

    class Factory(object):
        def manager(self, **kw):
            kw.setdefault("name", unique("sd"))
            kw["driver"] = "systemd"
            mgr = cgroups.new_manager(cgroup_config(**kw))
            made.append(mgr)
            return mgr

        def child(self, fn):
            kid = Child(fn)
            kids.append(kid)
            return kid

    yield Factory()
    for kid in kids:
        kid.close()
    for mgr in made:
        mgr.destroy()


def test_the_scope_shows_in_systemctl_status_with_its_limits(scopes):
    unified = not HIER.v1
    mgr = scopes.manager(memory=64 << 20, memory_reservation=16 << 20, cpu_shares=512,
                         cpu_quota=25000, cpu_period=50000, pids_limit=50, blkio_weight=500,
                         cpuset_cpus="0", allowed_devices=[device("c", 1, 3),
                                                           device("c", 136, -1, "rw")])
    assert mgr.driver == ("systemd-v2" if unified else "systemd-v1")
    assert mgr.unit.startswith("minins-t") and mgr.unit.endswith(".scope")
    kid = scopes.child(idle)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line(60) == "ready"
    status = systemctl("status", mgr.unit)
    assert mgr.unit in status and "active (running)" in status and str(kid.pid) in status
    p = mgr.paths[UNIFIED]
    assert p == HIER.unified + "/system.slice/" + mgr.unit
    assert read("/proc/%d/cgroup" % kid.pid) == "0::/system.slice/%s\n" % mgr.unit
    props = show(mgr.unit, "Slice", "Delegate", "MemoryMax", "MemoryLow", "TasksMax",
                 "CPUWeight", "IOWeight", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec",
                 "AllowedCPUs", "DevicePolicy", "DeviceAllow", "ControlGroup")
    assert props["Slice"] == "system.slice" and props["Delegate"] == "yes"
    assert props["ControlGroup"] == "/system.slice/" + mgr.unit
    assert props["MemoryMax"] == str(64 << 20) and props["MemoryLow"] == str(16 << 20)
    assert props["TasksMax"] == "50" and props["CPUWeight"] == "59"
    assert props["IOWeight"] == "4950"
    assert props["CPUQuotaPerSecUSec"] == "500ms" and props["CPUQuotaPeriodUSec"] == "50ms"
    assert props["AllowedCPUs"] == "0"
    assert props["DevicePolicy"] == "strict"
    assert "/dev/char/1:3 rwm" in props["DeviceAllow"] and "char-pts rw" in props["DeviceAllow"]
    # the same limits in the kernel's files
    assert read(p + "/memory.max") == "%d\n" % (64 << 20)
    assert read(p + "/memory.low") == "%d\n" % (16 << 20)
    assert read(p + "/pids.max") == "50\n" and read(p + "/cpu.weight") == "59\n"
    assert read(p + "/cpu.max") == "25000 50000\n"
    assert read(p + "/io.weight").split()[-1] == "4950"
    assert read(p + "/cpuset.cpus") == "0\n"
    # what systemctl says is what minins reads over D-Bus itself
    from minins.dbus import systemd

    with systemd.connect(private=False) as sd:  # the system bus this time
        assert sd.unit_property(mgr.unit, systemd.SCOPE, "ControlGroup") == "/system.slice/" + mgr.unit
        assert sd.unit_property(mgr.unit, systemd.SCOPE, "MemoryMax") == 64 << 20


def test_denied_devices_are_denied_in_the_scope(scopes):
    mgr = scopes.manager(allowed_devices=[device("c", 1, 3)])

    def try_open(out):
        for path in ("/dev/null", "/dev/zero"):
            try:
                os.close(os.open(path, os.O_RDONLY))
                os.write(out, b"ok\n")
            except OSError as e:
                os.write(out, ("%d\n" % e.errno).encode())
    kid = scopes.child(try_open)
    mgr.apply(kid.pid)
    kid.go()
    assert [kid.line(60), kid.line(60)] == ["ok", "1"]  # EPERM for /dev/zero


def test_pause_resume_stats_and_kill_all(scopes):
    counter = Counter()
    mgr = scopes.manager(memory=256 << 20)
    kid = scopes.child(lambda out: counter.spin())
    mgr.apply(kid.pid)
    kid.go()
    wait_for(lambda: counter.value() > 1000, 60, "the child to start counting")
    mgr.freeze()
    assert mgr.freezer_state() == "FROZEN"
    frozen_at = counter.value()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        assert counter.value() == frozen_at
    mgr.thaw()
    assert mgr.freezer_state() == "THAWED"
    wait_for(lambda: counter.value() > frozen_at + 1000, 60, "progress after thaw")
    s = mgr.stats()["cgroup_stats"]
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] == 1
    assert mgr.pids() == [kid.pid]
    mgr.freeze()  # kill-all of a paused container
    reaped = mgr.kill_all()
    assert os.WTERMSIG(reaped[kid.pid]) == signal.SIGKILL
    kid.status = reaped[kid.pid]
    assert mgr.pids() == []


def test_kill_all_takes_the_whole_tree(scopes):
    mgr = scopes.manager()
    kid = scopes.child(tree)
    mgr.apply(kid.pid)
    kid.go()
    pids = {int(kid.line(60).split()[1]) for _ in range(14)}
    reaped = mgr.kill_all()
    kid.status = reaped[kid.pid]
    assert mgr.pids() == []
    wait_for(lambda: not any(alive(p) for p in pids), 30, "the orphans to be reaped by init")


def test_oom_events(scopes):
    mgr = scopes.manager(memory=32 << 20, memory_swap=32 << 20)

    def family(out):  # the init stays; its child eats memory
        pid = os.fork()
        if pid == 0:
            buf = bytearray(256 << 20)
            for i in range(0, len(buf), 4096):
                buf[i] = 1
            os._exit(0)
        status = os.waitpid(pid, 0)[1]
        os.write(out, b"hog %d\n" % status)
        while True:
            time.sleep(3600)
    kid = scopes.child(family)
    mgr.apply(kid.pid)
    assert show(mgr.unit, "MemorySwapMax")["MemorySwapMax"] == "0"
    with mgr.oom_events() as events:
        kid.go()
        assert kid.line(120) == "hog %d" % signal.SIGKILL
        assert events.wait(30) >= 1
        assert alive(kid.pid)  # the kernel killed the hog, not the container
    assert read(mgr.paths[UNIFIED] + "/memory.events").split("oom_kill ")[1].split()[0] != "0"


def test_set_changes_limits_in_the_unit_and_the_files(scopes):
    mgr = scopes.manager(memory=64 << 20, pids_limit=50, cpu_quota=20000, cpu_period=100000)
    kid = scopes.child(idle)
    mgr.apply(kid.pid)
    p = mgr.paths[UNIFIED]
    mgr.set(cgroup_config(memory=96 << 20, pids_limit=70, cpu_quota=33333))
    props = show(mgr.unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
    assert props == {"MemoryMax": str(96 << 20), "TasksMax": "70",
                     "CPUQuotaPerSecUSec": "340ms"}  # systemd keeps whole percents
    assert read(p + "/memory.max") == "%d\n" % (96 << 20)
    assert read(p + "/pids.max") == "70\n"
    assert read(p + "/cpu.max") == "33333 100000\n"  # cgroupfs writes it exactly
    mgr.set(cgroup_config(pids_limit=-1))
    assert read(p + "/pids.max") == "max\n" and show(mgr.unit, "TasksMax")["TasksMax"] == "infinity"
    assert read(p + "/memory.max") == "%d\n" % (96 << 20)  # 0: unchanged


def test_removal_leaves_no_unit_and_no_cgroup(scopes):
    mgr = scopes.manager(pids_limit=10)
    kid = scopes.child(idle)
    mgr.apply(kid.pid)
    kid.go()
    assert kid.line(60) == "ready"
    path = mgr.paths[UNIFIED]
    st = mgr.to_state()
    assert st == {"cgroup_driver": mgr.driver, "cgroup_unit": mgr.unit,
                  "cgroup_paths": {UNIFIED: path}}
    loaded = cgroups.load_manager_from_state(st)  # what another command does
    assert loaded.unit == mgr.unit and loaded.pids() == [kid.pid]
    kid.status = loaded.kill_all()[kid.pid]
    loaded.destroy()
    wait_for(lambda: show(mgr.unit, "LoadState")["LoadState"] == "not-found", 60,
             "systemd to collect the unit")
    assert not os.path.exists(path)
    mgr.destroy()  # again: the unit is gone, which is fine


def test_a_unit_that_exists_is_a_clear_error(scopes):
    name = unique("dup")
    first = scopes.manager(name=name)
    kid = scopes.child(idle)
    first.apply(kid.pid)
    second = scopes.manager(name=name)
    other = scopes.child(idle)
    with pytest.raises(Exception) as e:
        second.apply(other.pid)
    assert "systemd has a unit %s already" % first.unit in str(e.value)
    assert "active" in show(first.unit, "ActiveState")["ActiveState"]  # left alone


def test_a_slice_of_our_own_and_a_prefix(scopes):
    mgr = scopes.manager(slice="minins-test.slice", scope_prefix="mtest")
    kid = scopes.child(idle)
    mgr.apply(kid.pid)
    assert mgr.unit.startswith("mtest-")
    assert mgr.paths[UNIFIED] == (HIER.unified + "/minins.slice/minins-test.slice/" + mgr.unit)
    assert show(mgr.unit, "Slice")["Slice"] == "minins-test.slice"
    kid.close()
    mgr.destroy()
    systemctl("stop", "minins-test.slice", "minins.slice")


def test_a_whole_container_with_the_systemd_driver(tmp_path):
    import minins
    from minins import config

    cid = unique("run")
    unit = "minins-%s.scope" % cid
    cfg = config.default_config()
    cfg = cfg.replace(cgroups=cfg.cgroups.replace(driver="systemd", memory=128 << 20))
    seen = {}
    r, w = os.pipe()

    def started():  # the container waits on its stdin meanwhile
        seen.update(show(unit, "ActiveState", "MemoryMax", "ControlGroup"))
        seen["memory.max"] = read(HIER.unified + "/system.slice/%s/memory.max" % unit)
        os.write(w, b"x")

    try:
        code = minins.run(cfg, ["/bin/sh", "-c", "head -c1 >/dev/null"], stdin=r,
                          data_path=str(tmp_path / cid), id=cid, start_callback=started)
    finally:
        os.close(r)
        os.close(w)
    assert code == 0
    assert seen == {"ActiveState": "active", "MemoryMax": str(128 << 20),
                    "ControlGroup": "/system.slice/" + unit, "memory.max": "%d\n" % (128 << 20)}
    assert not os.path.exists(HIER.unified + "/system.slice/" + unit)
    wait_for(lambda: show(unit, "LoadState")["LoadState"] == "not-found", 60,
             "systemd to collect the unit")


def _minins(root, *args):
    """The command line; its output goes through files, not pipes: a detached container
    keeps the descriptors it was given, and a pipe would not end while it runs."""
    import sys
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run([sys.executable, "-m", "minins", "--root", root] + list(args),
                           cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=300)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    return p


def test_the_command_line_runs_a_container_in_a_scope(tmp_path):
    # As a user would: `run -d --cgroup-driver systemd`, then every later command reads the
    # state back (statecheck included) and uses the systemd driver it records.
    import json

    root = str(tmp_path / "state")
    cid = unique("cli")
    unit = "minins-%s.scope" % cid
    path = HIER.unified + "/system.slice/" + unit
    try:
        p = _minins(root, "run", "-d", "--id", cid, "--cgroup-driver", "systemd", "-m", "64m",
                    "--pids-limit", "20", "--", "sleep", "600")
        assert p.returncode == 0, p.stderr
        assert "active (running)" in systemctl("status", unit)
        assert show(unit, "MemoryMax", "TasksMax") == {"MemoryMax": str(64 << 20),
                                                       "TasksMax": "20"}
        with open(os.path.join(root, cid, "state.json")) as f:
            st = json.load(f)
        assert st["cgroup_driver"] == "systemd-v2" and st["cgroup_unit"] == unit
        assert st["cgroup_paths"] == {UNIFIED: path}
        p = _minins(root, "state", cid)
        assert p.returncode == 0 and json.loads(p.stdout)["status"] == "running", p.stderr
        pid = json.loads(p.stdout)["pid"]
        p = _minins(root, "ps", cid)
        assert p.returncode == 0 and str(pid) in p.stdout.split(), p.stderr
        assert _minins(root, "pause", cid).returncode == 0
        assert read(path + "/cgroup.freeze") == "1\n"
        assert _minins(root, "resume", cid).returncode == 0
        assert read(path + "/cgroup.freeze") == "0\n"
        p = _minins(root, "stats", cid)
        assert p.returncode == 0 and "memory_stats" in p.stdout, p.stderr
        p = _minins(root, "kill", "--all", cid, "KILL")
        assert p.returncode == 0, p.stderr
        wait_for(lambda: not alive(pid), 60, "the container's init to die")
        p = _minins(root, "delete", cid)
        assert p.returncode == 0, p.stderr
        wait_for(lambda: show(unit, "LoadState")["LoadState"] == "not-found", 60,
                 "systemd to collect the unit")
        assert not os.path.exists(path) and not os.path.exists(os.path.join(root, cid))
    finally:
        _minins(root, "delete", "--force", cid)
        systemctl("stop", unit)


def test_a_failed_scope_left_behind_is_reset_and_started_again(scopes):
    # A scope whose stop timed out stays loaded as failed (a container's init, PID 1 of
    # its namespace, ignores SIGTERM): without ResetFailedUnit its name was taken for good.
    name = unique("failed")
    unit = "minins-%s.scope" % name
    p = subprocess.Popen(["systemd-run", "--quiet", "--scope", "--unit", unit, "--slice",
                          "system.slice", "-p", "TimeoutStopSec=1", "sh", "-c",
                          "trap '' TERM; sleep 600"])
    try:
        wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "active", 60,
                 "the scope to start")
        systemctl("stop", unit)
        assert show(unit, "ActiveState")["ActiveState"] == "failed"
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(60)
    mgr = scopes.manager(name=name)
    kid = scopes.child(idle)
    mgr.apply(kid.pid)
    assert mgr.unit == unit and show(unit, "ActiveState")["ActiveState"] == "active"
    assert mgr.pids() == [kid.pid]
