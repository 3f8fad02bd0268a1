"""The init's last steps before exec: console, LSM labels, user, capabilities, working directory.

:func:`finalize` is libcontainer's ``FinalizeNamespace`` (libcontainer-system.md section 2b,
step 14) with today's additions, in this order:

1. the bounding set dropped to the configured capabilities (PR_CAPBSET_DROP);
2. PR_SET_KEEPCAPS, so that permitted capabilities survive the uid switch;
3. the user looked up in the container's ``/etc/passwd`` and ``/etc/group``;
   setgroups (supplementary groups plus ``additional_groups``), setresgid, setresuid;
   HOME set when the configuration has none;
4. PR_SET_KEEPCAPS off again; capset: effective and permitted are the configured set, the
   inheritable set only the ambient capabilities (a full inheritable set would let a
   non-root user gain file-inheritable capabilities: runc's CVE-2022-24769); the configured
   ambient capabilities raised; the parent-death signal set again (a uid change clears it);
5. PR_SET_NO_NEW_PRIVS when configured;
6. chdir to the working directory (inside the container, after pivot_root).

capabilities(7), prctl(2), setresuid(2), setgroups(2), credentials(7), attr/apparmor(5).
"""
import errno
import os

from . import caps as _caps
from . import users as _users
from .errors import ConfigError, SyscallError

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
TIOCSCTTY = 0x540E


def take_console(ctx):
    """Make the pty slave on fd 0 our controlling terminal (after setsid)."""
    ctx.lc.ioctl(0, TIOCSCTTY, 0, op="ioctl TIOCSCTTY", path="console")


def cap_last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return max(_caps.CAPS.values())


def finalize(ctx):
    cfg, lc = ctx.config, ctx.lc
    if getattr(ctx, "seccomp", None) is not None:
        from .seccomp import load as _seccomp  # imported by the runtime before the fork

        _seccomp.seccomp_step(ctx, "privileged")  # without no_new_privileges: needs SYS_ADMIN
    keep = _caps.mask_of(cfg.capabilities)
    for cap in range(ctx.cap_last_cap + 1):
        if not keep >> cap & 1:
            lc.prctl(PR_CAPBSET_DROP, cap, op="prctl PR_CAPBSET_DROP")
    lc.prctl(PR_SET_KEEPCAPS, 1, op="prctl PR_SET_KEEPCAPS")
    user = _users.resolve_user(cfg.user, _users.read_small("/etc/passwd"),
                               _users.read_small("/etc/group"), cfg.additional_groups)
    ctx.home = user.home
    _give_exec_fifo(ctx, user)
    _switch_user(ctx, user)
    lc.prctl(PR_SET_KEEPCAPS, 0, op="prctl PR_SET_KEEPCAPS")
    known = (1 << (ctx.cap_last_cap + 1)) - 1
    keep &= known
    ambient = _caps.mask_of(cfg.ambient_capabilities, "ambient_capabilities")
    # new (OCI): the five sets given one by one; without them effective and permitted are
    # the bounding set and inheritable the ambient set
    effective, permitted, inheritable = (
        keep if names is None else _caps.mask_of(names, field) & known
        for names, field in ((cfg.effective_capabilities, "effective_capabilities"),
                             (cfg.permitted_capabilities, "permitted_capabilities"),
                             (cfg.inheritable_capabilities, "inheritable_capabilities")))
    if cfg.inheritable_capabilities is None:
        inheritable = ambient
    lc.capset(effective, permitted, inheritable)
    for name in cfg.ambient_capabilities:
        lc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, _caps.cap_number(name),
                 op="prctl PR_CAP_AMBIENT_RAISE")
    # The kernel clears the parent-death signal when the uid changes; the runtime dying before
    # this shows as EOF on the sync socket, which the init reads until START. A detached
    # init has none: it outlives the runtime that created it.
    if ctx.parent_death_signal:
        lc.prctl(PR_SET_PDEATHSIG, ctx.parent_death_signal, op="prctl PR_SET_PDEATHSIG")
    if cfg.no_new_privileges:
        lc.prctl(PR_SET_NO_NEW_PRIVS, 1, op="prctl PR_SET_NO_NEW_PRIVS")
    cwd = cfg.working_dir or "/"
    lc.chdir(cwd)


def _give_exec_fifo(ctx, user):
    """A detached init reopens exec.fifo (0600) for writing once it is the container's user,
    which may lack CAP_DAC_OVERRIDE: the fifo becomes that user's first (fchownat through
    /proc/self/fd of the O_PATH descriptor; runc gives it to the container's root)."""
    fifo = getattr(ctx.plan, "exec_fifo", None)
    if fifo is None:
        return
    path = "/proc/self/fd/%d" % fifo
    try:
        os.chown(path, user.uid, user.gid)
    except OSError as e:
        raise SyscallError(e.errno, "chown", path, "exec.fifo") from None


def _switch_user(ctx, user):
    lc = ctx.lc
    groups = list(user.sgids)
    try:
        lc.setgroups(groups)
    except SyscallError as e:
        # With setgroups "deny" (a user namespace mapped without CAP_SETGID) no change is
        # possible; that is fine when none is asked for.
        if e.errno != errno.EPERM or groups:
            raise
    try:
        lc.setresgid(user.gid, user.gid, user.gid)
        lc.setresuid(user.uid, user.uid, user.uid)
    except SyscallError as e:
        if e.errno == errno.EINVAL:
            raise ConfigError("user", "%s: uid %d or gid %d is not mapped in the container's "
                              "user namespace" % (cfg_user(ctx), user.uid, user.gid)) from None
        raise


def cfg_user(ctx):
    return ctx.config.user or "root"


# --- LSM labels ------------------------------------------------------------------------------

def apparmor_enabled():
    """Probed by the runtime, on the host: the container's /sys may hide it."""
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def lsm_state():
    """``{"apparmor": bool, "selinux": bool}`` of the host, for the child to use."""
    return {"apparmor": apparmor_enabled(), "selinux": selinux_enabled()}


def apply_labels(ctx):
    """Ask the LSM to switch to the configured label at the next exec."""
    cfg = ctx.config
    if not (cfg.apparmor_profile or cfg.process_label):
        return
    require_procfs("/proc")  # never write a label into a file an image put there
    if cfg.apparmor_profile:
        if not ctx.lsm["apparmor"]:
            raise ConfigError("apparmor_profile", "AppArmor is not enabled on this host")
        attr = "/proc/self/attr/apparmor/exec"
        if not os.path.exists(attr):
            attr = "/proc/self/attr/exec"
        _write_attr(attr, "exec " + cfg.apparmor_profile)
    if cfg.process_label:
        if not ctx.lsm["selinux"]:
            raise ConfigError("process_label", "SELinux is not enabled on this host")
        _write_attr("/proc/self/task/%d/attr/exec" % ctx.lc.gettid(), cfg.process_label)


def _write_attr(path, value):
    from .fspath import write_file

    write_file(path, value, value)


PROC_SUPER_MAGIC = 0x9FA0


def require_procfs(path):
    """Raise unless ``path`` is the root of a procfs: what is written into /proc/self/attr or
    remounted read-only under /proc must be the kernel's, not a directory in the image."""
    from . import libc as _libc

    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise SyscallError(22, "check procfs", path, "not a procfs mount")  # EINVAL
    finally:
        os.close(fd)
