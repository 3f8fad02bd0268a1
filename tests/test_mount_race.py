"""The mount-destination race of runc's CVE-2021-30465, tried for real (issue 10, section 2).

A process outside the container that shares its rootfs swaps each destination (the last
path component) with a symlink to another directory of the rootfs, in a tight loop
(renameat2 RENAME_EXCHANGE), while containers start with a read-only bind, a read-only
tmpfs, restrict_sys's masks on /proc and the device nodes in /dev. Every operation on a
destination must act on the one handle of its single resolution: a swap may decide *where*
a mount lands (the directory or the symlink's target, both inside the rootfs), never leave a
read-only mount writable, never put a remount, a propagation change or a mask on another
mount.

From the container's own /proc/self/mountinfo each start is checked for
- writable escapes: a write reached the bind's host source, or the bind (any mount of its
  source) or the tmpfs is read-write;
- mounts on the wrong target: the rootfs (read-write here) was remounted read-only, a mask
  landed outside the container's procfs, the procfs lacks a mask, or a device node or
  link was made in the rootfs's own dev directory (or its decoy) instead of the container's
  /dev tmpfs.
"""
import ctypes
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

import minins
from minins import config
from minins.config import Mount, MountConfig, Namespace

from kernel import needs_root, run_captured
from rootfs_util import build_rootfs

pytestmark = needs_root

STARTS = 300
TMPFS_MARK = "size=128k"  # picks the test's tmpfs out of the mount table
DECOY_MARK = "size=256k"  # the writable tmpfs the symlinks point at
MASK_NAMES = {"kcore", "keys", "timer_list", "sched_debug", "sys", "bus", "fs", "irq",
              "sysrq-trigger", "acpi", "asound", "scsi", "latency_stats", "timer_stats"}

SWAPPER = r"""
import ctypes, os, sys
f = ctypes.CDLL(None, use_errno=True).renameat2
f.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
pairs = [(a.encode(), b.encode()) for a, b in zip(sys.argv[1::2], sys.argv[2::2])]
print("ready", flush=True)
while True:
    for a, b in pairs:
        if f(-100, a, -100, b, 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
            sys.exit("renameat2: errno %d" % ctypes.get_errno())
"""

# Try each name the procfs may have while the swapper runs; a few rounds, as names move.
# (No /dev/null here: /dev may be the swapped-in decoy when the shell looks.)
SCRIPT = ("touch /vol/escape /vol.swap/escape /decoy/escape 2>/tmp/err; "
          "for i in 1 2 3 4 5 6 7 8 9 10; do for p in /proc /proc.swap /pdecoy; do "
          "cat $p/self/mountinfo 2>/tmp/err && exit 0; done; done; exit 9")
NAMES = ("vol", "tro", "proc", "dev")


def _has_renameat2():
    try:
        ctypes.CDLL(None).renameat2
        return True
    except AttributeError:
        return False


def make_world(base):
    """A busybox rootfs with the destinations and their decoys, and a host source dir, in
    ``base``; ``(rootfs, source)``."""
    root = build_rootfs(os.path.join(base, "rootfs"))
    for name in ("vol", "tro", "decoy"):
        os.mkdir(os.path.join(root, name))
    pdecoy = os.path.join(root, "pdecoy")
    os.mkdir(pdecoy)
    for name in MASK_NAMES:
        if name in ("sys", "bus", "fs", "irq", "acpi", "asound", "scsi"):
            os.mkdir(os.path.join(pdecoy, name))
        else:
            open(os.path.join(pdecoy, name), "w").close()
    os.symlink("/decoy", os.path.join(root, "vol.swap"))
    os.symlink("/decoy", os.path.join(root, "tro.swap"))
    os.symlink("/pdecoy", os.path.join(root, "proc.swap"))
    os.mkdir(os.path.join(root, "ddecoy"))
    os.symlink("/ddecoy", os.path.join(root, "dev.swap"))
    src = os.path.join(base, "src")
    os.mkdir(src)
    return root, src


