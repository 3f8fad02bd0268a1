"""The container's mount namespace: rootfs, system mounts, user mounts, devices, pivot_root.

Runs in the init, in its new mount namespace, in the order of libcontainer's
``InitializeMountNamespace`` (libcontainer-system.md section 2b step 9) and restrict_sys
(step 12), done right on a current kernel:

1. ``/`` recursively private (slave with ``no_pivot_root``): nothing propagates to the host.
2. The rootfs bound onto itself (recursively). When the rootfs *is* the current root (the
   default, host ``/``), it is bound into a private staging tmpfs instead: pivot_root cannot
   pivot onto the root it is leaving.
3. System mounts (:func:`system_mounts`), user mounts (bind and tmpfs), device nodes, the
   ``/dev`` links, ``/dev/console``. Every target is resolved inside the rootfs by
   :mod:`minins.fspath`, so an image's symlink can never redirect a mount onto the host.
   With ``readonly_fs`` the rootfs and every mount that came with it are made read-only right
   after the bind, before the other mounts stack on top: our own mounts (proc, /dev, tmpfs,
   writable binds) stay writable, and nothing is ever written into the rootfs (a missing
   mount point in it is an EROFS error, not a directory made on the host).
4. ``pivot_root(".", ".")`` and a lazy unmount of the old root (or MS_MOVE + chroot).
5. ``restrict_sys``: ``/proc/sys`` and friends read-only, ``/proc/kcore`` and the other usual
   paths masked.
6. umask 0022.

The plan half (:func:`system_mounts`, :func:`device_plan`, :data:`READONLY_PATHS`,
:data:`MASKED_PATHS`) is pure; the rest applies it through the libc layer.

Man pages: mount(2), mount_namespaces(7), pivot_root(2), mknod(2), proc(5), pts(4).
"""
import errno
import os
import stat

from . import fspath
from .config import MountConfig
from .errors import ConfigError, SyscallError

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
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
    wanted = [(p, False) for p in COVERED]
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
        kind = stat.S_IFCHR if d.type == ord("c") else stat.S_IFBLK
        out.append((d.path, kind | (d.file_mode & 0o7777), os.makedev(d.major_number,
                                                                      d.minor_number),
                    d.uid, d.gid))
    return out


# --- applying the plan -----------------------------------------------------------------------

