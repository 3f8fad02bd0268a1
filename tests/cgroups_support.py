"""Helpers for the cgroup tests: configs, a fake cgroupfs over a temporary tree, and
"container" processes made with os.fork whose progress the tests can measure.

Not a test module (no ``test_`` prefix); the ``tests/test_cgroups_*.py`` files import it.
"""
import errno
import mmap
import os
import select
import struct
import time
import types

from minins.cgroups.fs import CgroupFs
from minins.errors import SyscallError

FIELDS = dict(name="", parent="", allow_all_devices=True, allowed_devices=(), memory=0,
              memory_reservation=0, memory_swap=0, cpu_shares=0, cpu_quota=0, cpu_period=0,
              cpuset_cpus="", cpuset_mems="", blkio_weight=0, freezer="", slice="",
              pids_limit=0, driver="", scope_prefix="",
              # new (OCI)
              kernel_memory_tcp=0, memory_swappiness=-1, oom_kill_disable=False,
              cpu_rt_period=0, cpu_rt_runtime=0, cpu_idle=-1, cpu_burst=-1,
              blkio_leaf_weight=0, blkio_weight_device=(), blkio_throttle_read_bps_device=(),
              blkio_throttle_write_bps_device=(), blkio_throttle_read_iops_device=(),
              blkio_throttle_write_iops_device=(), hugetlb_limit=(), net_cls_classid=0,
              net_prio_ifpriomap=(), unified=())


def cgroup_config(**kw):
    """A cgroup config with the seed's attribute names (SimpleNamespace, like
    minins.config.Cgroup); every device allowed unless ``allowed_devices`` is given."""
    if "allowed_devices" in kw and "allow_all_devices" not in kw:
        kw["allow_all_devices"] = False
    unknown = set(kw) - set(FIELDS)
    assert not unknown, unknown
    return types.SimpleNamespace(**dict(FIELDS, **kw))


def values_ok(**kw):
    """:func:`cgroup_config` ``(**kw)`` passes minins.cgroups.values.validate unchanged; what
    values.parse makes of it."""
    from minins.cgroups import values

    cfg = cgroup_config(**kw)
    assert values.validate(cfg) is cfg
    return values.parse(cfg)


def values_bad(field, words="", **kw):
    """values.validate refuses :func:`cgroup_config` ``(**kw)`` with a ConfigError naming
    ``cgroups.<field>``, its message holding ``words``."""
    import pytest

    from minins.cgroups import values
    from minins.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        values.validate(cgroup_config(**kw))
    assert e.value.field == "cgroups." + field, str(e.value)
    assert words in e.value.message, str(e.value)


def end_cgroup_members(path, timeout=10):
    """SIGKILL every process in the cgroup directory ``path`` (a test-owned cgroup: only
    processes the tests started can be in it) and wait, on a pidfd each, until it has
    exited: an exited task has left its cgroups (cgroup_exit), reaped or not, so an rmdir
    of ``path`` works next. Read again until empty (a process may fork meanwhile) or
    ``timeout`` seconds have passed; nothing when ``path`` is gone."""
    import errno
    import select
    import signal
    import time

    from minins import libc

    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            try:
                pidfd = libc.pidfd_open(pid)
            except OSError as e:
                if e.errno != errno.ESRCH:  # before 5.3: no pidfd, no wait
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                continue
            try:
                libc.pidfd_send_signal(pidfd, signal.SIGKILL)
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                poller.poll(max(0, deadline - time.monotonic()) * 1000)
            except OSError as e:
                if e.errno != errno.ESRCH:
                    raise
            finally:
                os.close(pidfd)


def device(kind, major, minor, perms="rwm"):
    return types.SimpleNamespace(type=ord(kind), path="", major_number=major,
                                 minor_number=minor, cgroup_permissions=perms, file_mode=0,
                                 uid=0, gid=0)


_counter = [0]


