"""minins.run and `minins run` against the real kernel: namespaces, exit codes, state, fds."""
import os
import signal
import subprocess
import sys
import threading

import pytest

import minins
from minins import config
from minins.config import Namespace
from minins.errors import ConfigError, SyscallError

from kernel import (children, container_python, needs_root, needs_userns, open_fds,
                    run_captured)

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def state_root(tmp_path):
    return str(tmp_path / "state")


def cfg_with(**changes):
    return config.default_config().replace(**changes)


def sh(script):
    return ["/bin/sh", "-c", script]


def test_init_is_pid_1_and_host_pids_are_invisible(state_root):
    code, out, _ = run_captured(cfg_with(), sh("echo $$; ls /proc | grep -c '^[0-9]'"),
                                state_root=state_root)
    assert code == 0
    pid, count = out.split()
    assert pid == "1"
    assert int(count) <= 3  # sh, ls, grep: nothing of the host's
    assert str(os.getpid()) not in out


def test_hostname_is_the_containers_own(state_root):
    code, out, _ = run_captured(cfg_with(hostname="box-7"), ["hostname"],
                                state_root=state_root)
    assert (code, out.strip()) == (0, "box-7")
    assert os.uname().nodename != "box-7"


def _ipc_id(cfg_namespaces, state_root):
    cfg = cfg_with(namespaces=cfg_namespaces)
    code, out, err = run_captured(cfg, ["readlink", "/proc/self/ns/ipc"], state_root=state_root)
    assert code == 0, err
    return out.strip()


def test_ipc_private_shared_and_joined_by_path(state_root):
    base = [Namespace(type=t) for t in ("NEWNS", "NEWUTS", "NEWPID", "NEWNET")]
    host = os.readlink("/proc/self/ns/ipc")
    private = _ipc_id(tuple(base + [Namespace(type="NEWIPC")]), state_root)
    assert private != host
    assert _ipc_id(tuple(base), state_root) == host
    # Join the IPC namespace of a process we hold open: a sleeping unshared child.
    holder = subprocess.Popen(["unshare", "--ipc", "sleep", "60"])
    try:
        path = "/proc/%d/ns/ipc" % holder.pid
        for _ in range(200):  # until unshare has exec'd sleep in its new namespace
            if os.readlink(path) != host:
                break
            threading.Event().wait(0.005)
        joined = _ipc_id(tuple(base + [Namespace(type="NEWIPC", path=path)]), state_root)
        assert joined == os.readlink(path) != host
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("path,words", [
    ("/nonexistent/ns/ipc", "cannot open /nonexistent/ns/ipc"),
    ("/proc/self/ns/uts", "is a NEWUTS namespace, not NEWIPC"),
    ("/etc/hostname", "not a namespace file"),
])
def test_bad_namespace_path_is_rejected_before_anything_exists(state_root, path, words):
    cfg = cfg_with(namespaces=(Namespace(type="NEWNS"), Namespace(type="NEWIPC", path=path)))
    before = open_fds()
    with pytest.raises(ConfigError) as e:
        minins.run(cfg, ["true"], state_root=state_root)
    assert e.value.field == "namespaces[1].path"
    assert words in str(e.value)
    assert open_fds() == before
    assert not os.path.exists(state_root) or os.listdir(state_root) == []


def userns_cfg(host_id):
    maps = (minins.IDMap(container_id=0, host_id=host_id, size=65536),)
    return cfg_with(namespaces=tuple(Namespace(type=t) for t in
                                     ("NEWUSER", "NEWNS", "NEWUTS", "NEWIPC", "NEWPID",
                                      "NEWNET")),
                    uid_mappings=maps, gid_mappings=maps)


