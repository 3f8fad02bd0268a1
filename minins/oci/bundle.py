"""An OCI bundle's ``config.json``, loaded, checked and turned into minins's own model.

runc's ``libcontainer/specconv`` in minins: :func:`load` reads ``<bundle>/config.json`` with the
standard library's json, :func:`from_spec` converts the decoded document into a
:class:`Bundle` whose ``config`` is a validated :class:`minins.config.Config`. The OCI runtime
specification (runtime-spec 1.0.2, ``config.md`` and ``config-linux.md``, plus the 1.1 fields
engines send) is the source of every field name used in errors::

    ConfigError("process.args", "must not be empty")
    ConfigError("linux.intelRdt", "not supported")

As the specification asks, a property it does not define is ignored; one it defines that
minins cannot honour is an error naming it, never dropped in silence. The mapping of every
field, and what is refused and why: vendor-notes.md, "OCI bundles (issue 13)".

Pure: no kernel calls (the one host probe, which LSMs this host has, is a parameter).
"""
import collections
import os

from ..config import (MS_BIND, MS_DIRSYNC, MS_I_VERSION, MS_LAZYTIME, MS_MANDLOCK,
                      MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID,
                      MS_NOSYMFOLLOW, MS_POSIXACL, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME,
                      MS_REMOUNT, MS_SHARED, MS_SILENT, MS_SLAVE, MS_STRICTATIME,
                      MS_SYNCHRONOUS, MS_UNBINDABLE, PERSONALITIES)
from ..errors import ConfigError
from ..record import BOOL, INT, STR, _type_name

__all__ = ["Bundle", "Hook", "load", "from_spec", "from_process", "default_spec", "HOOK_NAMES",
           "parse_mount_options", "NAMESPACES", "RLIMITS"]

Bundle = collections.namedtuple("Bundle", "config args hooks annotations bundle rootfs "
                                          "console_size spec")
Bundle.__doc__ = """A loaded bundle: ``config`` (a validated minins Config, root_fs absolute),
``args`` (process.args, a tuple of str), ``hooks`` (hook name -> tuple of :class:`Hook`),
``annotations`` (str -> str), ``bundle`` and ``rootfs`` (absolute paths), ``console_size``
((height, width) or None), ``spec`` (the decoded config.json)."""

Hook = collections.namedtuple("Hook", "path args env timeout")
Hook.__doc__ = """One hook (config.md, "POSIX-platform Hooks"): ``path`` absolute, ``args`` and
``env`` tuples of str, ``timeout`` seconds (int) or None."""

HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")

# linux.namespaces[].type -> minins's namespace type (config-linux.md, "Namespaces")
NAMESPACES = {"pid": "NEWPID", "network": "NEWNET", "mount": "NEWNS", "ipc": "NEWIPC",
              "uts": "NEWUTS", "user": "NEWUSER", "cgroup": "NEWCGROUP"}

# process.rlimits[].type -> resource number (getrlimit(2), asm-generic/resource.h)
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

