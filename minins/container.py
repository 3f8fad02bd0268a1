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
import json
import os

from . import config as _config
from . import fspath as _fspath
from . import idmap as _idmap
from . import libc as _libc
from . import namespaces as _ns
from . import process as _process
from . import security as _security
from . import state as _state
from . import sync
from .child import INIT
from .errors import ConfigError, ContainerError, MininsError, SyscallError
from .exitstatus import exit_code_from_status

CAP_SETGID = 6
SIGKILL = 9
EXEC_FIFO = "exec.fifo"
CREATED_MARKER = "created"


def _fileno(f):
    if f is None or isinstance(f, int):
        return f
    return f.fileno()


class Container:
    """One new container. ``config`` is a validated :class:`minins.config.Config`; ``args``
    the command and its arguments; ``stdin``/``stdout``/``stderr`` descriptors or file objects
    (``None``: inherit the runtime's). With ``config.tty`` the container gets a pty instead
    and :attr:`console_master` is its master side, to relay (:func:`minins.process.relay_console`).

    ``detached``: the init does not depend on this process -- it has no parent-death signal
    and waits on ``exec.fifo`` in the state dir for :func:`minins.lifecycle.start` from any
    process; :meth:`create` returns with the container ``created`` and this object owns
    nothing any more.

    The state dir is ``<state_root>/<id>``: the id and the place of its state are one thing.
    ``data_path`` (the older name of the state dir) may be given instead of ``state_root``;
    its last component is then the id, and an ``id`` that disagrees is refused."""

    def __init__(self, config, args, *, id=None, data_path=None, state_root=None,
                 stdin=None, stdout=None, stderr=None, detached=False, lc=_libc,
                 extra_state=None, child_hooks=None, on_namespaces=None, on_console=None,
                 preserve_fds=0):
        if not args:
            raise ConfigError("args", "no command to run")
        self.config = config
        self.args = tuple(os.fsdecode(a) for a in args)
        self.id, self.data_path = _state.locate(id, data_path, state_root)
        self.detached = detached
        self.stdio = tuple(_fileno(f) for f in (stdin, stdout, stderr))
        self.console_master = None  # the pty master, with config.tty
        self.lc = lc
        self.pid = None
        self.init_start_time = None
        self.network_state = {}
        self.cgroups = None
        self.state = None
        self._spawned = None
        self._undo = []  # (name, function) in creation order
        self._status = None
        self._ns_fds = []
        self._fifo = None
        self.oom_note = None  # set by wait(): "OOM-killed (memory limit N)" or None
        # new (OCI, runc's command line: minins.runc): keys added to state.json (bundle,
        # annotations, hooks); the hooks the init runs (minins.hooks, in the plan);
        # on_namespaces(self) once the namespaces exist, before the init mounts anything
        # (createRuntime hooks); on_console(master) takes the pty master (--console-socket);
        # preserve_fds: descriptors 3..3+N-1 the command inherits (runc --preserve-fds)
        self.extra_state = dict(extra_state or {})
        self.child_hooks = child_hooks
        self.on_namespaces = on_namespaces
        self.on_console = on_console
        self.preserve_fds = preserve_fds

    # --- the life cycle ----------------------------------------------------------------------

    def create(self):
        """Everything up to releasing the init (see the module docstring)."""
        try:
            with _process.prompt_gil():
                self._create()
        except BaseException as e:
            self._fail(e)
            raise
        if self.detached:
            self._disown()

    def _fail(self, exc):
        """Undo everything after ``exc``; a problem while undoing is kept on the exception
        (``cleanup_error``) and does not replace it."""
        if isinstance(exc, MininsError):
            exc.with_step(self._step)
        orphan = getattr(exc, "orphan", None)
        if orphan and self.pid is None:
            self.pid = orphan  # the intermediate died after cloning it: kill and reap it
        if isinstance(exc, ContainerError) and self.cgroups is not None:
            from .cgroups import oom_note  # before destroy() takes the counter away

            note = oom_note(self.cgroups, self.config.cgroups.memory)
            if note:
                exc.message = "the container's init was %s: %s" % (note, exc.message)
        try:
            self.destroy()
        except Exception as cleanup:  # noqa: B902
            try:
                exc.cleanup_error = cleanup
            except AttributeError:
                pass

    def start(self, callback=None):
        """Let the init exec the command; returns once it has (or raises why it could not)."""
        if self.detached:
            raise ContainerError("a detached container is started with minins.lifecycle.start")
        try:
            self._step = "start"
            with _process.prompt_gil():
                _process.start(self._spawned.sock)
            self._spawned.close()
            _state.unlink(os.path.join(self.data_path, CREATED_MARKER))
            if self._frozen:
                self._step = "freeze"
                self.cgroups.freeze()  # cgroups.freezer FROZEN: paused as soon as it runs
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
            if self.cgroups is not None:  # see runner.run_foreground; gone after destroy()
                from .cgroups import oom_note

                self.oom_note = oom_note(self.cgroups, self.config.cgroups.memory)
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
        if self._spawned is not None:
            # The intermediate first: while it lives (waiting on the socket) it holds the
            # cgroups it was put in, which could not be removed.
            try:
                self._end_spawned(self._spawned)
            except OSError as e:
                errors.append(e)
        while self._undo:
            name, undo = self._undo.pop()
            try:
                undo()
            except Exception as e:  # keep unwinding; report the first problem
                errors.append(e)
        if errors:
            raise errors[0]

    def _disown(self):
        """After a detached create: the init lives on its own; nothing here is ours to undo
        but our descriptors."""
        self._undo = []
        self._close_fifo()
        if self._spawned is not None:
            self._spawned.close()
        self._close_console()
        self.pid = None

    # --- create, step by step ----------------------------------------------------------------

    _step = "create"

    def _create(self):
        cfg = self.config
        self._step = "preflight"
        self._preflight()
        self._step = "state"
        self._make_data_path()
        if cfg.cgroups is not None:
            self._plan_cgroups()
        # What we are about to create is on record before it exists: a crash from here on
        # leaves a state that `list` shows and `delete` removes.
        self._save_state()
        into = None
        if cfg.cgroups is not None:
            self._undo.append(("cgroups", self.cgroups.destroy))
            if getattr(self.cgroups, "prepare", None) is not None and self.lc is _libc:
                # cgroup v2: made before the fork, and the intermediate is cloned into it
                # (CLONE_INTO_CGROUP): no migration, no RCU grace period to wait for
                self._step = "cgroups"
                into = self.cgroups.prepare()
        self._step = "fork"
        try:
            spawned = self._spawn(into)
        finally:
            if into is not None:
                os.close(into)
        if cfg.cgroups is not None:
            # The intermediate joins the cgroups, so the init is born in them; the first
            # migration costs the kernel an RCU grace period, spent while the intermediate
            # is busy with its namespaces.
            self._step = "cgroups"
            if into is not None:
                self.cgroups.admit(spawned.pid, spawned.born_in_cgroup)
            else:
                self.cgroups.apply(spawned.pid)
        self._step = "user namespace"
        if self._new_userns:
            sync.expect(spawned.sock, sync.USERNS_READY, spawned.pidfd)
            self._write_id_maps(spawned.pid)
            sync.send(spawned.sock, sync.USERNS_MAPPED)
        if cfg.cgroups is not None:
            sync.send(spawned.sock, sync.CGROUPS_JOINED)
        self._step = "namespaces"
        self.pid = _process.await_pid(spawned)
        spawned.reap(unless=self.pid)
        spawned.follow(self.pid, self.lc)
        self.init_start_time = _state.proc_start_time(self.pid)
        if cfg.has_namespace("NEWUSER") and _bind_mounts(cfg) and os.geteuid() == 0:
            # (rootless: the init, running as our own uid, opens the sources itself)
            self._step = "mount sources"
            self._send_mount_sources()
        if cfg.networks:
            self._step = "network"
            from . import network

            # the host end's alias: unique to this init (pid and start time), so that a
            # delete recognises a pair that outlived the container (network.remove_survivor)
            owner = ("minins %d.%s %s" % (self.pid, self.init_start_time, self.id))[:255]
            self._undo.append(("network", lambda: network.remove_survivor(self.network_state)))
            self.network_state = network.create(cfg.networks, self.pid, owner)
        if self.on_namespaces is not None:
            self._step = "prestart and createRuntime hooks"
            self.on_namespaces(self)
        self._step = "init"
        sync.send(spawned.sock, sync.RELEASE, {"network_state": self.network_state})
        # The state file is written while the init sets up (its fsync is off the critical
        # path); it exists before the command runs, which waits for START.
        self._step = "state"
        self._save_state()
        self._step = "init"
        master = _process.await_setup(spawned, cfg.tty)
        if master is not None and self.on_console is not None:
            self._step = "console socket"
            try:
                self.on_console(master)
            finally:
                os.close(master)
            master = None
        if master is not None:
            self.console_master = master
            self._undo.append(("console", self._close_console))
        if self.detached and self._frozen:
            self._step = "freeze"
            self.cgroups.freeze()  # created and paused: `resume`, then `start`

    def _preflight(self):
        """Checks and preparations that create nothing on the host."""
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

            if cfg.cgroups.driver == "systemd":
                from .cgroups import systemd

                systemd.check()  # without systemd: refused before anything is made
        if cfg.seccomp is not None:
            from .seccomp import load as _seccomp

            self._seccomp = _seccomp.prepare_for(cfg, self.id, self.data_path, self.lc)
            self._undo.append(("seccomp", self._seccomp.close))
        self._ns_fds = _ns.open_paths(cfg, self.lc)
        self._undo.append(("namespace files", lambda: _ns.close(self._ns_fds)))

    def _make_data_path(self):
        """The state dir is made with an exclusive mkdir: two starts with one id cannot both
        get it."""
        parent = os.path.dirname(self.data_path.rstrip("/"))
        try:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        except OSError as e:
            raise SyscallError(e.errno, "mkdir", e.filename or parent) from None
        try:
            os.mkdir(self.data_path, 0o700)
        except FileExistsError:
            if not os.path.isdir(self.data_path):
                raise ConfigError("--data-path", "%s exists and is not a directory"
                                  % self.data_path) from None
            from .lifecycle import _bare_state_dir

            if not os.path.exists(os.path.join(self.data_path, _state.STATE_FILE)) and \
                    not _bare_state_dir(self.data_path):
                raise ConfigError("--data-path", "%s is a directory that is not a container's "
                                  "state dir (it holds other files and no state.json): give "
                                  "another id or data path" % self.data_path) from None
            try:
                _state.load(self.data_path)
            except MininsError as e:  # delete refuses it too: say so, advise no dead end
                if os.path.exists(os.path.join(self.data_path, _state.STATE_FILE)):
                    raise ConfigError("--id", "%s is taken: a container exists at %s whose "
                                      "state cannot be read (%s), so minins cannot delete "
                                      "it: remove that directory by hand once nothing of "
                                      "the container runs" % (self.id, self.data_path,
                                                             e)) from None
            raise ConfigError("--id", "%s is taken: a container exists at %s (if it is "
                              "stopped, remove it with: minins delete %s)"
                              % (self.id, self.data_path, self.id)) from None
        except OSError as e:
            raise SyscallError(e.errno, "mkdir", self.data_path) from None
        self._undo.append(("state dir", lambda: _state.remove_dir(self.data_path)))

    def _close_console(self):
        if self.console_master is not None:
            os.close(self.console_master)
        self.console_master = None

    @property
    def _frozen(self):
        return self.config.cgroups is not None and self.config.cgroups.freezer == "FROZEN"

    @property
    def _new_userns(self):
        ns = self.config.namespace("NEWUSER")
        return ns is not None and not ns.path

    def _make_fifo(self):
        path = os.path.join(self.data_path, EXEC_FIFO)
        try:
            os.mkfifo(path, 0o600)
            # The init reopens it (through /proc/self/fd) as the container's root, which in
            # a user namespace is another host uid than ours: the fifo is its (runc too).
            if self._new_userns:
                os.chown(path, _idmap.get_host_root_uid(self.config),
                         _idmap.get_host_root_gid(self.config))
            self._fifo = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno, "mkfifo", path) from None
        self._undo.append(("exec.fifo", self._close_fifo))

    def _close_fifo(self):
        if self._fifo is not None:
            os.close(self._fifo)
            self._fifo = None

    def _spawn(self, cgroup_fd=None):
        cfg = self.config
        if self.detached:
            self._make_fifo()
        in_userns = cfg.has_namespace("NEWUSER")
        new_userns = self._new_userns
        guard = _process.sealed_interpreter() if _process.needs_sealed_interpreter(
            cfg, self.lc) else None

        def plan(child_end, runtime_end, tid):
            return _process.Plan(
                kind=INIT, config=cfg, args=self.args, sock=child_end,
                runtime_sock=runtime_end, ns_fds=tuple(self._ns_fds),
                stdio=self.stdio if any(fd is not None for fd in self.stdio) else None,
                unshare_flags=cfg.clone_flags() & ~(_config.NAMESPACE_TYPES["NEWUSER"]
                                                    | _config.NAMESPACE_TYPES["NEWCGROUP"]),
                new_userns=new_userns, in_userns=in_userns,
                fork_into_pid_ns=cfg.has_namespace("NEWPID"),
                wait_cgroups=cfg.cgroups is not None, tid_addr=tid.address, tid_fd=tid.fd,
                interpreter_fd=guard,
                gid5_mapped=not in_userns or new_userns and
                _idmap.host_id_from_mapping(5, cfg.gid_mappings) is not None,
                console=0 if cfg.tty else None,
                cap_last_cap=_security.cap_last_cap(), lsm=_security.lsm_state(),
                parent_death_signal=0 if self.detached else SIGKILL,
                exec_fifo=self._fifo, seccomp=self._seccomp, lc=self.lc,
                hooks=self.child_hooks, preserve_fds=self.preserve_fds)

        spawned = self._spawned = _process.spawn(plan, self.lc, cgroup_fd)
        self._undo.append(("intermediate", lambda: self._end_spawned(spawned)))
        _ns.close(self._ns_fds)
        self._ns_fds = []
        return spawned

    _seccomp = None  # a minins.seccomp.load.Prepared filter, when the config has one

    def _end_spawned(self, spawned):
        try:
            spawned.reap(kill=True, unless=self.pid)
        finally:
            spawned.close()

    def _send_mount_sources(self):
        """The one job left for host root with a user namespace (the seed's setup helper,
        libcontainer-system.md section 3): open the bind sources, which the container's
        mapped root may not be allowed to reach. A forked helper joins the init's mount
        namespace (a bind source must live in the mount namespace it is bound in), opens
        them there with our credentials, and hands them to the init over the sync socket."""
        import json

        r, w = os.pipe()
        try:
            pid = self.lc.fork()
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:
            _open_sources_for(self.config, self.pid, self._spawned.sock, w)  # never returns
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
            raise sync.error_from_payload(json.loads(report))
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

    def _plan_cgroups(self):
        """The manager, with its paths decided and nothing created yet."""
        from . import cgroups

        cg = self.config.cgroups
        if not cg.name:
            cg = cg.replace(name=self.id)
        if not cg.allow_all_devices and not cg.allowed_devices:
            cg = cg.replace(allowed_devices=_config.DEFAULT_ALLOWED_DEVICES)
        # freezer: FROZEN is applied once the container is created (see _create): frozen
        # before its setup, the init could never report back.
        self.cgroups = cgroups.new_manager(cg.replace(freezer=""))

    def _save_state(self):
        cfg = self.config
        first = self.state is None
        self.state = {
            "id": self.id,
            "init_pid": self.pid or 0,
            "init_start_time": self.init_start_time or "",
            "network_state": self.network_state,
            "cgroup_paths": dict(self.cgroups.paths) if self.cgroups is not None else {},
            "cgroup_driver": self.cgroups.driver if self.cgroups is not None else "",
            "cgroup_unit": (self.cgroups.unit or "") if self.cgroups is not None else "",
            "created": self.state["created"] if self.state else _now(),
            "root_fs": cfg.root_fs,
            "data_path": self.data_path,
            "pid_namespace": cfg.has_namespace("NEWPID"),
            "user_namespace": cfg.has_namespace("NEWUSER"),
            "labels": list(cfg.labels),
            "runtime_pid": os.getpid(),
            "runtime_start_time": _state.proc_start_time(os.getpid()) or "",
            "detached": self.detached,
            "config": cfg.to_json(),
        }
        self.state.update(self.extra_state)
        if first:
            self._undo.append(("state", lambda: _state.remove(self.data_path)))
        else:
            if not self.detached:
                marker = os.path.join(self.data_path, CREATED_MARKER)  # see lifecycle.status
                os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        _state.save(self.data_path, self.state)

    # --- helpers ---------------------------------------------------------------------------

    def _wait_init(self):
        if self._status is None:
            _, status = os.waitpid(self.pid, 0)
            self._status = status
        return self._status