def unique_name(tag="t"):
    _counter[0] += 1
    return "minins-test-%s-%d-%d" % (tag, os.getpid(), _counter[0])


# --- a fake kernel over a temporary tree --------------------------------------------------------

V1_FILES = {
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712\n",
               "memory.soft_limit_in_bytes": "9223372036854771712\n",
               "memory.memsw.limit_in_bytes": "9223372036854771712\n",
               "memory.usage_in_bytes": "0\n", "memory.max_usage_in_bytes": "0\n",
               "memory.failcnt": "0\n", "memory.stat": "cache 0\nrss 0\n",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n",
               "cgroup.event_control": ""},
    "cpu": {"cpu.shares": "1024\n", "cpu.cfs_period_us": "100000\n",
            "cpu.cfs_quota_us": "-1\n", "cpu.stat": "nr_periods 0\nnr_throttled 0\n"
                                                   "throttled_time 0\n"},
    "cpuacct": {"cpuacct.usage": "0\n", "cpuacct.usage_percpu": "0 0\n",
                "cpuacct.stat": "user 0\nsystem 0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "blkio": {"blkio.weight": "500\n"},
    "perf_event": {},
    "freezer": {"freezer.state": "THAWED\n"},
}
V2_CORE = {"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.freeze": "0\n",
           "cgroup.kill": "", "cgroup.events": "populated 0\nfrozen 0\n",
           "cgroup.type": "domain\n", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"}
V2_FILES = {
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "cpu": {"cpu.weight": "100\n", "cpu.max": "max 100000\n"},
    "io": {"io.weight": "default 100\n", "io.stat": ""},
    "memory": {"memory.max": "max\n", "memory.low": "0\n", "memory.swap.max": "max\n",
               "memory.current": "0\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\n"
                                                         "oom_kill 0\n",
               "memory.stat": "anon 0\nfile 0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
}


class FakeKernelFs(CgroupFs):
    """The cgroupfs of a temporary tree, played the way the kernel plays it.

    ``root`` holds v1 hierarchies as ``root/<subsystem>`` and the v2 one as ``root/unified``
    (or ``root`` itself with ``v2_only``). mkdir creates the interface files; writes go to
    existing files only (ENOENT otherwise, as on cgroupfs); ``cgroup.subtree_control``
    accepts only controllers in ``cgroup.controllers``; rmdir fails with EBUSY while a
    cgroup has children or processes. ``log`` records every change; ``fail_at = (n, errno)``
    makes the n-th change (counting from 1) fail.
    """

    def __init__(self, root, v1=(), v2=None, v2_only=False, swap=True, bfq=False):
        self.root = root
        self.log = []
        self.programs = {}
        self.fail_at = None
        self.swap = swap
        self.bfq = bfq
        self.v2_root = root if v2_only else (os.path.join(root, "unified") if v2 is not None
                                             else None)
        for name in v1:
            top = os.path.join(root, name)
            os.mkdir(top)
            self._populate(top, {"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"}
                           if name == "cpuset" else {})
        if self.v2_root:
            if not v2_only:
                os.mkdir(self.v2_root)
            self._put(self.v2_root, "cgroup.controllers", " ".join(v2) + "\n")
            self._put(self.v2_root, "cgroup.subtree_control", "")
            self._put(self.v2_root, "cgroup.procs", "")

    # -- helpers --
    def _put(self, d, name, text):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)

    def _get(self, path):
        with open(path) as f:
            return f.read()

    def _kind(self, path):
        if self.v2_root and (path == self.v2_root or path.startswith(self.v2_root + "/")):
            return "v2", None
        rel = os.path.relpath(path, self.root).split("/")
        return "v1", rel[0]

    def _populate(self, d, overrides=None):
        kind, subsys = self._kind(d)
        files = {"cgroup.procs": "", "tasks": ""}
        if kind == "v1":
            files.update(V1_FILES.get(subsys, {}))
            if subsys == "memory" and not self.swap:
                files.pop("memory.memsw.limit_in_bytes")
            if subsys == "blkio" and self.bfq:
                files.pop("blkio.weight")
                files["blkio.bfq.weight"] = "100\n"
        else:
            parent = os.path.dirname(d)
            enabled = self._get(os.path.join(parent, "cgroup.subtree_control")).split()
            files = dict(V2_CORE, **{"cgroup.controllers": " ".join(enabled) + "\n"})
            for c in enabled:
                files.update(V2_FILES.get(c, {}))
            if not self.swap:
                files.pop("memory.swap.max", None)
        files.update(overrides or {})
        for name, text in files.items():
            self._put(d, name, text)

    def _change(self, op, path, value=None):
        self.log.append((op, path, value))
        if self.fail_at and len(self.log) == self.fail_at[0]:
            raise SyscallError(self.fail_at[1], op, path, "injected")

    def tree(self):
        """Every directory under the root, to compare before and after."""
        return sorted(dp for dp, _, _ in os.walk(self.root))

    # -- the seam --
    def mkdir(self, path):
        self._change("mkdir", path)
        CgroupFs.mkdir(self, path)
        self._populate(path)

    def rmdir(self, path):
        if not os.path.isdir(path):
            raise SyscallError(errno.ENOENT, "rmdir", path)
        if any(e.is_dir() for e in os.scandir(path)) or self._get(path + "/cgroup.procs").split():
            raise SyscallError(errno.EBUSY, "rmdir", path)
        self._change("rmdir", path)
        for e in os.scandir(path):
            os.unlink(e.path)
        CgroupFs.rmdir(self, path)

    def write(self, path, value):
        if not os.path.isfile(path):
            raise SyscallError(errno.ENOENT, "open", path)
        self._change("write", path, value)
        name = os.path.basename(path)
        d = os.path.dirname(path)
        if name == "cgroup.subtree_control":
            have = set(self._get(d + "/cgroup.controllers").split())
            now = self._get(path).split()
            for token in value.split():
                c = token[1:]
                if c not in have:
                    raise SyscallError(errno.ENOENT, "write", path, "value %r" % value)
                if token[0] == "+" and c not in now:
                    now.append(c)
                elif token[0] == "-" and c in now:
                    now.remove(c)
            self._put(d, name, " ".join(now) + "\n")
        elif name == "cgroup.procs":
            self._move(d, value)
        elif name == "cgroup.freeze":
            self._put(d, name, value + "\n")
            self._put(d, "cgroup.events", "populated 0\nfrozen %s\n" % value)
        elif name in ("devices.allow", "devices.deny", "cgroup.event_control"):
            self._put(d, name, self._get(path) + value + "\n")
        else:
            self._put(d, name, value + "\n")

    def _hierarchy(self, d):
        kind, subsys = self._kind(d)
        return self.v2_root if kind == "v2" else os.path.join(self.root, subsys)

    def _move(self, d, pid):
        """A process is in one cgroup per hierarchy: take it out of the others."""
        for dp, _, files in os.walk(self._hierarchy(d)):
            if "cgroup.procs" in files:
                pids = [p for p in self._get(dp + "/cgroup.procs").split() if p != pid]
                if dp == d and pid:
                    pids.append(pid)
                self._put(dp, "cgroup.procs", "".join(p + "\n" for p in pids))

    def exit(self, pid):
        """The process ``pid`` exited: it leaves every hierarchy."""
        for dp, _, files in os.walk(self.root):
            if "cgroup.procs" in files:
                pids = [p for p in self._get(dp + "/cgroup.procs").split() if p != str(pid)]
                self._put(dp, "cgroup.procs", "".join(p + "\n" for p in pids))

    def write_lines(self, path, values):
        for v in values:
            self.write(path, v)

    def attach_devices(self, path, rules, replace=True):
        self._change("bpf", path, tuple(rules))
        from minins.cgroups import bpf_devices

        self.programs[path] = bpf_devices.program(rules)


# --- processes ------------------------------------------------------------------------------

class Counter(object):
    """An 8-byte counter in shared memory: a child increments it, the test reads it."""

    def __init__(self):
        self.mem = mmap.mmap(-1, 8)

    def value(self):
        return struct.unpack_from("=Q", self.mem, 0)[0]

    def spin(self):
        """Run in the child: count forever."""
        n = 0
        while True:
            n += 1
            struct.pack_into("=Q", self.mem, 0, n)


class Child(object):
    """A forked process that waits for :meth:`go`, then runs ``fn(out)`` (``out``: a write
    fd to report lines on) and exits with its return value (0 for None)."""

    def __init__(self, fn):
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                os.close(out_r)
                if os.read(go_r, 1) == b"g":
                    code = fn(out_w) or 0
            except BaseException as e:  # report, never return into pytest
                try:
                    os.write(out_w, ("error %r\n" % (e,)).encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.close(go_r)
        os.close(out_w)
        self.pid, self._go, self._out = pid, go_w, out_r
        self._buf = b""
        self.status = None

    def go(self):
        os.write(self._go, b"g")

    def line(self, timeout=10.0):
        """The next line the child reported, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise TimeoutError("no line from child %d in %.0f s" % (self.pid, timeout))
            chunk = os.read(self._out, 4096)
            if not chunk:
                raise EOFError("child %d closed its output" % self.pid)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def wait(self, timeout=10.0):
        """Reap the child, waiting on a pidfd for at most ``timeout`` seconds."""
        if self.status is not None:
            return self.status
        from minins import libc

        try:
            fd = libc.pidfd_open(self.pid)
        except SyscallError as e:
            if e.errno != errno.ESRCH:
                raise
            fd = None  # reaped already: waitpid says so (ChildProcessError)
        if fd is None:
            self.status = os.waitpid(self.pid, 0)[1]
            return self.status
        try:
            if not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError("child %d still running after %.0f s" % (self.pid, timeout))
        finally:
            os.close(fd)
        self.status = os.waitpid(self.pid, 0)[1]
        return self.status

    def close(self):
        """Kill and reap if still there (bounded: a task frozen by a v1 freezer cannot die);
        close the pipes. Safe on every path."""
        for fd in (self._go, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.status is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            try:
                self.wait(10)
            except ChildProcessError:
                self.status = -1


def wait_for(check, timeout=10.0, what="condition"):
    """Poll a kernel fact until ``check()`` is true, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def alive(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# --- what the container processes do -------------------------------------------------------

def idle(out):
    """Report "ready", then sleep until killed."""
    os.write(out, b"ready\n")
    while True:
        time.sleep(3600)


def forker(out):
    """Fork until fork fails; report how many and the errno."""
    n = 0
    while True:
        try:
            pid = os.fork()
        except OSError as e:
            os.write(out, ("forked %d then %s\n" % (n, errno.errorcode[e.errno])).encode())
            time.sleep(3600)
        if pid == 0:
            time.sleep(3600)
            os._exit(0)
        n += 1


def tree(out):
    """A container init that forks children, which fork grandchildren; some grandchildren
    are orphaned (their parent exits), one process forks without end."""
    for _ in range(3):
        if os.fork() == 0:
            for _ in range(2):
                if os.fork() == 0:
                    os.write(out, b"pid %d\n" % os.getpid())
                    time.sleep(3600)
                    os._exit(0)
            if os.fork() == 0:  # double fork: the grandchild loses its parent
                if os.fork() == 0:
                    os.write(out, b"pid %d\n" % os.getpid())
                    time.sleep(3600)
                os._exit(0)
            os.write(out, b"pid %d\n" % os.getpid())
            time.sleep(3600)
            os._exit(0)
    if os.fork() == 0:
        os.write(out, b"pid %d\n" % os.getpid())
        while True:  # keeps forking short-lived children
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
    os.write(out, b"pid %d\n" % os.getpid())
    time.sleep(3600)
