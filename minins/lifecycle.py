"""What can be done to a container that runs: state, pause, resume, kill, ps, stats, oom, list.

Every function reads ``state.json`` and then asks the kernel; a stale file never lies. The
status is derived, as crun and runc do it, not stored:

* ``stopped`` -- the init named by the state is gone, or its pid now belongs to another
  process (its start time differs), or it is a zombie;
* ``paused`` -- the init lives and the container's freezer cgroup is frozen (or freezing);
* ``created`` -- the init lives but has not exec'd the command yet (the ``created`` marker
  in the data path, removed by start);
* ``running`` -- otherwise.

Errors are :class:`minins.errors.StateError` (the command line prints one line and exits
125): a container that does not exist, or one in the wrong state for what was asked.
"""
import errno
import os

from . import state as _state
from .errors import StateError, SyscallError

CREATED_MARKER = "created"


def data_path_for(container_id=None, data_path=None, state_root=None):
    if data_path:
        return data_path
    if not container_id:
        raise StateError("name a container: --data-path DIR or its id")
    _state.validate_id(container_id, "container id")
    return os.path.join(state_root or _state.default_state_root(), container_id)


def _manager(st):
    from . import cgroups

    return cgroups.load_manager_from_state(st)


def status(st, mgr=None):
    if not _state.init_alive(st):
        return "stopped"
    if os.path.exists(os.path.join(st["data_path"], CREATED_MARKER)):
        return "created"
    mgr = mgr if mgr is not None else _manager(st)
    if mgr is not None:
        try:
            if mgr.freezer_state() in ("FROZEN", "FREEZING"):
                return "paused"
        except OSError as e:
            if e.errno != errno.ENOENT:  # the cgroup went away with the container
                raise
            return "stopped"
    return "running"


def describe(data_path):
    """The state as ``minins state`` prints it."""
    st = _state.load(data_path)
    s = status(st)
    return {
        "id": st.get("id") or os.path.basename(data_path.rstrip("/")),
        "pid": st["init_pid"] if s != "stopped" else 0,
        "status": s,
        "bundle": st.get("root_fs", ""),
        "root_fs": st.get("root_fs", ""),
        "data_path": st["data_path"],
        "created": st.get("created", ""),
        "init_start_time": st["init_start_time"],
        "cgroup_paths": st.get("cgroup_paths", {}),
        "network_state": st.get("network_state", {}),
        "labels": st.get("labels", []),
    }


def _require(data_path, wanted, doing):
    st = _state.load(data_path)
    mgr = _manager(st)
    s = status(st, mgr)
    if s not in wanted:
        raise StateError("cannot %s container %s: it is %s" % (doing, st.get("id", data_path),
                                                               s))
    return st, mgr


def pause(data_path):
    st, mgr = _require(data_path, ("running", "created"), "pause")
    if mgr is None:
        raise StateError("cannot pause container %s: it has no cgroups" % st.get("id"))
    mgr.freeze()


def resume(data_path):
    st, mgr = _require(data_path, ("paused",), "resume")
    mgr.thaw()


SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "PWR": 30, "SYS": 31,
}


def parse_signal(text):
    """``TERM``, ``SIGTERM``, ``15`` or ``RTMIN+3`` -> a number; ValueError otherwise."""
    t = text.upper()
    if t.startswith("SIG"):
        t = t[3:]
    if t.isdigit() and 0 < int(t) < 65:
        return int(t)
    if t in SIGNALS:
        return SIGNALS[t]
    if t.startswith(("RTMIN", "RTMAX")):
        base = 34 if t.startswith("RTMIN") else 64
        off = t[5:]
        if not off:
            return base
        if off[0] in "+-" and off[1:].isdigit():
            n = base + int(off)
            if 34 <= n <= 64:
                return n
    raise ValueError("unknown signal %r" % text)


