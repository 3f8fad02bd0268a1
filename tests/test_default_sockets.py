"""The default container cannot reach the host's Unix sockets (issue 10, section 4).

A read-only bind does not stop connect(2): the default config hides every usual socket
place of the host under an empty tmpfs. For each place this host has, the test binds a
listening socket in a directory of its own there, and tries to connect to it from a default
container -- and, as the control that shows the check can fail, from a container that only
covers /tmp and /run (the earlier default).
"""
import os
import shutil
import socket
import sys
import tempfile

import pytest

from minins import config

from kernel import needs_root, run_captured

pytestmark = needs_root

PROBE = """
import socket, sys
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        print(path, "connected")
    except OSError as e:
        print(path, "refused", e.errno)
    finally:
        s.close()
"""


def _covered(path, places):
    real = os.path.realpath(path)
    return any(real == os.path.realpath(p) or real.startswith(os.path.realpath(p) + "/")
               for p in places)


@pytest.fixture
def host_sockets():
    """``{place: socket path}``: a listening socket in a test-owned directory under each
    socket place of the default config; all removed afterwards."""
    places = [m.destination for m in config.default_config().mount_config.mounts]
    made, socks = {}, []
    try:
        for place in places:
            d = tempfile.mkdtemp(prefix="minins-sock-", dir=place)
            made[place] = d
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(os.path.join(d, "s"))
            s.listen(8)
        yield {p: os.path.join(d, "s") for p, d in made.items()}
    finally:
        for s in socks:
            s.close()
        for d in made.values():
            shutil.rmtree(d, ignore_errors=True)


def _python(places):
    """An interpreter the container can run: not below a place the default hides."""
    for exe in ("/usr/bin/python3", sys.executable):
        if os.path.exists(exe) and not _covered(exe, places):
            return exe
    pytest.skip("every Python interpreter here lives below a place the default hides")


def _probe(cfg, paths, state_root):
    exe = _python([m.destination for m in cfg.mount_config.mounts])
    code, out, err = run_captured(cfg, [exe, "-c", PROBE] + paths, state_root=state_root)
    assert code == 0, err
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_default_covers_the_usual_socket_places():
    dests = [m.destination for m in config.default_config().mount_config.mounts]
    assert dests[:2] == ["/tmp", "/run"]
    for place in ("/var/tmp", "/var/lib", "/var/spool", "/var/snap", "/home", "/root"):
        assert (place in dests) == (os.path.isdir(place) and not any(
            _covered(place, [d]) for d in dests if d != place)), place


def test_socket_covers_skips_missing_places_and_links():
    places = (("/tmp", "mode=1777"), ("/run", "mode=755"), ("/var/run", "mode=755"),
              ("/var/lib", "mode=755"), ("/gone", "mode=755"))
    links = {"/var/run": "/run"}
    mounts = config.socket_covers(places, isdir=lambda p: p != "/gone",
                                  realpath=lambda p: links.get(p, p))
    assert [(m.destination, m.data, m.writable) for m in mounts] == [
        ("/tmp", "mode=1777", True), ("/run", "mode=755", True),
        ("/var/lib", "mode=755", True)]


def test_host_sockets_are_unreachable_from_the_default_container(host_sockets, tmp_path):
    paths = sorted(host_sockets.values())
    seen = _probe(config.default_config(), paths, str(tmp_path / "state"))
    assert sorted(seen) == paths
    assert [p for p in paths if seen[p] == "connected"] == []
    # The control: with only /tmp and /run covered, the others are reachable -- so the
    # probe does tell a reachable socket from a hidden one.
    cfg = config.default_config()
    mc = cfg.mount_config
    old = cfg.replace(mount_config=mc.replace(mounts=mc.mounts[:2]))
    seen = _probe(old, paths, str(tmp_path / "state"))
    for place, path in host_sockets.items():
        expected = "refused" if place in ("/tmp", "/run") else "connected"
        assert seen[path].split()[0] == expected, (place, seen[path])


def test_an_image_gets_only_tmp_and_run(tmp_path):
    """An image has no host socket to hide, and its own /var/lib, /home, /root stay as they
    are: ``run --rootfs`` covers only /tmp and /run, and makes nothing else in the image."""
    import subprocess

    from rootfs_util import build_rootfs

    assert [m.destination for m in config.default_config("/srv/img").mount_config.mounts] \
        == ["/tmp", "/run"]
    assert config.default_config("/srv/img").root_fs == "/srv/img"
    base = tempfile.mkdtemp(prefix="minins-test-img-")
    os.chmod(base, 0o755)
    try:
        root = build_rootfs(os.path.join(base, "rootfs"))
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        proc = subprocess.run([sys.executable, "-m", "minins", "--root", str(tmp_path / "st"),
                               "run", "--rootfs", root, "--", "/bin/sh", "-c",
                               "grep -c tmpfs /proc/self/mountinfo"], cwd=repo,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert not os.path.exists(os.path.join(root, "var"))
        assert os.listdir(os.path.join(root, "root")) == []  # its own, not covered
    finally:
        shutil.rmtree(base)
