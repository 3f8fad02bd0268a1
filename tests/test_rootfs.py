"""The container's world, proved from inside: mounts, devices, masks, capabilities, users,
the console, rootless, and the symlink-escape guard."""
import errno
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

import minins
from minins import config, state
from minins.config import Device, Mount, MountConfig, Namespace, Rlimit
from minins.errors import ConfigError, SyscallError

from kernel import (Subreaper, container_python, needs_root, needs_userns, open_fds,
                    run_captured)
from rootfs_util import build_rootfs

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def rootfs():
    # Outside pytest's private tmp (0700): a user-namespaced root must be able to reach it.
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="minins-test-rootfs-")
    os.chmod(base, 0o755)
    try:
        yield build_rootfs(os.path.join(base, "rootfs"))
    finally:
        shutil.rmtree(base)


@pytest.fixture
def state_root(tmp_path):
    return str(tmp_path / "state")


def bb_cfg(rootfs, **changes):
    cfg = config.default_config().replace(root_fs=rootfs,
                                          environment=("PATH=/bin", "TERM=xterm"))
    return cfg.replace(**changes)


def sh(script):
    return ["/bin/sh", "-c", script]


def run_ok(cfg, script, state_root):
    code, out, err = run_captured(cfg, sh(script), state_root=state_root)
    assert code == 0, (out, err)
    return out


def mountinfo(text):
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        rows[fields[4]] = {"opts": fields[5].split(","), "type": fields[sep + 1],
                           "super": fields[sep + 3].split(","), "optional": fields[6:sep]}
    return rows


def test_mount_table(rootfs, state_root):
    rows = mountinfo(run_ok(bb_cfg(rootfs), "cat /proc/self/mountinfo", state_root))
    assert rows["/"]["opts"][0] == "ro"
    assert rows["/proc"]["type"] == "proc" and "nosuid" in rows["/proc"]["opts"]
    assert rows["/dev"]["type"] == "tmpfs" and "mode=755" in rows["/dev"]["super"]
    assert rows["/dev/pts"]["type"] == "devpts" and "ptmxmode=666" in rows["/dev/pts"]["super"]
    assert rows["/dev/shm"]["type"] == "tmpfs" and "size=65536k" in rows["/dev/shm"]["super"]
    assert rows["/dev/mqueue"]["type"] == "mqueue"
    assert rows["/sys"]["type"] == "sysfs" and rows["/sys"]["opts"][0] == "ro"
    assert rows["/tmp"]["type"] == "tmpfs" and rows["/tmp"]["opts"][0] == "rw"
    assert rows["/proc/sys"]["opts"][0] == "ro"
    # every mount is private: nothing propagates to or from the host
    assert not any(o.startswith(("shared:", "master:")) for r in rows.values()
                   for o in r["optional"])


def test_the_old_root_is_not_reachable(rootfs, state_root):
    out = run_ok(bb_cfg(rootfs), "ls /; cat /proc/self/mountinfo | wc -l; "
                                 "cat /proc/self/mountinfo", state_root)
    assert "work" not in out.split() and REPO not in out
    assert set(out.split("\n", 20)[:20]) & {"bin", "etc"}


def test_writes_to_read_only_paths_fail_with_erofs(rootfs, state_root):
    out = run_ok(bb_cfg(rootfs), "touch /etc/x 2>&1; sh -c 'echo 1 > "
                                 "/proc/sys/kernel/domainname' 2>&1; touch /tmp/ok && "
                                 "echo tmp-ok", state_root)
    assert out.count("Read-only file system") == 2 and "tmp-ok" in out


def test_erofs_errno_from_python(state_root):
    code, out, err = run_captured(config.default_config(), [
        container_python(), "-c",
        "import os\ntry:\n    os.mkdir('/usr/minins-x')\nexcept OSError as e:\n"
        "    print(e.errno)"], state_root=state_root)
    assert (code, out.strip()) == (0, str(errno.EROFS))


def test_dev_contents(rootfs, state_root):
    out = run_ok(bb_cfg(rootfs), "ls -l /dev; stat -c '%a %t:%T %F' /dev/null /dev/urandom",
                 state_root)
    names = {line.split()[-1] if "->" not in line else line.split()[-3]
             for line in out.splitlines() if line and not line.startswith("total")}
    for name in ("null", "zero", "full", "tty", "random", "urandom", "pts", "shm", "mqueue",
                 "ptmx", "fd", "stdin", "stdout", "stderr"):
        assert name in names, out
    assert "666 1:3 character special file" in out
    assert "666 1:9 character special file" in out
    assert "ptmx -> pts/ptmx" in out and "fd -> /proc/self/fd" in out


