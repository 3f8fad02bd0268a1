"""Living containers: exec into them, pause/resume, kill, ps, stats, oom, state, list, and
signals forwarded by `minins run`. Real kernel, as root."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import minins
from minins import config, execin, lifecycle, state
from minins.config import Namespace
from minins.container import Container
from minins.errors import StateError

from kernel import Subreaper, children, container_python, needs_root, needs_userns, open_fds

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOX = "box%d" % os.getpid()  # its cgroups are named after it: unique among concurrent runs
# The container's command: count forever into /tmp/count (the tmpfs of the container), with
# shell builtins only (no process comes and goes in the container meanwhile).
COUNTER = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; done"]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=REPO,
                          capture_output=True, text=True, **kw)


@pytest.fixture
def state_root(tmp_path):
    return str(tmp_path / "state")


class Running:
    """A container created and started by the library, waited for and removed at the end."""

    def __init__(self, cfg, args, state_root, cid):
        self._null = open(os.devnull, "wb")
        self.c = Container(cfg, args, id=cid, state_root=state_root,
                           stdout=self._null, stderr=self._null)
        self.c.create()
        self.c.start()
        self.data_path = self.c.data_path
        self.pid = self.c.pid

    def exec_out(self, args, **kw):
        with tempfile.TemporaryFile() as out:
            code = execin.exec_in(self.data_path, args, stdout=out, stderr=out, **kw)
            out.seek(0)
            return code, out.read().decode()

    def close(self):
        self.c.kill(signal.SIGKILL)
        try:
            self.c.wait()
        finally:
            self._null.close()


@pytest.fixture
def box(state_root):
    r = Running(config.default_config(), COUNTER, state_root, BOX)
    yield r
    r.close()


def test_exec_sees_the_inits_namespaces_and_cgroups(box):
    code, out = box.exec_out(["/bin/sh", "-c", "for n in pid uts ipc net mnt cgroup; do "
                                               "readlink /proc/self/ns/$n; done; echo ---; "
                                               "cat /proc/self/cgroup; echo ---; hostname; "
                                               "echo $$; readlink /proc/self/cwd"])
    assert code == 0, out
    ns, cgroups, rest = out.split("---\n")
    init_ns = [os.readlink("/proc/%d/ns/%s" % (box.pid, n))
               for n in ("pid", "uts", "ipc", "net", "mnt", "cgroup")]
    assert ns.split() == init_ns
    with open("/proc/%d/cgroup" % box.pid) as f:
        assert cgroups == f.read()
    host, pid, cwd = rest.split()
    assert host == "minins" and int(pid) > 1 and cwd == "/"


def test_exec_only_stdio_is_open_and_caps_are_the_containers(box):
    code, out = box.exec_out(["/bin/sh", "-c", "ls /proc/self/fd; echo ---; "
                                               "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"])
    fds = out.split("---")[0].split()
    assert code == 0 and fds == ["0", "1", "2", "3"]  # 3: ls's own directory
    assert "NoNewPrivs:\t1" in out and "CapEff:\t00000000a80425fb" in out


def test_exec_exit_codes(box):
    assert box.exec_out(["/bin/sh", "-c", "exit 9"])[0] == 9
    assert box.exec_out(["/bin/sh", "-c", "kill -TERM $$"])[0] == 128 + 15
    proc = cli("--root", os.path.dirname(box.data_path), "exec", "--id", BOX, "--",
               "no-such-cmd")
    assert proc.returncode == 127 and "no-such-cmd" in proc.stderr
    proc = cli("--root", os.path.dirname(box.data_path), "exec", BOX, "/etc/hostname")
    assert proc.returncode == 126
    proc = cli("exec", "--data-path", box.data_path, "--", "sh", "-c", "exit 5")
    assert proc.returncode == 5


@needs_userns
def test_exec_into_a_user_namespace_runs_as_its_mapped_root(state_root):
    maps = (minins.IDMap(container_id=0, host_id=400000, size=65536),)
    base = config.default_config()
    cfg = base.replace(namespaces=(Namespace(type="NEWUSER"),) + base.namespaces,
                       uid_mappings=maps, gid_mappings=maps)
    r = Running(cfg, COUNTER, state_root, "userns")
    try:
        code, out = r.exec_out(["/bin/sh", "-c", "id -u; readlink /proc/self/ns/user; "
                                                 "cat /proc/self/uid_map"])
        assert code == 0, out
        uid, userns, umap = out.split("\n", 2)
        assert uid == "0" and userns == os.readlink("/proc/%d/ns/user" % r.pid)
        assert umap.split() == ["0", "400000", "65536"]
        with open("/proc/%d/status" % r.pid) as f:
            assert "Uid:\t400000" in f.read()
    finally:
        r.close()


def test_exec_refuses_a_stopped_container(state_root):
    c = Container(config.default_config(), ["sleep", "60"], id="dead", state_root=state_root)
    c.create()
    c.start()
    try:
        os.kill(c.pid, signal.SIGKILL)
        while state.proc_state(c.pid) != "Z":  # bounded by the kernel: SIGKILL is immediate
            time.sleep(0.001)
        # the init died behind minins's back: the state file is still there, and is not believed
        assert lifecycle.describe(c.data_path)["status"] == "stopped"
        with pytest.raises(StateError, match="not running"):
            execin.exec_in(c.data_path, ["true"])
        proc = cli("--root", state_root, "exec", "dead", "true")
        assert proc.returncode == 125 and proc.stderr.count("\n") == 1
        assert "not running" in proc.stderr
    finally:
        assert c.wait() == 137


def test_exec_refuses_a_recycled_pid(state_root, tmp_path):
    # A state file naming a live process that is not the container (our own pid, with the
    # start time the container's init would have had).
    fake = str(tmp_path / "fake")
    os.mkdir(fake)
    state.save(fake, {"id": "fake", "init_pid": os.getpid(), "init_start_time": "12345",
                      "config": config.default_config().to_json()})
    assert lifecycle.describe(fake)["status"] == "stopped"
    with pytest.raises(StateError, match="no longer its init"):
        execin.exec_in(fake, ["true"])
    assert cli("kill", "--data-path", fake, "KILL").returncode == 125


def _read_count(box):
    try:
        with open("/proc/%d/root/tmp/count" % box.pid) as f:
            return f.read()
    except FileNotFoundError:
        return ""  # not written yet


def _count(box):
    """The counter's value. The shell truncates the file before each write, so a read can
    land in between and see nothing: read again (a handful of tries at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the shell may not have started yet on a busy host
        text = _read_count(box)
        if text:
            return int(text)
    raise AssertionError("the counter file stayed empty")


def _unchanged(box, seconds):
    """Does the counter file stay exactly as it is for ``seconds`` (frozen mid-write, it may
    well be empty)?"""
    a = _read_count(box)
    time.sleep(seconds)
    return _read_count(box) == a


def _progress(box, seconds):
    """How far the counter moves in ``seconds`` (a measurement, not a synchronisation)."""
    a = _count(box)
    time.sleep(seconds)
    return _count(box) - a


def test_pause_stops_progress_and_resume_restarts_it(box):
    root = os.path.dirname(box.data_path)
    assert _progress(box, 0.2) > 0
    assert cli("--root", root, "pause", BOX).returncode == 0
    assert json.loads(cli("--root", root, "state", BOX).stdout)["status"] == "paused"
    assert _unchanged(box, 0.3)
    proc = cli("--root", root, "pause", BOX)
    assert proc.returncode == 125 and "it is paused" in proc.stderr
    assert cli("--root", root, "resume", BOX).returncode == 0
    assert json.loads(cli("--root", root, "state", BOX).stdout)["status"] == "running"
    assert _progress(box, 0.2) > 0
    assert cli("--root", root, "resume", BOX).returncode == 125


def test_a_paused_container_can_still_be_killed_and_removed(state_root):
    r = Running(config.default_config(), COUNTER, state_root, "frozen")
    lifecycle.pause(r.data_path)
    assert lifecycle.describe(r.data_path)["status"] == "paused"
    r.c.kill(signal.SIGKILL)
    assert r.c.wait() == 137  # a frozen task cannot die until thawed: minins thaws it
    assert not os.path.exists(r.data_path)
    r = Running(config.default_config(), COUNTER, state_root, "frozen2")
    try:
        lifecycle.pause(r.data_path)
        assert cli("--root", state_root, "kill", "frozen2", "KILL").returncode == 0
    finally:
        assert r.c.wait() == 137


def test_state_json(box):
    st = json.loads(cli("state", "--data-path", box.data_path).stdout)
    assert st["id"] == BOX and st["pid"] == box.pid and st["status"] == "running"
    assert st["data_path"] == box.data_path and st["created"].endswith("Z")
    assert st["rootfs"] == "/" and "bundle" not in st  # OCI's bundle is config.json's dir


def test_ps_lists_the_containers_processes(box):
    code, out = box.exec_out(["/bin/sh", "-c", "sleep 30 & echo $!"])
    ps = cli("ps", "--data-path", box.data_path)
    pids = [int(p) for p in ps.stdout.split()]
    assert box.pid in pids and len(pids) >= 2
    assert json.loads(cli("ps", "--json", "--data-path", box.data_path).stdout) == pids


def test_kill_signals_the_init_and_kill_all_every_process(state_root):
    trap = ["/bin/sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.05; done"]
    r = Running(config.default_config(), trap, state_root, "k1")
    assert cli("--root", state_root, "kill", "k1", "USR1").returncode == 0
    assert r.c.wait() == 42
    cfg = config.default_config()
    hostpid = cfg.replace(namespaces=tuple(n for n in cfg.namespaces if n.type != "NEWPID"))
    with Subreaper():  # the sleeps, orphaned in the host's PID namespace, come to us
        r = Running(hostpid, COUNTER, state_root, "k2")
        try:
            code, out = r.exec_out(["/bin/sh", "-c", "(sleep 60 & sleep 60 &) ; echo $$"])
            pids = lifecycle.pids(r.data_path)
            assert len(pids) >= 3
            assert cli("--root", state_root, "kill", "--all", "k2", "KILL").returncode == 0
            for pid in pids:
                assert state.proc_state(pid) in (None, "Z")
        finally:
            r.close()


def test_stats_show_the_load_a_test_caused(box):
    before = json.loads(cli("stats", "--data-path", box.data_path).stdout)
    time.sleep(0.3)  # the counter burns CPU meanwhile
    after = json.loads(cli("stats", "--data-path", box.data_path).stdout)
    cpu = lambda s: s["cgroup_stats"]["cpu_stats"]["cpu_usage"]["total_usage"]  # noqa: E731
    assert cpu(after) > cpu(before) > 0
    assert after["cgroup_stats"]["memory_stats"]["usage"] > 0


def test_oom_events_are_printed_as_they_come(state_root):
    cfg = config.default_config().replace(
        cgroups=config.Cgroup(memory=32 << 20, memory_swap=32 << 20))
    r = Running(cfg, COUNTER, state_root, "oomy")
    watcher = subprocess.Popen([sys.executable, "-m", "minins", "--root", state_root, "oom",
                                "oomy"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        _wait_for_event_fd(watcher.pid)  # registered: an OOM from now on is seen
        code, _ = r.exec_out([container_python(), "-c", "b = []\nwhile True: b.append(bytearray("
                                                    "1 << 20))"])
        assert code == 137
        import select

        ready, _, _ = select.select([watcher.stdout], [], [], 30)
        assert ready, "no OOM event within 30 s"
        assert json.loads(watcher.stdout.readline())["oom_kills"] >= 1
    finally:
        watcher.kill()
        watcher.wait()
        r.close()


def _wait_for_event_fd(pid, timeout=30):
    """Until process ``pid`` holds an eventfd (v1 OOM notification) or an inotify fd (v2):
    the kernel's word that it is listening."""
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


def test_list_shows_every_container(box, state_root):
    rows = json.loads(cli("--root", state_root, "list", "--json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [(BOX, "running")]
    table = cli("--root", state_root, "list").stdout
    assert BOX in table and "running" in table


@pytest.mark.parametrize("argv,words", [
    (["state", "nosuch"], "no container state"),
    (["pause", "nosuch"], "no container state"),
    (["kill", "nosuch"], "no container state"),
    (["exec", "nosuch", "true"], "no container state"),
    (["kill", "nosuch", "NOSIG"], "unknown signal"),
    (["state"], "needs a container"),
])
def test_commands_on_missing_containers_fail_with_125(state_root, argv, words):
    proc = cli("--root", state_root, *argv)
    assert proc.returncode == 125, proc.stderr
    assert words in proc.stderr and proc.stderr.count("\n") == 1


def test_fifty_execs_leave_no_zombie_and_no_leftover(box):
    before_fds, before_kids = open_fds(), children()
    for i in range(50):
        assert box.exec_out(["/bin/sh", "-c", "exit %d" % (i % 3)])[0] == i % 3
    assert open_fds() == before_fds
    assert children() == before_kids
    with open("/proc/%d/task/%d/children" % (box.pid, box.pid)) as f:
        assert f.read().split() == []  # no zombie left with the init either
    assert sorted(os.listdir(box.data_path)) == ["state.json"]


def _handles(pid, sig):
    with open("/proc/%d/status" % pid) as f:
        caught = [int(ln.split()[1], 16) for ln in f if ln.startswith("SigCgt:")][0]
    return bool(caught >> (sig - 1) & 1)


def test_run_forwards_signals_and_cleans_up(state_root):
    proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", state_root, "run",
                             "--id", "sig%d" % os.getpid(), "--", "sh", "-c",
                             "trap 'exit 42' TERM; while :; do sleep 0.05; done"], cwd=REPO)
    data_path = os.path.join(state_root, "sig%d" % os.getpid())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the container has started
        try:
            if lifecycle.describe(data_path)["status"] == "running":
                break
        except StateError:
            pass
        time.sleep(0.01)
    # PID 1 of a namespace gets only the signals it handles: wait for the shell's trap, or
    # the SIGTERM would be dropped (then the second one kills it, 137)
    pid = lifecycle.describe(data_path)["pid"]
    while time.monotonic() < deadline and not _handles(pid, signal.SIGTERM):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 42
    assert not os.path.exists(data_path)


def test_takeover_attempts_from_inside_fail_while_exec_joins(box, monkeypatch):
    """While `exec` is inside the container but has not exec'd yet, the container's root
    tries /proc/PID/exe, /proc/PID/fd, /proc/PID/cwd, environ and ptrace on it."""
    attack = (
        "import ctypes, os, sys\n"
        "p = int(sys.argv[1])\n"
        "res = {}\n"
        "for what in ('exe', 'cwd', 'root'):\n"
        "    try:\n"
        "        res[what] = os.readlink('/proc/%d/%s' % (p, what))\n"
        "    except OSError as e:\n"
        "        res[what] = e.errno\n"
        "for what, flags in (('exe', os.O_RDONLY), ('environ', os.O_RDONLY)):\n"
        "    try:\n"
        "        os.close(os.open('/proc/%d/%s' % (p, what), flags)); res['open ' + what] = 0\n"
        "    except OSError as e:\n"
        "        res['open ' + what] = e.errno\n"
        "fds = os.listdir('/proc/%d/fd' % p)\n"  # the numbers are visible; the files must not be
        "res['fd'] = [] if fds else 1\n"
        "for n in fds:\n"
        "    for how in ('open', 'readlink'):\n"
        "        try:\n"
        "            if how == 'open':\n"
        "                os.close(os.open('/proc/%d/fd/%s' % (p, n), os.O_RDONLY))\n"
        "            else:\n"
        "                os.readlink('/proc/%d/fd/%s' % (p, n))\n"
        "            res['fd'].append((how, n))\n"
        "        except OSError as e:\n"
        "            pass\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.ptrace(0x4206, p, None, None)\n"  # PTRACE_SEIZE: no stop if it works
        "res['ptrace'] = ctypes.get_errno() if r == -1 else 0\n"
        "if r != -1:\n"
        "    libc.ptrace(17, p, None, None)\n"  # PTRACE_DETACH
        "print(repr(res))\n")
    seen = {}
    busy = []
    real_send = execin.sync.send

    def send(sock, kind, payload=None):
        if kind == execin.sync.START and not busy:
            busy.append(1)  # the probes below exec too: only the first START is held
            # the joining process is inside, blocked before exec: attack it from the init's side
            joining = [p for p in lifecycle.pids(box.data_path) if p != box.pid]
            for pid in joining:
                with open("/proc/%d/status" % pid) as f:
                    nspid = [line.split()[-1] for line in f if line.startswith("NSpid")][0]
                code, out = Running.exec_out(box, [container_python(), "-c", attack, nspid])
                seen[pid] = (code, out)
        return real_send(sock, kind, payload)

    monkeypatch.setattr(execin.sync, "send", send)
    code, _ = box.exec_out(["true"])
    monkeypatch.undo()
    assert code == 0 and seen
    import ast

    checked = 0
    for pid, (code, out) in seen.items():
        if code != 0 or not out.strip():
            continue  # the probe's own process (also not dumpable) or a process that exited
        checked += 1
        res = ast.literal_eval(out.strip().splitlines()[-1])
        for key in ("exe", "cwd", "root", "open exe", "open environ", "ptrace"):
            assert isinstance(res[key], int) and res[key] != 0, (key, res)
        assert res["fd"] == [], res  # not one descriptor could be opened or read through
    assert checked >= 1, seen  # the joining process itself was probed


def test_exec_gets_a_session_of_its_own_and_every_env(box):
    """No controlling terminal of the caller's (TIOCSTI), and repeated -e all count."""
    master, slave = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "minins", "exec", "--data-path",
                               box.data_path, "-e", "A=1", "-e", "B=2", "--", "sh", "-c",
                               "echo $A$B; cut -d' ' -f6,7 /proc/self/stat"],
                              cwd=REPO, stdin=slave, capture_output=True, text=True)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, proc.stderr
    ab, session_tty = proc.stdout.split("\n")[:2]
    sid, tty_nr = session_tty.split()
    assert ab == "12" and tty_nr == "0"


def test_delete_removes_what_a_dead_container_left(state_root):
    cfg = config.default_config()
    c = Container(cfg, ["sleep", "600"], id="gone", state_root=state_root)
    c.create()
    c.start()
    data_path, paths = c.data_path, dict(c.cgroups.paths)
    # the runtime dies without cleaning up: its state, cgroups and data path stay
    c._undo = []
    os.kill(c.pid, signal.SIGKILL)
    os.waitpid(c.pid, 0)
    proc = cli("--root", state_root, "run", "--id", "gone", "--", "true")
    assert proc.returncode == 125 and "minins delete gone" in proc.stderr
    assert lifecycle.describe(data_path)["status"] == "stopped"
    assert cli("--root", state_root, "delete", "gone").returncode == 0
    assert not os.path.exists(data_path)
    assert not any(os.path.exists(p) for p in paths.values())
    assert cli("--root", state_root, "run", "--id", "gone", "--", "true").returncode == 0


def test_delete_hands_the_network_state_to_remove_survivor(state_root, monkeypatch):
    """A veth pair outlives its container when something else keeps the namespace alive;
    delete removes it from the state (what it checks: tests/test_network.py)."""
    from minins import network, state

    cid = "netgone-%d" % os.getpid()
    c = Container(config.default_config(), ["sleep", "600"], id=cid, state_root=state_root)
    c.create()
    c.start()
    c._undo = []  # the runtime dies without cleaning up
    os.kill(c.pid, signal.SIGKILL)
    os.waitpid(c.pid, 0)
    st = state.load(c.data_path)
    st["network_state"] = {"veth_host": "vt0123456", "veth_child": "vt6543210",
                           "veth_alias": "minins %d.%s %s" % (c.pid, c.init_start_time, cid)}
    state.save(c.data_path, st)
    seen = []
    monkeypatch.setattr(network, "remove_survivor", lambda ns: seen.append(ns) or True)
    lifecycle.delete(c.data_path)
    assert seen == [st["network_state"]]
    assert not os.path.exists(c.data_path)


def test_delete_refuses_a_running_container_unless_forced(box, state_root):
    proc = cli("--root", state_root, "delete", BOX)
    assert proc.returncode == 125 and "is running" in proc.stderr
    assert cli("--root", state_root, "delete", "--force", BOX).returncode == 0
    assert box.c.wait() == 137


def test_an_init_in_do_exit_is_stopped_not_running(monkeypatch, tmp_path):
    """A dying init has closed its fds before it is a zombie: it no longer holds exec.fifo,
    which would make it look as if it had exec'd its command (a SIGKILLed create showed
    `running` that way). PF_EXITING says it is dying."""
    from minins import state as _state, statecheck

    (tmp_path / "exec.fifo").write_text("")
    st = {"init_pid": 4242, "init_start_time": "1", "data_path": str(tmp_path),
          "cgroup_paths": {}}
    monkeypatch.setattr(_state, "init_alive", lambda s: True)
    monkeypatch.setattr(statecheck, "exiting", lambda pid: False)
    assert lifecycle.status(st) == "running"  # alive, holds no fifo: exec'd
    monkeypatch.setattr(statecheck, "exiting", lambda pid: pid == 4242)
    assert lifecycle.status(st) == "stopped"
