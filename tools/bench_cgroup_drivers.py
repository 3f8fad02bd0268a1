#!/usr/bin/env python3
"""A container start with the cgroupfs driver and with the systemd driver, side by side.

    python3 tools/bench_cgroup_drivers.py [--rounds N]

Needs root on a host booted with systemd (the pure cgroup v2 guest of tools/vm-cgroup-v2-tests:
``tools/vm-cgroup-v2-tests --bench-drivers``). The two drivers take turns, so they meet the
same background load. For each it times:

1. a whole ``minins.run`` of ``/bin/true`` with the default configuration plus a memory and a
   pids limit (fork, namespaces, cgroups, mounts, exec, exit, removal);
2. the cgroup step alone: ``new_manager`` + ``apply`` of one sleeping process, and
   ``destroy`` after it is killed (for systemd: StartTransientUnit and its job, the
   cgroupfs rest, StopUnit and its job).

Prints medians, best times and the ratio systemd / cgroupfs.
"""
import argparse
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minins  # noqa: E402
from minins import cgroups, config  # noqa: E402


def whole_run(driver, n):
    cfg = config.default_config()
    cfg = cfg.replace(cgroups=cfg.cgroups.replace(driver=driver, memory=256 << 20,
                                                  pids_limit=100))
    t = time.perf_counter()
    code = minins.run(cfg, ["/bin/true"], id="bench-%s-%d-%d" % (driver, os.getpid(), n))
    took = time.perf_counter() - t
    assert code == 0, code
    return took


def cgroup_step(driver, n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    cfg = config.default_config().cgroups.replace(
        driver=driver, name="bench-cg-%d-%d" % (os.getpid(), n), memory=256 << 20,
        pids_limit=100, allowed_devices=config.DEFAULT_ALLOWED_DEVICES)
    try:
        t = time.perf_counter()
        mgr = cgroups.new_manager(cfg)
        mgr.apply(pid)
        setup = time.perf_counter() - t
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(w)
    t = time.perf_counter()
    mgr.destroy()
    return setup, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.isdir("/run/systemd/system"):
        sys.exit("bench_cgroup_drivers: needs root on a host booted with systemd")
    drivers = ("cgroupfs", "systemd")
    runs = {d: [] for d in drivers}
    setups = {d: [] for d in drivers}
    removals = {d: [] for d in drivers}
    for d in drivers:  # warm-up: imports, page cache
        whole_run(d, -1)
        cgroup_step(d, -1)
    for n in range(args.rounds):
        for d in (drivers if n % 2 == 0 else drivers[::-1]):
            runs[d].append(whole_run(d, n))
            s, r = cgroup_step(d, n)
            setups[d].append(s)
            removals[d].append(r)

    def line(what, table):
        med = {d: statistics.median(table[d]) * 1000 for d in drivers}
        best = {d: min(table[d]) * 1000 for d in drivers}
        print("%-34s %9.1f ms (best %7.1f) %9.1f ms (best %7.1f) %6.2fx" % (
            what, med["cgroupfs"], best["cgroupfs"], med["systemd"], best["systemd"],
            med["systemd"] / med["cgroupfs"]))

    print("%d rounds, medians; %-20s %-30s %s" % (args.rounds, "cgroupfs", "systemd",
                                                  "systemd/cgroupfs"))
    line("minins.run /bin/true (whole)", runs)
    line("cgroups: new_manager + apply", setups)
    line("cgroups: destroy", removals)


if __name__ == "__main__":
    main()
