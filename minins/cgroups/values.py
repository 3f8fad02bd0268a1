"""Pure cgroup values: config validation and the files each driver writes.

Nothing here touches the kernel. :func:`validate` checks a cgroup config (the seed's
``cgroups.Cgroup`` fields plus ``pids_limit``) before anything is created; :func:`plan_v1`
and :func:`plan_v2` turn a valid config into the ordered list of file writes a driver makes;
the conversions between v1 and v2 units (shares to weight, memory+swap to swap, blkio weight
to io weight) are the ones runc and crun use.

Kernel documents: Documentation/admin-guide/cgroup-v1/{memory,cpusets,devices,blkio-controller,
pids}.rst, Documentation/scheduler/sched-bwc.rst, Documentation/admin-guide/cgroup-v2.rst.
"""
import math as _math
import struct as _struct
from itertools import permutations as _permutations

from ..errors import ConfigError
from ..record import text_error

# The v1 subsystems a driver manages, in the order it creates and fills them: cpuset first
# (a task cannot enter a cpuset with no cpus or mems), devices before anything that could let
# the container run, freezer last. Joining follows the same order.
V1_SUBSYSTEMS = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio",
                 "hugetlb", "net_cls", "net_prio", "perf_event", "freezer")
# Made only for a container whose config sets one of their limits (runc makes them always;
# most containers would only pay for the mkdir and join).
V1_ON_DEMAND = ("hugetlb", "net_cls", "net_prio")
# v2 controllers, in the order the kernel lists them.
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids")

FROZEN, THAWED, FREEZING = "FROZEN", "THAWED", "FREEZING"

DEVICE_TYPES = {ord("a"): "a", ord("b"): "b", ord("c"): "c"}
MAX_MAJOR = 0xFFF  # the kernel's dev_t: 12 bits of major, 20 of minor (linux/kdev_t.h)
MAX_MINOR = 0xFFFFF
U32, U64 = 2 ** 32 - 1, 2 ** 64 - 1
SHARES_MIN, SHARES_MAX = 2, 262144  # kernel/sched: MIN_SHARES, MAX_SHARES
PERIOD_MIN, PERIOD_MAX = 1000, 1000000  # µs, sched-bwc.rst
# cfs_quota_us: at least 1 ms (min_cfs_quota_period), at most MAX_BW µs (kernel/sched:
# max_cfs_runtime = MAX_BW * NSEC_PER_USEC, MAX_BW = 2**(64 - BW_SHIFT) - 1, BW_SHIFT 20).
QUOTA_MIN, QUOTA_MAX = 1000, 2 ** 44 - 1
# Memory limits are counted in pages by the kernel's page_counter, whose maximum
# (PAGE_COUNTER_MAX = LONG_MAX / PAGE_SIZE) is "no limit": a byte count is rounded down to
# whole pages, anything from LONG_MAX up means unlimited, and past 2**64-1 memparse wraps
# around (2**64 became a limit of about 0). So a limit is at most LONG_MAX bytes.
MEMORY_MAX = 2 ** 63 - 1
# pids.max refuses PIDS_MAX = PID_MAX_LIMIT + 1 and above (kernel/cgroup/pids.c);
# PID_MAX_LIMIT is 4 * 1024 * 1024 where a long has 64 bits, 32768 (PID_MAX_DEFAULT) else.
PIDS_LIMIT_MAX = 4 * 1024 * 1024 if _struct.calcsize("l") > 4 else 32768
# cpu.rt_runtime_us: at most max_rt_runtime = MAX_BW ns (kernel/sched/rt.c, the same bound as
# the CFS quota's); cpu.rt_period_us: at most U64_MAX ns, and not 0.
RT_RUNTIME_MAX = (2 ** 44 - 1) // 1000
RT_PERIOD_MAX = U64 // 1000
# The v2 files a unified key may not name: they move processes, kill, freeze or change what
# the container's cgroup is; the driver owns them.
UNIFIED_FORBIDDEN = ("cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze",
                     "cgroup.subtree_control", "cgroup.type")


# --- validation ----------------------------------------------------------------------------

class Settings(object):
    """A checked cgroup config: every field as a plain value, device rules parsed once.

    Built by :func:`parse`; the plans below and the drivers read only this.
    """

    __slots__ = ("name", "parent", "rules", "memory", "memory_reservation", "memory_swap",
                 "cpu_shares", "cpu_quota", "cpu_period", "cpuset_cpus", "cpuset_mems",
                 "blkio_weight", "pids_limit", "freezer", "slice", "driver", "scope_prefix",
                 # new (OCI); the lists are tuples of plain tuples
                 "kernel_memory_tcp", "memory_swappiness", "oom_kill_disable",
                 "cpu_rt_period", "cpu_rt_runtime", "cpu_idle", "cpu_burst",
                 "blkio_leaf_weight", "net_cls_classid", "blkio_weight_device",
                 "blkio_throttle_read_bps_device", "blkio_throttle_write_bps_device",
                 "blkio_throttle_read_iops_device", "blkio_throttle_write_iops_device",
                 "hugetlb_limit", "net_prio_ifpriomap", "unified")

    def copy(self, **changes):
        """The same settings with ``changes`` applied."""
        out = Settings()
        for name in self.__slots__:
            setattr(out, name, changes.pop(name) if name in changes else getattr(self, name))
        if changes:
            raise TypeError("unknown settings: %s" % ", ".join(sorted(changes)))
        return out


