"""OCI hooks: run a hook program with the container's state JSON on its stdin.

runtime-spec config.md, "POSIX-platform Hooks": each hook is ``{path, args, env, timeout}``;
``path`` is executed (execve(2), never looked up in PATH) with ``args`` as its argv (``[path]``
when empty) and exactly ``env`` as its environment (none when absent); its stdin is the
container's state (runtime.md "State": ociVersion, id, status, pid, bundle, annotations). A
hook that exits non-zero, dies of a signal or outlives its ``timeout`` (seconds; killed then)
has failed. runc keeps a hook's stdout and stderr and puts them in the error; so does this
module.

Where each kind runs (the spec): ``prestart`` and ``createRuntime`` in the runtime's
namespaces during create, after the container's namespaces exist and before pivot_root;
``createContainer`` in the container's namespaces at that point too (a row of
:data:`minins.child.STEPS`); ``startContainer`` in the container, at start, before the
command execs; ``poststart`` in the runtime after the command started; ``poststop`` after
delete removed the container. A failure of the first four fails the operation (the container
is removed); one of poststart or poststop is a warning and the operation goes on.

This module is used on both sides of the fork: the runtime imports it before forking when a
container has hooks to run inside it, and it imports nothing at run time but what the
runtime already has (os, select, json).
"""
import errno
import json
import os
import select

from . import OCI_VERSION
from .errors import ContainerError, SyscallError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
RUNTIME_SIDE = ("prestart", "createRuntime", "poststart", "poststop")
IN_CONTAINER = ("createContainer", "startContainer")
WARN_ONLY = ("poststart", "poststop")
OUTPUT_LIMIT = 4096  # bytes of a failed hook's stdout and of its stderr kept in the error


def to_json(hooks):
    """``{kind: [{"path", "args", "env", "timeout"}, ...]}`` of ``hooks`` (a dict of kind ->
    sequence of :class:`minins.oci.bundle.Hook` or of such dicts), for state.json and the
    plan; kinds without hooks left out."""
    out = {}
    for kind in KINDS:
        items = (hooks or {}).get(kind) or ()
        rows = []
        for h in items:
            if isinstance(h, dict):
                rows.append({"path": h["path"], "args": list(h.get("args") or ()),
                             "env": list(h.get("env") or ()), "timeout": h.get("timeout")})
            else:
                rows.append({"path": h.path, "args": list(h.args or ()),
                             "env": list(h.env or ()), "timeout": h.timeout})
        if rows:
            out[kind] = rows
    return out


def check(hooks, where="hooks"):
    """``hooks`` read back from a state file (input): the shape :func:`to_json` writes, or a
    :class:`minins.errors.StateError` naming the field."""
    from .errors import StateError

    if not isinstance(hooks, dict):
        raise StateError("%s: must be an object" % where)
    for kind, rows in hooks.items():
        if kind not in KINDS or not isinstance(rows, list):
            raise StateError("%s.%s: not a hook list" % (where, kind))
        for i, h in enumerate(rows):
            here = "%s.%s[%d]" % (where, kind, i)
            if not isinstance(h, dict) or not isinstance(h.get("path"), str) or \
                    not h["path"].startswith("/"):
                raise StateError("%s.path: must be an absolute path" % here)
            for key in ("args", "env"):
                if not isinstance(h.get(key, []), list) or \
                        not all(isinstance(a, str) for a in h.get(key, [])):
                    raise StateError("%s.%s: must be a list of strings" % (here, key))
            t = h.get("timeout")
            if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t <= 0):
                raise StateError("%s.timeout: must be a positive number of seconds" % here)
    return hooks


def run_all(hooks, kind, state, lc=None):
    """Run the hooks of ``kind`` (from :func:`to_json`'s shape) in order with ``state`` (a
    dict: the OCI state) on stdin. The first failure raises :class:`ContainerError` naming
    the kind, the index and the path, with the hook's output; later hooks do not run."""
    rows = (hooks or {}).get(kind) or ()
    if not rows:
        return
    data = json.dumps(state).encode()
    for i, h in enumerate(rows):
        try:
            run_one(h["path"], h.get("args") or (), h.get("env") or (), h.get("timeout"), data,
                    lc)
        except ContainerError as e:
            raise ContainerError("error running %s hook #%d: %s" % (kind, i, e.message)) \
                from None
        except OSError as e:
            raise ContainerError("error running %s hook #%d: %s: %s"
                                 % (kind, i, h["path"], os.strerror(e.errno or errno.EIO))) \
                from None