@needs_userns
def test_user_namespace_root_inside_is_the_mapped_host_uid(state_root, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(str(shared), 100000, 100000)
    base = userns_cfg(100000)
    mc = base.mount_config.replace(mounts=base.mount_config.mounts + (
        config.Mount(type="bind", source=str(shared), destination="/mnt", writable=True),))
    cfg = base.replace(mount_config=mc)
    code, out, err = run_captured(cfg, sh("id -u; id -g; touch /mnt/made-inside"),
                                  state_root=state_root)
    assert code == 0, err
    assert out.split() == ["0", "0"]
    st = os.stat(str(shared / "made-inside"))
    assert (st.st_uid, st.st_gid) == (100000, 100000)


@pytest.mark.parametrize("script,expected", [
    ("exit 7", 7),
    ("exit 0", 0),
    ("exit 255", 255),
])
def test_exit_codes(state_root, script, expected):
    assert minins.run(cfg_with(), sh(script), state_root=state_root) == expected


def test_segfault_gives_139(state_root):
    # PID 1 ignores signals it has no handler for only when they come from inside its
    # namespace; a real fault is delivered regardless.
    code = minins.run(cfg_with(), [container_python(), "-c",
                                   "import ctypes; ctypes.string_at(0)"],
                      state_root=state_root)
    assert code == 139


def test_sigkill_from_the_host_gives_137(state_root):
    def kill_init():
        st = minins.load_state(os.path.join(state_root, "kill-me"))
        os.kill(st["init_pid"], signal.SIGKILL)

    code = minins.run(cfg_with(), ["sleep", "60"], id="kill-me", state_root=state_root,
                      start_callback=kill_init)
    assert code == 137


def test_missing_program_is_127_with_its_name(state_root):
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", state_root, "run", "--",
                           "no-such-program-xyz"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 127
    assert "no-such-program-xyz" in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("minins: error: ")


def test_not_executable_is_126(state_root):
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", state_root, "run", "--",
                           "/etc/hostname"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 126 and "/etc/hostname" in proc.stderr


def test_library_exec_error_carries_errno(state_root):
    with pytest.raises(SyscallError) as e:
        minins.run(cfg_with(), ["/no/such/file"], state_root=state_root)
    assert e.value.errno == 2 and e.value.op == "exec" and e.value.path == "/no/such/file"
    assert str(e.value).startswith("init: exec: ")


def test_only_stdio_is_open_inside(state_root):
    leak_r, leak_w = os.pipe()  # inheritable descriptors of the runtime must not get in
    os.set_inheritable(leak_r, True)
    try:
        code, out, _ = run_captured(cfg_with(), ["ls", "/proc/self/fd"], state_root=state_root)
    finally:
        os.close(leak_r)
        os.close(leak_w)
    assert code == 0
    # ls itself opens the directory it lists: one more descriptor, which it closes
    fds = sorted(int(x) for x in out.split())
    assert fds[:3] == [0, 1, 2] and len(fds) == 4


def test_state_exists_while_running_and_is_gone_after(state_root):
    seen = {}
    data_path = os.path.join(state_root, "st")

    def check():
        st = minins.load_state(data_path)
        seen.update(st)
        with open("/proc/%d/stat" % st["init_pid"]) as f:
            seen["start"] = f.read().rsplit(")", 1)[1].split()[19]

    code = minins.run(cfg_with(), ["true"], data_path=data_path, start_callback=check)
    assert code == 0
    assert seen["init_start_time"] == seen["start"]
    for key in ("init_pid", "network_state", "cgroup_paths", "id", "created"):
        assert key in seen
    assert not os.path.exists(data_path)


def test_cli_run_default_config(state_root):
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", state_root, "run", "--",
                           "sh", "-c", "touch /etc/x 2>/dev/null || echo ro; hostname"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ro", "minins"]


def test_cli_config_prints_the_default(state_root):
    proc = subprocess.run([sys.executable, "-m", "minins", "config"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert config.loads(proc.stdout) == config.default_config()


@pytest.mark.parametrize("argv,words", [
    (["run"], "needs a command"),
    (["run", "--bogus", "--", "true"], "unknown option --bogus"),
    (["frobnicate"], "unknown command"),
    (["run", "--id", "a/b", "--", "true"], "--id: container id"),
])
def test_cli_bad_usage_is_one_line_and_125(state_root, argv, words):
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", state_root] + argv,
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 125
    assert words in proc.stderr and proc.stderr.count("\n") == 1


def test_many_threads_never_hang_the_start(state_root):
    """Containers start while 8 threads allocate, log and start subprocesses."""
    import logging

    stop = threading.Event()
    log = logging.getLogger("minins-test-noise")
    log.addHandler(logging.NullHandler())

    def noise(n):
        while not stop.is_set():
            blob = [bytearray(4096) for _ in range(50)]
            log.warning("noise %d %d", n, len(blob))
            if n % 2:
                subprocess.run(["true"])

    threads = [threading.Thread(target=noise, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    result = {}

    def starts():
        result["codes"] = [minins.run(cfg_with(), ["true"], state_root=state_root)
                           for _ in range(15)]

    runner = threading.Thread(target=starts)
    runner.start()
    runner.join(120)
    stop.set()
    for t in threads:
        t.join(30)
    assert not runner.is_alive(), "a container start hung"
    assert result["codes"] == [0] * 15


def test_nothing_leaks_after_runs(state_root):
    before_fds, before_kids = open_fds(), children()
    for script in ("exit 0", "exit 3", "kill -9 $$ & sleep 1"):
        minins.run(cfg_with(), sh(script), state_root=state_root)
    with pytest.raises(SyscallError):
        minins.run(cfg_with(), ["/nope"], state_root=state_root)
    assert open_fds() == before_fds
    assert children() == before_kids
    assert os.listdir(state_root) == []
