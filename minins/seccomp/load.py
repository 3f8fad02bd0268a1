"""Putting a profile in force: prepared by the runtime, installed by the container's process.

Two halves, so that the child does no compiling and imports nothing:

* :func:`prepare` -- runtime side, before the fork: resolves the configuration's ``seccomp``
  (``"default"`` or an OCI profile), compiles it (or reads the compiled program from the
  cache), checks that the kernel has the actions it uses, and connects to ``listenerPath``
  when an action is SCMP_ACT_NOTIFY. Returns a :class:`Prepared`, or ``None`` without a profile.
* :func:`seccomp_step` -- child side, called twice on the way to execve, installs the filter
  at runc's place (``standard_init_linux.go``, ``setns_init_linux.go``): with
  ``no_new_privileges`` as late as possible, right before execve (phase ``"exec"``);
  without it while the process still holds CAP_SYS_ADMIN, before the capabilities are
  dropped (phase ``"privileged"``, the start of :func:`minins.security.finalize`), since a
  filter without no_new_privs needs CAP_SYS_ADMIN.

Loading (seccomp(2)): ``seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`` with the profile's
flags (TSYNC, LOG, SPEC_ALLOW) and SECCOMP_FILTER_FLAG_NEW_LISTENER when NOTIFY is used; on a
kernel without seccomp(2) (ENOSYS, before 3.17) and no flags, ``prctl(PR_SET_SECCOMP,
SECCOMP_MODE_FILTER, &prog)``.

NOTIFY (seccomp_unotify(2), OCI config-linux.md "seccomp", runc docs/seccomp.md... as runc
does it): the listener descriptor is sent with SCM_RIGHTS over a SOCK_STREAM connection to
``listenerPath`` (opened by the runtime before the fork, so the path is the host's), together
with the OCI *container process state* as JSON::

    {"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": <host pid>,
     "metadata": <listenerMetadata>,
     "state": {"ociVersion": "1.0.2", "id": <id>, "status": "creating", "pid": <host pid>,
               "bundle": <bundle>, "annotations": {<labels as key: value>}}}

A kernel without SECCOMP_RET_USER_NOTIF (5.0) is refused by :func:`prepare`, as is one
without SECCOMP_RET_KILL_PROCESS or SECCOMP_RET_LOG (4.14) when the profile uses them.

Cache: compiling the default profile takes ~10 ms of Python; the packed program is kept in
``<cache_dir>/<key>.bpf``, the key naming everything the program depends on: a format
version, a stamp of the size and mtime of minins's seccomp files (:func:`_code_stamp`) and
the native architecture, then for ``"default"`` the capability mask and the kernel release (spelled out: importing hashlib would cost more
than the 1 ms a start may spend), for an OCI profile the SHA-256 of its JSON. Written
atomically, mode 0600, in a directory only we can write (anything else is ignored). A cache
hit costs two directory listings, about 15 stats (the code stamp) and a read of a few KiB.
"""
import os as _os

from ..errors import ConfigError, SyscallError

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_CACHE_VERSION = "v1"
OCI_VERSION = "1.0.2"

__all__ = ["Prepared", "prepare", "seccomp_step", "install", "resolve_profile"]


def to_json(prep):
    """``prep`` as JSON-able data for a re-executed child (the listener by descriptor, which
    must then be inheritable); :func:`from_json` rebuilds it."""
    return {"program": prep.program.hex(), "flags": prep.flags,
            "no_new_privs": prep.no_new_privs, "state": prep.state, "metadata": prep.metadata,
            "listener": prep.listener.fileno() if prep.listener is not None else None}


def from_json(data):
    listener = None
    if data.get("listener") is not None:
        import socket

        listener = socket.socket(fileno=data["listener"])
        listener.set_inheritable(False)
    return Prepared(bytes.fromhex(data["program"]), data["flags"], data["no_new_privs"],
                    listener, data.get("state"), data.get("metadata", ""))


