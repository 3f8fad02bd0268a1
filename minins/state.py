"""A running container's state: ``state.json`` in its data path, and the facts behind it.

The file keeps the seed's JSON names (``init_pid``, ``init_start_time``, ``network_state``,
``cgroup_paths``) plus ``id``, ``created``, ``root_fs``, ``data_path``, ``pid_namespace``,
``user_namespace``, ``labels``, ``runtime_pid`` and ``config`` (the container.json the
container was made from, which ``minins exec`` needs). It is written atomically -- a
temporary file in the same directory, fsync, rename -- so a reader sees the old file or the
new one, never a part; and it is removed when the container is gone. (The directory is not
fsynced: the state of running containers lives in /run and means nothing after a reboot.)

A state file is a claim, not a fact: :func:`init_alive` checks that the pid still belongs to
the same process by comparing its start time (field 22 of ``/proc/PID/stat``), so a reused pid
is never mistaken for the container.
"""
import errno
import os
import stat as _stat

from .errors import ConfigError, StateError, SyscallError

STATE_FILE = "state.json"

_REQUIRED = {"init_pid": int, "init_start_time": str}
_OPTIONAL = {"id": str, "created": str, "root_fs": str, "data_path": str,
             "network_state": dict, "cgroup_paths": dict, "cgroup_driver": str,
             "cgroup_unit": str, "pid_namespace": bool,
             "user_namespace": bool, "labels": list, "runtime_pid": int,
             "runtime_start_time": str, "detached": bool, "config": dict,
             # new (OCI: a container made from a bundle by runc's create; minins.runc)
             "bundle": str, "annotations": dict, "owner": str, "hooks": dict}


def default_state_root():
    """``/run/minins`` for root; ``$XDG_RUNTIME_DIR/minins`` for an unprivileged user."""
    if os.geteuid() != 0:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg:
            return os.path.join(xdg, "minins")
        return "/tmp/minins-%d" % os.geteuid()
    return "/run/minins"


def locate(cid=None, state_dir=None, state_root=None):
    """``(id, state dir)`` of a container: the state dir is ``<state root>/<id>``, so that
    the id and the place of its state are one thing. ``state_dir`` (``--data-path``) names
    both at once (its last component is the id, its parent the state root); an ``id`` or a
    ``state_root`` that disagrees with it is refused. Without either, a new random id."""
    if state_dir is not None:
        if not state_dir:
            raise ConfigError("--data-path", "must not be empty")
        state_dir = os.path.abspath(state_dir)
        name = os.path.basename(state_dir)
        validate_id(name, "--data-path")
        if cid is not None and cid != name:
            raise ConfigError("--id", "%r disagrees with --data-path %s, whose container id is "
                              "%r" % (cid, state_dir, name))
        if state_root and os.path.abspath(state_root) != os.path.dirname(state_dir):
            raise ConfigError("--data-path", "%s is not in the state root %s (--root)"
                              % (state_dir, os.path.abspath(state_root)))
        return name, state_dir
    if cid is None:
        cid = os.urandom(6).hex()
    validate_id(cid)
    return cid, os.path.join(os.path.abspath(state_root or default_state_root()), cid)


def validate_id(cid, field="--id"):
    """A container id names a directory: letters, digits and ``_ . + -``, not ``.``/``..``."""
    from .errors import ConfigError

    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")
    if not cid or len(cid) > 128 or cid in (".", "..") or not set(cid) <= ok:
        raise ConfigError(field, "container id %r must be 1-128 characters of letters, digits "
                          "and _ . + - (not . or ..)" % cid)
    return cid


def proc_start_time(pid, proc="/proc"):
    """Field 22 of ``/proc/PID/stat`` (clock ticks after boot), as the string the seed saved;
    ``None`` when there is no such process."""
    try:
        with open("%s/%d/stat" % (proc, pid), "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = stat[stat.rindex(b")") + 2:].split()
    return rest[19].decode()


