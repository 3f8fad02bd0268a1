"""OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each kind runs where the spec
says with the container's state on stdin, its args and env, its timeout; a failing hook
fails create and start, while poststart and poststop failures are warnings. The runner
itself (minins.hooks.run_one) is tested without a container."""
import json
import os
import shutil

import pytest

from minins import hooks
from minins.errors import ContainerError

from test_runc_cli import cli, env, make_bundle, ok, rootfs, wait_exit  # noqa: F401 - fixture

SH = shutil.which("sh")


def hook(path, args=None, env=None, timeout=None):
    h = {"path": path}
    if args is not None:
        h["args"] = args
    if env is not None:
        h["env"] = env
    if timeout is not None:
        h["timeout"] = timeout
    return h


# --- the runner -----------------------------------------------------------------------------

def test_a_hook_gets_the_state_on_stdin_its_args_and_only_its_env(tmp_path):
    out = str(tmp_path / "out")
    state = {"ociVersion": "1.0.2", "id": "x", "status": "creating", "pid": 42,
             "bundle": "/b", "annotations": {}}
    hooks.run_all({"prestart": [hook(SH, ["sh", "-c", 'cat > %s; echo "$0 $1 $X $HOME" > %s.2'
                                          % (out, out), "zero", "one"], ["X=1"])]},
                  "prestart", state)
    with open(out) as f:
        assert json.load(f) == state
    with open(out + ".2") as f:
        assert f.read() == "zero one 1 \n"  # argv[0] as given; nothing but env (no HOME)


def test_a_failing_hook_names_its_kind_index_status_and_output(tmp_path):
    rows = [hook(SH, ["sh", "-c", "true"]),
            hook(SH, ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])]
    with pytest.raises(ContainerError) as e:
        hooks.run_all({"createRuntime": rows}, "createRuntime", {})
    text = str(e.value)
    assert "createRuntime hook #1" in text and "exit status 3" in text
    assert "to-out" in text and "to-err" in text


def test_a_hook_that_outlives_its_timeout_is_killed():
    import time

    t = time.monotonic()
    with pytest.raises(ContainerError, match="timed out after 1 s"):
        hooks.run_all({"poststop": [hook(SH, ["sh", "-c", "sleep 30"], timeout=1)]},
                      "poststop", {})
    assert time.monotonic() - t < 10


def test_a_hook_that_cannot_be_executed_is_an_error(tmp_path):
    with pytest.raises(ContainerError, match="prestart hook #0: .*nope"):
        hooks.run_all({"prestart": [hook(str(tmp_path / "nope"))]}, "prestart", {})


def test_a_hook_that_never_reads_stdin_does_not_block_us():
    big = {"annotations": {"k%d" % i: "v" * 100 for i in range(2000)}}  # > a pipe's buffer
    hooks.run_all({"prestart": [hook(SH, ["sh", "-c", "exit 0"])]}, "prestart", big)


def test_hooks_read_back_from_a_state_file_are_checked():
    from minins.errors import StateError

    good = hooks.to_json({"poststop": [hooks_row()]})
    assert hooks.check(good) == good
    for bad in ({"poststop": "x"}, {"nokind": []}, {"poststop": [{"path": "rel"}]},
                {"poststop": [{"path": "/x", "args": [1]}]},
                {"poststop": [{"path": "/x", "timeout": 0}]}):
        with pytest.raises(StateError):
            hooks.check(bad)


def hooks_row():
    from minins.oci.bundle import Hook

    return Hook(path="/bin/true", args=("true",), env=(), timeout=5)


# --- where each kind runs, through the command line -----------------------------------------

@pytest.fixture
def root(env):
    """The state root of test_runc_cli's ``env`` (root only, a subreaper, every container
    left deleted with --force afterwards)."""
    return env[0]


def _recorder(kind, where):
    """A hook writing its stdin, its pid namespace and whether it sees the container's root
    to ``where``/``kind``.json (``where`` as the hook sees it)."""
    script = ('cat > %s/%s.json; readlink /proc/self/ns/pid > %s/%s.ns; '
              'test -e /proc/self/root/marker-of-the-rootfs && echo in >> %s/%s.ns; true'
              % ((where, kind) * 3))
    return hook("/bin/sh", ["sh", "-c", script])


