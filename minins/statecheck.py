"""A state file is input: check it against the kernel before acting on it.

``state.json`` names a pid to signal, namespaces to join and cgroup directories to freeze,
kill and remove. A file that someone else wrote, or that was edited, must not make minins
signal a host process, join the host's namespaces or remove directories that are not the
container's cgroups (issue 10, section 3). :func:`load` reads the file and
:func:`verify` refuses, with one line naming the field (:class:`~minins.errors.StateError`,
exit 125 on the command line), before anything is signalled, frozen, joined or removed:

1. **Ownership** (``data_path``, ``state.json``): the data path and the state file belong to
   the caller (the effective uid) and are not writable by group or others; the state file is
   a regular file, not a symlink. runc keeps its state directory 0700 for the same reason.
   Everything below only makes sense once nobody else can have written the file.
2. **Cgroups** (``cgroup_paths.KEY``): each path is absolute, normalised (no ``.``, ``..``
   or doubled ``/``) and free of symlinks; it lies strictly below the mount point of a
   mounted cgroup hierarchy of the right kind (``/proc/self/mountinfo``: ``cgroup2`` for
   ``unified``, a v1 ``cgroup`` mount with that controller otherwise), and no other
   filesystem is mounted over it; its last component is the container's cgroup name
   (``config.cgroups.name``) or its id; it is neither the caller's own cgroup nor one of its
   ancestors; and, when it exists, statfs(2) says it is on cgroupfs (``CGROUP_SUPER_MAGIC``
   or ``CGROUP2_SUPER_MAGIC``). A path that no longer exists is accepted: nothing can be
   done to it. With the systemd driver (``cgroup_driver`` ``systemd-v1``/``systemd-v2``)
   the cgroup is the scope: ``cgroup_unit`` must be the container's own scope,
   ``<scope_prefix>-<name or id>.scope`` (``minins`` without a prefix in the config), and
   the paths' last component is that unit; ``delete`` stops the unit it names, so a forged
   one could stop any unit of the host. The cgroupfs driver records no unit.
3. **The init** (``init_pid``), when the pid is alive with the recorded start time (a
   stale one is already treated as stopped and never signalled): it is in every recorded
   cgroup or below it (``/proc/PID/cgroup``); and for every namespace the container made
   for itself (``pid_namespace``, ``user_namespace``, and each ``config.namespaces`` entry
   without a path) its namespace differs from the caller's (the nsfs inodes of
   ``/proc/PID/ns/*`` and ``/proc/self/ns/*``); with its own PID namespace it is PID 1 there
   (the last field of ``NSpid`` in ``/proc/PID/status``); with a PID namespace joined by
   ``path`` it is not PID 1 (that namespace's init is another's) but it is in that
   namespace (the nsfs inode of ``path``, while it opens). A state that ties a live process
   to no cgroup and no namespace of its own is refused: nothing tells it from a host process.
   An init that someone moved out of its recorded cgroup (the cgroup's owner may: runc and
   crun go on) is still the container's when a namespace of the container's own ties it,
   and the recorded cgroup (and every cgroup below it) holds no process outside those
   namespaces of the init: then the cgroup named after the container is empty or holds
   only the container's processes, and freezing, signalling or removing it touches no one
   else's (:func:`_moved_out`).

Removal from a state file goes through :data:`minins.cgroups.fs.CHECKED`, the cgroupfs seam
that :func:`minins.cgroups.load_manager` uses by default (and :func:`safe_remove_cgroup`):
only ``rmdir``, bottom-up, only directories on cgroupfs, never through a symlink, never
across a filesystem boundary.

Man pages: statfs(2) (the magic numbers), proc(5) (``mountinfo``, ``cgroup``, ``ns``,
``status``), namespaces(7), cgroups(7).
"""
import errno as _errno
import os
import stat as _stat

from . import state as _state
from .errors import StateError, SyscallError

UNIFIED = "unified"

