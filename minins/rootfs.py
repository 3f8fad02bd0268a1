"""The container's mount namespace: rootfs, system mounts, user mounts, devices, pivot_root.

Runs in the init, in its new mount namespace, in the order of libcontainer's
``InitializeMountNamespace`` (libcontainer-system.md section 2b step 9) and restrict_sys
(step 12), done right on a current kernel:

1. Bind sources opened (and, with the new mount API, copied detached: a ``slave`` volume keeps
   the host's peer group as its master); then ``/`` recursively private (slave with
   ``no_pivot_root``): nothing propagates to the host.
2. The rootfs as a mount of its own: a recursive copy put onto itself. When the rootfs *is*
   the current root (the default, host ``/``), the copy goes into a private staging tmpfs
   instead: pivot_root cannot pivot onto the root it is leaving. With ``readonly_fs`` it is
   made read-only (submounts included) at once, after an image got its mount points and
   working directory: our own mounts then stack on top, and nothing is ever written into
   the rootfs (a missing mount point in it is an EROFS error, not a directory made on the
   host).
3. System mounts (:func:`system_mounts`), user mounts (bind and tmpfs), device nodes, the
   ``/dev`` links, ``/dev/console``, the working directory (:func:`ensure_workdir`). Every
   target is resolved once inside the rootfs by :mod:`minins.fspath` and used only through
   that one handle (see "One handle per destination" below): an image's symlink can never
   redirect a mount onto the host, and a symlink swapped in during the start (runc's
   CVE-2021-30465) changes nothing.
4. ``restrict_sys`` (:func:`restrict`): ``/proc/sys`` and friends read-only, ``/proc/kcore``
   and the other usual paths masked -- below the /proc and /sys we hold, before pivot_root.
5. ``pivot_root(".", ".")`` and a lazy unmount of the old root (or MS_MOVE + chroot).
6. umask 0022.

The plan half (:func:`system_mounts`, :func:`device_plan`, :func:`mount_attrs`,
:func:`fs_options`, :data:`READONLY_PATHS`, :data:`MASKED_PATHS`) is pure; the rest applies
it through the libc layer.

Man pages: mount(2), mount_namespaces(7), pivot_root(2), mknod(2), proc(5), pts(4),
open_tree(2), move_mount(2), fsopen(2), fsconfig(2), fsmount(2), mount_setattr(2).
"""
import errno
import os
import stat

from . import fspath
from . import libc as _libc
from . import users as _users
from .config import (MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_MOVE, MS_NOATIME,
                     MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_NOSYMFOLLOW,
                     MS_POSIXACL, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT,
                     MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS, MountConfig)
from .errors import ConfigError, SyscallError

MNT_DETACH = 2

# Paths made read-only, and paths hidden, with restrict_sys (runc's and crun's defaults).
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")

DEV_LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
             ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))


class SysMount:
    """One system mount of the plan."""

    __slots__ = ("source", "dest", "fstype", "flags", "data", "fallback_bind", "readonly")

    def __init__(self, source, dest, fstype, flags, data=None, fallback_bind=False,
                 readonly=False):
        self.source, self.dest, self.fstype = source, dest, fstype
        self.flags, self.data, self.fallback_bind = flags, data, fallback_bind
        self.readonly = readonly  # made read-only per mount (a bind remount), not per
        # superblock: sysfs shares its superblock with the host's when the network
        # namespace is the host's, and asking for MS_RDONLY there is EBUSY

    def __repr__(self):
        return "SysMount(%r, %r, %r, %#x, %r)" % (self.source, self.dest, self.fstype,
                                                 self.flags, self.data)


def system_mounts(cfg, in_userns=False, gid5_mapped=True):
    """The system mounts for ``cfg``, in order (pure).

    ``fallback_bind`` marks the ones that a user namespace may refuse (sysfs without a network
    namespace of our own, mqueue without an ipc namespace): those are bound from the host
    instead, read-only.
    """
    nsd = MS_NOSUID | MS_NODEV
    label = _label_opt(cfg)
    pts = "newinstance,ptmxmode=0666,mode=0620" + (",gid=5" if gid5_mapped else "")
    sys_ro = cfg.restrict_sys or not cfg.has_namespace("NEWNET")
    plan = [
        SysMount("proc", "/proc", "proc", nsd | MS_NOEXEC),
        SysMount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"
                 + label),
        SysMount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, pts + label),
        SysMount("shm", "/dev/shm", "tmpfs", nsd | MS_NOEXEC, "mode=1777,size=65536k" + label),
        SysMount("mqueue", "/dev/mqueue", "mqueue", nsd | MS_NOEXEC,
                 fallback_bind=in_userns and not cfg.has_namespace("NEWIPC")),
        SysMount("sysfs", "/sys", "sysfs", nsd | MS_NOEXEC, readonly=sys_ro,
                 fallback_bind=in_userns and not cfg.has_namespace("NEWNET")),
    ]
    return plan


def _label_opt(cfg):
    mc = cfg.mount_config
    if mc is not None and mc.mount_label:
        return ',context="%s"' % mc.mount_label
    return ""


_NULL = None


def _devices_of(cfg):
    """The configured device nodes, plus /dev/null when restrict_sys needs it to mask files
    and the configuration has none."""
    mc = cfg.mount_config or MountConfig()
    nodes = tuple(mc.device_nodes)
    if cfg.restrict_sys and not any(d.path == "/dev/null" for d in nodes):
        from .config import DEFAULT_DEVICE_NODES

        nodes += tuple(d for d in DEFAULT_DEVICE_NODES if d.path == "/dev/null")
    return nodes


def mount_points(cfg):
    """``(destination, is_file)`` of every mount that goes directly on the rootfs (not below
    another of our mounts), in order: what must exist before the rootfs turns read-only."""
    mc = cfg.mount_config or MountConfig()
    out, planned = [], []
    wanted = [(p, False) for p in COVERED] if mc.system_mounts else []
    wanted += [(m.destination, m.type == "bind" and not os.path.isdir(m.source))
               for m in mc.mounts]
    for dest, as_file in wanted:
        norm = "/" + "/".join(c for c in dest.split("/") if c and c != ".")
        if not any(norm == p or norm.startswith(p.rstrip("/") + "/") for p in planned):
            out.append((norm, as_file))
        planned.append(norm)
    return out


