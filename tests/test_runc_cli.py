"""runc's command line, called the way engines call it (argv as conmon and containerd's shim
log it: global options first, --bundle and --pid-file, numeric signals, `delete` then
`delete --force`), against a real kernel, as root; side by side with runc where it is
installed (the same bundle: the same field names). Every test is a child subreaper: a
detached init is reparented to us and reaped on the way out."""
import array
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from minins import lifecycle, runc
from minins.errors import ConfigError

from kernel import Subreaper
from rootfs_util import build_rootfs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNC = shutil.which("runc")


def cli(*args, cwd=REPO, **kw):
    """Run minins; stdout and stderr through files (a detached init inherits them)."""
    kw.setdefault("timeout", 120)
    env = dict(os.environ, PYTHONPATH=REPO)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, **kw)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read().decode(), err.read().decode()
    return proc


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return build_rootfs(str(tmp_path_factory.mktemp("rootfs") / "rootfs"))


def make_bundle(where, rootfs, args, **changes):
    """A bundle at ``where``: minins spec's config.json, no terminal, ``args``, a writable
    rootfs (a copy would cost seconds: a symlink to the shared one is what runc allows too),
    and ``changes`` merged into the top level (``process`` keys merged into process)."""
    os.makedirs(where, exist_ok=True)
    ok(cli("spec", "-b", where))
    path = os.path.join(where, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["process"].update(terminal=False, args=list(args))
    spec["process"].update(changes.pop("process", {}))
    spec["root"] = {"path": rootfs, "readonly": True}
    spec.update(changes)
    with open(path, "w") as f:
        json.dump(spec, f)
    return where


@pytest.fixture
def env(tmp_path):
    """(state root, log file, global options as conmon passes them)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with Subreaper() as reaper:
        r = str(tmp_path / "state")
        log = str(tmp_path / "log.json")
        yield r, log, ["--root", r, "--log", log, "--log-format", "json"]
        for row in lifecycle.list_containers(r):
            try:
                lifecycle.delete(row["data_path"], force=True, run_hooks=False)
            except Exception:  # noqa: B902 - best effort; the guard reports what is left
                pass
        reaper.reap()


def last_log(log):
    with open(log) as f:
        lines = f.read().splitlines()
    entry = json.loads(lines[-1])
    assert sorted(entry) == ["level", "msg", "time"]
    return entry


def wait_exit(pid):
    """The init is reparented to us (a subreaper): its status, once it has exited."""
    _, status = os.waitpid(pid, 0)
    return status


# --- the shim's sequence --------------------------------------------------------------------

def test_create_start_kill_delete_as_containerd_shim_calls_them(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                         annotations={"io.example": "yes"})
    pid_file = str(tmp_path / "init.pid")
    ok(cli(*g, "create", "--bundle", bundle, "--pid-file", pid_file, "c1"))
    with open(pid_file) as f:
        pid = int(f.read())
    st = json.loads(ok(cli(*g, "state", "c1")).stdout)
    assert (st["ociVersion"], st["id"], st["pid"], st["status"], st["bundle"]) == \
        (runc.OCI_VERSION, "c1", pid, "created", bundle)
    assert st["rootfs"] == rootfs and st["annotations"] == {"io.example": "yes"}
    assert st["created"].endswith("Z") and st["owner"] == ""
    ok(cli(*g, "start", "c1"))
    assert json.loads(ok(cli(*g, "state", "c1")).stdout)["status"] == "running"
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"60"]
    ok(cli(*g, "kill", "c1", "9"))  # the shim's numeric signal
    assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
    st = json.loads(ok(cli(*g, "state", "c1")).stdout)
    assert st["status"] == "stopped" and st["pid"] == 0
    again = cli(*g, "kill", "c1", "15")
    assert again.returncode == 125 and "container not running" in again.stderr
    assert "container not running" in last_log(log)["msg"]
    ok(cli(*g, "delete", "c1"))
    ok(cli(*g, "delete", "--force", "c1"))  # gone already: success, as runc
    gone = cli(*g, "state", "c1")
    assert gone.returncode == 125 and "does not exist" in gone.stderr
    entry = last_log(log)
    assert entry["level"] == "error" and "does not exist" in entry["msg"]
    assert gone.stderr.count("\n") == 1 and gone.stderr.startswith("minins: error: ")


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", "10"])
def test_kill_takes_names_with_and_without_sig_and_numbers(env, rootfs, tmp_path, sig):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs,
                         ["sh", "-c", "trap 'exit 3' USR1; while :; do sleep 0.05; done"])
    ok(cli(*g, "run", "-d", "-b", bundle, "--pid-file", str(tmp_path / "p"), "k"))
    with open(str(tmp_path / "p")) as f:
        pid = int(f.read())
    ok(cli(*g, "kill", "k", sig))
    status = wait_exit(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    ok(cli(*g, "delete", "k"))


def test_delete_of_a_created_container_needs_force(env, rootfs, tmp_path):
    # runtime.md: deleting a container that is not stopped MUST be an error and change
    # nothing (runc 1.1 deletes a created one; runtime-tools' delete.t fails it for that)
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    ok(cli(*g, "create", "-b", bundle, "--pid-file", str(tmp_path / "p"), "cr"))
    refused = cli(*g, "delete", "cr")
    assert refused.returncode == 125 and "created" in refused.stderr
    assert json.loads(ok(cli(*g, "state", "cr")).stdout)["status"] == "created"
    ok(cli(*g, "delete", "--force", "cr"))
    with open(str(tmp_path / "p")) as f:
        assert os.WTERMSIG(wait_exit(int(f.read()))) == signal.SIGKILL
    assert not os.path.exists(os.path.join(root, "cr"))


def test_kill_all_and_delete_force_of_a_running_container(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sh", "-c", "sleep 60 & sleep 60"])
    ok(cli(*g, "run", "--detach", "--bundle", bundle, "--pid-file", str(tmp_path / "p"), "a"))
    refused = cli(*g, "delete", "a")
    assert refused.returncode == 125 and "running" in refused.stderr
    ok(cli(*g, "kill", "--all", "a", "KILL"))
    with open(str(tmp_path / "p")) as f:
        wait_exit(int(f.read()))
    ok(cli(*g, "delete", "--force", "a"))
    assert not os.path.exists(os.path.join(root, "a"))


def test_pause_resume_and_list(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    ok(cli(*g, "run", "-d", "-b", bundle, "p1"))
    ok(cli(*g, "pause", "p1"))
    assert json.loads(ok(cli(*g, "state", "p1")).stdout)["status"] == "paused"
    rows = json.loads(ok(cli(*g, "list", "-f", "json")).stdout)
    assert [(r["id"], r["status"], r["bundle"], r["owner"]) for r in rows] == \
        [("p1", "paused", bundle, "root")]
    assert sorted(rows[0]) == sorted(["ociVersion", "id", "pid", "status", "bundle", "rootfs",
                                      "created", "owner"])
    ok(cli(*g, "resume", "p1"))
    table = ok(cli(*g, "list")).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:4] == ["p1", str(rows[0]["pid"]), "running", bundle]
    assert ok(cli(*g, "list", "-q")).stdout == "p1\n"
    ok(cli(*g, "delete", "-f", "p1"))


def test_ps_json_and_table(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "61"])
    ok(cli(*g, "run", "-d", "-b", bundle, "--pid-file", str(tmp_path / "p"), "ps1"))
    with open(str(tmp_path / "p")) as f:
        pid = int(f.read())
    assert json.loads(ok(cli(*g, "ps", "--format", "json", "ps1")).stdout) == [pid]
    lines = ok(cli(*g, "ps", "ps1")).stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    row = lines[1].split()
    assert row[0] == "root" and row[1] == str(pid) and row[5] == "?" and \
        row[7:] == ["sleep", "61"]
    if shutil.which("ps"):  # the same columns as ps -ef's, for the same process
        ref = subprocess.run(["ps", "-f", "-p", str(pid)], capture_output=True, text=True)
        ref_row = ref.stdout.splitlines()[1].split()
        assert row[:3] + row[5:] == ref_row[:3] + ref_row[5:]
    ok(cli(*g, "delete", "-f", "ps1"))


def test_exec_as_conmon_calls_it_detached_with_a_process_file(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                         root={"path": rootfs, "readonly": False})
    ok(cli(*g, "run", "-d", "-b", bundle, "e1"))
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)  # (uid 1000 writes there)
    out = "/tmp/exec-%d" % os.getpid()
    process = {"args": ["sh", "-c", "echo $FOO $(id -u):$(id -g) $(pwd) > %s" % out],
               "env": ["FOO=bar", "PATH=/bin"], "cwd": "/home/alice",
               "user": {"uid": 1000, "gid": 1000}, "terminal": False}
    pfile = str(tmp_path / "process.json")
    with open(pfile, "w") as f:
        json.dump(process, f)
    pid_file = str(tmp_path / "exec.pid")
    ok(cli(*g, "exec", "--pid-file", pid_file, "--process", pfile, "--detach", "e1"))
    with open(pid_file) as f:
        status = wait_exit(int(f.read()))  # our child's child, reparented to us
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    with open(os.path.join(rootfs, out.lstrip("/"))) as f:
        assert f.read() == "bar 1000:1000 /home/alice\n"
    os.unlink(os.path.join(rootfs, out.lstrip("/")))
    # the foreground form: its exit code
    assert cli(*g, "exec", "e1", "sh", "-c", "exit 7").returncode == 7
    assert ok(cli(*g, "exec", "-e", "A=1", "-u", "1000", "--cwd", "/tmp", "e1", "sh", "-c",
                  "echo $A $(id -u) $(pwd)")).stdout == "1 1000 /tmp\n"
    caps = ok(cli(*g, "exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "-g", "50", "e1",
                  "sh", "-c", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; id -G"))
    eff, nnp, groups = caps.stdout.splitlines()
    assert int(eff.split()[1], 16) >> 21 & 1 and nnp.split()[1] == "1"
    assert "50" in groups.split()
    plain = ok(cli(*g, "exec", "e1", "grep", "^CapEff", "/proc/self/status")).stdout
    assert not int(plain.split()[1], 16) >> 21 & 1
    bad = cli(*g, "exec", "--cap", "CAP_NOPE", "e1", "true")
    assert bad.returncode == 125 and "CAP_NOPE" in bad.stderr
    bad = cli(*g, "exec", "-p", pfile, "e1", "echo")
    assert bad.returncode == 125 and "takes no command" in bad.stderr
    ok(cli(*g, "delete", "-f", "e1"))


def test_run_in_the_foreground_returns_the_exit_code_and_deletes(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sh", "-c", "echo out; exit 7"])
    proc = cli(*g, "run", "--bundle", bundle, "f1")
    assert proc.returncode == 7 and proc.stdout == "out\n", proc.stderr
    assert not os.path.exists(os.path.join(root, "f1"))
    kept = cli(*g, "run", "--keep", "-b", bundle, "f3")
    assert kept.returncode == 7 and kept.stdout == "out\n", kept.stderr
    assert json.loads(ok(cli(*g, "state", "f3")).stdout)["status"] == "stopped"
    ok(cli(*g, "delete", "f3"))
    # runc's form by its one argument, with the bundle the current directory
    proc = cli(*g, "run", "f2", cwd=bundle)
    assert proc.returncode == 7 and proc.stdout == "out\n", proc.stderr


def test_update_sets_the_cgroup_limits(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    ok(cli(*g, "run", "-d", "-b", bundle, "u1"))
    ok(cli(*g, "update", "--memory", "64m", "--pids-limit", "50", "u1"))
    res = str(tmp_path / "res.json")
    with open(res, "w") as f:
        json.dump({"cpu": {"shares": 512}}, f)
    ok(cli(*g, "update", "-r", res, "u1"))
    paths = json.loads(ok(cli(*g, "state", "u1")).stdout)["cgroup_paths"]
    if "memory" in paths:  # v1
        with open(paths["memory"] + "/memory.limit_in_bytes") as f:
            assert int(f.read()) == 64 << 20
        with open(paths["pids"] + "/pids.max") as f:
            assert f.read().strip() == "50"
        with open(paths["cpu"] + "/cpu.shares") as f:
            assert f.read().strip() == "512"
    else:
        unified = paths.get("unified") or paths[""]
        with open(unified + "/memory.max") as f:
            assert int(f.read()) == 64 << 20
        with open(unified + "/pids.max") as f:
            assert f.read().strip() == "50"
    # containerd's shim and podman: the resources on stdin
    fed = subprocess.run([sys.executable, "-m", "minins"] + g + ["update", "--resources", "-",
                                                                 "u1"],
                         input=json.dumps({"pids": {"limit": 77}}), capture_output=True,
                         text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                         timeout=120)
    assert fed.returncode == 0, fed.stderr
    pids_dir = paths.get("pids") or paths.get("unified") or paths[""]
    with open(pids_dir + "/pids.max") as f:
        assert f.read().strip() == "77"
    bad = cli(*g, "update", "--memory", "lots", "u1")
    assert bad.returncode == 125 and "--memory" in bad.stderr
    ok(cli(*g, "delete", "-f", "u1"))


def test_update_memory_keeps_the_swap_limit(env, rootfs, tmp_path):
    """runc update --memory alone changes the limit and leaves memory+swap as it was
    (update.go); only a new container's limit without swap gets unlimited swap."""
    root, log, g = env
    if not os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        pytest.skip("no cgroup v1 swap accounting (memory.memsw.*) on this host")
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["linux"]["resources"] = dict(spec["linux"].get("resources") or {},
                                      memory={"limit": 64 << 20, "swap": 128 << 20})
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    ok(cli(*g, "run", "-d", "-b", bundle, "u2"))
    try:
        paths = json.loads(ok(cli(*g, "state", "u2")).stdout)["cgroup_paths"]
        ok(cli(*g, "update", "--memory", "96m", "u2"))
        with open(paths["memory"] + "/memory.limit_in_bytes") as f:
            assert int(f.read()) == 96 << 20
        with open(paths["memory"] + "/memory.memsw.limit_in_bytes") as f:
            assert int(f.read()) == 128 << 20
    finally:
        ok(cli(*g, "delete", "-f", "u2"))


def test_events_stats_once(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    ok(cli(*g, "run", "-d", "-b", bundle, "ev"))
    event = json.loads(ok(cli(*g, "events", "--stats", "ev")).stdout)
    assert event["type"] == "stats" and event["id"] == "ev"
    assert event["data"]["pids"]["current"] == 1
    assert event["data"]["memory"]["usage"]["usage"] > 0
    assert set(event["data"]) >= {"cpu", "memory", "pids", "blkio"}
    ok(cli(*g, "delete", "-f", "ev"))


def test_events_follow_the_container_until_it_stops(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "3"])
    ok(cli(*g, "run", "-d", "-b", bundle, "ev2"))
    proc = ok(cli(*g, "events", "--interval", "100ms", "ev2", timeout=60))
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(events) >= 2 and all(e["type"] == "stats" and e["id"] == "ev2"
                                    for e in events)
    bad = cli(*g, "events", "--interval", "soon", "ev2")
    assert bad.returncode == 125 and "--interval" in bad.stderr
    stopped = cli(*g, "events", "ev2")
    assert stopped.returncode == 125 and "stopped" in stopped.stderr
    ok(cli(*g, "delete", "ev2"))


# --- the console socket ---------------------------------------------------------------------

def _listen(path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    return srv


def _receive_master(srv):
    """What runc's recvtty does: accept, one message with one descriptor (SCM_RIGHTS)."""
    conn, _ = srv.accept()
    with conn:
        fds = array.array("i")
        msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    assert len(fds) == 1
    return msg, fds[0]


def _read_until(fd, want):
    import select

    got = b""
    while want not in got:
        assert select.select([fd], [], [], 30)[0], got
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        got += chunk
    return got


def test_console_socket_gets_the_pty_master(env, rootfs, tmp_path):
    import fcntl
    import struct
    import termios

    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs,
                         ["sh", "-c", "tty; stty size; read x; echo got-$x"],
                         process={"terminal": True, "consoleSize": {"height": 33,
                                                                    "width": 101}})
    sock = str(tmp_path / "console.sock")
    srv = _listen(sock)
    try:
        ok(cli(*g, "create", "--bundle", bundle, "--console-socket", sock, "--pid-file",
               str(tmp_path / "p"), "t1"))
        name, master = _receive_master(srv)
    finally:
        srv.close()
    try:
        assert name == b"/dev/ptmx" and os.isatty(master)
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ,
                                                       b"\0" * 8))[:2]
        assert (rows, cols) == (33, 101)
        ok(cli(*g, "start", "t1"))
        out = _read_until(master, b"33 101")
        assert b"/dev/pts/0" in out
        os.write(master, b"hello\n")
        assert b"got-hello" in _read_until(master, b"got-hello")
    finally:
        os.close(master)
    with open(str(tmp_path / "p")) as f:
        wait_exit(int(f.read()))
    ok(cli(*g, "delete", "t1"))