# mount(8)'s options: name -> (set it, flag). runc's parseMountOptions knows the same names.
MOUNT_FLAGS = {
    "acl": (True, MS_POSIXACL), "noacl": (False, MS_POSIXACL),
    "async": (False, MS_SYNCHRONOUS), "sync": (True, MS_SYNCHRONOUS),
    "atime": (False, MS_NOATIME), "noatime": (True, MS_NOATIME),
    "bind": (True, MS_BIND), "rbind": (True, MS_BIND | MS_REC),
    "defaults": (True, 0),
    "dev": (False, MS_NODEV), "nodev": (True, MS_NODEV),
    "diratime": (False, MS_NODIRATIME), "nodiratime": (True, MS_NODIRATIME),
    "dirsync": (True, MS_DIRSYNC),
    "exec": (False, MS_NOEXEC), "noexec": (True, MS_NOEXEC),
    "iversion": (True, MS_I_VERSION), "noiversion": (False, MS_I_VERSION),
    "lazytime": (True, MS_LAZYTIME), "nolazytime": (False, MS_LAZYTIME),
    "loud": (False, MS_SILENT), "silent": (True, MS_SILENT),
    "mand": (True, MS_MANDLOCK), "nomand": (False, MS_MANDLOCK),
    "relatime": (True, MS_RELATIME), "norelatime": (False, MS_RELATIME),
    "strictatime": (True, MS_STRICTATIME), "nostrictatime": (False, MS_STRICTATIME),
    "remount": (True, MS_REMOUNT),
    "ro": (True, MS_RDONLY), "rw": (False, MS_RDONLY),
    "suid": (False, MS_NOSUID), "nosuid": (True, MS_NOSUID),
    "symfollow": (False, MS_NOSYMFOLLOW), "nosymfollow": (True, MS_NOSYMFOLLOW),
}
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
# Options that are no mount(2) flag and no filesystem data, which minins cannot honour:
# refused by name rather than handed to the filesystem as data it would reject obscurely.
REFUSED_MOUNT_OPTIONS = {
    "copy-symlink": "crun's extension is not supported",
    "idmap": "ID-mapped mounts are not supported",
    "ridmap": "ID-mapped mounts are not supported",
}
# runtime-spec 1.1's recursive attributes: name -> (MOUNT_ATTR_* set, MOUNT_ATTR_* cleared),
# applied with mount_setattr(2) AT_RECURSIVE (runc 1.1's recAttrFlags)
_A_RDONLY, _A_NOSUID, _A_NODEV, _A_NOEXEC = 0x1, 0x2, 0x4, 0x8
_A_ATIME, _A_NOATIME, _A_STRICTATIME, _A_NODIRATIME = 0x70, 0x10, 0x20, 0x80
_A_NOSYMFOLLOW = 0x200000
RECURSIVE_ATTRS = {
    "rro": (_A_RDONLY, 0), "rrw": (0, _A_RDONLY),
    "rnosuid": (_A_NOSUID, 0), "rsuid": (0, _A_NOSUID),
    "rnodev": (_A_NODEV, 0), "rdev": (0, _A_NODEV),
    "rnoexec": (_A_NOEXEC, 0), "rexec": (0, _A_NOEXEC),
    "rnodiratime": (_A_NODIRATIME, 0), "rdiratime": (0, _A_NODIRATIME),
    "rnosymfollow": (_A_NOSYMFOLLOW, 0), "rsymfollow": (0, _A_NOSYMFOLLOW),
    "rrelatime": (0, _A_ATIME), "rnorelatime": (0, 0),
    "rnoatime": (_A_NOATIME, _A_ATIME), "ratime": (0, _A_ATIME),
    "rstrictatime": (_A_STRICTATIME, _A_ATIME), "rnostrictatime": (0, _A_ATIME),
}  # (the kernel takes the atime mode only with the whole _ATIME mask cleared: EINVAL else)

# Properties the specification defines that minins cannot honour: refused by name.
UNSUPPORTED = {
    "linux.intelRdt": "not supported",
    "linux.memoryPolicy": "not supported",
    "linux.netDevices": "not supported",
    "linux.timeOffsets": "not supported (no time namespace)",
    "process.ioPriority": "not supported",
    "process.scheduler": "not supported",
    "process.execCPUAffinity": "not supported",
    "solaris": "not supported on Linux",
    "windows": "not supported on Linux",
    "vm": "not supported (not a virtual-machine runtime)",
    "zos": "not supported on Linux",
}

_U32 = 2 ** 32 - 1
_U64 = 2 ** 64 - 1


# --- typed access to the decoded JSON ----------------------------------------------------------

def _obj(value, path, required=False):
    if value is None:
        if required:
            raise ConfigError(path, "must be set")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, "must be an object, not %s" % _type_name(value))
    return value


def _list(value, path):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list, not %s" % _type_name(value))
    return value


def _str(value, path, default=""):
    if value is None:
        return default
    STR.load(value, path)  # a string without NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(path, "must be valid Unicode text (a lone surrogate has no UTF-8 "
                          "encoding)") from None
    return value


def _strs(value, path):
    return tuple(_str(v, "%s[%d]" % (path, i)) for i, v in enumerate(_list(value, path)))


def _bool(value, path, default=False):
    return default if value is None else BOOL.load(value, path)


def _int(value, path, lo, hi, default=None):
    if value is None:
        if default is None:
            raise ConfigError(path, "must be set")
        return default
    if not lo <= INT.load(value, path) <= hi:
        raise ConfigError(path, "must be within %d..%d" % (lo, hi))
    return value


