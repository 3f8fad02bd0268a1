"""Differences from runc 1.1 found by trying its command line as a new user would (trial 13):
each test states what runc does on the same bundle."""
import io
import json
import os

import pytest

from minins import runc

from test_runc_cli import cli, env, make_bundle, ok, rootfs, wait_exit  # noqa: F401 (fixtures)


def test_update_takes_runc_s_own_cpu_share_spelling():
    """runc 1.1's update calls the option --cpu-share (update.go); --cpu-shares is the
    issue's spelling. Both mean cpu.shares."""
    for spelling in ("--cpu-share", "--cpu-shares"):
        values, pos = runc.parse([spelling, "300", "c1"], runc.UPDATE, "update")
        assert pos == ["c1"]
        assert runc.update_resources(values) == {"cpu": {"shares": 300}}


def test_update_with_a_resources_file_ignores_the_other_options():
    """runc update --help: "if data is to be read from a file or the standard input, all
    other options are ignored" (runc 1.1.5 on this host: -r - with {"pids":{"limit":42}} and
    --pids-limit 50 --memory 64m sets pids.max 42 and leaves the memory limit)."""
    values, _ = runc.parse(["-r", "-", "--pids-limit", "50", "--memory", "64m", "c1"],
                           runc.UPDATE, "update")
    res = runc.update_resources(values, stdin=io.StringIO('{"pids": {"limit": 42}}'))
    assert res == {"pids": {"limit": 42}}


def _memory_limit_file(paths):
    if "memory" in paths:
        return paths["memory"] + "/memory.limit_in_bytes"
    return (paths.get("unified") or paths[""]) + "/memory.max"


def test_events_stats_report_the_memory_limit(env, rootfs, tmp_path):  # noqa: F811
    """runc's events: data.memory.usage.limit is the cgroup's limit (memory.limit_in_bytes;
    on v2 memory.max), not 0."""
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["sleep", "60"])
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 30})
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    ok(cli(*g, "run", "-d", "-b", bundle, "t13ev"))
    try:
        paths = json.loads(ok(cli(*g, "state", "t13ev")).stdout)["cgroup_paths"]
        if not os.path.exists(_memory_limit_file(paths)):
            pytest.skip("no memory controller for the container")
        data = json.loads(ok(cli(*g, "events", "--stats", "t13ev")).stdout)["data"]
        assert data["memory"]["usage"]["limit"] == 64 << 20
        assert data["pids"]["limit"] == 30
    finally:
        ok(cli(*g, "delete", "-f", "t13ev"))


def test_ps_of_a_stopped_container_is_an_empty_list_as_runc_s(env, rootfs, tmp_path):  # noqa: F811,E501
    """runc ps of a container whose init has exited: the table's header alone, or `null`
    with -f json, exit 0 (containerd's shim asks for `ps --format json` of a task at any
    time)."""
    root, log, g = env
    bundle = make_bundle(str(tmp_path / "b"), rootfs, ["true"])
    pid_file = str(tmp_path / "pid")
    ok(cli(*g, "run", "-d", "-b", bundle, "--pid-file", pid_file, "t13ps"))
    with open(pid_file) as f:
        wait_exit(int(f.read()))
    assert json.loads(ok(cli(*g, "state", "t13ps")).stdout)["status"] == "stopped"
    assert json.loads(ok(cli(*g, "ps", "-f", "json", "t13ps")).stdout) in (None, [])
    table = ok(cli(*g, "ps", "t13ps")).stdout.splitlines()
    assert len(table) == 1 and table[0].split()[:2] == ["UID", "PID"]
    ok(cli(*g, "delete", "t13ps"))


@pytest.mark.parametrize("argv, code, words", [
    (["delete", "--force=true", "t13gone"], 0, ""),  # --force: already gone is success
    (["delete", "-force", "t13gone"], 0, ""),
    (["delete", "--force=false", "t13gone"], 125, "does not exist"),
    (["kill", "-all", "t13gone", "9"], 125, "does not exist"),
    (["kill", "--all=true", "t13gone", "KILL"], 125, "does not exist"),
    (["ps", "-format", "json", "t13gone"], 125, "does not exist"),
    (["state", "--bogus=1", "t13gone"], 125, "--bogus"),
    (["list", "-format", "json"], 0, ""),
    (["list", "-quiet"], 0, ""),
    (["list", "--quiet=true"], 0, ""),
])
def test_kill_delete_ps_list_read_urfave_s_option_forms(tmp_path, argv, code, words):
    """README: options are read as runc reads them (urfave/cli: ``-name``, ``--name=value``,
    booleans ``--name=true|false``) -- for kill, delete, ps and list as for create and run.
    runc 1.1.5 here: ``delete --force=true``/``-force`` of a missing container exit 0,
    ``kill -all ID 9`` and ``ps -format json ID`` name the missing container."""
    p = cli("--root", str(tmp_path / "state"), *argv)
    assert p.returncode == code, p.stderr
    assert words in p.stderr
    if argv[0] == "list" and "json" in argv:
        assert json.loads(p.stdout) in ([], None)
