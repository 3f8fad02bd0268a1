"""OCI ``linux.resources`` to minins's cgroup fields (runc's specconv, for resources).

    from minins.oci import resources
    fields = resources.to_cgroup(spec["linux"].get("resources"))  # {Cgroup field: value}
    cgroup = minins.config.Cgroup(name=..., parent=..., **fields)

:func:`to_cgroup` reads the object of runtime-spec ``config-linux.md`` ("Control groups":
memory, cpu, pids, blockIO, hugepageLimits, devices, network, rdma, unified) and returns the
:class:`minins.config.Cgroup` fields it sets, in runc's meaning (libcontainer/specconv and
libcontainer/cgroups/fs, fs2 of runc 1.1). Each value is checked against the range the kernel
takes; a bad one, or one minins cannot honour, is a :class:`~minins.errors.ConfigError` named
by its OCI path (``linux.resources.memory.swappiness: must be 0..100 (got 101)``).
Properties the spec does not define are ignored, as the spec says.

What the numbers mean (runc's, where the spec leaves it open):

- 0 leaves a limit unset (Go's zero value), except where 0 is itself a setting:
  ``memory.swappiness``, ``cpu.idle``, ``cpu.burst``.
- ``-1`` (any negative for ``cpu.quota``, ``cpu.realtimeRuntime`` and ``pids.limit``, which
  the kernel reads as "no limit") lifts a limit.
- ``memory.swap`` is memory plus swap (v1's ``memsw``); the v2 driver writes swap alone
  (``memory.swap.max`` = swap - limit), as runc converts it. A limit without ``swap`` leaves
  swap unlimited (runc; not the docker client's "twice the memory"); ``limit: -1`` without
  ``swap`` lifts both.
- ``memory.kernel`` is accepted and ignored, as runc 1.1 does (the kernel deprecated kmem
  limits in 5.4 and removed them in 6.x); ``memory.useHierarchy: true`` too (every cgroup v2,
  and cgroup v1 since Linux 6.1, accounts hierarchically; ``false`` is refused).
- ``devices`` are replayed the way the kernel's v1 device controller (and runc's emulator for
  the v2 BPF program) applies them, from "deny everything": a rule of type ``a`` sets the
  default and drops the exceptions; an allow rule adds one, a deny rule takes access away
  from the exception with exactly that type and numbers. Then runc's default devices are
  allowed (``/dev/null``, ``zero``, ``full``, ``tty``, ``random``, ``urandom``, ``ptmx``,
  ``pts/*``, mknod of any). A deny rule while every device is allowed is refused (minins
  keeps an allow list).
- ``rdma`` is refused (minins does not drive the rdma controller).

With ``update=True`` (``runc update -r``): no devices (runc does not update them), and a
memory limit without ``swap`` leaves swap as it is.
"""
from ..errors import ConfigError
from ..record import BOOL, INT, _type_name

__all__ = ["to_cgroup"]

_I64 = 2 ** 63 - 1
_U64 = 2 ** 64 - 1
_U32 = 2 ** 32 - 1
_U16 = 2 ** 16 - 1


def _join(path, key):
    return "%s.%s" % (path, key)


def _object(value, path):
    if not isinstance(value, dict):
        raise ConfigError(path, "must be an object, not %s" % _type_name(value))
    return value


def _list(value, path):
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list, not %s" % _type_name(value))
    return value


def _int(value, path, lo, hi, what=None):
    """An integer within lo..hi (JSON integer: no boolean, no fraction)."""
    if not lo <= INT.load(value, path) <= hi:
        raise ConfigError(path, "must be %s (got %d)" % (what or "%d..%d" % (lo, hi), value))
    return value


def _int64(value, path):
    return _int(value, path, -_I64 - 1, _I64, "an int64")


def _uint(value, path, hi=_U64):
    return _int(value, path, 0, hi)


_bool = BOOL.load


def _str(value, path):
    if not isinstance(value, str):
        raise ConfigError(path, "must be a string, not %s" % _type_name(value))
    return value


def _get(obj, key, path, kind, *args):
    """``kind(obj[key])`` when the key is present and not null, else ``None``."""
    value = obj.get(key)
    return None if value is None else kind(value, _join(path, key), *args)


