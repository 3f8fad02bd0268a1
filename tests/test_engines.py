"""Real clients (issue 13, section 3): podman with conmon, and containerd through ``ctr`` and
its runc shim, run containers through the runtime under test, every operation the issue
names.

The runtime under test is minins, given to the engines as an executable that runs
``python3 -m minins`` from this checkout (the vendored form). ``MININS_ENGINE_RUNTIME=runc``
(or ``crun``, or the path of any runc-compatible executable) runs the same tests against that
runtime instead: that is how the harness itself is checked. minins is skipped, with the
reason measured now, while its command line cannot serve an engine (``--version`` must name
the OCI spec version and ``spec`` must write a config.json, as runc's do).
``MININS_ENGINE_ARGV_LOG=FILE`` keeps the runtime's argv log (every call the engines made,
one line each: the wrapper's pid, then the arguments) after the run.

Safety (see tests/engines_support.py): every engine command runs in a private mount
namespace of the module's own, all engine state lives in a temporary directory, containers
have no network, cgroups go below a parent of ours that is removed at the end, daemons are
stopped by pid.
"""
import json
import os
import shutil
import tempfile
import time

import pytest

import engines_support as es
from rootfs_util import build_rootfs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHOICE = os.environ.get("MININS_ENGINE_RUNTIME", "minins")