_INTS = (("memory", -1), ("memory_reservation", -1), ("memory_swap", -1), ("cpu_shares", 0),
         ("cpu_quota", -1), ("cpu_period", 0), ("blkio_weight", 0), ("pids_limit", -1),
         ("kernel_memory_tcp", -1), ("memory_swappiness", -1), ("cpu_rt_period", 0),
         ("cpu_rt_runtime", -1), ("cpu_idle", -1), ("cpu_burst", -1),
         ("blkio_leaf_weight", 0), ("net_cls_classid", 0))
# Fields whose unset value is -1 (0 is a setting); the others are unset at 0.
_UNSET_MINUS_ONE = ("memory_swappiness", "cpu_idle", "cpu_burst")
THROTTLES = ("blkio_throttle_read_bps_device", "blkio_throttle_write_bps_device",
             "blkio_throttle_read_iops_device", "blkio_throttle_write_iops_device")
_STRS = ("name", "parent", "cpuset_cpus", "cpuset_mems", "freezer", "slice", "driver",
         "scope_prefix")
DRIVERS = ("cgroupfs", "systemd")


def validate(cfg, field="cgroups"):
    """Raise :class:`ConfigError` naming the first bad field of ``cfg``; return ``cfg``."""
    if cfg is not None:
        parse(cfg, field)
    return cfg


def parse(cfg, field="cgroups"):
    """Check ``cfg`` and return its :class:`Settings`; raise :class:`ConfigError` naming
    the first bad field (``cgroups.blkio_weight: must be 10..1000``)."""
    out = Settings()
    for name, lo in _INTS:
        value = getattr(cfg, name, -1 if name in _UNSET_MINUS_ONE else 0)
        if type(value) is not int:  # bool is not a number of bytes
            raise ConfigError("%s.%s" % (field, name), "must be an integer (got %r)"
                              % (value,))
        if value < lo:
            raise ConfigError("%s.%s" % (field, name), "must be at least %d (got %d)"
                              % (lo, value))
        setattr(out, name, value)
    for name in _STRS:
        value = getattr(cfg, name, "") or ""
        if not isinstance(value, str) or "\0" in value or "\n" in value:
            raise ConfigError("%s.%s" % (field, name), "must be a one-line string (got %r)"
                              % (value,))
        if text_error(value):
            raise ConfigError("%s.%s" % (field, name), text_error(value))
        setattr(out, name, value)
    _check_names(out, field)
    _parse_new(cfg, out, field)
    _check_ranges(out, field)
    _check_new_ranges(out, field)
    _check_systemd(out, field)
    allow_all = getattr(cfg, "allow_all_devices", False)
    if not isinstance(allow_all, bool):
        raise ConfigError(field + ".allow_all_devices", "must be true or false")
    devices = getattr(cfg, "allowed_devices", ()) or ()
    out.rules = [device_rule(d, "%s.allowed_devices[%d]" % (field, i))
                 for i, d in enumerate(devices)]
    if allow_all:
        out.rules = None
    return out


def _items(cfg, name, field, attrs):
    """The list ``name`` of ``cfg`` as a tuple of tuples of ``attrs`` (checked integers or
    strings, by each default's type)."""
    out = []
    items = getattr(cfg, name, ()) or ()
    if not isinstance(items, (list, tuple)):
        raise ConfigError("%s.%s" % (field, name), "must be a list (got %r)" % (items,))
    for i, item in enumerate(items):
        row = []
        for attr, kind in attrs:
            value = getattr(item, attr, None)
            if type(value) is not kind:
                raise ConfigError("%s.%s[%d].%s" % (field, name, i, attr), "must be %s (got "
                                  "%r)" % ("an integer" if kind is int else "a string", value))
            row.append(value)
        out.append(tuple(row))
    return tuple(out)


_DEVICE = (("major", int), ("minor", int))


def _parse_new(cfg, out, field):
    """The fields added for OCI (see :class:`minins.config.Cgroup`), types only."""
    oom = getattr(cfg, "oom_kill_disable", False)
    if not isinstance(oom, bool):
        raise ConfigError(field + ".oom_kill_disable", "must be true or false")
    out.oom_kill_disable = oom
    out.blkio_weight_device = _items(cfg, "blkio_weight_device", field,
                                     _DEVICE + (("weight", int), ("leaf_weight", int)))
    for name in THROTTLES:
        setattr(out, name, _items(cfg, name, field, _DEVICE + (("rate", int),)))
    out.hugetlb_limit = _items(cfg, "hugetlb_limit", field, (("page_size", str),
                                                             ("limit", int)))
    out.net_prio_ifpriomap = _items(cfg, "net_prio_ifpriomap", field,
                                    (("interface", str), ("priority", int)))
    unified = getattr(cfg, "unified", ()) or ()
    if isinstance(unified, dict):
        unified = tuple(unified.items())
    if not all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
               for p in unified):
        raise ConfigError(field + ".unified", "must be an object of strings")
    out.unified = tuple(unified)


