#!/usr/bin/env python3
"""The speed and memory report of issue 16, in one command: minins next to runc, crun,
bubblewrap, unshare and nsenter, side by side in one run.

    sudo python3 tools/bench_report.py [--runs N] [--svg FILE] [--keep-install]

What it does:

* installs minins from this checkout into a throw-away virtual environment with the
  machine's pip (``pip install --no-deps --no-build-isolation``), so that ``minins`` is timed
  as users run it: the script pip generates, bytecode compiled;
* builds a busybox rootfs and, from ``runc spec``, an OCI bundle on it (read-only root,
  ``/bin/true``, no terminal);
* times, in turns (A, B, A, B, ...), each pair below and reports the median of each side and
  the median of the per-pair ratios (paired medians: the machine is shared and noisy):

  - start: ``minins run --rootfs ROOTFS -- /bin/true`` against ``runc run`` of the bundle,
    and ``minins run -- /bin/true`` (the default configuration: the host's / read-only);
    crun (in a private mount namespace where ``/sys/fs/cgroup/unified`` is unmounted: crun 1.8
    refuses hybrid hosts), ``bwrap --unshare-all`` and ``unshare`` as further peers;
  - exec: ``minins exec ID -- /bin/true`` into a minins container against ``runc exec`` into
    a runc container of the same rootfs, and ``nsenter --all``;
  - the library call ``minins.run(default_config(), ["/bin/true"])`` in a loop against the
    ``unshare`` floor;
  - peak RSS (``wait4``'s ``ru_maxrss``) of every runtime process;
  - imports for ``run``: the modules a ``run`` loads, imported by a fresh interpreter, against
    the bare interpreter;

* prints one table, and writes the start-time distributions as an SVG (matplotlib where it is
  installed, else a plain strip plot drawn here).

Nothing here is a test: figures are for the closing note and README, as ratios.
"""
import json
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

from bench_exec import (PY, busybox_rootfs, in_private_mount_ns_without_unified,  # noqa: E402
                        oci_bundle)