def _target():
    """(wrapper name, target argv, env) of the runtime under test."""
    if CHOICE == "minins":
        argv, env = es.minins_target(REPO)
        return "minins", argv, env
    path = CHOICE if os.sep in CHOICE else shutil.which(
        CHOICE, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("MININS_ENGINE_RUNTIME=%s: no such executable" % CHOICE)
    return os.path.basename(path), [path], {}


@pytest.fixture(scope="module")
def world():
    """The module's sandbox: a temporary directory, a private mount namespace, a cgroup
    parent of ours, the runtime's wrapper (which logs every argv it is given to
    ``argv.log``) and the busybox image as a tarball and as an OCI archive."""
    try:
        es.need_root()
        es.need("unshare", "nsenter", "mount")
    except es.Unavailable as e:
        pytest.skip(str(e))
    name, target, env = _target()
    base = tempfile.mkdtemp(prefix="minins-engines-")
    os.chmod(base, 0o755)
    ns = cgroup = None
    try:
        argv_log = os.path.join(base, "argv.log")
        runtime = es.runtime_wrapper(os.path.join(base, "bin"), name, target, argv_log, env)
        missing = es.oci_cli_missing(runtime) if CHOICE == "minins" else None
        if missing:
            pytest.skip("minins cannot serve an engine yet: " + missing)
        try:
            ns = es.MountNamespace(os.path.join(base, "ns.log"),
                                   hide_unified=(name == "crun"))
            cgroup = es.CgroupParent("test")
        except es.Unavailable as e:
            pytest.skip(str(e))
        rootfs = build_rootfs(os.path.join(base, "rootfs"))
        layer = es.rootfs_tar(rootfs, os.path.join(base, "rootfs.tar"))
        world = World(base, ns, cgroup, runtime, argv_log, layer,
                      es.oci_archive(layer, os.path.join(base, "image.tar")))
        yield world
        problems = world.close()
    finally:
        keep = os.environ.get("MININS_ENGINE_ARGV_LOG")
        if keep and os.path.exists(os.path.join(base, "argv.log")):
            shutil.copyfile(os.path.join(base, "argv.log"), keep)
        if ns is not None:
            ns.close()
        left = cgroup.remove() if cgroup is not None else []
        shutil.rmtree(base, ignore_errors=True)
    assert not problems and not left, "cleanup: %s" % (problems + left)


class World:
    def __init__(self, base, ns, cgroup, runtime, argv_log, layer, archive):
        self.base, self.ns, self.cgroup, self.runtime = base, ns, cgroup, runtime
        self.argv_log, self.layer, self.archive = argv_log, layer, archive
        self.engines = []

    def calls(self):
        """The runtime's argvs so far, one list each (the wrapper's log)."""
        with open(self.argv_log) as f:
            return [line.split()[1:] for line in f]

    def close(self):
        problems = []
        for engine in reversed(self.engines):
            problems += engine.close()
        return problems


@pytest.fixture(scope="module")
def podman(world):
    try:
        engine = es.Podman(os.path.join(world.base, "podman"), world.runtime, world.ns,
                           world.cgroup.path)
    except es.Unavailable as e:
        pytest.skip(str(e))
    world.engines.append(engine)
    engine.import_image(world.layer)
    return engine


@pytest.fixture(scope="module")
def ctr(world):
    try:
        engine = es.Containerd(os.path.join(world.base, "containerd"), world.ns,
                               world.cgroup.path)
    except es.Unavailable as e:
        pytest.skip(str(e))
    world.engines.append(engine)
    try:
        engine.start()
    except es.Unavailable as e:
        pytest.skip(str(e))
    engine.import_image(world.archive)
    return engine


_names = iter(range(1, 1 << 30))


def unique(tag):
    return "minins-%s-%d-%d" % (tag, os.getpid(), next(_names))


def cgroup_file(pid, controller, name):
    """The path of ``name`` in ``pid``'s cgroup of the v1 hierarchy ``controller``."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return "/sys/fs/cgroup/%s%s/%s" % (controller, path, name)
    pytest.skip("no %s cgroup v1 hierarchy on this host" % controller)


def read(path):
    with open(path) as f:
        return f.read()


# --- podman -----------------------------------------------------------------------------------

def test_podman_run_rm_echo_hi(podman):
    out = podman("run", "--rm", *podman.run_args(), es.IMAGE, "echo", "hi")
    assert out.stdout == "hi\n"


def test_podman_exit_code_comes_back(podman):
    out = podman("run", "--rm", *podman.run_args(), es.IMAGE, "sh", "-c", "exit 7",
                 check=False)
    assert out.returncode == 7, out.stderr


def test_podman_run_with_env_workdir_user(podman):
    out = podman("run", "--rm", *podman.run_args(), "--env", "GREETING=hello there",
                 "--workdir", "/tmp", "--user", "1000:1000", es.IMAGE,
                 "sh", "-c", 'echo "$GREETING"; pwd; id -u; id -g')
    assert out.stdout.split("\n") == ["hello there", "/tmp", "1000", "1000", ""]


def test_podman_run_t_gives_a_terminal(podman):
    out = podman("run", "--rm", "-t", *podman.run_args(), es.IMAGE, "tty")
    assert out.stdout.strip().startswith("/dev/pts/"), out.stdout
    out = podman("run", "--rm", *podman.run_args(), es.IMAGE, "tty", check=False)
    assert out.stdout.strip() == "not a tty"


@pytest.fixture
def running(podman):
    """A detached podman container (``sh`` that prints a line and sleeps): its name."""
    name = unique("p")
    podman("run", "-d", "--name", name, *podman.run_args(), es.IMAGE,
           "sh", "-c", "echo started-$HOSTNAME; exec sleep 100000")
    yield name
    podman("rm", "--force", "--time", "0", name, check=False)


def state(podman, name):
    return json.loads(podman("inspect", name).stdout)[0]["State"]


def test_podman_exec_into_a_detached_container(podman, running):
    assert state(podman, running)["Status"] == "running"
    out = podman("exec", running, "sh", "-c", "echo in-exec; cat /proc/1/cmdline")
    assert out.stdout == "in-exec\nsleep\x00100000\x00"
    out = podman("exec", running, "tty", check=False)
    assert (out.returncode, out.stdout.strip()) == (1, "not a tty")


def test_podman_exec_t(podman, running):
    out = podman("exec", "-t", running, "tty")
    assert out.stdout.strip().startswith("/dev/pts/"), out.stdout


def test_podman_pause_unpause(podman, running):
    pid = state(podman, running)["Pid"]
    freezer = cgroup_file(pid, "freezer", "freezer.state")
    assert freezer.startswith("/sys/fs/cgroup/freezer" + podman.cgroup_parent + "/")
    podman("pause", running)
    assert state(podman, running)["Status"] == "paused"
    assert read(freezer).strip() == "FROZEN"
    podman("unpause", running)
    assert state(podman, running)["Status"] == "running"
    assert read(freezer).strip() == "THAWED"
    assert podman("exec", running, "echo", "alive").stdout == "alive\n"


def test_podman_update_memory(podman, running):
    pid = state(podman, running)["Pid"]
    limit = cgroup_file(pid, "memory", "memory.limit_in_bytes")
    before = int(read(limit))
    podman("update", "--memory", "96m", running)
    assert int(read(limit)) == 96 << 20 != before


def test_podman_logs_stop_rm(podman, running):
    podman("stop", "--time", "1", running)
    assert state(podman, running)["Status"] == "exited"
    out = podman("logs", running)
    assert out.stdout.startswith("started-"), out.stdout
    podman("rm", "--force", running)
    out = podman("ps", "--all", "--format", "{{.Names}}")
    assert running not in out.stdout.split()


def test_podman_rm_force_a_running_container(podman, running):
    pid = state(podman, running)["Pid"]
    podman("rm", "--force", "--time", "0", running)
    assert running not in podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not os.path.exists("/proc/%d" % pid) or "sleep" not in read(
        "/proc/%d/cmdline" % pid)


# --- containerd -------------------------------------------------------------------------------

def task_status(ctr, cid):
    for line in ctr("tasks", "list").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return fields[2]
    return None


def wait_status(ctr, cid, want, timeout=30):
    """Poll ``ctr tasks list`` until the task's status is ``want`` (the daemon has no
    wait verb in ctr 1.6); the status at the deadline otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        status = task_status(ctr, cid)
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_ctr_run_rm(world, ctr):
    cid = unique("c")
    out = ctr("run", "--rm", *ctr.run_args(world.runtime, cid), es.IMAGE, cid, "echo", "hi")
    assert out.stdout == "hi\n"
    assert cid not in ctr("containers", "list", "-q").stdout.split()