def test_masked_and_readonly_proc_paths(rootfs, state_root):
    out = run_ok(bb_cfg(rootfs), "cat /proc/keys | wc -c; cat /proc/timer_list | wc -c; "
                                 "ls /sys/firmware | wc -l; grep -cE ' /proc/(sys|bus|irq|fs) "
                                 "ro,' /proc/self/mountinfo", state_root)
    keys, timers, firmware, readonly = out.split()
    assert (keys, timers, firmware) == ("0", "0", "0")
    assert int(readonly) == sum(os.path.exists(p) for p in ("/proc/sys", "/proc/bus",
                                                            "/proc/irq", "/proc/fs"))
    host = run_ok(bb_cfg(rootfs, restrict_sys=False), "cat /proc/timer_list | wc -c",
                  state_root)
    assert int(host) > 0  # without restrict_sys the file is there


def test_capabilities_and_no_new_privs(rootfs, state_root):
    out = run_ok(bb_cfg(rootfs), "grep -E '^(CapEff|CapBnd|CapPrm|CapInh|NoNewPrivs)' "
                                 "/proc/self/status", state_root)
    status = dict(line.split(":\t") for line in out.strip().splitlines())
    assert status["CapInh"] == "0000000000000000"  # CVE-2022-24769: inheritable stays empty
    expected = 0
    from minins import caps

    for name in caps.DEFAULT_CAPS:
        expected |= 1 << caps.CAPS[name]
    assert int(status["CapEff"], 16) == expected
    assert int(status["CapBnd"], 16) == expected
    assert status["NoNewPrivs"] == "1"
    out = run_ok(bb_cfg(rootfs, capabilities=("CAP_KILL", "net_raw"), no_new_privileges=False),
                 "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status", state_root)
    status = dict(line.split(":\t") for line in out.strip().splitlines())
    assert int(status["CapEff"], 16) == (1 << 5) | (1 << 13) and status["NoNewPrivs"] == "0"


def test_ambient_capabilities_reach_a_non_root_user(rootfs, state_root):
    cfg = bb_cfg(rootfs, user="alice", capabilities=("NET_BIND_SERVICE", "KILL"),
                 ambient_capabilities=("NET_BIND_SERVICE",))
    out = run_ok(cfg, "grep -E '^Cap(Amb|Eff|Inh)' /proc/self/status", state_root)
    status = dict(line.split(":\t") for line in out.strip().splitlines())
    assert int(status["CapAmb"], 16) == 1 << 10 == int(status["CapEff"], 16)
    assert int(status["CapInh"], 16) == 1 << 10  # the ambient ones only


def test_user_groups_home_and_working_dir(rootfs, state_root):
    cfg = bb_cfg(rootfs, user="alice", additional_groups=(77,), working_dir="/home/alice")
    out = run_ok(cfg, "id -u; id -g; id -G; pwd; echo $HOME", state_root)
    uid, gid, groups, pwd, home = out.split("\n")[:5]
    assert (uid, gid, pwd, home) == ("1000", "1000", "/home/alice", "/home/alice")
    assert groups.split() == ["1000", "10", "50", "77"]
    cfg = bb_cfg(rootfs, user="1234:daemon")
    assert run_ok(cfg, "id -u; id -g; echo $HOME", state_root).split() == ["1234", "1", "/"]


def test_rlimits(rootfs, state_root):
    cfg = bb_cfg(rootfs, rlimits=(Rlimit(type=7, soft=321, hard=654),))  # RLIMIT_NOFILE
    assert run_ok(cfg, "ulimit -n; ulimit -Hn", state_root).split() == ["321", "654"]


def test_bind_mounts_read_only_and_writable(rootfs, state_root, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "in").write_text("from the host")
    mc = bb_cfg(rootfs).mount_config
    cfg = bb_cfg(rootfs, mount_config=mc.replace(mounts=mc.mounts + (
        Mount(type="bind", source=str(src), destination="/mnt"),
        Mount(type="bind", source=str(src), destination="/tmp/rw", writable=True),
        Mount(type="bind", source=str(src / "in"), destination="/tmp/file"))))
    out = run_ok(cfg, "cat /mnt/in; touch /mnt/no 2>&1; echo out > /tmp/rw/out; "
                      "cat /tmp/file", state_root)
    assert "from the host" in out and "Read-only file system" in out
    assert (src / "out").read_text() == "out\n" and not (src / "no").exists()