class _Root:
    """The rootfs while it is being set up: its path and an O_PATH fd of it."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, fspath.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open(self, dest, create=None, final_file=False):
        if create:
            return fspath.mkdir_all_in_root(self.fd, dest, final_file=final_file)
        return fspath.open_in_root(self.fd, dest)

    def close(self):
        os.close(self.fd)


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
    try:
        lc.mount(None, "/", None, MS_REC | (MS_SLAVE if mc.no_pivot_root else MS_PRIVATE))
        host_root = os.path.samefile(rootfs, "/")
        rootfs = _bind_rootfs(rootfs, lc)
        root = _Root(rootfs)
        try:
            if mc.readonly_fs:
                # Read-only from the start, so nothing is ever written into the rootfs after
                # this. An image gets its mount points made first, as every runtime does; the
                # host's own / gets none (they would be made on the host): a missing one is an
                # EROFS error there.
                for point, as_file in ([] if host_root else mount_points(ctx.config)):
                    os.close(root.open(point, create="dir", final_file=as_file))
                _make_readonly(rootfs, lc)
            _system_mounts(ctx, root)
            _user_mounts(ctx, root, mc, sources)
            _devices(ctx, root, mc, sources)
            _dev_links(ctx, root, sources)
        finally:
            root.close()
    finally:
        close_sources(sources)
    _enter(rootfs, mc, lc)
    _reopen_dev_null()
    if cfg.restrict_sys:
        restrict(lc)
    os.umask(0o022)


def _bind_rootfs(rootfs, lc):
    try:
        if not stat.S_ISDIR(os.stat(rootfs).st_mode):
            raise SyscallError(errno.ENOTDIR, "open rootfs", rootfs)
    except OSError as e:
        if isinstance(e, SyscallError):
            raise
        raise SyscallError(e.errno, "open rootfs", rootfs) from None
    if not os.path.samefile(rootfs, "/"):
        lc.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
        return rootfs
    # The rootfs is our root: stage it in a private tmpfs (pivot_root needs a new root that
    # is not the current one). The staging tmpfs's own copy inside the tree is dropped so the
    # container sees the host's directory there, not the staging area.
    for base in ("/tmp", "/run", "/mnt", "/dev"):
        if os.path.isdir(base) and not os.path.islink(base):
            break
    else:
        raise SyscallError(errno.ENOENT, "stage the rootfs", "/tmp")
    lc.mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=4k")
    staged = base + "/.minins-root"
    os.mkdir(staged, 0o755)
    lc.mount("/", staged, None, MS_BIND | MS_REC)
    lc.umount2(staged + base, MNT_DETACH)
    return staged


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


def _mount_at(source, root, dest, fstype, flags, data, lc, create="dir", final_file=False):
    fd = root.open(dest, create=create, final_file=final_file)
    try:
        lc.mount(source, fspath.fd_path(fd), fstype, flags, data)
    except SyscallError as e:
        raise SyscallError(e.errno, "mount", dest) from None
    finally:
        os.close(fd)


def _system_mounts(ctx, root):
    lc, cfg = ctx.lc, ctx.config
    for m in system_mounts(cfg, ctx.in_userns, ctx.gid5_mapped):
        try:
            _mount_at(m.source, root, m.dest, m.fstype, m.flags, m.data, lc)
        except SyscallError as e:
            if e.errno == errno.EBUSY:
                # The very same superblock is already mounted there (sysfs or mqueue of the
                # host's namespace, in a rootfs bound from the host's /): keep that mount,
                # and with it whatever the host has below it -- read-only too, when asked.
                if m.readonly:
                    _make_readonly(root.path + m.dest, lc, skip=())
                continue
            if not (m.fallback_bind and e.errno == errno.EPERM):
                raise
            if not os.path.exists(m.dest):  # the host has none to lend either
                continue
            _mount_at(m.dest, root, m.dest, None, MS_BIND | MS_REC, None, lc)
            _make_readonly(root.path + m.dest, lc, skip=())
            continue
        if m.readonly:
            _remount_ro(root, m.dest, lc)


def _remount_ro(root, dest, lc, extra=0):
    fd = root.open(dest)
    try:
        flags = _locked_flags(fd) | extra
        lc.mount(None, fspath.fd_path(fd), None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)
    finally:
        os.close(fd)


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
                raise ConfigError("mount_config.mounts[%d].source" % i, "cannot use %s: %s"
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


def _user_mounts(ctx, root, mc, sources):
    lc = ctx.lc
    for i, m in enumerate(mc.mounts):
        field = "mount_config.mounts[%d]" % i
        src = sources.get(i)
        is_file = src is not None and not stat.S_ISDIR(os.fstat(src).st_mode)
        fd = root.open(m.destination, create="dir", final_file=is_file)
        try:
            _refuse_kernel_fs(root, fd, field, m.destination)
            target = fspath.fd_path(fd)
            try:
                if m.type == "tmpfs":
                    data = ",".join(x for x in (m.data, _label_opt(ctx.config).lstrip(",")) if x)
                    lc.mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data or None)
                    continue
                lc.mount(fspath.fd_path(src), target, None, MS_BIND | MS_REC)
            except SyscallError as e:
                raise SyscallError(e.errno, "mount", m.destination) from None
        finally:
            os.close(fd)
        if not m.writable:
            _bind_readonly(root, m.destination, lc)
        if m.private or m.slave:
            fd = root.open(m.destination)
            try:
                lc.mount(None, fspath.fd_path(fd), None,
                         MS_REC | (MS_PRIVATE if m.private else MS_SLAVE))
            finally:
                os.close(fd)


def _refuse_kernel_fs(root, fd, field, destination):
    """A volume may not land on the container's /proc or /sys, wherever an image symlink
    points it: restrict_sys and the LSM labels rely on them being the kernel's (the class of
    runc's CVE-2019-19921)."""
    real = fspath.real_path(fd)
    for kernel in ("/proc", "/sys"):
        top = root.path.rstrip("/") + kernel
        if real == top or real.startswith(top + "/"):
            raise ConfigError(field + ".destination", "%s resolves to %s inside the rootfs; "
                              "mounting over %s is refused" % (destination, kernel, kernel))


