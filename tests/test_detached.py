"""Detached containers: create in one process, start from another, the container outliving
both; run -d; stop; and crashes of the creating process at any instant. Real kernel, as root.

Every test is a child subreaper (tests/kernel.py): a detached init is reparented to us when the
process that created it exits, and reaped on the way out."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from minins import lifecycle

from kernel import Subreaper, needs_root, needs_userns

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, **kw):
    """Run the command line; stdout and stderr go through files, not pipes: a detached init
    inherits them (as with runc) and would hold a pipe open long after create has exited."""
    import tempfile

    kw.setdefault("timeout", 120)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=REPO,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, **kw)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read().decode(), err.read().decode()
    return proc


@pytest.fixture
def root(tmp_path):
    with Subreaper() as reaper:
        r = str(tmp_path / "state")
        yield r
        # whatever a test left: removed, its processes killed and reaped
        for row in lifecycle.list_containers(r):
            try:
                lifecycle.delete(row["data_path"], force=True)
            except Exception:  # noqa: B902 - best effort; the guard reports what is left
                pass
        reaper.reap()


def status(root, cid):
    proc = cli("--root", root, "state", cid)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_create_then_start_from_another_process(root, tmp_path):
    pid_file = str(tmp_path / "init.pid")
    proc = cli("--root", root, "create", "--id", "c1", "--pid-file", pid_file, "--",
               "sh", "-c", "echo started > /dev/shm/x; exec sleep 1000")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    pid = int(open(pid_file).read())
    st = status(root, "c1")
    # the creating process is gone; the init lives on, not yet running its command
    assert st["status"] == "created" and st["pid"] == pid
    assert os.path.exists("/proc/%d" % pid)
    with open("/proc/%d/status" % pid) as f:
        ppid = int([ln for ln in f if ln.startswith("PPid:")][0].split()[1])
    assert ppid == os.getpid()  # reparented to the subreaper that called create
    assert cli("--root", root, "start", "c1").returncode == 0
    st = status(root, "c1")
    assert st["status"] == "running"
    proc = cli("--root", root, "exec", "c1", "--", "cat", "/dev/shm/x")
    assert proc.returncode == 0 and proc.stdout == "started\n", proc.stderr
    # a second start is refused, clearly
    proc = cli("--root", root, "start", "c1")
    assert proc.returncode == 125 and "running" in proc.stderr
    assert cli("--root", root, "kill", "c1", "KILL").returncode == 0
    proc = cli("--root", root, "delete", "c1")
    assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(os.path.join(root, "c1"))


def test_start_reports_a_command_that_cannot_run(root):
    assert cli("--root", root, "create", "--id", "bad", "--", "/no/such/program").returncode \
        == 0
    proc = cli("--root", root, "start", "bad")
    assert proc.returncode == 127 and "/no/such/program" in proc.stderr
    assert "ENOENT" in proc.stderr
    assert status(root, "bad")["status"] == "stopped"
    assert cli("--root", root, "create", "--id", "noexec", "--", "/etc").returncode \
        == 0
    proc = cli("--root", root, "start", "noexec")
    assert proc.returncode == 126 and "EACCES" in proc.stderr
    for cid in ("bad", "noexec"):
        assert cli("--root", root, "delete", cid).returncode == 0


def test_run_detached_and_every_lifecycle_command(root):
    proc = cli("--root", root, "run", "-d", "--id", "d", "--", "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    assert status(root, "d")["status"] == "running"
    listed = cli("--root", root, "list", "-q").stdout.split()
    assert listed == ["d"]
    proc = cli("--root", root, "exec", "d", "--", "sh", "-c", "echo $$; exit 3")
    assert proc.returncode == 3 and proc.stdout.strip().isdigit()
    assert cli("--root", root, "pause", "d").returncode == 0
    assert status(root, "d")["status"] == "paused"
    assert cli("--root", root, "resume", "d").returncode == 0
    pids = cli("--root", root, "ps", "d").stdout.split()
    assert str(status(root, "d")["pid"]) in pids
    assert cli("--root", root, "kill", "d", "0").returncode == 0  # the liveness probe
    # sleep as PID 1 has no handler: SIGTERM does nothing, stop ends it with SIGKILL
    began = time.monotonic()
    proc = cli("--root", root, "stop", "-t", "1", "d")
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    assert 1 <= took < 8, took
    assert status(root, "d")["status"] == "stopped"
    assert cli("--root", root, "stop", "d").returncode == 0  # already stopped: success
    assert cli("--root", root, "delete", "d").returncode == 0
    assert cli("--root", root, "list", "-q").stdout == ""


def test_stop_of_a_process_that_handles_sigterm_is_quick(root):
    script = "trap 'exit 0' TERM; while :; do sleep 0.1; done"
    assert cli("--root", root, "run", "-d", "--id", "t", "--", "sh", "-c", script) \
        .returncode == 0
    began = time.monotonic()
    assert cli("--root", root, "stop", "-t", "30", "t").returncode == 0
    assert time.monotonic() - began < 10  # far below the 30 s timeout
    assert cli("--root", root, "delete", "t").returncode == 0


def test_stop_sends_the_configs_stop_signal(root):
    # SIGTERM is ignored, USR1 ends it: only the configured signal makes stop quick
    script = "trap '' TERM; trap 'exit 0' USR1; while :; do sleep 0.1; done"
    assert cli("--root", root, "run", "-d", "--id", "u", "--stop-signal", "SIGUSR1", "--",
               "sh", "-c", script).returncode == 0
    assert status(root, "u")["status"] == "running"
    began = time.monotonic()
    assert cli("--root", root, "stop", "-t", "30", "u").returncode == 0
    assert time.monotonic() - began < 10  # far below the 30 s timeout: USR1 was sent
    # -s wins over the configuration: TERM is ignored, so SIGKILL after the timeout
    assert cli("--root", root, "delete", "u").returncode == 0
    assert cli("--root", root, "run", "-d", "--id", "u", "--stop-signal", "USR1", "--",
               "sh", "-c", script).returncode == 0
    began = time.monotonic()
    assert cli("--root", root, "stop", "-t", "1", "-s", "TERM", "u").returncode == 0
    assert time.monotonic() - began >= 1
    assert cli("--root", root, "delete", "u").returncode == 0


def test_a_stop_signal_in_the_state_that_is_no_signal_is_refused(root):
    from minins import state as _state

    assert cli("--root", root, "run", "-d", "--id", "f", "--", "sleep", "1000").returncode == 0
    path = os.path.join(root, "f")
    st = _state.load(path)
    st["config"]["stop_signal"] = "NOPE"
    _state.save(path, st)
    proc = cli("--root", root, "stop", "f")
    assert proc.returncode == 125 and proc.stderr.startswith("minins: error: ") \
        and "stop_signal" in proc.stderr, proc.stderr
    assert status(root, "f")["status"] == "running"  # nothing was sent
    assert cli("--root", root, "delete", "--force", "f").returncode == 0


def test_a_container_whose_creator_was_killed_is_started_and_deleted(root):
    # create runs to its end in a process we then SIGKILL: nothing of the container depends
    # on it any more
    proc = subprocess.Popen([sys.executable, "-c", """
