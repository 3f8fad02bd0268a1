"""`run -d` with `cgroups.freezer: "FROZEN"`: the command runs and is then paused, as README
says of `run` ("run pauses the command as soon as it runs"); it used to exit 125 with
"cannot start container X: it is paused; resume it first" and remove the container, which the
user then could not resume (found by trial 11)."""
import json
import os


from kernel import needs_root
from test_detached import cli, root, status  # noqa: F401 - the fixture

pytestmark = needs_root


def test_run_detached_with_frozen_freezer_runs_then_pauses(root, tmp_path):  # noqa: F811
    path = str(tmp_path / "frozen.json")
    proc = cli("config")
    assert proc.returncode == 0, proc.stderr
    c = json.loads(proc.stdout)
    c.setdefault("cgroups", {})["freezer"] = "FROZEN"
    with open(path, "w") as f:
        json.dump(c, f)
    cid = "t11frz%d" % os.getpid()
    proc = cli("--root", root, "run", "-d", "--id", cid, "--config", path, "--",
               "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    assert status(root, cid)["status"] == "paused"
    assert cli("--root", root, "resume", cid).returncode == 0
    st = status(root, cid)
    assert st["status"] == "running"  # the command ran: not `created`
    with open("/proc/%d/cmdline" % st["pid"], "rb") as f:
        assert f.read().split(b"\0")[0].endswith(b"sleep")
    assert cli("--root", root, "delete", "--force", cid).returncode == 0
