"""The container configuration: libcontainer's ``container.json``, typed and immutable.

Every field of libcontainer's ``Config`` (``libcontainer-system.md`` section 1) under the same
JSON name, plus a few that today's runtimes have (marked *new* below). :func:`loads` checks
every key and value -- an unknown key is an error with a did-you-mean hint -- and
:func:`validate` checks the whole configuration before anything is created; both raise
:class:`~minins.errors.ConfigError` naming the field path (``uid_mappings[1].size: must be at
least 1``). :func:`dumps` writes the same JSON back.

Pure: no kernel calls, and no module that makes any. The network and cgroup sections are
checked by :func:`minins.netconfig.validate` and :func:`minins.cgroups.values.validate`,
imported only when a configuration has those sections.
"""
from . import caps as _caps
from . import idmap as _idmap
from .errors import ConfigError
from .idmap import IDMap
from .record import BOOL, INT, STR, Field, ListOf, Optional, Record, text_error

__all__ = [
    "Config", "Namespace", "MountConfig", "Mount", "Device", "Network", "Route", "Cgroup",
    "WeightDevice", "ThrottleDevice", "HugepageLimit", "IfPrioMap",
    "Rlimit", "IDMap", "loads", "load", "dumps", "validate", "default_config", "rootless",
    "NAMESPACE_TYPES",
]

# type -> the CLONE_* flag (sched.h)
NAMESPACE_TYPES = {
    "NEWNS": 0x00020000,
    "NEWCGROUP": 0x02000000,  # new
    "NEWUTS": 0x04000000,
    "NEWIPC": 0x08000000,
    "NEWUSER": 0x10000000,
    "NEWPID": 0x20000000,
    "NEWNET": 0x40000000,
}


class Namespace(Record):
    FIELDS = (Field("type", STR, ""), Field("path", STR, ""))


class Device(Record):
    """A device node to create, or a device cgroup rule. ``type`` is a character code
    (99 'c', 98 'b', 97 'a' for "all" in cgroup rules); -1 is the wildcard major/minor."""

    FIELDS = (
        Field("type", INT, 0),
        Field("path", STR, ""),
        Field("major_number", INT, 0),
        Field("minor_number", INT, 0),
        Field("cgroup_permissions", STR, ""),
        Field("file_mode", INT, 0),
        Field("uid", INT, 0),
        Field("gid", INT, 0),
    )


class Mount(Record):
    FIELDS = (
        Field("type", STR, ""),  # "bind" | "tmpfs"
        Field("source", STR, ""),
        Field("destination", STR, ""),
        Field("writable", BOOL, False),
        Field("relabel", STR, ""),  # "z" | "Z"
        Field("private", BOOL, False),
        Field("slave", BOOL, False),
        Field("data", STR, ""),  # new: tmpfs options such as "size=64m,mode=1777"
        # new (OCI): an OCI mount, applied exactly as listed (runc's configs.Mount): ``type``
        # is the filesystem type or "bind", ``flags`` the MS_* flags of mount(2) its options
        # give, ``propagation`` the MS_PRIVATE/MS_SLAVE/... (| MS_REC) changes made after it,
        # in order; ``writable``/``private``/``slave`` are then unused
        Field("oci", BOOL, False),
        Field("flags", INT, 0),  # new (OCI): MS_* flags (with ``oci``)
        Field("propagation", ListOf(INT), ()),  # new (OCI): propagation changes (with ``oci``)
        # new (OCI): runc's tmpcopyup: a tmpfs starts with a copy of what it covers
        Field("copy_up", BOOL, False),
        # new (OCI): runtime-spec 1.1's recursive attributes (rro, rnosuid, ...): the
        # MOUNT_ATTR_* bits set and cleared on the mount and every mount below it
        Field("rec_attr_set", INT, 0),
        Field("rec_attr_clr", INT, 0),
    )


class MountConfig(Record):
    FIELDS = (
        Field("no_pivot_root", BOOL, False),
        Field("pivot_dir", STR, ""),
        Field("readonly_fs", BOOL, False),
        Field("mounts", ListOf(Mount), ()),
        Field("device_nodes", ListOf(Device), ()),
        Field("mount_label", STR, ""),
        # new (OCI): false when ``mounts`` lists every mount (an OCI spec): no built-in
        # /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue and /sys then
        Field("system_mounts", BOOL, True),
        # new (OCI): linux.rootfsPropagation: MS_* propagation (| MS_REC) of the container's
        # / after pivot_root (0: private, minins's default)
        Field("rootfs_propagation", INT, 0),
    )


