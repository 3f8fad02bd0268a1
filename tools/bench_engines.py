#!/usr/bin/env python3
"""Speed through an engine (issue 13, section 4): ``podman run --rm IMAGE /bin/true`` and
``ctr run --rm IMAGE ID /bin/true`` with one runtime against another, in turns, side by side.

    sudo python3 tools/bench_engines.py [--runs N] [--a NAME=PATH] [--b NAME=PATH]
                                        [--only podman|ctr]

``--a`` is the runtime measured (default: minins, from this checkout through the two-line
wrapper ``python3 -m minins`` with ``PYTHONPATH``, or ``minins=PATH`` for an installed
``minins``), ``--b`` the yardstick (default ``runc=/usr/sbin/runc``). ``NAME`` is the name
the engine knows the runtime by (podman passes ``--log-format=json`` only to names it
knows); runc and crun are given to the engines as their own binaries.

An engine calls the runtime four or five times per container (podman: create, start, then
delete after the exit; containerd's shim: create, start, delete, delete --force), so the
figures are whole engine commands, timed from outside: the median of each side and the
median of the per-pair ratios A/B (pairs run in turns, A B B A..., so that a drifting
machine moves both). Nothing here is a test.

The engines run in the sandbox of tests/engines_support.py: a private mount namespace,
state in a temporary directory, a cgroup parent of ours, no network; everything is removed
at the end. When either runtime is crun, ``/sys/fs/cgroup/unified`` is unmounted in that
namespace (crun 1.8 refuses a hybrid host), for both sides alike.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import engines_support as es  # noqa: E402
from rootfs_util import build_rootfs  # noqa: E402


def runtime_path(spec, bindir):
    """The executable for ``NAME=PATH`` (or ``minins`` for this checkout's wrapper)."""
    name, _, path = spec.partition("=")
    if name == "minins" and not path:
        argv, env = es.minins_target(REPO)
        return name, es.runtime_wrapper(bindir, "minins", argv, env=env)
    path = path or shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin")
    if not path or not os.access(path, os.X_OK):
        raise SystemExit("bench_engines: %s is not an executable" % spec)
    if os.path.basename(path) != name:
        # the engines know a runtime by its file name
        path = es.runtime_wrapper(bindir, name, [path])
    return name, path


def timing_wrapper(bindir, name, path, log):
    """An executable ``bindir/name`` that runs ``path`` and appends ``NS COMMAND`` (the
    wall nanoseconds of that call, the runtime's command word) to ``log``."""
    os.makedirs(bindir, exist_ok=True)
    wrapper = os.path.join(bindir, name)
    with open(wrapper, "w") as f:
        f.write("""#!/bin/sh
t0=$(date +%%s%%N)
%s "$@"
rc=$?
for a in "$@"; do case $a in create|start|delete|kill|exec|run|state|ps|pause|resume|update|spec|--version) cmd=$a; break;; esac; done
echo "$(( $(date +%%s%%N) - t0 )) $cmd" >>%s
exit $rc
""" % (es._sh(path), es._sh(log)))
    os.chmod(wrapper, 0o755)
    return wrapper


def call_report(name, log):
    """Median wall time of each runtime command in ``log``, one line."""
    per = {}
    try:
        with open(log) as f:
            for line in f:
                ns, _, cmd = line.partition(" ")
                per.setdefault(cmd.strip() or "?", []).append(int(ns) / 1e6)
    except OSError:
        return "%s: no calls logged" % name
    return "%-7s per call: %s" % (name, ", ".join(
        "%s %.0f ms (n=%d)" % (cmd, statistics.median(v), len(v))
        for cmd, v in sorted(per.items())))


def timed(argv, env):
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv[3:]), out.returncode,
                                                out.stderr.decode(errors="replace")[-400:]))
    return dt


def paired(a, b, runs):
    """Run the zero-argument callables in turns (A B, B A, ...) after one warm-up each;
    returns the two lists of seconds."""
    a(), b()
    ta, tb = [], []
    for i in range(runs):
        order = ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta))
        for fn, times in order:
            times.append(fn())
    return ta, tb


