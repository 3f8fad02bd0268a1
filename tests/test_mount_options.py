"""Mount options that used to do nothing (issue 11, section 5): per-mount propagation
(``slave``, ``private``), a read-only tmpfs, and a missing ``working_dir`` -- each proved from
inside the container, with the new mount API and with the mount(2) fallback."""
import os
import shutil
import tempfile

import pytest

import minins
from minins import config, libc, rootfs
from minins.config import Mount, Namespace

from kernel import in_private_ns, needs_root, run_captured
from rootfs_util import build_rootfs

pytestmark = needs_root

MS_SHARED = 1 << 20


@pytest.fixture(scope="module")
def bb_root():
    base = tempfile.mkdtemp(prefix="minins-test-mntopt-")
    os.chmod(base, 0o755)
    try:
        yield build_rootfs(os.path.join(base, "rootfs"))
    finally:
        shutil.rmtree(base)


@pytest.fixture(params=["new mount API", "mount(2) fallback"])
def api(request):
    """Run the container setup with the new mount API, or force the fallback (the init is
    forked from this process, so it sees the choice)."""
    if request.param == "new mount API" and not rootfs._has_new_api(libc):
        pytest.skip("this kernel has no mount_setattr (Linux 5.12)")
    saved = rootfs._new_api[0]
    rootfs._new_api[0] = request.param == "new mount API"
    try:
        yield request.param
    finally:
        rootfs._new_api[0] = saved


def bb_cfg(root, mounts=(), **changes):
    cfg = config.default_config()
    mc = cfg.mount_config.replace(mounts=cfg.mount_config.mounts[:2] + tuple(mounts))
    return cfg.replace(root_fs=root, environment=("PATH=/bin",), cgroups=None, networks=(),
                       namespaces=tuple(Namespace(type=t) for t in
                                        ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID")),
                       mount_config=mc, **changes)


def mountinfo(text):
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        rows[fields[4]] = {"opts": fields[5].split(","), "optional": fields[6:sep],
                           "type": fields[sep + 1]}
    return rows



def test_slave_and_private_bind_mounts_take_effect(bb_root, api, tmp_path):
    src = str(tmp_path / "shared")
    os.mkdir(src)
    state_root = str(tmp_path / "state")

    def inside():
        # A shared mount of our own as the source, in this private namespace only.
        libc.mount("tmpfs", src, "tmpfs", 0, "size=64k")
        libc.mount(None, src, None, MS_SHARED)
        group = [line.split() for line in open("/proc/self/mountinfo")
                 if line.split()[4] == src][0]
        shared = [o for o in group[6:group.index("-")] if o.startswith("shared:")][0]
        cfg = bb_cfg(bb_root, (Mount(type="bind", source=src, destination="/mnt",
                                     slave=True),
                               Mount(type="bind", source=src, destination="/home",
                                     private=True),
                               Mount(type="bind", source=src, destination="/root")))
        code, out, err = run_captured(cfg, ["cat", "/proc/self/mountinfo"],
                                      state_root=state_root)
        return shared.split(":")[1], code, out, err

    group, code, out, err = in_private_ns(inside)
    assert code == 0, err
    rows = mountinfo(out)
    assert rows["/mnt"]["optional"] == ["master:" + group]  # receives, never sends
    assert rows["/home"]["optional"] == []  # private
    assert rows["/root"]["optional"] == []  # the default: private too


def test_a_read_only_tmpfs_is_read_only(bb_root, api, tmp_path):
    cfg = bb_cfg(bb_root, (Mount(type="tmpfs", destination="/mnt", data="size=64k"),
                           Mount(type="tmpfs", destination="/home", writable=True,
                                 private=True)))
    code, out, err = run_captured(cfg, ["/bin/sh", "-c",
                                        "grep -E ' /(mnt|home) ' /proc/self/mountinfo; "
                                        "touch /mnt/x 2>&1; touch /home/x && echo home-ok"],
                                  state_root=str(tmp_path / "state"))
    assert code == 0, err
    rows = mountinfo("\n".join(line for line in out.splitlines() if " - " in line))
    assert rows["/mnt"]["opts"][0] == "ro" and rows["/mnt"]["type"] == "tmpfs"
    assert rows["/home"]["opts"][0] == "rw"
    assert "Read-only file system" in out and "home-ok" in out


def test_a_missing_working_dir_is_made(bb_root, api, tmp_path):
    """Made inside the rootfs (read-only here: before it turns read-only), owned by the
    process's user, as runc and crun do; through a symlink only inside the rootfs."""
    host = tempfile.mkdtemp(prefix="minins-wd-", dir="/")  # a fresh top-level host dir
    link = os.path.join(bb_root, "wd")
    os.symlink(host, link)  # on the host this would lead out of the rootfs
    try:
        cfg = bb_cfg(bb_root, user="alice", working_dir="/wd/a/b")
        code, out, err = run_captured(cfg, ["/bin/sh", "-c", "pwd; stat -c '%u:%g %a' . ..; "
                                                             "touch x 2>&1"],
                                      state_root=str(tmp_path / "state"))
        assert code == 1, err  # made before the rootfs turned read-only; read-only since
        # (the link is followed inside the rootfs: pwd names the directory it led to)
        assert out.split("\n")[:4] == [host + "/a/b", "1000:1000 755", "1000:1000 755",
                                       "touch: x: Read-only file system"]
        assert os.listdir(host) == []  # nothing made on the host
        made = os.path.join(bb_root, host.lstrip("/"), "a", "b")
        assert os.stat(made).st_uid == 1000 and os.stat(made).st_gid == 1000
        # On a writable rootfs the user can use it.
        mc = cfg.mount_config.replace(readonly_fs=False)
        code, out, err = run_captured(cfg.replace(mount_config=mc, working_dir="/wd/c"),
                                      ["/bin/sh", "-c", "touch x && id -u"],
                                      state_root=str(tmp_path / "state"))
        assert (code, out.strip()) == (0, "1000"), err
        assert os.stat(os.path.join(bb_root, host.lstrip("/"), "c", "x")).st_uid == 1000
        # Below a tmpfs of the plan it is made in that tmpfs, after the mount.
        cfg = bb_cfg(bb_root, working_dir="/tmp/deep/er")
        code, out, err = run_captured(cfg, ["pwd"], state_root=str(tmp_path / "state"))
        assert (code, out.strip()) == (0, "/tmp/deep/er"), err
        assert not os.path.exists(os.path.join(bb_root, "tmp", "deep"))
    finally:
        os.unlink(link)
        shutil.rmtree(os.path.join(bb_root, host.lstrip("/")), ignore_errors=True)
        shutil.rmtree(host)


def test_an_existing_working_dir_is_left_alone(bb_root, api, tmp_path):
    cfg = bb_cfg(bb_root, user="alice", working_dir="/etc")
    code, out, err = run_captured(cfg, ["/bin/sh", "-c", "pwd; stat -c %u /etc"],
                                  state_root=str(tmp_path / "state"))
    assert (code, out.split()) == (0, ["/etc", "0"]), err
    assert minins  # the library entry point is what these tests drive