def _check_new_ranges(s, field):  # noqa: C901
    def bad(name, message):
        return ConfigError("%s.%s" % (field, name), message)

    if s.kernel_memory_tcp > MEMORY_MAX:
        raise bad("kernel_memory_tcp", "must be at most %d bytes (-1: unlimited, 0: unset)"
                  % MEMORY_MAX)
    if s.memory_swappiness > 100:
        raise bad("memory_swappiness", "must be 0..100 (or -1: unset)")
    if s.cpu_rt_period > RT_PERIOD_MAX:
        raise bad("cpu_rt_period", "must be 1..%d µs (or 0: unset)" % RT_PERIOD_MAX)
    if s.cpu_rt_runtime > RT_RUNTIME_MAX:
        raise bad("cpu_rt_runtime", "must be at most %d µs (-1: unlimited, 0: unset)"
                  % RT_RUNTIME_MAX)
    if s.cpu_rt_period and s.cpu_rt_runtime > s.cpu_rt_period:
        raise bad("cpu_rt_runtime", "must not exceed cpu_rt_period (%d µs)" % s.cpu_rt_period)
    if s.cpu_idle > 1:
        raise bad("cpu_idle", "must be 0 or 1 (or -1: unset)")
    if s.cpu_burst > QUOTA_MAX:
        raise bad("cpu_burst", "must be at most %d µs (or -1: unset)" % QUOTA_MAX)
    if s.cpu_burst > 0 and s.cpu_quota > 0 and s.cpu_burst > s.cpu_quota:
        raise bad("cpu_burst", "must not exceed cpu_quota (%d µs)" % s.cpu_quota)
    if s.blkio_leaf_weight and not 10 <= s.blkio_leaf_weight <= 1000:
        raise bad("blkio_leaf_weight", "must be 10..1000 (or 0: unset)")
    if s.net_cls_classid > U32:
        raise bad("net_cls_classid", "must be at most %d (0: unset)" % U32)
    for i, (major, minor, weight, leaf) in enumerate(s.blkio_weight_device):
        here = "blkio_weight_device[%d]" % i
        _check_device_numbers(major, minor, field + "." + here)
        for name, w in (("weight", weight), ("leaf_weight", leaf)):
            if w and not 10 <= w <= 1000:
                raise bad(here + "." + name, "must be 10..1000 (or 0: unset)")
        if not weight and not leaf:
            raise bad(here, "sets neither weight nor leaf_weight")
    for name in THROTTLES:
        for i, (major, minor, rate) in enumerate(getattr(s, name)):
            here = "%s[%d]" % (name, i)
            _check_device_numbers(major, minor, field + "." + here)
            if not 0 <= rate <= U64:
                raise bad(here + ".rate", "must be 0..2**64-1 (0: no limit)")
    for i, (size, limit) in enumerate(s.hugetlb_limit):
        here = "hugetlb_limit[%d]" % i
        if hugepage_bytes(size) is None:
            raise bad(here + ".page_size", "must be a page size as the kernel names it "
                      "(64KB, 2MB, 1GB), not %r" % size)
        if not 0 <= limit <= MEMORY_MAX:
            raise bad(here + ".limit", "must be 0..%d bytes" % MEMORY_MAX)
    for i, (name, prio) in enumerate(s.net_prio_ifpriomap):
        here = "net_prio_ifpriomap[%d]" % i
        if (not name or len(name.encode()) > 15 or name in (".", "..")
                or set(name) & set("/: \t\n")):
            raise bad(here + ".interface", "must be a network interface name (1 to 15 bytes, "
                      "no '/', ':' or white space), not %r" % name)
        if not 0 <= prio <= U32:
            raise bad(here + ".priority", "must be 0..%d" % U32)
    for key, value in s.unified:
        here = "unified.%s" % key
        controller, dot, rest = key.partition(".")
        if not controller or not dot or not rest or "/" in key or text_error(key):
            raise bad("unified", "%r is not a cgroup v2 file name (controller.name, no '/')"
                      % key)
        if key in UNIFIED_FORBIDDEN:
            raise bad(here, "is the runtime's to write, not a resource")
        if "\0" in value or text_error(value):
            raise bad(here, "must be text without NUL")


def _check_device_numbers(major, minor, here):
    for name, value, top in (("major", major, MAX_MAJOR), ("minor", minor, MAX_MINOR)):
        if not 0 <= value <= top:
            raise ConfigError("%s.%s" % (here, name), "must be 0..%d (got %d)" % (top, value))


def hugepage_bytes(size):
    """The bytes of a huge page size as the hugetlb controller's file names spell it
    (``64KB``, ``2MB``, ``1GB``), or ``None`` if ``size`` is not such a name."""
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    number, unit = size[:-2], size[-2:]
    if unit not in units or not number.isdigit() or number.startswith("0") or not number.isascii():
        return None
    return int(number) * units[unit]


def unsupported(s, v2):
    """``(field, why)`` of the first setting in :class:`Settings` ``s`` that the cgroup
    version cannot take (``v2`` true: the unified hierarchy), or ``None``."""
    if not v2:
        if s.unified:
            return "unified", "needs cgroup v2 (this host's cgroups are v1)"
        return None
    for name, file, unset in (("kernel_memory_tcp", "memory.kmem.tcp.limit_in_bytes", 0),
                              ("memory_swappiness", "memory.swappiness", -1),
                              ("oom_kill_disable", "memory.oom_control", False),
                              ("cpu_rt_period", "cpu.rt_period_us", 0),
                              ("cpu_rt_runtime", "cpu.rt_runtime_us", 0),
                              ("blkio_leaf_weight", "blkio.leaf_weight", 0),
                              ("net_cls_classid", "net_cls.classid", 0),
                              ("net_prio_ifpriomap", "net_prio.ifpriomap", ())):
        if getattr(s, name) != unset:
            return name, "not supported on cgroup v2 (v1's %s has no v2 file)" % file
    for i, row in enumerate(s.blkio_weight_device):
        if row[3]:
            return ("blkio_weight_device[%d].leaf_weight" % i,
                    "not supported on cgroup v2 (v1's blkio.leaf_weight_device has no v2 file)")
    return None


def check_version(s, v2, field="cgroups"):
    """Raise :class:`ConfigError` naming the first setting of ``s`` that this cgroup
    version cannot take (see :func:`unsupported`)."""
    problem = unsupported(s, v2)
    if problem is not None:
        raise ConfigError("%s.%s" % (field, problem[0]), problem[1])