def test_symlink_in_the_image_cannot_redirect_a_mount_onto_the_host(rootfs, state_root,
                                                                    tmp_path):
    import shutil
    import tempfile

    top = tempfile.mkdtemp(prefix="minins-escape-", dir="/")  # a fresh top-level host dir
    host_dir = __import__("pathlib").Path(top) / "host-etc"
    host_dir.mkdir()
    (host_dir / "marker").write_text("host")
    evil = os.path.join(rootfs, "evil")
    if os.path.lexists(evil):
        os.unlink(evil)
    os.symlink(str(host_dir), evil)  # absolute: on the host it points at host_dir
    mounts_before = open("/proc/self/mountinfo").read()
    try:
        mc = MountConfig(mounts=(Mount(type="tmpfs", destination="/evil/sub"),
                                 Mount(type="bind", source=str(tmp_path),
                                       destination="/evil/bound")),
                         device_nodes=config.DEFAULT_DEVICE_NODES)
        cfg = bb_cfg(rootfs, mount_config=mc)
        out = run_ok(cfg, "grep -E ' /evil| %s' /proc/self/mountinfo | cut -d' ' -f5" %
                     host_dir, state_root)
        # The link was followed *inside* the rootfs: the mounts are at <rootfs><host_dir>/...
        assert sorted(out.split()) == sorted([str(host_dir) + "/bound", str(host_dir) + "/sub"])
        assert sorted(os.listdir(str(host_dir))) == ["marker"]  # the host is untouched
        assert os.path.isdir(os.path.join(rootfs, str(host_dir).lstrip("/"), "sub"))
    finally:
        os.unlink(evil)
        shutil.rmtree(os.path.join(rootfs, top.lstrip("/")), ignore_errors=True)
        shutil.rmtree(top)
    assert open("/proc/self/mountinfo").read() == mounts_before


def test_tty_is_a_pty_and_the_terminal_is_restored(state_root):
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 97, 0, 0))
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", state_root, "run",
                             "--tty", "--", "sh", "-c",
                             "tty; ls -l /dev/console; stty size; read line; "
                             "echo got:$line; exit 3"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=REPO)
    out = b""
    try:
        sent = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"got:" not in out:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
            if not sent and b"31 97" in out:
                os.write(master, b"hi there\r")
                sent = True
        assert proc.wait(30) == 3
        assert termios.tcgetattr(slave) == before  # raw mode undone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    text = out.decode(errors="replace")
    # a pty of the container's own devpts: ttyname works, and /dev/console is the same pty
    assert "/dev/pts/0" in text and "136, 0" in text
    assert "31 97" in text and "got:hi there" in text


def test_tty_console_in_the_library(rootfs, state_root, tmp_path):
    cfg = bb_cfg(rootfs, tty=True)
    with open(str(tmp_path / "out"), "wb+") as out, open(os.devnull, "rb") as null:
        code = minins.run(cfg, sh("tty; test -t 0 && echo stdin-is-tty; "
                                           "ps -o pid,tty | awk '$1 == 1 {print $2}'"),
                          stdin=null,
                          stdout=out, state_root=state_root)
        out.seek(0)
        text = out.read().decode()
    assert code == 0 and "/dev/pts/0" in text and "stdin-is-tty" in text, text
    assert text.split("\n")[2].strip() in ("pts/0", "136,0")  # ps sees the terminal too


@needs_userns
def test_user_namespace_setup_without_a_helper(rootfs, state_root):
    maps = (minins.IDMap(container_id=0, host_id=200000, size=65536),)
    cfg = bb_cfg(rootfs, namespaces=(Namespace(type="NEWUSER"),) + bb_cfg(rootfs).namespaces,
                 uid_mappings=maps, gid_mappings=maps, user="alice")
    out = run_ok(cfg, "id -u; cat /proc/self/uid_map; stat -c '%t:%T' /dev/null; "
                      "grep -c devpts /proc/self/mountinfo; ls /proc | grep -c '^[0-9]'",
                 state_root)
    lines = out.split("\n")
    assert lines[0] == "1000" and lines[1].split() == ["0", "200000", "65536"]
    assert lines[2] == "1:3" and lines[3] == "1"