def timed(cmd, env=None, check=True):
    """Wall time (s) of one run of ``cmd``, and ``None`` (see :func:`peak_rss`)."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, env if env is not None else os.environ)
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    if check and status != 0:
        raise RuntimeError("%s failed with status %#x" % (" ".join(cmd), status))
    return dt, None


def peak_rss(cmd, env=None, runs=3):
    """Peak RSS (KiB) of ``cmd`` and what it waited for, by GNU time(1) (``%M``): measured
    here, a child spawned by this large process would report this process's own peak too
    (exec records the old address space's high-water mark in the child's ``maxrss``)."""
    if not os.path.exists("/usr/bin/time"):
        return None
    out = tempfile.NamedTemporaryFile(prefix="minins-bench-rss-")
    with out:
        peaks = []
        for _ in range(runs):
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name] + cmd, env=env,
                           check=True, stdout=subprocess.DEVNULL)
            with open(out.name) as f:
                peaks.append(int(f.read().split()[-1]))
    return max(peaks)


def paired(a, b, runs):
    """Run the zero-argument callables ``a`` and ``b`` in turns; each returns ``(seconds,
    KiB or None)``. Returns ``(times_a, times_b, rss_a, rss_b)``."""
    a(), b()  # warm the page cache
    ta, tb, ra, rb = [], [], [], []
    for i in range(runs):
        for fn, times, rss in ((a, ta, ra), (b, tb, rb)) if i % 2 == 0 else \
                ((b, tb, rb), (a, ta, ra)):
            dt, kib = fn()
            times.append(dt)
            if kib:
                rss.append(kib)
    return ta, tb, ra, rb


def install(base):
    """A virtual environment with minins installed by pip; the path of its ``minins``."""
    src = os.path.join(base, "src")  # pip builds in the tree: not in the checkout
    os.makedirs(src)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(REPO, name), src)
    shutil.copytree(os.path.join(REPO, "minins"), os.path.join(src, "minins"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    venv = os.path.join(base, "venv")
    subprocess.run([PY, "-m", "venv", "--without-pip", "--system-site-packages", venv],
                   check=True)
    subprocess.run([PY, "-m", "pip", "--python", os.path.join(venv, "bin", "python"),
                    "install", "-q", "--no-deps", "--no-build-isolation", src], check=True,
                   stdout=subprocess.DEVNULL)
    script = os.path.join(venv, "bin", "minins")
    subprocess.run([os.path.join(venv, "bin", "python"), "-m", "compileall", "-q",
                    os.path.join(venv, "lib")], check=True)
    return script


def vendored_script(base, python):
    """The two-line command vendor-notes.md gives for a copied folder: ``-IS``, no runpy."""
    vendor = os.path.join(base, "vendor")
    shutil.copytree(os.path.join(REPO, "minins"), os.path.join(vendor, "minins"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([python, "-m", "compileall", "-q", vendor], check=True)
    script = os.path.join(vendor, "minins-cmd")
    with open(script, "w") as f:
        f.write("#!%s -IS\nimport sys; sys.path.insert(0, %r); from minins.cli import entry; "
                "entry()\n" % (os.path.realpath(python), vendor))
    os.chmod(script, 0o755)
    return script


def env_clean():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return env


class Report(object):
    def __init__(self):
        self.rows = []
        self.samples = {}
        self.memory = []  # (what, KiB)

    def pair(self, what, name_a, name_b, result, target=None):
        ta, tb, ra, rb = result
        ratios = [x / y for x, y in zip(ta, tb)]
        self.samples.setdefault(name_a, []).extend(ta)
        self.samples.setdefault(name_b, []).extend(tb)
        self.rows.append((what, name_a, statistics.median(ta), name_b, statistics.median(tb),
                          statistics.median(ratios), max(ra) if ra else None,
                          max(rb) if rb else None, target))

    def show(self, out=sys.stdout):
        out.write("%-7s %-44s %9s  %-34s %9s %7s  %s\n" % (
            "", "A", "median", "B", "median", "A/B", "target"))
        for what, na, ma, nb, mb, ratio, _rssa, _rssb, target in self.rows:
            out.write("%-7s %-44s %7.2fms  %-34s %7.2fms %7.2f  %s\n" % (
                what, na, ma * 1e3, nb, mb * 1e3, ratio, target or ""))
        if self.memory:
            out.write("\npeak RSS (GNU time %M, the process and what it waited for):\n")
            for what, kib in self.memory:
                out.write("  %-52s %8s\n" % (what, _mib(kib)))

    def svg(self, path):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            _strip_svg(path, self.samples)
            return "plain"
        names = list(self.samples)
        fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.5))
        ax.boxplot([[t * 1e3 for t in self.samples[n]] for n in names], vert=False,
                   labels=names)
        ax.set_xlabel("ms per start (wall time)")
        fig.tight_layout()
        fig.savefig(path, format="svg")
        return "matplotlib"


def _mib(kib):
    return "%.1fMiB" % (kib / 1024) if kib else "-"


def _strip_svg(path, samples):
    """Each sample a dot, one row per command, the median a bar (no matplotlib here)."""
    from xml.sax.saxutils import escape

    names = list(samples)
    top = max(max(v) for v in samples.values()) * 1e3 * 1.05
    width, left, row = 900, 330, 28
    height = row * len(names) + 60
    scale = (width - left - 20) / top
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'font-family="sans-serif" font-size="12">' % (width, height)]
    for i, name in enumerate(names):
        y = 20 + i * row + row / 2
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                     % (left - 8, y + 4, escape(name)))
        for t in samples[name]:
            parts.append('<circle cx="%.1f" cy="%.1f" r="2" fill="#3465a4" '
                         'fill-opacity="0.5"/>' % (left + t * 1e3 * scale, y))
        med = statistics.median(samples[name]) * 1e3
        parts.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#cc0000" '
                     'stroke-width="2"/>' % (left + med * scale, left + med * scale,
                                             y - 9, y + 9))
    axis_y = 20 + len(names) * row + 10
    parts.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>'
                 % (left, width - 20, axis_y, axis_y))
    step = 10 if top > 40 else 5
    for ms in range(0, int(top) + 1, step):
        x = left + ms * scale
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>'
                     % (x, axis_y + 16, ms))
    parts.append('<text x="%d" y="%d" text-anchor="middle">ms per start (wall time; red: '
                 'median)</text>' % ((left + width) // 2, axis_y + 32))
    parts.append("</svg>\n")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def library_loop(runs):
    """``minins.run`` of the default configuration, in this process: seconds per call."""
    import minins

    cfg = minins.default_config()
    state_root = tempfile.mkdtemp(prefix="minins-bench-lib-")
    devnull = os.open(os.devnull, os.O_WRONLY)
    times = []
    try:
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            assert minins.run(cfg, ["/bin/true"], state_root=state_root, stdout=devnull) == 0
            times.append(time.perf_counter() - t0)
    finally:
        os.close(devnull)
        os.rmdir(state_root)
    return times[1:]


def run_modules(script, env, state):
    """The minins modules (and what they pull in) a ``run`` imports: from ``-X importtime``
    of one real run."""
    proc = subprocess.run([sys.executable if not script else _python_of(script), "-X",
                           "importtime", script, "--root", state, "run", "--", "/bin/true"],
                          env=env, capture_output=True, text=True, check=True)
    bare = subprocess.run([_python_of(script), "-X", "importtime", "-c", "pass"], env=env,
                          capture_output=True, text=True, check=True)

    def top(text):
        names = []
        for line in text.splitlines():
            if line.startswith("import time:") and "|" in line:
                name = line.rsplit("|", 1)[1]
                if not name.startswith("  ") and name.strip() != "package":
                    names.append(name.strip())
        return names

    seen = set(top(bare.stderr))
    return [n for n in top(proc.stderr) if n not in seen and n != "imported"]


def _python_of(script):
    with open(script) as f:
        return f.readline()[2:].strip()


def main():
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 20
    svg = sys.argv[sys.argv.index("--svg") + 1] if "--svg" in sys.argv else \
        "bench-report-starts.svg"
    if os.geteuid() != 0:
        sys.exit("run as root: the peers and the default configuration need it")
    base = tempfile.mkdtemp(prefix="minins-bench-report-")
    report = Report()
    running = []  # (kind, stop) of the containers exec goes into
    try:
        minins_cmd = install(base)
        py = _python_of(minins_cmd)
        env = env_clean()
        rootfs = busybox_rootfs(base)
        if rootfs is None:
            sys.exit("needs busybox for the shared rootfs")
        os.symlink("busybox", os.path.join(rootfs, "bin", "sleep"))
        state = os.path.join(base, "minins-state")
        state_tmpfs = "/dev/shm/minins-bench-%d" % os.getpid()
        bundle = oci_bundle(base, rootfs)
        runc, crun = shutil.which("runc"), shutil.which("crun")
        bwrap, unshare, nsenter = shutil.which("bwrap"), shutil.which("unshare"), \
            shutil.which("nsenter")

        def mrun(*extra, root=state):
            return lambda: timed([minins_cmd, "--root", root, "run"] + list(extra) +
                                 ["--", "/bin/true"], env)

        counter = [0]

        def peer(tool):
            def go():
                counter[0] += 1
                return timed([tool, "--root", os.path.join(base, "peer-state"), "run",
                              "--bundle", bundle, "bench-%d" % counter[0]])
            return go

        # --- start ---------------------------------------------------------------------
        if runc:
            report.pair("start", "minins run --rootfs busybox", "runc run (busybox bundle)",
                        paired(mrun("--rootfs", rootfs), peer(runc), runs), "<= 0.9")
            os.makedirs(state_tmpfs)
            report.pair("start", "minins run --rootfs busybox, state on tmpfs",
                        "runc run (busybox bundle)",
                        paired(mrun("--rootfs", rootfs, root=state_tmpfs), peer(runc), runs),
                        "<= 0.9")
            report.pair("start", "minins run (default: host / read-only)",
                        "runc run (busybox bundle)", paired(mrun(), peer(runc), runs))
            vendored = vendored_script(base, py)
            report.pair("start", "vendored -IS script: run --rootfs busybox",
                        "runc run (busybox bundle)",
                        paired(lambda: timed([vendored, "--root", state, "run", "--rootfs",
                                              rootfs, "--", "/bin/true"], env),
                               peer(runc), runs), "<= 0.9")
        if crun:
            result = in_private_mount_ns_without_unified(
                lambda: paired(mrun("--rootfs", rootfs), peer(crun), runs))
            if result:
                report.pair("start", "minins run --rootfs busybox", "crun run (busybox bundle)",
                            result)
        if bwrap:
            report.pair("start", "minins run --rootfs busybox", "bwrap --unshare-all",
                        paired(mrun("--rootfs", rootfs),
                               lambda: timed([bwrap, "--unshare-all", "--ro-bind", rootfs, "/",
                                              "--proc", "/proc", "--dev", "/dev",
                                              "/bin/true"]), runs))
        floor = [unshare, "--fork", "--pid", "--mount-proc", "--uts", "--ipc", "--mount",
                 "--net", "/bin/true"]
        report.pair("start", "minins run (default: host / read-only)", "unshare (floor)",
                    paired(mrun(), lambda: timed(floor), runs))

        # --- library ---------------------------------------------------------------------
        lib = library_loop(runs)
        floor_times = [timed(floor)[0] for _ in range(runs)]
        report.pair("library", "minins.run(default_config(), /bin/true)", "unshare (floor)",
                    (lib, floor_times, [], []), "<= 3")

        # --- exec ------------------------------------------------------------------------
        cid = "bench-exec-%d" % os.getpid()
        subprocess.run([minins_cmd, "--root", state, "run", "-d", "--rootfs", rootfs,
                        "--id", cid, "--", "/bin/sleep", "3600"], env=env, check=True)
        running.append(lambda: subprocess.run([minins_cmd, "--root", state, "delete",
                                               "--force", cid], env=env))
        if runc:
            spec_path = os.path.join(bundle, "config.json")
            with open(spec_path) as f:
                spec = json.load(f)
            spec["process"]["args"] = ["/bin/sleep", "3600"]
            sleeper = os.path.join(base, "bundle-sleep")
            os.makedirs(sleeper)
            with open(os.path.join(sleeper, "config.json"), "w") as f:
                json.dump(spec, f)
            rroot = os.path.join(base, "runc-exec-state")
            rid = "runc-" + cid  # cgroups are named after ids: not the minins container's
            subprocess.run([runc, "--root", rroot, "run", "-d", "--bundle", sleeper, rid],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            running.append(lambda: subprocess.run([runc, "--root", rroot, "delete", "--force",
                                                   rid]))
            report.pair("exec", "minins exec ID -- /bin/true", "runc exec ID /bin/true",
                        paired(lambda: timed([minins_cmd, "--root", state, "exec", cid, "--",
                                              "/bin/true"], env),
                               lambda: timed([runc, "--root", rroot, "exec", rid,
                                              "/bin/true"]), runs), "<= 1")
        if nsenter:
            with open(os.path.join(state, cid, "state.json")) as f:
                pid = json.load(f)["init_pid"]
            report.pair("exec", "minins exec ID -- /bin/true", "nsenter --all",
                        paired(lambda: timed([minins_cmd, "--root", state, "exec", cid, "--",
                                              "/bin/true"], env),
                               lambda: timed([nsenter, "--target", str(pid), "--all",
                                              "/bin/true"]), runs))

        # --- memory ----------------------------------------------------------------------
        for what, cmd, e in (
                ("minins run --rootfs busybox -- /bin/true",
                 [minins_cmd, "--root", state, "run", "--rootfs", rootfs, "--", "/bin/true"],
                 env),
                ("minins run -- /bin/true (default)",
                 [minins_cmd, "--root", state, "run", "--", "/bin/true"], env),
                ("minins exec ID -- /bin/true",
                 [minins_cmd, "--root", state, "exec", cid, "--", "/bin/true"], env),
                ("runc run (busybox bundle)" if runc else None,
                 [runc or "", "--root", os.path.join(base, "peer-state"), "run", "--bundle",
                  bundle, "bench-rss"], None),
                ("runc exec ID /bin/true" if runc else None,
                 [runc or "", "--root", os.path.join(base, "runc-exec-state"), "exec",
                  "runc-" + cid, "/bin/true"], None),
                ("bwrap --unshare-all" if bwrap else None,
                 [bwrap or "", "--unshare-all", "--ro-bind", rootfs, "/", "--proc", "/proc",
                  "--dev", "/dev", "/bin/true"], None)):
            if what:
                report.memory.append((what, peak_rss(cmd, e)))

        # --- imports ---------------------------------------------------------------------
        modules = run_modules(minins_cmd, env, state)
        code = "import " + ", ".join(modules) if modules else "pass"
        report.pair("imports", "the modules run imports", "bare interpreter",
                    paired(lambda: timed([py, "-c", code], env),
                           lambda: timed([py, "-c", "pass"], env), runs))
        imp = report.rows[-1]
        # where a command line start goes before minins does anything (issue 16's causes):
        # the second interpreter start (the runtime re-executes from its sealed copy, -s -S)
        # and the copy itself, each against what it adds to
        report.pair("phases", "interpreter -s -S (the re-exec)", "bare interpreter",
                    paired(lambda: timed([py, "-s", "-S", "-c", "pass"], env),
                           lambda: timed([py, "-c", "pass"], env), runs))
        sealed = "import minins.sealed as s"
        report.pair("phases", "import minins.sealed; copy()", "import minins.sealed",
                    paired(lambda: timed([py, "-c", sealed + "; s.copy()"], env),
                           lambda: timed([py, "-c", sealed], env), runs))
        kind = report.svg(svg)
    finally:
        for stop in reversed(running):
            stop()
        if os.path.isdir("/dev/shm/minins-bench-%d" % os.getpid()):
            os.rmdir("/dev/shm/minins-bench-%d" % os.getpid())
        if "--keep-install" not in sys.argv:
            shutil.rmtree(base, ignore_errors=True)
    print("runs=%d per side, paired in turns; %s, %s" % (runs, py, os.uname().release))
    report.show()
    print("imports for run: %.1f ms over the bare interpreter (target <= 8 ms)"
          % ((imp[2] - imp[4]) * 1e3))
    print("start-time distributions: %s (%s)" % (svg, kind))


if __name__ == "__main__":
    main()
