#!/usr/bin/env python3
"""Benchmark minins.cgroups against the same cgroupfs operations done directly.

    python3 tools/bench_cgroups.py [--rounds N] [--procs 10,1000]

1. Setup + join + removal of one container's cgroups, per driver available here:
   v1 (every mounted v1 hierarchy, plus the v2 one on hybrid hosts) and v2 (the unified
   hierarchy; on a hybrid host only core files and the BPF device program), against a
   hand-written list of the same mkdir/write/rmdir calls (plus, for v2, one BPF_PROG_LOAD
   and BPF_PROG_ATTACH). Moving the helper process back out before removal is not timed,
   for either side.
2. Freeze + thaw round trip with 10 and 1000 sleeping processes, for the v1 freezer and the
   v2 ``cgroup.freeze``, against a direct write-and-poll loop.
3. A child put into a new v2 cgroup: cloned into it (clone3 ``CLONE_INTO_CGROUP``) against
   forked and migrated, each after an idle moment (issue 16: the grace period).

Prints medians and ratios (minins / direct). Runs as root; every cgroup is made under this
process's own cgroup and removed; every process it starts is killed and reaped.
"""
import argparse
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minins import cgroups  # noqa: E402
from minins.cgroups import bpf_devices, values  # noqa: E402
from minins.cgroups.discovery import UNIFIED, Hierarchies, discover  # noqa: E402


def device(kind, major, minor, perms="rwm"):
    return types.SimpleNamespace(type=ord(kind), major_number=major, minor_number=minor,
                                 cgroup_permissions=perms)


# The seed's default device list (libcontainer-system.md section 1).
DEVICES = [device("c", -1, -1, "m"), device("b", -1, -1, "m"), device("c", 5, 1),
           device("c", 4, 0), device("c", 4, 1), device("c", 136, -1), device("c", 5, 2),
           device("c", 10, 200), device("c", 1, 3), device("c", 1, 5), device("c", 1, 7),
           device("c", 5, 0), device("c", 1, 9), device("c", 1, 8)]


def config(**kw):
    base = dict(name="", parent="", allow_all_devices=False, allowed_devices=DEVICES,
                memory=256 << 20, memory_reservation=128 << 20, memory_swap=0,
                cpu_shares=512, cpu_quota=50000, cpu_period=100000, cpuset_cpus="",
                cpuset_mems="", blkio_weight=500, freezer="", slice="", pids_limit=100)
    base.update(kw)
    return types.SimpleNamespace(**base)


def sleeper():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        try:
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


def stop(children):
    for pid, w in children:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.close(w)
    for pid, _ in children:
        os.waitpid(pid, 0)


def move_back(pid, paths):
    for path in dict.fromkeys(paths.values()):
        with open(path.rsplit("/", 1)[0] + "/cgroup.procs", "w") as f:
            f.write(str(pid))


# --- direct -----------------------------------------------------------------------------------