class Prepared:
    """What the child needs to install a filter (built by :func:`prepare` before the fork).

    ``program``: packed ``struct sock_filter[]``; ``flags``: SECCOMP_FILTER_FLAG_* bits;
    ``no_new_privs``: the process sets PR_SET_NO_NEW_PRIVS (decides the phase);
    ``listener``: a connected socket to ``listenerPath`` (NOTIFY) or ``None``;
    ``state``/``metadata``: what goes with the listener.
    """

    def __init__(self, program, flags, no_new_privs, listener=None, state=None, metadata=""):
        self.program = program
        self.flags = flags
        self.no_new_privs = no_new_privs
        self.listener = listener
        self.state = state or {}
        self.metadata = metadata
        self.installed = False
        self._fprog = self._buf = None

    def close(self):
        """Runtime side, after the fork: the connection now belongs to the child."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None


def _native():
    from .. import arch
    from . import tables

    return tables.NATIVE[arch.current()]


def resolve_profile(config, native=None, kernel=None):
    """The OCI profile a configuration asks for: ``None`` (no filter), the resolved default
    profile for ``config.seccomp == "default"``, or the profile itself."""
    sc = getattr(config, "seccomp", None)
    if sc is None:
        return None
    if sc == "default":
        from . import default

        return default.default_profile(config.capabilities, native or _native(), kernel)
    return sc


def _cache_key(config, native, kernel):
    """The cache file's name. The default profile's is spelled out (no hashing: importing
    hashlib costs more than a start may spend); an OCI profile's is its JSON's SHA-256."""
    sc = config.seccomp
    if sc == "default":
        from .. import caps as _caps

        mask = _caps.mask_of(config.capabilities)
        return "default-%s-%s-%x-%s-%s" % (_CACHE_VERSION, native, mask, _code_stamp(),
                                           _safe(kernel))
    import hashlib

    from json import dumps

    h = hashlib.sha256(_CACHE_VERSION.encode() + b"\0" + _code_stamp().encode())
    h.update(b"\0" + native.encode())
    h.update(b"\0" + dumps(sc.to_json(), indent=None).encode())
    return "oci-" + h.hexdigest()


def _code_stamp():
    """The size and mtime of every file the program is made from (default.json, the compiler,
    the profile model, the tables), folded into one number: an upgraded or edited minins must
    not keep loading the programs an older compiler made. Stats only, no hashing of contents
    (a cache hit must stay cheap); ``hash`` of a tuple of ints is the same in every process."""
    here = _os.path.dirname(__file__)
    stamps = []
    for d in (here, _os.path.join(here, "tables")):
        for name in sorted(_os.listdir(d)):
            if name.endswith((".py", ".json")):
                st = _os.stat(_os.path.join(d, name))
                stamps += [len(name), st.st_size, st.st_mtime_ns]
    return "%x" % (hash(tuple(stamps)) & 0xFFFFFFFFFFFFFFFF)


def _safe(text):
    return "".join(c if c.isalnum() or c in "._+" else "_" for c in text)[:100]


def _trusted(directory):
    """A cache directory only we can write to: a planted program would be a filter of an
    attacker's choosing."""
    try:
        st = _os.lstat(directory)
    except OSError:
        return False
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == _os.geteuid() and \
        not st.st_mode & 0o022