# /proc/PID/ns/<name> of each config namespace type
_NS_NAMES = {"NEWUSER": "user", "NEWIPC": "ipc", "NEWUTS": "uts", "NEWNET": "net",
             "NEWPID": "pid", "NEWCGROUP": "cgroup", "NEWNS": "mnt"}


def load(data_path, proc="/proc"):
    """:func:`minins.state.load` of ``data_path``, then :func:`verify`; the state dict.
    The ownership checks run before the file is read."""
    check_owner(data_path)
    st = _state.load(data_path)
    verify(st, data_path, proc=proc, owner=False)
    return st


def verify(state, data_path, *, proc="/proc", owner=True):
    """Refuse ``state`` (a dict from :func:`minins.state.load` of ``data_path``) unless it
    matches the kernel (see the module docstring). Raises :class:`StateError` whose one-line
    message names the field; returns ``None``. ``proc``: where procfs is mounted.
    ``owner=False`` skips the ownership checks (done already by :func:`load`)."""
    if owner:
        check_owner(data_path)
    where = os.path.join(data_path, _state.STATE_FILE)
    check_cgroup_unit(state, data_path, where)
    paths = state.get("cgroup_paths") or {}
    mounts = read_mounts(proc) if paths else None
    if paths:
        check_cgroup_paths(state, data_path, paths, proc, where, mounts)
    if _state.init_alive(state, proc):
        if not paths and not own_namespaces(state):
            _refuse(where, "init_pid", "process %d is tied to no cgroup and no namespace of "
                    "its own: it cannot be told from a host process" % state["init_pid"])
        check_init(state, paths, proc, where, mounts)


def _refuse(where, field, message):
    raise StateError("%s: %s: %s" % (where, field, message))


# --- 1. ownership ---------------------------------------------------------------------------

def check_owner(data_path):
    """The data path and its state file belong to the caller and only the caller can write
    them; the state file is a regular file, not a symlink. A missing state file is left to
    :func:`minins.state.load` to report."""
    euid = os.geteuid()
    try:
        d = os.stat(data_path)
    except FileNotFoundError:
        return  # state.load says "no container state at ..."
    except OSError as e:
        raise StateError("%s: data_path: cannot stat: %s" % (data_path, e.strerror)) from None
    _check_mode(data_path, "data_path", d, euid, want_dir=True)
    path = os.path.join(data_path, _state.STATE_FILE)
    try:
        f = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StateError("%s: cannot stat: %s" % (path, e.strerror)) from None
    _check_mode(path, _state.STATE_FILE, f, euid, want_dir=False)


def _check_mode(path, field, st, euid, want_dir):
    if want_dir and not _stat.S_ISDIR(st.st_mode):
        _refuse(path, field, "is not a directory")
    if not want_dir and not _stat.S_ISREG(st.st_mode):
        _refuse(path, field, "is not a regular file (a symlink or special file is refused)")
    if st.st_uid != euid:
        _refuse(path, field, "belongs to uid %d, not to the caller (uid %d); only the "
                "caller's own state is trusted" % (st.st_uid, euid))
    if st.st_mode & 0o022:
        who = {0o022: "group and others", 0o020: "group", 0o002: "others"}[st.st_mode & 0o022]
        _refuse(path, field, "is writable by %s (mode %04o); a state that others can write "
                "is not trusted (chmod go-w)" % (who, st.st_mode & 0o7777))


# --- 2. cgroup paths ------------------------------------------------------------------------

def read_mounts(proc="/proc"):
    """``[(mount point, fstype, mount root, super options)]`` of every mount in our mount
    namespace, in ``/proc/self/mountinfo`` order (a later mount on the same point hides the
    earlier)."""
    from .cgroups.discovery import parse_mountinfo

    with open("%s/self/mountinfo" % proc) as f:
        return parse_mountinfo(f.read(), fstypes=None)