def to_cgroup(resources, path="linux.resources", update=False):
    """The :class:`minins.config.Cgroup` fields that ``resources`` (the parsed
    ``linux.resources`` object, or ``None``) sets: ``{field name: value}``.

    Raise :class:`ConfigError` naming the OCI field (``path`` + ``.memory.limit``) when a
    value is of the wrong type or out of the kernel's range, or asks for something minins
    cannot do. The result still goes through :func:`minins.cgroups.values.validate` with the
    rest of the config. ``update``: for ``runc update`` (see the module's notes)."""
    if resources is None:
        return {}
    res = _object(resources, path)
    out = {}
    for key, convert in _SECTIONS:
        value = res.get(key)
        if value is not None:
            convert(value, _join(path, key), out, update)
    _check(out, path)
    return out


# Cgroup field -> its OCI path below linux.resources, for the kernel range checks' errors.
OCI_NAMES = {
    "memory": "memory.limit", "memory_reservation": "memory.reservation",
    "memory_swap": "memory.swap", "kernel_memory_tcp": "memory.kernelTCP",
    "memory_swappiness": "memory.swappiness", "oom_kill_disable": "memory.disableOOMKiller",
    "cpu_shares": "cpu.shares", "cpu_quota": "cpu.quota", "cpu_period": "cpu.period",
    "cpu_rt_period": "cpu.realtimePeriod", "cpu_rt_runtime": "cpu.realtimeRuntime",
    "cpuset_cpus": "cpu.cpus", "cpuset_mems": "cpu.mems", "cpu_idle": "cpu.idle",
    "cpu_burst": "cpu.burst", "pids_limit": "pids.limit", "blkio_weight": "blockIO.weight",
    "blkio_leaf_weight": "blockIO.leafWeight", "blkio_weight_device": "blockIO.weightDevice",
    "blkio_throttle_read_bps_device": "blockIO.throttleReadBpsDevice",
    "blkio_throttle_write_bps_device": "blockIO.throttleWriteBpsDevice",
    "blkio_throttle_read_iops_device": "blockIO.throttleReadIOPSDevice",
    "blkio_throttle_write_iops_device": "blockIO.throttleWriteIOPSDevice",
    "hugetlb_limit": "hugepageLimits", "net_cls_classid": "network.classID",
    "net_prio_ifpriomap": "network.priorities", "unified": "unified",
    "allowed_devices": "devices", "allow_all_devices": "devices",
}
_SUB_NAMES = {"leaf_weight": "leafWeight", "page_size": "pageSize", "interface": "name"}


def _check(out, path):
    """The kernel's ranges (:func:`minins.cgroups.values.validate`), errors renamed to the
    OCI fields."""
    from ..cgroups import values
    from ..config import Cgroup

    try:
        values.validate(Cgroup(**out), "\0")
    except ConfigError as e:
        field = e.field[2:] if e.field.startswith("\0.") else e.field
        head = field
        for i, ch in enumerate(field):
            if ch in ".[":
                head = field[:i]
                break
        rest = field[len(head):]
        for name, oci in _SUB_NAMES.items():
            rest = rest.replace("." + name, "." + oci)
        e.field = _join(path, OCI_NAMES.get(head, head) + rest)
        raise


# --- memory --------------------------------------------------------------------------------

def _bytes(value, path):
    """A byte limit: -1 (unlimited), 0 (unset) or up to 2**63-1."""
    return _int(value, path, -1, _I64, "-1 (unlimited), 0 (unset) or a number of bytes up "
                "to 2**63-1")


def _memory(value, path, out, update):
    m = _object(value, path)
    limit = _get(m, "limit", path, _bytes)
    reservation = _get(m, "reservation", path, _bytes)
    swap = _get(m, "swap", path, _bytes)
    _get(m, "kernel", path, _bytes)  # accepted and ignored, as runc 1.1 does
    tcp = _get(m, "kernelTCP", path, _bytes)
    swappiness = _get(m, "swappiness", path, _uint)
    oom = _get(m, "disableOOMKiller", path, _bool)
    hierarchy = _get(m, "useHierarchy", path, _bool)
    if limit:
        out["memory"] = limit
    if reservation:
        out["memory_reservation"] = reservation
    if swap:
        out["memory_swap"] = swap
    elif limit == -1 or (limit and not update):
        # runc: swap left alone stays unlimited; lifting memory lifts swap with it
        out["memory_swap"] = -1
    if tcp:
        out["kernel_memory_tcp"] = tcp
    if swappiness is not None:
        if swappiness > 100:
            raise ConfigError(_join(path, "swappiness"), "must be 0..100 (got %d)" % swappiness)
        out["memory_swappiness"] = swappiness
    if oom:
        out["oom_kill_disable"] = True
    if hierarchy is False:
        raise ConfigError(_join(path, "useHierarchy"), "false is not supported: the kernel "
                          "accounts memory hierarchically (cgroup v2, and v1 since Linux 6.1)")


