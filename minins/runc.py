"""runc's command line (runc 1.1): what an engine (podman through conmon, containerd's shim,
docker) calls, with runc's options and meanings. :mod:`minins.cli` dispatches here under the
rule of :func:`is_runc_create` and :func:`is_runc_run` (README "OCI runtime").

Global options (before the command, runc's ``main.go``): ``--root``, ``--log``,
``--log-format text|json``, ``--debug``, ``--systemd-cgroup``, ``--rootless``, ``--criu``
(accepted, unused), ``--version``, ``--help``. With ``--log FILE`` each error (and with
``--debug`` each debug line) is also appended to FILE, as logrus writes it for runc: a JSON
line ``{"level":"error","msg":"...","time":"2006-01-02T15:04:05Z"}`` with ``--log-format
json`` (conmon and containerd's shim read the last error from it), ``time="..." level=error
msg="..."`` otherwise. The error also goes to stderr as minins's one line; the exit status
of a failure is 125, minins's (runc's is 1; engines test for non-zero).

The commands on one container (state, kill, delete, pause, resume, ps) live in
:mod:`minins.cli`, which serves both forms; this module has the bundle commands (create,
run, exec's process.json), update, events, spec, features, and the OCI state JSON
(runtime-spec runtime.md "State").
"""
import os
import sys

from . import OCI_VERSION
from .cli import UsageError
from .errors import ConfigError, StateError
from .runcopts import (CREATE, FLAG, RUN, VALUE, _one_id, _table,  # noqa: F401
                       int_option as _int_option, is_runc_create, is_runc_run, parse)


# --- the log file --------------------------------------------------------------------------

def format_log_line(level, msg, fmt, when=None):
    """One line as logrus writes it for runc: ``{"level":..,"msg":..,"time":..}`` (json, keys
    sorted as logrus's JSONFormatter does) or ``time=".." level=.. msg=".."`` (text); ``time``
    is RFC 3339 in UTC."""
    import json
    import time

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    if fmt == "json":
        return json.dumps({"level": level, "msg": msg, "time": stamp},
                          separators=(",", ":")) + "\n"
    return "time=%s level=%s msg=%s\n" % (json.dumps(stamp), level, json.dumps(msg))