def _check_names(s, field):
    name = s.name
    if name and (name in (".", "..") or "/" in name or len(name.encode()) > 255):
        raise ConfigError(field + ".name", "must be one path component: no '/', not '.' or "
                          "'..', at most 255 bytes (got %r)" % name)
    if any(part in (".", "..") for part in s.parent.split("/")):
        raise ConfigError(field + ".parent", "must not contain '.' or '..' components "
                          "(got %r)" % s.parent)


def _check_systemd(s, field):
    if s.driver and s.driver not in DRIVERS:
        raise ConfigError(field + ".driver", "must be %s (or empty: cgroupfs), not %r"
                          % (" or ".join(DRIVERS), s.driver))
    if s.slice:
        expand_slice(s.slice, field + ".slice")
    if s.scope_prefix and not _unit_chars(s.scope_prefix):
        raise ConfigError(field + ".scope_prefix", "%r cannot be part of a systemd unit "
                          "name (letters, digits and : - _ . \\ only)" % s.scope_prefix)
    if s.driver == "systemd":
        if s.parent:
            raise ConfigError(field + ".parent", "is for the cgroupfs driver; with the "
                              "systemd driver the container's scope goes in cgroups.slice")
        if s.name and not _unit_chars(s.name):
            raise ConfigError(field + ".name", "%r cannot be part of a systemd unit name "
                              "(letters, digits and : - _ . \\ only)" % s.name)


def _check_ranges(s, field):
    def bad(name, message):
        return ConfigError("%s.%s" % (field, name), message)

    for name in ("memory", "memory_reservation", "memory_swap"):
        if getattr(s, name) > MEMORY_MAX:
            raise bad(name, "must be at most %d bytes (2**63-1, the kernel's largest limit; "
                      "-1: unlimited)" % MEMORY_MAX)
    if s.memory_swap > 0:
        if s.memory <= 0:
            raise bad("memory_swap", "needs a memory limit (memory_swap is memory plus swap)")
        if s.memory_swap < s.memory:
            raise bad("memory_swap", "must be at least memory (%d); it is memory plus swap "
                      "(got %d)" % (s.memory, s.memory_swap))
    if s.cpu_shares and not SHARES_MIN <= s.cpu_shares <= SHARES_MAX:
        raise bad("cpu_shares", "must be %d..%d (or 0: unset)" % (SHARES_MIN, SHARES_MAX))
    if 0 < s.cpu_quota < QUOTA_MIN or s.cpu_quota > QUOTA_MAX:
        raise bad("cpu_quota", "must be %d..%d µs (or -1: unlimited, 0: unset)"
                  % (QUOTA_MIN, QUOTA_MAX))
    if s.cpu_period and not PERIOD_MIN <= s.cpu_period <= PERIOD_MAX:
        raise bad("cpu_period", "must be %d..%d µs (or 0: unset)" % (PERIOD_MIN, PERIOD_MAX))
    for name in ("cpuset_cpus", "cpuset_mems"):
        value = getattr(s, name)
        if value and parse_list(value) is None:
            raise bad(name, "must be a list such as 0-3,5 (got %r)" % value)
    if s.pids_limit > PIDS_LIMIT_MAX:
        raise bad("pids_limit", "must be at most %d, the kernel's PID_MAX_LIMIT (or -1: "
                  "unlimited, 0: unset)" % PIDS_LIMIT_MAX)
    if s.blkio_weight and not 10 <= s.blkio_weight <= 1000:
        raise bad("blkio_weight", "must be 10..1000 (or 0: unset)")
    if s.freezer not in ("", FROZEN, THAWED):
        raise bad("freezer", "must be FROZEN, THAWED or empty (got %r)" % s.freezer)


def parse_list(text):
    """The cpus or mems of a cpuset list (``0-3,5``) as a sorted tuple, or ``None`` if bad."""
    out = set()
    for part in text.strip().split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            return None
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first or last > 1 << 16:
            return None
        out.update(range(first, last + 1))
    return tuple(sorted(out))


# Every spelling of a permission set ("mrw"), to its canonical order ("rwm").
_ACCESS = {"".join(p): c for c in ("r", "w", "m", "rw", "rm", "wm", "rwm")
           for p in _permutations(c)}


def device_rule(dev, field="device"):
    """``(type, major, minor, access)`` of a device rule, ``type`` in ``a b c``, -1 the
    wildcard; raise :class:`ConfigError` naming ``field`` when it is not a valid rule."""
    kind = getattr(dev, "type", None)
    kind = DEVICE_TYPES.get(ord(kind) if isinstance(kind, str) and len(kind) == 1 else kind)
    if kind is None:
        raise ConfigError(field + ".type", "must be 99 ('c'), 98 ('b') or 97 ('a': all) "
                          "(got %r)" % (getattr(dev, "type", None),))
    major = getattr(dev, "major_number", None)
    minor = getattr(dev, "minor_number", None)
    for name, value, top in (("major_number", major, MAX_MAJOR),
                             ("minor_number", minor, MAX_MINOR)):
        if type(value) is not int or not -1 <= value <= top:
            raise ConfigError("%s.%s" % (field, name), "must be -1 (any) or 0..%d (got %r)"
                              % (top, value))
    if kind == "a" and (major, minor) != (-1, -1):
        raise ConfigError(field + ".type", "'a' (all devices) takes no major or minor: "
                          "set both to -1")
    access = getattr(dev, "cgroup_permissions", "")
    canonical = _ACCESS.get(access) if isinstance(access, str) else None
    if canonical is None:
        raise ConfigError(field + ".cgroup_permissions", "must be a non-empty combination "
                          "of r, w and m (got %r)" % (access,))
    return kind, major, minor, canonical


def device_rules(cfg):
    """The validated allow rules of ``cfg``, or ``None`` when every device is allowed."""
    return parse(cfg).rules


