"""Container statistics in the seed's JSON shape, read from v1 or v2 files.

The shape is libcontainer's ``cgroups.Stats`` (``libcontainer-system.md`` section 6) plus
``pids_stats``::

    {"cgroup_stats": {
        "cpu_stats": {"cpu_usage": {"total_usage", "percpu_usage", "usage_in_kernelmode",
                                    "usage_in_usermode"},
                      "throttling_data": {"periods", "throttled_periods", "throttled_time"}},
        "memory_stats": {"usage", "max_usage", "failcnt", "stats": {memory.stat}},
        "blkio_stats": {"io_service_bytes_recursive": [{"major", "minor", "op", "value"}], ...},
        "pids_stats": {"current", "limit"}}}

Times are nanoseconds. On v2, ``percpu_usage`` is empty (the kernel has no per-cpu file),
``max_usage`` is ``memory.peak`` (5.19+), ``failcnt`` the ``max`` count of ``memory.events``;
``pids_stats.limit`` 0 means no limit, as in runc. A file that does not exist leaves its
numbers at zero, as the seed did for a missing subsystem.

The parsers are pure; the readers take the cgroupfs seam. Kernel: cgroup-v1/cpuacct.rst,
memory.rst, blkio-controller.rst, pids.rst; cgroup-v2.rst.
"""
import errno as _errno
import os as _os

from ..errors import SyscallError

# The seed's CFQ files (blkio.<name>_recursive) and their JSON keys.
_CFQ = (("sectors", "sectors_recursive"),
        ("io_service_bytes", "io_service_bytes_recursive"),
        ("io_serviced", "io_serviced_recursive"),
        ("io_queued", "io_queue_recursive"),
        ("io_service_time", "io_service_time_recursive"),
        ("io_wait_time", "io_wait_time_recursive"),
        ("io_merged", "io_merged_recursive"),
        ("time", "io_time_recursive"))


def empty():
    return {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 0, "percpu_usage": [], "usage_in_kernelmode": 0,
                          "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {"usage": 0, "max_usage": 0, "failcnt": 0, "stats": {}},
        "blkio_stats": {key: [] for _, key in _CFQ},
        "pids_stats": {"current": 0, "limit": 0},
    }


# --- parsers (pure) --------------------------------------------------------------------------

def parse_keyed(text):
    """``{key: int}`` of a flat keyed file (``memory.stat``, ``cpu.stat``)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                raise ValueError("bad line %r" % line)
        elif parts:
            raise ValueError("bad line %r" % line)
    return out


def parse_uint(text):
    """An integer file; ``max`` is 0 (no limit)."""
    text = text.strip()
    return 0 if text == "max" else int(text)


def parse_blkio(text):
    """Entries of a v1 blkio file: ``8:0 Read 123`` or ``8:0 123``; ``Total`` lines dropped."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] == "Total":
            continue
        major, sep, minor = parts[0].partition(":")
        if not sep or len(parts) not in (2, 3):
            raise ValueError("bad line %r" % line)
        op = parts[1] if len(parts) == 3 else ""
        out.append({"major": int(major), "minor": int(minor), "op": op,
                    "value": int(parts[-1])})
    return out