def test_exec_tty_detached_with_a_console_socket(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    ok(cli(*g, "run", "-d", "-b", bundle, "t2"))
    sock = str(tmp_path / "console.sock")
    srv = _listen(sock)
    try:
        ok(cli(*g, "exec", "-d", "-t", "--console-socket", sock, "--pid-file",
               str(tmp_path / "ep"), "t2", "sh", "-c", "tty; echo done"))
        _name, master = _receive_master(srv)
    finally:
        srv.close()
    try:
        out = _read_until(master, b"done")
        assert b"/dev/pts/" in out
    finally:
        os.close(master)
    with open(str(tmp_path / "ep")) as f:
        wait_exit(int(f.read()))
    ok(cli(*g, "delete", "-f", "t2"))


def test_a_terminal_without_a_console_socket_is_refused_for_create(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sh"], process={"terminal": True})
    proc = cli(*g, "create", "-b", bundle, "t3")
    assert proc.returncode == 125 and "console socket" in proc.stderr
    assert not os.path.exists(os.path.join(root, "t3"))
    missing = cli(*g, "create", "-b", bundle, "--console-socket", str(tmp_path / "nope"), "t3")
    assert missing.returncode == 125 and "--console-socket" in missing.stderr
    assert "--console-socket" in last_log(log)["msg"]


# --- side by side with runc -----------------------------------------------------------------

@pytest.mark.skipif(not RUNC, reason="runc is not installed")
def test_state_and_list_have_runc_s_fields(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                         annotations={"k": "v"})
    runc_root = str(tmp_path / "runc-state")
    subprocess.run([RUNC, "--root", runc_root, "create", "-b", bundle, "r1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ok(cli(*g, "create", "-b", bundle, "m1"))
        theirs = json.loads(subprocess.run([RUNC, "--root", runc_root, "state", "r1"],
                                           capture_output=True, check=True).stdout)
        ours = json.loads(ok(cli(*g, "state", "m1")).stdout)
        assert set(theirs) <= set(ours)
        assert list(ours)[:len(theirs)] == [k for k in ours if k in theirs]
        for key in ("status", "bundle", "rootfs", "annotations", "owner"):
            assert ours[key] == theirs[key], key
        their_rows = json.loads(subprocess.run([RUNC, "--root", runc_root, "list", "-f",
                                                "json"], capture_output=True,
                                               check=True).stdout)
        our_rows = json.loads(ok(cli(*g, "list", "-f", "json")).stdout)
        assert sorted(their_rows[0]) == sorted(our_rows[0])
        their_table = subprocess.run([RUNC, "--root", runc_root, "list"], capture_output=True,
                                     text=True, check=True).stdout.splitlines()
        assert ok(cli(*g, "list")).stdout.splitlines()[0].split() == their_table[0].split()
    finally:
        subprocess.run([RUNC, "--root", runc_root, "delete", "-f", "r1"])
        cli(*g, "delete", "-f", "m1")


# --- global options, spec, features, bad input -----------------------------------------------

def test_version_help_features_and_checkpoint():
    v = ok(cli("--version")).stdout
    assert v.startswith("minins version ") and "spec: %s" % runc.OCI_VERSION in v
    assert ok(cli("-v")).stdout == v
    assert "events" in ok(cli("--help")).stdout
    f = json.loads(ok(cli("features")).stdout)
    assert f["ociVersionMax"] == runc.OCI_VERSION and "createContainer" in f["hooks"]
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"] and "rbind" in f["mountOptions"]
    for command in ("checkpoint", "restore"):
        proc = cli(command, "x")
        assert proc.returncode == 125 and "not supported" in proc.stderr
    assert "--stats" in ok(cli("events", "--help")).stdout


def test_spec_writes_a_loadable_config_once(tmp_path):
    from minins.oci import bundle

    ok(cli("spec", "-b", str(tmp_path)))
    (tmp_path / "rootfs").mkdir()  # (the loader wants the rootfs it names)
    b = bundle.load(str(tmp_path))
    assert b.args == ("sh",) and b.config.tty
    again = cli("spec", "-b", str(tmp_path))
    assert again.returncode == 125 and "exists" in again.stderr
    rootless = tmp_path / "rl"
    rootless.mkdir()
    ok(cli("spec", "--rootless", "--bundle", str(rootless)))
    with open(str(rootless / "config.json")) as f:
        spec = json.load(f)
    assert {"type": "user"} in spec["linux"]["namespaces"] and spec["linux"]["uidMappings"]


def test_log_text_format_and_bad_global_options(tmp_path):
    log = str(tmp_path / "log.txt")
    proc = cli("--root", str(tmp_path / "s"), "--log", log, "state", "nosuch")
    assert proc.returncode == 125
    with open(log) as f:
        line = f.read()
    assert line.startswith('time="') and ' level=error msg="' in line and \
        "does not exist" in line
    bad = cli("--log-format", "xml", "list")
    assert bad.returncode == 125 and "log-format" in bad.stderr
    bad = cli("--rootless", "maybe", "list")
    assert bad.returncode == 125 and "--rootless" in bad.stderr
    assert ok(cli("--root", str(tmp_path / "s"), "--debug", "--systemd-cgroup",
                  "--rootless=false", "--criu", "criu", "list", "-q")).stdout == ""
    spec = tmp_path / "sd"
    spec.mkdir()
    ok(cli("spec", "-b", str(spec)))
    with open(str(spec / "config.json")) as f:
        doc = json.load(f)
    doc["linux"]["cgroupsPath"] = "/not/systemd/form"
    with open(str(spec / "config.json"), "w") as f:
        json.dump(doc, f)
    bad = cli("--root", str(tmp_path / "s"), "--systemd-cgroup", "create", "-b", str(spec),
              "sd")
    assert bad.returncode == 125 and "slice:prefix:name" in bad.stderr
    bad = cli("--root", str(tmp_path / "s"), "create", "--bogus", "x")
    assert bad.returncode == 125 and "--bogus" in bad.stderr
    bad = cli("--root", str(tmp_path / "s"), "create", "-b", str(tmp_path), "a", "b")
    assert bad.returncode == 125 and "exactly 1 argument" in bad.stderr
    bad = cli("--root", str(tmp_path / "s"), "create", "-b", str(tmp_path), "a")
    assert bad.returncode == 125 and "config.json" in bad.stderr


# --- pure: the dispatch rule, the log line, the option parser ---------------------------------

def test_which_create_and_run_are_runc_s(tmp_path):
    assert runc.is_runc_create(["--bundle", "b", "id"])
    assert runc.is_runc_create(["id"])
    assert not runc.is_runc_create(["--id", "x", "--", "sh"])
    assert not runc.is_runc_create(["--rootfs", "/r", "--id=x", "sh"])
    assert not runc.is_runc_create(["--data-path", "/run/minins/x", "sh"])
    empty = str(tmp_path)
    assert runc.is_runc_run(["-b", "b", "id"], cwd=empty)
    assert runc.is_runc_run(["--console-socket", "s", "-d", "id"], cwd=empty)
    assert not runc.is_runc_run(["--", "sh"], cwd=empty)
    assert not runc.is_runc_run(["sh"], cwd=empty)  # no config.json here
    assert not runc.is_runc_run(["-d", "--id", "x", "sh"], cwd=empty)
    with open(os.path.join(empty, "config.json"), "w") as f:
        f.write("{}")
    assert runc.is_runc_run(["id"], cwd=empty) and runc.is_runc_run(["-d", "id"], cwd=empty)
    assert not runc.is_runc_run(["sh", "-c", "true"], cwd=empty)
    assert not runc.is_runc_run(["--", "sh"], cwd=empty)
    assert not runc.is_runc_run(["-e", "A=1", "sh"], cwd=empty)


def test_log_lines_as_logrus_writes_them():
    line = runc.format_log_line("error", 'bad "thing"\n', "json", when=0)
    assert line == '{"level":"error","msg":"bad \\"thing\\"\\n","time":"1970-01-01T00:00:00Z"}\n'
    assert runc.format_log_line("warning", "w", "text", when=0) == \
        'time="1970-01-01T00:00:00Z" level=warning msg="w"\n'


def test_the_option_parser_reads_urfave_forms():
    table = runc.RUN
    assert runc.parse(["--bundle=b", "-d", "--pid-file", "p", "id", "-x"], table, "run") == \
        ({"bundle": "b", "detach": True, "pid_file": "p"}, ["id", "-x"])
    assert runc.parse(["-bundle", "b", "--detach=false", "id"], table, "run") == \
        ({"bundle": "b", "detach": False}, ["id"])
    assert runc.parse(["--", "-id"], table, "run") == ({}, ["-id"])
    for argv in (["--nope", "id"], ["--pid-file"], ["--detach=maybe", "id"]):
        with pytest.raises(ConfigError):
            runc.parse(argv, table, "run")


def test_update_options_become_oci_resources():
    res = runc.update_resources({"memory": "1g", "memory_swap": "-1", "cpu_quota": "-1",
                                 "cpuset_cpus": "0-1", "pids_limit": "9",
                                 "blkio_weight": "300"})
    assert res == {"memory": {"limit": 1 << 30, "swap": -1},
                   "cpu": {"quota": -1, "cpus": "0-1"}, "pids": {"limit": 9},
                   "blockIO": {"weight": 300}}
    with pytest.raises(ConfigError, match="--cpu-shares"):
        runc.update_resources({"cpu_shares": "x"})
    with pytest.raises(ConfigError, match="--kernel-memory"):
        runc.update_resources({"kernel_memory": "1m"})


def test_process_file_fields_and_errors():
    from minins import config

    base = config.default_config()
    cfg, args, tty, size = runc.process_config(
        {"args": ["a"], "cwd": "/w", "terminal": True, "env": ["A=1"],
         "consoleSize": {"height": 5, "width": 9},
         "user": {"uid": 5, "gid": 6, "additionalGids": [7]}}, base)
    assert args == ("a",) and tty and cfg.environment == ("A=1",) and size == (5, 9)
    assert cfg.user == "5:6" and cfg.additional_groups == (7,) and cfg.working_dir == "/w"
    assert cfg.namespaces == base.namespaces  # the container's, untouched
    for bad, field in (({"args": [], "cwd": "/"}, "process.args"),
                       ({"args": ["a"], "cwd": "rel"}, "process.cwd"),
                       ({"args": ["a"], "cwd": "/", "user": {"uid": -1}}, "process.user.uid")):
        with pytest.raises(ConfigError) as e:
            runc.process_config(bad, base)
        assert e.value.field == field


def test_tty_names_of_stat_tty_nr():
    assert runc._tty_name(0) == "?"
    assert runc._tty_name((136 << 8) | 3) == "pts/3"
    assert runc._tty_name((137 << 8) | 1) == "pts/257"
    assert runc._tty_name((4 << 8) | 1) == "tty1"


def test_preserve_fds_passes_3_and_up_and_no_pivot_runs(env, rootfs, tmp_path):
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sh", "-c", "echo via-fd3 >&3"])
    out = str(tmp_path / "fd3")

    def run(*extra):
        return subprocess.run(["sh", "-c", 'exec "$@" 3>"%s"' % out, "sh", sys.executable,
                               "-m", "minins"] + g + ["run", "-b", bundle] + list(extra),
                              cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                              capture_output=True, text=True, timeout=120)

    proc = run("--preserve-fds", "1", "pf1")
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        assert f.read() == "via-fd3\n"
    closed = run("pf2")  # without it, nothing but 0, 1 and 2 reaches the process
    assert closed.returncode != 0 and "Bad file descriptor" in closed.stderr
    bad = run("--preserve-fds", "x", "pf3")
    assert bad.returncode == 125 and "--preserve-fds" in bad.stderr
    os.unlink(out)
    proc = run("--no-pivot", "--preserve-fds=1", "pf4")  # MS_MOVE and chroot instead
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        assert f.read() == "via-fd3\n"


# --- properties -----------------------------------------------------------------------------

from hypothesis import given, strategies as st  # noqa: E402

_WORDS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(_WORDS, max_size=8))
def test_any_argv_gives_values_or_one_usage_error(argv):
    try:
        values, rest = runc.parse(argv, runc.RUN, "run")
    except ConfigError as e:
        assert "\n" not in str(e) or "\n" in "".join(argv)
        return
    assert set(values) <= {k for k, _kind in runc.RUN.values()}
    assert rest == argv[len(argv) - len(rest):] or "--" in argv


@given(st.sampled_from(["error", "warning", "debug"]), _WORDS,
       st.integers(min_value=0, max_value=2 ** 33))
def test_a_json_log_line_is_one_line_that_reads_back(level, msg, when):
    line = runc.format_log_line(level, msg, "json", when=when)
    assert line.endswith("\n") and "\n" not in line[:-1]
    entry = json.loads(line)
    assert entry["level"] == level and entry["msg"] == msg and entry["time"].endswith("Z")


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=999),
                          st.sampled_from(["ns", "us", "ms", "s", "m", "h"])),
                min_size=1, max_size=3))