def rule_text(rule):
    """The v1 ``devices.allow`` line of a rule: ``c 1:3 rwm``, ``c 136:* rwm``."""
    kind, major, minor, access = rule
    return "%s %s:%s %s" % (kind, "*" if major < 0 else major, "*" if minor < 0 else minor,
                            access)


# --- conversions ----------------------------------------------------------------------------

def shares_to_weight(shares):
    """cgroup v1 ``cpu.shares`` (2..262144) to v2 ``cpu.weight`` (1..10000), 0 for unset.

    The quadratic in log2(shares) that runc and crun use since 2025: it maps the minimum,
    the default (1024 -> 100) and the maximum exactly, unlike the older linear formula that
    turned the default 1024 into 39.
    """
    if shares == 0:
        return 0
    if shares <= SHARES_MIN:
        return 1
    if shares >= SHARES_MAX:
        return 10000
    l2 = _math.log2(shares)
    return int(_math.ceil(10 ** ((l2 * l2 + 125 * l2) / 612.0 - 7.0 / 34.0)))


def blkio_to_io_weight(weight):
    """blkio.weight (10..1000) to io.weight (1..10000), as runc and crun convert it."""
    return 0 if weight == 0 else 1 + (weight - 10) * 9999 // 990


def memsw_v1(memory, memory_swap):
    """``memory.memsw.limit_in_bytes`` by the seed's rule, or ``None`` to leave it alone.

    ``memory_swap`` is memory plus swap: 0 (unset) means twice the memory, -1 unlimited
    (the default of a new cgroup, so nothing is written).
    """
    if memory_swap > 0:
        return memory_swap
    if memory_swap == 0 and memory > 0:
        return min(2 * memory, MEMORY_MAX)  # past MEMORY_MAX is unlimited anyway
    return None


def swap_max_v2(memory, memory_swap):
    """``memory.swap.max`` for the same rule: v2 limits swap alone, so it is memory+swap
    minus memory; ``None`` to leave it alone."""
    total = memsw_v1(memory, memory_swap)
    return None if total is None else total - memory


def cpu_max_v2(quota, period):
    """``cpu.max`` (``$QUOTA $PERIOD``, ``max`` for no limit), or ``None`` when unset."""
    if quota == 0 and period == 0:
        return None
    text = "max" if quota <= 0 else str(quota)
    return "%s %d" % (text, period) if period else text


def _bytes(value):
    return "max" if value == -1 else str(value)


# --- plans: what each driver writes ----------------------------------------------------------

class Write(object):
    """One planned write.

    ``unit`` is the v1 subsystem or v2 controller; ``files`` a tuple of file names, the first
    that exists is written (``blkio.weight`` or BFQ's ``blkio.bfq.weight``); ``value`` a
    string, or a tuple of strings written one write(2) each (device rules); ``field`` the
    config field it comes from, for error messages; ``optional`` writes are skipped when no
    file exists (memsw without swap accounting, when swap was not asked for explicitly).
    """
    __slots__ = ("unit", "files", "value", "field", "optional")

    def __init__(self, unit, files, value, field, optional=False):
        self.unit = unit
        self.files = (files,) if isinstance(files, str) else tuple(files)
        self.value = value if isinstance(value, tuple) else str(value)
        self.field = field
        self.optional = optional

    def _key(self):
        return (self.unit, self.files, self.value, self.field, self.optional)

    def __eq__(self, other):
        return isinstance(other, Write) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Write(%r, %r, %r, %r%s)" % (self.unit, self.files, self.value, self.field,
                                           ", optional=True" if self.optional else "")