def _opt_int(value, path, lo, hi):
    return None if value is None else _int(value, path, lo, hi)


def _abs(value, path):
    if not value.startswith("/"):
        raise ConfigError(path, "must be an absolute path, not %r" % value)
    return value


def _abs_paths(linux, key):
    """``linux.<key>``: a list of absolute paths, as a tuple."""
    path = "linux." + key
    return tuple(_abs(p, "%s[%d]" % (path, i)) for i, p in enumerate(_strs(linux.get(key), path)))


# --- load ------------------------------------------------------------------------------------

def load(bundle_dir, systemd_cgroup=False, lsm=None):
    """The :class:`Bundle` in directory ``bundle_dir`` (its ``config.json``). A file that
    cannot be read or is not JSON is a ConfigError without a field, naming the file; a
    rootfs that is not a directory is ``root.path``'s error."""
    from .. import config as _config

    bundle_dir = os.path.abspath(bundle_dir)
    path = os.path.join(bundle_dir, "config.json")
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("", "cannot read %s: %s" % (path, e.strerror)) from None
    try:
        spec = _config.parse_json(text)
    except ConfigError as e:
        e.message = "%s: %s" % (path, e.message)
        raise
    out = from_spec(spec, bundle_dir, systemd_cgroup=systemd_cgroup, lsm=lsm)
    if not os.path.isdir(out.rootfs):
        raise ConfigError("root.path", "%s is not a directory" % out.rootfs)
    return out


def from_spec(spec, bundle_dir, systemd_cgroup=False, lsm=None):
    """Convert the decoded config.json ``spec`` of the bundle at ``bundle_dir`` into a
    :class:`Bundle`; raise :class:`ConfigError` with the OCI field path for the first
    problem. ``systemd_cgroup``: cgroupsPath is systemd's ``slice:prefix:name`` (runc's
    ``--systemd-cgroup``). ``lsm``: ``{"apparmor": bool, "selinux": bool}`` of the host
    (default: probed, :func:`minins.security.lsm_state`)."""
    from .. import config as _config

    spec = _obj(spec, "", required=True)
    bundle_dir = os.path.abspath(bundle_dir)
    _check_version(spec)
    _refuse_unsupported(spec)
    linux = _obj(spec.get("linux"), "linux")
    process = _obj(spec.get("process"), "process", required=True)
    cfg = _config.Config()
    changes = {}
    changes.update(_root(spec, bundle_dir))
    changes.update(_namespaces(linux))
    if any(ns.type == "NEWNET" and not ns.path for ns in changes["namespaces"]):
        # a new network namespace gets its loopback up, as runc's specconv configures
        changes["networks"] = (_config.Network(type="loopback"),)
    changes.update(_process(process, linux, lsm))
    changes["hostname"] = _str(spec.get("hostname"), "hostname")
    changes["domainname"] = _str(spec.get("domainname"), "domainname")
    changes["uid_mappings"] = _idmaps(linux.get("uidMappings"), "linux.uidMappings")
    changes["gid_mappings"] = _idmaps(linux.get("gidMappings"), "linux.gidMappings")
    changes["mount_config"] = _mount_config(spec, linux, bundle_dir, changes, lsm)
    changes["masked_paths"] = _abs_paths(linux, "maskedPaths")
    changes["readonly_paths"] = _abs_paths(linux, "readonlyPaths")
    changes["sysctl"] = _sysctl(linux.get("sysctl"))
    changes["personality"] = _personality(linux.get("personality"))
    changes["cgroups"] = _cgroups(linux, systemd_cgroup)
    seccomp = linux.get("seccomp")
    if seccomp is not None:
        from ..seccomp import profile

        changes["seccomp"] = profile.loads(_obj(seccomp, "linux.seccomp"), "linux.seccomp")
    annotations = _annotations(spec.get("annotations"))
    changes["labels"] = tuple("%s=%s" % kv for kv in sorted(annotations.items()))
    cfg = cfg.replace(**changes)
    try:
        _config.validate(cfg)
    except ConfigError as e:
        raise ConfigError(_oci_field(e.field), e.message) from None
    args = _args(process)
    return Bundle(config=cfg, args=args, hooks=_hooks(spec.get("hooks")),
                  annotations=annotations, bundle=bundle_dir, rootfs=cfg.root_fs,
                  console_size=_console_size(process), spec=spec)


