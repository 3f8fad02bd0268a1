"""Two states that runc and crun act on and that the state checks once refused (runtime-tools'
``delete_only_create_resources`` and ``linux_ns_path``), real kernel, as root:

* an init that someone moved out of its cgroup between ``create`` and ``start``: still the
  container's while a namespace of its own ties it and its recorded cgroup holds nothing
  else's; a cgroup named after the container that holds a host process is still refused;
* a container that joined a PID namespace by path: its init is not pid 1 there; ``state``
  checks that it is in that namespace, and ``kill --all``/``delete --force`` signal the
  container's cgroup, never the namespace's other processes."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from cgroups_support import end_cgroup_members
from minins import cgroups, state
from test_runc_cli import cli, env, make_bundle, ok, rootfs, wait_exit  # noqa: F401
from test_statecheck import COMMANDS, _refused, target  # noqa: F401

UNSHARE = shutil.which("unshare")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _procs(path):
    with open(os.path.join(path, "cgroup.procs")) as f:
        return [int(x) for x in f.read().split()]


def _nspid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return None


@pytest.fixture
def base():
    """A test-owned cgroup name below our own cgroup in every hierarchy: (relative name,
    {key: directory}); whatever is left below it is removed bottom-up afterwards (ask for
    it before ``env``: the containers are deleted first)."""
    hier = cgroups.discover()
    name = "moved-" + os.urandom(4).hex()
    dirs = {}
    for key in list(hier.v1) + (["unified"] if hier.unified else []):
        try:
            dirs[key] = os.path.join(hier.own_dir(key), name)
        except Exception:  # noqa: B902 - a hierarchy we cannot place a cgroup in
            pass
    yield name, dirs
    for top in set(dirs.values()):
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            end_cgroup_members(dirpath)  # a failed test or refused delete left an init
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass


# --- the init moved out of its cgroup -----------------------------------------------------

def _bundle_in(where, rootfs, cgroups_path):
    """A bundle running ``sleep 60`` in the cgroup ``cgroups_path`` (relative: below ours)."""
    bundle = make_bundle(where, rootfs, ["sleep", "60"])
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["linux"]["cgroupsPath"] = cgroups_path
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def test_an_init_moved_out_of_its_cgroup_starts_and_is_deleted(base, env, rootfs, tmp_path):
    root, log, g = env
    name, _dirs = base
    bundle = _bundle_in(str(tmp_path / "b"), rootfs, name + "/mv")
    pid_file = str(tmp_path / "p")
    ok(cli(*g, "create", "-b", bundle, "--pid-file", pid_file, "mv"))
    with open(pid_file) as f:
        pid = int(f.read())
    paths = json.loads(ok(cli(*g, "state", "mv")).stdout)["cgroup_paths"]
    assert paths
    moved = []
    for key, path in paths.items():  # what delete_only_create_resources does, everywhere
        if key == "cpuset":
            continue  # a new cpuset takes no task until its cpus and mems are set
        moved.append(key)
        elsewhere = os.path.join(os.path.dirname(path), "elsewhere")
        os.makedirs(elsewhere, exist_ok=True)
        _write(os.path.join(elsewhere, "cgroup.procs"), str(pid))
        assert pid not in _procs(path) and pid in _procs(elsewhere)
    ok(cli(*g, "start", "mv"))
    assert json.loads(ok(cli(*g, "state", "mv")).stdout)["status"] == "running"
    ok(cli(*g, "kill", "mv", "KILL"))
    assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
    ok(cli(*g, "delete", "mv"))
    assert moved
    for path in paths.values():
        assert not os.path.exists(path), "the container's cgroup %s was left" % path
    for key in moved:
        assert os.path.isdir(os.path.join(os.path.dirname(paths[key]), "elsewhere")), \
            "the cgroup the init was moved to is not the container's to remove"


def test_delete_force_of_a_created_container_whose_init_moved(base, env, rootfs, tmp_path):
    root, log, g = env
    name, _dirs = base
    bundle = _bundle_in(str(tmp_path / "b"), rootfs, name + "/mf")
    ok(cli(*g, "create", "-b", bundle, "--pid-file", str(tmp_path / "p"), "mf"))
    with open(str(tmp_path / "p")) as f:
        pid = int(f.read())
    paths = json.loads(ok(cli(*g, "state", "mf")).stdout)["cgroup_paths"]
    key = "pids" if "pids" in paths else sorted(paths)[0]  # one hierarchy, as the suite
    elsewhere = os.path.join(os.path.dirname(paths[key]), "elsewhere")
    os.makedirs(elsewhere, exist_ok=True)
    _write(os.path.join(elsewhere, "cgroup.procs"), str(pid))
    assert json.loads(ok(cli(*g, "state", "mf")).stdout)["status"] == "created"
    ok(cli(*g, "delete", "--force", "mf"))
    assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
    assert not any(os.path.exists(p) for p in paths.values())
    assert not os.path.exists(os.path.join(root, "mf"))


def _ready_sleep(argv):
    """``argv`` ending in a shell that says it runs (one line on a pipe, a kernel event:
    whatever ``argv`` set up before it is done) and then becomes ``sleep 600``; the Popen,
    once that line came."""
    proc = subprocess.Popen(argv + ["sh", "-c", "echo; exec sleep 600 >/dev/null"],
                            stdout=subprocess.PIPE)
    try:
        said = proc.stdout.readline()
    finally:
        proc.stdout.close()
    if not said:
        proc.wait()
        pytest.fail("%s did not start: exit %s" % (" ".join(argv), proc.returncode))
    return proc


def _unshared_sleep(uts=True):
    """A host-made process in a UTS namespace of its own (a namespace that ties it, as a
    container's init is tied), once it is in it."""
    if UNSHARE is None:
        pytest.skip("unshare(1) is not installed")
    proc = _ready_sleep([UNSHARE, "--uts"] if uts else [])
    assert not uts or os.stat("/proc/%d/ns/uts" % proc.pid).st_ino != \
        os.stat("/proc/self/ns/uts").st_ino
    return proc


def _uts_state(target, proc, paths):
    return target.write_state(
        init_pid=proc.pid, init_start_time=state.proc_start_time(proc.pid),
        cgroup_paths=paths, config={"namespaces": [{"type": "NEWUTS"}], "cgroups": {}})


def test_a_moved_init_tied_by_its_namespace_with_an_empty_cgroup_is_acted_on(target):
    """The control of the refusal below: the init (in a UTS namespace of its own) is not in
    the empty cgroup named after the container; state and kill go on."""
    init = _unshared_sleep()
    try:
        _uts_state(target, init, target.cgroup(target.id))
        proc = cli("--root", target.root, "state", target.id)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["status"] == "running"
        assert cli("--root", target.root, "kill", target.id, "KILL").returncode == 0
        assert init.wait(timeout=10) == -9
    finally:
        if init.poll() is None:
            init.kill()
        init.wait()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_moved_init_with_a_host_process_in_its_cgroup_is_refused(target, command):
    """A forged state: the cgroup named after the container holds a host process (the
    fixture's sleep, in our namespaces); the init, tied by a UTS namespace of its own, is
    elsewhere. Signalling, freezing or removing that cgroup would hit the host process."""
    init = _unshared_sleep()
    try:
        paths = target.cgroup(target.id)
        target.enter(paths)
        _uts_state(target, init, paths)
        _refused(target, command, "init_pid")
        assert init.poll() is None, "the init was signalled"
    finally:
        if init.poll() is None:
            init.kill()
        init.wait()


# --- a PID namespace joined by path -------------------------------------------------------

def _pid_namespace_holder():
    """``(unshare process, pid of its child)``: the child is pid 1 of a new PID namespace
    (``unshare --pid --fork``, then a shell that becomes sleep)."""
    if UNSHARE is None:
        pytest.skip("unshare(1) is not installed")
    proc = _ready_sleep([UNSHARE, "--pid", "--fork", "--kill-child"])
    with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
        kids = [int(x) for x in f.read().split()]
    assert len(kids) == 1, kids  # the child that wrote the line is forked, and alive
    return proc, kids[0]


def _joined_bundle(where, rootfs, holder, args):
    bundle = make_bundle(where, rootfs, args)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["linux"]["namespaces"] = [
        ns for ns in spec["linux"]["namespaces"] if ns["type"] != "pid"
    ] + [{"type": "pid", "path": "/proc/%d/ns/pid" % holder}]
    with open(path, "w") as f:
        json.dump(spec, f)
    return bundle


def test_a_container_in_a_joined_pid_namespace(env, rootfs, tmp_path):
    root, log, g = env
    unshare, holder = _pid_namespace_holder()
    try:
        bundle = _joined_bundle(str(tmp_path / "b"), rootfs, holder,
                                ["sh", "-c", "sleep 60 & sleep 60"])
        pid_file = str(tmp_path / "p")
        ok(cli(*g, "create", "-b", bundle, "--pid-file", pid_file, "jn"))
        with open(pid_file) as f:
            pid = int(f.read())
        assert os.stat("/proc/%d/ns/pid" % pid).st_ino == \
            os.stat("/proc/%d/ns/pid" % holder).st_ino
        assert _nspid(pid)[-1] != 1  # the namespace's pid 1 is the holder
        assert json.loads(ok(cli(*g, "state", "jn")).stdout)["status"] == "created"
        ok(cli(*g, "start", "jn"))
        assert json.loads(ok(cli(*g, "state", "jn")).stdout)["status"] == "running"
        ok(cli(*g, "kill", "--all", "jn", "KILL"))
        assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
        ok(cli(*g, "delete", "jn"))
        assert os.path.exists("/proc/%d" % holder) and unshare.poll() is None, \
            "a process of the joined namespace that is not the container's was killed"
    finally:
        unshare.kill()
        unshare.wait()


def test_delete_force_in_a_joined_pid_namespace_spares_the_namespace(env, rootfs, tmp_path):
    root, log, g = env
    unshare, holder = _pid_namespace_holder()
    try:
        # the init's death ends nothing in a joined namespace: its child must be killed too
        bundle = _joined_bundle(str(tmp_path / "b"), rootfs, holder,
                                ["sh", "-c", "sleep 61 & sleep 60"])
        ok(cli(*g, "run", "-d", "-b", bundle, "--pid-file", str(tmp_path / "p"), "jd"))
        with open(str(tmp_path / "p")) as f:
            pid = int(f.read())
        paths = json.loads(ok(cli(*g, "state", "jd")).stdout)["cgroup_paths"]
        ok(cli(*g, "delete", "--force", "jd"))
        assert os.WTERMSIG(wait_exit(pid)) == signal.SIGKILL
        assert not any(os.path.exists(p) for p in paths.values())
        assert not os.path.exists(os.path.join(root, "jd"))
        assert unshare.poll() is None and os.path.exists("/proc/%d" % holder)
    finally:
        unshare.kill()
        unshare.wait()


def test_a_forged_joined_pid_namespace_is_checked(target):
    """A state saying the container joined the PID namespace at a path its init is not in
    is refused (the init, tied by a cgroup, lives in ours)."""
    if UNSHARE is None:
        pytest.skip("unshare(1) is not installed")
    unshare, holder = _pid_namespace_holder()
    try:
        paths = target.cgroup(target.id)
        target.enter(paths)
        target.write_state(pid_namespace=True, cgroup_paths=paths, config={
            "namespaces": [{"type": "NEWPID", "path": "/proc/%d/ns/pid" % holder}],
            "cgroups": {}})
        _refused(target, ["kill", "{id}", "KILL"], "pid_namespace")
        _refused(target, ["delete", "--force", "{id}"], "pid_namespace")
    finally:
        unshare.kill()
        unshare.wait()
