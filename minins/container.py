"""The host side of a container's life: the seed's ``Exec``, in separable steps.

:meth:`Container.create` does everything up to the point where the init would exec the
command: fork, namespaces, user-namespace maps, cgroups, the host side of the network, the
state file, and the whole in-container setup. :meth:`Container.start` releases the init to
exec. :meth:`Container.wait` waits for it, kills what is left of the container where it has no
PID namespace of its own, removes everything, and returns the exit code. :func:`run` is the
three in a row.

Every resource is registered on an undo stack the moment it exists; a failure at any step, on
either side of the sync channel, kills and reaps the init and unwinds the stack, and the error
names the step. The sync protocol is documented in :mod:`minins.sync`.
"""
import os

from . import _json
from . import config as _config
from . import fspath as _fspath
from . import idmap as _idmap
from . import init as _init
from . import libc as _libc
from . import namespaces as _ns
from . import security as _security
from . import state as _state
from . import sync
from .errors import ConfigError, ContainerError, MininsError, SyscallError
from .exitstatus import exit_code_from_status

CAP_SETGID = 6
SIGKILL = 9


def new_id():
    return os.urandom(6).hex()


class SharedPid:
    """A 32-bit slot in a MAP_SHARED page: a forked child clones with CLONE_PARENT_SETTID
    pointing at it, and the kernel writes the new pid where we can read it even if that child
    dies before it could tell us."""

    def __init__(self):
        import ctypes
        import mmap

        self._map = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        self._slot = ctypes.c_int32.from_buffer(self._map)
        self.address = ctypes.addressof(self._slot)

    @property
    def value(self):
        return self._slot.value

    def close(self):
        if self._map is not None:
            del self._slot
            self._map.close()
            self._map = None


def watch_pid(pid, lc=_libc):
    """A pidfd for ``pid``, or ``None`` on a kernel without pidfd_open (before 5.3)."""
    try:
        return lc.pidfd_open(pid)
    except OSError:
        return None


def _fileno(f):
    if f is None or isinstance(f, int):
        return f
    return f.fileno()