class Network(Record):
    FIELDS = (
        Field("type", STR, ""),  # "loopback" | "veth" | "netns"
        Field("bridge", STR, ""),
        Field("veth_prefix", STR, ""),
        Field("mac_address", STR, ""),
        Field("address", STR, ""),
        Field("ipv6_address", STR, ""),
        Field("gateway", STR, ""),
        Field("ipv6_gateway", STR, ""),
        Field("mtu", INT, 0),
        Field("txqueuelen", INT, 0),
        Field("hairpin_mode", BOOL, False),
        Field("ns_path", STR, ""),  # the seed's netns strategy: join this network namespace
    )


class Route(Record):
    FIELDS = (
        Field("destination", STR, ""),
        Field("source", STR, ""),
        Field("gateway", STR, ""),
        Field("interface_name", STR, ""),
    )


class WeightDevice(Record):
    """A block device's blkio/io weight (runc's ``WeightDevice``; OCI
    ``linux.resources.blockIO.weightDevice[]``): 0 leaves a weight unset."""

    FIELDS = (Field("major", INT, 0), Field("minor", INT, 0), Field("weight", INT, 0),
              Field("leaf_weight", INT, 0))


class ThrottleDevice(Record):
    """A block device's bytes or I/O operations per second (runc's ``ThrottleDevice``);
    ``rate`` 0 lifts the limit."""

    FIELDS = (Field("major", INT, 0), Field("minor", INT, 0), Field("rate", INT, 0))


class HugepageLimit(Record):
    """``hugetlb.<page_size>.limit_in_bytes`` (v1) or ``.max`` (v2): ``page_size`` as the
    kernel names it (``2MB``, ``1GB``, ``64KB``), ``limit`` in bytes."""

    FIELDS = (Field("page_size", STR, ""), Field("limit", INT, 0))


class IfPrioMap(Record):
    """One line of ``net_prio.ifpriomap``: an interface's priority."""

    FIELDS = (Field("interface", STR, ""), Field("priority", INT, 0))


class _StrMap:
    """``unified``: a JSON object of strings (a cgroup v2 file name -> the value to write),
    kept as a tuple of ``(key, value)`` pairs in the object's order."""

    name = "an object"

    def load(self, value, path):
        if not isinstance(value, dict):
            raise ConfigError(path, "must be an object of strings, not %s"
                              % type(value).__name__)
        out = []
        for k, v in value.items():
            if not isinstance(v, str):
                raise ConfigError("%s.%s" % (path, k), "must be a string")
            out.append((k, v))
        return tuple(out)

    def dump(self, value):
        return dict(value)


class Cgroup(Record):
    FIELDS = (
        Field("name", STR, ""),
        Field("parent", STR, ""),
        Field("allow_all_devices", BOOL, False),
        Field("allowed_devices", ListOf(Device), ()),
        Field("memory", INT, 0),
        Field("memory_reservation", INT, 0),
        Field("memory_swap", INT, 0),
        Field("cpu_shares", INT, 0),
        Field("cpu_quota", INT, 0),
        Field("cpu_period", INT, 0),
        Field("cpuset_cpus", STR, ""),
        Field("cpuset_mems", STR, ""),
        Field("blkio_weight", INT, 0),
        Field("freezer", STR, ""),
        Field("slice", STR, ""),  # the systemd driver's slice (default system.slice)
        Field("pids_limit", INT, 0),  # new: pids.max (0: no limit)
        Field("driver", STR, ""),  # new: "cgroupfs" (default) or "systemd"
        Field("scope_prefix", STR, ""),  # new (runc's ScopePrefix): <prefix>-<name>.scope
        # new (OCI): the rest of runtime-spec linux.resources (minins.oci.resources), in
        # runc's terms; -1 is "unset" where 0 is a value (swappiness, idle, burst)
        Field("kernel_memory_tcp", INT, 0),  # memory.kmem.tcp.limit_in_bytes (v1)
        Field("memory_swappiness", INT, -1),  # memory.swappiness 0..100 (v1)
        Field("oom_kill_disable", BOOL, False),  # memory.oom_control (v1)
        Field("cpu_rt_period", INT, 0),  # cpu.rt_period_us (v1)
        Field("cpu_rt_runtime", INT, 0),  # cpu.rt_runtime_us (v1)
        Field("cpu_idle", INT, -1),  # cpu.idle: 0 or 1
        Field("cpu_burst", INT, -1),  # cpu.cfs_burst_us (v1), cpu.max.burst (v2)
        Field("blkio_leaf_weight", INT, 0),  # blkio.leaf_weight (v1)
        Field("blkio_weight_device", ListOf(WeightDevice), ()),
        Field("blkio_throttle_read_bps_device", ListOf(ThrottleDevice), ()),
        Field("blkio_throttle_write_bps_device", ListOf(ThrottleDevice), ()),
        Field("blkio_throttle_read_iops_device", ListOf(ThrottleDevice), ()),
        Field("blkio_throttle_write_iops_device", ListOf(ThrottleDevice), ()),
        Field("hugetlb_limit", ListOf(HugepageLimit), ()),
        Field("net_cls_classid", INT, 0),  # net_cls.classid (v1)
        Field("net_prio_ifpriomap", ListOf(IfPrioMap), ()),  # net_prio.ifpriomap (v1)
        Field("unified", _StrMap(), ()),  # v2 file -> value, written last
    )