def parse_io_stat(text):
    """v2 ``io.stat`` as (bytes entries, ios entries) in the blkio shape (Read/Write)."""
    nbytes, nios = [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        major, _, minor = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        dev = {"major": int(major), "minor": int(minor)}
        for key, op, out in (("rbytes", "Read", nbytes), ("wbytes", "Write", nbytes),
                             ("rios", "Read", nios), ("wios", "Write", nios)):
            if key in kv:
                out.append(dict(dev, op=op, value=int(kv[key])))
    return nbytes, nios


# --- readers ---------------------------------------------------------------------------------

def _read(fs, path):
    try:
        return fs.read(path)
    except SyscallError as e:
        if e.errno in (_errno.ENOENT, _errno.ENODEV):
            return None
        raise


def stats_v1(paths, fs):
    """Stats from the v1 ``paths`` (``{subsystem: directory}``)."""
    out = empty()
    usage = out["cpu_stats"]["cpu_usage"]
    acct = paths.get("cpuacct")
    if acct:
        text = _read(fs, acct + "/cpuacct.usage")
        if text is not None:
            usage["total_usage"] = int(text)
            usage["percpu_usage"] = [int(v) for v in
                                     (_read(fs, acct + "/cpuacct.usage_percpu") or "").split()]
            tick = _os.sysconf("SC_CLK_TCK")
            ticks = parse_keyed(_read(fs, acct + "/cpuacct.stat") or "")
            usage["usage_in_usermode"] = ticks.get("user", 0) * 10 ** 9 // tick
            usage["usage_in_kernelmode"] = ticks.get("system", 0) * 10 ** 9 // tick
    if paths.get("cpu"):
        cpu = parse_keyed(_read(fs, paths["cpu"] + "/cpu.stat") or "")
        out["cpu_stats"]["throttling_data"].update(
            periods=cpu.get("nr_periods", 0), throttled_periods=cpu.get("nr_throttled", 0),
            throttled_time=cpu.get("throttled_time", 0))
    mem = paths.get("memory")
    if mem:
        ms = out["memory_stats"]
        for key, name in (("usage", "usage_in_bytes"), ("max_usage", "max_usage_in_bytes"),
                          ("failcnt", "failcnt")):
            text = _read(fs, "%s/memory.%s" % (mem, name))
            if text is not None:
                ms[key] = int(text)
        ms["stats"] = parse_keyed(_read(fs, mem + "/memory.stat") or "")
    if paths.get("blkio"):
        out["blkio_stats"].update(_blkio_v1(paths["blkio"], fs))
    if paths.get("pids"):
        _pids(out, paths["pids"], fs)
    return {"cgroup_stats": out}


def _blkio_v1(path, fs):
    """CFQ's recursive files when present, else BFQ's, else the throttling counters."""
    if fs.exists(path + "/blkio.io_serviced_recursive"):
        return {key: parse_blkio(_read(fs, "%s/blkio.%s_recursive" % (path, name)) or "")
                for name, key in _CFQ}
    for prefix in ("blkio.bfq.", "blkio.throttle."):
        text = _read(fs, path + "/" + prefix + "io_serviced_recursive")
        if text is not None:
            return {"io_serviced_recursive": parse_blkio(text),
                    "io_service_bytes_recursive": parse_blkio(
                        _read(fs, path + "/" + prefix + "io_service_bytes_recursive") or "")}
    return {}


def _pids(out, path, fs):
    current = _read(fs, path + "/pids.current")
    if current is not None:
        out["pids_stats"]["current"] = parse_uint(current)
        out["pids_stats"]["limit"] = parse_uint(_read(fs, path + "/pids.max") or "0")


def stats_v2(path, fs):
    """Stats from the v2 cgroup ``path``."""
    out = empty()
    cpu = parse_keyed(_read(fs, path + "/cpu.stat") or "")
    out["cpu_stats"]["cpu_usage"].update(
        total_usage=cpu.get("usage_usec", 0) * 1000,
        usage_in_usermode=cpu.get("user_usec", 0) * 1000,
        usage_in_kernelmode=cpu.get("system_usec", 0) * 1000)
    out["cpu_stats"]["throttling_data"].update(
        periods=cpu.get("nr_periods", 0), throttled_periods=cpu.get("nr_throttled", 0),
        throttled_time=cpu.get("throttled_usec", 0) * 1000)
    current = _read(fs, path + "/memory.current")
    if current is not None:
        ms = out["memory_stats"]
        ms["usage"] = int(current)
        ms["max_usage"] = int(_read(fs, path + "/memory.peak") or 0)
        ms["failcnt"] = parse_keyed(_read(fs, path + "/memory.events") or "").get("max", 0)
        ms["stats"] = parse_keyed(_read(fs, path + "/memory.stat") or "")
    io = _read(fs, path + "/io.stat")
    if io is not None:
        nbytes, nios = parse_io_stat(io)
        out["blkio_stats"].update(io_service_bytes_recursive=nbytes,
                                  io_serviced_recursive=nios)
    _pids(out, path, fs)
    return {"cgroup_stats": out}