def device_plan(cfg):
    """``(path, mode, devnum, uid, gid)`` for every device node to make (pure)."""
    out = []
    for d in _devices_of(cfg):
        kind = {ord("c"): stat.S_IFCHR, ord("p"): stat.S_IFIFO}.get(d.type, stat.S_IFBLK)
        dev = 0 if kind == stat.S_IFIFO else os.makedev(d.major_number, d.minor_number)
        out.append((d.path, kind | (d.file_mode & 0o7777), dev, d.uid, d.gid))
    return out


# --- applying the plan -----------------------------------------------------------------------
#
# One handle per destination (the class of runc's CVE-2021-30465). A destination is resolved
# once, inside the rootfs, to an O_PATH descriptor; everything done to it afterwards goes
# through that descriptor or through the descriptor of the mount made on it:
#
# * with the new mount API (Linux 5.12 for mount_setattr(2)), a mount is built detached --
#   open_tree(2) for a bind, fsopen(2)/fsmount(2) for a filesystem -- with its read-only
#   flag and its propagation set *before* move_mount(2) attaches it onto the descriptor; the
#   descriptor of the detached mount then names the attached one, for what comes later
#   (the masks under /proc, the nodes in /dev, a mount nested below another);
# * without it, mount(2) targets /proc/self/fd/N of the descriptor; the new mount is then
#   opened once by the path the kernel reports for that descriptor, and used only if it is
#   provably the mount just made (another mount id than the mount point's, the same path,
#   the source's inode for a bind); anything else fails the start (runc's reopenAfterMount).
#
# A destination below one of our own mounts is resolved from the descriptor of that mount,
# never from the rootfs again: no name above it is looked up twice. (A symlink met there is
# resolved inside that mount.)

_new_api = [None]  # None until probed: the kernel has open_tree/move_mount/mount_setattr