def mount_of(path, mounts):
    """The mount ``path`` lies on: the last mount whose point is ``path`` or a parent."""
    best = None
    for m in mounts:
        point = m[0]
        if path == point or point == "/" or path.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best[0]):
                best = m
    return best


def _below(path, top):
    """Is ``path`` ``top`` or below it?"""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _proc_cgroups(text):
    """``{controller or "unified": path}`` from a ``/proc/PID/cgroup`` text."""
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            out[UNIFIED] = parts[2]
            continue
        for name in parts[1].split(","):
            if name:
                out[name] = parts[2]
    return out


def _absolute(mount, rel):
    """The directory of the cgroup ``rel`` (as ``/proc/PID/cgroup`` shows it) under
    ``mount``; ``None`` when it is outside what that mount shows."""
    point, _fstype, root, _opts = mount
    root = root.rstrip("/")
    if root:
        if not _below(rel, root):
            return None
        rel = rel[len(root):]
    rel = rel.strip("/")
    return point.rstrip("/") + "/" + rel if rel else point


def _of_hierarchy(key, mount):
    """Is ``mount`` of ``key``'s hierarchy: cgroup2 for ``unified``, else a v1 cgroup mount
    whose super options name the controller?"""
    if key == UNIFIED:
        return mount[1] == "cgroup2"
    return mount[1] == "cgroup" and key in mount[3]


def cgroup_names(state, data_path):
    """The last path component a container's cgroup may have: its cgroup name from the
    config, or its id (what minins names a cgroup when the config gives no name); with the
    systemd driver, the scope unit named after one of them (see :func:`check_cgroup_unit`)."""
    names = set()
    cg = (state.get("config") or {}).get("cgroups")
    if isinstance(cg, dict) and isinstance(cg.get("name"), str) and cg["name"]:
        names.add(cg["name"].rstrip("/").rsplit("/", 1)[-1])
    names.add(state.get("id") or os.path.basename(data_path.rstrip("/")))
    if _systemd_driver(state):
        return set(_scope_units(state, names)) & {state.get("cgroup_unit")}
    return names


def _systemd_driver(state):
    driver = state.get("cgroup_driver")
    return isinstance(driver, str) and driver.startswith("systemd-")


def _scope_units(state, names):
    """The scope units the systemd driver names a container with one of ``names``."""
    from .cgroups import values
    from .errors import ConfigError

    cg = (state.get("config") or {}).get("cgroups")
    prefix = cg.get("scope_prefix") if isinstance(cg, dict) else None
    prefix = prefix if isinstance(prefix, str) and prefix else values.DEFAULT_SCOPE_PREFIX
    units = []
    for name in sorted(names):
        try:
            units.append(values.scope_name(prefix, name))
        except ConfigError:
            pass  # not a name the driver could have used
    return units


def check_cgroup_unit(state, data_path, where="state.json"):
    """``cgroup_unit`` is the container's own scope with the systemd driver, and empty
    with the cgroupfs driver (see the module docstring, 2)."""
    unit = state.get("cgroup_unit") or ""
    if not _systemd_driver(state):
        if unit:
            _refuse(where, "cgroup_unit", "%r, but the cgroup_driver %r uses no systemd unit"
                    % (unit, state.get("cgroup_driver") or "cgroupfs"))
        return
    names = set()
    cg = (state.get("config") or {}).get("cgroups")
    if isinstance(cg, dict) and isinstance(cg.get("name"), str) and cg["name"]:
        names.add(cg["name"])
    names.add(state.get("id") or os.path.basename(data_path.rstrip("/")))
    units = _scope_units(state, names)
    if unit not in units:
        _refuse(where, "cgroup_unit", "%r is not this container's systemd scope (it must be "
                "%s)" % (unit, " or ".join(units) or "a valid unit name"))