def _bind_readonly(root, destination, lc):
    """Read-only by remount: the bound mount itself through its fd (an error if the kernel
    refuses), then whatever was bound along with it."""
    fd = root.open(destination)
    try:
        mid = _mount_id(fd)
        opts = next((o for m, _p, o in _mountinfo() if m == mid), [])
        lc.mount(None, fspath.fd_path(fd), None,
                 MS_BIND | MS_REMOUNT | MS_RDONLY | _flags_of(opts))
        _make_readonly(fspath.real_path(fd), lc, skip=())
    except SyscallError as e:
        raise SyscallError(e.errno, "remount read-only", destination) from None
    finally:
        os.close(fd)


def _devices(ctx, root, mc, sources):
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
                        _mount_at(fspath.fd_path(sources[path]), root, path, None, MS_BIND,
                                  None, lc, final_file=True)
                        continue
                    else:
                        raise SyscallError(e.errno, "mknod", path) from None
                os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(pfd)
    finally:
        os.umask(old)


def _dev_links(ctx, root, sources):
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
        _mount_at(fspath.fd_path(sources["console"]), root, "/dev/console", None, MS_BIND,
                  None, ctx.lc, final_file=True)


def _enter(rootfs, mc, lc):
    os.chdir(rootfs)
    if mc.no_pivot_root:
        lc.mount(rootfs, "/", None, MS_MOVE)
        lc.chroot(".")
    elif mc.pivot_dir:
        _pivot_through(rootfs, mc.pivot_dir, lc)
    else:
        # The old root is stacked on top of the new one, then lazily detached: no directory
        # needed, so this works on a read-only rootfs.
        lc.pivot_root(".", ".")
        lc.umount2(".", MNT_DETACH)
    os.chdir("/")


def _pivot_through(rootfs, pivot_dir, lc):
    """pivot_root with the old root put in a fresh directory under ``pivot_dir`` (which the
    configuration makes writable for a read-only rootfs), made inside the rootfs."""
    rootfd = os.open(rootfs, fspath.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        base = fspath.mkdir_all_in_root(rootfd, pivot_dir)
    finally:
        os.close(rootfd)
    try:
        name = ".pivot_root%s" % os.urandom(4).hex()
        os.mkdir(name, 0o700, dir_fd=base)
        where = fspath.real_path(base) + "/" + name
    finally:
        os.close(base)
    lc.pivot_root(rootfs, where)
    inside = "/" + os.path.relpath(where, rootfs)
    os.chdir("/")
    lc.umount2(inside, MNT_DETACH)
    os.rmdir(inside)


def _reopen_dev_null():
    """stdio that was the host's /dev/null becomes the container's (seed step 9.7)."""
    try:
        null = os.stat("/dev/null")
    except OSError:
        return
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev and \
                (st.st_dev, st.st_ino) != (null.st_dev, null.st_ino):
            new = os.open("/dev/null", os.O_RDWR)
            os.dup2(new, fd)
            os.close(new)


def _make_readonly(top, lc, skip=COVERED):
    """Remount read-only every mount at or below ``top`` that is visible at its mount point
    (a hidden, stacked one needs nothing), except below the paths our own mounts cover."""
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


def restrict(lc):
    """restrict_sys: the kernel tunables read-only, the sensitive files hidden (after pivot)."""
    from .security import require_procfs

    require_procfs("/proc")
    for path in READONLY_PATHS:
        try:
            lc.mount(path, path, None, MS_BIND | MS_REC)
        except SyscallError as e:
            if e.errno == errno.ENOENT:
                continue
            raise
        fd = os.open(path, fspath.O_PATH | os.O_CLOEXEC)
        try:
            lc.mount(None, fspath.fd_path(fd), None,
                     MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags(fd))
        finally:
            os.close(fd)
    for path in MASKED_PATHS:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            lc.mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        else:
            lc.mount("/dev/null", path, None, MS_BIND)


def _require_selinux(field):
    if not os.path.exists("/sys/fs/selinux/enforce"):
        raise ConfigError(field, "SELinux labels are configured but SELinux is not enabled on "
                          "this host")