def plan_v1(s, update=False):
    """The v1 writes for :class:`Settings` ``s``, in :data:`V1_SUBSYSTEMS` order. With
    ``update`` (a running container's new limits: 0 means unchanged), swap is written only
    when ``memory_swap`` is given, never derived from ``memory``."""
    out = []
    if s.cpuset_cpus:
        out.append(Write("cpuset", "cpuset.cpus", s.cpuset_cpus, "cpuset_cpus"))
    if s.cpuset_mems:
        out.append(Write("cpuset", "cpuset.mems", s.cpuset_mems, "cpuset_mems"))
    if s.rules is not None:
        out.append(Write("devices", "devices.deny", "a", "allowed_devices"))
        if s.rules:
            out.append(Write("devices", "devices.allow", tuple(rule_text(r) for r in s.rules),
                             "allowed_devices"))
    if s.memory:
        out.append(Write("memory", "memory.limit_in_bytes", s.memory, "memory"))
    if s.memory_reservation:
        out.append(Write("memory", "memory.soft_limit_in_bytes", s.memory_reservation,
                         "memory_reservation"))
    memsw = memsw_v1(s.memory, s.memory_swap)
    if update and s.memory_swap == -1:
        memsw = -1  # lifted (a new cgroup has no limit: nothing to write then)
    if memsw is not None and not (update and s.memory_swap == 0):
        out.append(Write("memory", "memory.memsw.limit_in_bytes", memsw, "memory_swap",
                         optional=s.memory_swap <= 0))
    if s.kernel_memory_tcp:
        out.append(Write("memory", "memory.kmem.tcp.limit_in_bytes", s.kernel_memory_tcp,
                         "kernel_memory_tcp"))
    if s.memory_swappiness >= 0:
        out.append(Write("memory", "memory.swappiness", s.memory_swappiness,
                         "memory_swappiness"))
    if s.oom_kill_disable:
        out.append(Write("memory", "memory.oom_control", "1", "oom_kill_disable"))
    # real-time first: a task already SCHED_RR could not join a group without RT time
    if s.cpu_rt_period:
        out.append(Write("cpu", "cpu.rt_period_us", s.cpu_rt_period, "cpu_rt_period"))
    if s.cpu_rt_runtime:
        out.append(Write("cpu", "cpu.rt_runtime_us", s.cpu_rt_runtime, "cpu_rt_runtime"))
    if s.cpu_shares:
        out.append(Write("cpu", "cpu.shares", s.cpu_shares, "cpu_shares"))
    if s.cpu_period:
        out.append(Write("cpu", "cpu.cfs_period_us", s.cpu_period, "cpu_period"))
    if s.cpu_quota:
        out.append(Write("cpu", "cpu.cfs_quota_us", s.cpu_quota, "cpu_quota"))
    if s.cpu_burst >= 0:  # after the quota it may not exceed
        out.append(Write("cpu", "cpu.cfs_burst_us", s.cpu_burst, "cpu_burst"))
    if s.cpu_idle >= 0:  # after the shares: an idle group takes none
        out.append(Write("cpu", "cpu.idle", s.cpu_idle, "cpu_idle"))
    if s.pids_limit:
        out.append(Write("pids", "pids.max", _bytes(s.pids_limit), "pids_limit"))
    if s.blkio_weight:
        out.append(Write("blkio", ("blkio.weight", "blkio.bfq.weight"), s.blkio_weight,
                         "blkio_weight"))
    if s.blkio_leaf_weight:
        out.append(Write("blkio", "blkio.leaf_weight", s.blkio_leaf_weight,
                         "blkio_leaf_weight"))
    weights = tuple("%d:%d %d" % (ma, mi, w) for ma, mi, w, _ in s.blkio_weight_device if w)
    if weights:
        out.append(Write("blkio", ("blkio.weight_device", "blkio.bfq.weight_device"), weights,
                         "blkio_weight_device"))
    leaves = tuple("%d:%d %d" % (ma, mi, w) for ma, mi, _, w in s.blkio_weight_device if w)
    if leaves:
        out.append(Write("blkio", "blkio.leaf_weight_device", leaves, "blkio_weight_device"))
    for name in THROTTLES:
        rows = getattr(s, name)
        if rows:
            out.append(Write("blkio", "blkio.throttle." + name[len("blkio_throttle_"):],
                             tuple("%d:%d %d" % row for row in rows), name))
    for size, limit in s.hugetlb_limit:
        out.append(Write("hugetlb", "hugetlb.%s.limit_in_bytes" % size, limit,
                         "hugetlb_limit"))
    if s.net_cls_classid:
        out.append(Write("net_cls", "net_cls.classid", s.net_cls_classid, "net_cls_classid"))
    if s.net_prio_ifpriomap:
        out.append(Write("net_prio", "net_prio.ifpriomap",
                         tuple("%s %d" % row for row in s.net_prio_ifpriomap),
                         "net_prio_ifpriomap"))
    return out


def plan_v2(s, update=False):
    """The v2 writes for :class:`Settings` ``s`` (device rules go through BPF, not files);
    ``update`` as for :func:`plan_v1`."""
    out = []
    if s.cpuset_cpus:
        out.append(Write("cpuset", "cpuset.cpus", s.cpuset_cpus, "cpuset_cpus"))
    if s.cpuset_mems:
        out.append(Write("cpuset", "cpuset.mems", s.cpuset_mems, "cpuset_mems"))
    if s.cpu_shares:
        out.append(Write("cpu", "cpu.weight", shares_to_weight(s.cpu_shares), "cpu_shares"))
    cpu_max = cpu_max_v2(s.cpu_quota, s.cpu_period)
    if cpu_max is not None:
        out.append(Write("cpu", "cpu.max", cpu_max, "cpu_quota" if s.cpu_quota
                         else "cpu_period"))
    if s.cpu_burst >= 0:
        out.append(Write("cpu", "cpu.max.burst", s.cpu_burst, "cpu_burst"))
    if s.cpu_idle >= 0:
        out.append(Write("cpu", "cpu.idle", s.cpu_idle, "cpu_idle"))
    if s.blkio_weight:
        out.append(Write("io", "io.weight", blkio_to_io_weight(s.blkio_weight),
                         "blkio_weight"))
    weights = tuple("%d:%d %d" % (ma, mi, blkio_to_io_weight(w))
                    for ma, mi, w, _ in s.blkio_weight_device if w)
    if weights:
        out.append(Write("io", "io.weight", weights, "blkio_weight_device"))
    io_max = io_max_v2(s)
    if io_max:
        out.append(Write("io", "io.max", io_max,
                         [name for name in THROTTLES if getattr(s, name)][0]))
    if s.memory_reservation:
        out.append(Write("memory", "memory.low", _bytes(s.memory_reservation),
                         "memory_reservation"))
    if s.memory:
        out.append(Write("memory", "memory.max", _bytes(s.memory), "memory"))
    swap_max = swap_max_v2(s.memory, s.memory_swap)
    if update and s.memory_swap == -1:
        swap_max = -1
    if swap_max is not None and not (update and s.memory_swap == 0):
        out.append(Write("memory", "memory.swap.max", _bytes(swap_max), "memory_swap",
                         optional=s.memory_swap <= 0))
    for size, limit in s.hugetlb_limit:
        out.append(Write("hugetlb", "hugetlb.%s.max" % size, limit, "hugetlb_limit"))
    if s.pids_limit:
        out.append(Write("pids", "pids.max", _bytes(s.pids_limit), "pids_limit"))
    for key, value in s.unified:  # last: they override the fields above, as in runc
        controller = key.partition(".")[0]
        out.append(Write("" if controller == "cgroup" else controller, key, value,
                         "unified." + key))
    return out