def write(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def direct_v1_ops(hier, name, cfg):
    """The v1 driver's writes, spelt out by hand."""
    ops = []
    d = {k: "%s/%s" % (hier.own_dir(k).rstrip("/"), name) for k in hier.v1}
    if hier.unified:
        d[UNIFIED] = "%s/%s" % (hier.own_dir(UNIFIED).rstrip("/"), name)
    if "cpuset" in d:
        parent = hier.own_dir("cpuset")
        ops += [("mkdir", d["cpuset"])]
        ops += [("copy", parent + "/" + f, d["cpuset"] + "/" + f)
                for f in ("cpuset.cpus", "cpuset.mems")]
    ops += [("mkdir", d["devices"]), ("write", d["devices"] + "/devices.deny", "a")]
    ops += [("write", d["devices"] + "/devices.allow", values.rule_text(values.device_rule(x)))
            for x in cfg.allowed_devices]
    m = d["memory"]
    ops += [("mkdir", m), ("write", m + "/memory.limit_in_bytes", str(cfg.memory)),
            ("write", m + "/memory.soft_limit_in_bytes", str(cfg.memory_reservation)),
            ("write", m + "/memory.memsw.limit_in_bytes", str(2 * cfg.memory))]
    c = d["cpu"]
    ops += [("mkdir", c), ("write", c + "/cpu.shares", str(cfg.cpu_shares)),
            ("write", c + "/cpu.cfs_period_us", str(cfg.cpu_period)),
            ("write", c + "/cpu.cfs_quota_us", str(cfg.cpu_quota))]
    ops += [("mkdir", d["cpuacct"]), ("mkdir", d["pids"]),
            ("write", d["pids"] + "/pids.max", str(cfg.pids_limit)), ("mkdir", d["blkio"])]
    weight = "blkio.weight" if os.path.exists(hier.v1["blkio"] + "/blkio.weight") \
        else "blkio.bfq.weight"
    ops += [("write", d["blkio"] + "/" + weight, str(cfg.blkio_weight))]
    ops += [("mkdir", d[k]) for k in ("perf_event", "freezer", UNIFIED) if k in d]
    return ops, list(d.values())


def run_direct(ops, dirs, pid):
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "mkdir":
            os.mkdir(op[1])
        elif op[0] == "copy":
            fd = os.open(op[1], os.O_RDONLY | os.O_CLOEXEC)
            value = os.read(fd, 4096).strip()
            os.close(fd)
            write(op[2], value.decode())
        else:
            write(op[1], op[2])
    for path in dirs:
        write(path + "/cgroup.procs", str(pid))
    t1 = time.perf_counter()
    for path in dirs:
        base = path.rsplit("/", 1)[0]
        write(base + "/cgroup.procs", str(pid))
    t2 = time.perf_counter()
    for path in dirs:
        os.rmdir(path)
    t3 = time.perf_counter()
    return (t1 - t0) + (t3 - t2)


def run_driver(cfg, hier, pid):
    t0 = time.perf_counter()
    mgr = cgroups.new_manager(cfg, hier)
    mgr.apply(pid)
    t1 = time.perf_counter()
    move_back(pid, mgr.paths)
    t2 = time.perf_counter()
    mgr.destroy()
    t3 = time.perf_counter()
    return (t1 - t0) + (t3 - t2)


def direct_v2_writes(cfg, hier):
    """The v2 driver's limit writes, spelt out by hand (values converted as in the docs)."""
    out = []
    if cfg.cpu_shares:
        out.append(("cpu.weight", "59" if cfg.cpu_shares == 512 else None))
    if cfg.cpu_quota:
        out.append(("cpu.max", "%d %d" % (cfg.cpu_quota, cfg.cpu_period)))
    if cfg.blkio_weight:
        out.append(("io.weight", str(1 + (cfg.blkio_weight - 10) * 9999 // 990)))
    if cfg.memory_reservation:
        out.append(("memory.low", str(cfg.memory_reservation)))
    if cfg.memory:
        out.append(("memory.max", str(cfg.memory)))
        out.append(("memory.swap.max", str(cfg.memory)))
    if cfg.pids_limit:
        out.append(("pids.max", str(cfg.pids_limit)))
    assert all(v is not None for _, v in out)
    return out


def direct_v2(hier, name, prog, pid, writes):
    from minins import libc

    path = "%s/%s" % (hier.own_dir(UNIFIED).rstrip("/"), name)
    t0 = time.perf_counter()
    os.mkdir(path)
    for fname, value in writes:
        write(path + "/" + fname, value)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    pfd = bpf_devices.load(prog)
    libc.bpf(bpf_devices.BPF_PROG_ATTACH, bpf_devices._AttachAttr(
        target_fd=fd, attach_bpf_fd=pfd, attach_type=bpf_devices.BPF_CGROUP_DEVICE,
        attach_flags=bpf_devices.BPF_F_ALLOW_MULTI))
    os.close(pfd)
    os.close(fd)
    write(path + "/cgroup.procs", str(pid))
    t1 = time.perf_counter()
    write(hier.own_dir(UNIFIED) + "/cgroup.procs", str(pid))
    t2 = time.perf_counter()
    os.rmdir(path)
    t3 = time.perf_counter()
    return (t1 - t0) + (t3 - t2)


def setup_bench(rounds):
    hier = discover()
    pid, w = sleeper()
    rows = []
    try:
        if hier.v1:
            cfg = config()
            ops_name = "minins-bench-%d" % os.getpid()
            drv, dct = [], []
            for i in range(rounds):
                name = "%s-%d" % (ops_name, i)
                ops, dirs = direct_v1_ops(hier, name + "d", cfg)
                dct.append(run_direct(ops, dirs, pid))
                drv.append(run_driver(config(name=name), hier, pid))
            rows.append(("setup+join+removal, v1 driver (%d hierarchies%s)"
                         % (len(set(hier.v1.values())), " + unified" if hier.unified else ""),
                         drv, dct))
        if hier.unified:
            own = Hierarchies({}, hier.unified, {UNIFIED: hier.own.get(UNIFIED, "/")})
            cfg = config(memory=0, memory_reservation=0, cpu_shares=0, cpu_quota=0,
                         cpu_period=0, blkio_weight=0, pids_limit=0)
            if not hier.v1:  # a real v2 host: limits too, on what the own cgroup delegates
                with open(hier.own_dir(UNIFIED) + "/cgroup.subtree_control") as f:
                    have = set(f.read().split())
                cfg = config(blkio_weight=500 if "io" in have else 0,
                             memory=(256 << 20) if "memory" in have else 0,
                             memory_reservation=(128 << 20) if "memory" in have else 0,
                             pids_limit=100 if "pids" in have else 0)
                if "cpu" not in have:
                    cfg = config(**dict(vars(cfg), cpu_shares=0, cpu_quota=0, cpu_period=0))
                own = hier
            prog = bpf_devices.program(values.device_rules(cfg))
            writes = direct_v2_writes(cfg, own)
            drv, dct = [], []
            for i in range(rounds):
                name = "minins-bench2-%d-%d" % (os.getpid(), i)
                dct.append(direct_v2(own, name + "d", prog, pid, writes))
                drv.append(run_driver(config(**dict(vars(cfg), name=name)), own, pid))
            rows.append(("setup+join+removal, v2 driver (%s)" % (
                "devices only: no v2 controllers here" if hier.v1 else "all limits"),
                drv, dct))
    finally:
        stop([(pid, w)])
    return rows


# --- freezer ----------------------------------------------------------------------------------

def freeze_bench(nprocs, rounds):
    hier = discover()
    rows = []
    kinds = []
    if "freezer" in hier.v1:
        kinds.append(("v1 freezer.state", Hierarchies({"freezer": hier.v1["freezer"]}, None,
                                                      {"freezer": hier.own["freezer"]})))
    if hier.unified:
        kinds.append(("v2 cgroup.freeze", Hierarchies({}, hier.unified,
                                                      {UNIFIED: hier.own.get(UNIFIED, "/")})))
    for label, h in kinds:
        cfg = config(allow_all_devices=True, memory=0, memory_reservation=0, cpu_shares=0,
                     cpu_quota=0, cpu_period=0, blkio_weight=0, pids_limit=0,
                     name="minins-benchfz-%d" % os.getpid())
        mgr = cgroups.new_manager(cfg, h)
        children = [sleeper() for _ in range(nprocs)]
        try:
            mgr.apply(children[0][0])
            for pid, _ in children[1:]:
                mgr.join(pid)
            drv, dct = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                mgr.freeze()
                mgr.thaw()
                drv.append(time.perf_counter() - t0)
                dct.append(direct_freeze(mgr))
            rows.append(("freeze+thaw, %s, %d processes" % (label, nprocs), drv, dct))
        finally:
            stop(children)
            mgr.destroy()
    return rows


def direct_freeze(mgr):
    if mgr.driver == "cgroupfs-v1":
        state = mgr.paths["freezer"] + "/freezer.state"
        t0 = time.perf_counter()
        for want in ("FROZEN", "THAWED"):
            write(state, want)
            while True:
                with open(state) as f:
                    if f.read().strip() == want:
                        break
        return time.perf_counter() - t0
    path = mgr.paths[UNIFIED]
    t0 = time.perf_counter()
    for want in ("1", "0"):
        write(path + "/cgroup.freeze", want)
        while True:
            with open(path + "/cgroup.events") as f:
                if ("frozen %s" % want) in f.read():
                    break
    return time.perf_counter() - t0


def born_bench(hier, rounds, idle=0.05):
    """A child into a new v2 cgroup: forked then migrated (``admit(born=False)``: the first
    write to ``cgroup.procs`` after a quiet while waits for an RCU grace period) against
    cloned into it (clone3 CLONE_INTO_CGROUP). Each round starts after ``idle`` seconds
    without cgroup writes, as a container start does on a quiet host. Time from before the
    fork to the child being in the cgroup; the child exits at once."""
    from minins import libc

    if not hier.unified:
        return []
    # below our own v2 cgroup; no limits (a hybrid host binds the controllers to v1)
    own = Hierarchies({}, hier.unified, {UNIFIED: hier.own.get(UNIFIED, "/")})
    plain = dict(memory=0, memory_reservation=0, cpu_shares=0, cpu_quota=0, cpu_period=0,
                 blkio_weight=0, pids_limit=0)
    out = {False: [], True: []}
    for i in range(rounds):
        for born in (False, True):
            mgr = cgroups.new_manager(config(name="minins-bench-born-%d-%d-%d"
                                             % (os.getpid(), i, born), **plain), own,
                                      driver="v2")
            fd = mgr.prepare()
            try:
                time.sleep(idle)  # let the rcu_sync of cgroup_threadgroup_rwsem go idle
                t0 = time.perf_counter()
                pid = libc.fork_into_cgroup(fd) if born else os.fork()
                if pid == 0:
                    os._exit(0)
                mgr.admit(pid, born)
                out[born].append(time.perf_counter() - t0)
                os.waitpid(pid, 0)
            finally:
                os.close(fd)
                mgr.destroy()
    return [("child into a new v2 cgroup: clone3 INTO_CGROUP (A) vs fork+migrate (B)",
             out[True], out[False])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--procs", default="10,1000")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_cgroups: needs root")
    rows = setup_bench(args.rounds)
    rows += born_bench(discover(), max(10, args.rounds // 10))
    for n in (int(x) for x in args.procs.split(",")):
        rows += freeze_bench(n, max(10, args.rounds // (10 if n > 100 else 1)))
    print("%-66s %10s %10s %6s" % ("operation (median of each)", "minins", "direct", "ratio"))
    for label, drv, dct in rows:
        a, b = statistics.median(drv), statistics.median(dct)
        print("%-66s %8.0fµs %8.0fµs %6.2f" % (label, a * 1e6, b * 1e6, a / b))


if __name__ == "__main__":
    main()
