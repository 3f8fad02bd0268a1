"""A recording stand-in for minins.libc: composite logic can be run against it to observe the
order of system calls and to inject errnos. tests/test_libc.py keeps its method set equal to
the real module's public functions."""
from minins.errors import SyscallError


class FakeLibc:
    """Records ``(name, args)`` for every call; ``fail[name] = errno`` makes that call raise
    (``fail[(name, n)]`` only its n-th call, counting from 1)."""

    def __init__(self, results=None, fail=None):
        self.calls = []
        self.results = dict(results or {})
        self.fail = dict(fail or {})
        self._counts = {}

    def _call(self, name, *args, path=None):
        self.calls.append((name,) + args)
        n = self._counts[name] = self._counts.get(name, 0) + 1
        err = self.fail.get((name, n), self.fail.get(name))
        if err:
            raise SyscallError(err, name, path)
        return self.results.get(name)

    def names(self):
        return [c[0] for c in self.calls]

    def unshare(self, flags):
        return self._call("unshare", flags)

    def setns(self, fd, nstype=0, path=None):
        return self._call("setns", fd, nstype, path=path)

    def fork(self):
        return self._call("fork")

    def clone_parent(self, tid_addr=None):
        return self._call("clone_parent", tid_addr)

    def fork_into_cgroup(self, cgroup_fd):
        return self._call("fork_into_cgroup", cgroup_fd)

    def gettid(self):
        return self._call("gettid") or 1

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0, op=None):
        return self._call("prctl", option, arg2, arg3) or 0

    def pidfd_open(self, pid, flags=0):
        return self._call("pidfd_open", pid, flags)

    def pidfd_send_signal(self, pidfd, sig):
        return self._call("pidfd_send_signal", pidfd, sig)

    def close_range(self, first, last=0xFFFFFFFF, flags=0):
        return self._call("close_range", first, last, flags)

    def prlimit(self, pid, resource, limits=None):
        return self._call("prlimit", pid, resource, limits) or (0, 0)

    def capget(self, pid=0):
        return self._call("capget", pid) or (0, 0, 0)

    def capset(self, effective, permitted, inheritable):
        return self._call("capset", effective, permitted, inheritable)

    def setresuid(self, ruid, euid, suid):
        return self._call("setresuid", ruid, euid, suid)

    def setresgid(self, rgid, egid, sgid):
        return self._call("setresgid", rgid, egid, sgid)

    def setgroups(self, gids):
        return self._call("setgroups", tuple(gids))

    def sethostname(self, name):
        return self._call("sethostname", name)

    def setdomainname(self, name):
        return self._call("setdomainname", name)

    def personality(self, persona):
        return self._call("personality", persona)

    def mount(self, source, target, fstype, flags, data=None):
        return self._call("mount", source, target, fstype, flags, data, path=target)

    def umount2(self, target, flags=0):
        return self._call("umount2", target, flags, path=target)

    def pivot_root(self, new_root, put_old):
        return self._call("pivot_root", new_root, put_old, path=new_root)

    def chroot(self, path):
        return self._call("chroot", path, path=path)

    def mknod(self, path, mode, device, dir_fd=None):
        return self._call("mknod", path, mode, device, path=path)

    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        return self._call("openat2", dirfd, path, flags, resolve, path=path)

    def open_tree(self, dirfd, path, flags, name=None):
        return self._call("open_tree", dirfd, path, flags, path=name or path)

    def move_mount(self, from_fd, from_path, to_fd, to_path, flags, name=None):
        return self._call("move_mount", from_fd, from_path, to_fd, to_path, flags,
                          path=name or to_path)

    def fsopen(self, fstype, flags=1):
        return self._call("fsopen", fstype, flags, path=fstype)

    def fsconfig(self, fd, cmd, key=None, value=None, aux=0, name=None):
        return self._call("fsconfig", fd, cmd, key, value, aux, path=name)

    def fsmount(self, fd, flags, attr_flags, name=None):
        return self._call("fsmount", fd, flags, attr_flags, path=name)

    def mount_setattr(self, dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0,
                      name=None):
        return self._call("mount_setattr", dirfd, path, flags, attr_set, attr_clr,
                          propagation, path=name or path)

    def fstatfs_type(self, fd):
        return self._call("fstatfs_type", fd) or 0x9FA0

    def eventfd(self, initval=0, flags=0):
        return self._call("eventfd", initval, flags)

    def inotify_init1(self, flags=0):
        return self._call("inotify_init1", flags)

    def inotify_add_watch(self, fd, path, mask):
        return self._call("inotify_add_watch", fd, path, mask, path=path)

    def bpf(self, cmd, attr, op="bpf"):
        return self._call("bpf", cmd)

    def seccomp(self, operation, flags, arg, op="seccomp"):
        return self._call("seccomp", operation, flags) or 0

    def ioctl(self, fd, request, arg=0, op="ioctl", path=None):
        return self._call("ioctl", fd, request, arg, path=path)

    def reset_signals(self):
        return self._call("reset_signals")

    def setsid(self):
        return self._call("setsid")

    def chdir(self, path):
        return self._call("chdir", path, path=path)

    def dup2(self, fd, target):
        return self._call("dup2", fd, target)

    def execve(self, path, args, env):
        return self._call("execve", path, tuple(args), path=path)