def report(what, names, ta, tb):
    ratios = sorted(x / y for x, y in zip(ta, tb))
    return "%-34s %-7s %7.0f ms   %-7s %7.0f ms   A/B %.2fx (pairs %.2f-%.2f, n=%d)" % (
        what, names[0], statistics.median(ta) * 1e3, names[1], statistics.median(tb) * 1e3,
        statistics.median(ratios), ratios[0], ratios[-1], len(ratios))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--a", default="minins")
    ap.add_argument("--b", default="runc=/usr/sbin/runc")
    ap.add_argument("--only", choices=("podman", "ctr"))
    ap.add_argument("--calls", action="store_true",
                    help="also time each runtime call the engines make (create, start, "
                         "delete...) through a timing wrapper, and print their medians")
    args = ap.parse_args(argv)
    try:
        es.need_root()
    except es.Unavailable as e:
        raise SystemExit("bench_engines: %s" % e)
    base = tempfile.mkdtemp(prefix="minins-be-")  # podman: runroot <= 50 chars
    os.chmod(base, 0o755)
    bindir = os.path.join(base, "bin")
    sides = [runtime_path(args.a, bindir), runtime_path(args.b, bindir)]
    names = [n for n, _ in sides]
    if args.calls:
        sides = [(n, timing_wrapper(os.path.join(base, "timed-" + n), n, p,
                                    os.path.join(base, "calls-" + n)))
                 for n, p in sides]
    for name, path in sides:
        if name == "minins":
            missing = es.oci_cli_missing(path)
            if missing:
                raise SystemExit("bench_engines: minins cannot serve an engine yet: " +
                                 missing)
    ns = cgroup = None
    engines = []
    lines = []
    try:
        ns = es.MountNamespace(os.path.join(base, "ns.log"),
                               hide_unified="crun" in names)
        cgroup = es.CgroupParent("bench")
        rootfs = build_rootfs(os.path.join(base, "rootfs"))
        layer = es.rootfs_tar(rootfs, os.path.join(base, "rootfs.tar"))
        if args.only in (None, "podman"):
            pods = []
            for name, path in sides:
                p = es.Podman(os.path.join(base, "p-" + name), path, ns, cgroup.path)
                engines.append(p)
                p.import_image(layer)
                pods.append(p)

            def podman_run(p):
                return lambda: timed(p.argv("run", "--rm", *p.run_args(), es.IMAGE,
                                            "/bin/true"), p.env)
            ta, tb = paired(podman_run(pods[0]), podman_run(pods[1]), args.runs)
            lines.append(report("podman run --rm IMAGE /bin/true", names, ta, tb))
            print(lines[-1], flush=True)
        if args.only in (None, "ctr"):
            c = es.Containerd(os.path.join(base, "containerd"), ns, cgroup.path)
            engines.append(c)
            c.start()
            c.import_image(es.oci_archive(layer, os.path.join(base, "image.tar")))
            counter = iter(range(1 << 30))

            def ctr_run(path):
                def run():
                    cid = "bench-%d" % next(counter)
                    argv = ns.cmd([c.ctr, "--address", c.address, "--namespace",
                                   es.CTR_NAMESPACE, "run", "--rm"] + c.run_args(path, cid) +
                                  [es.IMAGE, cid, "/bin/true"])
                    return timed(argv, es._plain_env(c.base))
                return run
            ta, tb = paired(ctr_run(sides[0][1]), ctr_run(sides[1][1]), args.runs)
            lines.append(report("ctr run --rm IMAGE ID /bin/true", names, ta, tb))
            print(lines[-1], flush=True)
        if args.calls:
            for name, _ in sides:
                print(call_report(name, os.path.join(base, "calls-" + name)))
    finally:
        problems = []
        for engine in reversed(engines):
            problems += engine.close()
        if ns is not None:
            ns.close()
        if cgroup is not None:
            problems += cgroup.remove()
        shutil.rmtree(base, ignore_errors=True)
        if problems:
            print("bench_engines: cleanup: %s" % problems, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
