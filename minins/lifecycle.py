"""What can be done to a container that runs: state, pause, resume, kill, ps, stats, oom, list.

Every function reads ``state.json`` and then asks the kernel; a stale file never lies. The
status is derived, as crun and runc do it, not stored:

* ``creating`` -- the state records no init yet and the runtime that wrote it (its pid *and*
  start time) still runs;
* ``stopped`` -- the init named by the state is gone, or its pid now belongs to another
  process (its start time differs), or it is a zombie; or the state records no init and its
  runtime is gone (a start that crashed: ``delete`` removes what it left);
* ``paused`` -- the init lives and the container's freezer cgroup is frozen (or freezing);
* ``created`` -- the init lives but has not exec'd the command yet (it still holds
  ``exec.fifo`` of the state dir, a detached container; or the ``created`` marker of an
  attached one is in the state dir; both removed by start);
* ``running`` -- otherwise.

Errors are :class:`minins.errors.StateError` (the command line prints one line and exits
125): a container that does not exist, or one in the wrong state for what was asked.
"""
import errno
import os

from . import OCI_VERSION
from . import state as _state
from . import statecheck as _statecheck
from .errors import ContainerError, MininsError, StateError, SyscallError

CREATED_MARKER = "created"
EXEC_FIFO = "exec.fifo"
START_TIMEOUT = 10.0  # seconds: for a created init to answer `start`


def data_path_for(container_id=None, data_path=None, state_root=None):
    """The state dir of an existing container named by its id (under ``state_root``) or by
    ``data_path``; see :func:`minins.state.locate`."""
    if not container_id and not data_path:
        raise StateError("name a container: --data-path DIR or its id")
    return _state.locate(container_id, data_path, state_root)[1]


def _manager(st):
    from . import cgroups

    return cgroups.load_manager_from_state(st)


def status(st, mgr=None):
    if st["init_pid"] <= 0:
        return "creating" if _state.runtime_alive(st) else "stopped"
    if not _state.init_alive(st) or _statecheck.exiting(st["init_pid"]):
        # (in do_exit its fds are closed already, so it would look as if it had exec'd)
        return "stopped"
    mgr = mgr if mgr is not None else _manager(st)
    if mgr is not None:
        try:
            if mgr.freezer_state() in ("FROZEN", "FREEZING"):
                return "paused"
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV):
                raise
            return "stopped"  # the cgroup went away with the container
    if os.path.lexists(os.path.join(st["data_path"], CREATED_MARKER)) or \
            _init_holds_fifo(st):
        return "created"
    return "running"


def _init_holds_fifo(st):
    """Has the detached init not exec'd yet? It holds ``exec.fifo`` (close-on-exec) until it
    does; the file alone is not enough: a `start` killed between the init's exec and its
    removal of the fifo leaves it behind while the command runs. Where /proc/PID/fd cannot
    be read (a rootless caller, a non-dumpable init), the file decides."""
    fifo = os.path.join(st["data_path"], EXEC_FIFO)
    try:
        want = os.stat(fifo)
    except FileNotFoundError:
        return False
    fds = "/proc/%d/fd" % st["init_pid"]
    try:
        names = os.listdir(fds)
    except PermissionError:
        return True
    except FileNotFoundError:
        return False  # gone meanwhile
    for name in names:
        try:
            got = os.stat(os.path.join(fds, name))
        except OSError:
            continue  # closed meanwhile, or not ours to follow
        if (got.st_dev, got.st_ino) == (want.st_dev, want.st_ino):
            return True
    return False