def check_cgroup_paths(state, data_path, paths, proc="/proc", where="state.json",
                       mounts=None):
    """Each of ``paths`` is this container's cgroup (see the module docstring, 2).
    ``mounts``: :func:`read_mounts`, read here when not given."""
    from .cgroups.fs import CGROUP_MAGICS, fs_magic

    mounts = mounts if mounts is not None else read_mounts(proc)
    with open("%s/self/cgroup" % proc) as f:
        own = _proc_cgroups(f.read())
    names = cgroup_names(state, data_path)
    for key in sorted(paths):
        field = "cgroup_paths.%s" % key
        path = paths[key]
        if not isinstance(path, str) or not path.startswith("/"):
            _refuse(where, field, "%r is not an absolute path" % (path,))
        parts = path.split("/")[1:]
        if ".." in parts or "." in parts or "" in parts:
            _refuse(where, field, "%s is not a normalised path (no '.', '..', '//' or "
                    "trailing '/')" % path)
        hier = mount_of(path, mounts)
        if hier is None or not _of_hierarchy(key, hier):
            _refuse(where, field, "%s is not inside a mounted %s hierarchy (it is on %s; see "
                    "/proc/self/mountinfo)" % (path, "cgroup v2" if key == UNIFIED else
                                               "cgroup v1 " + key,
                                               "%s at %s" % (hier[1], hier[0]) if hier
                                               else "no mount"))
        if path == hier[0]:
            _refuse(where, field, "%s is the root of a cgroup hierarchy, not a container's "
                    "cgroup" % path)
        if path.rsplit("/", 1)[-1] not in names:
            _refuse(where, field, "%s is not this container's cgroup (its last component "
                    "must be %s)" % (path, " or ".join(sorted(names))))
        mine = _absolute(hier, own.get(key, "/")) if key in own else None
        if mine is not None and _below(mine, path):
            _refuse(where, field, "%s holds the caller's own cgroup (%s)" % (path, mine))
        try:
            magic = fs_magic(path, symlinks=False)
        except SyscallError as e:
            if e.errno == _errno.ELOOP:
                _refuse(where, field, "%s goes through a symlink (to %s)"
                        % (path, os.path.realpath(path)))
            _refuse(where, field, "%s: %s" % (path, e))
        if magic is not None and magic not in CGROUP_MAGICS:
            _refuse(where, field, "%s is not a cgroup directory (filesystem magic %#x)"
                    % (path, magic))


# --- 3. the init ----------------------------------------------------------------------------

def check_init(state, paths, proc="/proc", where="state.json", mounts=None):
    """The live process ``init_pid`` is the container's: in its cgroups, in its
    namespaces."""
    pid = state["init_pid"]
    field = "init_pid"
    seen = {}  # nsfs ids read so far, (pid, ns name) -> id: each /proc/PID/ns/* once
    if paths:
        try:
            with open("%s/%d/cgroup" % (proc, pid)) as f:
                its = _proc_cgroups(f.read())
        except (FileNotFoundError, ProcessLookupError):
            return  # it exited since: nothing will be signalled
        mounts = mounts if mounts is not None else read_mounts(proc)
        for key in sorted(paths):
            hier = mount_of(paths[key], mounts)
            at = _absolute(hier, its[key]) if hier is not None and key in its else None
            if (at is None or not _below(at, paths[key])) and exiting(pid, proc):
                return  # an exiting task leaves its cgroups first (cgroup_exit): it is dying
            if at is None or not _below(at, paths[key]):
                _moved_out(state, pid, paths[key], key, at, proc, where, seen)
    for t, flag in own_namespaces(state):
        name = _NS_NAMES[t]
        try:
            theirs = _ns_id(pid, name, proc, seen)
            ours = _ns_id("self", name, proc, seen)
        except PermissionError:
            if os.geteuid() == 0:
                raise
            # Rootless, and the init is not dumpable yet (a created container): its ns files
            # are closed to us. Nothing is lost: we may only signal our own processes.
            continue
        if theirs is None or ours is None:
            continue  # a kernel without that namespace type, or the process exited
        if theirs == ours:
            _refuse(where, flag, "process %d is in the caller's %s namespace, but the "
                    "container has a %s namespace of its own" % (pid, name, name))
    joined = joined_pid_namespace(state)
    if joined is not None:
        _check_joined_pid_namespace(pid, joined, proc, where)
    if any(t == "NEWPID" for t, _f in own_namespaces(state)):
        nspid = _nspid(pid, proc)
        if nspid is not None and nspid[-1] != 1:
            _refuse(where, "pid_namespace", "process %d is pid %d in its PID namespace, "
                    "not the container's init (pid 1)" % (pid, nspid[-1]))


