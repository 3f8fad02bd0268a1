"""Failures injected at every step of a container's start leave nothing behind.

The runtime runs in a forked child with a network namespace of its own (so the bridge and
the veth host ends it makes never touch the host's), under this process's cgroups. A dry run
records every libc call the runtime, the intermediate process and the init make; then each
call is failed in turn (EIO), along with the host-side steps that do not go through libc
(cgroup file writes, netlink, the state file). After every run: no child, no new fd, no file
in the state root, no link but the bridge and lo, and the suite's guard checks the cgroups.
"""
import errno
import json
import os
import time
import traceback

from minins import config, libc
from minins.config import Namespace, Network
from minins.errors import MininsError, SyscallError

from kernel import USERNS, needs_root

pytestmark = needs_root

BRIDGE = "mnfail%d" % (os.getpid() % 100000)
CLONE_NEWNET = 0x40000000


class FailingLibc:
    """minins.libc, except that the n-th call of one function fails with EIO (counted along
    the runtime -> intermediate -> init lineage, as each forked process inherits the count).
    With ``record`` set, every call's name is written to that pipe instead."""

    def __init__(self, fail=None, nth=0, record=None, die_after=None):
        self.fail, self.nth, self.record = fail, nth, record
        self.die_after = die_after  # SIGKILL ourselves right after this call returns
        self.count = 0

    def __getattr__(self, name):
        real = getattr(libc, name)
        if not callable(real):
            return real

        def call(*args, **kw):
            if self.record is not None:
                os.write(self.record, (name + "\n").encode())
            elif name == self.fail:
                self.count += 1
                if self.count == self.nth:
                    raise SyscallError(errno.EIO, name, "injected")
            result = real(*args, **kw)
            if name == self.die_after and result:  # in the caller, not in the new child
                os.kill(os.getpid(), 9)  # as the OOM killer would
            return result

        return call


def container_config(userns):
    cfg = config.default_config().replace(
        networks=(Network(type="loopback"),
                  Network(type="veth", bridge=BRIDGE, veth_prefix="mnf", address="10.77.0.2/24",
                          gateway="10.77.0.1", mtu=1400)),
        hostname="failing", rlimits=(config.Rlimit(type=7, soft=512, hard=512),))
    if userns:
        maps = (config.IDMap(container_id=0, host_id=300000, size=65536),)
        cfg = cfg.replace(namespaces=(Namespace(type="NEWUSER"),) + cfg.namespaces,
                          uid_mappings=maps, gid_mappings=maps)
    return cfg


SYSFS = [None]  # where this runtime's own sysfs (its network namespace's view) is mounted


def _links():
    return sorted(os.listdir(os.path.join(SYSFS[0], "class/net")))


def _fds():
    return sorted(os.listdir("/proc/self/fd"))


def _children():
    with open("/proc/self/task/%d/children" % os.getpid()) as f:
        return f.read().split()


