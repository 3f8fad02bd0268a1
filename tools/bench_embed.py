#!/usr/bin/env python3
"""Start time of minins.run() in a program whose other threads keep the interpreter busy.

    sudo python3 tools/bench_embed.py [-n STARTS] [--threads N]

Runs ``minins.run(default_config(), ["/bin/true"])`` STARTS times with no other thread, then
STARTS times while N threads spin in pure Python (one of them logging all the time, so the
``logging`` module's lock -- which CPython's fork takes -- is held most of the time, as in a
chatty program), alternating idle and busy rounds so both meet
the same background load; prints the medians and their ratio. The issue's target: busy at most
3x idle. A measurement, not a test: run it on a quiet machine.
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


def spin(stop, chatty=False):
    log = logging.getLogger("bench-embed")
    log.addHandler(logging.NullHandler())
    x = 0
    while not stop.is_set():
        x += 1
        if chatty:
            log.warning("busy %d", x)  # takes the logging locks, again and again


def one(cfg, root):
    t = time.perf_counter()
    code = minins.run(cfg, ["/bin/true"], state_root=root)
    assert code == 0, code
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    cfg = minins.default_config()
    root = tempfile.mkdtemp(prefix="minins-bench-embed-")
    idle, busy = [], []
    try:
        one(cfg, root)  # warm up (imports, the sealed interpreter)
        for _ in range(args.n):
            idle.append(one(cfg, root))
            stop = threading.Event()
            threads = [threading.Thread(target=spin, args=(stop, i == 0), daemon=True)
                       for i in range(args.threads)]
            for t in threads:
                t.start()
            try:
                busy.append(one(cfg, root))
            finally:
                stop.set()
                for t in threads:
                    t.join()
    finally:
        os.rmdir(root)
    mi, mb = statistics.median(idle), statistics.median(busy)
    print("starts: %d each; %d busy threads" % (args.n, args.threads))
    print("idle  median %7.1f ms  (min %.1f, max %.1f)" % (mi * 1e3, min(idle) * 1e3,
                                                          max(idle) * 1e3))
    print("busy  median %7.1f ms  (min %.1f, max %.1f)" % (mb * 1e3, min(busy) * 1e3,
                                                          max(busy) * 1e3))
    print("ratio busy/idle: %.2fx (target: at most 3x)" % (mb / mi))


if __name__ == "__main__":
    main()