@pytest.fixture(scope="module")
def world():
    if not _has_renameat2():
        pytest.skip("libc has no renameat2 (glibc 2.28+)")
    base = tempfile.mkdtemp(prefix="minins-race-")
    os.chmod(base, 0o755)
    try:
        yield make_world(base)
    finally:
        shutil.rmtree(base)


def race_cfg(root, src):
    cfg = config.default_config()
    # The symlinks point at a mount of its own: a second look-up of a destination would
    # find a mount root there, and a read-only remount would succeed -- on the wrong mount.
    mounts = (Mount(type="tmpfs", destination="/decoy", writable=True, data=DECOY_MARK),
              Mount(type="bind", source=src, destination="/vol"),
              Mount(type="tmpfs", destination="/tro", data=TMPFS_MARK))
    return cfg.replace(
        root_fs=root, environment=("PATH=/bin",), cgroups=None, networks=(),
        namespaces=tuple(Namespace(type=t) for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID")),
        mount_config=MountConfig(readonly_fs=False, mounts=mounts,
                                 device_nodes=config.DEFAULT_DEVICE_NODES))


class Swapper:
    """The attacker: a process of its own, stopped by its pid."""

    def __init__(self, root, names=NAMES):
        pairs = []
        for name in names:
            pairs += [os.path.join(root, name), os.path.join(root, name + ".swap")]
        self.proc = subprocess.Popen([sys.executable, "-c", SWAPPER] + pairs,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if line != b"ready\n":
            self.stop()
            raise AssertionError("the swapper did not start: %r" % self.proc.stderr.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def restore(root):
    """Put every name back (the swapper stopped at an arbitrary point)."""
    for name in NAMES:
        path = os.path.join(root, name)
        if os.path.islink(path):
            os.rename(path, path + ".tmp")
            os.rename(path + ".swap", path)
            os.rename(path + ".tmp", path + ".swap")


def parse(text):
    rows = []
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        rows.append({"id": int(fields[0]), "parent": int(fields[1]), "dev": fields[2],
                     "root": fields[3], "point": fields[4], "opts": fields[5].split(","),
                     "type": fields[sep + 1], "super": fields[sep + 3].split(",")})
    return rows


def judge(rows, src):
    """``(escapes, wrong targets, swapped)`` as lists of reasons for one start."""
    st = os.stat(src)
    dev = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    escapes, wrong = [], []
    top = [r for r in rows if r["point"] == "/"][-1]
    if top["opts"][0] != "rw":
        wrong.append("the rootfs was remounted read-only")
    binds = [r for r in rows if r["dev"] == dev and r["root"] == src]
    tmpfs = [r for r in rows if r["type"] == "tmpfs" and TMPFS_MARK in r["super"]]
    for r in rows:
        if r["type"] == "tmpfs" and DECOY_MARK in r["super"] and r["opts"][0] != "rw":
            wrong.append("the writable tmpfs %s was remounted read-only" % r["point"])
    if not binds or not tmpfs:
        wrong.append("a mount is missing: %d binds, %d tmpfs" % (len(binds), len(tmpfs)))
    for r in binds + tmpfs:
        if r["opts"][0] != "ro" and "ro" not in r["super"]:
            escapes.append("%s %s is writable" % (r["type"], r["point"]))
    procs = [r for r in rows if r["type"] == "proc" and r["parent"] == top["id"]]
    if len(procs) != 1:
        wrong.append("%d procfs mounts" % len(procs))
    for proc in procs:
        under = {os.path.basename(r["point"]): r for r in rows if r["parent"] == proc["id"]}
        for name in ("kcore", "keys", "timer_list", "sys"):
            if os.path.exists("/proc/" + name) and name not in under:
                wrong.append("%s/%s is not masked" % (proc["point"], name))
        if "sys" in under and under["sys"]["opts"][0] != "ro":
            escapes.append("%s/sys is writable" % proc["point"])
    for r in rows:
        if r["parent"] == top["id"] and os.path.basename(r["point"]) in MASK_NAMES and \
                r["type"] not in ("proc", "sysfs"):
            wrong.append("a mask landed on %s, outside the procfs" % r["point"])
    names = {os.path.basename(r["point"]) for r in binds + tmpfs + procs}
    swapped = bool(names & {"vol.swap", "tro.swap", "proc.swap", "decoy", "pdecoy"})
    return escapes, wrong, swapped


def nodes_in_the_image(dirs):
    """Device nodes or links that a start made in the rootfs itself (its /dev directory or
    the decoy, ``dirs`` being descriptors of both: their names move): the container's /dev
    is a tmpfs of its own."""
    found = []
    for d in dirs:
        for entry in os.listdir(d):
            mode = os.lstat(entry, dir_fd=d).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISLNK(mode):
                found.append(entry)
                os.unlink(entry, dir_fd=d)
    return found


def race(root, src, starts, state_root, names=NAMES):
    cfg = race_cfg(root, src)
    escapes, wrong, failed, swapped = [], [], [], 0
    dirs = [os.open(os.path.join(root, n), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            for n in ("dev", "ddecoy")]
    swapper = Swapper(root, names)
    try:
        for i in range(starts):
            try:
                code, out, err = run_captured(cfg, ["/bin/sh", "-c", SCRIPT],
                                              state_root=state_root)
            except minins.MininsError as e:
                failed.append(str(e))
                continue
            if code != 0:
                failed.append("exit %d: %s" % (code, err.strip()))
                continue
            e, w, s = judge(parse(out), src)
            if os.listdir(src):
                e.append("the container wrote into the host source")
                for name in os.listdir(src):
                    os.unlink(os.path.join(src, name))
            w += ["a node or link %s was made in the image's own dev" % n
                  for n in nodes_in_the_image(dirs)]
            escapes += e
            wrong += w
            swapped += s
    finally:
        code = swapper.stop()
        restore(root)
        for d in dirs:
            os.close(d)
    assert code == -9, "the swapper died on its own (%s)" % code
    return escapes, wrong, failed, swapped


def summary(reasons):
    """``{reason with its path's last part dropped: count}``, for a readable failure."""
    out = {}
    for r in reasons:
        key = " ".join(w if "/" not in w else "<%s>" % w.rsplit("/", 1)[-1]
                       for w in r.split())
        out[key] = out.get(key, 0) + 1
    return out


def test_swapped_destinations_never_escape(world, tmp_path):
    root, src = world
    escapes, wrong, failed, swapped = race(root, src, STARTS, str(tmp_path / "state"))
    assert escapes == [] and wrong == [], (summary(escapes), summary(wrong))
    assert failed == [], failed[:5]
    # The swap did reach the setup: some mounts landed through the symlinks.
    assert swapped > 0


def test_without_the_race_every_mount_is_where_it_was_asked(world, tmp_path):
    root, src = world
    code, out, err = run_captured(race_cfg(root, src), ["/bin/sh", "-c", SCRIPT],
                                  state_root=str(tmp_path / "state"))
    assert code == 0, err
    rows = parse(out)
    assert judge(rows, src) == ([], [], False)
    points = {r["point"] for r in rows}
    assert {"/vol", "/tro", "/decoy", "/proc", "/proc/keys", "/proc/sys"} <= points
    assert os.listdir(src) == []


def test_the_mount2_fallback_refuses_rather_than_escapes(world, tmp_path):
    """Without the new mount API the new mount is opened again by path, and used only when
    it is provably the one just made: a swap then fails the start, never escapes."""
    from minins import rootfs

    root, src = world
    saved = rootfs._new_api[0]
    rootfs._new_api[0] = False  # the init is forked from here: it takes the fallback
    try:
        escapes, wrong, failed, swapped = race(root, src, STARTS // 3,
                                               str(tmp_path / "state"))
    finally:
        rootfs._new_api[0] = saved
    assert escapes == [] and wrong == [], (summary(escapes), summary(wrong))
    assert [f for f in failed if "moved while the container was set up" not in f] == []
    assert swapped > 0
