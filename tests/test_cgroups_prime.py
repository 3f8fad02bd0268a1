"""Manager.prime (issue 16): the grace period of the next join started in the background, by
re-writing a process of the container where it already is -- and never moving one that is
not there. Real kernel, as root, in cgroups made below this process's own."""
import os

import pytest

from cgroups_support import Child, cgroup_config, idle, unique_name
from minins import cgroups
from minins.cgroups.discovery import discover
from minins.errors import SyscallError

HIER = discover()
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroup tests need root"),
    pytest.mark.skipif(not (HIER.v1 or HIER.unified), reason="no cgroup hierarchy mounted"),
]


@pytest.fixture
def box():
    mgr = cgroups.new_manager(cgroup_config(name=unique_name("prime")), HIER)
    kid = Child(idle)
    try:
        mgr.apply(kid.pid)
        kid.go()
        assert kid.line() == "ready"
        yield mgr, kid
    finally:
        try:
            mgr.kill_all(timeout=5)
        finally:
            mgr.destroy()
            kid.close()


def procs(path):
    with open(path + "/cgroup.procs") as f:
        return f.read().split()


def test_a_member_is_rewritten_where_it_is(box):
    mgr, kid = box
    first = mgr._dirs()[0]
    assert mgr._prime_now(kid.pid) is True
    assert procs(first) == [str(kid.pid)]


def test_a_process_moved_out_is_left_where_it_went(box):
    mgr, kid = box
    first = mgr._dirs()[0]
    key = [k for k, p in mgr.paths.items() if p == first][0]
    own = HIER.own_dir(key)
    with open(own + "/cgroup.procs", "w") as f:
        f.write(str(kid.pid))
    assert mgr._prime_now(kid.pid) is False
    assert str(kid.pid) not in procs(first)
    assert str(kid.pid) in procs(own)


def test_prime_never_raises(box):
    mgr, kid = box

    class Broken(object):
        def read(self, path):
            raise SyscallError(5, "read", path)

    mgr.fs, saved = Broken(), mgr.fs
    try:
        assert mgr._prime_now(kid.pid) is False
        mgr.prime(kid.pid)  # the thread swallows the same error
    finally:
        mgr.fs = saved
