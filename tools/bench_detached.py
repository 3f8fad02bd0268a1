#!/usr/bin/env python3
"""What the detached life cycle costs next to a foreground run (issue 12): the command line's
``minins run -- /bin/true`` against ``minins create`` + ``minins start`` of the same command,
and each step of the detached path on its own (create; start; delete once the command ended),
all with the default configuration.

    sudo python3 tools/bench_detached.py [--runs N]

Medians of wall time of whole commands (each a fresh interpreter, as a user runs them), and
the ratio of create+start to run. The benchmark is a child subreaper, so the detached inits
are reparented to it and reaped here.
"""
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_exec import PY, clean_env  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def _timed(argv, env):
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main():
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 20
    if os.geteuid() != 0:
        sys.exit("run as root")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER): errno %d" % ctypes.get_errno())
    env = clean_env()
    subprocess.run([PY, "-m", "compileall", "-q", os.path.join(REPO, "minins")], check=True)
    root = tempfile.mkdtemp(prefix="minins-bench-detached-")
    m = [PY, "-m", "minins", "--root", root]
    run, create, start, delete, both = [], [], [], [], []
    try:
        _timed(m + ["run", "--", "/bin/true"], env)  # warm the page cache
        for i in range(runs):
            run.append(_timed(m + ["run", "--id", "r%d" % i, "--", "/bin/true"], env))
            cid = "d%d" % i
            create.append(_timed(m + ["create", "--id", cid, "--", "/bin/true"], env))
            start.append(_timed(m + ["start", cid], env))
            both.append(create[-1] + start[-1])
            _reap()  # /bin/true has ended: the container is stopped
            delete.append(_timed(m + ["delete", cid], env))
    finally:
        for name in os.listdir(root):
            subprocess.run(m + ["delete", "--force", name], env=env)
        _reap()
        os.rmdir(root)
    med = statistics.median
    print("%-34s %8s" % ("command", "median"))
    for label, times in (("run -- /bin/true", run), ("create", create), ("start", start),
                         ("create + start", both), ("delete (stopped)", delete)):
        print("%-34s %7.1f ms" % (label, med(times) * 1000))
    print("create + start / run: %.2fx (%d rounds)" % (med(both) / med(run), runs))


if __name__ == "__main__":
    main()