def runtime(report, state_root):
    """The body of the forked runtime: set up its netns, run every case, report."""
    from minins import container, state
    from minins.cgroups import fs as cgfs
    from minins.netlink import link, sock
    from minins import network

    libc.unshare(CLONE_NEWNET)
    # a sysfs of our own namespace, to read our links back (private mounts only; /sys and
    # the cgroup mounts below it stay as they are)
    libc.unshare(0x00020000)
    libc.mount(None, "/", None, 0x4000 | 1 << 18)
    SYSFS[0] = os.path.join(os.path.dirname(state_root), "sysfs")
    os.mkdir(SYSFS[0])
    libc.mount("sysfs", SYSFS[0], "sysfs", 0)
    with sock.Socket() as s:
        link.add_bridge(s, BRIDGE, up=True)
        link.set_up(s, "lo")
    from conftest import _own_cgroup_dirs

    from minins import process as _process

    _process.sealed_interpreter()  # made once per runtime process and kept: not a leak
    baseline = {"fds": _fds(), "links": _links(), "cgroups": _own_cgroup_dirs()}
    results = []

    def one(name, cfg, lc=None, patch=None, record=False):
        undo = []
        if patch:
            obj, attr, fn = patch
            orig = getattr(obj, attr)
            setattr(obj, attr, fn(orig))
            undo.append((obj, attr, orig))
        outcome = {"case": name}
        try:
            c = container.Container(cfg, ["/bin/true"], state_root=state_root,
                                    lc=lc or libc)
            c.create()
            c.start()
            outcome["code"] = c.wait()
        except MininsError as e:
            outcome.update(error=str(e), step=getattr(e, "step", None),
                           errno=getattr(e, "errno", None))
        except Exception as e:  # not a MininsError: a bug in minins
            outcome.update(error="UNEXPECTED %s: %s" % (type(e).__name__, e),
                           trace=traceback.format_exc())
        finally:
            for obj, attr, orig in undo:
                setattr(obj, attr, orig)
        # The kernel removes a dead network namespace's links asynchronously (cleanup_net):
        # wait, boundedly, for the veth host end to go with it.
        deadline = time.monotonic() + 10
        while _links() != baseline["links"] and time.monotonic() < deadline:
            time.sleep(0.01)
        outcome["leaks"] = [what for what, now, before in (
            ("fds", _fds(), baseline["fds"] if not record else _fds()),
            ("links", _links(), baseline["links"]),
            ("children", _children(), []),
            ("cgroups", _own_cgroup_dirs(), baseline["cgroups"]),
            ("state", os.listdir(state_root)
                                            if os.path.isdir(state_root) else [], []))
            if now != before]
        results.append(outcome)

    def fail_nth(counter_name, nth, exc=None):
        def wrap(orig):
            calls = [0]

            def f(*a, **k):
                calls[0] += 1
                if calls[0] == nth:
                    raise exc or SyscallError(errno.EIO, counter_name, "injected")
                return orig(*a, **k)
            return f
        return wrap

    for userns in ([False, True] if USERNS else [False]):
        cfg = container_config(userns)
        # dry run: which libc calls happen, how often
        r, w = os.pipe()
        one("dry run userns=%s" % userns, cfg, FailingLibc(record=w), record=True)
        os.close(w)
        with os.fdopen(r) as f:
            names = f.read().split()
        counts = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        for fn, total in sorted(counts.items()):
            picks = range(1, total + 1) if total <= 40 else \
                sorted({1, 2, 3, total // 4, total // 2, total - 1, total})
            for nth in picks:
                one("libc.%s #%d userns=%s" % (fn, nth, userns), cfg, FailingLibc(fn, nth))
        if userns:
            continue
        for nth in (1, 2, 5, 9, 14):
            one("cgroup write #%d" % nth, cfg, patch=(cgfs.CgroupFs, "write",
                                                      fail_nth("write", nth)))
        for nth in (1, 3):
            one("cgroup mkdir #%d" % nth, cfg, patch=(cgfs.CgroupFs, "mkdir",
                                                      fail_nth("mkdir", nth)))
        for nth in (1, 2):
            one("netlink request #%d" % nth, cfg, patch=(sock.Socket, "request",
                                                         fail_nth("request", nth)))
        one("network.create", cfg, patch=(network, "create", fail_nth("create", 1)))
        one("state save", cfg, patch=(state, "save", fail_nth("save", 1)))
        one("network.initialize (in the init)", cfg,
            patch=(network, "initialize", fail_nth("initialize", 1)))
        one("the intermediate killed right after cloning the init", cfg,
            FailingLibc(die_after="clone_parent"))
        one("exec of a missing program", cfg.replace(environment=("PATH=/nowhere",)))
        one("a cgroup that exists already",
            cfg.replace(cgroups=config.Cgroup(name="x", parent="/")))
    os.write(report, json.dumps(results).encode())


def test_failures_at_every_step_leave_nothing_behind(tmp_path):
    state_root = str(tmp_path / "state")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            runtime(w, state_root)
        except BaseException:
            os.write(w, json.dumps([{"case": "runtime", "error": "UNEXPECTED",
                                     "trace": traceback.format_exc(), "leaks": []}]).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    results = json.loads(data)
    assert len(results) >= 100, "only %d runs" % len(results)
    problems = [r for r in results if r["leaks"] or "UNEXPECTED" in r.get("error", "")
                or ("error" in r and not r.get("step"))]
    assert not problems, json.dumps(problems, indent=1)[:4000]
    failed = [r for r in results if "error" in r]
    assert len(failed) >= 0.8 * (len(results) - 2)  # nearly every injection is an error
