"""A tiny rootfs for container tests: busybox-static, a passwd and a group file."""
import os
import shutil
import subprocess

import pytest

BUSYBOX = shutil.which("busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
tty:x:5:
wheel:x:10:alice
staff:x:50:alice
alice:x:1000:
"""


def _static(path):
    out = subprocess.run(["file", "-L", path], capture_output=True, text=True).stdout \
        if shutil.which("file") else "statically linked"
    return "statically linked" in out or "static-pie" in out


def build_rootfs(root):
    """Make a busybox rootfs at ``root`` (a path); skip when busybox-static is missing."""
    if not BUSYBOX:
        pytest.skip("busybox is not installed (Debian package busybox-static)")
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc", "root", "home/alice", "mnt",
              "usr/sbin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in out.split():
        link = os.path.join(root, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write(GROUP)
    os.chmod(root, 0o755)
    return root