class Container:
    """One container. ``config`` is a validated :class:`minins.config.Config`; ``args`` the
    command and its arguments; ``stdin``/``stdout``/``stderr`` descriptors or file objects
    (``None``: inherit the runtime's). With ``config.tty`` the container gets a pty instead
    and :attr:`console_master` is its master side, to relay (:func:`minins.console.relay`)."""

    def __init__(self, config, args, *, id=None, data_path=None, state_root=None,
                 stdin=None, stdout=None, stderr=None, lc=_libc):
        if not args:
            raise ConfigError("args", "no command to run")
        self.config = config
        self.args = [os.fsdecode(a) for a in args]
        self.id = _state.validate_id(id) if id else new_id()
        self._own_data_path = not data_path  # <state root>/<id>: ours to make, exclusively
        self.data_path = data_path or os.path.join(state_root or _state.default_state_root(),
                                                   self.id)
        self.stdio = tuple(_fileno(f) for f in (stdin, stdout, stderr))
        self.console_master = None  # the pty master, with config.tty
        self._console_path = None
        self.lc = lc
        self.pid = None
        self.init_start_time = None
        self.network_state = {}
        self.cgroups = None
        self.state = None
        self._sock = None
        self._undo = []  # (name, function) in creation order
        self._status = None
        self._pid1 = None
        self._pid1fd = None
        self._tid = None
        self._ns_fds = []
        self._slave = None

    # --- the life cycle ----------------------------------------------------------------------

    def create(self):
        """Everything up to releasing the init (see the module docstring)."""
        try:
            self._create()
        except BaseException as e:
            self._fail(e)
            raise

    def _fail(self, exc):
        """Undo everything after ``exc``; a problem while undoing is kept on the exception
        (``cleanup_error``) and does not replace it."""
        if isinstance(exc, MininsError):
            exc.with_step(self._step)
        try:
            self.destroy()
        except Exception as cleanup:  # noqa: B902
            try:
                exc.cleanup_error = cleanup
            except AttributeError:
                pass

    def start(self, callback=None):
        """Let the init exec the command; returns once it has (or raises why it could not)."""
        try:
            self._step = "start"
            sync.send(self._sock, sync.START)
            kind, payload = sync.recv(self._sock)
            if kind == sync.ERROR:
                raise sync.error_from_payload(payload)
            if kind is not sync.EOF:
                raise ContainerError("sync: unexpected %s after START" % kind)
            self._close_sock()
            _unlink(os.path.join(self.data_path, "created"))
        except BaseException as e:
            self._fail(e)
            raise
        if callback is not None:
            callback()

    def wait(self):
        """Wait for the init, clean up everything, and return its exit code (128+N for a
        signal N)."""
        try:
            status = self._wait_init()
            if not self.config.has_namespace("NEWPID") and self.cgroups is not None:
                self.cgroups.kill_all()
            return exit_code_from_status(status)
        finally:
            self.destroy()

    def kill(self, sig=SIGKILL):
        """Signal the init. SIGKILL to a paused container thaws it: a frozen task cannot
        die, and the wait for it would never end."""
        if self.pid is not None and self._status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if sig == SIGKILL:
                self._thaw()

    def _thaw(self):
        if self.cgroups is not None:
            try:
                if self.cgroups.freezer_state() != "THAWED":
                    self.cgroups.thaw()
            except OSError:
                pass  # no freezer, or the cgroup is gone already

    def destroy(self):
        """Kill and reap the init if it still runs, then undo every step, newest first."""
        errors = []
        if self.pid is not None and self._status is None:
            self.kill(SIGKILL)
            self._thaw()
            try:
                self._wait_init()
            except OSError as e:
                errors.append(e)
        self._close_sock()
        while self._undo:
            name, undo = self._undo.pop()
            try:
                undo()
            except Exception as e:  # keep unwinding; report the first problem
                errors.append(e)
        if errors:
            raise errors[0]

    # --- create, step by step ----------------------------------------------------------------

    _step = "create"

    def _create(self):
        cfg = self.config
        self._step = "preflight"
        self._preflight()
        self._step = "fork"
        pid1 = self._fork()
        if cfg.cgroups is not None:
            # The intermediate joins the cgroups, so the init is born in them; the first
            # migration costs the kernel an RCU grace period, spent while the intermediate
            # is busy with its namespaces.
            self._step = "cgroups"
            self._setup_cgroups(pid1)
        self._step = "user namespace"
        if self._new_userns:
            sync.expect(self._sock, sync.USERNS_READY, self._pid1fd)
            self._write_id_maps(pid1)
            sync.send(self._sock, sync.USERNS_MAPPED)
        if cfg.cgroups is not None:
            sync.send(self._sock, sync.CGROUPS_JOINED)
        self._step = "namespaces"
        try:
            self.pid = sync.expect(self._sock, sync.INIT_PID, self._pid1fd).get("pid")
        except MininsError:
            if self._tid.value > 0:  # the intermediate died after cloning the init
                self.pid = self._tid.value  # destroy() kills and reaps it
            raise
        if not isinstance(self.pid, int) or self.pid <= 0:
            raise ContainerError("sync: INIT_PID without a valid pid")
        if self.pid != pid1:
            self._reap_intermediate()
        self.init_start_time = _state.proc_start_time(self.pid)
        if cfg.has_namespace("NEWUSER") and _bind_mounts(cfg) and os.geteuid() == 0:
            # (rootless: the init, running as our own uid, opens the sources itself)
            self._step = "mount sources"
            self._send_mount_sources()
        if cfg.networks:
            self._step = "network"
            from . import network

            self.network_state = network.create(cfg.networks, self.pid)
        self._step = "init"
        sync.send(self._sock, sync.RELEASE, {"network_state": self.network_state})
        # The state file is written while the init sets up (its fsync is off the critical
        # path); it exists before the command runs, which waits for START.
        self._step = "state"
        self._save_state()
        self._step = "init"
        sync.expect(self._sock, sync.SETUP_DONE)

    def _preflight(self):
        """Checks and preparations that create nothing on the host but the data path."""
        cfg = self.config
        if cfg.has_namespace("NEWNS"):
            root = cfg.root_fs
            if not root:
                raise ConfigError("root_fs", "not set (give --rootfs)")
            if not os.path.isdir(root):
                raise ConfigError("root_fs", "%s is not a directory" % root)
        if cfg.networks or cfg.routes:
            from . import network  # noqa: F401 - the init uses it after the fork
        if cfg.cgroups is not None:
            from . import cgroups  # noqa: F401
        self._ns_fds = _ns.open_paths(cfg, self.lc)
        self._undo.append(("namespace files", lambda: _ns.close(self._ns_fds)))
        if cfg.tty:
            self._open_console()
        self._make_data_path()

    def _make_data_path(self):
        """``<state root>/<id>`` is made with an exclusive mkdir: two starts with one id
        cannot both get it. A data path given by the caller may exist already, but must not
        hold another container's state."""
        parent = os.path.dirname(self.data_path.rstrip("/"))
        try:
            os.makedirs(parent, mode=0o711, exist_ok=True)
        except OSError as e:
            raise SyscallError(e.errno, "mkdir", e.filename or parent) from None
        try:
            os.mkdir(self.data_path, 0o711)
        except FileExistsError:
            held = os.path.exists(os.path.join(self.data_path, _state.STATE_FILE))
            if self._own_data_path or held:
                what = "--id" if self._own_data_path else "--data-path"
                name = self.id if self._own_data_path else self.data_path
                raise ConfigError(what, "%s is taken: a container exists at %s (if it is "
                                  "stopped, remove it with: minins delete %s)"
                                  % (name, self.data_path, name if self._own_data_path
                                     else "--data-path " + self.data_path)) from None
            self._undo.append(("state", lambda: _state.remove(self.data_path)))
            return
        except OSError as e:
            raise SyscallError(e.errno, "mkdir", self.data_path) from None
        self._undo.append(("data path", lambda: _rmtree_own(self.data_path)))

    def _open_console(self):
        from . import console

        master, path = console.open_pty(self.lc)
        self.console_master, self._console_path = master, path
        self._undo.append(("console", self._close_console))
        uid, gid = _idmap.get_host_root_uid(self.config), _idmap.get_host_root_gid(self.config)
        slave = console.open_slave(path, uid, gid)
        self.stdio = (slave, slave, slave)
        self._slave = slave

    def _close_console(self):
        for fd in (self.console_master, self._slave):
            if fd is not None:
                os.close(fd)
        self.console_master = self._slave = None

    def _close_slave(self):
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    @property
    def _new_userns(self):
        ns = self.config.namespace("NEWUSER")
        return ns is not None and not ns.path

    def _fork(self):
        cfg = self.config
        runtime_end, child_end = sync.socketpair()
        self._sock = runtime_end
        self._tid = SharedPid()
        self._undo.append(("pid slot", self._tid.close))
        ctx = _init.ChildContext(
            cfg, self.args, child_end, runtime_end, self._ns_fds,
            self.stdio if any(fd is not None for fd in self.stdio) else None,
            flags=cfg.clone_flags() & ~(_config.NAMESPACE_TYPES["NEWUSER"]
                                        | _config.NAMESPACE_TYPES["NEWCGROUP"]),
            pid_ns=cfg.has_namespace("NEWPID"), new_userns=self._new_userns, lc=self.lc)
        ctx.in_userns = cfg.has_namespace("NEWUSER")
        ctx.gid5_mapped = not ctx.in_userns or self._new_userns and \
            _idmap.host_id_from_mapping(5, cfg.gid_mappings) is not None
        ctx.console_path = self._console_path
        ctx.console = 0 if self._console_path else None
        ctx.cap_last_cap = _security.cap_last_cap()
        ctx.lsm = _security.lsm_state()
        ctx.wait_cgroups = cfg.cgroups is not None
        ctx.tid_addr = self._tid.address
        try:
            pid = self.lc.fork()
        except BaseException:
            child_end.close()
            raise
        if pid == 0:
            _init.stage1(ctx)  # never returns
        child_end.close()
        self._pid1 = pid
        self._undo.append(("intermediate", lambda: self._reap_intermediate(kill=True)))
        self._pid1fd = watch_pid(pid, self.lc)
        if self._pid1fd is not None:
            self._undo.append(("intermediate pidfd", lambda: os.close(self._pid1fd)))
        _ns.close(self._ns_fds)
        self._ns_fds = []
        self._close_slave()  # only the container holds the pty slave now
        return pid

    def _reap_intermediate(self, kill=False):
        """Reap the intermediate process once (never signal a pid after reaping it: it may
        belong to someone else by then). When it is the init itself, the init's own wait
        does that."""
        pid, self._pid1 = self._pid1, None
        if pid is None or pid == self.pid:
            return
        if kill:
            os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)

    def _send_mount_sources(self):
        """The one job left for host root with a user namespace (the seed's setup helper,
        libcontainer-system.md section 3): open the bind sources, which the container's
        mapped root may not be allowed to reach. A forked helper joins the init's mount
        namespace (a bind source must live in the mount namespace it is bound in), opens
        them there with our credentials, and hands them to the init over the sync socket."""
        r, w = os.pipe()
        try:
            pid = self.lc.fork()
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:
            _open_sources_for(self.config, self.pid, self._sock, w)  # never returns
        os.close(w)
        try:
            report = b""
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                report += chunk
        finally:
            os.close(r)
            _, status = os.waitpid(pid, 0)
        if report:
            raise sync.error_from_payload(_json.loads(report))
        if status != 0:
            raise ContainerError("the mount-source helper exited with status %#x" % status)

    def _write_id_maps(self, pid):
        """uid_map, then setgroups ("deny" when we lack CAP_SETGID, as the kernel then
        requires), then gid_map -- the order user_namespaces(7) asks for."""
        cfg = self.config
        _write_proc(pid, "uid_map", _idmap.render(cfg.uid_mappings))
        effective = self.lc.capget()[0]
        if not effective >> CAP_SETGID & 1:
            _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "gid_map", _idmap.render(cfg.gid_mappings))

    def _setup_cgroups(self, pid):
        from . import cgroups

        cg = self.config.cgroups
        if not cg.name:
            cg = cg.replace(name=self.id)
        if not cg.allow_all_devices and not cg.allowed_devices:
            cg = cg.replace(allowed_devices=_config.DEFAULT_ALLOWED_DEVICES)
        self.cgroups = cgroups.new_manager(cg)
        self._undo.append(("cgroups", self.cgroups.destroy))
        self.cgroups.apply(pid)

    def _save_state(self):
        cfg = self.config
        self.state = {
            "id": self.id,
            "init_pid": self.pid,
            "init_start_time": self.init_start_time,
            "network_state": self.network_state,
            "cgroup_paths": dict(self.cgroups.paths) if self.cgroups is not None else {},
            "cgroup_driver": self.cgroups.driver if self.cgroups is not None else "",
            "cgroup_unit": (self.cgroups.unit or "") if self.cgroups is not None else "",
            "created": _now(),
            "root_fs": cfg.root_fs,
            "data_path": self.data_path,
            "pid_namespace": cfg.has_namespace("NEWPID"),
            "user_namespace": cfg.has_namespace("NEWUSER"),
            "labels": list(cfg.labels),
            "runtime_pid": os.getpid(),
            "config": cfg.to_json(),
        }
        marker = os.path.join(self.data_path, "created")  # see minins.lifecycle.status
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._undo.append(("created marker", lambda: _unlink(marker)))
        _state.save(self.data_path, self.state)
        self._undo.append(("state", lambda: _state.remove(self.data_path)))

    # --- helpers ---------------------------------------------------------------------------

    def _wait_init(self):
        if self._status is None:
            _, status = os.waitpid(self.pid, 0)
            self._status = status
        return self._status

    def _close_sock(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _bind_mounts(cfg):
    mc = cfg.mount_config
    return [i for i, m in enumerate(mc.mounts) if m.type == "bind"] if mc else []


def _open_sources_for(cfg, init_pid, sock, report_fd):
    """The mount-source helper (a forked child of the runtime). Never returns."""
    step = "mount sources"
    try:
        fd = os.open("/proc/%d/ns/mnt" % init_pid, os.O_RDONLY | os.O_CLOEXEC)
        _libc.setns(fd, _config.NAMESPACE_TYPES["NEWNS"], "/proc/%d/ns/mnt" % init_pid)
        os.close(fd)
        keys, fds = [], []
        for i in _bind_mounts(cfg):
            source = cfg.mount_config.mounts[i].source
            try:
                fds.append(os.open(source, os.O_PATH | os.O_CLOEXEC))
            except OSError as e:
                raise ConfigError("mount_config.mounts[%d].source" % i, "cannot use %s: %s"
                                  % (source, e.strerror)) from None
            keys.append(i)
        sync.send_fds(sock, sync.MOUNT_SOURCES, {"keys": keys}, fds)
        os._exit(0)
    except BaseException as e:  # noqa: B902 - never unwind into the runtime's code
        try:
            os.write(report_fd, _json.dumps(sync.error_payload(e, step)).encode())
        finally:
            os._exit(1)


def _write_proc(pid, name, text):
    _fspath.write_file("/proc/%d/%s" % (pid, name), text, text.strip().replace("\n", "; "))


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rmtree_own(path):
    """Remove a data path we created: its few files, then the directory."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        _unlink(os.path.join(path, name))
    os.rmdir(path)


def _now():
    import time

    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int(t % 1 * 1e6)


def run(config, args, *, stdin=None, stdout=None, stderr=None, data_path=None, id=None,
        state_root=None, start_callback=None):
    """Run ``args`` in a new container made from ``config``; return its exit code.

    With ``config.tty`` the container's terminal is relayed to ``stdin``/``stdout`` (default:
    ours), in raw mode when that is a terminal."""
    c = Container(config, args, id=id, data_path=data_path, state_root=state_root,
                  stdin=None if config.tty else stdin, stdout=None if config.tty else stdout,
                  stderr=None if config.tty else stderr)
    c.create()
    c.start(start_callback)
    if c.console_master is not None:
        relay_console(c, _fileno(stdin) if stdin is not None else 0,
                      _fileno(stdout) if stdout is not None else 1)
    return c.wait()


def relay_console(c, stdin, stdout):
    """Relay the container's pty to our terminal until its init exits."""
    from . import console

    try:
        with console.RawMode(stdin):
            console.copy_window_size(stdin, c.console_master)
            console.relay(c.console_master, c.pid, stdin, stdout, c.lc)
    except BaseException as e:
        c._fail(e)
        raise
