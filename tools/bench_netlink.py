#!/usr/bin/env python3
"""Benchmark: a container's veth networking with minins, with iproute2 and with pyroute2.

Usage (as root): python3 tools/bench_netlink.py [--rounds N] [--no-pyroute2]

The per-container setup measured is the one a runtime does for each container: a veth pair
with its peer born inside the container's network namespace, the host end on a bridge and up;
inside the container the peer renamed to eth0, an address, up, a default route. It is run

* with minins: ``network.create`` + ``network.initialize`` (the runtime's own hooks, sockets
  opened per container), and op by op on open sockets;
* with ``ip``: one process per step, and one ``ip -batch`` per namespace (host, container);
* with pyroute2, in a throw-away virtualenv (``/tmp/venv-pyroute2``, made with pip where PyPI
  is reachable; never in the project), full setup and op by op.

Then: a peer born inside vs. a pair created here and its end moved (the kernel's ~16 ms), and
``import`` time of the netlink modules (bytecode cached, as after an install).

Everything happens in network namespaces this script creates (a "host" one with the bridge,
one per simulated container), held by child processes it ends at exit; namespaces and links
die with them. Addresses are from 198.18.0.0/15 (RFC 2544, benchmarking).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from minins import libc, network  # noqa: E402
from minins.netlink import addr, link, route  # noqa: E402
from minins.netlink.sock import Socket, thread_in_netns  # noqa: E402

VENV = "/tmp/venv-pyroute2"
CLONE_NEWNET = 0x40000000
BRIDGE, GATEWAY = "br-bench", "198.18.0.1"
TARGET_SETUP_MS, TARGET_IMPORT_MS, TARGET_MOVE_RATIO = 3.0, 10.0, 5.0


class Holder:
    """A child process in a new network namespace, alive until :meth:`close`."""

    def __init__(self):
        ready_r, ready_w = os.pipe()
        hold_r, self._hold = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(ready_r)
                os.close(self._hold)
                libc.unshare(CLONE_NEWNET)
                os.write(ready_w, b"1")
                os.read(hold_r, 1)
                code = 0
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(hold_r)
        ok = os.read(ready_r, 1) == b"1"
        os.close(ready_r)
        if not ok:
            self.close()
            raise SystemExit("cannot create a network namespace (not root?)")
        self.path = "/proc/%d/ns/net" % self.pid
        self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def close(self):
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)
            self.fd = None
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
            os.waitpid(self.pid, 0)


class Namespaces:
    """Every namespace of the run; all closed on exit, whatever happened."""

    def __init__(self):
        self.all = []

    def new(self):
        h = Holder()
        self.all.append(h)
        return h

    def close(self):
        for h in reversed(self.all):
            h.close()


def ms(seconds):
    return seconds * 1000.0


def median_ms(samples):
    return ms(statistics.median(samples))


def cfg(i):
    from types import SimpleNamespace
    return SimpleNamespace(type="veth", bridge=BRIDGE, veth_prefix="vb", mac_address="",
                           address="198.18.%d.%d/15" % (1 + i // 250, 2 + i % 250),
                           ipv6_address="", gateway=GATEWAY, ipv6_gateway="", mtu=0,
                           txqueuelen=0, hairpin_mode=False, ns_path="")


def check_container(c, i):
    """The setup really happened: eth0 is up in ``c`` with its address and default route."""
    with thread_in_netns(c.fd):
        with Socket() as s:
            eth0 = link.get(s, "eth0")
            cidrs = {a.cidr for a in addr.dump(s, link=eth0.index)}
            gw = [r.gateway for r in route.dump(s) if r.destination == "default"]
    want = cfg(i).address
    if not (eth0.up and want in cidrs and gw == [GATEWAY]):
        raise SystemExit("setup check failed in container %d: %r %r %r" % (i, eth0, cidrs, gw))


# --- minins ----------------------------------------------------------------------------------

def bench_minins_full(nss, rounds, offset):
    """network.create (host) + network.initialize (container), as the runtime calls them."""
    samples = []
    for i in range(offset, offset + rounds):
        c = nss.new()
        nets = [cfg(i)]
        t0 = time.perf_counter()
        state = network.create(nets, c.pid)
        t1 = time.perf_counter()
        with thread_in_netns(c.fd):
            t2 = time.perf_counter()
            network.initialize(nets, [], state)
            t3 = time.perf_counter()
        samples.append((t1 - t0) + (t3 - t2))
        check_container(c, i)
    return samples


STEPS = ("veth pair, peer born inside", "host end: master + up", "rename to eth0",
         "add address", "link up", "add default route")


def bench_minins_ops(nss, rounds, offset):
    """The same steps op by op on sockets already open (one here, one in the container)."""
    per = {k: [] for k in STEPS}
    with Socket() as host:
        br = link.index(host, BRIDGE)
        for r in range(rounds):
            i = offset + r
            c = nss.new()
            with thread_in_netns(c.fd):
                inner = Socket()
            with inner:
                h, ch = "vo%dh" % i, "vo%dc" % i
                timed(per, STEPS[0], link.add_veth, host, h, ch, peer_netns_pid=c.pid)
                timed(per, STEPS[1], _master_up, host, h, br)
                timed(per, STEPS[2], link.rename, inner, ch, "eth0")
                timed(per, STEPS[3], addr.add, inner, "eth0", cfg(i).address)
                timed(per, STEPS[4], link.set_up, inner, "eth0")
                timed(per, STEPS[5], route.add_default, inner, GATEWAY, "eth0")
            check_container(c, i)
    return per


def _master_up(sock, name, bridge_index):
    link.configure(sock, name, master=bridge_index, up=True)  # one message, as pyroute2 does


def timed(per, key, fn, *args, **kwargs):
    t = time.perf_counter()
    fn(*args, **kwargs)
    per[key].append(time.perf_counter() - t)


def bench_move(nss, rounds):
    """Peer born inside the container's namespace vs. created here then moved there."""
    born, moved = [], []
    with Socket() as s:
        for r in range(rounds):
            c = nss.new()
            t = time.perf_counter()
            link.add_veth(s, "mb%dh" % r, "mb%dc" % r, peer_netns_pid=c.pid)
            born.append(time.perf_counter() - t)
            t = time.perf_counter()
            link.add_veth(s, "mm%dh" % r, "mm%dc" % r)
            link.set_netns_pid(s, "mm%dc" % r, c.pid)
            moved.append(time.perf_counter() - t)
    return born, moved


