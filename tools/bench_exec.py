#!/usr/bin/env python3
"""Container start-up, side by side in one run: minins (command line and library call) next to
the ``unshare`` floor, bubblewrap, crun and runc where they are installed.

    sudo python3 tools/bench_exec.py [--runs N]

Every command runs /bin/true. The same busybox-static rootfs (built under /tmp) serves minins
--rootfs, bwrap, crun and runc; minins and bwrap also run on the host's / read-only. crun 1.8
refuses a hybrid cgroup host, so its loop runs in a private mount namespace where
/sys/fs/cgroup/unified is unmounted (nothing on the host changes). Figures are medians of
wall time per start and peak RSS of the runtime process, reported as ratios to the floor and
to crun. The machine is shared and noisy: compare ratios from one run, not absolute times.
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

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def clean_env():
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time the installed case: bytecode cached
    env["PYTHONPATH"] = REPO
    return env


def timed(cmd, env=None):
    """Wall time and peak RSS (KiB) of one run of ``cmd``."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, env or os.environ)
    _, status, usage = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError("%s failed with status %#x" % (" ".join(cmd), status))
    return dt, usage.ru_maxrss


def bench(cmd, runs, env=None):
    timed(cmd, env)  # warm the page cache
    times, rss = [], []
    for _ in range(runs):
        dt, kib = timed(cmd, env)
        times.append(dt)
        rss.append(kib)
    return statistics.median(times), min(times), max(rss)


def busybox_rootfs(base):
    bb = shutil.which("busybox")
    if not bb:
        return None
    root = os.path.join(base, "rootfs")
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(bb, os.path.join(root, "bin", "busybox"))
    for tool in ("true", "sh", "ls", "cat", "id"):
        os.symlink("busybox", os.path.join(root, "bin", tool))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    return root


def oci_bundle(base, rootfs):
    """A bundle for crun/runc: their default spec, /bin/true, no terminal, read-only root."""
    import json

    bundle = os.path.join(base, "bundle")
    os.makedirs(bundle)
    subprocess.run(["runc" if shutil.which("runc") else "crun", "spec", "--rootless"
                    if os.geteuid() else "--bundle", bundle][:2 if os.geteuid() else 4],
                   cwd=bundle, check=True, capture_output=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    with open(path, "w") as f:
        json.dump(spec, f)
    return bundle


def in_private_mount_ns_without_unified(fn):
    """Run ``fn()`` in a forked child with its own mount namespace where the cgroup v2
    mount is gone (crun 1.8 and hybrid hosts); returns what fn returns."""
    import pickle

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            from minins import libc

            libc.unshare(0x00020000)
            libc.mount(None, "/", None, 0x4000 | 1 << 18)
            if os.path.ismount("/sys/fs/cgroup/unified"):
                libc.umount2("/sys/fs/cgroup/unified", 2)
            os.write(w, pickle.dumps(fn()))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else None


def library_loop(runs, rootfs=None):
    import minins

    cfg = minins.default_config()
    if rootfs:
        cfg = cfg.replace(root_fs=rootfs)
    state_root = tempfile.mkdtemp(prefix="minins-bench-")
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        minins.run(cfg, ["/bin/true"], state_root=state_root, stdout=devnull)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            code = minins.run(cfg, ["/bin/true"], state_root=state_root, stdout=devnull)
            times.append(time.perf_counter() - t0)
            assert code == 0
    finally:
        os.close(devnull)
        os.rmdir(state_root)
    return statistics.median(times), min(times), None


def import_cost(runs):
    env = clean_env()
    base = bench([PY, "-c", "pass"], runs, env)[0]
    full = bench([PY, "-c", "import minins.cli, minins.container, minins.process"], runs, env)[0]
    return full - base


def main():
    runs = 30
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
    if os.geteuid() != 0:
        sys.exit("run as root: the peers and the default configuration need it")
    env = clean_env()
    subprocess.run([PY, "-m", "compileall", "-q", os.path.join(REPO, "minins")], check=True)
    base = tempfile.mkdtemp(prefix="minins-bench-")
    rows = []
    try:
        rootfs = busybox_rootfs(base)
        state = os.path.join(base, "state")
        rows.append(("unshare --fork --pid --mount-proc --uts --ipc --mount --net true",
                     bench(["/usr/bin/unshare", "--fork", "--pid", "--mount-proc", "--uts",
                            "--ipc", "--mount", "--net", "/bin/true"], runs)))
        rows.append(("minins library call, default config (host / read-only)",
                     library_loop(runs)))
        rows.append(("minins run -- /bin/true (command line, default config)",
                     bench([PY, "-m", "minins", "--root", state, "run", "--", "/bin/true"], runs,
                           env)))
        if rootfs:
            rows.append(("minins library call, default config, busybox rootfs",
                         library_loop(runs, rootfs)))
            rows.append(("minins run --rootfs busybox -- /bin/true",
                         bench([PY, "-m", "minins", "--root", state, "run", "--rootfs", rootfs,
                                "--", "/bin/true"], runs, env)))
        bwrap = shutil.which("bwrap")
        if bwrap:
            rows.append(("bwrap --unshare-all --ro-bind / / true",
                         bench([bwrap, "--unshare-all", "--ro-bind", "/", "/", "--proc",
                                "/proc", "--dev", "/dev", "/bin/true"], runs)))
            if rootfs:
                rows.append(("bwrap --unshare-all --ro-bind busybox / true",
                             bench([bwrap, "--unshare-all", "--ro-bind", rootfs, "/", "--proc",
                                    "/proc", "--dev", "/dev", "/bin/true"], runs)))
        if rootfs and (shutil.which("crun") or shutil.which("runc")):
            bundle = oci_bundle(base, rootfs)
            for tool in ("crun", "runc"):
                exe = shutil.which(tool)
                if not exe:
                    continue
                cmd = [exe, "--root", os.path.join(base, tool), "run", "--bundle", bundle,
                       "bench-%s" % tool]
                result = in_private_mount_ns_without_unified(lambda c=cmd: bench(c, runs))
                if result:
                    rows.append(("%s run (busybox bundle)" % tool, result))
        imports = import_cost(runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    floor = rows[0][1][0]
    crun = next((r[1][0] for r in rows if r[0].startswith("crun")), None)
    print("%-62s %9s %9s %8s %8s %8s" % ("what (runs=%d)" % runs, "median", "min", "RSS MiB",
                                         "/floor", "/crun"))
    for name, (med, low, rss) in rows:
        print("%-62s %7.2fms %7.2fms %8s %8.2f %8s" % (
            name, med * 1e3, low * 1e3, "%.1f" % (rss / 1024) if rss else "-", med / floor,
            "%.2f" % (med / crun) if crun else "-"))
    print("import minins.cli + minins.container + minins.process: %.1f ms over a bare interpreter"
          % (imports * 1e3))


if __name__ == "__main__":
    main()