def from_process(process, config, lsm=None, path="process"):
    """An OCI ``process`` object (``runc exec --process FILE``, the spec's ``process``
    schema) applied to the container's ``config``: ``(config, args, console_size)``, the
    config validated. Errors are named from ``path`` (``process.args: must not be empty``)."""
    from .. import config as _config

    process = _obj(process, path, required=True)
    try:
        changes = _process(process, None, lsm)
        # libcontainer's exec (newInitConfig): a process object without capabilities or
        # rlimits keeps the container's, never more than the container has
        if process.get("capabilities") is None:
            for key in _CAPABILITY_FIELDS:
                changes.pop(key, None)
        if not process.get("rlimits"):
            changes.pop("rlimits", None)
        args = _args(process)
        size = _console_size(process)
    except ConfigError as e:
        e.field = _named_from(e.field, path)
        raise
    cfg = config.replace(**changes)
    try:
        _config.validate(cfg)
    except ConfigError as e:
        raise ConfigError(_named_from(_oci_field(e.field), path), e.message) from None
    return cfg, args, size


def _named_from(field, path):
    """An error's ``process...`` field named from ``path`` (from_process's) instead."""
    if path != "process" and field.startswith("process"):
        return path + field[len("process"):]
    return field


def _args(process):
    args = _strs(process.get("args"), "process.args")
    if not args:
        raise ConfigError("process.args", "must not be empty")
    return args


def _check_version(spec):
    version = _str(spec.get("ociVersion"), "ociVersion")
    if not version:
        raise ConfigError("ociVersion", "must be set")
    if not version.startswith("1."):
        raise ConfigError("ociVersion", "%r is not a version of runtime-spec 1 (minins speaks "
                          "1.0 and 1.1)" % version)


def _refuse_unsupported(spec):
    for dotted, why in sorted(UNSUPPORTED.items()):
        node = spec
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            raise ConfigError(dotted, why)


def _root(spec, bundle_dir):
    root = _obj(spec.get("root"), "root", required=True)
    path = _str(root.get("path"), "root.path")
    if not path:
        raise ConfigError("root.path", "must be set")
    full = os.path.normpath(os.path.join(bundle_dir, path))
    return {"root_fs": full, "_readonly": _bool(root.get("readonly"), "root.readonly")}


def _namespaces(linux):
    out, seen = [], set()
    from ..config import Namespace

    for i, ns in enumerate(_list(linux.get("namespaces"), "linux.namespaces")):
        here = "linux.namespaces[%d]" % i
        ns = _obj(ns, here, required=True)
        kind = _str(ns.get("type"), here + ".type")
        if kind == "time":
            raise ConfigError(here + ".type", "time namespaces are not supported")
        if kind not in NAMESPACES:
            raise ConfigError(here + ".type", "unknown namespace type %r; known: %s"
                              % (kind, ", ".join(sorted(NAMESPACES))))
        if kind in seen:
            raise ConfigError(here + ".type", "namespace %s is listed twice" % kind)
        seen.add(kind)
        path = _str(ns.get("path"), here + ".path")
        if path:
            _abs(path, here + ".path")
        out.append(Namespace(type=NAMESPACES[kind], path=path))
    return {"namespaces": tuple(out)}


def _idmaps(value, path):
    from ..idmap import IDMap

    out = []
    for i, m in enumerate(_list(value, path)):
        here = "%s[%d]" % (path, i)
        m = _obj(m, here, required=True)
        out.append(IDMap(container_id=_int(m.get("containerID"), here + ".containerID", 0, _U32),
                         host_id=_int(m.get("hostID"), here + ".hostID", 0, _U32),
                         size=_int(m.get("size"), here + ".size", 0, _U32)))
    return tuple(out)


