"""What an openat2 failure does in minins.fspath.open_in_root: ENOSYS and EPERM (no openat2
here) fall back to the by-hand walk for that call only; EAGAIN (a ".." raced a rename,
openat2(2)) is retried; every other errno -- ENOENT, ENOTDIR, ELOOP, EXDEV, EINVAL, E2BIG --
is the answer and is raised, with no walk."""
import errno
import os

import pytest

from minins import fspath
from minins import libc as real_libc
from minins.errors import SyscallError


class ScriptedLibc(object):
    """openat2 that fails with the scripted errnos in turn (None: the real call)."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []

    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        self.calls.append((path, flags, resolve))
        err = self.script.pop(0) if self.script else None
        if err is None:
            return real_libc.openat2(dirfd, path, flags, mode, resolve)
        raise SyscallError(err, "openat2", path)


@pytest.fixture
def root(tmp_path):
    fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    try:
        os.close(real_libc.openat2(fd, ".", os.O_PATH, resolve=real_libc.RESOLVE_IN_ROOT))
    except OSError as e:
        os.close(fd)
        pytest.skip("openat2 is not usable here: %s" % e)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    yield str(tmp_path), fd
    os.close(fd)


def where(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    finally:
        os.close(fd)


IN_ROOT = real_libc.RESOLVE_IN_ROOT | real_libc.RESOLVE_NO_MAGICLINKS


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM])
def test_not_supported_falls_back_for_this_call_only(root, err):
    path, fd = root
    lc = ScriptedLibc(err)
    assert where(fspath.open_in_root(fd, "/d/f", lc=lc)) == path + "/d/f"
    assert lc.calls == [("d/f", fspath.O_PATH, IN_ROOT)]
    # the next call tries openat2 again
    assert where(fspath.open_in_root(fd, "d", lc=lc)) == path + "/d"
    assert lc.calls[1:] == [("d", fspath.O_PATH, IN_ROOT)]
    # and a fall-back walk still fails like one: ENOENT for a missing path
    with pytest.raises(SyscallError) as e:
        fspath.open_in_root(fd, "d/nothing", lc=ScriptedLibc(err))
    assert (e.value.errno, e.value.op) == (errno.ENOENT, "open")


@pytest.mark.parametrize("err", [errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV,
                                 errno.EINVAL, errno.E2BIG, errno.EACCES, errno.EMFILE])
def test_other_errors_are_raised_not_walked_around(root, err):
    path, fd = root
    lc = ScriptedLibc(err)
    with pytest.raises(OSError) as e:
        fspath.open_in_root(fd, "d/f", lc=lc)
    assert e.value.errno == err
    assert len(lc.calls) == 1
    # nothing was switched off: the next call uses openat2 and succeeds
    assert where(fspath.open_in_root(fd, "d/f", lc=lc)) == path + "/d/f"
    assert len(lc.calls) == 2


def test_eagain_is_retried(root):
    path, fd = root
    lc = ScriptedLibc(errno.EAGAIN, errno.EAGAIN)
    assert where(fspath.open_in_root(fd, "d", lc=lc)) == path + "/d"
    assert len(lc.calls) == 3


def test_eagain_that_persists_is_walked_by_hand_after_8_tries(root):
    # a renaming attacker can make every openat2 say EAGAIN: after 8 tries the by-hand walk
    # resolves the path (safely inside the root) rather than fail the start
    _, fd = root
    lc = ScriptedLibc(*[errno.EAGAIN] * 8)
    got = fspath.open_in_root(fd, "d", lc=lc)
    assert got >= 0
    os.close(got)
    assert len(lc.calls) == 8
    lc = ScriptedLibc(*[errno.EAGAIN] * 7)
    assert fspath.open_in_root(fd, "d", lc=lc) >= 0
    assert len(lc.calls) == 8


def test_eagain_then_another_error(root):
    _, fd = root
    lc = ScriptedLibc(errno.EAGAIN, errno.ENOENT)
    with pytest.raises(OSError) as e:
        fspath.open_in_root(fd, "d", lc=lc)
    assert e.value.errno == errno.ENOENT and len(lc.calls) == 2


@pytest.mark.parametrize("given,sent", [("", "."), ("/", "."), (".", "."), ("./", "."),
                                        ("//d//./f/", "d/f"), ("d/../d", "d/../d"),
                                        ("/../d", "../d")])
def test_what_openat2_is_given(root, given, sent):
    _, fd = root
    lc = ScriptedLibc()
    os.close(fspath.open_in_root(fd, given, lc=lc))
    assert lc.calls == [(sent, fspath.O_PATH, IN_ROOT)]


def test_real_kernel_errors_carry_the_operation_and_path(root):
    _, fd = root
    with pytest.raises(SyscallError) as e:
        fspath.open_in_root(fd, "/d/missing")
    assert (e.value.errno, e.value.op, e.value.filename) == (errno.ENOENT, "openat2",
                                                             "d/missing")
    with pytest.raises(SyscallError) as e:
        fspath.open_in_root(fd, "/d/f/x")
    assert e.value.errno == errno.ENOTDIR


def test_by_hand_errors_name_the_given_path(root):
    _, fd = root
    lc = ScriptedLibc(errno.ENOSYS)
    with pytest.raises(SyscallError) as e:
        fspath.open_in_root(fd, "/d/f/x", lc=lc)
    assert (e.value.errno, e.value.op, e.value.filename) == (errno.ENOTDIR, "open", "/d/f/x")


def test_mkdir_all_errors_name_the_path(tmp_path):
    (tmp_path / "f").write_text("")
    fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(SyscallError) as e:
            fspath.mkdir_all_in_root(fd, "/f/x")
        assert (e.value.errno, e.value.filename) == (errno.ENOTDIR, "/f/x")
    finally:
        os.close(fd)


def test_write_file_writes_once_in_place(tmp_path):
    p = tmp_path / "w"
    p.write_text("old contents")
    fspath.write_file(str(p), "new")
    assert p.read_text() == "new contents"  # one write(2) at offset 0, no O_TRUNC, no O_CREAT
    with pytest.raises(SyscallError) as e:
        fspath.write_file(str(tmp_path / "missing"), "0 0 1\n", "the detail")
    assert (e.value.errno, e.value.op, e.value.filename) == (errno.ENOENT, "write",
                                                             str(tmp_path / "missing"))
    assert "the detail" in str(e.value)


def test_mkdir_all_default_mode_is_0755(tmp_path):
    fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.close(fspath.mkdir_all_in_root(fd, "x/y"))
        os.close(fspath.mkdir_all_in_root(fd, "x/z", final_file=True))
    finally:
        os.close(fd)
    assert (tmp_path / "x").stat().st_mode & 0o7777 == 0o755 & ~umask
    assert (tmp_path / "x" / "y").stat().st_mode & 0o7777 == 0o755 & ~umask
    assert (tmp_path / "x" / "z").is_file()


def test_fd_path_and_real_path(tmp_path):
    fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    try:
        assert fspath.fd_path(fd) == "/proc/self/fd/%d" % fd
        assert fspath.real_path(fd) == str(tmp_path)
        assert os.path.samefile(fspath.fd_path(fd), str(tmp_path))
    finally:
        os.close(fd)


@pytest.mark.parametrize("final_file,op", [(False, "mkdir"), (True, "create")])
def test_mkdir_all_in_a_removed_root_names_the_failed_step(tmp_path, final_file, op):
    # nothing can be made in a directory that was removed (ENOENT): the failure of mkdir or
    # of the O_CREAT open is raised as itself, naming the path asked for
    gone = tmp_path / "gone"
    gone.mkdir()
    fd = os.open(str(gone), os.O_PATH | os.O_DIRECTORY)
    try:
        gone.rmdir()
        with pytest.raises(SyscallError) as e:
            fspath.mkdir_all_in_root(fd, "/x", final_file=final_file)
        assert (e.value.errno, e.value.op, e.value.filename) == (errno.ENOENT, op, "/x")
    finally:
        os.close(fd)


class _NoOpenat2(object):
    @staticmethod
    def openat2(*args, **kwargs):
        raise OSError(errno.ENOSYS, "openat2 is not implemented")


def test_the_walk_leaves_no_descriptor_open(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    os.symlink("d/f", str(tmp_path / "l"))
    os.symlink("loop", str(tmp_path / "loop"))
    fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    try:
        before = sorted(os.listdir("/proc/self/fd"))
        for path, err in (("l", None), ("d/../l", None), ("loop", errno.ELOOP),
                          ("d/f/x", errno.ENOTDIR), ("l/..", errno.ENOTDIR),
                          ("nothing", errno.ENOENT), ("d/f", None)):
            for flags in (fspath.O_PATH, os.O_RDONLY):
                try:
                    os.close(fspath.open_in_root(fd, path, flags, lc=_NoOpenat2))
                    assert err is None, path
                except SyscallError as e:
                    assert e.errno == err, path
            try:
                os.close(fspath.mkdir_all_in_root(fd, path))
            except SyscallError:
                pass
        fspath.write_file(str(tmp_path / "d" / "f"), "y")
        with pytest.raises(SyscallError):
            fspath.write_file(str(tmp_path / "d"), "y")  # EISDIR: the open fails
        assert sorted(os.listdir("/proc/self/fd")) == before
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
@pytest.mark.parametrize("final_file", [False, True])
def test_mkdir_all_gives_what_it_makes_to_the_owner_and_nothing_else(tmp_path, final_file):
    """What runc does for a missing working_dir: made for the process's user. Only what the
    walk created changes hands: an existing directory, and a symlink followed on the way,
    keep theirs."""
    root = tmp_path / "root"
    (root / "old").mkdir(parents=True)
    os.chown(str(root / "old"), 0, 0)
    os.symlink("old", str(root / "link"))
    rootfd = os.open(str(root), os.O_PATH | os.O_DIRECTORY)
    try:
        fd = fspath.mkdir_all_in_root(rootfd, "/link/a/b", final_file=final_file,
                                      owner=(1234, 5678))
        os.close(fd)
    finally:
        os.close(rootfd)
    for made in ("old/a", "old/a/b"):
        st = os.stat(str(root / made))
        assert (st.st_uid, st.st_gid) == (1234, 5678), made
    assert os.path.isfile(str(root / "old/a/b")) == final_file
    st = os.stat(str(root / "old"))
    assert (st.st_uid, st.st_gid) == (0, 0)
    st = os.lstat(str(root / "link"))
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())


def test_mkdir_all_without_an_owner_leaves_ownership_to_the_caller(tmp_path):
    rootfd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    try:
        os.close(fspath.mkdir_all_in_root(rootfd, "x/y"))
    finally:
        os.close(rootfd)
    st = os.stat(str(tmp_path / "x" / "y"))
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())


# --- why execve said ENOENT of a program that exists ------------------------------------------

def _program(tmp_path, content):
    path = tmp_path / "prog"
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize("content,why", [
    (b"#!/no/such/sh\necho hi\n", "its interpreter /no/such/sh (on its #! line) does not exist"),
    (b"#!/no/such/sh -e\n", "its interpreter /no/such/sh (on its #! line) does not exist"),
    (b"#! /no/such/sh\n", "its interpreter /no/such/sh (on its #! line) does not exist"),
    (b"#!/bin/sh\n", "its interpreter /bin/sh (on its #! line) could not be started"),
    (b"#!\n/bin/sh\n", "its #! line names no interpreter"),
    (b"#!   \n", "its #! line names no interpreter"),
    (b"\x7fELF\x02\x01\x01", "the file exists; the program interpreter (dynamic loader) it "
                            "names does not"),
    (b"echo not a script\n", None),
    (b"", None),
])
def test_missing_interpreter_says_why(tmp_path, content, why):
    assert fspath.missing_interpreter(_program(tmp_path, content)) == why


def test_missing_interpreter_of_a_missing_program_is_none(tmp_path):
    assert fspath.missing_interpreter(str(tmp_path / "nothing")) is None


def test_missing_interpreter_reads_the_kernels_256_bytes(tmp_path):
    # BINPRM_BUF_SIZE: the kernel sees the first 256 bytes of a script, no more
    name = "/" + "a" * 253  # "#!" + 254 bytes: the 256th byte is the name's last
    content = ("#!" + name + "Q/more\n").encode()
    assert fspath.missing_interpreter(_program(tmp_path, content)) == \
        "its interpreter %s (on its #! line) does not exist" % name