class Rlimit(Record):
    FIELDS = (Field("type", INT, 0), Field("hard", INT, 0), Field("soft", INT, 0))


class _SeccompKind:
    """``seccomp``: an OCI ``linux.seccomp`` object (:mod:`minins.seccomp.profile`),
    ``"default"`` (the default profile, resolved when the container starts against its
    capabilities and architecture), or ``null``/``"unconfined"`` (no filter)."""

    name = "an object"

    def load(self, value, path):
        if value is None or value == "unconfined":
            return None
        if value == "default":
            return "default"
        if not isinstance(value, dict):
            raise ConfigError(path, 'must be an OCI seccomp object, "default", "unconfined" '
                              "or null, not %r" % (value,))
        from .seccomp import profile

        return profile.loads(value, path)

    def dump(self, value):
        return value if value is None or isinstance(value, str) else value.to_json()


class Config(Record):
    FIELDS = (
        Field("mount_config", Optional(MountConfig), None),
        Field("root_fs", STR, ""),
        Field("hostname", STR, ""),
        Field("user", STR, ""),
        Field("working_dir", STR, ""),
        Field("environment", ListOf(STR), ()),
        Field("tty", BOOL, False),
        Field("namespaces", ListOf(Namespace), ()),
        Field("capabilities", ListOf(STR), ()),
        Field("ambient_capabilities", ListOf(STR), ()),  # new
        Field("networks", ListOf(Network), ()),
        Field("routes", ListOf(Route), ()),
        Field("cgroups", Optional(Cgroup), None),
        Field("apparmor_profile", STR, ""),
        Field("process_label", STR, ""),
        Field("restrict_sys", BOOL, False),
        Field("rlimits", ListOf(Rlimit), ()),
        Field("additional_groups", ListOf(INT), ()),
        Field("uid_mappings", ListOf(IDMap), ()),
        Field("gid_mappings", ListOf(IDMap), ()),
        Field("no_new_privileges", BOOL, False),  # new: PR_SET_NO_NEW_PRIVS
        Field("labels", ListOf(STR), ()),  # new: "key=value" metadata, copied to the state
        Field("seccomp", _SeccompKind(), None),  # new: OCI linux.seccomp, "default" or null
        Field("stop_signal", STR, ""),  # new: what `minins stop` sends first ("": SIGTERM)
        # new (OCI): linux.domainname (setdomainname(2); needs NEWUTS)
        Field("domainname", STR, ""),
        # new (OCI): process.user.umask (None: 0022)
        Field("umask", Optional(INT), None),
        # new (OCI): the effective, permitted and inheritable capability sets (None: the
        # effective and permitted sets are ``capabilities``, the bounding set, and the
        # inheritable set is ``ambient_capabilities``)
        Field("effective_capabilities", Optional(ListOf(STR)), None),
        Field("permitted_capabilities", Optional(ListOf(STR)), None),
        Field("inheritable_capabilities", Optional(ListOf(STR)), None),
        # new (OCI): process.oomScoreAdj, written to /proc/self/oom_score_adj (None: kept)
        Field("oom_score_adj", Optional(INT), None),
        # new (OCI): linux.personality domain: "LINUX" or "LINUX32" (personality(2))
        Field("personality", STR, ""),
        # new (OCI): linux.sysctl as "name=value" (written under /proc/sys in the container)
        Field("sysctl", ListOf(STR), ()),
        # new (OCI): linux.maskedPaths and linux.readonlyPaths (None: restrict_sys's lists)
        Field("masked_paths", Optional(ListOf(STR)), None),
        Field("readonly_paths", Optional(ListOf(STR)), None),
    )

    def namespace(self, type_):
        """The :class:`Namespace` entry of that type, or ``None``."""
        for ns in self.namespaces:
            if ns.type == type_:
                return ns
        return None

    def has_namespace(self, type_):
        return self.namespace(type_) is not None

    def clone_flags(self):
        """CLONE_* flags of the namespaces to create (those without a path)."""
        flags = 0
        for ns in self.namespaces:
            if not ns.path:
                flags |= NAMESPACE_TYPES[ns.type]
        return flags