def _process(process, linux, lsm):
    out = {}
    out["tty"] = _bool(process.get("terminal"), "process.terminal")
    env = _strs(process.get("env"), "process.env")
    for i, item in enumerate(env):
        if "=" not in item or item.startswith("="):
            raise ConfigError("process.env[%d]" % i, "must be NAME=VALUE, not %r" % item)
    out["environment"] = env
    cwd = _str(process.get("cwd"), "process.cwd")
    if not cwd:
        raise ConfigError("process.cwd", "must be set")
    out["working_dir"] = _abs(cwd, "process.cwd")
    user = _obj(process.get("user"), "process.user")
    uid = _int(user.get("uid"), "process.user.uid", 0, _U32, 0)
    gid = _int(user.get("gid"), "process.user.gid", 0, _U32, 0)
    out["user"] = "%d:%d" % (uid, gid)
    out["umask"] = _opt_int(user.get("umask"), "process.user.umask", 0, 0o777)
    out["additional_groups"] = tuple(
        _int(g, "process.user.additionalGids[%d]" % i, 0, _U32)
        for i, g in enumerate(_list(user.get("additionalGids"), "process.user.additionalGids")))
    out.update(_capabilities(process.get("capabilities")))
    out["rlimits"] = _rlimits(process.get("rlimits"))
    out["no_new_privileges"] = _bool(process.get("noNewPrivileges"),
                                     "process.noNewPrivileges")
    out["oom_score_adj"] = _opt_int(process.get("oomScoreAdj"), "process.oomScoreAdj",
                                    -1000, 1000)
    # AppArmor: refused where it is off (runc fails too: it writes /proc/self/attr/exec).
    profile = _str(process.get("apparmorProfile"), "process.apparmorProfile")
    if profile and not _lsm(lsm)["apparmor"]:
        raise ConfigError("process.apparmorProfile", "not supported on this host (AppArmor "
                          "is not enabled)")
    out["apparmor_profile"] = profile
    # SELinux: a no-op where it is off, as go-selinux's label functions make it for runc
    # and as crun does (vendor-notes.md, "OCI bundles").
    label = _str(process.get("selinuxLabel"), "process.selinuxLabel")
    out["process_label"] = label if _lsm(lsm)["selinux"] else ""
    return out


def _lsm(lsm):
    if lsm is None:
        from .. import security

        lsm = security.lsm_state()
    return lsm


_CAPABILITY_FIELDS = ("capabilities", "effective_capabilities", "permitted_capabilities",
                      "inheritable_capabilities", "ambient_capabilities")


def _capabilities(value):
    from .. import caps

    if value is None:
        # runc changes no capability then: the process keeps every one root has
        return {"capabilities": tuple(sorted(caps.CAPS, key=caps.CAPS.get))}
    value = _obj(value, "process.capabilities")
    sets, numbers = {}, {}
    for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        path = "process.capabilities." + name
        sets[name] = _strs(value.get(name), path)
        numbers[name] = {caps.cap_number(cap, "%s[%d]" % (path, i))
                         for i, cap in enumerate(sets[name])}
    # The kernel raises an ambient capability only when it is permitted and inheritable
    # (capabilities(7)); runc warns and goes on without the others (runc spec's default
    # lists three ambient capabilities and no inheritable set), and minins does the same.
    can = numbers["permitted"] & numbers["inheritable"] & numbers["bounding"]
    ambient = tuple(c for c in sets["ambient"] if caps.cap_number(c) in can)
    return {"capabilities": sets["bounding"], "effective_capabilities": sets["effective"],
            "permitted_capabilities": sets["permitted"],
            "inheritable_capabilities": sets["inheritable"], "ambient_capabilities": ambient}


def _rlimits(value):
    from ..config import Rlimit

    out, seen = [], set()
    for i, rl in enumerate(_list(value, "process.rlimits")):
        here = "process.rlimits[%d]" % i
        rl = _obj(rl, here, required=True)
        name = _str(rl.get("type"), here + ".type")
        if name not in RLIMITS:
            raise ConfigError(here + ".type", "unknown resource %r (RLIMIT_NOFILE, ...)" % name)
        if name in seen:
            raise ConfigError(here + ".type", "%s is listed twice" % name)
        seen.add(name)
        hard = _int(rl.get("hard"), here + ".hard", 0, _U64)
        soft = _int(rl.get("soft"), here + ".soft", 0, _U64)
        if soft > hard:
            raise ConfigError(here + ".soft", "must not exceed hard (%d)" % hard)
        out.append(Rlimit(type=RLIMITS[name], hard=hard, soft=soft))
    return tuple(out)