# --- cpu -----------------------------------------------------------------------------------

def _cpu(value, path, out, update):
    c = _object(value, path)
    shares = _get(c, "shares", path, _uint)
    quota = _get(c, "quota", path, _int64)
    period = _get(c, "period", path, _uint)
    rt_runtime = _get(c, "realtimeRuntime", path, _int64)
    rt_period = _get(c, "realtimePeriod", path, _uint)
    cpus = _get(c, "cpus", path, _str)
    mems = _get(c, "mems", path, _str)
    idle = _get(c, "idle", path, _int64)
    burst = _get(c, "burst", path, _uint)
    if shares:
        out["cpu_shares"] = shares
    if quota:
        out["cpu_quota"] = max(quota, -1)
    if period:
        out["cpu_period"] = period
    if rt_period:
        out["cpu_rt_period"] = rt_period
    if rt_runtime:
        out["cpu_rt_runtime"] = max(rt_runtime, -1)
    if cpus:
        out["cpuset_cpus"] = cpus
    if mems:
        out["cpuset_mems"] = mems
    if idle is not None:
        if idle not in (0, 1):
            raise ConfigError(_join(path, "idle"), "must be 0 or 1 (got %d)" % idle)
        out["cpu_idle"] = idle
    if burst is not None:
        out["cpu_burst"] = burst


# --- pids ----------------------------------------------------------------------------------

def _pids(value, path, out, update):
    p = _object(value, path)
    limit = _get(p, "limit", path, _int64)
    if limit:
        out["pids_limit"] = max(limit, -1)


# --- blockIO -------------------------------------------------------------------------------

def _device_numbers(d, path):
    numbers = []
    for key in ("major", "minor"):
        if key not in d:
            raise ConfigError(_join(path, key), "is required")
        numbers.append(_get(d, key, path, _int64))
    return numbers


def _block_io(value, path, out, update):
    b = _object(value, path)
    # uint16 here; 10..1000 is checked with the rest (cgroups.values)
    for key, field in (("weight", "blkio_weight"), ("leafWeight", "blkio_leaf_weight")):
        weight = _get(b, key, path, _uint, _U16)
        if weight:
            out[field] = weight
    from ..config import ThrottleDevice, WeightDevice

    items = _get(b, "weightDevice", path, _list)
    if items is not None:
        devices = []
        for i, d in enumerate(items):
            here = "%s.weightDevice[%d]" % (path, i)
            d = _object(d, here)
            major, minor = _device_numbers(d, here)
            devices.append(WeightDevice(major=major, minor=minor,
                                        weight=_get(d, "weight", here, _uint, _U16) or 0,
                                        leaf_weight=_get(d, "leafWeight", here, _uint,
                                                         _U16) or 0))
        if devices:
            out["blkio_weight_device"] = tuple(devices)
    for key, field in _THROTTLES:
        items = _get(b, key, path, _list)
        if items is None:
            continue
        devices = []
        for i, d in enumerate(items):
            here = "%s.%s[%d]" % (path, key, i)
            d = _object(d, here)
            major, minor = _device_numbers(d, here)
            if "rate" not in d:
                raise ConfigError(_join(here, "rate"), "is required")
            rate = _get(d, "rate", here, _uint)
            devices.append(ThrottleDevice(major=major, minor=minor, rate=rate))
        if devices:
            out[field] = tuple(devices)


_THROTTLES = (("throttleReadBpsDevice", "blkio_throttle_read_bps_device"),
              ("throttleWriteBpsDevice", "blkio_throttle_write_bps_device"),
              ("throttleReadIOPSDevice", "blkio_throttle_read_iops_device"),
              ("throttleWriteIOPSDevice", "blkio_throttle_write_iops_device"))


# --- hugepageLimits ------------------------------------------------------------------------

def _hugepages(value, path, out, update):
    from ..config import HugepageLimit

    limits = []
    for i, h in enumerate(_list(value, path)):
        here = "%s[%d]" % (path, i)
        h = _object(h, here)
        for key in ("pageSize", "limit"):
            if h.get(key) is None:
                raise ConfigError(_join(here, key), "is required")
        size = _get(h, "pageSize", here, _str)
        limit = _get(h, "limit", here, _uint)
        limits.append(HugepageLimit(page_size=size, limit=limit))
    if limits:
        out["hugetlb_limit"] = tuple(limits)


