"""Bad input never gives a traceback (issue 11, sections 2 and 9): each case below is an input
users tripped over. Every one ends in one line ``minins: error: ...`` naming the field, the
argument or the file, with exit code 125, before anything is created."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import pytest

from minins import config
from minins.cgroups import values
from minins.errors import ConfigError

# kernel/cgroup/pids.c refuses PID_MAX_LIMIT + 1 and more (include/linux/threads.h)
PID_MAX_LIMIT = 4 * 1024 * 1024 if struct.calcsize("l") > 4 else 32768
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.geteuid() == 0


def cli(*args, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=REPO,
                          capture_output=True, text=True, **kw)


def one_line_error(proc, *words):
    """Exit 125 and exactly one line ``minins: error: ...`` holding ``words``."""
    assert proc.returncode == 125, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("minins: error: "), proc.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def work(tmp_path):
    return tmp_path


def default_doc(**changes):
    doc = config.default_config().to_json()
    doc.update(changes)
    return doc


def write(path, text):
    with open(str(path), "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return str(path)


# --- JSON: the standard library, every refusal one line ----------------------------------------

@pytest.mark.parametrize("text", ["{", "", "[", '{"hostname": "x",}', "{} {}", "NaN",
                                  '{"cgroups": {"memory": NaN}}', b'{"hostname": "\xff"}',
                                  "1" * 5000])
def test_a_config_that_is_not_json_is_one_line_naming_the_file(work, text):
    path = write(work / "c.json", text)
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert str(e.value).startswith(path + ": not valid JSON")
    one_line_error(cli("--root", str(work / "state"), "run", "--config", path, "--", "true"),
                   path, "not valid JSON")
    assert not os.path.exists(str(work / "state"))


def test_a_config_nested_100000_levels_deep_is_one_line(work):
    path = write(work / "deep.json", "[" * 100000 + "]" * 100000)
    one_line_error(cli("run", "--config", path, "--", "true"), path, "nested too deeply")
    path = write(work / "deep2.json", '{"a":' * 100000 + "1" + "}" * 100000)
    one_line_error(cli("run", "--config", path, "--", "true"), path, "nested too deeply")


def test_minins_has_no_json_of_its_own():
    assert not os.path.exists(os.path.join(REPO, "minins", "_json.py"))
    out = subprocess.run(["grep", "-rn", "_json import\\|import _json", "minins"], cwd=REPO,
                         capture_output=True, text=True).stdout
    assert out == ""


def _state_dir(work, cid, text):
    d = work / "state" / cid
    d.mkdir(parents=True)
    write(d / "state.json", text)
    return str(d)


GOOD_STATE = {"id": "c1", "init_pid": 2 ** 22 + 7, "init_start_time": "1",
              "cgroup_paths": {}, "network_state": {}, "config": {}}


@pytest.mark.parametrize("argv", [["state", "c1"], ["kill", "c1"], ["delete", "c1"],
                                  ["delete", "--force", "c1"], ["exec", "c1", "true"],
                                  ["pause", "c1"], ["ps", "c1"], ["stats", "c1"]])
def test_a_truncated_state_file_is_one_line_naming_it(work, argv):
    text = json.dumps(GOOD_STATE, indent=2)
    path = os.path.join(_state_dir(work, "c1", text[:len(text) // 2]), "state.json")
    one_line_error(cli("--root", str(work / "state"), *argv), path, "not valid JSON")
    assert os.path.exists(path)  # bad input removes nothing


def test_run_id_over_an_unreadable_state_does_not_advise_a_delete_that_fails(work):
    """The id of a container whose state.json cannot be read is taken, and `delete` refuses
    that file (bad input removes nothing): `run --id` used to advise `minins delete ID`
    anyway, the dead end issue 11 section 1 names. It says why and what to remove instead."""
    d = _state_dir(work, "c1", "{")
    proc = cli("--root", str(work / "state"), "run", "--id", "c1", "--", "true")
    line = one_line_error(proc, "--id", "c1 is taken", "not valid JSON", d)
    assert "minins delete" not in line
    one_line_error(cli("--root", str(work / "state"), "delete", "--force", "c1"), "not valid")
    assert os.listdir(d) == ["state.json"]


def test_a_data_path_that_is_no_container_is_not_called_one(work):
    """`--data-path DIR/..` (or any directory of other files) names no container: the message
    said `a container exists at DIR (... minins delete ID)`, a delete that cannot help."""
    (work / "state" / "x").mkdir(parents=True)
    (work / "state" / "notes.txt").write_text("mine")
    proc = cli("run", "--data-path", str(work / "state" / "x" / ".."), "--", "true")
    line = one_line_error(proc, "--data-path", str(work / "state"), "not a container")
    assert "minins delete" not in line
    assert sorted(os.listdir(str(work / "state"))) == ["notes.txt", "x"]


def test_list_reports_an_unreadable_state_file_and_goes_on(work):
    good = dict(GOOD_STATE, id="a-good")
    _state_dir(work, "a-good", json.dumps(good))
    bad = os.path.join(_state_dir(work, "b-bad", "{"), "state.json")
    _state_dir(work, "c-good", json.dumps(dict(GOOD_STATE, id="c-good")))
    proc = cli("--root", str(work / "state"), "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in json.loads(proc.stdout)] == ["a-good", "c-good"]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "b-bad" in lines[0] and bad in lines[0], proc.stderr
    table = cli("--root", str(work / "state"), "list")
    assert "a-good" in table.stdout and "c-good" in table.stdout and "b-bad" in table.stderr


# --- strings the kernel cannot take -----------------------------------------------------------

@pytest.mark.parametrize("field,doc", [
    ("hostname", default_doc(hostname="a\udcff")),
    ("environment[1]", default_doc(environment=["A=1", "B=\ud800"])),
    ("mount_config.mounts[0].destination", default_doc(mount_config={"mounts": [
        {"type": "tmpfs", "destination": "/x\udcff"}]})),
    ("cgroups.name", default_doc(cgroups={"name": "c\udcff"})),
    ("cgroups.parent", default_doc(cgroups={"parent": "p\udcff"})),
    ("user", default_doc(user="\udc80")),
    ("labels[0]", default_doc(labels=["k=\udcff"])),
])
def test_a_string_that_is_not_unicode_text_is_refused_by_its_field(work, field, doc):
    text = json.dumps(doc)  # "\udcff" in the file, as JSON allows
    with pytest.raises(ConfigError) as e:
        config.loads(text)
    assert e.value.field == field and "lone surrogate" in e.value.message
    path = write(work / "c.json", text)
    one_line_error(cli("run", "--config", path, "--", "true"), field + ": ")


# --- numbers: the kernel's real ranges, named by the field the user wrote ------------------

@pytest.mark.parametrize("cgroups,field", [
    ({"memory": 2 ** 64}, "cgroups.memory"),
    ({"memory": 2 ** 63}, "cgroups.memory"),  # not memory_swap, which the user never set
    ({"memory_reservation": 2 ** 63}, "cgroups.memory_reservation"),
    ({"memory": 1 << 30, "memory_swap": 2 ** 63}, "cgroups.memory_swap"),
    ({"memory": -2}, "cgroups.memory"),
    ({"cpu_shares": 1}, "cgroups.cpu_shares"),
    ({"cpu_shares": 262145}, "cgroups.cpu_shares"),
    ({"cpu_period": 999}, "cgroups.cpu_period"),
    ({"cpu_period": 1000001}, "cgroups.cpu_period"),
    ({"cpu_quota": 999}, "cgroups.cpu_quota"),
    ({"cpu_quota": 2 ** 44}, "cgroups.cpu_quota"),
    ({"cpu_quota": -2}, "cgroups.cpu_quota"),
    ({"pids_limit": PID_MAX_LIMIT + 1}, "cgroups.pids_limit"),
    ({"pids_limit": 2 ** 63}, "cgroups.pids_limit"),
    ({"blkio_weight": 1001}, "cgroups.blkio_weight"),
    ({"allowed_devices": [{"type": 99, "major_number": 4096, "minor_number": 0,
                           "cgroup_permissions": "r"}]},
     "cgroups.allowed_devices[0].major_number"),
])
def test_cgroup_numbers_outside_the_kernels_range_name_their_field(cgroups, field):
    with pytest.raises(ConfigError) as e:
        config.loads(json.dumps(default_doc(cgroups=cgroups)))
    assert e.value.field == field


@pytest.mark.parametrize("cgroups", [
    {"memory": 2 ** 63 - 1}, {"memory": -1}, {"memory": 4096, "memory_swap": -1},
    {"cpu_quota": 2 ** 44 - 1, "cpu_period": 1000000}, {"cpu_quota": -1},
    {"cpu_shares": 2}, {"cpu_shares": 262144}, {"pids_limit": PID_MAX_LIMIT},
    {"pids_limit": -1},
])
def test_the_ends_of_each_range_are_accepted(cgroups):
    config.loads(json.dumps(default_doc(cgroups=cgroups)))


def test_the_derived_swap_limit_never_passes_the_kernels_maximum():
    s = values.parse(config.Cgroup(memory=2 ** 63 - 1))
    writes = {w.files[0]: w for w in values.plan_v1(s)}
    assert int(writes["memory.memsw.limit_in_bytes"].value) == values.MEMORY_MAX
    assert writes["memory.memsw.limit_in_bytes"].field == "memory_swap"
    assert writes["memory.memsw.limit_in_bytes"].optional


@pytest.mark.parametrize("doc,field", [
    (default_doc(rlimits=[{"type": 7, "soft": 2 ** 64, "hard": 2 ** 64}]), "rlimits[0].soft"),
    (default_doc(rlimits=[{"type": 7, "soft": -1, "hard": 1}]), "rlimits[0].soft"),
    (default_doc(rlimits=[{"type": 16, "soft": 1, "hard": 1}]), "rlimits[0].type"),
    (default_doc(additional_groups=[2 ** 32 - 1]), "additional_groups[0]"),
    (default_doc(mount_config={"device_nodes": [
        {"type": 99, "path": "/dev/x", "major_number": 4096, "minor_number": 1}]}),
     "mount_config.device_nodes[0].major_number"),
    (default_doc(mount_config={"device_nodes": [
        {"type": 99, "path": "/dev/x", "major_number": 1, "minor_number": 2 ** 20}]}),
     "mount_config.device_nodes[0].minor_number"),
    (default_doc(networks=[{"type": "loopback"}, {"type": "veth", "bridge": "br0",
                                                  "veth_prefix": "v", "mtu": 65536}]),
     "networks[1].mtu"),
    (default_doc(networks=[{"type": "loopback"}, {"type": "veth", "bridge": "br0",
                                                  "veth_prefix": "v", "txqueuelen": 2 ** 32}]),
     "networks[1].txqueuelen"),
    (default_doc(namespaces=[{"type": "NEWUSER"}, {"type": "NEWNS"}],
                 uid_mappings=[{"container_id": 0, "host_id": 2 ** 32 - 1, "size": 1}],
                 gid_mappings=[{"container_id": 0, "host_id": 0, "size": 1}]),
     "uid_mappings[0].host_id"),
])
def test_other_numbers_outside_the_kernels_range_name_their_field(doc, field):
    with pytest.raises(ConfigError) as e:
        config.loads(json.dumps(doc))
    assert e.value.field == field


def test_rlimit_infinity_is_accepted():
    config.loads(json.dumps(default_doc(rlimits=[{"type": 7, "soft": 2 ** 64 - 1,
                                                  "hard": 2 ** 64 - 1}])))


@pytest.mark.skipif(not ROOT, reason="runs a container: needs root")
def test_a_memory_limit_of_2_63_is_blamed_on_memory_on_the_command_line(work):
    path = write(work / "c.json", json.dumps(default_doc(cgroups={"memory": 2 ** 63})))
    line = one_line_error(cli("run", "--config", path, "--", "true"), "cgroups.memory:")
    assert "memory_swap" not in line


# --- command-line arguments --------------------------------------------------------------------

@pytest.mark.skipif(not ROOT, reason="runs a container: needs root")
def test_a_data_path_that_names_a_file_is_one_line(work):
    path = write(work / "afile", "")
    # (--data-path names the state root too: its parent directory)
    one_line_error(cli("run", "--data-path", path, "--", "true"), "--data-path", path,
                   "not a directory")
    with open(path) as f:
        assert f.read() == ""


@pytest.mark.skipif(not ROOT, reason="runs a container: needs root")
def test_a_relative_data_path_is_taken_from_the_current_directory(work):
    proc = subprocess.run([sys.executable, "-m", "minins", "run", "--data-path", "relc",
                           "--", "true"], cwd=str(work),
                          env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert not os.path.exists(str(work / "relc"))  # made there, removed afterwards


def test_an_empty_id_is_refused_not_replaced_by_a_random_one(work):
    one_line_error(cli("--root", str(work / "state"), "run", "--id", "", "--", "true"),
                   "--id")
    assert not os.path.exists(str(work / "state"))



@pytest.mark.parametrize("root", [["--root", ""], ["--root="]])
@pytest.mark.parametrize("argv", [["list"], ["delete", "--force", "nosuch"], ["state", "nosuch"]])
def test_an_empty_root_is_refused_not_replaced_by_the_default(root, argv):
    # `minins --root "$UNSET" delete --force web` must not act on /run/minins's web
    one_line_error(cli(*(root + argv)), "--root")

def _python_for_nobody():
    for exe in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                exe, "-c", "import ctypes"], capture_output=True)
        if probe.returncode == 0:
            return exe
    pytest.skip("no Python interpreter here that an unprivileged user may run")


@pytest.mark.skipif(not ROOT or not shutil.which("setpriv"),
                    reason="needs root to become nobody (setpriv)")
def test_rootless_tty_with_a_uid_map_the_user_may_not_use_is_one_line():
    work = tempfile.mkdtemp(prefix="minins-rootless-")
    try:
        os.chmod(work, 0o777)
        doc = default_doc(tty=True, cgroups=None,
                          namespaces=[{"type": t} for t in ("NEWUSER", "NEWNS", "NEWUTS",
                                                            "NEWIPC", "NEWPID", "NEWNET")],
                          uid_mappings=[{"container_id": 0, "host_id": 0, "size": 1}],
                          gid_mappings=[{"container_id": 0, "host_id": 0, "size": 1}])
        path = write(os.path.join(work, "c.json"), json.dumps(doc))
        os.chmod(path, 0o644)
        env = dict(os.environ, PYTHONPATH=REPO, HOME=work, XDG_RUNTIME_DIR=work)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               _python_for_nobody(), "-m", "minins", "run", "--config", path,
                               "--", "true"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        one_line_error(proc, "EPERM")
        # (the seccomp compile cache, minins.seccomp.load, is the only thing that stays)
        assert set(os.listdir(os.path.join(work, "minins"))) <= {".seccomp-cache"} \
            if os.path.exists(os.path.join(work, "minins")) else True
    finally:
        shutil.rmtree(work, ignore_errors=True)
