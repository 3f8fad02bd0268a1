"""Forged state files (issue 10 section 3): every command that reads state refuses them with
exit 125 and one line naming the field, and nothing is signalled, frozen, joined or removed.

The victims are test-owned: a ``sleep`` this test starts on the host (with its real start
time in the forged state), cgroups made below this process's own cgroup, and directory trees
in a temporary directory. Without the checks each forgery below is acted on: the sleep is
killed, frozen or joined, or the trees are removed (``test_a_valid_state_is_acted_on``
shows the same set-up obeyed once the state is honest).
"""
import errno
import json
import os
import stat
import subprocess
import sys

import pytest

from minins import cgroups, state, statecheck
from minins.errors import StateError, SyscallError

from kernel import needs_root

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = [
    ["state", "{id}"],
    ["kill", "{id}", "KILL"],
    ["kill", "--all", "{id}", "KILL"],
    ["exec", "{id}", "/bin/sh", "-c", "touch {mark}"],
    ["pause", "{id}"],
    ["resume", "{id}"],
    ["ps", "{id}"],
    ["stats", "{id}"],
    ["oom", "{id}"],
    ["delete", "--force", "{id}"],
    ["stop", "-t", "1", "{id}"],
    ["start", "{id}"],
    ["list"],
]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def _keys(hier):
    """The hierarchies the test's cgroups go in: freezer and pids on v1, else unified."""
    if hier.v1:
        keys = [k for k in ("freezer", "pids") if k in hier.v1]
        return keys or [sorted(hier.v1)[0]]
    return ["unified"] if hier.unified else []


class Target:
    """A host process (``sleep``), test-owned cgroups, a state root; all removed at the
    end."""

    def __init__(self, tmp_path):
        self.hier = cgroups.discover()
        self.keys = _keys(self.hier)
        if not self.keys:
            pytest.skip("no cgroup hierarchy is mounted")
        self.tmp = tmp_path
        self.root = str(tmp_path / "state")
        os.mkdir(self.root, 0o700)
        self.id = "sc-" + os.urandom(4).hex()
        self.mark = str(tmp_path / "joined")
        self.sleep = subprocess.Popen(["sleep", "600"])
        self.start_time = state.proc_start_time(self.sleep.pid)
        self.bases = {}
        self.made = []
        for key in self.keys:
            base = os.path.join(self.hier.own_dir(key), "statecheck-" + os.urandom(4).hex())
            self.mkdir(base)
            self.bases[key] = base

    def mkdir(self, path):
        os.mkdir(path)
        self.made.append(path)
        return path

    def cgroup(self, *parts):
        """``{key: base/parts...}``, made in every hierarchy."""
        out = {}
        for key, base in self.bases.items():
            path = base
            for part in parts:
                path = os.path.join(path, part)
                if not os.path.isdir(path):
                    self.mkdir(path)
            out[key] = path
        return out

    def enter(self, paths):
        for path in paths.values():
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(self.sleep.pid))

    def write_state(self, **fields):
        data_path = os.path.join(self.root, self.id)
        os.makedirs(data_path, 0o700, exist_ok=True)
        st = {"id": self.id, "init_pid": self.sleep.pid, "init_start_time": self.start_time,
              "pid_namespace": False, "user_namespace": False,
              "config": {"namespaces": [], "cgroups": {}}}
        st.update(fields)
        state.save(data_path, st)
        return data_path

    def argv(self, command):
        return [a.format(id=self.id, mark=self.mark) for a in command]

    def untouched(self):
        """Nothing was signalled, frozen, joined or removed."""
        assert self.sleep.poll() is None, "the host process was signalled"
        for path in self.made:
            assert os.path.isdir(path), "%s was removed" % path
            frozen = os.path.join(path, "freezer.state")
            if os.path.exists(frozen):
                with open(frozen) as f:
                    assert f.read().strip() == "THAWED", "%s was frozen" % path
        assert not os.path.exists(self.mark), "a command ran as if joined"
        with open("/proc/%d/status" % self.sleep.pid) as f:
            assert "\nState:\tS" in f.read()

    def close(self):
        for path in self.made:  # a frozen v1 task cannot die: thaw first (if it went wrong)
            try:
                fd = os.open(os.path.join(path, "freezer.state"), os.O_WRONLY)  # no O_CREAT
            except OSError:
                continue
            try:
                os.write(fd, b"THAWED")
            finally:
                os.close(fd)
        if self.sleep.poll() is None:
            self.sleep.kill()
        self.sleep.wait()
        for path in reversed(self.made):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass


@pytest.fixture
def target(tmp_path):
    t = Target(tmp_path)
    try:
        yield t
    finally:
        t.close()


def _refused(t, command, field):
    proc = cli("--root", t.root, *t.argv(command))
    assert proc.returncode == 125, (command, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("minins: error: "), \
        proc.stderr
    assert field in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    t.untouched()


# --- forged content ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_host_pid_in_the_callers_namespaces_is_refused(target, command):
    # The state claims a PID namespace of its own; the pid (with its real start time) lives
    # in ours.
    target.write_state(pid_namespace=True)
    _refused(target, command, "pid_namespace")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_host_pid_outside_the_recorded_cgroups_is_refused(target, command):
    # A real, empty cgroup named after the container; the host process is not in it.
    target.write_state(cgroup_paths=target.cgroup(target.id))
    _refused(target, command, "init_pid")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_host_pid_tied_to_nothing_is_refused(target, command):
    target.write_state()
    _refused(target, command, "init_pid")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_cgroup_path_climbing_out_with_dotdot_is_refused(target, command):
    # The process really is in the container's cgroup; the state names <that>/../.. , a
    # test-owned tree with other empty cgroups in it (a, b/c) that delete would remove.
    leaf = target.cgroup("ctr", target.id)
    target.cgroup("a")
    target.cgroup("b", "c")
    target.enter(leaf)
    forged = {k: p + "/../.." for k, p in leaf.items()}
    target.write_state(cgroup_paths=forged)
    _refused(target, command, "cgroup_paths.")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_cgroup_path_outside_cgroupfs_is_refused(target, command):
    # A directory tree of empty directories, named like the container, not on cgroupfs.
    tree = str(target.tmp / target.id)
    for sub in ("", "a", "b", "b/c"):
        target.mkdir(os.path.join(tree, sub) if sub else tree)
    target.enter(target.cgroup(target.id))
    target.write_state(cgroup_paths={k: tree for k in target.keys})
    _refused(target, command, "cgroup_paths.")


# --- forged ownership -------------------------------------------------------------------------

def _honest(target):
    paths = target.cgroup(target.id)
    target.enter(paths)
    return target.write_state(cgroup_paths=paths)


def test_a_valid_state_is_acted_on(target):
    """The control: the same set-up, honest and owned, is obeyed (so the refusals above
    and below come from the checks)."""
    _honest(target)
    proc = cli("--root", target.root, "state", target.id)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "running"
    assert cli("--root", target.root, "kill", target.id, "KILL").returncode == 0
    assert target.sleep.wait(timeout=10) == -9


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("mode", [0o770, 0o702])
def test_a_data_path_others_can_write_is_refused(target, command, mode):
    data_path = _honest(target)
    os.chmod(data_path, mode)
    _refused(target, command, "data_path")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_state_file_of_another_user_is_refused(target, command):
    data_path = _honest(target)
    os.chown(os.path.join(data_path, state.STATE_FILE), 54321, 54321)
    _refused(target, command, "state.json")


def test_a_group_writable_state_file_and_a_symlinked_one_are_refused(target):
    data_path = _honest(target)
    path = os.path.join(data_path, state.STATE_FILE)
    os.chmod(path, 0o620)
    _refused(target, ["kill", "{id}", "KILL"], "state.json")
    os.chmod(path, 0o600)
    os.rename(path, path + ".real")
    os.symlink(path + ".real", path)
    _refused(target, ["kill", "{id}", "KILL"], "state.json")


def test_a_data_path_of_another_user_is_refused(target):
    data_path = _honest(target)
    os.chown(data_path, 54321, 54321)
    _refused(target, ["kill", "{id}", "KILL"], "data_path")


# --- the checks one by one (library) ----------------------------------------------------------

def test_verify_names_each_field(target, tmp_path):
    data_path = _honest(target)
    good = state.load(data_path)
    statecheck.verify(good, data_path)  # the honest state passes
    key = target.keys[0]
    own = target.hier.own_dir(key)
    mount = target.hier.mount(key)
    cases = [
        ({key: "/etc"}, "not inside a mounted"),
        ({key: "relative/" + target.id}, "not an absolute path"),
        ({key: good["cgroup_paths"][key] + "/"}, "not a normalised path"),
        ({key: mount}, "root of a cgroup hierarchy"),
        ({key: os.path.join(target.bases[key], "other")}, "not this container's cgroup"),
    ]
    if own != mount:
        cases.append(({key: own}, "caller's own cgroup"))
    link = str(tmp_path / "link")
    os.symlink(target.bases[key], link)
    # a symlink into the hierarchy is not on its mount (cgroupfs itself has no symlinks)
    cases.append(({key: os.path.join(link, target.id)}, "not inside a mounted"))
    for paths, words in cases:
        forged = dict(good, cgroup_paths=paths)
        with pytest.raises(StateError, match="cgroup_paths.%s: .*%s" % (key, words)):
            statecheck.verify(forged, data_path)


def test_a_cgroup_named_in_the_config_is_the_containers_own(target):
    paths = target.cgroup("named")
    target.enter(paths)
    data_path = target.write_state(cgroup_paths=paths,
                                   config={"namespaces": [], "cgroups": {"name": "named"}})
    statecheck.verify(state.load(data_path), data_path)


def test_a_dead_init_skips_the_process_checks_but_not_the_paths(target):
    data_path = target.write_state(pid_namespace=True, init_start_time="1")
    statecheck.verify(state.load(data_path), data_path)  # stale: nothing will be signalled
    st = dict(state.load(data_path), cgroup_paths={target.keys[0]: "/etc"})
    with pytest.raises(StateError, match="cgroup_paths"):
        statecheck.verify(st, data_path)



def _scope_state(target, unit=None, driver=None, prefix="minins", **fields):
    """A state as the systemd driver writes it: the cgroups are the scope
    ``<prefix>-<id>.scope`` (made below this test's cgroup), the driver and unit recorded."""
    scope = "%s-%s.scope" % (prefix, target.id)
    paths = target.cgroup(scope)
    target.enter(paths)
    return target.write_state(cgroup_paths=paths, cgroup_unit=unit or scope,
                              cgroup_driver=driver or ("systemd-v1" if target.hier.v1
                                                       else "systemd-v2"), **fields)


def test_a_systemd_scope_is_the_containers_cgroup(target):
    # The systemd driver's cgroup is named after the unit, not the container: without
    # this, every command after `run` refused the state of a systemd container.
    data_path = _scope_state(target)
    statecheck.verify(state.load(data_path), data_path)


def test_a_systemd_scope_with_a_prefix_of_its_own(target):
    data_path = _scope_state(target, prefix="mine", config={
        "namespaces": [], "cgroups": {"driver": "systemd", "scope_prefix": "mine"}})
    statecheck.verify(state.load(data_path), data_path)


@pytest.mark.parametrize("unit", ["ssh.service", "minins-other.scope", "minins-%s.service",
                                  ""])
def test_a_forged_systemd_unit_is_refused(target, unit):
    # delete would StopUnit whatever cgroup_unit names: another unit of the host.
    data_path = _scope_state(target)
    st = dict(state.load(data_path), cgroup_unit=unit.replace("%s", target.id))
    with pytest.raises(StateError, match="cgroup_unit"):
        statecheck.verify(st, data_path)


def test_a_forged_systemd_unit_is_refused_by_every_command(target):
    _scope_state(target, unit="ssh.service")
    for command in (["delete", "--force", "{id}"], ["kill", "--all", "{id}", "KILL"],
                    ["state", "{id}"]):
        _refused(target, command, "cgroup_unit")


def test_a_unit_is_refused_for_the_cgroupfs_driver_and_the_path_for_systemd(target):
    paths = target.cgroup(target.id)
    target.enter(paths)
    data_path = target.write_state(cgroup_paths=paths, cgroup_driver="cgroupfs-v2",
                                   cgroup_unit="minins-%s.scope" % target.id)
    with pytest.raises(StateError, match="cgroup_unit"):
        statecheck.verify(state.load(data_path), data_path)
    # the systemd driver's cgroup is the scope: a path named after the id is not it
    st = dict(state.load(data_path), cgroup_driver="systemd-v2")
    with pytest.raises(StateError, match="cgroup_paths.*minins-%s.scope" % target.id):
        statecheck.verify(st, data_path)

# --- removal --------------------------------------------------------------------------------

def test_safe_removal_removes_a_cgroup_tree_bottom_up(target):
    key = target.keys[0]
    top = target.cgroup("gone")[key]
    target.cgroup("gone", "x", "y")
    assert statecheck.safe_remove_cgroup(top) is None
    assert not os.path.exists(top)


def test_safe_removal_refuses_what_is_not_a_cgroup(tmp_path):
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    with pytest.raises(StateError, match="not a cgroup directory"):
        statecheck.safe_remove_cgroup(str(tree))
    assert (tree / "a" / "b").is_dir()
    os.symlink(str(tree), str(tmp_path / "link"))
    with pytest.raises(StateError, match="not a directory"):
        statecheck.safe_remove_cgroup(str(tmp_path / "link"))
    assert (tree / "a" / "b").is_dir()


def test_safe_removal_does_not_cross_into_another_filesystem(target):
    """A tmpfs mounted inside a (test-owned) cgroup, in a private mount namespace: neither
    the mount point nor anything in the tmpfs is removed."""
    key = target.keys[0]
    top = target.cgroup("mnt")[key]
    inner = target.cgroup("mnt", "inner")[key]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child in a mount namespace of its own
        try:
            os.close(r)
            from minins import libc

            libc.unshare(0x00020000)  # CLONE_NEWNS
            libc.mount("none", "/", None, 0x4000 | 0x40000)  # MS_REC | MS_PRIVATE
            libc.mount("tmpfs", inner, "tmpfs", 0)
            os.mkdir(os.path.join(inner, "keep"))
            try:
                statecheck.safe_remove_cgroup(top, timeout=0.1)
                os.write(w, b"removed")
            except StateError as e:
                os.write(w, str(e).encode())
            os.write(w, b"|%d" % os.path.isdir(os.path.join(inner, "keep")))
            os._exit(0)
        except BaseException as e:
            os.write(w, b"error %r" % e)
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert status == 0, out
    assert "another filesystem is mounted there" in out and out.endswith("|1"), out
    assert os.path.isdir(inner) and stat.S_ISDIR(os.lstat(top).st_mode)


def test_a_symlink_anywhere_in_a_path_is_seen(tmp_path):
    from minins.cgroups.fs import fs_magic

    (tmp_path / "real" / "leaf").mkdir(parents=True)
    os.symlink(str(tmp_path / "real"), str(tmp_path / "link"))
    assert fs_magic(str(tmp_path / "real" / "leaf"), symlinks=False) is not None
    for path in (tmp_path / "link" / "leaf", tmp_path / "link" / "missing", tmp_path / "link"):
        with pytest.raises(SyscallError) as exc:
            fs_magic(str(path), symlinks=False)
        assert exc.value.errno == errno.ELOOP
    assert fs_magic(str(tmp_path / "real" / "missing"), symlinks=False) is None


def test_managers_rebuilt_from_saved_paths_remove_only_cgroups(tmp_path):
    from minins import cgroups as cg

    tree = tmp_path / "c1"
    (tree / "sub").mkdir(parents=True)
    with pytest.raises(StateError, match="not a cgroup directory"):
        cg.load_manager({"pids": str(tree)}).destroy(timeout=0.1)
    assert (tree / "sub").is_dir()


@pytest.mark.parametrize("odd", [{}, [], ["NEWPID"], {"NEWPID": 1}])
def test_a_namespace_type_that_is_not_a_string_is_refused_not_a_traceback(tmp_path, odd):
    """A state whose ``config.namespaces[i].type`` was a JSON object or array took `list`,
    `state`, `ps`, `kill` down with ``TypeError: unhashable type`` once its init lived (found
    by mutating a running container's state.json): such an entry names no namespace."""
    me = os.getpid()
    st = {"init_pid": me, "init_start_time": state.proc_start_time(me), "cgroup_paths": {},
          "config": {"namespaces": [{"type": "NEWNS"}, {"type": odd}]}}
    assert statecheck.own_namespaces(st) == [("NEWNS", "config.namespaces[0]")]
    st["config"]["namespaces"] = [{"type": odd}]
    with pytest.raises(StateError, match="init_pid: .*tied to no cgroup and no namespace"):
        statecheck.verify(st, str(tmp_path), owner=False)