import os, sys
from minins import config, container
c = container.Container(config.default_config(), ["sleep", "1000"], id="orphan",
                        state_root=sys.argv[1], detached=True)
c.create()
print(c.state["init_pid"], flush=True)
os.kill(os.getpid(), 9)
""", root], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    pid = int(proc.stdout.readline())
    proc.stdout.close()  # the init holds its copy of the pipe
    proc.wait(timeout=60)
    assert proc.returncode == -9
    assert status(root, "orphan")["status"] == "created"
    assert cli("--root", root, "start", "orphan").returncode == 0
    assert status(root, "orphan")["pid"] == pid
    proc = cli("--root", root, "delete", "orphan")
    assert proc.returncode == 125 and "running" in proc.stderr
    assert cli("--root", root, "delete", "--force", "orphan").returncode == 0
    assert not os.path.exists(os.path.join(root, "orphan"))


def test_start_racing_delete_leaves_nothing(root):
    for i in range(10):
        cid = "race%d" % i
        assert cli("--root", root, "create", "--id", cid, "--", "true").returncode == 0
        starter = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "start",
                                    cid], cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deleter = cli("--root", root, "delete", "--force", cid)
        assert starter.wait(timeout=60) in (0, 125)
        assert deleter.returncode in (0, 125), deleter.stderr
        if os.path.exists(os.path.join(root, cid)):
            assert cli("--root", root, "delete", "--force", cid).returncode == 0
        assert not os.path.exists(os.path.join(root, cid))


def test_fifty_detached_containers_leave_nothing(root):
    for i in range(50):
        cid = "many%d" % i
        proc = cli("--root", root, "run", "-d", "--id", cid, "--", "sleep", "1000")
        assert proc.returncode == 0, proc.stderr
        assert cli("--root", root, "delete", "--force", cid).returncode == 0
    assert os.listdir(root) == []


def test_foreground_run_second_sigint_kills_a_pid1_without_handlers(root):
    proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "run", "--id",
                             "fg", "--", "sleep", "1000"], cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the container runs its command
        p = cli("--root", root, "state", "fg")
        if p.returncode == 0 and json.loads(p.stdout)["status"] == "running":
            break
    else:
        proc.kill()
        raise AssertionError("the container never ran")
    proc.send_signal(signal.SIGINT)  # PID 1 ignores it: no handler
    assert cli("--root", root, "state", "fg").returncode == 0
    proc.send_signal(signal.SIGINT)  # the second one kills it at once
    assert proc.wait(timeout=30) == 128 + 9
    assert not os.path.exists(os.path.join(root, "fg"))


@pytest.mark.slow
def test_sigkill_of_run_at_any_instant_leaves_nothing_delete_cannot_remove(root):
    """SIGKILL `minins run` at random moments of its start, 100 times: afterwards `list`
    shows every container it left and `delete` removes every trace; every id is reusable."""
    rng = random.Random(int(os.environ.get("MININS_SEED", "1234")))
    # The kills must land all over the start, however slow this machine is: a fixed 0-200 ms
    # mostly hit the interpreter's own start-up on a loaded host (2 of 130 kills left a state).
    began = time.monotonic()
    assert cli("--root", root, "run", "--id", "probe", "--", "true").returncode == 0
    span = time.monotonic() - began
    caught = 0  # kills that left a container behind: the kills did land inside the start
    for i in range(100):
        cid = "k%d" % (i % 5)
        proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "run", "--id",
                                 cid, "--", "sleep", "1000"], cwd=REPO,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, span))  # where to kill it: the point of the test, not a wait
        proc.kill()
        proc.wait()
        rows = {r["id"]: r for r in lifecycle.list_containers(root)}
        left = set(os.listdir(root)) if os.path.isdir(root) else set()
        assert left <= set(rows), "state dirs that list does not show: %s" % (left - set(rows))
        caught += bool(rows)
        for cid_left, row in rows.items():
            assert row["status"] in ("stopped", "running", "created"), row
            assert cli("--root", root, "delete", "--force", cid_left).returncode == 0
        assert not os.path.isdir(root) or os.listdir(root) == []
    assert caught >= 10, "only %d of 100 kills hit a start" % caught
    for i in range(5):  # every id is free again
        proc = cli("--root", root, "run", "--id", "k%d" % i, "--", "true")
        assert proc.returncode == 0, proc.stderr


def test_freezer_frozen_in_the_config_pauses_a_created_container_and_never_hangs(root):
    from minins import config
    from minins.container import Container

    cfg = config.default_config()
    cfg = cfg.replace(cgroups=cfg.cgroups.replace(freezer="FROZEN"))
    c = Container(cfg, ["sleep", "1000"], id="frozen", state_root=root, detached=True)
    c.create()  # returns: the init is frozen only once it has reported SETUP_DONE
    assert status(root, "frozen")["status"] == "paused"
    proc = cli("--root", root, "start", "frozen")
    assert proc.returncode == 125 and "paused" in proc.stderr
    assert cli("--root", root, "resume", "frozen").returncode == 0
    assert status(root, "frozen")["status"] == "created"
    assert cli("--root", root, "start", "frozen").returncode == 0
    assert status(root, "frozen")["status"] == "running"
    assert cli("--root", root, "delete", "--force", "frozen").returncode == 0


def test_exec_tty_gets_a_pty_of_the_containers_devpts(root):
    """`exec --tty`: the terminal is a /dev/pts/N of the container (ttyname works, ps shows
    it), the window size is ours; it used to be the host's pty and `tty` said 'not a tty'."""
    import fcntl
    import select
    import struct
    import termios

    cid = "tty%d" % os.getpid()
    assert cli("--root", root, "run", "-d", "--id", cid, "--", "sleep", "1000").returncode == 0
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 23, 77, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "exec", "-t", cid,
                             "--", "sh", "-c", "tty; ps -o tty= -p $$; stty size; exit 4"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=REPO)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
        assert proc.wait(30) == 4
        while select.select([master], [], [], 0)[0]:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    lines = [ln.strip() for ln in out.decode(errors="replace").splitlines() if ln.strip()]
    assert lines[0].startswith("/dev/pts/"), lines
    assert lines[1] == lines[0][len("/dev/"):], lines
    assert lines[2] == "23 77", lines
    assert cli("--root", root, "delete", "--force", cid).returncode == 0