# --- devices -------------------------------------------------------------------------------

_ACCESS = frozenset("rwm")


def _device_rule(d, path):
    """``(allow, kind, major, minor, access)`` of one OCI device cgroup rule; absent
    type, numbers and access mean all ('a', -1, -1, 'rwm'), as the spec says."""
    d = _object(d, path)
    if d.get("allow") is None:
        raise ConfigError(_join(path, "allow"), "is required")
    allow = _get(d, "allow", path, _bool)
    kind = _get(d, "type", path, _str) or "a"
    if kind not in ("a", "b", "c"):
        raise ConfigError(_join(path, "type"), "must be a (all), b (block) or c (char), "
                          "not %r" % kind)
    numbers = []
    for key, top in (("major", 0xFFF), ("minor", 0xFFFFF)):
        n = _get(d, key, path, _int, -1, top, "-1 (any) or 0..%d" % top)
        numbers.append(-1 if n is None else n)
    access = _get(d, "access", path, _str)
    access = "rwm" if access is None or access == "" else access
    if not set(access) <= _ACCESS:
        raise ConfigError(_join(path, "access"), "must be a combination of r, w and m, not %r"
                          % access)
    if kind == "a" and numbers != [-1, -1]:
        raise ConfigError(_join(path, "type"), "a (all devices) takes no major or minor")
    return allow, kind, numbers[0], numbers[1], frozenset(access)


def _devices(value, path, out, update):
    items = _list(value, path)
    rules = [_device_rule(d, "%s[%d]" % (path, i)) for i, d in enumerate(items)]
    if update:
        return  # runc update leaves the device rules alone
    allow_all = False
    exceptions = {}  # (kind, major, minor) -> access set, in the order first allowed
    for i, (allow, kind, major, minor, access) in enumerate(rules):
        key = (kind, major, minor)
        if kind == "a":
            allow_all, exceptions = allow, {}
        elif allow_all and not allow:
            raise ConfigError("%s[%d]" % (path, i), "a deny rule after every device was "
                              "allowed is not supported (minins keeps a list of allowed "
                              "devices): deny all first, then allow what is needed")
        elif allow_all:
            pass  # allowing more of what is allowed
        elif allow:
            exceptions[key] = exceptions.get(key, frozenset()) | access
        elif key in exceptions:
            exceptions[key] = exceptions[key] - access
    if allow_all:
        out["allow_all_devices"] = True
        out["allowed_devices"] = ()
        return
    from ..config import DEFAULT_ALLOWED_DEVICES, _rule

    listed = tuple(_rule(kind, major, minor, "".join(c for c in "rwm" if c in access))
                   for (kind, major, minor), access in exceptions.items() if access)
    out["allow_all_devices"] = False
    out["allowed_devices"] = listed + tuple(
        d.replace(path="", file_mode=0) for d in DEFAULT_ALLOWED_DEVICES)


# --- network, rdma, unified ----------------------------------------------------------------

def _network(value, path, out, update):
    from ..config import IfPrioMap

    n = _object(value, path)
    classid = _get(n, "classID", path, _uint, _U32)
    if classid:
        out["net_cls_classid"] = classid
    prios = _get(n, "priorities", path, _list)
    if prios:
        maps = []
        for i, p in enumerate(prios):
            here = "%s.priorities[%d]" % (path, i)
            p = _object(p, here)
            name = _get(p, "name", here, _str)
            if name is None:
                raise ConfigError(_join(here, "name"), "is required")
            prio = _get(p, "priority", here, _uint, _U32)
            maps.append(IfPrioMap(interface=name, priority=prio or 0))
        out["net_prio_ifpriomap"] = tuple(maps)


def _rdma(value, path, out, update):
    if _object(value, path):
        raise ConfigError(path, "not supported (minins does not drive the rdma controller)")


def _unified(value, path, out, update):
    u = _object(value, path)
    pairs = []
    for key, v in u.items():
        if not isinstance(v, str):
            raise ConfigError(_join(path, key), "must be a string, not %s" % _type_name(v))
        pairs.append((key, v))
    if pairs:
        out["unified"] = tuple(pairs)


_SECTIONS = (("devices", _devices), ("memory", _memory), ("cpu", _cpu), ("pids", _pids),
             ("blockIO", _block_io), ("hugepageLimits", _hugepages), ("network", _network),
             ("rdma", _rdma), ("unified", _unified))