def test_go_durations(parts):
    text = "".join("%d%s" % p for p in parts)
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    assert abs(runc._duration(text) - sum(n * units[u] for n, u in parts)) < 1e-6
    for bad in ("", "5", "5x", "-1s", "0s", "s5"):
        with pytest.raises(ConfigError):
            runc._duration(bad)


def test_events_ends_with_0_when_the_container_stops_between_its_reads(monkeypatch, capsys):
    """The container may stop between events' stats and its OOM count: that is the end of
    the stream (exit 0, as runc's events), not an error; only a container already stopped at
    the first read is one."""
    from minins import cli
    from minins.errors import StateError

    calls = {"oom": 0}

    def oom_kills(data_path):
        calls["oom"] += 1
        if calls["oom"] == 2:
            raise StateError("cannot watch container c: it is stopped")
        return 0

    monkeypatch.setattr(cli, "existing", lambda cid, root: "/nonexistent/" + cid)
    monkeypatch.setattr(lifecycle, "stats", lambda data_path: {})
    monkeypatch.setattr(lifecycle, "oom_kills", oom_kills)
    monkeypatch.setattr(runc, "runc_stats", lambda stats: {})
    monkeypatch.setattr("time.sleep", lambda s: None)
    assert runc.cmd_events(["--interval", "1ms", "c"], "/nonexistent") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the first read's stats only
    calls["oom"] = 1  # stopped at the very first read: an error
    with pytest.raises(StateError):
        runc.cmd_events(["--interval", "1ms", "c"], "/nonexistent")
