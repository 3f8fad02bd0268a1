"""How the state file is written (issue 16): atomically always, fsync'ed only where it can
matter. ``/dev/shm`` is the tmpfs every Linux host has; the test's temporary directory is on
whatever disk holds /tmp (skipped where that is a tmpfs too)."""
import os
import tempfile

import pytest

from minins import libc, state


def _fsyncs(monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


def _on_memory_fs(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return libc.fstatfs_type(fd) in (state.TMPFS_MAGIC, state.RAMFS_MAGIC)
    finally:
        os.close(fd)


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or not _on_memory_fs("/dev/shm"),
                    reason="/dev/shm is not a tmpfs here")
def test_no_fsync_on_a_tmpfs(monkeypatch):
    calls = _fsyncs(monkeypatch)
    d = tempfile.mkdtemp(dir="/dev/shm", prefix="minins-test-")
    try:
        state.save(d, {"init_pid": 1, "init_start_time": "1"})
        with open(os.path.join(d, state.STATE_FILE)) as f:
            assert '"init_pid": 1' in f.read()
        assert calls == []
        assert os.listdir(d) == [state.STATE_FILE]  # no temporary file left
    finally:
        state.remove_dir(d)


def test_fsync_on_a_disk(tmp_path, monkeypatch):
    if _on_memory_fs(str(tmp_path)):
        pytest.skip("the temporary directory is on a tmpfs here")
    calls = _fsyncs(monkeypatch)
    state.save(str(tmp_path), {"init_pid": 2, "init_start_time": "1"})
    assert len(calls) == 1
    assert os.listdir(str(tmp_path)) == [state.STATE_FILE]


def test_when_statfs_cannot_tell_it_fsyncs(monkeypatch):
    def refuse(fd):
        raise libc.SyscallError(38, "fstatfs", "fd %d" % fd)

    monkeypatch.setattr(libc, "fstatfs_type", refuse)
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        assert state.needs_fsync(fd)
    finally:
        os.close(fd)