def _console_size(process):
    size = process.get("consoleSize")
    if size is None:
        return None
    size = _obj(size, "process.consoleSize")
    return (_int(size.get("height"), "process.consoleSize.height", 0, 0xFFFF),
            _int(size.get("width"), "process.consoleSize.width", 0, 0xFFFF))


def _sysctl(value):
    value = _obj(value, "linux.sysctl")
    out = []
    for key in sorted(value):
        here = "linux.sysctl.%s" % key
        out.append("%s=%s" % (_str(key, here), _str(value[key], here)))
    return tuple(out)


def _personality(value):
    if value is None:
        return ""
    value = _obj(value, "linux.personality")
    domain = _str(value.get("domain"), "linux.personality.domain")
    if domain not in PERSONALITIES:
        raise ConfigError("linux.personality.domain", "must be LINUX or LINUX32, not %r"
                          % domain)
    if _strs(value.get("flags"), "linux.personality.flags"):
        raise ConfigError("linux.personality.flags", "not supported (the specification "
                          "defines none)")
    return domain


def _annotations(value):
    value = _obj(value, "annotations")
    out = {}
    for key in value:
        here = "annotations.%s" % key
        out[_str(key, here)] = _str(value[key], here)
    return out


def _hooks(value):
    value = _obj(value, "hooks")
    out = {}
    for name in HOOK_NAMES:
        hooks = []
        for i, h in enumerate(_list(value.get(name), "hooks." + name)):
            here = "hooks.%s[%d]" % (name, i)
            h = _obj(h, here, required=True)
            path = _str(h.get("path"), here + ".path")
            if not path:
                raise ConfigError(here + ".path", "must be set")
            _abs(path, here + ".path")
            env = _strs(h.get("env"), here + ".env")
            timeout = h.get("timeout")
            if timeout is not None:
                timeout = _int(timeout, here + ".timeout", 1, 2 ** 31 - 1)
            hooks.append(Hook(path=path, args=_strs(h.get("args"), here + ".args"), env=env,
                              timeout=timeout))
        out[name] = tuple(hooks)
    return out


def _cgroups(linux, systemd_cgroup):
    """linux.cgroupsPath and linux.resources -> a Cgroup record (runc's cgroupfs meaning:
    absolute from each hierarchy's root, relative below the runtime's own cgroup, empty the
    container's id below the runtime's own; with the systemd driver ``slice:prefix:name``)."""
    from ..config import Cgroup

    path = _str(linux.get("cgroupsPath"), "linux.cgroupsPath")
    fields = {}
    if systemd_cgroup:
        fields["driver"] = "systemd"
        if path:
            parts = path.split(":")
            if len(parts) != 3:
                raise ConfigError("linux.cgroupsPath", "with the systemd driver must be "
                                  "slice:prefix:name, not %r" % path)
            fields.update(slice=parts[0], scope_prefix=parts[1], name=parts[2])
    elif path:
        parts = [c for c in path.split("/") if c and c != "."]
        if not parts or ".." in parts:
            raise ConfigError("linux.cgroupsPath", "must name a cgroup below the root, "
                              "without '..', not %r" % path)
        lead = "/" if path.startswith("/") else ""
        parent = "/".join(parts[:-1])
        fields.update(name=parts[-1], parent=(lead + parent) if parent else lead)
    resources = linux.get("resources")
    if resources is not None:
        fields.update(_resources(_obj(resources, "linux.resources")))
    return Cgroup(**fields)


def _resources(resources):
    from . import resources as _res  # the ociresources converter (runc's specconv)

    return _res.to_cgroup(resources, "linux.resources")


# --- mounts ----------------------------------------------------------------------------------

def parse_mount_options(options, path="options"):
    """``(flags, propagation, data)`` for a list of mount(8) options: the MS_* flags they
    set (runc's parseMountOptions: a later option overrides an earlier one), the propagation
    changes in order, and the rest joined with commas as the filesystem's data."""
    flags, propagation, data = 0, [], []
    for i, opt in enumerate(options):
        if opt in MOUNT_FLAGS:
            on, flag = MOUNT_FLAGS[opt]
            flags = flags | flag if on else flags & ~flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in REFUSED_MOUNT_OPTIONS:
            raise ConfigError("%s[%d]" % (path, i), "%s: %s" % (opt, REFUSED_MOUNT_OPTIONS[opt]))
        elif opt:
            data.append(opt)
    return flags, tuple(propagation), ",".join(data)