# --- iproute2 --------------------------------------------------------------------------------

def _ip(args, netns_fd=None, stdin=None):
    pre = (lambda: libc.setns(netns_fd, CLONE_NEWNET)) if netns_fd is not None else None
    subprocess.run(["ip"] + args, check=True, input=stdin, text=True, preexec_fn=pre,
                   stdout=subprocess.DEVNULL)


def _ip_lines(i, c):
    h, ch = "vi%dh" % i, "vi%dc" % i
    host = ["link add %s type veth peer name %s netns %d" % (h, ch, c.pid),
            "link set %s master %s up" % (h, BRIDGE)]
    inner = ["link set %s name eth0" % ch, "addr add %s dev eth0" % cfg(i).address,
             "link set eth0 up", "route add default via %s dev eth0" % GATEWAY]
    return host, inner


def bench_ip(nss, rounds, offset, batch):
    per = {k: [] for k in STEPS}
    full = []
    for r in range(rounds):
        i = offset + r
        c = nss.new()
        host, inner = _ip_lines(i, c)
        t0 = time.perf_counter()
        if batch:
            _ip(["-batch", "-"], None, "\n".join(host) + "\n")
            _ip(["-batch", "-"], c.fd, "\n".join(inner) + "\n")
        else:
            for k, line in zip(STEPS, host + inner):
                t = time.perf_counter()
                _ip(line.split(), c.fd if line in inner else None)
                per[k].append(time.perf_counter() - t)
        full.append(time.perf_counter() - t0)
        check_container(c, i)
    return full, per


# --- pyroute2 (in its own virtualenv) --------------------------------------------------------