def kill(data_path, sig=15, all_processes=False):
    """Signal the init (through a pidfd: never a recycled pid), or with ``all_processes``
    every process of the container (frozen meanwhile, so none can fork away)."""
    from .execin import running_state

    st, pidfd = running_state(data_path)
    try:
        if not all_processes:
            from . import libc

            libc.pidfd_send_signal(pidfd, sig)
            if sig == 9:
                _thaw_if_frozen(_manager(st))  # a frozen task cannot die
            return
        mgr = _manager(st)
        if mgr is None:
            raise StateError("cannot signal every process of %s: it has no cgroups"
                             % st.get("id"))
        if sig == 9:
            mgr.kill_all()
            return
        was_frozen = mgr.freezer_state() == "FROZEN"
        mgr.freeze()
        try:
            for pid in mgr.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if not was_frozen:
                mgr.thaw()
    finally:
        os.close(pidfd)


def _thaw_if_frozen(mgr):
    if mgr is not None and mgr.freezer_state() != "THAWED":
        mgr.thaw()


def pids(data_path):
    st, mgr = _require(data_path, ("running", "paused", "created"), "list the processes of")
    if mgr is None:
        return [st["init_pid"]]
    return sorted(mgr.pids())


def stats(data_path):
    st, mgr = _require(data_path, ("running", "paused", "created"), "read the stats of")
    out = mgr.stats() if mgr is not None else {"cgroup_stats": {}}
    ns = st.get("network_state") or {}
    if ns.get("veth_host"):
        from . import network

        out["network_stats"] = network.stats(ns)
    return out


def oom_events(data_path):
    """Yield one dict per OOM kill in the container until it stops."""
    st, mgr = _require(data_path, ("running", "paused", "created"), "watch")
    if mgr is None:
        raise StateError("container %s has no cgroups to watch" % st.get("id"))
    events = mgr.oom_events()
    try:
        for count in events:
            yield {"id": st.get("id"), "oom_kills": count, "total": events.total}
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def delete(data_path, force=False, timeout=10.0):
    """Remove a stopped container's remains: its cgroups and its data path. A container that
    still runs is refused, unless ``force``: then it is killed first (SIGKILL, thawed)."""
    import time

    st = _state.load(data_path)
    mgr = _manager(st)
    s = status(st, mgr)
    if s != "stopped":
        if not force:
            raise StateError("container %s is %s; stop it first, or delete --force"
                             % (st.get("id", data_path), s))
        from . import libc

        try:
            pidfd = libc.pidfd_open(st["init_pid"])
        except SyscallError:
            pidfd = None
        if pidfd is not None:
            try:
                if _state.init_alive(st):
                    libc.pidfd_send_signal(pidfd, 9)
                    _thaw_if_frozen(mgr)
                import select

                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                if not poller.poll(int(timeout * 1000)):
                    raise StateError("container %s did not die within %.0f s"
                                     % (st.get("id"), timeout))
            finally:
                os.close(pidfd)
        deadline = time.monotonic() + timeout
        while _state.init_alive(st) and time.monotonic() < deadline:
            time.sleep(0.01)  # a zombie waiting for its parent: bounded by its reaping
    if mgr is not None:
        if st.get("pid_namespace") is False:
            mgr.kill_all()  # what the init left in the host's PID namespace
        mgr.destroy()
    for name in (_state.STATE_FILE, CREATED_MARKER):
        try:
            os.unlink(os.path.join(data_path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(data_path)
    except OSError:
        pass  # a directory the caller gave, with their own files in it


def list_containers(state_root=None):
    """Every container under the state root, with its derived status."""
    root = state_root or _state.default_state_root()
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise SyscallError(e.errno, "list", root) from None
    out = []
    for name in names:
        path = os.path.join(root, name)
        if not os.path.exists(os.path.join(path, _state.STATE_FILE)):
            continue
        try:
            out.append(describe(path))
        except StateError as e:
            out.append({"id": name, "pid": 0, "status": "unknown", "data_path": path,
                        "created": "", "error": str(e)})
    return out