def io_max_v2(s):
    """``io.max`` lines, one per device, ``MAJ:MIN rbps=N wbps=N riops=N wiops=N`` with
    the throttles set for it (rate 0: ``max``, no limit; a device listed twice in one
    throttle: the last, as v1's file keeps it), in the order devices first appear."""
    keys = ("rbps", "wbps", "riops", "wiops")
    lines = {}
    for name, key in zip(THROTTLES, keys):
        for major, minor, rate in getattr(s, name):
            lines.setdefault((major, minor), {})[key] = rate or "max"
    return tuple("%d:%d %s" % (dev[0], dev[1], " ".join("%s=%s" % (k, parts[k]) for k in keys
                                                        if k in parts))
                 for dev, parts in lines.items())


def units(plan):
    """``{subsystem or controller: first field needing it}`` of the non-optional writes."""
    out = {}
    for w in plan:
        if not w.optional and w.unit:  # "": a core file (cgroup.*), no controller
            out.setdefault(w.unit, w.field)
    return out


# --- systemd: unit names, slices, properties ------------------------------------------------
#
# systemd.unit(5) (names), systemd.slice(5) (a dash in a slice's name is a level of the
# tree), systemd.resource-control(5) (the properties), org.freedesktop.systemd1(5)
# (StartTransientUnit, SetUnitProperties; the property types).

DEFAULT_SLICE = "system.slice"
DEFAULT_SCOPE_PREFIX = "minins"
USEC_INFINITY = (1 << 64) - 1  # systemd's "no limit" for the uint64 (t) properties
CPU_QUOTA_STEP = 10000  # µs per second: systemd keeps CPUQuota= in percent (1% = 10 ms/s)
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")
UNIT_NAME_MAX = 255


def _unit_chars(text):
    return bool(text) and set(text) <= _UNIT_CHARS


def expand_slice(name, field="cgroups.slice"):
    """The cgroup path of the slice ``name`` below the root: ``a-b.slice`` ->
    ``a.slice/a-b.slice``; ``-.slice`` (the root slice) -> ``""``. Raise
    :class:`ConfigError` naming ``field`` when ``name`` is not a valid slice name."""
    if name == "-.slice":
        return ""
    base = name[:-len(".slice")] if name.endswith(".slice") else None
    if (not base or not _unit_chars(name) or len(name) > UNIT_NAME_MAX
            or base.startswith("-") or base.endswith("-") or "--" in base):
        raise ConfigError(field, "%r is not a slice name: letters, digits and : - _ . \\ "
                          "ending in .slice, no leading, trailing or doubled '-' "
                          "(e.g. system.slice, machine-minins.slice)" % (name,))
    parts, prefix = [], ""
    for word in base.split("-"):
        prefix = prefix + "-" + word if prefix else word
        parts.append(prefix + ".slice")
    return "/".join(parts)


def scope_name(prefix, name, field="cgroups.name"):
    """runc's unit name of a container: ``<prefix>-<name>.scope`` (``<name>.scope``
    without a prefix). Raise :class:`ConfigError` when it is not a valid unit name."""
    unit = "%s-%s.scope" % (prefix, name) if prefix else "%s.scope" % name
    if not _unit_chars(name) or (prefix and not _unit_chars(prefix)):
        raise ConfigError(field, "%r cannot be part of a systemd unit name (letters, digits "
                          "and : - _ . \\ only)" % (name if not _unit_chars(name) else prefix))
    if len(unit) > UNIT_NAME_MAX:
        raise ConfigError(field, "the unit name %r is longer than %d characters"
                          % (unit, UNIT_NAME_MAX))
    return unit