PYROUTE2_SCRIPT = r'''
import ctypes, json, os, sys, time
t0 = time.perf_counter()
from pyroute2 import IPRoute
t_import = time.perf_counter() - t0
args = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)
setns(args["host"])
def opened_in(path):
    setns(path)
    try:
        ipr = IPRoute()
        ipr.link_lookup(ifname="lo")  # make sure its socket exists while we are here
        return ipr
    finally:
        setns(args["host"])
steps = args["steps"]
full, per = [], {k: [] for k in steps}
def timed(key, fn, *a, **kw):
    t = time.perf_counter()
    r = fn(*a, **kw)
    per[key].append(time.perf_counter() - t)
    return r
for mode, containers in (("full", args["full"]), ("ops", args["ops"])):
    host = IPRoute() if mode == "ops" else None
    br = host.link_lookup(ifname=args["bridge"])[0] if host else None
    inner_ops = {c["pid"]: opened_in(c["path"]) for c in containers} if mode == "ops" else {}
    for c in containers:
        h, ch = "vp%dh" % c["i"], "vp%dc" % c["i"]
        ip, plen = c["address"].split("/")
        if mode == "full":
            t = time.perf_counter()
            ipr = IPRoute()
            bri = ipr.link_lookup(ifname=args["bridge"])[0]
            ipr.link("add", ifname=h, kind="veth", peer={"ifname": ch, "net_ns_pid": c["pid"]})
            hi = ipr.link_lookup(ifname=h)[0]
            ipr.link("set", index=hi, master=bri, state="up")
            ipr.close()
            inner = opened_in(c["path"])
            ci = inner.link_lookup(ifname=ch)[0]
            inner.link("set", index=ci, ifname="eth0")
            inner.addr("add", index=ci, address=ip, prefixlen=int(plen))
            inner.link("set", index=ci, state="up")
            inner.route("add", dst="default", gateway=args["gateway"], oif=ci)
            inner.close()
            full.append(time.perf_counter() - t)
        else:
            inner = inner_ops[c["pid"]]
            timed(steps[0], host.link, "add", ifname=h, kind="veth",
                  peer={"ifname": ch, "net_ns_pid": c["pid"]})
            hi = host.link_lookup(ifname=h)[0]
            timed(steps[1], host.link, "set", index=hi, master=br, state="up")
            ci = inner.link_lookup(ifname=ch)[0]
            timed(steps[2], inner.link, "set", index=ci, ifname="eth0")
            timed(steps[3], inner.addr, "add", index=ci, address=ip, prefixlen=int(plen))
            timed(steps[4], inner.link, "set", index=ci, state="up")
            timed(steps[5], inner.route, "add", dst="default", gateway=args["gateway"], oif=ci)
            inner.close()
    if host:
        host.close()
print(json.dumps({"import": t_import, "full": full, "per": per}))
'''


def pyroute2_python():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        r = subprocess.run([sys.executable, "-m", "venv", VENV], capture_output=True)
        if r.returncode:
            return None, "cannot make a virtualenv: %s" % r.stderr.decode().strip()[-200:]
    r = subprocess.run([py, "-c", "import pyroute2"], capture_output=True)
    if r.returncode:
        r = subprocess.run([py, "-m", "pip", "install", "-q", "pyroute2"], capture_output=True)
        if r.returncode:
            return None, "pip could not install pyroute2: %s" % r.stderr.decode()[-200:]
    return py, None


def bench_pyroute2(nss, host_ns, rounds, offset):
    py, why = pyroute2_python()
    if py is None:
        return None, why
    full = [dict(i=offset + r, pid=c.pid, path=c.path, address=cfg(offset + r).address)
            for r, c in enumerate(nss.new() for _ in range(rounds))]
    ops = [dict(i=offset + rounds + r, pid=c.pid, path=c.path,
                address=cfg(offset + rounds + r).address)
           for r, c in enumerate(nss.new() for _ in range(rounds))]
    args = dict(host=host_ns.path, bridge=BRIDGE, gateway=GATEWAY, steps=STEPS, full=full,
                ops=ops)
    r = subprocess.run([py, "-c", PYROUTE2_SCRIPT, json.dumps(args)], capture_output=True,
                       text=True)
    if r.returncode:
        return None, "pyroute2 run failed: %s" % r.stderr.strip()[-400:]
    for c in full + ops:
        check_container(next(h for h in nss.all if h.pid == c["pid"]), c["i"])
    return json.loads(r.stdout), None


# --- imports ---------------------------------------------------------------------------------

IMPORT_MININS = ("import time; t = time.perf_counter(); import minins.netlink.codec, "
                 "minins.netlink.sock, minins.netlink.link, minins.netlink.addr, "
                 "minins.netlink.route; t1 = time.perf_counter(); import minins.network; "
                 "print(t1 - t, time.perf_counter() - t)")
IMPORT_PYROUTE2 = ("import time; t = time.perf_counter(); from pyroute2 import IPRoute; "
                   "print(time.perf_counter() - t)")


