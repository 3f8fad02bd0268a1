"""Messages that misled users (issue 11, section 9), each now saying what is wrong, and the
names the README promises reachable from ``import minins``."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from minins import config
from minins.config import Mount, MountConfig
from minins.errors import SyscallError

from kernel import needs_root, run_captured

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=REPO,
                          capture_output=True, text=True, **kw)


def test_readme_names_are_reachable_after_import_minins():
    code = ("import sys, minins\n"
            "assert 'minins.lifecycle' not in sys.modules  # still lazy\n"
            "for f in (minins.lifecycle.describe, minins.lifecycle.pause, minins.lifecycle.kill,\n"
            "          minins.lifecycle.list_containers, minins.lifecycle.oom_events,\n"
            "          minins.execin.exec_in, minins.exec_in, minins.config.rootless):\n"
            "    assert callable(f), f\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_default_environment_leaves_home_to_the_users_passwd_entry():
    env = config.default_config().environment
    assert not [e for e in env if e.startswith("HOME=")]


def _with_dir(tmp, **changes):
    """The default config with ``tmp`` bound read-only at /mnt (the host's / is the rootfs,
    read-only: the mount point must exist there)."""
    if not os.path.isdir("/mnt"):
        pytest.skip("this host has no /mnt to bind onto")
    cfg = config.default_config()
    mc = cfg.mount_config
    return cfg.replace(mount_config=mc.replace(mounts=tuple(mc.mounts) + (
        Mount(type="bind", source=tmp, destination="/mnt"),)), **changes)


@needs_root
def test_a_script_whose_interpreter_is_missing_names_the_interpreter(tmp_path):
    script = tmp_path / "s"
    script.write_text("#!/nonexistent/interp -x\necho hi\n")
    script.chmod(0o755)
    with pytest.raises(SyscallError) as e:
        run_captured(_with_dir(str(tmp_path)), ["/mnt/s"], state_root=str(tmp_path / "st"))
    assert e.value.errno == 2
    assert str(e.value).endswith("exec /mnt/s: ENOENT (No such file or directory): its "
                                 "interpreter /nonexistent/interp (on its #! line) does not "
                                 "exist"), str(e.value)
    path = str(tmp_path / "c.json")
    with open(path, "w") as f:
        f.write(config.dumps(_with_dir(str(tmp_path))))
    proc = cli("--root", str(tmp_path / "st"), "run", "--config", path, "--", "/mnt/s")
    assert proc.returncode == 127, proc.stderr
    assert proc.stderr.count("\n") == 1 and "/nonexistent/interp" in proc.stderr


@needs_root
def test_a_missing_command_is_still_just_missing(tmp_path):
    with pytest.raises(SyscallError) as e:
        run_captured(config.default_config(), ["/no/such/cmd"],
                     state_root=str(tmp_path / "st"))
    assert e.value.errno == 2 and str(e.value).endswith(
        "exec /no/such/cmd: ENOENT (No such file or directory)")


@needs_root
def test_exec_user_gets_home_from_passwd_unless_set(tmp_path):
    from minins import execin
    from minins.container import Container

    with open("/etc/passwd") as f:
        nobody = [line.split(":") for line in f if line.startswith("nobody:")]
    if not nobody:
        pytest.skip("no user nobody in this host's /etc/passwd")
    home = nobody[0][5]
    null = open(os.devnull, "wb")
    c = Container(config.default_config(), ["sleep", "600"], id="homes",
                  state_root=str(tmp_path / "st"), stdout=null, stderr=null)
    c.create()
    c.start()
    try:
        def home_of(**kw):
            with tempfile.TemporaryFile() as out:
                assert execin.exec_in(c.data_path, ["sh", "-c", "echo $HOME"], stdout=out,
                                      **kw) == 0
                out.seek(0)
                return out.read().decode().strip()
        assert home_of() == "/root"  # root's passwd entry (the host's / is the rootfs)
        assert home_of(user="nobody") == home
        assert home_of(user="nobody", env=("HOME=/x",)) == "/x"
    finally:
        c.kill(9)
        c.wait()
        null.close()


@needs_root
def test_a_bridge_that_is_not_a_bridge_is_one_line(tmp_path):
    doc = config.default_config().to_json()
    doc["networks"] = [{"type": "loopback"},
                       {"type": "veth", "bridge": "lo", "veth_prefix": "mnmsg"}]
    path = str(tmp_path / "c.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    proc = cli("--root", str(tmp_path / "st"), "run", "--config", path, "--", "true")
    assert proc.returncode == 125, proc.stderr
    assert proc.stderr.splitlines() == [
        "minins: error: network: networks[1].bridge: lo is not a bridge (it is a link of no "
        "kind, such as a physical one); give the name of a bridge link, which the host end "
        "of the veth pair joins"], proc.stderr