def parse_cgroups_path(text, field="cgroupsPath"):
    """runc's systemd form of the OCI ``cgroupsPath``, ``slice:prefix:name``, as
    ``(slice, prefix, name)``; an empty slice is :data:`DEFAULT_SLICE`. Raise
    :class:`ConfigError` naming ``field`` otherwise (runc: libcontainer/cgroups/systemd)."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 3:
        raise ConfigError(field, "expected the form slice:prefix:name for the systemd "
                          "cgroup driver, got %r" % (text,))
    slice_, prefix, name = parts
    slice_ = slice_ or DEFAULT_SLICE
    expand_slice(slice_, field)
    if not name:
        raise ConfigError(field, "%r has no name (slice:prefix:name)" % text)
    if name.endswith(".slice"):
        raise ConfigError(field, "%r: a slice as the container's own unit is not supported; "
                          "give a name for its scope" % text)
    scope_name(prefix, name, field)
    return slice_, prefix, name


def parse_proc_devices(text):
    """``{("c" or "b", major): driver name}`` from ``/proc/devices`` (proc(5))."""
    out, kind = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Character devices"):
            kind = "c"
        elif line.startswith("Block devices"):
            kind = "b"
        elif kind and line:
            major, _, name = line.partition(" ")
            if major.isdigit() and name.strip():
                out[(kind, int(major))] = name.strip()
    return out


def systemd_device_allow(rules, majors):
    """``DeviceAllow=`` entries ``[(specifier, access)]`` for device ``rules``: a node
    (``/dev/char/1:3``), a driver by name from ``majors`` (``char-pts`` for ``c 136:*``;
    see :func:`parse_proc_devices`), or every device of a type (``char-*``). A wildcard
    minor whose major has no name is left out: the BPF program minins attaches next
    enforces the exact rules anyway."""
    out = []
    for kind, major, minor, access in rules:
        kinds = ("c", "b") if kind == "a" else (kind,)
        for k in kinds:
            word = "char" if k == "c" else "block"
            if kind == "a" or major < 0:
                spec = word + "-*"
            elif minor < 0:
                name = majors.get((k, major))
                if name is None:
                    continue
                spec = "%s-%s" % (word, name)
            else:
                spec = "/dev/%s/%d:%d" % (word, major, minor)
            if (spec, access) not in out:
                out.append((spec, access))
    return out


def cpu_quota_per_sec(quota, period):
    """``CPUQuotaPerSecUSec`` for cgroup ``quota``/``period`` µs: the quota per second,
    rounded up to a whole percent as systemd stores it; -1: no limit (infinity)."""
    if quota < 0:
        return USEC_INFINITY
    per_sec = quota * 1000000 // (period or 100000)
    return -(-per_sec // CPU_QUOTA_STEP) * CPU_QUOTA_STEP


def cpu_bitmask(text):
    """``AllowedCPUs=``/``AllowedMemoryNodes=`` as systemd's D-Bus byte array: bit n of
    byte n // 8 for each cpu n of the list ``0-3,8``."""
    ids = parse_list(text) or ()
    if not ids:
        return b""
    mask = bytearray(ids[-1] // 8 + 1)
    for n in ids:
        mask[n // 8] |= 1 << (n % 8)
    return bytes(mask)


def systemd_version(text):
    """The number of systemd's ``Version`` property: ``252`` for ``252.22-1~deb12u1``,
    ``v255``, ``255-stable``; 0 when there is none."""
    text = text.strip().lstrip("v")
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def systemd_properties(s, unified, version=None, majors=None, update=False):
    """What systemd is told about the limits of :class:`Settings` ``s``, and what is left
    for cgroupfs: ``(properties, rest)``.

    ``properties`` is ``[(name, D-Bus signature, value)]`` in the names of the host's
    cgroup version (``unified`` true: v2) and systemd ``version`` (``None``: current);
    ``rest`` is ``s`` with the limits systemd sets exactly taken out, for the cgroupfs
    driver to write after the unit started: on v1 swap (and the memory limit it must not
    be below), the soft limit and cpusets, which systemd has no property for; on v2
    cpusets before systemd 244; and always the CPU
    quota (systemd rounds it to whole percents; cgroupfs then writes it exactly) and the
    device rules (systemd's ``DeviceAllow=`` only knows nodes and drivers that exist on
    the host; the BPF program minins attaches replaces systemd's). With ``update`` the
    device policy is not repeated. The fields added for OCI (realtime, idle, burst,
    swappiness, kmem.tcp, OOM killer, leaf and per-device weights, throttles, hugetlb,
    net_cls, net_prio, unified) have no property runc sends: cgroupfs writes them, as runc
    does.
    """
    version = 10 ** 6 if version is None else version
    props, taken = [], {}

    def prop(name, sig, value):
        props.append((name, sig, value))

    if unified and version >= 232:
        if s.memory:
            prop("MemoryMax", "t", _sd_bytes(s.memory))
            taken["memory"] = 0
        if s.memory_reservation:
            prop("MemoryLow", "t", _sd_bytes(s.memory_reservation))
            taken["memory_reservation"] = 0
        swap = swap_max_v2(s.memory, s.memory_swap)
        if update and s.memory_swap == -1:
            swap = -1  # lifted
        if swap is not None and not (update and s.memory_swap == 0):
            prop("MemorySwapMax", "t", _sd_bytes(swap))
            taken["memory_swap"] = 0
        if s.cpu_shares:
            prop("CPUWeight", "t", shares_to_weight(s.cpu_shares))
            taken["cpu_shares"] = 0
        if s.blkio_weight:
            prop("IOWeight", "t", blkio_to_io_weight(s.blkio_weight))
            taken["blkio_weight"] = 0
        if version >= 244:
            if s.cpuset_cpus:
                prop("AllowedCPUs", "ay", cpu_bitmask(s.cpuset_cpus))
                taken["cpuset_cpus"] = ""
            if s.cpuset_mems:
                prop("AllowedMemoryNodes", "ay", cpu_bitmask(s.cpuset_mems))
                taken["cpuset_mems"] = ""
    elif not unified:
        if s.memory:  # cgroupfs writes it too: memsw (no property) must not be below it
            prop("MemoryLimit", "t", _sd_bytes(s.memory))
        if s.cpu_shares:
            prop("CPUShares", "t", s.cpu_shares)
            taken["cpu_shares"] = 0
        if s.blkio_weight:
            prop("BlockIOWeight", "t", s.blkio_weight)
            taken["blkio_weight"] = 0
    if s.pids_limit and version >= 227:
        prop("TasksMax", "t", _sd_bytes(s.pids_limit))
        taken["pids_limit"] = 0
    if s.cpu_period and version >= 242:
        prop("CPUQuotaPeriodUSec", "t", s.cpu_period)
    if s.cpu_quota:
        prop("CPUQuotaPerSecUSec", "t", cpu_quota_per_sec(s.cpu_quota, s.cpu_period))
    if not update:
        if s.rules is None:
            prop("DevicePolicy", "s", "auto")
        else:
            prop("DevicePolicy", "s", "strict")
            prop("DeviceAllow", "a(ss)", systemd_device_allow(s.rules, majors or {}))
    return props, s.copy(**taken)


def accounting_properties(unified, version=None):
    """The ``*Accounting=yes`` properties that make systemd enable the controllers
    minins reads stats from."""
    version = 10 ** 6 if version is None else version
    names = ["MemoryAccounting", "CPUAccounting", "TasksAccounting"]
    names.append("IOAccounting" if unified and version >= 230 else "BlockIOAccounting")
    return [(n, "b", True) for n in names]


def _sd_bytes(value):
    return USEC_INFINITY if value == -1 else value
