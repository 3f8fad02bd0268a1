"""Issue 11's lead items: one identity per container, races with the container's own death,
/proc/self facts read in the right place (rootless exec), and kill's forms. Real kernel, as
root."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from kernel import Subreaper, needs_root, needs_userns

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, env=None, user=None, timeout=120):
    argv = [sys.executable, "-m", "minins"] + list(args)
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + argv
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=err, timeout=timeout, env=env)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read().decode(), err.read().decode()
    return proc


@pytest.fixture
def root(tmp_path):
    from minins import lifecycle

    with Subreaper() as reaper:
        r = str(tmp_path / "state")
        yield r
        for row in lifecycle.list_containers(r):
            try:
                lifecycle.delete(row["data_path"], force=True)
            except Exception:  # noqa: B902
                pass
        reaper.reap()


def test_the_id_and_the_state_dir_are_one_thing(root, tmp_path):
    cid = "ident%d" % os.getpid()
    # an --id that disagrees with --data-path is refused, before anything is made
    proc = cli("run", "--id", "other", "--data-path", os.path.join(root, cid), "--", "true")
    assert proc.returncode == 125 and "--id" in proc.stderr and proc.stderr.count("\n") == 1
    assert not os.path.exists(root)
    # so is a --root that does not hold the --data-path
    proc = cli("--root", str(tmp_path / "elsewhere"), "run", "--data-path",
               os.path.join(root, cid), "--", "true")
    assert proc.returncode == 125 and "state root" in proc.stderr
    # a --data-path names the id (its last component) under its parent: every command finds it
    proc = cli("run", "-d", "--data-path", os.path.join(root, cid), "--", "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    listed = cli("--root", root, "list", "--json")
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [cid]
    for argv in (["state", cid], ["ps", cid], ["kill", cid, "0"], ["exec", cid, "true"]):
        proc = cli("--root", root, *argv)
        assert proc.returncode == 0, (argv, proc.stderr)
    # the same id cannot run twice
    proc = cli("--root", root, "run", "--id", cid, "--", "true")
    assert proc.returncode == 125 and "taken" in proc.stderr
    assert cli("--root", root, "delete", "--force", cid).returncode == 0


def test_kill_of_a_dying_container_is_success(root):
    """kill KILL races the runtime removing the cgroups of the container it just killed;
    kill --all KILL races the same. Both used to fail with ENOENT/ENODEV on the cgroup files."""
    for i in range(15):
        cid = "dying%d-%d" % (os.getpid(), i)
        run = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "run", "--id",
                                cid, "--", "sleep", "1000"], cwd=REPO,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            while True:  # until the container runs
                p = cli("--root", root, "state", cid)
                if p.returncode == 0 and json.loads(p.stdout)["status"] == "running":
                    break
                assert run.poll() is None, "run exited early"
            argv = ["kill", "--all", cid, "KILL"] if i % 2 else ["kill", cid, "KILL"]
            proc = cli("--root", root, *argv)
            assert proc.returncode == 0, (argv, proc.stderr)
            assert run.wait(60) == 137
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    # and a command on a container that has gone meanwhile says so clearly
    proc = cli("--root", root, "pause", "dying%d-0" % os.getpid())
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1


def test_kill_takes_the_forms_of_kill_1(root):
    cid = "kforms%d" % os.getpid()
    assert cli("--root", root, "run", "-d", "--id", cid, "--", "sleep", "1000").returncode == 0
    assert cli("--root", root, "kill", cid, "0").returncode == 0  # liveness probe
    assert cli("--root", root, "kill", cid, "-0").returncode == 0
    assert cli("--root", root, "kill", cid, "-SIGCONT").returncode == 0
    proc = cli("--root", root, "kill", cid, "-9")
    assert proc.returncode == 0, proc.stderr
    proc = cli("--root", root, "kill", cid, "0")
    assert proc.returncode == 125 and "not running" in proc.stderr
    assert cli("--root", root, "delete", cid).returncode == 0


@needs_userns
def test_rootless_exec_reads_setgroups_of_the_right_process():
    """Rootless `exec` failed with `setgroups (none): EPERM`: /proc/self/setgroups was read
    after joining the mount namespace, where /proc/self names nothing, and a failed read was
    taken as "allowed". Its errors are not prefixed `init:` either."""
    from minins import lifecycle

    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", "import ctypes"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user nobody cannot run this interpreter")
    import pathlib
    import shutil

    work = pathlib.Path(tempfile.mkdtemp(prefix="minins-rootless-"))  # nobody must reach it
    os.chmod(str(work), 0o777)
    env = dict(os.environ, PYTHONPATH=REPO, HOME=str(work), XDG_RUNTIME_DIR=str(work))
    root = str(work / "minins")
    cid = "rl%d" % os.getpid()
    with Subreaper() as reaper:
        try:
            proc = cli("run", "-d", "--id", cid, "--", "sleep", "1000", env=env, user=65534)
            assert proc.returncode == 0, proc.stderr
            proc = cli("exec", cid, "--", "sh", "-c", "id -u; cat /proc/self/setgroups",
                       env=env, user=65534)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.split() == ["0", "deny"]
            proc = cli("exec", cid, "--", "/no/such", env=env, user=65534)
            assert proc.returncode == 127 and "init:" not in proc.stderr
            assert "exec:" in proc.stderr
        finally:
            cli("delete", "--force", cid, env=env, user=65534)
            try:
                for row in lifecycle.list_containers(root):
                    lifecycle.delete(row["data_path"], force=True)
                reaper.reap()
            finally:
                shutil.rmtree(str(work), ignore_errors=True)
