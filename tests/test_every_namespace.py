"""A container with every namespace minins knows at once (user, mount, uts, ipc, pid, net,
cgroup), started and then entered by exec: the clone/unshare/setns flags of each, together.

Part of the focused set that tools/vm-arm64-tests and tools/vm-armhf-tests run on real ARM
kernels (tools/vm-arch-tests.list).
"""
import os
import signal
import tempfile

import pytest

import minins
from minins import config, execin
from minins.config import Namespace
from minins.container import Container

from kernel import needs_root, needs_userns

pytestmark = [needs_root, needs_userns]

NAMESPACES = ("NEWUSER", "NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET", "NEWCGROUP")
PROC_NS = ("user", "mnt", "uts", "ipc", "pid", "net", "cgroup")
HOST_ID = 300000
REPORT = ("for n in %s; do readlink /proc/self/ns/$n; done; echo ---; id -u; id -g; echo $$; "
          "cat /proc/1/comm; "
          "cat /proc/self/uid_map; echo ---; cat /proc/self/cgroup" % " ".join(PROC_NS))


def every_namespace_config():
    maps = (minins.IDMap(container_id=0, host_id=HOST_ID, size=65536),)
    return config.default_config().replace(
        namespaces=tuple(Namespace(type=t) for t in NAMESPACES),
        uid_mappings=maps, gid_mappings=maps)


def own_namespaces(pid="self"):
    return [os.readlink("/proc/%s/ns/%s" % (pid, n)) for n in PROC_NS]


@pytest.fixture
def state_root(tmp_path):
    return str(tmp_path / "state")


def check_report(text, host_ns):
    """The namespaces (each a new one), ``(pid inside, command of pid 1)``."""
    ns, ids, cgroups = text.split("---\n")
    ns = ns.split()
    assert len(ns) == len(PROC_NS)
    for mine, theirs, name in zip(ns, host_ns, PROC_NS):
        assert mine.startswith(name + ":[") and mine != theirs, (name, mine)
    uid, gid, pid, init, *uid_map = ids.split()
    assert (uid, gid) == ("0", "0")
    assert uid_map == ["0", str(HOST_ID), "65536"]
    # a cgroup namespace roots every hierarchy at the container's own cgroup
    lines = cgroups.split()
    assert lines and all(line.endswith(":/") for line in lines), lines
    return ns, (int(pid), init)


def test_run_with_every_namespace(state_root):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = minins.run(every_namespace_config(), ["/bin/sh", "-c", REPORT],
                          stdout=out, stderr=err, state_root=state_root)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    assert code == 0, errors
    _, (pid, init) = check_report(text, own_namespaces())
    assert (pid, init) == (1, "sh")


def test_exec_joins_every_namespace_of_a_running_container(state_root):
    with open(os.devnull, "wb") as null:
        c = Container(every_namespace_config(), ["/bin/sleep", "1000"], id="allns",
                      state_root=state_root, stdout=null, stderr=null)
        c.create()
        try:
            c.start()
            with tempfile.TemporaryFile() as out:
                code = execin.exec_in(c.data_path, ["/bin/sh", "-c", REPORT],
                                      stdout=out, stderr=out)
                out.seek(0)
                text = out.read().decode()
            assert code == 0, text
            ns, (pid, init) = check_report(text, own_namespaces())
            assert ns == own_namespaces(c.pid)  # the very namespaces of the init
            assert pid > 1 and init == "sleep"
        finally:
            c.kill(signal.SIGKILL)
            c.wait()