def _bind_mounts(cfg):
    mc = cfg.mount_config
    return [i for i, m in enumerate(mc.mounts) if m.type == "bind"] if mc else []


def _open_sources_for(cfg, init_pid, sock, report_fd):
    """The mount-source helper (a forked child of the runtime). Never returns."""
    import json

    step = "mount sources"
    try:
        # It runs the host's executable in the container's mount namespace: nothing there may
        # reach its /proc/PID/exe or descriptors (CVE-2019-5736).
        _libc.prctl(4, 0, op="prctl PR_SET_DUMPABLE")
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
            os.write(report_fd, json.dumps(sync.error_payload(e, step)).encode())
        finally:
            os._exit(1)


def _write_proc(pid, name, text):
    _fspath.write_file("/proc/%d/%s" % (pid, name), text, text.strip().replace("\n", "; "))


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
    if not config.tty and _process.other_threads():
        return _run_in_helper(c, start_callback)
    c.create()
    c.start(start_callback)
    if c.console_master is not None:
        _process.relay_console(c, _fileno(stdin) if stdin is not None else 0,
                               _fileno(stdout) if stdout is not None else 1)
    return c.wait()


def _run_in_helper(c, start_callback):
    """:func:`run` for a program with other threads: create, start, wait and clean up in one
    forked, single-threaded helper (:func:`minins.process.in_helper`), so that no step waits
    for the GIL behind the program's threads; ``start_callback`` still runs here, once the
    command runs and before anything is removed. The helper is the container's runtime (its
    pid is ``runtime_pid`` in the state) and the init's parent."""
    if not _process._INTERPRETER and _process.needs_sealed_interpreter(c.config, c.lc):
        _process.sealed_interpreter()  # made once, here: every helper inherits it
    keep = [fd for fd in c.stdio if fd is not None] + _fds_named_by(c.config)
    return _process.in_helper(lambda ctl: _helper_body(c, ctl, start_callback is not None),
                              keep, start_callback)