def test_every_kind_runs_where_the_spec_says_with_its_state(root, rootfs, tmp_path):
    out = str(tmp_path / "out")
    os.makedirs(out)
    inside = os.path.join(rootfs, "tmp", "hooks-%d" % os.getpid())
    os.makedirs(inside)
    marker = os.path.join(rootfs, "marker-of-the-rootfs")
    open(marker, "w").close()
    try:
        spec_hooks = {k: [_recorder(k, out)] for k in ("prestart", "createRuntime",
                                                      "createContainer", "poststart",
                                                      "poststop")}
        # startContainer's path resolves in the container, after pivot_root
        spec_hooks["startContainer"] = [_recorder("startContainer",
                                                  "/tmp/hooks-%d" % os.getpid())]
        bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                             hooks=spec_hooks, annotations={"a": "1"},
                             root={"path": rootfs, "readonly": False})
        g = ["--root", root]
        ok(cli(*g, "create", "-b", bundle, "--pid-file", str(tmp_path / "p"), "h1"))
        with open(str(tmp_path / "p")) as f:
            pid = int(f.read())
        created = sorted(os.listdir(out))
        assert created == ["createContainer.json", "createContainer.ns", "createRuntime.json",
                           "createRuntime.ns", "prestart.json", "prestart.ns"]
        ok(cli(*g, "start", "h1"))
        ok(cli(*g, "kill", "h1", "KILL"))
        wait_exit(pid)
        ok(cli(*g, "delete", "h1"))

        def read(kind, where=out):
            with open(os.path.join(where, kind + ".json")) as f:
                state = json.load(f)
            with open(os.path.join(where, kind + ".ns")) as f:
                ns = f.read().split()
            return state, ns

        host_pidns = os.readlink("/proc/self/ns/pid")
        for kind, status in (("prestart", "created"), ("createRuntime", "creating"),
                             ("poststart", "running"), ("poststop", "stopped")):
            state, ns = read(kind)
            assert state["status"] == status and state["id"] == "h1", kind
            assert state["bundle"] == bundle and state["annotations"] == {"a": "1"}
            assert ns == [host_pidns], kind  # the runtime's namespace, not the container's
            if status in ("creating", "running"):
                assert state["pid"] == pid, kind
        for kind, where, status in (("createContainer", out, "creating"),
                                    ("startContainer", inside, "created")):
            state, ns = read(kind, where)
            assert state["status"] == status and state["id"] == "h1", kind
            assert ns[0] != host_pidns, kind  # in the container's PID namespace
        # before pivot_root the container's / is not yet its root; after, it is
        assert read("createContainer")[1][1:] == []
        assert read("startContainer", inside)[1][1:] == ["in"]
    finally:
        shutil.rmtree(inside, ignore_errors=True)
        os.unlink(marker)


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_a_failing_create_hook_fails_create_and_leaves_nothing(root, rootfs, tmp_path, kind):
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                         hooks={kind: [hook("/bin/sh", ["sh", "-c", "echo no >&2; exit 4"])]})
    log = str(tmp_path / "log")
    proc = cli("--root", root, "--log", log, "--log-format", "json", "create", "-b", bundle,
               "h2")
    assert proc.returncode == 125
    assert "%s hook #0" % kind in proc.stderr and "exit status 4" in proc.stderr
    with open(log) as f:
        assert "%s hook #0" % kind in json.loads(f.read().splitlines()[-1])["msg"]
    assert ok(cli("--root", root, "list", "-q")).stdout == ""


def test_a_failing_start_container_hook_fails_start(root, rootfs, tmp_path):
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                         hooks={"startContainer": [hook("/bin/sh", ["sh", "-c", "exit 5"])]})
    ok(cli("--root", root, "create", "-b", bundle, "h3"))
    proc = cli("--root", root, "start", "h3")
    assert proc.returncode == 125 and "startContainer hook #0" in proc.stderr
    assert json.loads(ok(cli("--root", root, "state", "h3")).stdout)["status"] == "stopped"
    ok(cli("--root", root, "delete", "h3"))


def test_poststart_and_poststop_failures_are_warnings(root, rootfs, tmp_path):
    fail = [hook("/bin/sh", ["sh", "-c", "exit 6"])]
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"],
                         hooks={"poststart": fail, "poststop": fail})
    log = str(tmp_path / "log")
    g = ["--root", root, "--log", log, "--log-format", "json"]
    started = ok(cli(*g, "run", "-d", "-b", bundle, "--pid-file", str(tmp_path / "p"), "h4"))
    assert "warning" in started.stderr and "poststart hook #0" in started.stderr
    assert json.loads(ok(cli(*g, "state", "h4")).stdout)["status"] == "running"
    deleted = ok(cli(*g, "delete", "--force", "h4"))
    assert "poststop hook #0" in deleted.stderr
    with open(log) as f:
        levels = [json.loads(line)["level"] for line in f.read().splitlines()]
    assert levels == ["warning", "warning"]


def test_a_foreground_run_runs_poststart_and_poststop(root, rootfs, tmp_path):
    out = str(tmp_path / "out")
    os.makedirs(out)
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["true"],
                         hooks={"poststart": [_recorder("poststart", out)],
                                "poststop": [_recorder("poststop", out)]})
    ok(cli("--root", root, "run", "-b", bundle, "h5"))
    with open(os.path.join(out, "poststop.json")) as f:
        assert json.load(f)["status"] == "stopped"
    with open(os.path.join(out, "poststart.json")) as f:
        assert json.load(f)["status"] == "running"
