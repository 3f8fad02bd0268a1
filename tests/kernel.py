"""Helpers for tests that need root and a real kernel."""
import os
import tempfile

import pytest

ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not ROOT, reason="needs root (real namespaces, mounts, cgroups)")


def _userns_works():
    if not ROOT:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            from minins import libc

            libc.unshare(0x10000000)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return status == 0


USERNS = _userns_works()
needs_userns = pytest.mark.skipif(not USERNS, reason="user namespaces are not available here")


def run_captured(cfg, args, **kw):
    """Run a container with stdout and stderr captured; ``(code, out, err)``."""
    import minins

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = minins.run(cfg, args, stdout=out, stderr=err, **kw)
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(), err.read().decode()


def open_fds():
    return set(os.listdir("/proc/self/fd"))


def children():
    kids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % tid) as f:
                kids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass  # a thread that ended meanwhile: its children went to another thread of ours
    return kids


def in_private_ns(fn):
    """Run ``fn`` in a forked child in a mount namespace of its own, ``/`` made recursively
    private first (the host's mounts untouched); its JSON-able result comes back, an error
    in the child fails the test with the child's message."""
    import json

    from minins import libc

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            libc.unshare(0x00020000)  # CLONE_NEWNS
            libc.mount(None, "/", None, 0x4000 | (1 << 18))  # MS_REC | MS_PRIVATE
            out = json.dumps({"ok": fn()})
        except BaseException as e:  # noqa: B902 - reported to the parent
            out = json.dumps({"error": "%s: %s" % (type(e).__name__, e)})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = json.loads(f.read().decode() or '{"error": "no answer"}')
    os.waitpid(pid, 0)
    assert "error" not in data, data["error"]
    return data["ok"]


class Subreaper:
    """Inside the ``with``, processes orphaned by our descendants come to us (instead of the
    host's PID 1, which may reap them late), and are reaped on the way out."""

    def __enter__(self):
        from minins import libc

        self.before = children()
        libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
        return self

    def reap(self, timeout=10):
        """Wait (bounded) for every new child to exit, reaping it."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            new = children() - self.before
            if not new:
                return
            for pid in new:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
            if time.monotonic() > deadline:
                raise AssertionError("children still running: %s" % sorted(new))
            time.sleep(0.005)

    def __exit__(self, *exc):
        from minins import libc

        try:
            self.reap()
        finally:
            libc.prctl(36, 0)
        return False


def container_python():
    """A Python interpreter the default container can run: not below one of the places it
    hides under a tmpfs (this process's own may live in /root/.pyenv, say)."""
    import sys

    from minins import config

    places = [os.path.realpath(m.destination)
              for m in config.default_config().mount_config.mounts]
    for exe in ("/usr/bin/python3", sys.executable):
        real = os.path.realpath(exe)
        if os.path.exists(real) and not any(real.startswith(p + "/") for p in places):
            return exe
    pytest.skip("every Python interpreter here lives below a place the default container "
                "hides")