def log(level, msg):
    """Append a line to the ``--log`` file (nothing without one; debug lines only with
    ``--debug``). A log that cannot be written is not an error of the command."""
    g = _globals()  # the global options of this invocation: --log, --log-format, --debug
    if g.get("log") is None or (level == "debug" and not g.get("debug")):
        return
    try:
        fd = os.open(g["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, format_log_line(level, msg, g.get("log_format", "text")).encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def warn(msg):
    """A warning: minins's line on stderr, and a ``warning`` line in the log."""
    from .cli import one_line

    sys.stderr.write("minins: warning: %s\n" % one_line(msg))
    log("warning", msg)


# --- create and run ------------------------------------------------------------------------

def _load_bundle(values):
    bundle_dir = os.path.abspath(values.get("bundle") or ".")
    from .oci import bundle as _bundle

    return _bundle.load(bundle_dir, systemd_cgroup=bool(_globals().get("systemd_cgroup")))


def _globals():
    from . import cli

    return cli.GLOBALS


def adapt_config(cfg, values):
    """The bundle's configuration with what the command line adds: ``--no-pivot``;
    ``--rootless true`` (or ``auto`` when we are not root): no cgroup when the bundle sets
    no limit (runc ignores cgroup permission errors then; minins makes none it may not
    make). (``--systemd-cgroup`` is given to the bundle loader: it decides what
    cgroupsPath means.)"""
    g = _globals()
    if values.get("no_pivot") and cfg.mount_config is not None:
        cfg = cfg.replace(mount_config=cfg.mount_config.replace(no_pivot_root=True))
    rootless = g.get("rootless", "auto")
    if cfg.cgroups is not None and (rootless == "true" or rootless == "auto" and
                                    os.geteuid() != 0):
        if not any(getattr(cfg.cgroups, f) for f in _LIMIT_FIELDS):
            cfg = cfg.replace(cgroups=None)
    return cfg


_LIMIT_FIELDS = ("memory", "memory_reservation", "memory_swap", "cpu_shares", "cpu_quota",
                 "cpu_period", "cpuset_cpus", "cpuset_mems", "blkio_weight", "pids_limit")


class Session:
    """A runc create/run of one bundle: its container, the state minins keeps for runc's
    commands (bundle, annotations, hooks), the console socket and the runtime-side hooks."""

    def __init__(self, bundle, cid, values, root, detached):
        from . import container
        from . import hooks as _hooks

        self.bundle = bundle
        self.values = values
        log("debug", "%s container %s from the bundle %s (state root %s)"
            % ("create" if detached else "run", cid, bundle.bundle, root or "default"))
        cfg = adapt_config(bundle.config, values)
        self.hooks = _hooks.to_json(bundle.hooks)
        self.console_socket = values.get("console_socket")
        if cfg.tty and detached and not self.console_socket:
            raise UsageError("cannot allocate tty if minins will detach without setting "
                             "console socket (--console-socket)")
        if self.console_socket and not cfg.tty:
            raise UsageError("cannot use console socket if minins will not detach or "
                             "allocate tty (process.terminal is false)")
        self.sock = connect_console_socket(self.console_socket) if self.console_socket \
            else None
        extra = {"bundle": bundle.bundle, "annotations": dict(bundle.annotations),
                 "owner": ""}
        if self.hooks:
            extra["hooks"] = self.hooks
        inside = {k: v for k, v in self.hooks.items() if k in _hooks.IN_CONTAINER}
        child_hooks = None
        if inside:
            child_hooks = dict(inside, state=_hooks.state_for(dict(extra, id=cid), "creating",
                                                              pid=0))
        preserve = _int_option(values, "preserve_fds", "--preserve-fds") or 0
        self.container = container.Container(
            cfg, bundle.args, id=cid, state_root=root, detached=detached,
            extra_state=extra, child_hooks=child_hooks,
            on_namespaces=self._create_runtime_hooks,
            on_console=self._send_console if self.sock is not None else None,
            preserve_fds=preserve)

    def _create_runtime_hooks(self, c):
        from . import hooks as _hooks

        st = dict(c.extra_state, id=c.id)
        # prestart's state says "created", as runtime-tools' hooks_stdin asks and crun does
        # (runc says "creating", as it does for createRuntime)
        _hooks.run_all(self.hooks, "prestart", _hooks.state_for(st, "created", pid=c.pid))
        _hooks.run_all(self.hooks, "createRuntime", _hooks.state_for(st, "creating",
                                                                      pid=c.pid))

    def _send_console(self, master):
        from . import console

        if self.bundle.console_size:
            console.set_window_size(master, *self.bundle.console_size)
        console.send_master(self.sock, master)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def connect_console_socket(path):
    """A stream connection to the ``--console-socket`` (made before anything else, as runc
    does: a socket that is not there fails the create at once)."""
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise UsageError("--console-socket: cannot connect to %s: %s"
                         % (path, e.strerror or e)) from None
    return s


def cmd_create(argv, root):
    values, pos = parse(argv, CREATE, "create")
    _create(values, _one_id(pos, "create"), root)
    return 0


def _create(values, cid, root, check=None):
    """Create the container ``cid`` detached from the bundle (``check(session)`` first, when
    given), then ``--pid-file``: the created :class:`minins.container.Container`. A pid file
    that cannot be written removes the container again."""
    session = Session(_load_bundle(values), cid, values, root, detached=True)
    try:
        if check is not None:
            check(session)
        c = session.container
        c.create()
    finally:
        session.close()
    if values.get("pid_file"):
        from . import cli

        try:
            cli._write_pid_file(values["pid_file"], c.state["init_pid"])
        except BaseException:
            from . import lifecycle

            lifecycle.delete(c.data_path, force=True, run_hooks=False)
            raise
    return c


def _start(c):
    """Start the created container ``c`` (poststart hooks and all); a failure removes it."""
    from . import lifecycle

    try:
        lifecycle.start(c.data_path, warn=warn)
    except BaseException:
        lifecycle.delete(c.data_path, force=True, warn=warn)
        raise


def cmd_run(argv, root):
    values, pos = parse(argv, RUN, "run")
    cid = _one_id(pos, "run")
    if values.get("detach"):
        _start(_create(values, cid, root))
        return 0
    if values.get("keep"):
        return _run_kept(values, cid, root)
    return _run_foreground(values, cid, root)


def _needs_socket_for_tty(session):
    if session.container.config.tty and session.sock is None:
        raise UsageError("run --keep with a terminal needs --console-socket")


def _run_kept(values, cid, root):
    """runc run --keep: as a foreground run, but the container is left ``stopped`` when its
    process exits (its state, cgroups; `delete` removes them and runs poststop). It is
    created detached (its init is still our child: CLONE_PARENT), started, and waited for."""
    from .exitstatus import exit_code_from_status

    c = _create(values, cid, root, check=_needs_socket_for_tty)
    pid = c.state["init_pid"]
    _start(c)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return exit_code_from_status(status)
        except InterruptedError:
            continue


def _run_foreground(values, cid, root):
    """runc run without -d: the container's stdio are ours (with a terminal and no console
    socket, relayed); exit with its exit code; then it is deleted, poststop hooks and all."""
    from . import lifecycle, process

    session = Session(_load_bundle(values), cid, values, root, detached=False)
    c = session.container
    extra = c.extra_state

    def created(proc):
        session.close()
        if values.get("pid_file"):
            from . import cli

            cli._write_pid_file(values["pid_file"], proc.pid)

    class Started:
        """The container, with the poststart hooks run once its command runs."""

        def __getattr__(self, name):
            return getattr(c, name)

        def start(self):
            c.start(callback=lambda: lifecycle.oci_hooks(dict(extra, id=c.id), "poststart",
                                                         "running", c.pid, warn))

    try:
        code = process.foreground(Started(), created=created)
    finally:
        session.close()
    lifecycle.oci_hooks(dict(extra, id=c.id), "poststop", "stopped", 0, warn)
    return code


_HELP = {
    "create": "create [-b DIR] [--console-socket PATH] [--pid-file FILE] [--no-pivot] "
              "[--no-new-keyring] [--preserve-fds N] ID\n  create the container ID from the "
              "bundle DIR (default: the current directory; DIR/config.json); `start ID` runs "
              "its process",
    "run": "run [-b DIR] [-d] [--console-socket PATH] [--pid-file FILE] [--no-pivot] "
           "[--no-new-keyring] [--preserve-fds N] ID\n  create and start the container ID "
           "from the bundle DIR; without -d wait for it, exit with its code and delete it",
    "exec": "exec [-p FILE] [-d] [-t] [--console-socket PATH] [--pid-file FILE] [--cwd DIR] "
            "[-e K=V] [-u UID[:GID]] [-g GID] [--cap CAP] [--no-new-privs] [--apparmor P] "
            "[--process-label L] [--preserve-fds N] ID [CMD [ARG...]]\n  -p FILE: an OCI "
            "process object (args, env, cwd, user, capabilities, terminal...)",
    "ps": "ps [-f table|json] ID\n  table: ps -ef's columns, read from /proc",
    "list": "list [-f table|json] [-q]\n  json: the OCI state of each container",
    "events": "events [--stats] [--interval D] ID\n  one JSON line {type, id, data} of "
              "statistics every D (default 5s) until the container stops, and one "
              "{type: oom} per OOM kill; --stats: once",
    "update": "update [-r FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N] "
              "[--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus LIST] "
              "[--cpuset-mems LIST] [--pids-limit N] [--blkio-weight N] ID\n  change the "
              "cgroup limits of a running container (-r: an OCI linux.resources object; "
              "-1 lifts a limit)",
    "spec": "spec [-b DIR] [--rootless]\n  write a default config.json in DIR (refused "
            "when one exists)",
    "features": "features\n  print what minins supports as JSON (runtime-spec features.md)",
    "checkpoint": "checkpoint ID\n  not supported", "restore": "restore ID\n  not supported",
    "state": "state ID\n  the OCI state (ociVersion, id, pid, status, bundle, rootfs, "
             "created, annotations, owner), then minins's own fields",
    "start": "start ID", "kill": "kill [-a] ID [SIGNAL]", "delete": "delete [-f] ID",
    "pause": "pause ID", "resume": "resume ID",
}


def help_text(command):
    """runc's form of ``command`` (empty when it has none)."""
    text = _HELP.get(command)
    if text is None:
        return ""
    usage, _nl, about = text.partition("\n")
    return "runc's form: minins [GLOBAL OPTIONS] %s\n%s\n" % (usage, about) if about \
        else "runc's form: minins [GLOBAL OPTIONS] %s\n" % usage


# --- the OCI state -------------------------------------------------------------------------

def oci_state(described, st=None):
    """runtime.md "State" of a container (runc's ``state`` output): ociVersion, id, pid,
    status, bundle, rootfs, created, annotations (when any), owner. ``described`` is
    :func:`minins.lifecycle.describe`'s dict."""
    out = {"ociVersion": OCI_VERSION, "id": described["id"], "pid": described["pid"],
           "status": described["status"], "bundle": described.get("bundle", ""),
           "rootfs": described.get("rootfs", ""), "created": described.get("created", "")}
    if described.get("annotations"):
        out["annotations"] = described["annotations"]
    out["owner"] = described.get("owner", "")
    return out


def owner_of(data_path):
    """The user owning a state dir, by name (runc's ``list`` OWNER column)."""
    import pwd

    try:
        uid = os.stat(data_path).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "#%d" % uid


def list_table(rows):
    """runc's ``list`` table: text/tabwriter with minimum width 12 and padding 3."""
    header = ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")
    lines = [header] + [(r["id"], str(r["pid"]), r["status"], r.get("bundle", ""),
                         r.get("created", ""), r.get("owner", "")) for r in rows]
    widths = [max(12, max(len(line[i]) for line in lines) + 3) for i in range(5)]
    return "".join("".join(cell.ljust(w) for cell, w in zip(line, widths)) + line[5] + "\n"
                   for line in lines)


# --- ps ------------------------------------------------------------------------------------

def ps_table(pids, proc="/proc", now=None):
    """``ps -ef``'s table of ``pids`` (UID PID PPID C STIME TTY TIME CMD), read from /proc:
    minins runs no ``ps`` program. proc(5): stat fields 4 (ppid), 7 (tty_nr), 14-15 (utime,
    stime), 22 (starttime); status ``Uid:``; ``cmdline`` (``[comm]`` when empty)."""
    import time

    now = time.time() if now is None else now
    hz = os.sysconf("SC_CLK_TCK")
    boot = _boot_time(proc)
    out = ["%-8s %5s %5s %2s %5s %-8s %8s %s\n" % ("UID", "PID", "PPID", "C", "STIME", "TTY",
                                                   "TIME", "CMD")]
    for pid in pids:
        try:
            row = _ps_row(pid, proc, hz, boot, now)
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
        out.append("%-8s %5d %5d %2d %5s %-8s %8s %s\n" % row)
    return "".join(out)


def _boot_time(proc):
    with open(proc + "/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    return 0


def _ps_row(pid, proc, hz, boot, now):
    import pwd
    import time

    with open("%s/%d/stat" % (proc, pid), "rb") as f:
        stat = f.read()
    comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode("utf-8", "replace")
    fields = stat[stat.rindex(b")") + 2:].split()
    ppid, tty_nr = int(fields[1]), int(fields[4])
    cpu_ticks = int(fields[11]) + int(fields[12])
    started = boot + int(fields[19]) / hz
    uid = 0
    with open("%s/%d/status" % (proc, pid)) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                break
    with open("%s/%d/cmdline" % (proc, pid), "rb") as f:
        args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    elapsed = max(now - started, 1e-9)
    c = min(99, int(cpu_ticks / hz * 100 / elapsed))
    if time.localtime(started)[:3] == time.localtime(now)[:3]:
        stime = time.strftime("%H:%M", time.localtime(started))
    else:
        stime = time.strftime("%b%d", time.localtime(started))
    secs = cpu_ticks // hz
    cputime = "%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
    return (user, pid, ppid, c, stime, _tty_name(tty_nr), cputime,
            " ".join(args) if args else "[%s]" % comm)


def _tty_name(tty_nr):
    """``pts/N``, ``ttyN`` ... of a stat tty_nr (major in bits 8-15, minor in 0-7 and
    20-31; devices.txt), ``?`` for none."""
    if tty_nr == 0:
        return "?"
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return "pts/%d" % ((major - 136) * 256 + minor)
    if major == 4 and minor < 64:
        return "tty%d" % minor
    if major == 4:
        return "ttyS%d" % (minor - 64)
    if major == 5 and minor == 1:
        return "console"
    return "?"


# --- events --------------------------------------------------------------------------------

def memory_limit(cgroup_paths):
    """The container's memory limit in bytes, as runc's stats report it in
    ``memory.usage.limit``: v1 ``memory.limit_in_bytes``, v2 ``memory.max`` (``max``: 2**64-1,
    runc's math.MaxUint64); 0 when there is no memory controller or file (kernel
    cgroup-v1/memory.rst, cgroup-v2.rst). ``cgroup_paths`` is the state's ``cgroup_paths``."""
    paths = cgroup_paths or {}
    if paths.get("memory"):
        name = os.path.join(paths["memory"], "memory.limit_in_bytes")
    elif paths.get("unified") or paths.get(""):
        name = os.path.join(paths.get("unified") or paths[""], "memory.max")
    else:
        return 0
    try:
        with open(name) as f:
            text = f.read().strip()
    except OSError:
        return 0
    if text == "max":
        return (1 << 64) - 1
    try:
        return int(text)
    except ValueError:
        return 0


def runc_stats(stats):
    """minins's stats (:mod:`minins.cgroups.stats`) in runc's ``events`` types
    (``types.Stats``: cpu, memory, pids, blkio, hugetlb, intel_rdt, network_interfaces);
    ``memory_stats.limit`` when set (bytes, :func:`memory_limit`) is ``memory.usage.limit``."""
    cg = stats.get("cgroup_stats") or {}
    cpu = cg.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    thr = cpu.get("throttling_data") or {}
    mem = cg.get("memory_stats") or {}
    pids = cg.get("pids_stats") or {}
    blk = cg.get("blkio_stats") or {}
    out = {
        "cpu": {"usage": {"total": usage.get("total_usage", 0),
                          "percpu": usage.get("percpu_usage") or [],
                          "kernel": usage.get("usage_in_kernelmode", 0),
                          "user": usage.get("usage_in_usermode", 0)},
                "throttling": {"periods": thr.get("periods", 0),
                               "throttledPeriods": thr.get("throttled_periods", 0),
                               "throttledTime": thr.get("throttled_time", 0)}},
        "memory": {"usage": {"usage": mem.get("usage", 0), "max": mem.get("max_usage", 0),
                             "failcnt": mem.get("failcnt", 0),
                             "limit": mem.get("limit", 0)},
                   "cache": (mem.get("stats") or {}).get("cache",
                                                         (mem.get("stats") or {}).get("file", 0)),
                   "raw": mem.get("stats") or {}},
        "pids": {"current": pids.get("current", 0), "limit": pids.get("limit", 0)},
        "blkio": {_camel(k): [{"major": e.get("major", 0), "minor": e.get("minor", 0),
                               "op": e.get("op", ""), "value": e.get("value", 0)}
                              for e in v] for k, v in blk.items() if v},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }
    nets = stats.get("network_stats")
    if nets:
        out["network_interfaces"] = nets if isinstance(nets, list) else [nets]
    return out


def _camel(key):
    head, *rest = key.split("_")
    return head + "".join(w.capitalize() for w in rest)


def cmd_events(argv, root):
    import json
    import time

    from . import cli, lifecycle

    values, pos = parse(argv, _table(("--stats", "stats", FLAG),
                                     ("--interval", "interval", VALUE)), "events")
    cid = _one_id(pos, "events")
    interval = _duration(values.get("interval", "5s"))
    data_path = cli.existing(cid, root)

    def with_limit(stats):
        """``stats`` with the memory limit runc's events report (minins's stats have none)."""
        try:
            paths = lifecycle.describe(data_path).get("cgroup_paths")
        except StateError:
            return stats
        mem = dict((stats.get("cgroup_stats") or {}).get("memory_stats") or {},
                   limit=memory_limit(paths))
        return dict(stats, cgroup_stats=dict(stats.get("cgroup_stats") or {},
                                             memory_stats=mem))

    if values.get("stats"):
        event = {"type": "stats", "id": cid,
                 "data": runc_stats(with_limit(lifecycle.stats(data_path)))}
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        return 0
    ooms = None
    first = True
    while True:
        try:
            stats = lifecycle.stats(data_path)
            kills = lifecycle.oom_kills(data_path)
        except StateError:
            if first:
                raise
            return 0  # it stopped (at either read): runc's events ends too
        first = False
        if ooms is not None and kills is not None and kills > ooms:
            for _ in range(kills - ooms):
                sys.stdout.write(json.dumps({"type": "oom", "id": cid},
                                            separators=(",", ":")) + "\n")
        ooms = kills
        sys.stdout.write(json.dumps({"type": "stats", "id": cid,
                                     "data": runc_stats(with_limit(stats))},
                                    separators=(",", ":")) + "\n")
        sys.stdout.flush()
        time.sleep(interval)


def _duration(text):
    """A Go duration (``5s``, ``500ms``, ``1m30s``, ``2h``) in seconds, > 0."""
    import re

    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UsageError("--interval: %r is not a duration (e.g. 5s, 500ms, 1m)" % text)
    total = sum(float(a) * units[b] for a, b in parts)
    if total <= 0:
        raise UsageError("--interval: must be greater than 0, not %r" % text)
    return total


# --- update ----------------------------------------------------------------------------------

UPDATE = _table(
    ("-r --resources", "resources", VALUE),
    ("--memory", "memory", VALUE), ("--memory-swap", "memory_swap", VALUE),
    ("--memory-reservation", "memory_reservation", VALUE),
    ("--kernel-memory", "kernel_memory", VALUE), ("--kernel-memory-tcp", "kernel_tcp", VALUE),
    # runc 1.1 spells it --cpu-share (update.go); --cpu-shares as docker and the issue do
    ("--cpu-share --cpu-shares", "cpu_shares", VALUE), ("--cpu-quota", "cpu_quota", VALUE),
    ("--cpu-period", "cpu_period", VALUE), ("--cpu-rt-period", "cpu_rt_period", VALUE),
    ("--cpu-rt-runtime", "cpu_rt_runtime", VALUE),
    ("--cpuset-cpus", "cpuset_cpus", VALUE), ("--cpuset-mems", "cpuset_mems", VALUE),
    ("--pids-limit", "pids_limit", VALUE), ("--blkio-weight", "blkio_weight", VALUE),
    ("--l3-cache-schema", "l3", VALUE), ("--mem-bw-schema", "membw", VALUE),
)


def update_resources(values, stdin=None):
    """The OCI ``linux.resources`` object that ``update``'s options describe: ``-r FILE``
    (``-``: stdin) read as JSON, and then every other option is ignored, as runc's (update.go,
    its help: "if data is to be read from a file or the standard input, all other options
    are ignored"); without ``-r``, the options. Sizes take runc's units (``512m``, ``1g``);
    ``-1`` lifts a limit."""
    from . import config as _config
    from . import runopts

    res = {}
    if values.get("resources") is not None:
        name = values["resources"]
        try:
            if name == "-":
                text = (stdin or sys.stdin).read()
            else:
                with open(name) as f:
                    text = f.read()
        except OSError as e:
            raise UsageError("-r: cannot read %s: %s" % (name, e.strerror)) from None
        try:
            res = _config.parse_json(text)
        except ConfigError as e:
            raise ConfigError("-r", "%s is %s" % (name, e.message)) from None
        if not isinstance(res, dict):
            raise ConfigError("-r", "%s must hold a JSON object (linux.resources)" % name)
        return res

    def size(key, opt):
        text = values[key]
        if text == "-1":
            return -1
        return runopts.parse_size(text, opt)

    def number(key, opt, minimum=None):
        text = values[key]
        try:
            n = int(text)
        except ValueError:
            raise ConfigError(opt, "%r is not a number" % text) from None
        if minimum is not None and n < minimum:
            raise ConfigError(opt, "must be >= %d, not %d" % (minimum, n))
        return n

    for key, opt in (("kernel_memory", "--kernel-memory"), ("kernel_tcp", "--kernel-memory-tcp"),
                     ("l3", "--l3-cache-schema"), ("membw", "--mem-bw-schema"),
                     ("cpu_rt_period", "--cpu-rt-period"), ("cpu_rt_runtime", "--cpu-rt-runtime")):
        if key in values:
            raise ConfigError(opt, "not supported by minins")
    mem = res.setdefault("memory", {}) if any(
        k in values for k in ("memory", "memory_swap", "memory_reservation")) else None
    for key, field, opt in (("memory", "limit", "--memory"), ("memory_swap", "swap",
                                                               "--memory-swap"),
                            ("memory_reservation", "reservation", "--memory-reservation")):
        if key in values:
            mem[field] = size(key, opt)
    cpu_keys = ("cpu_shares", "cpu_quota", "cpu_period", "cpuset_cpus", "cpuset_mems")
    if any(k in values for k in cpu_keys):
        cpu = res.setdefault("cpu", {})
        if "cpu_shares" in values:
            cpu["shares"] = number("cpu_shares", "--cpu-shares", 0)
        if "cpu_quota" in values:
            cpu["quota"] = number("cpu_quota", "--cpu-quota", -1)
        if "cpu_period" in values:
            cpu["period"] = number("cpu_period", "--cpu-period", 0)
        if "cpuset_cpus" in values:
            cpu["cpus"] = values["cpuset_cpus"]
        if "cpuset_mems" in values:
            cpu["mems"] = values["cpuset_mems"]
    if "pids_limit" in values:
        res["pids"] = {"limit": number("pids_limit", "--pids-limit")}
    if "blkio_weight" in values:
        res["blockIO"] = dict(res.get("blockIO") or {},
                              weight=number("blkio_weight", "--blkio-weight", 0))
    return res


def cmd_update(argv, root):
    from . import cli, lifecycle

    values, pos = parse(argv, UPDATE, "update")
    cid = _one_id(pos, "update")
    data_path = cli.existing(cid, root)
    res = update_resources(values)
    from .oci import resources as _resources

    fields = _resources.to_cgroup(res, "linux.resources", update=True)
    lifecycle.update(data_path, fields)
    return 0


# --- spec and features ---------------------------------------------------------------------

def cmd_spec(argv, root):
    import json

    values, pos = parse(argv, _table(("-b --bundle", "bundle", VALUE),
                                     ("--rootless", "rootless", FLAG)), "spec")
    if pos:
        raise UsageError("spec takes no arguments")
    path = os.path.join(values.get("bundle") or ".", "config.json")
    if os.path.lexists(path):
        raise UsageError("File %s exists. Remove it first" % path)
    from . import state as _state
    from .oci import bundle as _bundle

    try:
        _state.write_atomic(os.path.abspath(path),
                            json.dumps(_bundle.default_spec(bool(values.get("rootless"))),
                                       indent="\t"),
                            mode=0o666 & ~_umask())
    except OSError as e:
        raise UsageError("spec: cannot write %s: %s" % (path, e.strerror)) from None
    return 0


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def features():
    """``features``' JSON (runc 1.1's shape: runtime-spec features.md) of what minins
    supports."""
    from . import __version__
    from .caps import CAPS

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted(_MOUNT_OPTIONS),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": ["CAP_" + c for c in sorted(CAPS, key=CAPS.get)],
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False},
            "seccomp": {"enabled": True,
                        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                                    "SCMP_ACT_TRAP"],
                        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                      "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                                      "SCMP_CMP_NE"],
                        "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_RISCV64",
                                  "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]},
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
        },
        "annotations": {"io.github.minins.version": __version__},
    }


_MOUNT_OPTIONS = (
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
    "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
    "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
    "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
    "shared", "silent", "slave", "strictatime", "suid", "symfollow", "sync", "unbindable",
    "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnoatime",
    "ratime", "rrelatime", "rnorelatime", "rstrictatime", "rnostrictatime", "rnodiratime",
    "rdiratime", "rnosymfollow", "rsymfollow",
)


def cmd_features(argv, root):
    import json

    if argv:
        raise UsageError("features takes no arguments")
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0


def cmd_not_supported(name):
    def cmd(argv, root):
        raise UsageError("%s: not supported: minins cannot checkpoint or restore a container "
                         "(runc does it with CRIU)" % name)
    return cmd


# --- exec's process.json -------------------------------------------------------------------

def process_config(process, config):
    """An OCI ``process`` object (``exec -p FILE``, config.md "Process") applied to the
    container's ``config`` as the bundle loader applies a config.json's process (the whole
    process: env, cwd, user, capabilities, rlimits... replace the container's, as in runc):
    ``(config, args, tty, console_size)``. :class:`ConfigError` names the field."""
    from .oci import bundle as _bundle

    cfg, args, size = _bundle.from_process(process, config)
    return cfg, tuple(args), cfg.tty, size