def run_one(path, args, env, timeout, stdin_data, lc=None):
    """Fork, exec ``path`` with ``args``/``env`` and ``stdin_data`` as its stdin (a memfd
    holding it: a hook that never reads cannot block us), wait up to ``timeout`` seconds
    (``None``: no limit), and raise :class:`ContainerError` when it failed."""
    if lc is None:
        from . import libc as lc
    argv = list(args) or [path]
    stdin = os.memfd_create("minins-hook-state", os.MFD_CLOEXEC)
    try:
        os.write(stdin, stdin_data)
        os.lseek(stdin, 0, os.SEEK_SET)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        # (errors of the exec itself come back on this pipe, as in CPython's subprocess)
        exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = lc.fork()
            if pid == 0:
                _child(path, argv, env, stdin, out_w, err_w, exec_w)  # never returns
            for fd in (out_w, err_w, exec_w):
                os.close(fd)
            out_w = err_w = exec_w = None
            return _wait(pid, path, timeout, out_r, err_r, exec_r, lc)
        finally:
            for fd in (out_r, out_w, err_r, err_w, exec_r, exec_w):
                if fd is not None:
                    os.close(fd)
    finally:
        os.close(stdin)


def _child(path, argv, env, stdin, out_w, err_w, exec_w):
    try:
        os.dup2(stdin, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, exec_w)
        os.closerange(exec_w + 1, 65536)
        os.execve(path, argv, dict(e.partition("=")[::2] for e in env))
    except OSError as e:
        try:
            os.write(exec_w, b"%d" % (e.errno or errno.EIO))
        finally:
            os._exit(127)
    except BaseException:  # noqa: B902 - never unwind into the caller's code
        os._exit(127)


def _wait(pid, path, timeout, out_r, err_r, exec_r, lc):
    import time

    try:
        pidfd = lc.pidfd_open(pid)
    except OSError:
        pidfd = None
    out, err = bytearray(), bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    for fd in (out_r, err_r):
        poller.register(fd, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    open_fds = {out_r: out, err_r: err}
    status = None
    try:
        while status is None:
            if deadline is None:
                wait_ms = -1 if pidfd is not None else 10
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    status = -1
                    raise ContainerError("%s: timed out after %d s" % (path, timeout))
                wait_ms = int(left * 1000) + 1
                if pidfd is None:
                    wait_ms = min(10, wait_ms)
            for fd, _ev in poller.poll(wait_ms):
                if fd in open_fds:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        buf = open_fds[fd]
                        buf += chunk[:max(0, OUTPUT_LIMIT - len(buf))]
                    else:
                        poller.unregister(fd)
                        del open_fds[fd]
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
    finally:
        if pidfd is not None:
            os.close(pidfd)
    for fd, buf in open_fds.items():  # what it wrote before it exited
        os.set_blocking(fd, False)
        try:
            buf += os.read(fd, OUTPUT_LIMIT)[:max(0, OUTPUT_LIMIT - len(buf))]
        except (BlockingIOError, OSError):
            pass
    failed_exec = os.read(exec_r, 64)
    if failed_exec:
        e = int(failed_exec)
        raise SyscallError(e, "exec", path)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return
    how = ("exit status %d" % os.WEXITSTATUS(status)) if os.WIFEXITED(status) \
        else "signal %d" % os.WTERMSIG(status)
    raise ContainerError("%s: %s, stdout: %s, stderr: %s"
                         % (path, how, _text(out), _text(err)))


def _text(buf):
    return bytes(buf).decode("utf-8", "replace").strip()


def state_for(st, status, pid=None):
    """The OCI state (runtime.md) of the container whose minins state is ``st``, as the
    hooks get it: ``status`` as given, ``pid`` (default: the init's)."""
    out = {"ociVersion": OCI_VERSION, "id": st.get("id", ""), "status": status,
           "bundle": st.get("bundle", ""), "annotations": st.get("annotations") or {}}
    pid = st.get("init_pid") if pid is None else pid
    if pid:
        out["pid"] = pid
    return out