def _fds_named_by(cfg):
    """Descriptors of ours that ``cfg`` names as ``/proc/self/fd/N`` or ``/dev/fd/N`` (a
    namespace, a bind source, the rootfs): the helper keeps them open."""
    paths = [ns.path for ns in cfg.namespaces] + [cfg.root_fs]
    if cfg.mount_config is not None:
        paths += [m.source for m in cfg.mount_config.mounts]
    fds = []
    for path in paths:
        for prefix in ("/proc/self/fd/", "/dev/fd/", "/proc/%d/fd/" % os.getpid()):
            if path and path.startswith(prefix):
                digits = path[len(prefix):].split("/", 1)[0]
                if digits.isdigit():
                    fds.append(int(digits))
    return fds


def _helper_body(c, ctl, with_callback):
    """In the helper: :func:`run`'s steps; an abort from the caller kills the container."""
    c.create()
    c.start()
    if with_callback and not _process.helper_started(ctl):
        c.destroy()
        return None  # the caller raises its own error
    pidfd = _process.watch_pid(c.pid, c.lc)
    if pidfd is not None:
        try:
            if _process.helper_aborted(ctl, pidfd):
                c.kill(SIGKILL)
        finally:
            os.close(pidfd)
    try:
        c._wait_init()
    except BaseException:
        c.destroy()
        raise
    _process.helper_exited(ctl)
    return c.wait()
