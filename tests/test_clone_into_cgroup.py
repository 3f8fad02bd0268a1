"""clone3(CLONE_INTO_CGROUP) (issue 16): a process born in the container's cgroup v2
directory, so that no migration -- and no RCU grace period -- is on the start's path.
Real kernel, as root, in cgroups made below this process's own v2 cgroup (the unified
hierarchy of a hybrid host works: it needs no controller)."""
import os

import pytest

from cgroups_support import Child, cgroup_config, idle, unique_name
from minins import cgroups, libc
from minins.cgroups.discovery import UNIFIED, discover
from minins.errors import SyscallError

HIER = discover()
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroup tests need root"),
    pytest.mark.skipif(not HIER.unified, reason="no cgroup v2 hierarchy is mounted here"),
]


def _v2_of(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        return [line.split(":", 2)[2].strip() for line in f if line.startswith("0::")][0]


def _clone3_works():
    fd = os.open(HIER.own_dir(UNIFIED), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pid = libc.fork_into_cgroup(fd)
    except SyscallError as e:
        return e
    finally:
        os.close(fd)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return None


@pytest.fixture
def mgr():
    why = _clone3_works()
    if why is not None:
        pytest.skip("clone3(CLONE_INTO_CGROUP) unavailable here: %s" % why)
    m = cgroups.new_manager(cgroup_config(name=unique_name("born")), HIER, driver="v2")
    yield m
    try:
        if os.path.isdir(m.path):
            m.kill_all(timeout=5)
    finally:
        m.destroy()


def test_a_process_is_born_in_the_prepared_cgroup(mgr):
    fd = mgr.prepare()
    try:
        assert os.path.isdir(mgr.path)
        with open(mgr.path + "/cgroup.procs") as f:
            assert f.read() == ""  # made and set, nobody in it yet
        pid = libc.fork_into_cgroup(fd)
        if pid == 0:
            mine = _v2_of(os.getpid())
            os._exit(0 if mgr.path.endswith(mine) and mine != _v2_of(os.getppid()) else 3)
    finally:
        os.close(fd)
    mgr.admit(pid, born=True)
    assert os.waitpid(pid, 0)[1] == 0
    mgr.destroy()
    assert not os.path.isdir(mgr.path)


def test_without_the_clone_admit_migrates(mgr):
    """clone3 refused (an older kernel, qemu-user): the process is forked as usual and
    admit() moves it in."""
    fd = mgr.prepare()
    os.close(fd)
    kid = Child(idle)
    try:
        mgr.admit(kid.pid, born=False)
        with open(mgr.path + "/cgroup.procs") as f:
            assert f.read().split() == [str(kid.pid)]
    finally:
        mgr.kill_all(timeout=5)
        kid.close()


def test_a_failed_prepare_leaves_nothing(mgr):
    def refuse():
        raise SyscallError(24, "open", mgr.path)  # EMFILE, after the cgroup was made

    mgr.open_dir = refuse
    with pytest.raises(SyscallError):
        mgr.prepare()
    assert not os.path.isdir(mgr.path)


@pytest.mark.skipif(bool(HIER.v1), reason="a pure cgroup v2 host (tools/vm-cgroup-v2-tests): "
                    "with v1 hierarchies the container is migrated there anyway")
def test_run_and_exec_are_born_in_the_containers_cgroup(tmp_path):
    """End to end on a pure v2 host: the command of `run`, and of `exec` into it, report the
    container's cgroup as their own, and nothing is left after delete."""
    import subprocess
    import sys

    if _clone3_works() is not None:
        pytest.skip("clone3(CLONE_INTO_CGROUP) unavailable here")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root, cid = str(tmp_path / "state"), unique_name("e2e")

    def minins(*args):
        # (files, not pipes: the detached init keeps its stdout and stderr)
        import tempfile

        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            rc = subprocess.run([sys.executable, "-m", "minins", "--root", root] + list(args),
                                cwd=repo, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                timeout=120).returncode
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, rc, out.read(), err.read())

    path = None
    try:
        out = minins("run", "-d", "--id", cid, "--", "sleep", "600")
        assert out.returncode == 0, out.stderr
        import json

        with open(os.path.join(root, cid, "state.json")) as f:
            path = json.load(f)["cgroup_paths"][UNIFIED]
        with open(path + "/cgroup.procs") as f:
            assert len(f.read().split()) == 1  # the init, and no intermediate left in it
        out = minins("exec", cid, "--", "cat", "/proc/self/cgroup")
        assert out.returncode == 0, out.stderr
        # the container has its own cgroup namespace or sees the full path: either way the
        # last component is the container's cgroup
        assert out.stdout.strip().endswith(os.path.basename(path)) or \
            out.stdout.strip() == "0::/", out.stdout
    finally:
        if os.path.isdir(os.path.join(root, cid)):
            assert minins("delete", "--force", cid).returncode == 0
    assert path and not os.path.isdir(path)