# --- load and dump ---------------------------------------------------------------------------

def loads(text, check=True):
    """Parse container.json text into a :class:`Config`, validated unless ``check`` is false.

    Any JSON the standard library refuses -- a syntax error, bytes that are not UTF-8,
    ``NaN``/``Infinity`` (not JSON), an integer of more digits than Python converts, nesting
    deeper than the interpreter's recursion limit -- is a :class:`ConfigError`."""
    data = parse_json(text)
    cfg = Config.from_json(data)
    if check:
        validate(cfg)
    return cfg


def load(path, check=True):
    """Read and parse a container.json file."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("", "cannot read configuration %s: %s" % (path, e.strerror)) from None
    try:
        return loads(text, check)
    except ConfigError as e:
        if not e.field:
            e.message = "%s: %s" % (path, e.message)
        raise


def dumps(cfg, indent=2):
    import json

    return json.dumps(cfg.to_json(), indent=indent)


MAX_JSON_DEPTH = 256  # arrays and objects inside each other; a real config nests 6-8 deep


def parse_json(text):
    """``json.loads(text)`` (str or bytes), with every way it can refuse a document turned
    into one :class:`ConfigError` without a field (the caller names the file).

    A document nested deeper than :data:`MAX_JSON_DEPTH` is refused before the parser sees
    it: the parser recurses once per level, and on Python 3.8 a RecursionError raised deep
    inside it while the stack is already deep aborts the interpreter ("Fatal Python error:
    Cannot recover from stack overflow") instead of raising."""
    import json

    if json_depth(text) > MAX_JSON_DEPTH:
        raise ConfigError("", "not valid JSON: nested too deeply (more than %d levels)"
                          % MAX_JSON_DEPTH)
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ConfigError("", "not valid JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise ConfigError("", "not valid JSON: %s" % _one_line(e)) from None


def json_depth(text):
    """How deep arrays and objects nest in the JSON ``text`` (str, or bytes in any encoding
    json accepts), counting the brackets outside strings; 0 when it cannot be decoded (the
    parser then says why). Not a validator: unbalanced brackets count as they come."""
    import json
    import re

    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode(json.detect_encoding(text), "strict")
        except (UnicodeDecodeError, LookupError):
            return 0
    outside = re.sub(r'"(?:[^"\\]|\\.)*"', "", text, flags=re.S)
    depth = deepest = 0
    for ch in re.sub(r"[^\[\]{}]", "", outside):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _not_json(name):
    raise ValueError("%s is not a JSON value" % name)


def _one_line(e):
    return " ".join(str(e).split())


# --- validation ------------------------------------------------------------------------------

_MAX_U32_ID = _idmap.MAX_ID
_RLIMIT_COUNT = 16  # RLIM_NLIMITS
_U64 = 2 ** 64 - 1


def validate(cfg):
    """Check the whole configuration; raise :class:`ConfigError` for the first problem."""
    _check_text(cfg, "")
    _check_namespaces(cfg)
    _check_idmaps(cfg)
    _check_process(cfg)
    _check_mounts(cfg)
    _check_oci_process(cfg)
    if cfg.networks or cfg.routes:
        if not cfg.has_namespace("NEWNET"):
            raise ConfigError("networks" if cfg.networks else "routes",
                              "needs a NEWNET namespace")
        from . import netconfig

        netconfig.validate(cfg.networks, cfg.routes)
    if cfg.stop_signal:
        from .signals import parse_signal

        try:
            if parse_signal(cfg.stop_signal) == 0:
                raise ValueError("signal 0 stops nothing")
        except ValueError as e:
            raise ConfigError("stop_signal", "%s (a name like SIGTERM or TERM, or a number "
                              "from 1 to 64)" % e) from None
    if cfg.cgroups is not None:
        from .cgroups import values

        values.validate(cfg.cgroups, "cgroups")
    if cfg.seccomp is not None and cfg.seccomp != "default":
        from .seccomp import profile

        if not isinstance(cfg.seccomp, profile.Seccomp):
            raise ConfigError("seccomp", 'must be an OCI seccomp object, "default" or null')
        profile.validate(cfg.seccomp, "seccomp")
    return cfg


def _check_text(value, path):
    """Every string of the configuration goes to the kernel as UTF-8 (a path, a hostname, a
    link name, a cgroup file): one that cannot be encoded is refused here, by its field."""
    if isinstance(value, str):
        problem = text_error(value)
        if problem:
            raise ConfigError(path, problem)
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            _check_text(item, "%s[%d]" % (path, i))
    elif isinstance(value, Record):
        for f in value.FIELDS:
            _check_text(getattr(value, f.name), "%s.%s" % (path, f.name) if path else f.name)


def _check_namespaces(cfg):
    seen = set()
    for i, ns in enumerate(cfg.namespaces):
        here = "namespaces[%d]" % i
        if ns.type not in NAMESPACE_TYPES:
            raise ConfigError(here + ".type", "unknown namespace type %r; known: %s"
                              % (ns.type, ", ".join(sorted(NAMESPACE_TYPES))))
        if ns.type in seen:
            raise ConfigError(here + ".type", "namespace %s is listed twice" % ns.type)
        seen.add(ns.type)
        if ns.path and not ns.path.startswith("/"):
            raise ConfigError(here + ".path", "must be an absolute path")


def _check_idmaps(cfg):
    userns = cfg.namespace("NEWUSER")
    for field in ("uid_mappings", "gid_mappings"):
        maps = getattr(cfg, field)
        if maps and (userns is None or userns.path):
            raise ConfigError(field, "mappings need a new user namespace (NEWUSER without a "
                              "path)")
        if userns is not None and not userns.path and not maps:
            raise ConfigError(field, "a new user namespace (NEWUSER) needs mappings")
        _idmap.validate_mappings(maps, field)


def _check_uts_name(cfg, field):
    """``hostname`` or ``domainname``: set only in a NEWUTS namespace of the container's,
    at most 64 bytes (the kernel's __NEW_UTS_LEN; sethostname(2), setdomainname(2))."""
    name = getattr(cfg, field)
    if name:
        if not cfg.has_namespace("NEWUTS"):
            raise ConfigError(field, "setting a %s needs a NEWUTS namespace" % field)
        if len(name.encode()) > 64:
            raise ConfigError(field, "must be at most 64 bytes")


def _check_process(cfg):
    _check_uts_name(cfg, "hostname")
    for i, env in enumerate(cfg.environment):
        if "=" not in env or env.startswith("="):
            raise ConfigError("environment[%d]" % i, "must be NAME=VALUE, not %r" % env)
    if cfg.working_dir and not cfg.working_dir.startswith("/"):
        raise ConfigError("working_dir", "must be an absolute path")
    if cfg.user:
        parts = cfg.user.split(":")
        if len(parts) > 2 or not all(parts):
            raise ConfigError("user", "must be name|uid[:group|gid], not %r" % cfg.user)
    for i, gid in enumerate(cfg.additional_groups):
        if not 0 <= gid <= _MAX_U32_ID:
            raise ConfigError("additional_groups[%d]" % i, "must be within 0..%d" % _MAX_U32_ID)
    bounding = _caps.mask_of(cfg.capabilities, "capabilities")
    for i, name in enumerate(cfg.ambient_capabilities):
        if not bounding >> _caps.cap_number(name, "ambient_capabilities[%d]" % i) & 1:
            raise ConfigError("ambient_capabilities[%d]" % i,
                              "%s must also be in capabilities" % name)
    seen = set()
    for i, rl in enumerate(cfg.rlimits):
        here = "rlimits[%d]" % i
        if not 0 <= rl.type < _RLIMIT_COUNT:
            raise ConfigError(here + ".type", "must be an RLIMIT_* number within 0..%d"
                              % (_RLIMIT_COUNT - 1))
        if rl.type in seen:
            raise ConfigError(here + ".type", "resource %d is listed twice" % rl.type)
        seen.add(rl.type)
        for name in ("soft", "hard"):
            if not 0 <= getattr(rl, name) <= _U64:
                raise ConfigError("%s.%s" % (here, name), "must be within 0..2**64-1")
        if rl.soft > rl.hard:
            raise ConfigError(here + ".soft", "must not exceed hard (%d)" % rl.hard)


PERSONALITIES = ("LINUX", "LINUX32")


def _sysctl_namespace(name):
    """The namespace a sysctl belongs to (runc's validator), or None for one the host's
    kernel shares with every container."""
    if name.startswith("fs.mqueue.") or name in ("kernel.msgmax", "kernel.msgmnb",
                                                 "kernel.msgmni", "kernel.sem",
                                                 "kernel.shmall", "kernel.shmmax",
                                                 "kernel.shmmni", "kernel.shm_rmid_forced"):
        return "NEWIPC"
    if name.startswith("net."):
        return "NEWNET"
    if name in ("kernel.hostname", "kernel.domainname"):
        return "NEWUTS"
    return None


def _check_oci_process(cfg):
    _check_uts_name(cfg, "domainname")
    if cfg.umask is not None and not 0 <= cfg.umask <= 0o777:
        raise ConfigError("umask", "must be within 0..0o777")
    sets = {}
    for name in ("effective", "permitted", "inheritable"):
        names = getattr(cfg, name + "_capabilities")
        if names is not None:
            sets[name] = _caps.mask_of(names, name + "_capabilities")
    for i, cap in enumerate(cfg.ambient_capabilities):
        bit = 1 << _caps.cap_number(cap, "ambient_capabilities[%d]" % i)
        for name in ("permitted", "inheritable"):
            if name in sets and not sets[name] & bit:
                raise ConfigError("ambient_capabilities[%d]" % i, "%s must also be in "
                                  "%s_capabilities (capabilities(7))" % (cap, name))
    if cfg.oom_score_adj is not None and not -1000 <= cfg.oom_score_adj <= 1000:
        raise ConfigError("oom_score_adj", "must be within -1000..1000")
    if cfg.personality and cfg.personality not in PERSONALITIES:
        raise ConfigError("personality", "must be LINUX or LINUX32, not %r" % cfg.personality)
    for i, item in enumerate(cfg.sysctl):
        name, eq, _value = item.partition("=")
        here = "sysctl[%d]" % i
        if not eq or not name or name.startswith(".") or ".." in name or "/" in name:
            raise ConfigError(here, "must be name=value with a dotted name (net.ipv4.ip_forward)"
                              ", not %r" % item)
        ns = _sysctl_namespace(name)
        if ns is None:
            raise ConfigError(here, "%s is not in a namespace of the container's own: it "
                              "would change the host" % name)
        own = cfg.namespace(ns)
        if own is None:
            raise ConfigError(here, "%s needs a %s namespace of the container's own"
                              % (name, ns))
    for field in ("masked_paths", "readonly_paths"):
        for i, path in enumerate(getattr(cfg, field) or ()):
            if not path.startswith("/"):
                raise ConfigError("%s[%d]" % (field, i), "must be an absolute path")
        if getattr(cfg, field) and not cfg.has_namespace("NEWNS"):
            raise ConfigError(field, "needs a NEWNS namespace")


def _check_mounts(cfg):
    newns = cfg.has_namespace("NEWNS")
    if cfg.mount_config is not None and not newns:
        raise ConfigError("mount_config", "needs a NEWNS namespace")
    if cfg.restrict_sys and not newns:
        raise ConfigError("restrict_sys", "needs a NEWNS namespace")
    mc = cfg.mount_config
    if mc is None:
        return
    if mc.pivot_dir and not mc.pivot_dir.startswith("/"):
        raise ConfigError("mount_config.pivot_dir", "must be an absolute path in the rootfs")
    if mc.rootfs_propagation not in PROPAGATIONS and mc.rootfs_propagation != 0:
        raise ConfigError("mount_config.rootfs_propagation", "must be one MS_PRIVATE, "
                          "MS_SLAVE, MS_SHARED or MS_UNBINDABLE flag, with or without MS_REC")
    for i, m in enumerate(mc.mounts):
        here = "mount_config.mounts[%d]" % i
        if m.oci:
            _check_oci_mount(m, here)
            continue
        if m.flags or m.propagation:
            raise ConfigError(here + ".flags", "flags and propagation are for OCI mounts "
                              "(\"oci\": true)")
        if m.type not in ("bind", "tmpfs"):
            raise ConfigError(here + ".type", "unsupported mount type %r (bind or tmpfs)"
                              % m.type)
        if not m.destination.startswith("/"):
            raise ConfigError(here + ".destination", "must be an absolute path")
        if m.type == "bind" and not m.source.startswith("/"):
            raise ConfigError(here + ".source", "a bind mount needs an absolute source path")
        if m.relabel not in ("", "z", "Z"):
            raise ConfigError(here + ".relabel", "must be \"z\" or \"Z\"")
        if m.private and m.slave:
            raise ConfigError(here + ".slave", "a mount cannot be both private and slave")
    for i, d in enumerate(mc.device_nodes):
        _check_device_node(d, "mount_config.device_nodes[%d]" % i)


# mount(2)'s MS_* flags (linux/mount.h), the one table of them: OCI mounts carry them in
# ``Mount.flags`` and ``Mount.propagation``; minins.oci.bundle and minins.rootfs use these names.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 0x10, 0x20, 0x40, 0x80
MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME, MS_BIND = 0x100, 0x400, 0x800, 0x1000
MS_MOVE, MS_REC, MS_SILENT, MS_POSIXACL = 0x2000, 0x4000, 0x8000, 1 << 16
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME = 1 << 21, 1 << 23, 1 << 24, 1 << 25
# MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED, each with or without MS_REC
PROPAGATIONS = tuple(p | r for p in (MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED)
                     for r in (0, MS_REC))
# what an OCI mount's flags may hold: every per-mount and superblock flag of mount(2) that a
# mount option names (MS_RDONLY ... MS_LAZYTIME), MS_BIND, MS_REC and MS_REMOUNT; the
# propagation flags go in ``propagation``
OCI_MOUNT_FLAGS = (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS | MS_REMOUNT
                   | MS_MANDLOCK | MS_DIRSYNC | MS_NOSYMFOLLOW | MS_NOATIME | MS_NODIRATIME
                   | MS_BIND | MS_REC | MS_SILENT | MS_POSIXACL | MS_RELATIME | MS_I_VERSION
                   | MS_STRICTATIME | MS_LAZYTIME)


def _check_oci_mount(m, here):
    if not m.type or "\n" in m.type or "/" in m.type:
        raise ConfigError(here + ".type", "must name a filesystem type or bind, not %r"
                          % m.type)
    if not m.destination.startswith("/"):
        raise ConfigError(here + ".destination", "must be an absolute path")
    if m.flags & ~OCI_MOUNT_FLAGS or m.flags < 0:
        raise ConfigError(here + ".flags", "has flags no mount option sets: %#x"
                          % (m.flags & ~OCI_MOUNT_FLAGS))
    if m.type == "bind" and not m.source.startswith("/"):
        raise ConfigError(here + ".source", "a bind mount needs an absolute source path")
    for name in ("rec_attr_set", "rec_attr_clr"):
        if getattr(m, name) & ~0x2000FF or getattr(m, name) < 0:
            raise ConfigError("%s.%s" % (here, name), "must be MOUNT_ATTR_* bits")
    if m.copy_up and m.type != "tmpfs":
        raise ConfigError(here + ".copy_up", "is for a tmpfs (tmpcopyup)")
    for j, p in enumerate(m.propagation):
        if p not in PROPAGATIONS:
            raise ConfigError("%s.propagation[%d]" % (here, j), "must be one MS_PRIVATE, "
                              "MS_SLAVE, MS_SHARED or MS_UNBINDABLE flag, with or without "
                              "MS_REC")


def _check_device_node(d, here):
    if d.type not in (ord("c"), ord("b"), ord("p")):
        raise ConfigError(here + ".type", "must be 99 (c), 98 (b) or 112 (p), not %r"
                          % d.type)
    if not d.path.startswith("/dev/") or "/../" in d.path + "/":
        raise ConfigError(here + ".path", "must be an absolute path under /dev")
    # The kernel's dev_t has 12 bits of major and 20 of minor (linux/kdev_t.h): mknod takes
    # the low 32 bits of makedev(), so a larger number would name another device.
    for name, top in (("major_number", 0xFFF), ("minor_number", 0xFFFFF)):
        if not 0 <= getattr(d, name) <= top:
            raise ConfigError("%s.%s" % (here, name), "must be a device number within 0..%d "
                              "(no wildcard for a node)" % top)
    if not 0 <= d.file_mode <= 0o7777:
        raise ConfigError(here + ".file_mode", "must be permission bits within 0..0o7777")
    for name in ("uid", "gid"):
        if not 0 <= getattr(d, name) <= _MAX_U32_ID:
            raise ConfigError("%s.%s" % (here, name), "must be within 0..%d" % _MAX_U32_ID)


# --- the default ---------------------------------------------------------------------------

def _simple_device(path, major, minor):
    return Device(type=ord("c"), path=path, major_number=major, minor_number=minor,
                  cgroup_permissions="rwm", file_mode=0o666)


DEFAULT_DEVICE_NODES = (
    _simple_device("/dev/null", 1, 3),
    _simple_device("/dev/zero", 1, 5),
    _simple_device("/dev/full", 1, 7),
    _simple_device("/dev/tty", 5, 0),
    _simple_device("/dev/random", 1, 8),
    _simple_device("/dev/urandom", 1, 9),
)

def _rule(kind, major, minor, perms, path=""):
    return Device(type=ord(kind), path=path, major_number=major, minor_number=minor,
                  cgroup_permissions=perms)


# What a container may use when the configuration lists no device rules of its own (an empty
# list would otherwise deny even /dev/null): libcontainer's DefaultAllowedDevices without the
# host's console, tty0, tty1 and /dev/net/tun, which runc has since dropped too (with MKNOD a
# default capability, any allowed number is a device the container can make and open).
DEFAULT_ALLOWED_DEVICES = (
    _rule("c", -1, -1, "m"), _rule("b", -1, -1, "m"),
    _rule("c", 136, -1, "rwm"),  # /dev/pts/*
    _rule("c", 5, 2, "rwm", "/dev/ptmx"),
) + DEFAULT_DEVICE_NODES

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def rootless(cfg, uid, gid):
    """``cfg`` adapted for an unprivileged user: a new user namespace mapping container root to
    ``uid``/``gid`` (the only ids such a user may map without a setuid helper). A
    configuration that already has a user namespace is returned unchanged."""
    if cfg.has_namespace("NEWUSER"):
        return cfg
    return cfg.replace(
        namespaces=(Namespace(type="NEWUSER"),) + tuple(cfg.namespaces),
        uid_mappings=(IDMap(container_id=0, host_id=uid, size=1),),
        gid_mappings=(IDMap(container_id=0, host_id=gid, size=1),),
    )


# Where Unix sockets usually live on a host, each with the mode of its tmpfs: a read-only
# bind does not stop connect(2), so the default container gets an empty tmpfs over every one
# of them (the host's daemons: docker, containerd, systemd, dbus under /run; X11 under /tmp;
# LXD, incus, kubelet under /var/lib; postfix under /var/spool; snaps under /var/snap; agents
# and editors' servers in home directories). /dev (with /dev/shm and /dev/log) is the
# container's own anyway.
SOCKET_PLACES = (
    ("/tmp", "mode=1777"), ("/run", "mode=755"), ("/var/run", "mode=755"),
    ("/var/tmp", "mode=1777"), ("/var/lib", "mode=755"), ("/var/spool", "mode=755"),
    ("/var/snap", "mode=755"), ("/home", "mode=755"), ("/root", "mode=700"),
)


def socket_covers(places=SOCKET_PLACES, isdir=None, realpath=None):
    """The tmpfs mounts that hide the host's socket places (the default's ``mounts``):
    /tmp and /run always, the others where this host has them (a missing mount point in
    the read-only host / could not be made), once each (/var/run is mostly a link to
    /run)."""
    import os

    isdir = isdir or os.path.isdir
    realpath = realpath or os.path.realpath
    out, seen = [], []
    for path, data in places:
        if path not in ("/tmp", "/run"):
            if not isdir(path):
                continue
            real = realpath(path)
            if any(real == s or real.startswith(s.rstrip("/") + "/") for s in seen):
                continue
        seen.append(realpath(path))
        out.append(Mount(type="tmpfs", destination=path, writable=True, data=data))
    return tuple(out)


def default_config(root_fs="/"):
    """What ``minins run`` uses without ``--config``: needs no image.

    New mount, uts, ipc, pid and net namespaces; the host's ``/`` bound read-only as the
    rootfs (or ``root_fs``, an image); fresh ``/proc``, a minimal ``/dev``; an empty tmpfs
    over each place where the host's Unix sockets usually are (:data:`SOCKET_PLACES`:
    ``/tmp``, ``/run``, ``/var/tmp``, ``/var/lib``, ``/var/spool``, ``/var/snap``,
    ``/home``, ``/root``, those this host has; with an image, which has no host socket, only
    ``/tmp`` and ``/run``); ``lo`` up; hostname ``minins``; restrict_sys; the default capability
    set of today's runtimes; no_new_privileges; the default seccomp profile
    (``"default"``: Moby's, resolved at start against the capabilities); a cgroup of its own (named after the
    container, below the caller's cgroup) with the default device rules, so that pause,
    stats and kill --all work. What it does not isolate: README, "What the default
    isolates".
    """
    import os

    host = os.path.realpath(root_fs) == "/"
    return Config(
        root_fs=root_fs,
        hostname="minins",
        # no HOME: the init sets it from the user's passwd entry (root's here, nobody's for
        # `minins exec --user nobody`), as runc does when the environment has none
        environment=("PATH=" + DEFAULT_PATH, "TERM=xterm", "HOSTNAME=minins"),
        working_dir="/",
        namespaces=tuple(Namespace(type=t) for t in
                         ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET")),
        capabilities=_caps.DEFAULT_CAPS,
        networks=(Network(type="loopback"),),
        restrict_sys=True,
        no_new_privileges=True,
        seccomp="default",
        cgroups=Cgroup(),
        mount_config=MountConfig(
            readonly_fs=True,
            # the host's sockets (docker, containerd, systemd, ...) must not be reachable
            # through the read-only host /
            mounts=socket_covers() if host else socket_covers(SOCKET_PLACES[:2]),
            device_nodes=DEFAULT_DEVICE_NODES,
        ),
    )