def test_ctr_exit_code_comes_back(world, ctr):
    cid = unique("c")
    out = ctr("run", "--rm", *ctr.run_args(world.runtime, cid), es.IMAGE, cid,
              "sh", "-c", "exit 7", check=False)
    assert out.returncode == 7, out.stderr


@pytest.fixture
def task(world, ctr):
    """A detached containerd task (``sleep``): its id."""
    cid = unique("c")
    ctr("run", "-d", *ctr.run_args(world.runtime, cid), es.IMAGE, cid, "sleep", "100000")
    yield cid
    ctr("tasks", "kill", "--signal", "SIGKILL", cid, check=False)
    wait_status(ctr, cid, "STOPPED")
    ctr("tasks", "delete", "--force", cid, check=False)
    ctr("containers", "delete", cid, check=False)


def test_ctr_task_exec_and_ps(ctr, task):
    assert task_status(ctr, task) == "RUNNING"
    out = ctr("tasks", "exec", "--exec-id", unique("e"), task, "sh", "-c",
              "echo in-exec; cat /proc/1/cmdline")
    assert out.stdout == "in-exec\nsleep\x00100000\x00"
    rows = ctr("tasks", "ps", task).stdout.splitlines()
    pid = int(ctr("tasks", "list").stdout.split(task, 1)[1].split()[0])
    assert rows[0].split()[0] == "PID" and [int(r.split()[0]) for r in rows[1:]] == [pid]


def test_ctr_pause_resume(ctr, task):
    pid = int(ctr("tasks", "list").stdout.split(task, 1)[1].split()[0])
    freezer = cgroup_file(pid, "freezer", "freezer.state")
    assert freezer.startswith("/sys/fs/cgroup/freezer" + ctr.cgroup_parent + "/")
    ctr("tasks", "pause", task)
    assert task_status(ctr, task) == "PAUSED"
    assert read(freezer).strip() == "FROZEN"
    ctr("tasks", "resume", task)
    assert task_status(ctr, task) == "RUNNING"
    assert read(freezer).strip() == "THAWED"


def test_ctr_kill_then_delete_twice(world, ctr, task):
    ctr("tasks", "kill", "--signal", "SIGKILL", task)
    assert wait_status(ctr, task, "STOPPED") == "STOPPED"
    ctr("tasks", "delete", task)
    again = ctr("tasks", "delete", task, check=False)
    assert again.returncode != 0 and "not found" in again.stderr
    ctr("containers", "delete", task)
    assert task not in ctr("containers", "list", "-q").stdout.split()
    # the shim deletes every task twice: `delete ID`, then `delete --force ID`
    deletes = [c[c.index("delete"):] for c in world.calls() if "delete" in c and c[-1] == task]
    assert ["delete", task] in deletes and ["delete", "--force", task] in deletes, deletes