def _mount_config(spec, linux, bundle_dir, changes, lsm):
    from ..config import Device, MountConfig, Mount, DEFAULT_DEVICE_NODES

    mounts = []
    for i, m in enumerate(_list(spec.get("mounts"), "mounts")):
        here = "mounts[%d]" % i
        m = _obj(m, here, required=True)
        dest = _abs(_str(m.get("destination"), here + ".destination"), here + ".destination")
        fstype = _str(m.get("type"), here + ".type")
        source = _str(m.get("source"), here + ".source")
        options = _strs(m.get("options"), here + ".options")
        copy_up = "tmpcopyup" in options
        options = tuple(o for o in options if o != "tmpcopyup")
        rec_set = rec_clr = 0
        for opt in options:
            if opt in RECURSIVE_ATTRS:
                on, off = RECURSIVE_ATTRS[opt]
                rec_set, rec_clr = (rec_set & ~off) | on, rec_clr | off
        options = tuple(o for o in options if o not in RECURSIVE_ATTRS)
        flags, propagation, data = parse_mount_options(options, here + ".options")
        if copy_up and fstype != "tmpfs":
            raise ConfigError(here + ".options", "tmpcopyup is for a tmpfs, not %r" % fstype)
        if m.get("uidMappings") is not None or m.get("gidMappings") is not None:
            raise ConfigError(here + ".uidMappings", "ID-mapped mounts are not supported")
        if flags & MS_BIND or fstype == "bind":
            fstype = "bind"
            flags |= MS_BIND
            if not source:
                raise ConfigError(here + ".source", "a bind mount needs a source")
            source = os.path.normpath(os.path.join(bundle_dir, source))
        elif not fstype or fstype == "none":
            raise ConfigError(here + ".type", "must name a filesystem type (or use the bind "
                              "option), not %r" % fstype)
        mounts.append(Mount(type=fstype, source=source, destination=dest, data=data,
                            oci=True, flags=flags, propagation=propagation, copy_up=copy_up,
                            rec_attr_set=rec_set, rec_attr_clr=rec_clr))
    devices = {d.path: d for d in DEFAULT_DEVICE_NODES}  # runc adds the same six
    for i, d in enumerate(_list(linux.get("devices"), "linux.devices")):
        here = "linux.devices[%d]" % i
        d = _obj(d, here, required=True)
        path = _abs(_str(d.get("path"), here + ".path"), here + ".path")
        if not path.startswith("/dev/") or "/../" in path + "/" or "/./" in path + "/":
            raise ConfigError(here + ".path", "must be an absolute path under /dev")
        kind = _str(d.get("type"), here + ".type")
        if kind not in ("c", "b", "u", "p"):
            raise ConfigError(here + ".type", "must be c, b, u or p, not %r" % kind)
        need = kind != "p"
        major = _int(d.get("major"), here + ".major", 0, 0xFFF, None if need else 0)
        minor = _int(d.get("minor"), here + ".minor", 0, 0xFFFFF, None if need else 0)
        mode = _opt_int(d.get("fileMode"), here + ".fileMode", 0, 0o177777)
        devices[path] = Device(type=ord("c" if kind == "u" else kind), path=path,
                               major_number=major, minor_number=minor,
                               file_mode=0o666 if mode is None else mode & 0o7777,
                               uid=_int(d.get("uid"), here + ".uid", 0, _U32, 0),
                               gid=_int(d.get("gid"), here + ".gid", 0, _U32, 0),
                               cgroup_permissions="rwm")
    label = _str(linux.get("mountLabel"), "linux.mountLabel")
    if label and not _lsm(lsm)["selinux"]:
        label = ""  # a no-op where SELinux is off, as for process.selinuxLabel
    prop = _str(linux.get("rootfsPropagation"), "linux.rootfsPropagation")
    if prop and prop not in PROPAGATION:
        raise ConfigError("linux.rootfsPropagation", "must be one of %s, not %r"
                          % (", ".join(sorted(PROPAGATION)), prop))
    readonly = changes.pop("_readonly")
    if not any(ns.type == "NEWNS" for ns in changes["namespaces"]):
        if mounts or readonly or prop or label:
            raise ConfigError("linux.namespaces", "mounts, root.readonly and the mount "
                              "settings need a mount namespace")
        return None
    return MountConfig(readonly_fs=readonly, mounts=tuple(mounts),
                       device_nodes=tuple(devices.values()), mount_label=label,
                       system_mounts=False, rootfs_propagation=PROPAGATION.get(prop, 0))