@needs_userns
def test_rootless_as_an_unprivileged_user():
    import pathlib
    import shutil
    import tempfile

    work = pathlib.Path(tempfile.mkdtemp(prefix="minins-rootless-"))
    os.chmod(str(work), 0o777)
    request_cleanup = lambda: shutil.rmtree(str(work), ignore_errors=True)  # noqa: E731
    try:
        _rootless_run(work)
    finally:
        request_cleanup()


def _python_for_nobody():
    """An interpreter user nobody can run (ours may live under /root, mode 0700)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                exe, "-c", "import ctypes"], capture_output=True)
        if probe.returncode == 0:
            return exe
    pytest.skip("no Python interpreter here that an unprivileged user may run")


def _rootless_run(work):
    env = dict(os.environ, PYTHONPATH=REPO, HOME=str(work), XDG_RUNTIME_DIR=str(work))
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           _python_for_nobody(), "-m", "minins", "run", "--", "sh", "-c",
                           "id -u; cat /proc/self/uid_map; echo $$; touch /usr/x 2>&1; true"],
                          cwd=str(work), env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] == "0" and lines[1].split() == ["0", "65534", "1"] and lines[2] == "1"
    assert "Read-only file system" in proc.stdout
    # (the seccomp compile cache, minins.seccomp.load, is the only thing that stays)
    assert set(os.listdir(str(work / "minins"))) <= {".seccomp-cache"}


@pytest.mark.parametrize("case", ["missing rootfs", "bad mount source", "unknown user",
                                  "bad working dir", "missing device dir"])
def test_failures_are_one_line_and_leave_nothing(rootfs, state_root, case, tmp_path):
    mc = bb_cfg(rootfs).mount_config
    if case == "missing rootfs":
        cfg, words = bb_cfg("/no/such/rootfs"), "/no/such/rootfs"
    elif case == "bad mount source":
        cfg = bb_cfg(rootfs, mount_config=mc.replace(mounts=(
            Mount(type="bind", source="/no/such/src", destination="/mnt"),)))
        words = "mount_config.mounts[0].source: cannot use /no/such/src"
    elif case == "unknown user":
        cfg, words = bb_cfg(rootfs, user="mallory"), "user: no user 'mallory'"
    elif case == "bad working dir":
        # a missing one is made (see test_a_missing_working_dir_is_made); this one cannot be
        cfg, words = bb_cfg(rootfs, working_dir="/etc/passwd/x"), \
            "mkdir /etc/passwd/x: ENOTDIR"
    else:
        cfg = bb_cfg(rootfs, mount_config=mc.replace(readonly_fs=False, device_nodes=(
            Device(type=99, path="/dev/a/b/c", major_number=1, minor_number=3,
                   file_mode=0o600),)))
        words = None
    before = open_fds()
    if words is None:  # nested device directories are simply made
        assert run_ok(cfg, "stat -c %t:%T /dev/a/b/c", state_root).strip() == "1:3"
        return
    with pytest.raises((ConfigError, SyscallError)) as e:
        minins.run(cfg, ["true"], state_root=state_root)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert open_fds() == before
    assert not os.path.exists(state_root) or os.listdir(state_root) == []


@pytest.mark.parametrize("field,changes,words", [
    ("apparmor_profile", {"apparmor_profile": "docker-default"}, "AppArmor is not enabled"),
    ("process_label", {"process_label": "system_u:system_r:svirt_lxc_net_t:s0"},
     "SELinux is not enabled"),
])
def test_labels_without_their_lsm_are_a_clear_error(rootfs, state_root, field, changes, words):
    from minins import security

    if security.apparmor_enabled() or security.selinux_enabled():
        pytest.skip("an LSM is enabled on this host; the error path cannot be shown here")
    with pytest.raises(ConfigError) as e:
        minins.run(bb_cfg(rootfs, **changes), ["true"], state_root=state_root)
    assert e.value.field == field and words in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(state_root) or os.listdir(state_root) == []


def test_selinux_mount_label_without_selinux(rootfs, state_root):
    from minins import security

    if security.selinux_enabled():
        pytest.skip("SELinux is enabled on this host")
    mc = bb_cfg(rootfs).mount_config.replace(mount_label="system_u:object_r:svirt_sandbox_file_t")
    with pytest.raises(ConfigError) as e:
        minins.run(bb_cfg(rootfs, mount_config=mc), ["true"], state_root=state_root)
    assert e.value.field == "mount_config.mount_label" and "SELinux" in str(e.value)


@pytest.mark.parametrize("target", ["/proc", "/proc/sys", "/sys"])
def test_a_volume_cannot_land_on_proc_or_sys_through_an_image_symlink(rootfs, state_root,
                                                                      tmp_path, target):
    link = os.path.join(rootfs, "vol")
    os.symlink(target, link)
    try:
        mc = bb_cfg(rootfs).mount_config
        cfg = bb_cfg(rootfs, mount_config=mc.replace(mounts=mc.mounts + (
            Mount(type="bind", source=str(tmp_path), destination="/vol", writable=True),)))
        with pytest.raises(ConfigError) as e:
            minins.run(cfg, ["true"], state_root=state_root)
        assert e.value.field == "mount_config.mounts[%d].destination" % len(mc.mounts)
        assert "resolves to %s" % target.split("/")[1].join(["/", ""]) in str(e.value)
    finally:
        os.unlink(link)


def test_default_run_has_its_own_run_and_a_tight_device_list(state_root):
    code, out, err = run_captured(config.default_config(), [
        # the last /run mount is the one on top (a host whose /run is a mount of its own, as
        # with systemd, has that one under it, brought along by the recursive bind of /)
        "/bin/sh", "-c", "grep ' /run ' /proc/self/mountinfo | tail -n 1 | cut -d' ' -f9; "
        "ls -A /run | wc -l; "
        "mknod /dev/tun c 10 200 && cat /dev/tun 2>&1; mknod /dev/c1 c 5 1 && cat /dev/c1 2>&1;"
        " echo x > /dev/null && echo null-ok"], state_root=state_root)
    lines = out.split("\n")
    assert code == 0, err
    assert lines[0] == "tmpfs" and lines[1] == "0"  # no host socket under /run
    assert out.count("Operation not permitted") == 2 and "null-ok" in out


def test_pivot_dir_stays_inside_the_rootfs(rootfs, state_root):
    import shutil
    import tempfile

    outside = tempfile.mkdtemp(prefix="minins-pivot-", dir="/")  # a fresh top-level host dir
    link = os.path.join(rootfs, "pivots")
    os.symlink(outside, link)  # on the host this would point outside the rootfs
    try:
        mc = bb_cfg(rootfs).mount_config.replace(readonly_fs=False, pivot_dir="/pivots/here")
        out = run_ok(bb_cfg(rootfs, mount_config=mc), "ls -A %s/here | wc -l; echo ok"
                     % outside, state_root)
        assert out.split() == ["0", "ok"]  # the old root went there, and is gone again
        assert os.listdir(outside) == []  # nothing made on the host
        assert os.path.isdir(os.path.join(rootfs, outside.lstrip("/"), "here"))
    finally:
        os.unlink(link)
        shutil.rmtree(os.path.join(rootfs, outside.lstrip("/")), ignore_errors=True)
        os.rmdir(outside)


def test_a_non_root_init_dies_with_its_runtime(rootfs, state_root):
    """The kernel clears the parent-death signal when the uid changes; minins sets it again."""
    with Subreaper():  # the orphaned init comes to us, to be reaped
        _orphan_run(rootfs, state_root)


def _orphan_run(rootfs, state_root):
    proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", state_root, "run",
                             "--config", _write_cfg(bb_cfg(rootfs, user="alice"), state_root),
                             "--id", "orphan", "--", "sleep", "600"], cwd=REPO)
    data_path = os.path.join(state_root, "orphan")
    try:
        init = _wait_running(data_path)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while state.proc_state(init) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.01)  # bounded wait for the kernel to deliver SIGKILL
        assert state.proc_state(init) in (None, "Z"), "the container outlived its runtime"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        from minins import lifecycle

        if os.path.exists(os.path.join(data_path, "state.json")):
            lifecycle.delete(data_path, force=True)


def _write_cfg(cfg, where):
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, "config.json")
    with open(path, "w") as f:
        f.write(config.dumps(cfg))
    return path


def _wait_running(data_path, timeout=30):
    from minins import lifecycle
    from minins.errors import StateError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = lifecycle.describe(data_path)
            if d["status"] == "running":
                return d["pid"]
        except StateError:
            pass
        time.sleep(0.01)
    raise AssertionError("the container did not start")
