"""The child's step sequence, for both kinds of the pipeline, against the recording fake.

The intermediate and the final process run for real in a forked child (so that their changes
to the cwd, umask and descriptors stay there), but every system call that matters to the
container's setup goes to :class:`tests.fakes.FakeLibc`, which only records it (path look-ups
in a temporary rootfs, which harm nothing, go to the real libc). No namespace, mount or
credential of the host changes. The fake's execve hands the record back through a pipe; this
test plays the runtime's side of the sync channel."""
import json
import os

import pytest

from minins import child, config, libc, process, sync
from minins.config import Namespace

from fakes import FakeLibc

CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000


class Recorder(FakeLibc):
    def __init__(self, pipe, **kw):
        FakeLibc.__init__(self, **kw)
        self.pipe = pipe

    # look-ups inside the temporary rootfs are harmless: let them happen
    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        self.calls.append(("openat2", path))
        return libc.openat2(dirfd, path, flags, mode, resolve)

    def fstatfs_type(self, fd):
        self.calls.append(("fstatfs_type",))
        return libc.fstatfs_type(fd)

    def mknod(self, path, mode, device, dir_fd=None):
        # a plain file stands in for the node, so that the steps after it find one
        self.calls.append(("mknod", path))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd))

    def execve(self, path, args, env):
        self.calls.append(("execve", path))
        os.write(self.pipe, json.dumps([c[0] for c in self.calls]).encode())
        os._exit(0)


def _rootfs(tmp_path):
    root = tmp_path / "rootfs"
    for d in ("proc", "sys", "dev", "tmp", "run", "etc", "bin"):
        (root / d).mkdir(parents=True)
    (root / "bin" / "true").write_text("")
    (root / "bin" / "true").chmod(0o755)
    return str(root)


def run_child(plan_kwargs, runtime_messages, clone_result=0):
    """Fork; in the child run the intermediate with a recording fake; return the names of the
    calls it made, in order (or raise what it reported)."""
    r, w = os.pipe()
    runtime_end, child_end = sync.socketpair()
    for kind in runtime_messages:
        sync.send(runtime_end, kind, {})
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            from minins import rootfs

            rootfs._new_api[0] = False  # mount(2): the fake records it; no descriptors to fake
            # nothing is really mounted: the mount point is the directory itself
            rootfs._reopen = lambda target, dest, inode=None: os.open(
                "/proc/self/fd/%d" % target, os.O_PATH | os.O_CLOEXEC)
            fake = Recorder(w, results={"clone_parent": clone_result, "capget": (0, 0, 0)})
            plan = process.Plan(sock=child_end, runtime_sock=runtime_end, lc=fake,
                                cap_last_cap=40, lsm={"apparmor": False, "selinux": False},
                                **plan_kwargs)
            child.intermediate(plan)
        finally:
            os._exit(3)
    os.close(w)
    child_end.close()
    record = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        record += chunk
    os.close(r)
    os.waitpid(pid, 0)
    # what the child said besides (USERNS_READY, INIT_PID, SETUP_DONE, or an ERROR)
    said = []
    runtime_end.setblocking(False)
    try:
        while True:
            kind, payload = sync.recv(runtime_end)
            if kind is sync.EOF:
                break
            if kind == sync.ERROR:
                raise sync.error_from_payload(payload)
            said.append(kind)
    except BlockingIOError:
        pass
    finally:
        runtime_end.close()
    return json.loads(record or b"[]"), said


def _first(calls, name, arg=None, fake_calls=None):
    return calls.index(name)


@pytest.mark.skipif(os.geteuid() != 0 and not os.access("/proc/self/setgroups", os.R_OK),
                    reason="reads /proc/self/setgroups")
