"""A state.json that is a FIFO or a symlink to /dev/zero: `list` and `state` report it in one
line and go on, never block or read forever (found by trial 11)."""
import os
import subprocess
import sys

import pytest

WT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(root, *args):
    return subprocess.run([sys.executable, "-m", "minins", "--root", root] + list(args),
                          cwd=WT, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("kind", ["fifo", "devzero", "symlink"])
def test_special_state_file_does_not_block_list(tmp_path, kind):
    root = str(tmp_path / "root")
    d = os.path.join(root, "t11special")
    os.makedirs(d, mode=0o700)
    os.chmod(root, 0o700)
    sf = os.path.join(d, "state.json")
    if kind == "fifo":
        os.mkfifo(sf, 0o600)
    elif kind == "devzero":
        os.symlink("/dev/zero", sf)
    else:
        real = str(tmp_path / "real.json")
        with open(real, "w") as f:
            f.write("{}")
        os.symlink(real, sf)
    r = _cli(root, "list")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "t11special" in r.stderr
    r = _cli(root, "state", "t11special")
    assert r.returncode == 125
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minins: error: "), r.stderr