def describe(data_path):
    """The state as ``minins state`` prints it: the OCI state (runtime-spec runtime.md
    "State": ociVersion, id, pid, status, bundle, rootfs, created, annotations, owner --
    what ``runc state`` prints, in its order) and minins's own fields after them. A
    container made by minins's own create or run has no bundle: no ``bundle``,
    ``annotations`` nor ``owner`` then."""
    st = _statecheck.load(data_path)
    s = status(st)
    oci = "bundle" in st
    out = {"ociVersion": OCI_VERSION,
           "id": st.get("id") or os.path.basename(data_path.rstrip("/")),
           "pid": st["init_pid"] if s != "stopped" else 0,
           "status": s}
    if oci:
        out["bundle"] = st["bundle"]
    out["rootfs"] = st.get("root_fs", "")
    out["created"] = st.get("created", "")
    if oci:
        out["annotations"] = st.get("annotations") or {}
        out["owner"] = st.get("owner", "")
    out.update(data_path=st["data_path"], init_start_time=st["init_start_time"],
               cgroup_paths=st.get("cgroup_paths", {}),
               network_state=st.get("network_state", {}), labels=st.get("labels", []))
    return out


def _require(data_path, wanted, doing):
    st = _statecheck.load(data_path)
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


from .signals import SIGNALS, parse_signal  # noqa: E402,F401 (their old home)


def stop_signal(st):
    """The signal ``stop`` sends first: the ``stop_signal`` of the configuration recorded in
    the state ``st``, or SIGTERM. A state file is input: a value that is not a signal is a
    :class:`StateError` naming the field."""
    text = (st.get("config") or {}).get("stop_signal") or "TERM"
    try:
        sig = parse_signal(text) if isinstance(text, str) else 0
    except ValueError:
        sig = 0
    if sig == 0:
        raise StateError("container %s: config.stop_signal %r in its state is not a signal"
                         % (st.get("id", "?"), text))
    return sig


def kill(data_path, sig=15, all_processes=False):
    """Signal the init (through a pidfd: never a recycled pid), or with ``all_processes``
    every process of the container (frozen meanwhile, so none can fork away)."""
    st, pidfd = _statecheck.pin_running(data_path)
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
        try:
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
        except OSError as e:
            # The container died meanwhile and its cgroups went with it: what we were
            # asked for is done.
            if e.errno not in (errno.ENOENT, errno.ENODEV) or _state.init_alive(st):
                raise
    finally:
        os.close(pidfd)


def _thaw_if_frozen(mgr):
    """Thaw a frozen container (a frozen task cannot die); one whose cgroup went away with
    it meanwhile needs nothing."""
    if mgr is None:
        return
    try:
        if mgr.freezer_state() != "THAWED":
            mgr.thaw()
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENODEV):
            raise


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


def delete(data_path, force=False, timeout=10.0, run_hooks=True, warn=None):
    """Remove a stopped container's remains: its cgroups and its state dir, from the state
    alone, whoever created the container. A container that still runs is refused, unless
    ``force``: then it is killed first (SIGKILL, thawed). A start that crashed leaves a state
    with no init (or, in the instant before its state was written, an empty state dir): that
    is ``stopped`` once its runtime is gone, and removed the same way. A container made
    from a bundle then runs its poststop hooks (unless ``run_hooks`` is false); a failure
    is ``warn``'d."""
    import time

    try:
        st = _statecheck.load(data_path)
    except StateError:
        if _bare_state_dir(data_path):
            _state.remove_dir(data_path)
            return
        raise
    mgr = _manager(st)
    s = status(st, mgr)
    if s == "creating":
        raise StateError("container %s is being created by process %d; it cannot be deleted "
                         "until that ends" % (st.get("id", data_path), st["runtime_pid"]))
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
                if not _poll(pidfd, timeout):
                    raise StateError("container %s did not die within %.0f s"
                                     % (st.get("id"), timeout))
            finally:
                os.close(pidfd)
    deadline = time.monotonic() + timeout
    while _state.init_alive(st) and time.monotonic() < deadline:
        # a dying init (stopped already for status) or a zombie waiting for its parent:
        # bounded by its exit and reaping; until then it holds its cgroups
        time.sleep(0.01)
    if mgr is not None:
        if not _statecheck.own_pid_namespace(st) or st["init_pid"] <= 0:
            # what the init left in a PID namespace it shares (the host's, or one it joined
            # by path: its death ends nothing there), or what a crashed start left
            _ignore_gone(mgr.kill_all)
        _ignore_gone(mgr.destroy)
    if (st.get("network_state") or {}).get("veth_host"):
        from . import network

        # a pair whose namespace something else keeps alive (its alias says it is ours)
        network.remove_survivor(st["network_state"])
    _state.remove_dir(data_path)
    if run_hooks:
        oci_hooks(st, "poststop", "stopped", 0, warn)


