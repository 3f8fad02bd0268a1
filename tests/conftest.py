"""Suite-wide guard: nothing a test creates on the host may outlive the suite.

Before the first test the guard records the host's network links and named network
namespaces, the cgroups below this process's own cgroup in every hierarchy, the mount table
and this process's children; after the last test it records them again and fails the run if
anything is new (a link, a namespace, a cgroup, a mount, a child or zombie). Every test file
runs under it.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _links():
    try:
        return set(os.listdir("/sys/class/net"))
    except OSError:
        return set()


def _named_netns():
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


def _own_cgroup_dirs():
    """Every directory below this process's own cgroup, in every mounted hierarchy."""
    found = set()
    for mnt in _cgroup_mounts():
        own = _own_path_in(mnt)
        if own is None:
            continue
        top = os.path.join(mnt["point"], own.lstrip("/"))
        for dirpath, _dirs, _files in os.walk(top):
            if dirpath != top:
                found.add(dirpath)
    return found


def _cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype = fields[sep + 1]
            if fstype in ("cgroup", "cgroup2"):
                opts = set(fields[sep + 3].split(","))
                out.append({"point": fields[4], "type": fstype, "opts": opts})
    return out


def _own_path_in(mnt):
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            names = set(ctrls.split(",")) if ctrls else set()
            if mnt["type"] == "cgroup2" and not ctrls:
                return path
            if mnt["type"] == "cgroup" and names and names <= mnt["opts"]:
                return path
    return None


def _mounts():
    with open("/proc/self/mountinfo") as f:
        return {(line.split()[4], line.split()[2]) for line in f}


def _children():
    kids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % tid) as f:
                kids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return kids


def _snapshot():
    return {
        "link": _links(),
        "named network namespace": _named_netns(),
        "cgroup": _own_cgroup_dirs(),
        "mount": _mounts(),
        "child process": _children(),
    }


@pytest.fixture(scope="session", autouse=True)
def host_leftover_guard():
    before = _snapshot()
    yield
    after = _snapshot()
    leaks = []
    for kind, items in after.items():
        for item in sorted(items - before[kind], key=str):
            leaks.append("%s %s" % (kind, item))
    if leaks:
        pytest.fail("the suite left these behind on the host:\n  " + "\n  ".join(leaks),
                    pytrace=False)