def test_commands_on_a_container_whose_creator_died_before_its_init_say_stopped(root):
    """create SIGKILLed after its first state write (init_pid 0) and before an init exists:
    `list` shows the container as stopped, and start/exec/kill must say the same (and how to
    remove it), not that it is "still being created" by a process that is gone."""
    proc = subprocess.Popen([sys.executable, "-c", """
import os, sys
from minins import config, container
container.Container._make_fifo = lambda self: os.kill(os.getpid(), 9)
c = container.Container(config.default_config(), ["sleep", "1000"], id="dead",
                        state_root=sys.argv[1], detached=True)
c.create()
""", root], cwd=REPO, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=60) == -9
    assert [r["status"] for r in lifecycle.list_containers(root)] == ["stopped"]
    for args in (["start", "dead"], ["exec", "dead", "--", "true"], ["kill", "dead"],
                 ["pause", "dead"]):
        proc = cli("--root", root, *args)
        assert proc.returncode == 125, (args, proc.stderr)
        assert "still being created" not in proc.stderr, (args, proc.stderr)
        assert "is stopped" in proc.stderr, (args, proc.stderr)
    assert cli("--root", root, "stop", "dead").returncode == 0  # stopped already: success
    assert cli("--root", root, "delete", "dead").returncode == 0
    assert os.listdir(root) == []