def test_init_kind_runs_its_steps_in_order(tmp_path):
    rootfs = _rootfs(tmp_path)
    maps = (config.IDMap(container_id=0, host_id=100000, size=65536),)
    cfg = config.default_config().replace(
        root_fs=rootfs, hostname="ordered", restrict_sys=False,
        namespaces=(Namespace(type="NEWUSER"),) + config.default_config().namespaces,
        uid_mappings=maps, gid_mappings=maps, networks=(), cgroups=None)
    calls, said = run_child(
        dict(kind=child.INIT, config=cfg, args=("/bin/true",), new_userns=True, in_userns=True,
             unshare_flags=cfg.clone_flags() & ~(CLONE_NEWUSER | 0x02000000),
             fork_into_pid_ns=True),
        [sync.USERNS_MAPPED, sync.RELEASE, sync.START])
    # (the fake's clone_parent returns 0: we follow the cloned process, whose parent would
    # send INIT_PID)
    assert said == [sync.USERNS_READY, sync.SETUP_DONE]
    # the user namespace first, then the others; become its root before anything else
    assert calls.index("unshare") < calls.index("setresuid")
    assert calls[:calls.index("clone_parent")].count("unshare") == 2
    # mounts, then pivot_root, then the hostname
    first_mount = calls.index("mount")
    assert first_mount > calls.index("clone_parent")
    pivot = calls.index("pivot_root")
    assert first_mount < pivot < calls.index("sethostname")
    # capabilities only after the switch to the container's user
    last_setresuid = len(calls) - 1 - calls[::-1].index("setresuid")
    assert calls.index("capset") > last_setresuid
    # descriptors closed, signals reset, then exec: nothing in between
    assert calls[-3:] == ["close_range", "reset_signals", "execve"]


def test_exec_kind_joins_user_first_mount_last_and_waits_for_cgroups(tmp_path):
    cfg = config.default_config().replace(root_fs=_rootfs(tmp_path), cgroups=None,
                                          networks=())
    null = [os.open("/dev/null", os.O_RDONLY) for _ in range(3)]
    ns_fds = (("NEWUSER", null[0], "user"), ("NEWPID", null[1], "pid"),
              ("NEWNS", null[2], "mnt"))
    calls, said = run_child(
        dict(kind=child.EXEC, config=cfg, args=("/bin/true",), ns_fds=ns_fds, in_userns=True,
             fork_into_pid_ns=True, wait_cgroups=True),
        [sync.CGROUPS_JOINED, sync.RELEASE, sync.START])
    for fd in null:
        os.close(fd)
    assert said == [sync.SETUP_DONE]
    setns = [i for i, c in enumerate(calls) if c == "setns"]
    assert len(setns) == 3
    # non-dumpable before joining anything; the command's process is forked only after the
    # runtime said it put us in the cgroups (CGROUPS_JOINED was read before clone_parent)
    assert calls.index("prctl") < setns[0]
    assert setns[-1] < calls.index("clone_parent")
    assert "mount" not in calls and "pivot_root" not in calls
    assert calls.index("chdir") > calls.index("clone_parent")
    assert calls[-3:] == ["close_range", "reset_signals", "execve"]


def test_exec_kind_order_of_namespaces_is_user_then_mount_last():
    # the runtime opens them in this order; the child joins them as given
    from minins import namespaces

    order = namespaces.JOIN_ORDER
    assert order[0] == "NEWUSER" and order[-1] == "NEWNS"


def test_every_step_names_its_kinds():
    kinds = {k for _n, ks, _f in child.STEPS for k in ks}
    assert kinds == {child.INIT, child.EXEC}
    names = [n for n, _k, _f in child.STEPS]
    # the identity (user switch, capabilities) comes after mounts and labels, and closing
    # the descriptors is the very last step before the exec
    assert names.index("identity") > names.index("mounts")
    assert names[-1] == "close descriptors"


def test_plan_is_declared_whole_and_immutable():
    plan = process.Plan(kind=child.INIT)
    with pytest.raises(AttributeError):
        plan.kind = child.EXEC
    assert set(plan._fields) >= {"kind", "config", "args", "ns_fds", "exec_fifo",
                                 "parent_death_signal"}
    for name in plan._fields:
        assert "``%s``" % name in process.Plan.__doc__