def _read_cache(path):
    if not _trusted(_os.path.dirname(path)):
        return None
    try:
        fd = _os.open(path, _os.O_RDONLY | _os.O_CLOEXEC | _os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = _os.fstat(fd)
        if st.st_uid != _os.geteuid() or st.st_mode & 0o022:
            return None
        data = _os.read(fd, 4096 * 8 + 1)
    finally:
        _os.close(fd)
    if not data or len(data) % 8 or len(data) > 4096 * 8:
        return None
    return data


def _write_cache(path, data):
    tmp = "%s.%d.tmp" % (path, _os.getpid())
    try:
        _os.makedirs(_os.path.dirname(path), mode=0o700, exist_ok=True)
        if not _trusted(_os.path.dirname(path)):
            return
        fd = _os.open(tmp, _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC | _os.O_CLOEXEC, 0o600)
        try:
            _os.write(fd, data)
        finally:
            _os.close(fd)
        _os.rename(tmp, path)
        _prune(_os.path.dirname(path))
    except OSError:  # a cache that cannot be written only costs time
        try:
            _os.unlink(tmp)
        except OSError:
            pass


_CACHE_FILES = 64


def _prune(directory):
    """Keep the newest :data:`_CACHE_FILES` programs (only after a miss, so never on the way
    of a cached start)."""
    names = [n for n in _os.listdir(directory) if n.endswith(".bpf")]
    if len(names) <= _CACHE_FILES:
        return
    aged = sorted(names, key=lambda n: _os.stat(_os.path.join(directory, n)).st_mtime_ns)
    for n in aged[:len(names) - _CACHE_FILES]:
        try:
            _os.unlink(_os.path.join(directory, n))
        except OSError:
            pass


def compiled(config, native=None, kernel=None, cache_dir=None):
    """``(profile, program bytes)`` for ``config.seccomp``, through the cache when
    ``cache_dir`` is given; ``profile`` is ``None`` on a cache hit for ``"default"``."""
    native = native or _native()
    kernel = kernel or _os.uname().release
    path = None
    if cache_dir:
        path = _os.path.join(cache_dir, _cache_key(config, native, kernel) + ".bpf")
        data = _read_cache(path)
        if data is not None:
            return (None if config.seccomp == "default" else config.seccomp), data
    from . import compiler

    prof = resolve_profile(config, native, kernel)
    data = compiler.pack(compiler.compile_profile(prof, native))
    if path:
        _write_cache(path, data)
    return prof, data


def prepare(config, *, container_id="", bundle="", native=None, cache_dir=None, lc=None):
    """Runtime side, before the fork: a :class:`Prepared` for ``config.seccomp``, or ``None``.

    Raises ConfigError when the profile cannot be compiled or the kernel lacks an action it
    uses, SyscallError when ``listenerPath`` cannot be reached."""
    if getattr(config, "seccomp", None) is None:
        return None
    prof, program = compiled(config, native, None, cache_dir)
    flags = 0
    listener = None
    state = {}
    if config.seccomp != "default":
        flags = prof.flag_bits()
        _check_actions(prof, lc)
        if prof.uses_notify():
            listener = _connect(prof.listenerPath)
            state = {"id": container_id, "bundle": bundle,
                     "annotations": dict(_label(x) for x in getattr(config, "labels", ()))}
    prep = Prepared(program, flags, bool(config.no_new_privileges), listener, state,
                    "" if prof is None else prof.listenerMetadata)
    _fprog(prep)
    return prep


def prepare_for(config, container_id, data_path, lc=None):
    """:func:`prepare` as the runtime calls it for ``create`` and ``exec``: the cache is
    ``<default state root>/.seccomp-cache`` (``/run/minins``, or ``$XDG_RUNTIME_DIR/minins``
    for an unprivileged user), shared by every container of this user whatever state root
    they use."""
    from .. import state

    return prepare(config, container_id=container_id, bundle=data_path,
                   cache_dir=_os.path.join(state.default_state_root(), ".seccomp-cache"),
                   lc=lc)


def _label(text):
    key, _, value = text.partition("=")
    return key, value


_NEEDS = (("SCMP_ACT_KILL_PROCESS", "4.14"), ("SCMP_ACT_LOG", "4.14"),
          ("SCMP_ACT_NOTIFY", "5.0"))


def _check_actions(prof, lc):
    """Ask the kernel (SECCOMP_GET_ACTION_AVAIL) for the newer actions the profile uses."""
    import ctypes
    import errno

    from . import profile as _p

    used = {prof.defaultAction} | {s.action for s in prof.syscalls}
    if lc is None:
        from .. import libc as lc
    for action, version in _NEEDS:
        if action not in used:
            continue
        value = ctypes.c_uint32(_p.ACTIONS[action])
        try:
            lc.seccomp(SECCOMP_GET_ACTION_AVAIL, 0, value, op="seccomp GET_ACTION_AVAIL")
        except SyscallError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise ConfigError("seccomp", "%s needs Linux %s or newer; this kernel does not "
                                  "have it" % (action, version)) from None
            raise


def _connect(path):
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SyscallError(e.errno, "connect seccomp listener", path) from None
    return s


# --- the child side --------------------------------------------------------------------------

def seccomp_step(ctx, phase):
    """Install ``ctx.seccomp`` (a :class:`Prepared` or ``None``) if ``phase`` is its place:
    ``"privileged"`` (before capabilities are dropped) without no_new_privileges, ``"exec"``
    (right before execve) with it. Uses ``ctx.lc`` for the system calls."""
    prep = getattr(ctx, "seccomp", None)
    if prep is None or prep.installed:
        return
    if (phase == "exec") != prep.no_new_privs:
        return
    install(prep, ctx.lc, _host_pid(ctx))


def _host_pid(ctx):
    """Our pid as the host sees it: in a new PID namespace the kernel wrote it at the shared
    slot (CLONE_PARENT_SETTID) when we were cloned; otherwise getpid()."""
    addr = getattr(ctx, "tid_addr", None)
    if getattr(ctx, "fork_into_pid_ns", getattr(ctx, "pid_ns", False)) and addr:
        import ctypes

        return ctypes.c_int32.from_address(addr).value
    return _os.getpid()


def _fprog(prep):
    """The ``struct sock_fprog`` for seccomp(2) (linux/filter.h: ``unsigned short len;
    struct sock_filter *filter``, laid out by struct's native alignment), built once by
    :func:`prepare` before the fork: the child only makes the system call."""
    if prep._fprog is None:
        import ctypes
        import struct

        prep._buf = ctypes.create_string_buffer(prep.program, len(prep.program))
        raw = struct.pack("@HP", len(prep.program) // 8, ctypes.addressof(prep._buf))
        prep._fprog = ctypes.create_string_buffer(raw, len(raw))
    return prep._fprog


def install(prep, lc, pid=None):
    """seccomp(2) (prctl(2) fallback) with the prepared program; then hand the listener to
    ``listenerPath``. Raises SyscallError."""
    fprog = _fprog(prep)
    try:
        fd = lc.seccomp(SECCOMP_SET_MODE_FILTER, prep.flags, fprog,
                        op="seccomp SET_MODE_FILTER")
    except SyscallError as e:
        if e.errno != 38 or prep.flags:  # ENOSYS: no seccomp(2) before Linux 3.17
            raise
        import ctypes

        lc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog),
                 op="prctl PR_SET_SECCOMP")
        fd = 0
    prep.installed = True
    if prep.listener is not None:
        _send_listener(prep, fd, pid if pid is not None else _os.getpid())


def _send_listener(prep, fd, pid):
    import socket
    import sys

    from json import dumps

    state = dict(prep.state, ociVersion=OCI_VERSION, status="creating", pid=pid)
    msg = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
           "metadata": prep.metadata, "state": state}
    try:
        prep.listener.sendmsg([dumps(msg, indent=None).encode()],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                fd.to_bytes(4, sys.byteorder, signed=True))])
    except OSError as e:
        raise SyscallError(e.errno, "send seccomp listener", "listenerPath") from None
    finally:
        _os.close(fd)
        prep.listener.close()
        prep.listener = None
