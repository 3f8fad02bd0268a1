#!/usr/bin/env python3
"""Benchmark minins's seccomp: compile time, start-up cost, per-syscall cost (vs runc).

    sudo python3 tools/bench_seccomp.py [--runs 20] [--calls 2000000] [--skip-start]

1. Compile: the default profile resolved and compiled in-process (no cache), and
   ``load.prepare`` as a start does it (cache hit: hash + read).
2. Start: ``minins run -- true`` with the default profile against ``--seccomp=unconfined``,
   side by side with farm-bench (paired runs; the median ratio is the figure to quote).
3. Per syscall: a static C loop of ``syscall(SYS_getpid)`` (built here with gcc, in a
   temporary directory under /var/tmp) run in minins unconfined, in minins with the default
   profile, and in runc with the same resolved profile as OCI ``linux.seccomp``.

Not a test: figures vary with the machine. Needs root; runc and gcc are optional.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

LOOP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
"""


def median_ms(fn, n=30):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]


def bench_compile():
    from minins import config
    from minins.seccomp import compiler, default, load, tables
    from minins import arch

    native = tables.NATIVE[arch.current()]
    caps = config.default_config().capabilities
    resolve = median_ms(lambda: default.default_profile(caps, native))
    prof = default.default_profile(caps, native)
    comp = median_ms(lambda: compiler.compile_profile(prof, native))
    prog = compiler.compile_profile(prof, native)
    pack = median_ms(lambda: compiler.pack(prog))
    cfg = config.default_config()
    with tempfile.TemporaryDirectory() as d:
        cache = os.path.join(d, "cache")
        load.prepare(cfg, cache_dir=cache)  # fill
        hit = median_ms(lambda: load.prepare(cfg, cache_dir=cache))
    print("compile (default profile, %s, %d instructions):" % (native, len(prog)))
    print("  resolve %.2f ms, compile %.2f ms, pack %.2f ms (median of 30, no cache)"
          % (resolve, comp, pack))
    print("  prepare with a cache hit: %.3f ms" % hit)
    return prof


def bench_start(runs):
    if not shutil.which("farm-bench"):
        print("start: farm-bench not found, skipped")
        return
    py = sys.executable
    a = "%s -m minins run -- true" % py
    b = "%s -m minins run --seccomp=unconfined -- true" % py
    subprocess.run(a.split(), cwd=REPO, check=True)  # fills the cache
    print("start: A = default profile, B = unconfined")
    subprocess.run(["farm-bench", "-n", str(runs), "--vs", b, "--"] + a.split(), cwd=REPO)


def build_loop(workdir):
    if not shutil.which("gcc"):
        return None
    src = os.path.join(workdir, "loop.c")
    with open(src, "w") as f:
        f.write(LOOP_C)
    out = os.path.join(workdir, "loop")
    r = subprocess.run(["gcc", "-O2", "-static", "-o", out, src], capture_output=True)
    return out if r.returncode == 0 else None


def minins_loop(workdir, loop, calls, seccomp):
    # the rootfs runc gets too: the default configuration's / would hide the loop under the
    # empty tmpfs it mounts over /var/tmp (and /tmp)
    rootfs = _rootfs(workdir, loop)
    r = subprocess.run([sys.executable, "-m", "minins", "run", "--seccomp", seccomp,
                        "--rootfs", rootfs, "--", "/loop", str(calls)], cwd=REPO,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("  minins failed: %s" % r.stderr.strip()[:300])
        return None
    return float(r.stdout)


def _rootfs(workdir, loop):
    rootfs = os.path.join(workdir, "bundle", "rootfs")
    for d in ("proc", "dev"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy(loop, os.path.join(rootfs, "loop"))
    return rootfs


def runc_loop(workdir, loop, calls, prof_json):
    if not shutil.which("runc"):
        return None
    bundle = os.path.join(workdir, "bundle")
    _rootfs(workdir, loop)
    spec = {
        "ociVersion": "1.0.2",
        "process": {"args": ["/loop", str(calls)], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "env": ["PATH=/"], "noNewPrivileges": True,
                    "capabilities": {k: ["CAP_" + c for c in CAPS]
                                     for k in ("bounding", "effective", "permitted")}},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc-bench",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "mode=755"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount",
                                                       "network")],
                  "seccomp": prof_json},
    }
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    state = os.path.join(workdir, "runc-state")
    r = subprocess.run(["runc", "--root", state, "run", "--bundle", bundle,
                        "minins-bench-%d" % os.getpid()], capture_output=True, text=True)
    if r.returncode != 0:
        print("  runc failed: %s" % r.stderr.strip()[:300])
        return None
    return float(r.stdout)


CAPS = ()


def bench_syscalls(prof, calls):
    global CAPS
    from minins import config

    CAPS = config.default_config().capabilities
    workdir = tempfile.mkdtemp(prefix="minins-bench-", dir="/var/tmp")
    try:
        loop = build_loop(workdir)
        if loop is None:
            print("per-syscall: gcc not found or failed, skipped")
            return
        print("per-syscall: getpid x %d, ns per call (median of 7 interleaved runs each)"
              % calls)
        rows = [("minins, unconfined",
                 lambda: minins_loop(workdir, loop, calls, "unconfined")),
                ("minins, default profile",
                 lambda: minins_loop(workdir, loop, calls, "default")),
                ("runc, same profile", lambda: runc_loop(workdir, loop, calls,
                                                         prof.to_json()))]
        results = {name: [] for name, _fn in rows}
        for _ in range(7):  # in turn, so that a noisy moment hits every row alike
            for name, fn in rows:
                v = fn()
                if v is not None:
                    results[name].append(v)
        for name, _fn in rows:
            vals = sorted(results[name])
            print("  %-26s %s" % (name, "%.1f (min %.1f)" % (vals[len(vals) // 2], vals[0])
                                  if vals else "n/a"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--calls", type=int, default=2000000)
    ap.add_argument("--skip-start", action="store_true")
    a = ap.parse_args()
    prof = bench_compile()
    if not a.skip_start:
        bench_start(a.runs)
    bench_syscalls(prof, a.calls)


if __name__ == "__main__":
    main()