# minins's config field (the start of its path) -> the OCI field it came from, for errors
# found by minins.config.validate
_FIELD_NAMES = (
    ("mount_config.mounts", "mounts"), ("mount_config.device_nodes", "linux.devices"),
    ("mount_config", "mounts"), ("root_fs", "root.path"), ("hostname", "hostname"),
    ("domainname", "domainname"), ("user", "process.user"),
    ("working_dir", "process.cwd"), ("environment", "process.env"),
    ("namespaces", "linux.namespaces"), ("capabilities", "process.capabilities.bounding"),
    ("ambient_capabilities", "process.capabilities.ambient"),
    ("effective_capabilities", "process.capabilities.effective"),
    ("permitted_capabilities", "process.capabilities.permitted"),
    ("inheritable_capabilities", "process.capabilities.inheritable"),
    ("cgroups", "linux.cgroupsPath"), ("rlimits", "process.rlimits"),
    ("additional_groups", "process.user.additionalGids"),
    ("uid_mappings", "linux.uidMappings"), ("gid_mappings", "linux.gidMappings"),
    ("seccomp", "linux.seccomp"), ("sysctl", "linux.sysctl"),
    ("masked_paths", "linux.maskedPaths"), ("readonly_paths", "linux.readonlyPaths"),
    ("labels", "annotations"), ("umask", "process.user.umask"),
    ("oom_score_adj", "process.oomScoreAdj"), ("personality", "linux.personality"),
)


_CGROUP_PATH_FIELDS = ("cgroups.name", "cgroups.parent", "cgroups.slice", "cgroups.driver",
                       "cgroups.scope_prefix")


def _oci_field(field):
    if field.startswith("cgroups.") and field not in _CGROUP_PATH_FIELDS:
        # a value linux.resources set, checked again on the whole record
        return "linux.resources (%s)" % field
    for ours, theirs in _FIELD_NAMES:
        if field == ours or field.startswith(ours + ".") or field.startswith(ours + "["):
            return theirs + field[len(ours):]
    return field


# --- the default config.json -------------------------------------------------------------------

_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_spec(rootless=False, uid=None, gid=None):
    """What ``runc spec`` (``--rootless``) writes: a config.json for a rootfs in
    ``rootfs/`` running ``sh`` on a terminal (runc 1.1, ``libcontainer/specconv.Example``
    and ``ToRootless``). ``uid``/``gid``: the host ids mapped to root when rootless
    (default: our effective ids)."""
    nsd = ["nosuid", "noexec", "nodev"]
    spec = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(_DEFAULT_CAPS) for k in
                             ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
             + ([] if rootless else ["gid=5"])},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": nsd + ["mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": list(nsd)},
            {"destination": "/sys", "type": "none", "source": "/sys",
             "options": ["rbind"] + nsd + ["ro"]} if rootless else
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": nsd + ["ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": nsd + ["relatime", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in
                           (("pid", "ipc", "uts", "mount", "user") if rootless else
                            ("pid", "network", "ipc", "uts", "mount"))],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
    if rootless:
        uid = os.geteuid() if uid is None else uid
        gid = os.getegid() if gid is None else gid
        spec["linux"] = dict([
            ("uidMappings", [{"containerID": 0, "hostID": uid, "size": 1}]),
            ("gidMappings", [{"containerID": 0, "hostID": gid, "size": 1}]),
        ] + list(spec["linux"].items()))
    else:
        spec["linux"] = dict([("resources", {"devices": [{"allow": False, "access": "rwm"}]})]
                             + list(spec["linux"].items()))
    return spec
