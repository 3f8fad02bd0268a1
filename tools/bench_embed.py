#!/usr/bin/env python3
"""Start time of minins.run() in a program whose other threads keep the interpreter busy.

    sudo python3 tools/bench_embed.py [-n STARTS] [--threads N] [--compare]

Runs ``minins.run(default_config(), ["/bin/true"])`` STARTS times with no other thread, then
STARTS times while N threads spin in pure Python, alternating idle and busy starts so that both
meet the same background load (this machine is shared). One of the busy threads logs all the
time through a real handler: each of its calls takes the ``logging`` module's lock (which
CPython's ``os.fork`` takes too, as a before-fork handler) and its handler's lock, as in a
chatty program. Prints the medians, their ratio and the median of the per-pair ratios. The
issue's target: busy at most 3x idle.

``--compare`` adds, in each round, a busy start made as ``run`` made it before the forked
helper (``Container.create``, ``start``, ``wait`` in the calling thread): the before and the
after, under the same load.

A measurement, not a test: run it on a quiet machine, several times; the figures in
vendor-notes.md ("Embedding notes") are medians of such runs.
"""
import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minins  # noqa: E402


def spin(stop, log=None):
    x = 0
    while not stop.is_set():
        x += 1
        if log is not None:
            # getLogger takes logging's module lock, the handler its own
            logging.getLogger(log).warning("busy %d", x)


def one(cfg, root, in_process=False):
    t = time.perf_counter()
    if in_process:
        c = minins.Container(cfg, ["/bin/true"], state_root=root)
        c.create()
        c.start()
        code = c.wait()
    else:
        code = minins.run(cfg, ["/bin/true"], state_root=root)
    assert code == 0, code
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--compare", action="store_true",
                    help="also busy starts without the forked helper (run before it existed)")
    args = ap.parse_args()
    cfg = minins.default_config()
    root = tempfile.mkdtemp(prefix="minins-bench-embed-")
    sink = open(os.devnull, "w")
    logging.getLogger("bench-embed").addHandler(logging.StreamHandler(sink))
    logging.getLogger("bench-embed").propagate = False
    idle, busy, before = [], [], []
    try:
        one(cfg, root)  # warm up (imports, the sealed interpreter)
        for _ in range(args.n):
            idle.append(one(cfg, root))
            stop = threading.Event()
            threads = [threading.Thread(target=spin, daemon=True,
                                        args=(stop, "bench-embed" if i == 0 else None))
                       for i in range(args.threads)]
            for t in threads:
                t.start()
            try:
                busy.append(one(cfg, root))
                if args.compare:
                    before.append(one(cfg, root, in_process=True))
            finally:
                stop.set()
                for t in threads:
                    t.join()
    finally:
        os.rmdir(root)
        sink.close()
    print("starts: %d each; %d busy threads" % (args.n, args.threads))
    mi = report("idle", idle)
    report("busy", busy, idle)
    if before:
        report("busy, in process (before)", before, idle)


def report(name, times, idle=None):
    m = statistics.median(times)
    line = "%-27s median %7.1f ms  (min %.1f, max %.1f)" % (name, m * 1e3, min(times) * 1e3,
                                                          max(times) * 1e3)
    if idle:
        line += "  %.2fx idle (median of pairs %.2fx)" % (
            m / statistics.median(idle), statistics.median(b / i for i, b in zip(idle, times)))
    print(line)
    return m

if __name__ == "__main__":
    main()