def _open_or_none(root, path):
    """``root.open(path)``, or ``None`` when it does not exist."""
    try:
        return root.open(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        return None


def _has_new_api(lc):
    if _new_api[0] is None:
        try:
            lc.mount_setattr(-1, "", _libc.AT_EMPTY_PATH)  # a no-op, or EBADF
            _new_api[0] = True
        except OSError as e:
            # ENOSYS before Linux 5.12; EPERM from seccomp profiles that predate the calls
            _new_api[0] = e.errno not in (errno.ENOSYS, errno.EPERM)
    return _new_api[0]


def _normalize(dest):
    """``/a/b`` for ``dest``, or ``None`` when it climbs with ``..`` (then no prefix of it
    can be trusted to name one of our mounts)."""
    parts = [c for c in dest.split("/") if c and c != "."]
    if ".." in parts:
        return None
    return "/" + "/".join(parts)


class _Root:
    """The rootfs while it is being set up: a descriptor of its root, its path (for messages
    and the fallback only), and the descriptor of the root of every mount made on it so
    far, by destination."""

    def __init__(self, fd, path):
        self.fd = fd
        self.path = path
        self.held = {}

    def _base(self, dest):
        norm = _normalize(dest)
        if norm is None:
            return self.fd, dest
        best = None
        for point in self.held:
            if (norm == point or norm.startswith(point + "/")) and \
                    (best is None or len(point) > len(best)):
                best = point
        if best is None:
            return self.fd, norm
        return self.held[best], norm[len(best):] or "."

    def open(self, dest, create=None, final_file=False, owner=None):
        """An O_PATH descriptor of ``dest``, resolved once inside the rootfs (from the
        deepest of our mounts above it); with ``create``, missing components are made
        (and given to ``owner``, a ``(uid, gid)``, when one is named)."""
        base, rel = self._base(dest)
        if create:
            return fspath.mkdir_all_in_root(base, rel, final_file=final_file, owner=owner)
        return fspath.open_in_root(base, rel)

    def hold(self, dest, fd):
        """Keep ``fd`` (the root of the mount made at ``dest``) for what goes below it."""
        norm = _normalize(dest)
        if norm is None:
            os.close(fd)
            return
        old = self.held.pop(norm, None)
        if old is not None:
            os.close(old)
        self.held[norm] = fd

    def close(self):
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()
        os.close(self.fd)


_ATTRS = ((MS_RDONLY, _libc.MOUNT_ATTR_RDONLY), (MS_NOSUID, _libc.MOUNT_ATTR_NOSUID),
          (MS_NODEV, _libc.MOUNT_ATTR_NODEV), (MS_NOEXEC, _libc.MOUNT_ATTR_NOEXEC),
          (MS_STRICTATIME, _libc.MOUNT_ATTR_STRICTATIME),
          (MS_NOATIME, _libc.MOUNT_ATTR_NOATIME), (MS_NODIRATIME, _libc.MOUNT_ATTR_NODIRATIME),
          (MS_NOSYMFOLLOW, _libc.MOUNT_ATTR_NOSYMFOLLOW))
# A superblock's flags as fsconfig(2) names them (the kernel's vfs_parse_sb_flag).
_SB_FLAGS = ((MS_SYNCHRONOUS, "sync"), (MS_DIRSYNC, "dirsync"), (MS_MANDLOCK, "mand"),
             (MS_LAZYTIME, "lazytime"), (MS_POSIXACL, "posixacl"))
_ATIME = MS_NOATIME | MS_RELATIME | MS_STRICTATIME


def mount_attrs(flags):
    """The MOUNT_ATTR_* bits for the per-mount MS_* ``flags`` (pure). MS_RELATIME is
    MOUNT_ATTR_RELATIME, which is 0: the kernel's default atime mode."""
    out = 0
    for ms, attr in _ATTRS:
        if flags & ms:
            out |= attr
    return out


def sb_flag_names(flags):
    """The fsconfig(2) flag names of the superblock flags among the MS_* ``flags`` (pure)."""
    return [name for ms, name in _SB_FLAGS if flags & ms]


def fs_options(data):
    """``[(key, value or None)]`` of a mount(2) data string, for fsconfig(2) (pure): commas
    split options except inside double quotes, which are dropped (``context="a,b"``)."""
    out, cur, quoted = [], [], False
    for ch in (data or "") + ",":
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            opt = "".join(cur)
            cur = []
            if opt:
                key, eq, value = opt.partition("=")
                out.append((key, value if eq else None))
        else:
            cur.append(ch)
    return out


_T_EMPTY = _libc.MOVE_MOUNT_F_EMPTY_PATH | _libc.MOVE_MOUNT_T_EMPTY_PATH


class _Mounter:
    """Mounts made onto descriptors (see above): each call takes the target's O_PATH
    descriptor and returns one of the root of the new mount (the caller closes both)."""

    def __init__(self, lc):
        self.lc = lc
        self.new_api = _has_new_api(lc)

    def clone(self, src, dest, recursive=True, readonly=False, propagation=MS_PRIVATE):
        """New API only: a detached copy of the mount tree at ``src``, made read-only and
        given its propagation while nobody can see it."""
        lc = self.lc
        flags = _libc.OPEN_TREE_CLONE | _libc.OPEN_TREE_CLOEXEC | _libc.AT_EMPTY_PATH
        rec = _libc.AT_RECURSIVE if recursive else 0
        tree = lc.open_tree(src, "", flags | rec, name=dest)
        try:
            self.change(tree, dest, readonly, propagation, recursive)
        except BaseException:
            os.close(tree)
            raise
        return tree

    def attach(self, tree, target, dest):
        """Put the detached ``tree`` onto ``target`` (new API)."""
        self.lc.move_mount(tree, "", target, "", _T_EMPTY, name=dest)

    def bind(self, src, target, dest, recursive=True, readonly=False, propagation=MS_PRIVATE):
        """A bind of ``src`` onto ``target``, read-only (with its submounts) when asked."""
        if self.new_api:
            tree = self.clone(src, dest, recursive, readonly, propagation)
            try:
                self.attach(tree, target, dest)
            except BaseException:
                os.close(tree)
                raise
            return tree
        self._mount(fspath.fd_path(src), target, None, MS_BIND | (MS_REC if recursive else 0),
                    None, dest)
        st = os.fstat(src)
        new = _reopen(target, dest, (st.st_dev, st.st_ino))
        try:
            self.change(new, dest, readonly, propagation, recursive)
        except BaseException:
            os.close(new)
            raise
        return new

    def filesystem(self, fstype, source, flags, data, target, dest, readonly=False):
        """A new ``fstype`` mount onto ``target``; ``readonly`` makes the mount (not the
        superblock, which sysfs may share with the host's) read-only."""
        lc = self.lc
        if not self.new_api:
            self._mount(source, target, fstype, flags, data, dest)
            new = _reopen(target, dest)
            try:
                if readonly and not flags & MS_RDONLY:
                    self.change(new, dest, readonly=True)
            except BaseException:
                os.close(new)
                raise
            return new
        try:
            ctx = lc.fsopen(fstype)
        except SyscallError as e:
            raise SyscallError(e.errno, "mount", dest, fstype) from None
        try:
            lc.fsconfig(ctx, _libc.FSCONFIG_SET_STRING, "source", source, name=dest)
            for key, value in fs_options(data) + [(n, None) for n in sb_flag_names(flags)]:
                if value is None:
                    lc.fsconfig(ctx, _libc.FSCONFIG_SET_FLAG, key, name=dest)
                else:
                    lc.fsconfig(ctx, _libc.FSCONFIG_SET_STRING, key, value, name=dest)
            lc.fsconfig(ctx, _libc.FSCONFIG_CMD_CREATE, name=dest)
            attrs = mount_attrs(flags | (MS_RDONLY if readonly else 0))
            mnt = lc.fsmount(ctx, _libc.FSMOUNT_CLOEXEC, attrs, name=dest)
        except SyscallError as e:
            raise SyscallError(e.errno, "mount", dest, e.detail) from None
        finally:
            os.close(ctx)
        try:
            self.attach(mnt, target, dest)
        except BaseException:
            os.close(mnt)
            raise
        return mnt

    def change(self, mnt, dest, readonly=False, propagation=0, recursive=False):
        """Make the mount whose root is ``mnt`` read-only and/or give it ``propagation``."""
        if not (readonly or propagation):
            return
        lc = self.lc
        try:
            if self.new_api:
                lc.mount_setattr(mnt, "", _libc.AT_EMPTY_PATH | (_libc.AT_RECURSIVE
                                                                 if recursive else 0),
                                 _libc.MOUNT_ATTR_RDONLY if readonly else 0, 0, propagation,
                                 name=dest)
                return
            if readonly:
                lc.mount(None, fspath.fd_path(mnt), None,
                         MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags(mnt))
                if recursive:
                    _make_readonly(fspath.real_path(mnt), lc, skip=())
            if propagation:
                lc.mount(None, fspath.fd_path(mnt), None,
                         propagation | (MS_REC if recursive else 0))
        except SyscallError as e:
            raise SyscallError(e.errno, "remount read-only" if readonly else "mount", dest,
                               e.detail) from None

    def _mount(self, source, target, fstype, flags, data, dest):
        try:
            self.lc.mount(source, fspath.fd_path(target), fstype, flags, data)
        except SyscallError as e:
            raise SyscallError(e.errno, "mount", dest) from None


def _reopen(target, dest, inode=None):
    """Fallback only: the root of the mount just made on ``target``, opened by the path the
    kernel reports for ``target``, and refused unless it is provably that mount."""
    moved = SyscallError(errno.EXDEV, "mount", dest, "the mount point was moved while the "
                         "container was set up")
    path = fspath.real_path(target)
    try:
        new = os.open(path, fspath.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise moved from None  # the name the kernel gave is gone already
        raise SyscallError(e.errno, "open", dest) from None
    st = os.fstat(new)
    ok = _mount_id(new) != _mount_id(target) and fspath.real_path(new) == path and \
        (inode is None or (st.st_dev, st.st_ino) == inode)
    if not ok:
        os.close(new)
        raise moved
    return new


def setup(ctx):
    """Set up the whole mount namespace of the init (see the module docstring)."""
    cfg, lc = ctx.config, ctx.lc
    mc = cfg.mount_config or MountConfig()
    rootfs = os.path.realpath(cfg.root_fs or ".")
    if mc.mount_label:
        _require_selinux("mount_config.mount_label")
    # Host paths are opened first, in this (new) mount namespace -- a bind source must be
    # in the caller's mount namespace -- before staging could cover one of them and out of
    # reach of a symlink swapped in later.
    sources = open_sources(cfg, ctx.in_userns, ctx.console_path, ctx.sources)
    root = None
    try:
        m = _Mounter(lc)
        # Every bind is copied from its source in the config's order, after the rootfs
        # (mountinfo lists a namespace's mounts by their creation since Linux 6.8: a copy
        # taken earlier would be listed before / itself, runtime-tools' "mounts"). A
        # "slave" volume is bound from our copy of the source's mount: that copy must stay
        # a slave of the host's (the rootfs is then made private on its own).
        # An OCI rootfsPropagation of (r)slave: the rootfs is copied while / is a slave, so
        # that it stays a slave of the host's peer group (runc makes / rslave the same way).
        root_slave = bool(mc.rootfs_propagation & MS_SLAVE)
        slave = mc.no_pivot_root or root_slave or \
            any(x.slave or _oci_slave(x) for x in mc.mounts)
        lc.mount(None, "/", None, MS_REC | (MS_SLAVE if slave else MS_PRIVATE))
        root = _open_rootfs(rootfs, cfg, m)
        if slave and not mc.no_pivot_root and not root_slave:
            m.change(root.fd, "/", propagation=MS_PRIVATE, recursive=True)
        _system_mounts(ctx, root, m)
        _user_mounts(ctx, root, mc, sources, m)
        if _setup_dev(mc):
            _devices(ctx, root, sources, m)
            _dev_links(ctx, root, sources, m)
        ensure_workdir(root, cfg)
        if cfg.sysctl:
            write_sysctls(root, cfg.sysctl, lc)
        if cfg.restrict_sys or cfg.masked_paths or cfg.readonly_paths:
            restrict(root, m, READONLY_PATHS if cfg.readonly_paths is None
                     else cfg.readonly_paths,
                     MASKED_PATHS if cfg.masked_paths is None else cfg.masked_paths)
        _reopen_dev_null(root)
        _enter(root, mc, lc)
        if mc.rootfs_propagation:
            lc.mount(None, "/", None, mc.rootfs_propagation)
    finally:
        close_sources(sources)
        if root is not None:
            root.close()
    os.umask(0o022)


def _setup_dev(mc):
    """Whether the runtime makes /dev's nodes and links: not when /dev is bound from
    elsewhere (runc's needsSetupDev)."""
    return not any(m.type == "bind" and _normalize(m.destination) == "/dev"
                   for m in mc.mounts)


PROC_SUPER_MAGIC = 0x9FA0


def write_sysctls(root, sysctl, lc):
    """Write each ``name=value`` to /proc/sys/<name with / for .>, through the proc mount we
    hold at /proc (checked to be a procfs: never a file an image put there), before
    readonlyPaths turns /proc/sys read-only (runc's order)."""
    proc = root.held.get("/proc")
    if proc is None or lc.fstatfs_type(proc) != PROC_SUPER_MAGIC:
        raise ConfigError("sysctl", "writing sysctls needs a proc mount at /proc")
    for item in sysctl:
        name, _, value = item.partition("=")
        rel = "sys/" + name.replace(".", "/")
        try:
            fd = os.open(rel, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=proc)
        except OSError as e:
            raise SyscallError(e.errno, "open", "/proc/" + rel, "sysctl " + name) from None
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise SyscallError(e.errno, "write", "/proc/" + rel, "sysctl %s=%s"
                               % (name, value)) from None
        finally:
            os.close(fd)


def _oci_slave(mnt):
    return mnt.oci and any(p & ~MS_REC == MS_SLAVE for p in mnt.propagation)


def _open_rootfs(rootfs, cfg, m):
    """The rootfs as a mount of its own (what pivot_root needs), read-only at once with
    ``readonly_fs``; a :class:`_Root` of it."""
    mc = cfg.mount_config or MountConfig()
    try:
        fd = os.open(rootfs, fspath.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno, "open rootfs", rootfs) from None
    try:
        st, top = os.fstat(fd), os.stat("/")
        host_root = (st.st_dev, st.st_ino) == (top.st_dev, top.st_ino)
        if m.new_api:
            tree = m.clone(fd, "/", propagation=0)
            try:
                path = _stage(m.lc) if host_root else rootfs
                if host_root:
                    m.lc.move_mount(tree, "", -100, path, _libc.MOVE_MOUNT_F_EMPTY_PATH,
                                    name=path)  # AT_FDCWD
                else:
                    m.attach(tree, fd, rootfs)
            except BaseException:
                os.close(tree)
                raise
            root = _Root(tree, path)
        else:
            path = _bind_rootfs(rootfs, host_root, m.lc)
            root = _Root(os.open(path, fspath.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), path)
    finally:
        os.close(fd)
    try:
        if mc.readonly_fs:
            # Read-only from the start, so nothing is ever written into the rootfs after
            # this. An image gets its mount points (and working directory) made first, as
            # every runtime does; the host's own / gets none (they would be made on the
            # host): a missing one is an EROFS error there.
            if not host_root:
                for point, as_file in mount_points(cfg):
                    os.close(root.open(point, create="dir", final_file=as_file))
                if not _below_a_mount(cfg, cfg.working_dir or "/"):
                    ensure_workdir(root, cfg)
            if m.new_api:
                m.change(root.fd, "/", readonly=True, recursive=True)
            else:
                _make_readonly(root.path, m.lc)
    except BaseException:
        root.close()
        raise
    return root


def _stage(lc):
    """A private tmpfs to hold a copy of the host's / (pivot_root cannot pivot onto the
    root it is leaving); the path to put it at."""
    for base in ("/tmp", "/run", "/mnt", "/dev"):
        if os.path.isdir(base) and not os.path.islink(base):
            break
    else:
        raise SyscallError(errno.ENOENT, "stage the rootfs", "/tmp")
    lc.mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=4k")
    staged = base + "/.minins-root"
    os.mkdir(staged, 0o755)
    return staged


def _bind_rootfs(rootfs, host_root, lc):
    """Fallback: the rootfs bound onto itself, or the host's / into a staging tmpfs."""
    if not host_root:
        lc.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
        return rootfs
    # The staging tmpfs's own copy inside the tree is dropped so the container sees the
    # host's directory there, not the staging area.
    staged = _stage(lc)
    base = os.path.dirname(staged)
    lc.mount("/", staged, None, MS_BIND | MS_REC)
    lc.umount2(staged + base, MNT_DETACH)
    return staged


def _below_a_mount(cfg, path):
    """Whether ``path`` is at or below a mount of the plan (pure): what is made there goes
    into that mount, not into the rootfs."""
    norm = _normalize(path)
    if norm is None:
        return False
    mc = cfg.mount_config or MountConfig()
    for dest in COVERED + tuple(m.destination for m in mc.mounts):
        point = _normalize(dest)
        if point is not None and (norm == point or norm.startswith(point.rstrip("/") + "/")):
            return True
    return False


def _mountinfo():
    """``[(mount_id, mountpoint, per-mount options)]`` of this mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            out.append((int(fields[0]), _unescape(fields[4]), fields[5].split(",")))
    return out


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


_OPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
# Our system mounts cover these; what the rootfs had mounted below them is never seen.
COVERED = ("/proc", "/dev", "/sys")


def _mounts_under(path, skip=()):
    """``[(mount_id, mountpoint, options)]`` at or below ``path``, minus those at or below
    one of ``skip`` (paths relative to ``path``)."""
    path = path.rstrip("/") or "/"
    prefix = "" if path == "/" else path
    skipped = tuple(prefix + s for s in skip)
    out = []
    for mid, point, opts in _mountinfo():
        if not (point == path or point.startswith(prefix + "/")):
            continue
        if any(point == s or point.startswith(s + "/") for s in skipped):
            continue
        out.append((mid, point, opts))
    return out


def _flags_of(opts):
    """The per-mount flags a bind remount must keep (the kernel locks them in a user
    namespace, and keeping them is right everywhere)."""
    flags = 0
    for opt in opts:
        flags |= _OPT_FLAGS.get(opt, 0)
    return flags


def _system_mounts(ctx, root, m):
    cfg = ctx.config
    if not (cfg.mount_config or MountConfig()).system_mounts:
        return  # an OCI spec lists every mount itself
    for sm in system_mounts(cfg, ctx.in_userns, ctx.gid5_mapped):
        target = root.open(sm.dest, create="dir")
        try:
            try:
                mnt = m.filesystem(sm.fstype, sm.source, sm.flags, sm.data, target, sm.dest,
                                   readonly=sm.readonly)
            except SyscallError as e:
                mnt = _system_mount_failed(ctx, root, m, sm, target, e)
            if mnt is not None:
                root.hold(sm.dest, mnt)
        finally:
            os.close(target)


def _system_mount_failed(ctx, root, m, sm, target, e):
    """What to do when a system mount is refused; the root of the mount that stands in for
    it, or ``None``."""
    if e.errno == errno.EBUSY:
        # (mount(2) only) The very same superblock is already mounted there (sysfs or
        # mqueue of the host's namespace, in a rootfs bound from the host's /): keep that
        # mount, and with it whatever the host has below it -- read-only too, when asked.
        mnt = os.dup(target)
        m.change(mnt, sm.dest, readonly=sm.readonly, recursive=True)
        return mnt
    if not (sm.fallback_bind and e.errno == errno.EPERM):
        raise e
    try:  # the host's own, bound read-only instead
        src = os.open(sm.dest, fspath.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None  # the host has none to lend either
    try:
        return m.bind(src, target, sm.dest, readonly=True)
    finally:
        os.close(src)


def _locked_flags(fd):
    """nosuid/nodev/noexec of the mount ``fd`` is on: a remount inside a user namespace must
    keep them (the kernel locks them), and keeping them is right everywhere."""
    st = os.statvfs(fspath.fd_path(fd))
    flags = 0
    if st.f_flag & os.ST_NOSUID:
        flags |= MS_NOSUID
    if st.f_flag & os.ST_NODEV:
        flags |= MS_NODEV
    if st.f_flag & getattr(os, "ST_NOEXEC", 8):
        flags |= MS_NOEXEC
    return flags


def mount_field(mnt, i):
    """The configuration field that names mount ``i`` in an error: the OCI spec's
    ``mounts[i]`` for an OCI mount, ``mount_config.mounts[i]`` else."""
    return ("mounts[%d]" if mnt.oci else "mount_config.mounts[%d]") % i


def open_sources(cfg, in_userns, console_path=None, given=None):
    """O_PATH descriptors of every host path the setup will bind: user bind sources (by
    mount index), the host's device nodes in a user namespace (by path), the console.
    ``given`` are sources already opened for us (by the runtime's helper, see
    :mod:`minins.container`)."""
    mc = cfg.mount_config or MountConfig()
    sources = dict(given or {})
    try:
        for i, m in enumerate(mc.mounts):
            if m.type != "bind" or i in sources:
                continue
            if m.relabel:
                _require_selinux("mount_config.mounts[%d].relabel" % i)
            try:
                sources[i] = os.open(m.source, fspath.O_PATH | os.O_CLOEXEC)
            except OSError as e:
                raise ConfigError(mount_field(m, i) + ".source", "cannot use %s: %s"
                                  % (m.source, e.strerror)) from None
        if in_userns:
            for d in _devices_of(cfg):
                try:
                    sources[d.path] = os.open(d.path, fspath.O_PATH | os.O_CLOEXEC)
                except OSError:
                    pass  # no such node on the host: mknod's own error will say so
        if console_path:
            sources["console"] = os.open(console_path, fspath.O_PATH | os.O_CLOEXEC)
    except BaseException:
        close_sources(sources)
        raise
    return sources


def close_sources(sources):
    for fd in sources.values():
        os.close(fd)
    sources.clear()


def _user_mounts(ctx, root, mc, sources, m):
    for i, mnt in enumerate(mc.mounts):
        field = mount_field(mnt, i)
        src = sources.get(i)
        is_file = src is not None and not stat.S_ISDIR(os.fstat(src).st_mode)
        try:
            target = root.open(mnt.destination, create="dir", final_file=is_file)
        except OSError as e:
            raise _no_mount_point(e, mnt.destination, field + ".destination") from None
        try:
            if mnt.oci:
                root.hold(mnt.destination, _oci_mount(ctx, root, m, mnt, field, src, target))
                continue
            _refuse_kernel_fs(root, target, field, mnt.destination)
            propagation = MS_SLAVE if mnt.slave else MS_PRIVATE
            if mnt.type == "tmpfs":
                data = ",".join(x for x in (mnt.data, _label_opt(ctx.config).lstrip(","))
                                if x)
                new = m.filesystem("tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, data or None,
                                   target, mnt.destination, readonly=not mnt.writable)
            else:
                new = m.bind(src, target, mnt.destination, readonly=not mnt.writable,
                             propagation=propagation)
            root.hold(mnt.destination, new)
        finally:
            os.close(target)


# Files below /proc a bind may cover (runc's checkProcMount: what lxcfs provides).
PROC_BIND_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                     "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
                     "/proc/net/dev", "/proc/sys/kernel/ns_last_pid")
_BIND_KEEP = MS_BIND | MS_REC | MS_REMOUNT
_PER_MOUNT = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | _ATIME | MS_NODIRATIME | \
    MS_NOSYMFOLLOW


def _oci_mount(ctx, root, m, mnt, field, src, target):
    """One OCI mount, exactly as listed (runc's mountToRootfs), onto ``target``; the root
    of the new mount. A bind takes the per-mount flags of its options (a remount, as
    runc's; with the new API set on the detached copy before it is attached); a filesystem
    gets its flags and data; then each propagation change, in order."""
    flags, dest = mnt.flags, mnt.destination
    if mnt.type == "bind":
        if _normalize(dest) not in PROC_BIND_ALLOWED:
            _refuse_kernel_fs(root, target, field, dest, ("/proc",))
        # private (or a slave of the host's for a "slave" option) until its own
        # propagation changes below
        rec = bool(flags & MS_REC)
        prop = MS_SLAVE if _oci_slave(mnt) else MS_PRIVATE
        if m.new_api:
            new = m.clone(src, dest, recursive=rec, propagation=prop)
            try:
                _set_bind_attrs(m, new, dest, flags)
                m.attach(new, target, dest)
            except BaseException:
                os.close(new)
                raise
        else:
            new = m.bind(src, target, dest, recursive=rec, propagation=prop)
            try:
                if flags & ~_BIND_KEEP:
                    _bind_remount(m, new, dest, flags)
            except BaseException:
                os.close(new)
                raise
    elif flags & MS_REMOUNT:
        # the mount already at the destination (one listed before), given new flags
        m._mount(None, target, None, flags, mnt.data or None, dest)
        new = os.dup(target)
    else:
        fstype = mnt.type
        data = ",".join(x for x in (mnt.data, _label_opt(ctx.config).lstrip(",")) if x)
        below = None
        if mnt.copy_up:  # what the tmpfs will cover, opened before it does
            below = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)
        try:
            if fstype == "cgroup":
                new = _cgroup_mount(ctx, root, m, mnt, target)
            else:
                new = m.filesystem(fstype, mnt.source or fstype, flags & ~MS_RDONLY,
                                   data or None, target, dest,
                                   readonly=bool(flags & MS_RDONLY) and not mnt.copy_up)
            if below is not None:
                try:
                    copy_tree(below, new, dest)
                    if flags & MS_RDONLY:
                        m.change(new, dest, readonly=True)
                except BaseException:
                    os.close(new)
                    raise
        finally:
            if below is not None:
                os.close(below)
    try:
        if mnt.rec_attr_set or mnt.rec_attr_clr:
            # runtime-spec 1.1's rro, rnosuid, ...: only mount_setattr(2) does this
            m.lc.mount_setattr(new, "", _libc.AT_EMPTY_PATH | _libc.AT_RECURSIVE,
                               mnt.rec_attr_set, mnt.rec_attr_clr, 0, name=dest)
        for p in mnt.propagation:
            m.change(new, dest, propagation=p & ~MS_REC, recursive=bool(p & MS_REC))
    except BaseException:
        os.close(new)
        raise
    return new


def copy_tree(src, dst, name):
    """Copy the directory ``src`` (an fd open for reading) into ``dst`` (an O_PATH fd of a
    directory): files, directories, symlinks, FIFOs and device nodes, with their mode and
    owner, never following a symlink (runc's tmpcopyup). Raises SyscallError naming ``name``
    and the entry."""
    for entry in os.scandir(src):
        path = name.rstrip("/") + "/" + entry.name
        try:
            st = entry.stat(follow_symlinks=False)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(entry.name, 0o700, dir_fd=dst)
                s2 = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=src)
                d2 = os.open(entry.name, fspath.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=dst)
                try:
                    copy_tree(s2, d2, path)
                finally:
                    os.close(s2)
                    os.close(d2)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.name, dir_fd=src), entry.name, dir_fd=dst)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(src, dst, entry.name)
            else:
                os.mknod(entry.name, st.st_mode, st.st_rdev, dir_fd=dst)
            os.chown(entry.name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(entry.name, mode, dir_fd=dst)
        except OSError as e:
            if isinstance(e, SyscallError):
                raise
            raise SyscallError(e.errno, "copy up", path) from None


def _copy_file(src, dst, name):
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dst)
        try:
            while True:
                chunk = os.read(fin, 1 << 20)
                if not chunk:
                    break
                while chunk:
                    chunk = chunk[os.write(out, chunk):]
        finally:
            os.close(out)
    finally:
        os.close(fin)


def _bind_remount(m, mnt, dest, flags):
    """Give the bind ``mnt`` the per-mount flags of ``flags`` (mount(2) fallback)."""
    m._mount(None, mnt, None, MS_BIND | MS_REMOUNT | (flags & _PER_MOUNT) | _locked_flags(mnt),
             None, dest)


def _set_bind_attrs(m, tree, dest, flags):
    """New API: the per-mount flags of ``flags`` set on the detached copy ``tree`` (the
    ones the source has stay, as with a bind remount that the kernel locks)."""
    attrs = mount_attrs(flags & _PER_MOUNT)
    clear = _libc.MOUNT_ATTR__ATIME if flags & _ATIME else 0
    if attrs or clear:
        m.lc.mount_setattr(tree, "", _libc.AT_EMPTY_PATH, attrs, clear, 0, name=dest)


def _cgroup_mount(ctx, root, m, mnt, target):
    """The OCI ``cgroup`` mount (runc's mountCgroupV1/V2). cgroup v2: a cgroup2 filesystem
    with a cgroup namespace (its root is the container's cgroup), our own cgroup of the
    host's hierarchy bound without one. v1: a tmpfs holding, for every hierarchy, the
    container's own cgroup of it: a cgroup filesystem of that hierarchy with a cgroup
    namespace, bound from the host's without one. Then read-only as asked."""
    cgns = bool(ctx.config.clone_flags() & 0x02000000)  # CLONE_NEWCGROUP, unshared already
    flags, dest = mnt.flags, mnt.destination
    ro = bool(flags & MS_RDONLY)
    per = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    probe = os.open("/sys/fs/cgroup", fspath.O_PATH | os.O_CLOEXEC)
    try:
        v2 = m.lc.fstatfs_type(probe) == CGROUP2_SUPER_MAGIC
    finally:
        os.close(probe)
    if v2 and cgns:
        return m.filesystem("cgroup2", "cgroup", per, None, target, dest, readonly=ro)
    if v2:  # our own cgroup of the host's hierarchy (runc's mountCgroupV2 without cgroupns)
        src = os.open("/sys/fs/cgroup" + _own_v2_cgroup(), fspath.O_PATH | os.O_DIRECTORY
                      | os.O_CLOEXEC)
        try:
            return m.bind(src, target, dest, recursive=False, readonly=ro, propagation=0)
        finally:
            os.close(src)
    new = m.filesystem("tmpfs", "tmpfs", per, "mode=755", target, dest)
    try:
        for name, host_dir, opts in _own_v1_cgroups():
            sub = fspath.mkdir_all_in_root(new, name)
            try:
                if cgns:
                    data = ",".join(o for o in opts if o not in ("rw", "ro"))
                    os.close(m.filesystem("cgroup", "cgroup", per, data, sub,
                                          dest + "/" + name, readonly=ro))
                    continue
                src = os.open(host_dir, fspath.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.close(m.bind(src, sub, dest + "/" + name, recursive=False,
                                    readonly=ro, propagation=0))
                finally:
                    os.close(src)
            finally:
                os.close(sub)
            for alias in name.split(",") if "," in name else ():
                os.symlink(name, alias, dir_fd=new)
        if ro:
            m.change(new, dest, readonly=True)
    except OSError as e:
        os.close(new)
        if isinstance(e, SyscallError):
            raise
        raise SyscallError(e.errno, "mount cgroup", dest) from None
    except BaseException:
        os.close(new)
        raise
    return new


CGROUP2_SUPER_MAGIC = 0x63677270


def _own_v2_cgroup():
    """Our cgroup in the v2 hierarchy ("/..." of /proc/self/cgroup's ``0::`` line)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n").rstrip("/")
    raise SyscallError(errno.ENOENT, "find our cgroup", "/proc/self/cgroup")


def _own_v1_cgroups():
    """``[(hierarchy dir name, host path of our cgroup in it, its superblock options)]`` of
    every cgroup v1 hierarchy mounted under the host's /sys/fs/cgroup (read before
    pivot_root, in our new mount namespace, which still shows the host's mounts)."""
    ours = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers:
                ours[controllers] = path
    out = []
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    for row in rows:
        point = _unescape(row[4])
        tail = row[row.index("-") + 1:]
        if tail[0] != "cgroup" or not point.startswith("/sys/fs/cgroup/"):
            continue
        name = point[len("/sys/fs/cgroup/"):]
        if "/" in name:
            continue
        key = name if name in ours else "name=" + name if "name=" + name in ours else None
        if key is None:
            continue
        out.append((name, point + ours[key].rstrip("/") if ours[key] != "/" else point,
                    tail[2].split(",")))
    return out


def _refuse_kernel_fs(root, fd, field, destination, kernel_fs=("/proc", "/sys")):
    """A volume may not land on the container's /proc or /sys, wherever an image symlink
    points it: restrict_sys and the LSM labels rely on them being the kernel's (the class of
    runc's CVE-2019-19921)."""
    for kernel in kernel_fs:
        held = root.held.get(kernel)
        if held is not None and _same_mount_or_below(fd, held):
            raise ConfigError(field + ".destination", "%s resolves to %s inside the rootfs; "
                              "mounting over %s is refused" % (destination, kernel, kernel))


def _same_mount_or_below(fd, top):
    """Whether ``fd`` is on the mount whose root is ``top``, or on a mount below it."""
    real, base = fspath.real_path(fd), fspath.real_path(top)
    return real == base or real.startswith(base.rstrip("/") + "/")


def _devices(ctx, root, sources, m):
    lc = ctx.lc
    old = os.umask(0)
    try:
        for path, mode, dev, uid, gid in device_plan(ctx.config):
            parent, name = os.path.split(path)
            pfd = root.open(parent, create="dir")
            try:
                try:
                    lc.mknod(name, mode, dev, dir_fd=pfd)
                except SyscallError as e:
                    if e.errno == errno.EEXIST:
                        pass
                    elif e.errno == errno.EPERM and path in sources:
                        # mknod is refused in a user namespace: bind the host's node.
                        _bind_file(root, m, sources[path], path)
                        continue
                    else:
                        raise SyscallError(e.errno, "mknod", path) from None
                os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(pfd)
    finally:
        os.umask(old)


def _bind_file(root, m, src, dest):
    target = root.open(dest, create="dir", final_file=True)
    try:
        os.close(m.bind(src, target, dest, recursive=False, propagation=0))
    finally:
        os.close(target)


def _dev_links(ctx, root, sources, m):
    links = DEV_LINKS + (("pts/ptmx", "/dev/ptmx"),)
    if os.path.exists("/proc/kcore"):
        links += (("/proc/kcore", "/dev/core"),)
    dfd = root.open("/dev")
    try:
        for target, link in links:
            name = link[len("/dev/"):]
            try:
                os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                pass
            os.symlink(target, name, dir_fd=dfd)
    except OSError as e:
        raise SyscallError(e.errno, "symlink", e.filename or "/dev") from None
    finally:
        os.close(dfd)
    if "console" in sources:
        _bind_file(root, m, sources["console"], "/dev/console")
    elif ctx.console is not None:
        # The terminal comes from the container's own devpts (runc's way): its slave is a
        # /dev/pts/N the container sees, and /dev/console is that slave.
        from . import console

        pts = root.open("/dev/pts")
        try:
            ctx.pty = console.open_pty_in(pts, ctx.lc)
        finally:
            os.close(pts)
        _bind_file(root, m, ctx.pty[1], "/dev/console")


def ensure_workdir(root, cfg):
    """Create ``cfg.working_dir`` inside the rootfs when it is missing, as runc and crun do:
    each missing directory mode 0755, owned by the process's user (looked up in the
    rootfs's ``/etc/passwd`` and ``/etc/group``). Resolved inside the root like every mount
    destination (a symlink in the image cannot lead it onto the host); nothing happens when
    it exists. Raises SyscallError("mkdir", working_dir) when it cannot be made."""
    path = cfg.working_dir or "/"
    try:
        fd = _open_or_none(root, path)
        if fd is not None:
            os.close(fd)
            return
        os.close(root.open(path, create="dir", owner=_user_ids(root, cfg)))
    except OSError as e:
        raise _no_mount_point(e, path, "working_dir") from None


def _no_mount_point(exc, path, field):
    """The error for a directory ``path`` (named by config ``field``) that could not be made
    in the rootfs: on a read-only rootfs (the host's own /, by default) it says so, and the
    way out."""
    if exc.errno == errno.EROFS:
        detail = ("%s: the rootfs is read-only and has no %s: use a path that exists in it "
                  "(or lies in one of its tmpfs, like /tmp), or give --rootfs" % (field, path))
    else:
        detail = "%s: cannot make it" % field
    return SyscallError(exc.errno, "mkdir", path, detail)


def _user_ids(root, cfg):
    """``(uid, gid)`` of the configured user in the rootfs's passwd and group files."""
    def read(name):
        try:
            fd = root.open(name)
        except OSError:
            return ""
        try:
            return _users.read_small(fspath.fd_path(fd))
        finally:
            os.close(fd)

    user = _users.resolve_user(cfg.user, read("/etc/passwd"), read("/etc/group"),
                               cfg.additional_groups)
    return user.uid, user.gid


def _enter(root, mc, lc):
    os.fchdir(root.fd)
    if mc.no_pivot_root:
        lc.mount(".", "/", None, MS_MOVE)
        lc.chroot(".")
    elif mc.pivot_dir:
        _pivot_through(root, mc.pivot_dir, lc)
    else:
        # The old root is stacked on top of the new one, then lazily detached: no directory
        # needed, so this works on a read-only rootfs.
        lc.pivot_root(".", ".")
        lc.umount2(".", MNT_DETACH)
    os.chdir("/")


def _pivot_through(root, pivot_dir, lc):
    """pivot_root with the old root put in a fresh directory under ``pivot_dir`` (which the
    configuration makes writable for a read-only rootfs), made inside the rootfs."""
    base = root.open(pivot_dir, create="dir")
    try:
        name = ".pivot_root%s" % os.urandom(4).hex()
        os.mkdir(name, 0o700, dir_fd=base)
        where = fspath.real_path(base).rstrip("/") + "/" + name
    finally:
        os.close(base)
    rootfs = fspath.real_path(root.fd)
    lc.pivot_root(".", where)
    inside = "/" + os.path.relpath(where, rootfs)
    os.chdir("/")
    lc.umount2(inside, MNT_DETACH)
    os.rmdir(inside)


def _reopen_dev_null(root):
    """stdio that was the host's /dev/null becomes the container's (seed step 9.7), opened
    through the container's /dev we hold (never by a path the image could redirect)."""
    dev = _open_or_none(root, "/dev")
    if dev is None:
        return
    try:
        try:
            new = os.open("null", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
        except OSError:
            return
    finally:
        os.close(dev)
    try:
        null = os.fstat(new)
        if not stat.S_ISCHR(null.st_mode):
            return
        for fd in (0, 1, 2):
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev and \
                    (st.st_dev, st.st_ino) != (null.st_dev, null.st_ino):
                os.dup2(new, fd)
    finally:
        os.close(new)


def _make_readonly(top, lc, skip=COVERED):
    """Fallback only: remount read-only every mount at or below ``top`` that is visible at
    its mount point (a hidden, stacked one needs nothing), except below the paths our own
    mounts cover. Each is opened without following a symlink and used only when its mount
    id is the one mountinfo lists there."""
    for mid, point, opts in _mounts_under(top, skip):
        if "ro" in opts:
            continue
        try:
            fd = os.open(point, fspath.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if _mount_id(fd) == mid:
                lc.mount(None, fspath.fd_path(fd), None,
                         MS_BIND | MS_REMOUNT | MS_RDONLY | _flags_of(opts))
        finally:
            os.close(fd)


def _mount_id(fd):
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    return None


def restrict(root, m, readonly_paths=READONLY_PATHS, masked_paths=MASKED_PATHS):
    """restrict_sys (or an OCI spec's readonlyPaths and maskedPaths): the kernel tunables
    read-only, the sensitive files hidden. Done before pivot_root, below the /proc and /sys
    mounts we hold: never through the container's own /proc, whose name in the rootfs an
    image's owner could swap for a decoy. A path that does not exist is skipped (runc too)."""
    for path in readonly_paths:
        fd = _open_or_none(root, path)
        if fd is None:
            continue
        try:
            os.close(m.bind(fd, fd, path, readonly=True, propagation=0))
        finally:
            os.close(fd)
    null = None
    try:
        for path in masked_paths:
            fd = _open_or_none(root, path)
            if fd is None:
                continue
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    mnt = m.filesystem("tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV
                                       | MS_NOEXEC, None, fd, path)
                else:
                    if null is None:
                        null = root.open("/dev/null")
                    mnt = m.bind(null, fd, path, recursive=False, propagation=0)
                os.close(mnt)
            finally:
                os.close(fd)
    finally:
        if null is not None:
            os.close(null)


def _require_selinux(field):
    if not os.path.exists("/sys/fs/selinux/enforce"):
        raise ConfigError(field, "SELinux labels are configured but SELinux is not enabled on "
                          "this host")