def _bare_state_dir(data_path):
    """A state dir that holds nothing but what minins writes, and no state: what a start
    that crashed right after its mkdir leaves."""
    try:
        names = os.listdir(data_path)
    except OSError:
        return False
    return not any(n == _state.STATE_FILE for n in names) and all(
        n.startswith("." + _state.STATE_FILE) or n in (CREATED_MARKER, EXEC_FIFO) for n in names)


def _ignore_gone(fn):
    try:
        fn()
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENODEV):
            raise


def _poll(fd, timeout):
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))


def start(data_path, timeout=START_TIMEOUT, warn=None):
    """Release a ``created`` (detached) container's init to exec its command, from any
    process: open ``exec.fifo`` for reading, which lets the init's blocked open return; the
    init writes one byte, then execs. Returns once it has (our read sees EOF, its end being
    close-on-exec); a failed exec raises the init's error, errno intact (126/127 on the
    command line). runc's ``exec.fifo``, with the result read back. Then the poststart hooks
    of a container made from a bundle run (a failure is a warning: ``warn(message)``, by
    default a line on stderr; runtime-spec config.md)."""
    import json
    import time

    from . import sync

    st, pidfd = _statecheck.pin_running(data_path)
    cid = st.get("id", data_path)
    fifo_path = os.path.join(data_path, EXEC_FIFO)
    try:
        now = status(st)
        if now == "paused":
            raise StateError("cannot start container %s: it is paused; resume it first" % cid)
        if now != "created":
            # (a fifo left by a start killed after the exec would only make us wait)
            raise StateError("cannot start container %s: it is %s" % (cid, now))
        try:
            fifo = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError("cannot start container %s: it is %s" % (cid, status(st))) \
                from None
        except OSError as e:
            raise SyscallError(e.errno, "open", fifo_path) from None
        try:
            import select

            poller = select.poll()
            poller.register(fifo, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            data = b""
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                ready = dict(poller.poll(max(0, int(left * 1000))))
                if not ready:
                    raise ContainerError("container %s: its init did not answer start within "
                                         "%.0f s" % (cid, timeout))
                if fifo in ready:
                    chunk = os.read(fifo, 65536)
                    if not chunk:
                        break  # the init's end closed: exec'd, or died (told apart below)
                    data += chunk
                    continue
                if pidfd in ready:
                    # The init died: keep what it wrote last, if anything.
                    try:
                        data += os.read(fifo, 65536)
                    except BlockingIOError:
                        pass
                    break
        finally:
            os.close(fifo)
        if not data.startswith(b"0"):
            raise ContainerError("container %s stopped before it could start" % cid)
        if len(data) > 1:
            try:
                payload = json.loads(data[1:].decode("utf-8", "replace"))
            except ValueError:
                raise ContainerError("container %s: its init reported garbage" % cid) \
                    from None
            raise sync.error_from_payload(payload)
        _state.unlink(fifo_path)
    finally:
        os.close(pidfd)
    oci_hooks(st, "poststart", "running", st["init_pid"], warn)


def oci_hooks(st, kind, status, pid, warn):
    """Run the ``kind`` hooks recorded in the state ``st`` (a container made from a bundle);
    a failure is ``warn``'d (poststart, poststop: runtime-spec config.md)."""
    if not (st.get("hooks") or {}).get(kind):
        return
    from . import hooks

    try:
        hooks.run_all(st["hooks"], kind, hooks.state_for(st, status, pid=pid))
    except ContainerError as e:
        (warn or _warn)(str(e))


def _warn(message):
    import sys

    sys.stderr.write("minins: warning: %s\n" % message.replace("\n", " "))


def oom_kills(data_path):
    """How many processes of the container the kernel's OOM killer has killed (None: not
    known); :meth:`minins.cgroups.base.Manager.oom_kills`."""
    st, mgr = _require(data_path, ("running", "paused", "created"), "watch")
    if mgr is None:
        return None
    try:
        return mgr.oom_kills()
    except OSError:
        return None


def update(data_path, fields):
    """``runc update``: set the cgroup limits ``fields`` (:class:`minins.config.Cgroup` field
    name -> value, from :func:`minins.oci.resources.to_cgroup`) on a container that runs,
    through :func:`minins.cgroups.update` (unset fields stay as they are). The limits live
    in the kernel; the configuration recorded in the state is the one it was created with."""
    st, mgr = _require(data_path, ("running", "paused", "created"), "update")
    if mgr is None:
        raise StateError("cannot update container %s: it has no cgroups" % st.get("id"))
    from . import cgroups

    cgroups.update(mgr, fields, "linux.resources")


def stop(data_path, timeout=10.0, sig=None):
    """``sig`` to the init (``None``: the configuration's ``stop_signal``, else SIGTERM),
    then SIGKILL when it has not exited after ``timeout`` seconds (podman's default, 10);
    returns once the init is gone. A container that is already stopped is success; a
    ``created`` one (its command never ran) gets SIGKILL at once."""
    try:
        st, pidfd = _statecheck.pin_running(data_path)
    except StateError:
        st = _statecheck.load(data_path)
        if status(st) == "stopped":
            return
        raise
    if sig is None:
        sig = stop_signal(st)
    from . import libc

    try:
        mgr = _manager(st)
        if status(st, mgr) == "created":
            # The init is still ours, blocked on exec.fifo, without a handler (PID 1 ignores
            # SIGTERM): the command never ran and has no grace period to use.
            sig, timeout = 9, 0
        try:
            libc.pidfd_send_signal(pidfd, sig)
        except SyscallError as e:
            if e.errno != errno.ESRCH:
                raise
            return
        if mgr is not None and status(st, mgr) == "paused":
            mgr.thaw()  # a frozen task cannot act on the signal
        if _poll(pidfd, timeout):
            return
        try:
            libc.pidfd_send_signal(pidfd, 9)
        except SyscallError as e:
            if e.errno != errno.ESRCH:
                raise
            return
        _thaw_if_frozen(mgr)
        if not _poll(pidfd, KILL_WAIT):
            raise StateError("container %s did not die within %.0f s of SIGKILL"
                             % (st.get("id"), KILL_WAIT))
    finally:
        os.close(pidfd)


KILL_WAIT = 10.0


def list_containers(state_root=None):
    """Every container under the state root, with its derived status. A state file that
    cannot be read gives a row with ``error``; one the checks refuse (see
    :mod:`minins.statecheck`) a row with ``error`` and ``refused``: neither hides the
    others."""
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
            if os.path.isdir(path) and not name.startswith(".") and _bare_state_dir(path):
                # a start that crashed before its first state write: delete removes it
                out.append({"id": name, "pid": 0, "status": "stopped", "data_path": path,
                            "created": ""})
            continue
        try:
            _state.load(path)  # readable at all? (a refusal by the checks is another matter)
        except (MininsError, OSError) as e:  # one unreadable container hides no other
            if not os.path.exists(os.path.join(path, _state.STATE_FILE)):
                continue  # removed meanwhile: the container is gone, nothing is wrong
            out.append({"id": name, "pid": 0, "status": "unknown", "data_path": path,
                        "created": "", "error": str(e)})
            continue
        try:
            out.append(describe(path))
        except (MininsError, OSError) as e:
            if not os.path.exists(os.path.join(path, _state.STATE_FILE)):
                continue
            out.append({"id": name, "pid": 0, "status": "unknown", "data_path": path,
                        "created": "", "error": str(e), "refused": True})
    return out