def _ns_id(pid, name, proc, seen=None):
    """``(st_dev, st_ino)`` of ``/proc/PID/ns/NAME`` (``pid`` may be ``"self"``); ``None``
    when the process is gone or the kernel has no such namespace type (PermissionError
    passes). ``seen``: a dict of the answers so far, read first and filled."""
    if seen is not None and (pid, name) in seen:
        return seen[pid, name]
    try:
        st = os.stat("%s/%s/ns/%s" % (proc, pid, name))
    except (FileNotFoundError, ProcessLookupError):
        out = None
    else:
        out = st.st_dev, st.st_ino
    if seen is not None:
        seen[pid, name] = out
    return out


def _moved_out(state, pid, path, key, at, proc, where, seen=None):
    """The live init ``pid`` is not below its recorded cgroup ``path``: someone with the
    power to do so moved it (runtime-tools' ``delete_only_create_resources`` does, between
    create and start; runc and crun go on). Accepted only when (a) a namespace the
    container made for itself still ties the init to the container (checked by
    :func:`check_init` after this), and (b) ``path`` and every cgroup below it hold no
    process outside those namespaces of the init: the cgroup named after the container is
    then empty or the container's own, and signalling or removing it harms nobody else.
    Otherwise :class:`StateError`. ``seen``: :func:`_ns_id`'s cache, shared by the calls
    for each hierarchy of one check (a process is in every v1 hierarchy: its namespaces
    are read once)."""
    seen = {} if seen is None else seen

    def refuse(why):
        _refuse(where, "init_pid", "process %d is not in the container's cgroup %s "
                "(cgroup_paths.%s); it is in %s, and %s" % (pid, path, key, at, why))

    names = [_NS_NAMES[t] for t, _f in own_namespaces(state)]
    if not names:
        refuse("no namespace of the container's own ties it to the container")
    init_ns = {}
    for name in names:
        try:
            ns = _ns_id(pid, name, proc, seen)
        except PermissionError:
            ns = None  # rootless, an init not yet dumpable: the kernel limits us anyway
        if ns is not None:
            init_ns[name] = ns
    for dirpath, _dirs, _files in os.walk(path):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                members = [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # removed meanwhile
        for member in members:
            for name, ns in init_ns.items():
                try:
                    theirs = _ns_id(member, name, proc, seen)
                except PermissionError:
                    theirs = None
                if theirs is not None and theirs != ns:
                    refuse("the cgroup holds process %d, which is not in the container's "
                           "%s namespace" % (member, name))


def joined_pid_namespace(state):
    """The ``path`` of the PID namespace the container joined (a ``NEWPID`` entry of
    ``config.namespaces`` with a path), else ``None``."""
    namespaces = (state.get("config") or {}).get("namespaces")
    if isinstance(namespaces, list):
        for ns in namespaces:
            if isinstance(ns, dict) and ns.get("type") == "NEWPID":
                path = ns.get("path")
                return path if isinstance(path, str) and path else None
    return None


def own_pid_namespace(state):
    """Did the container make a PID namespace of its own (its init is pid 1 there, and
    killing it kills every process in it)? ``False`` when it shares the caller's or joined
    one by path."""
    return state.get("pid_namespace") is True and joined_pid_namespace(state) is None


def _check_joined_pid_namespace(pid, path, proc, where):
    """The init of a container that joined the PID namespace at ``path`` is in it (it is
    not pid 1 there: the namespace's init is someone else's). A ``path`` that no longer
    opens (its holder exited; that ends a PID namespace and its processes) leaves nothing
    to compare."""
    try:
        st = os.stat(path)
    except OSError:
        return
    theirs = _ns_id(pid, "pid", proc)
    if theirs is not None and theirs != (st.st_dev, st.st_ino):
        _refuse(where, "pid_namespace", "process %d is not in the PID namespace the "
                "container joined (%s)" % (pid, path))


PF_EXITING = 0x4  # include/linux/sched.h


def exiting(pid, proc="/proc"):
    """Is ``pid`` in do_exit (PF_EXITING in field 9 of /proc/PID/stat)? Such a task shows the
    root cgroup before it becomes a zombie: it is dying, not an impostor."""
    try:
        with open("%s/%d/stat" % (proc, pid), "rb") as f:
            stat = f.read()
    except OSError:
        return True  # gone already
    try:
        return bool(int(stat[stat.rindex(b")") + 2:].split()[6]) & PF_EXITING)
    except (ValueError, IndexError):
        return False


def own_namespaces(state):
    """``[(type, field)]``: the namespaces the state says the container made for itself."""
    out = {}
    if own_pid_namespace(state):
        out["NEWPID"] = "pid_namespace"
    if state.get("user_namespace") is True:
        out["NEWUSER"] = "user_namespace"
    namespaces = (state.get("config") or {}).get("namespaces")
    if isinstance(namespaces, list):
        for i, ns in enumerate(namespaces):
            if isinstance(ns, dict) and isinstance(ns.get("type"), str) and \
                    ns["type"] in _NS_NAMES and not ns.get("path"):
                out.setdefault(ns["type"], "config.namespaces[%d]" % i)
    return sorted(out.items())


def _nspid(pid, proc):
    try:
        with open("%s/%d/status" % (proc, pid)) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None  # gone, or a kernel before 4.1


# --- removal --------------------------------------------------------------------------------

def safe_remove_cgroup(path, timeout=None, busy_pids=None):
    """Remove the cgroup ``path`` and the cgroups below it, bottom-up, with rmdir(2) only,
    through :data:`minins.cgroups.fs.CHECKED` (only directories on cgroupfs, on their
    parent's filesystem, never through a symlink); EBUSY is retried as
    :func:`minins.cgroups.fs.remove_tree` does (``timeout``: its default bound).
    :class:`StateError` when ``path`` or anything below it is not such a directory."""
    from .cgroups import fs

    return fs.remove_tree(fs.CHECKED, path, fs.REMOVE_TIMEOUT if timeout is None else timeout,
                          busy_pids)


__all__ = ["load", "verify", "pin_running", "check_owner", "check_cgroup_unit",
           "check_cgroup_paths", "check_init",
           "safe_remove_cgroup"]


def pin_running(data_path):
    """The container's state, checked against the kernel, with its init pinned:
    ``(state, pidfd)``. :class:`StateError` when it is not running (or not there)."""
    from . import libc

    st = load(data_path)  # a state file is input: checked against the kernel
    pid = st["init_pid"]
    if pid <= 0:
        cid = st.get("id", data_path)
        if _state.runtime_alive(st):
            raise StateError("container %s is still being created" % cid)
        # the process creating it died before the init existed: `list` shows it stopped
        raise StateError("container %s is stopped (the process creating it died before its "
                         "init existed): minins delete %s removes it" % (cid, cid))
    try:
        pidfd = libc.pidfd_open(pid)
    except SyscallError as e:
        if e.errno == _errno.ESRCH:
            raise StateError("container %s is not running (its init %d has exited)"
                             % (st.get("id", data_path), pid)) from None
        raise
    if not _state.init_alive(st):
        os.close(pidfd)
        raise StateError("container %s is not running (pid %d is no longer its init)"
                         % (st.get("id", data_path), pid))
    return st, pidfd
