"""The pure half of the one-handle mounts, and the order of their calls against the fake libc:
a mount is read-only and has its propagation *before* it is attached."""
import os

from hypothesis import given, strategies as st

from minins import libc, rootfs
from minins.config import MountConfig, Mount, default_config

from fakes import FakeLibc


def test_mount_attrs_maps_the_per_mount_flags():
    ms = rootfs.MS_RDONLY | rootfs.MS_NOSUID | rootfs.MS_NODEV | rootfs.MS_NOEXEC
    assert rootfs.mount_attrs(ms) == (libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID
                                      | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC)
    assert rootfs.mount_attrs(rootfs.MS_STRICTATIME) == libc.MOUNT_ATTR_STRICTATIME
    assert rootfs.mount_attrs(rootfs.MS_BIND | rootfs.MS_REC) == 0  # not per-mount flags


def test_fs_options_splits_like_the_kernel():
    assert rootfs.fs_options("mode=1777,size=64k") == [("mode", "1777"), ("size", "64k")]
    assert rootfs.fs_options("newinstance,ptmxmode=0666") == [("newinstance", None),
                                                              ("ptmxmode", "0666")]
    assert rootfs.fs_options('size=1m,context="a:b:c,d"') == [("size", "1m"),
                                                             ("context", "a:b:c,d")]
    assert rootfs.fs_options(None) == [] and rootfs.fs_options(",,") == []


@given(st.lists(st.tuples(st.text("abcxyz_", min_size=1, max_size=6),
                          st.one_of(st.none(), st.text("0123456789kmx", max_size=5))),
                max_size=6))
def test_fs_options_round_trips(opts):
    data = ",".join(k if v is None else "%s=%s" % (k, v) for k, v in opts)
    assert rootfs.fs_options(data) == opts


def test_normalize_and_below_a_mount():
    assert rootfs._normalize("//a/./b/") == "/a/b" and rootfs._normalize("/") == "/"
    assert rootfs._normalize("/a/../b") is None  # cannot be matched against our mounts
    cfg = default_config().replace(mount_config=MountConfig(mounts=(
        Mount(type="tmpfs", destination="/tmp"),)))
    assert rootfs._below_a_mount(cfg, "/tmp/x") and rootfs._below_a_mount(cfg, "/proc/1")
    assert not rootfs._below_a_mount(cfg, "/tmpx") and not rootfs._below_a_mount(cfg, "/w")


import pytest


@pytest.fixture(autouse=True)
def new_api():
    """The fake stands for a kernel with the new mount API (no probe)."""
    saved = rootfs._new_api[0]
    rootfs._new_api[0] = True
    try:
        yield
    finally:
        rootfs._new_api[0] = saved


def _fd():
    return os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)


def test_a_bind_is_read_only_and_private_before_it_is_attached():
    lc = FakeLibc(results={"open_tree": _fd()})
    m = rootfs._Mounter(lc)
    assert m.new_api
    tree = m.bind(7, 9, "/vol", readonly=True, propagation=rootfs.MS_SLAVE)
    os.close(tree)
    names = lc.names()
    assert names == ["open_tree", "mount_setattr", "move_mount"]
    _, src, path, flags = lc.calls[0]
    assert (src, path) == (7, "") and flags & libc.OPEN_TREE_CLONE and \
        flags & libc.AT_RECURSIVE
    _, fd, _, flags, attr_set, attr_clr, prop = lc.calls[1]
    assert attr_set == libc.MOUNT_ATTR_RDONLY and prop == rootfs.MS_SLAVE
    assert flags & libc.AT_RECURSIVE
    _, frm, _, to, _, flags = lc.calls[2]
    assert to == 9 and flags == libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_EMPTY_PATH


def test_a_filesystem_gets_its_options_and_attributes_before_it_is_attached():
    ctx = _fd()
    lc = FakeLibc(results={"fsopen": ctx, "fsmount": _fd()})
    m = rootfs._Mounter(lc)
    mnt = m.filesystem("tmpfs", "tmpfs", rootfs.MS_NOSUID | rootfs.MS_NODEV, "size=1m,mode=700",
                       5, "/tro", readonly=True)
    os.close(mnt)
    assert lc.names() == ["fsopen", "fsconfig", "fsconfig", "fsconfig", "fsconfig",
                              "fsmount", "move_mount"]
    assert [c[3:5] for c in lc.calls if c[0] == "fsconfig"] == [
        ("source", "tmpfs"), ("size", "1m"), ("mode", "700"), (None, None)]
    attrs = [c for c in lc.calls if c[0] == "fsmount"][0][3]
    assert attrs == libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV


def test_a_refused_mount_names_its_destination():
    lc = FakeLibc(results={"fsopen": _fd()}, fail={("fsconfig", 2): 22})
    m = rootfs._Mounter(lc)
    try:
        m.filesystem("tmpfs", "tmpfs", 0, "size=huge", 5, "/tro")
    except OSError as e:
        assert str(e).startswith("mount /tro: EINVAL")
    else:
        raise AssertionError("no error")
    assert "move_mount" not in lc.names()


def test_the_probe_falls_back_on_enosys_and_eperm():
    for err, expected in ((38, False), (1, False), (9, True)):  # ENOSYS, EPERM, EBADF
        saved = rootfs._new_api[0]
        rootfs._new_api[0] = None
        try:
            assert rootfs._has_new_api(FakeLibc(fail={"mount_setattr": err})) is expected
        finally:
            rootfs._new_api[0] = saved


def test_open_in_root_retries_eagain_then_walks(tmp_path):
    """openat2 answers EAGAIN when a rename anywhere raced a ".." (an attacker can keep
    renaming): retried, then resolved by hand -- never an error, never outside the root."""
    from minins import fspath

    (tmp_path / "a").mkdir()
    rootfd = os.open(str(tmp_path), fspath.O_PATH | os.O_DIRECTORY)
    try:
        lc = FakeLibc(fail={"openat2": 11})
        fd = fspath.open_in_root(rootfd, "a/../a", lc=lc)
        try:
            assert fspath.real_path(fd) == str(tmp_path / "a")
        finally:
            os.close(fd)
        assert lc.names() == ["openat2"] * fspath._AGAIN_TRIES  # and openat2 next time
    finally:
        os.close(rootfd)