def test_run_detached_without_an_id_prints_the_id_it_chose(root):
    """As `docker run -d`: the only way to name the container afterwards is its id, so a run
    -d that chose one says which (and one that was given --id prints nothing)."""
    proc = cli("--root", root, "run", "-d", "--", "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.strip()
    assert proc.stdout == cid + "\n" and cid, proc.stdout
    assert status(root, cid)["status"] == "running"
    assert cli("--root", root, "delete", "--force", cid).returncode == 0
    proc = cli("--root", root, "run", "-d", "--id", "named", "--", "sleep", "1000")
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert cli("--root", root, "delete", "--force", "named").returncode == 0


def test_stop_of_a_created_container_does_not_wait_for_a_command_that_never_ran(root):
    """A created init is minins's own code, blocked on exec.fifo, PID 1 of its namespace
    without a SIGTERM handler: SIGTERM cannot end it, and nothing of the user's command runs
    that could use the grace period. stop kills it at once instead of waiting -t seconds."""
    assert cli("--root", root, "create", "--id", "cr", "--", "sleep", "1000").returncode == 0
    began = time.monotonic()
    proc = cli("--root", root, "stop", "-t", "30", "cr")
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    assert took < 15, took
    assert status(root, "cr")["status"] == "stopped"
    assert cli("--root", root, "delete", "cr").returncode == 0


def test_a_start_killed_before_it_removed_exec_fifo_leaves_no_created_container_that_runs(
        root):
    """`start` SIGKILLed at its last step (exec.fifo not yet removed, the command already
    exec'd): the status must not stay `created` while the command runs (a second start would
    wait on a fifo nobody writes, and stop would take the command for minins's waiting init)."""
    assert cli("--root", root, "create", "--id", "k", "--", "sleep", "1000").returncode == 0
    proc = subprocess.Popen([sys.executable, "-c", """
import os, sys
from minins import lifecycle, state
state.unlink = lambda path: os.kill(os.getpid(), 9)
lifecycle.start(sys.argv[1])
""", os.path.join(root, "k")], cwd=REPO, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=60) == -9
    st = status(root, "k")
    if st["status"] != "stopped":
        assert st["status"] == "running", st
        assert os.readlink("/proc/%d/exe" % st["pid"]).endswith("/sleep")
    # a second start says so at once (it does not wait on the fifo left behind)
    proc = cli("--root", root, "start", "k", timeout=8)
    assert proc.returncode == 125 and st["status"] in proc.stderr, proc.stderr
    assert cli("--root", root, "delete", "--force", "k").returncode == 0


def test_foreground_run_writes_its_pid_file(root, tmp_path):
    """`run --pid-file` is in run's usage and help: a foreground run writes it too, as runc
    run does, once the init exists."""
    pid_file = str(tmp_path / "fg.pid")
    proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "run", "--id",
                             "fgp", "--pid-file", pid_file, "--", "sleep", "1000"], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the container runs its command
            p = cli("--root", root, "state", "fgp")
            if p.returncode == 0 and json.loads(p.stdout)["status"] == "running":
                break
        else:
            raise AssertionError("the container never ran")
        assert open(pid_file).read() == str(status(root, "fgp")["pid"])
    finally:
        cli("--root", root, "kill", "fgp", "KILL")
        assert proc.wait(timeout=30) == 128 + 9
    assert cli("--root", root, "run", "--id", "bad", "--pid-file", str(tmp_path), "--",
               "true").returncode == 125
    assert not os.path.exists(os.path.join(root, "bad"))