def bench_imports(runs=9):
    """Median import times, bytecode cached (a warm-up run writes it to a private dir)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="bench-pyc-"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = {}
    try:
        cmds = [("minins", [sys.executable, "-c", IMPORT_MININS])]
        py = os.path.join(VENV, "bin", "python")
        if os.path.exists(py):
            cmds.append(("pyroute2", [py, "-c", IMPORT_PYROUTE2]))
        for name, argv in cmds:
            subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
            vals = [subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True,
                                   text=True).stdout.split() for _ in range(runs)]
            out[name] = [statistics.median(float(v[k]) for v in vals)
                         for k in range(len(vals[0]))]
    finally:
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)
    return out


# --- report ----------------------------------------------------------------------------------

def row(name, *cells):
    print("  %-32s" % name + "".join("%14s" % x for x in cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--no-pyroute2", action="store_true")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates network namespaces")
    n = opts.rounds
    nss = Namespaces()
    try:
        host = nss.new()
        with thread_in_netns(host.fd):
            with Socket() as s:
                link.add_bridge(s, BRIDGE, up=True)
                addr.add(s, BRIDGE, GATEWAY + "/15")
            # Round-robin, one container per variant at a time, so that every variant meets
            # the same background load.
            have_ip = shutil.which("ip") is not None
            mn_full, ip_full, ipb_full = [], [], []
            mn_ops, ip_ops = {k: [] for k in STEPS}, {k: [] for k in STEPS}
            for r in range(n):
                mn_full += bench_minins_full(nss, 1, r)
                for k, v in bench_minins_ops(nss, 1, 1000 + r).items():
                    mn_ops[k] += v
                if have_ip:
                    full, per = bench_ip(nss, 1, 2000 + r, batch=False)
                    ip_full += full
                    for k, v in per.items():
                        ip_ops[k] += v
                    ipb_full += bench_ip(nss, 1, 3000 + r, batch=True)[0]
            born, moved = bench_move(nss, max(10, n // 3))
        pr, why = (None, "skipped (--no-pyroute2)") if opts.no_pyroute2 else bench_pyroute2(
            nss, host, n, 4000)
    finally:
        nss.close()
    imports = bench_imports()
    report(n, mn_full, mn_ops, born, moved, have_ip and (ip_full, ip_ops, ipb_full), pr, why,
           imports)


def report(n, mn_full, mn_ops, born, moved, ip, pr, why, imports):
    print("minins netlink benchmark: %d containers per variant, median ms (ratio to minins)"
          % n)
    print("\nFull per-container veth setup (pair with peer born inside, master+up, rename, "
          "address, up, default route):")
    base = median_ms(mn_full)
    row("", "median", "best", "ratio")
    for name, samples in [("minins create+initialize", mn_full)] + ([
            ("ip, one process per step", ip[0]), ("ip -batch (host + container)", ip[2])]
            if ip else []) + ([("pyroute2 (sockets per container)", pr["full"])] if pr else []):
        row(name, "%.3f" % median_ms(samples), "%.3f" % ms(min(samples)),
            "%.1fx" % (median_ms(samples) / base))
    print("\nOne operation at a time (sockets already open):")
    row("step", "minins", "pyroute2", "ratio", "ip process")
    slower = []
    for k in STEPS:
        m = median_ms(mn_ops[k])
        p = median_ms(pr["per"][k]) if pr else None
        cells = ["%.3f" % m, "%.3f" % p if p else "-", "%.1fx" % (p / m) if p else "-",
                 "%.3f" % median_ms(ip[1][k]) if ip else "-"]
        if p and p <= m:
            slower.append(k)
        row(k, *cells)
    print("\nVeth peer born inside the namespace vs. created here and moved:")
    b, mv = median_ms(born), median_ms(moved)
    row("born inside (IFLA_NET_NS_PID)", "%.3f" % b)
    row("created then moved", "%.3f" % mv, "%.1fx" % (mv / b))
    print("\nImport (bytecode cached), ms:")
    mi = imports.get("minins")
    if mi:
        row("minins.netlink.*", "%.2f" % ms(mi[0]))
        row("minins.netlink.* + minins.network", "%.2f" % ms(mi[1]))
    if "pyroute2" in imports:
        row("pyroute2 (from pyroute2 import IPRoute)", "%.2f" % ms(imports["pyroute2"][0]),
            "%.0fx" % (imports["pyroute2"][0] / mi[0]) if mi else "")
    if not pr:
        print("\npyroute2: %s" % why)
    print("\nTargets:")
    verdicts = [
        ("full setup under %.0f ms" % TARGET_SETUP_MS, base < TARGET_SETUP_MS),
        ("each op faster than pyroute2's", bool(pr) and not slower),
        ("netlink import under %.0f ms" % TARGET_IMPORT_MS, bool(mi) and ms(mi[0]) <
         TARGET_IMPORT_MS),
        ("born inside >= %.0fx faster than move" % TARGET_MOVE_RATIO, mv / b >=
         TARGET_MOVE_RATIO),
    ]
    for name, ok in verdicts:
        print("  %-44s %s" % (name, "met" if ok else "NOT MET"))
    if slower:
        print("  (not faster than pyroute2: %s)" % ", ".join(slower))


if __name__ == "__main__":
    main()
