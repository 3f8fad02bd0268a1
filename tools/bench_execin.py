#!/usr/bin/env python3
"""Entering a running container, side by side in one run: ``minins exec -- /bin/true`` (the
command line, and the library call) next to ``nsenter --target PID --all true`` (util-linux),
into the same container started with the default configuration.

    sudo python3 tools/bench_execin.py [--runs N]

nsenter joins the namespaces and execs; minins also checks the state against the kernel,
joins the container's cgroups before the command can run, and applies its environment,
rlimits, user, capabilities and no_new_privileges. Medians of wall time, as ratios to nsenter.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

from bench_exec import PY, bench, clean_env  # noqa: E402


def library_loop(data_path, runs):
    from minins import execin

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        execin.exec_in(data_path, ["/bin/true"], stdout=devnull)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            assert execin.exec_in(data_path, ["/bin/true"], stdout=devnull) == 0
            times.append(time.perf_counter() - t0)
    finally:
        os.close(devnull)
    return statistics.median(times), min(times), None


def main():
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 30
    if os.geteuid() != 0:
        sys.exit("run as root")
    import minins
    from minins.container import Container

    env = clean_env()
    subprocess.run([PY, "-m", "compileall", "-q", os.path.join(REPO, "minins")], check=True)
    root = tempfile.mkdtemp(prefix="minins-bench-execin-")
    c = Container(minins.default_config(), ["sleep", "3600"], id="bench", state_root=root)
    c.create()
    c.start()
    rows = []
    try:
        nsenter = shutil.which("nsenter")
        if nsenter:
            rows.append(("nsenter --target PID --all true",
                         bench([nsenter, "--target", str(c.pid), "--all", "/bin/true"], runs)))
        rows.append(("minins exec library call (execin.exec_in)",
                     library_loop(c.data_path, runs)))
        rows.append(("minins exec --data-path DIR -- /bin/true (command line)",
                     bench([PY, "-m", "minins", "exec", "--data-path", c.data_path, "--",
                            "/bin/true"], runs, env)))
        rows.append(("python3 -c pass (the interpreter alone)",
                     bench([PY, "-c", "pass"], runs, env)))
    finally:
        c.kill()
        c.wait()
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0][1][0] if nsenter else None
    print("%-58s %9s %9s %9s" % ("what (runs=%d)" % runs, "median", "min", "/nsenter"))
    for name, (med, low, _rss) in rows:
        print("%-58s %7.2fms %7.2fms %9s" % (name, med * 1e3, low * 1e3,
                                             "%.2f" % (med / base) if base else "-"))


if __name__ == "__main__":
    main()