@pytest.mark.slow
def test_sigkill_of_create_at_any_instant_leaves_nothing_delete_cannot_remove(root):
    """The detached path (exec.fifo, no parent-death signal) killed at random moments of
    `minins create`, 40 times: every state dir left is listed, a created one can still be
    started, and delete removes every trace."""
    rng = random.Random(int(os.environ.get("MININS_SEED", "4321")))
    for i in range(40):
        cid = "c%d" % (i % 5)
        proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "create",
                                 "--id", cid, "--", "sleep", "1000"], cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.6))  # where to kill it: the point of the test, not a wait
        proc.kill()
        proc.wait()
        rows = {r["id"]: r for r in lifecycle.list_containers(root)}
        left = set(os.listdir(root)) if os.path.isdir(root) else set()
        assert left <= set(rows), "state dirs that list does not show: %s" % (left - set(rows))
        for cid_left, row in rows.items():
            assert row["status"] in ("stopped", "created"), row
            if row["status"] == "created":
                started = cli("--root", root, "start", cid_left)
                if started.returncode != 0:
                    # killed mid-setup: the init sees its runtime's socket close and exits
                    # (a zombie of ours until reaped), after list saw it alive
                    assert started.returncode == 125, started.stderr
                    assert status(root, cid_left)["status"] == "stopped", started.stderr
            assert cli("--root", root, "delete", "--force", cid_left).returncode == 0
        assert not os.path.isdir(root) or os.listdir(root) == []


@needs_userns
def test_create_and_start_in_a_user_namespace(root, tmp_path):
    """The init of a user namespace reopens exec.fifo as the container's root, a host uid
    that is not ours: the fifo must be its (runc chowns it too). Before, create said 0 while
    the init had died of EACCES on the fifo, and start found no container."""
    from minins import config
    from minins.config import Namespace

    maps = (config.IDMap(container_id=0, host_id=410000, size=65536),)
    base = config.default_config()
    cfg = base.replace(namespaces=(Namespace(type="NEWUSER"),) + base.namespaces,
                       uid_mappings=maps, gid_mappings=maps)
    path = tmp_path / "userns.json"
    path.write_text(config.dumps(cfg))
    u, u2 = "u%d" % os.getpid(), "u2-%d" % os.getpid()  # cgroups of these names: unique
    proc = cli("--root", root, "create", "--config", str(path), "--id", u, "--",
               "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    assert status(root, u)["status"] == "created"
    proc = cli("--root", root, "start", u)
    assert proc.returncode == 0, proc.stderr
    st = status(root, u)
    assert st["status"] == "running"
    with open("/proc/%d/status" % st["pid"]) as f:
        assert "Uid:\t410000" in f.read()
    proc = cli("--root", root, "run", "-d", "--config", str(path), "--id", u2, "--",
               "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    assert status(root, u2)["status"] == "running"
    for cid in (u, u2):
        assert cli("--root", root, "delete", "--force", cid).returncode == 0


def test_create_and_start_as_a_user_without_capabilities(root, tmp_path):
    """The init reopens exec.fifo after it became the container's user: a uid without
    CAP_DAC_OVERRIDE could not open the runtime's 0600 fifo, and create said 0 with a dead
    init. The fifo is the user's before the switch."""
    from minins import config

    cfg = config.default_config().replace(capabilities=(), user="1000:1000")
    path = tmp_path / "nocaps.json"
    path.write_text(config.dumps(cfg))
    nc = "nc%d" % os.getpid()
    proc = cli("--root", root, "run", "-d", "--config", str(path), "--id", nc, "--",
               "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    st = status(root, nc)
    assert st["status"] == "running"
    with open("/proc/%d/status" % st["pid"]) as f:
        assert "Uid:\t1000" in f.read()
    assert cli("--root", root, "delete", "--force", nc).returncode == 0