def proc_state(pid, proc="/proc"):
    """The one-letter state of a process (R, S, Z, ...) or ``None``."""
    try:
        with open("%s/%d/stat" % (proc, pid), "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3].decode()


def init_alive(state, proc="/proc"):
    """Is the init of ``state`` still the same living process (not a zombie)?"""
    pid = state["init_pid"]
    if pid <= 0:
        return False
    if proc_start_time(pid, proc) != state["init_start_time"]:
        return False
    return proc_state(pid, proc) not in (None, "Z", "X")


def save(data_path, state):
    """Write ``state`` to ``data_path/state.json`` atomically and durably."""
    import json

    write_atomic(os.path.join(data_path, STATE_FILE), json.dumps(state, indent=2) + "\n")


# statfs(2)'s f_type of the filesystems whose files live in memory only (linux/magic.h): an
# fsync there writes nothing and the state is lost with the host anyway.
TMPFS_MAGIC = 0x01021994
RAMFS_MAGIC = 0x858458F6
_MEMORY_FS = (TMPFS_MAGIC, RAMFS_MAGIC)


def needs_fsync(fd):
    """Is the file ``fd`` on a filesystem where ``fsync`` makes it durable (not a tmpfs or a
    ramfs, like ``/run`` on most hosts)? Where statfs(2) cannot tell, yes."""
    from . import libc

    try:
        return libc.fstatfs_type(fd) not in _MEMORY_FS
    except SyscallError:
        return True


def write_atomic(path, text, mode=0o600):
    """Replace ``path`` by a file holding ``text``: written to a temporary file next to it,
    then renamed over it (rename(2) is atomic: a reader or a crash sees the old file or the
    new one, never half of one). On a disk it is fsync'ed before the rename, so that after a
    power cut the name holds whole contents; on a tmpfs or ramfs (:func:`needs_fsync`), where
    nothing survives the host, the fsync is skipped (0.5-7 ms on this kind of machine)."""
    directory = os.path.dirname(path) or "."
    tmp = "%s/.%s.%d.tmp" % (directory, os.path.basename(path), os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            os.write(fd, text.encode())
            if needs_fsync(fd):
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        unlink(tmp)
        raise


def unlink(path):
    """Remove ``path``; one that is gone already is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove(data_path):
    unlink(os.path.join(data_path, STATE_FILE))


def remove_dir(data_path):
    """Remove a state dir and the few files minins keeps in it (state.json, its temporary
    files, the ``created`` marker, ``exec.fifo``); nothing else, and no subdirectory."""
    try:
        names = os.listdir(data_path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise SyscallError(e.errno, "list", data_path) from None
    for name in names:
        if name in (STATE_FILE, "created", "exec.fifo") or name.startswith("." + STATE_FILE):
            unlink(os.path.join(data_path, name))
    try:
        os.rmdir(data_path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise SyscallError(e.errno, "rmdir", data_path) from None


def runtime_alive(state, proc="/proc"):
    """Is the runtime that wrote ``state`` (its pid *and* start time) still running?"""
    pid, started = state.get("runtime_pid"), state.get("runtime_start_time")
    if not pid or not started:
        return False
    return proc_start_time(pid, proc) == started and proc_state(pid, proc) not in ("Z", "X")


# a state file is a few KiB; anything far larger is not one of ours
MAX_STATE_BYTES = 16 << 20


def load(data_path):
    """Read and check ``data_path/state.json``; :class:`StateError` names what is wrong."""
    path = os.path.join(data_path, STATE_FILE)
    # O_NOFOLLOW and O_NONBLOCK, then a regular file only: a FIFO or a symlink to
    # /dev/zero in its place would otherwise block or fill memory for good (list hung)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise StateError("no container state at %s: container does not exist" % data_path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StateError("%s: is a symlink, not a regular file" % path) from None
        raise StateError("cannot read %s: %s" % (path, e.strerror)) from None
    try:
        if not _stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError("%s: is not a regular file" % path)
        with os.fdopen(fd, "rb") as f:
            fd = -1
            raw = f.read(MAX_STATE_BYTES + 1)
    except OSError as e:
        raise StateError("cannot read %s: %s" % (path, e.strerror)) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(raw) > MAX_STATE_BYTES:
        raise StateError("%s: larger than %d bytes" % (path, MAX_STATE_BYTES))
    from .config import parse_json
    from .errors import ConfigError

    try:
        state = parse_json(raw)
    except ConfigError as e:
        raise StateError("%s: %s" % (path, e.message)) from None
    if not isinstance(state, dict):
        raise StateError("%s: must hold a JSON object" % path)
    for key, typ in list(_REQUIRED.items()) + list(_OPTIONAL.items()):
        if key not in state:
            if key in _REQUIRED:
                raise StateError("%s: %s: missing" % (path, key))
            continue
        value = state[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise StateError("%s: %s: must be %s" % (path, key, typ.__name__))
    for key, value in state.get("cgroup_paths", {}).items():
        if not isinstance(value, str) or not value.startswith("/"):
            raise StateError("%s: cgroup_paths.%s: must be an absolute path" % (path, key))
    for key, value in state.get("annotations", {}).items():
        if not isinstance(value, str):
            raise StateError("%s: annotations.%s: must be a string" % (path, key))
    if "hooks" in state:
        from .hooks import check

        check(state["hooks"], "%s: hooks" % path)
    if state["init_pid"] < 0:
        raise StateError("%s: init_pid: must not be negative (0: not yet created)" % path)
    state.setdefault("data_path", data_path)
    return state
