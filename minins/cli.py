"""The ``minins`` command line.

Exit codes follow ``docker run`` and ``podman run``: the container's own code (128+N when it
died by signal N); 125 when minins itself fails (one line ``minins: error: ...`` on stderr);
126 when the command cannot be executed; 127 when it is not found.

Each command imports what it needs when it runs: ``minins config`` never loads ctypes, no
command loads argparse, and ``json`` (2-4 ms) only with a command that reads or writes JSON
(see tools/bench_exec.py for the figures).
"""
import os
import sys

from .errors import ConfigError, MininsError, SyscallError

EXIT_MININS = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127

USAGE = """usage: minins [--root DIR] COMMAND [OPTIONS] [ARGS]

Commands:
  run     [OPTIONS] [-d] [--id ID] [--pid-file FILE] [--] CMD [ARG...]
          run CMD in a new container; exit with its exit code (with -d: create and start it
          detached, exit 0) (see minins run --help)
  create  [OPTIONS] --id ID [--pid-file FILE] [--] CMD [ARG...]
          everything up to running CMD; the container outlives this process (`created`)
  start   ID                            let a created container run its command
  stop    [-t SECONDS] [-s SIGNAL] ID   SIGNAL (default: the stop_signal of its config, else
                                      SIGTERM), SIGKILL after SECONDS (10)
  config  [OPTIONS]  print the configuration run would use (container.json)
  exec    (--data-path DIR | --id ID | ID) [--tty] [-e K=V]... [--cwd DIR] [--user U]
          [--] CMD [ARG...]
          run CMD inside a running container
  state   (--data-path DIR | ID)        the container's state as JSON
  pause   (--data-path DIR | ID)        freeze every process of the container
  resume  (--data-path DIR | ID)        thaw it
  kill    [--all] (--data-path DIR | ID) [SIGNAL]
          signal the init (default SIGTERM), or every process with --all
  delete  [--force] (--data-path DIR | ID)
          remove what a stopped container left (cgroups, state); --force kills it first
  ps      (--data-path DIR | ID)        the container's pids
  stats   (--data-path DIR | ID)        resource usage as JSON
  oom     (--data-path DIR | ID)        print OOM events as they happen
  list    [--json | -q | -f table|json]  the containers under the state root

runc's commands (an OCI bundle: config.json; see README "OCI runtime"):
  create  [-b DIR] [--console-socket PATH] [--pid-file FILE] [--no-pivot]
          [--no-new-keyring] [--preserve-fds N] ID
  run     [-b DIR] [-d] [--console-socket PATH] [--pid-file FILE] [--no-pivot]
          [--no-new-keyring] [--preserve-fds N] ID
  exec    [-p FILE] [-d] [-t] [--console-socket PATH] [--pid-file FILE] [--cwd DIR]
          [-e K=V] [-u UID[:GID]] [-g GID] [--cap CAP] [--no-new-privs] [--apparmor P]
          [--process-label L] [--preserve-fds N] ID [CMD [ARG...]]
  ps      [-f table|json] ID                        list [-f table|json] [-q]
  events  [--stats] [--interval D] ID               stats as JSON lines
  update  [-r FILE|-] [--memory N] [--cpu-shares N] ... ID   change cgroup limits
  spec    [-b DIR] [--rootless]                     write a default config.json
  features                                          what minins supports, as JSON
  (state, start, kill, delete, pause, resume: as above; checkpoint, restore: not supported)

Global options:
  --root DIR   the state root (default /run/minins; $XDG_RUNTIME_DIR/minins when not root)
  --log FILE   also append errors to FILE      --log-format text|json   its format
  --debug      debug lines in the log          --systemd-cgroup   cgroupsPath is
  --rootless true|false|auto                                      slice:prefix:name
  -v, --version  minins's and the runtime-spec's versions
  -h, --help   this help; minins COMMAND --help: the command's own
"""


HOSTNAME_H = ("run", "create", "config")  # -h is --hostname there, as in docker


class UsageError(ConfigError):
    def __init__(self, message):
        ConfigError.__init__(self, "", message)


def parse(argv, options, rest="command"):
    """Split ``argv`` into ``(values, positionals)``.

    ``options`` maps each option name to ``True`` (takes a value), ``"multi"`` (takes a value,
    may repeat: a list) or ``False`` (a flag).
    ``rest="command"``: the first positional starts a command that takes everything after it
    (``--`` may separate it too); ``rest="args"``: options and positionals mix freely.
    """
    values, positionals = {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            positionals.extend(argv[i + 1:])
            break
        if arg.startswith("--") or (arg.startswith("-") and len(arg) == 2 and arg != "-"):
            name, eq, value = arg.partition("=")
            if name not in options:
                raise UsageError("unknown option %s" % name)
            if options[name]:
                if not eq:
                    i += 1
                    if i == len(argv):
                        raise UsageError("option %s needs a value" % name)
                    value = argv[i]
                if options[name] == "multi":
                    values.setdefault(name, []).append(value)
                else:
                    values[name] = value
            else:
                if eq:
                    raise UsageError("option %s takes no value" % name)
                values[name] = True
            i += 1
            continue
        if rest == "command":
            positionals.extend(argv[i:])
            break
        positionals.append(arg)
        i += 1
    return values, positionals


_REEXEC = []  # set by entry(): main() may re-execute from the sealed copy first
SEALED_COMMANDS = ("run", "create", "exec")  # the commands that send a process into a container


def entry(sealed=False):
    """The ``minins`` command (the installed script and ``python3 -m minins``): :func:`main`,
    then an exit that skips the interpreter's finalisation (module teardown, garbage
    collection of every object: 5-6 ms of a start that does nothing with them). Everything
    that matters is done by then: each command closes, removes and waits for what it made in
    ``finally`` blocks, and the standard streams are flushed here; an error in that flush (a
    closed pipe) becomes exit status 1, as Python's own shutdown would make it.

    ``run``, ``create`` and ``exec`` first re-execute the runtime from a sealed copy of the
    interpreter (:func:`minins.sealed.reexec_runtime`), which calls this again with
    ``sealed=True``."""
    if not sealed:
        _REEXEC.append(True)
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(0 if code is None else code)


def main(argv=None):
    argv_given = argv
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        values, rest = _global_options(argv)
        if rest[:1] in (["--version"], ["-v"]):
            sys.stdout.write(version_text())
            return 0
        if not rest or rest[0] in ("-h", "--help", "help"):
            if rest[1:2] and rest[1] in COMMANDS:
                return main(rest[1:2] + ["--help"])
            sys.stdout.write(USAGE)
            return 0 if rest else 2
        command, args = rest[0], rest[1:]
        handler = COMMANDS.get(command)
        if handler is None:
            raise UsageError("unknown command %r (see minins --help)" % command)
        if args[:1] == ["--help"] or (args[:1] == ["-h"] and command not in HOSTNAME_H):
            sys.stdout.write(_help(command))
            return 0
        if _REEXEC and command in SEALED_COMMANDS:
            # Before the command's imports: the copy loads them once, and every process it
            # forks into the container shares the copy (minins.sealed).
            from . import sealed

            sealed.reexec_runtime(sys.argv[1:] if argv_given is None else argv_given)
        return handler(args, values.get("--root"))
    except MininsError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # a system call outside the seam: still one line, never a traceback
        return _fail(SyscallError(e.errno or 5, "system call",
                                  e.filename if isinstance(e.filename, str) else None))


#: the global options of this invocation (``--root`` and runc's: see :mod:`minins.runc`)
GLOBALS = {}

_GLOBAL_VALUED = {"--root": "root", "--log": "log", "--log-format": "log_format",
                  "--criu": "criu", "--rootless": "rootless"}
_GLOBAL_FLAGS = {"--debug": "debug", "--systemd-cgroup": "systemd_cgroup"}


def _global_options(argv):
    """The options before the command: minins's ``--root`` and runc's global options
    (``--log FILE``, ``--log-format text|json``, ``--debug``, ``--systemd-cgroup``,
    ``--rootless true|false|auto``, ``--criu PATH``: accepted, unused). Returns
    ``(values, rest)``; ``values`` keeps ``--root`` under its own name too."""
    values = {}
    GLOBALS.clear()
    while argv and argv[0].startswith("--"):
        name, eq, value = argv[0].partition("=")
        if name in _GLOBAL_FLAGS:
            argv.pop(0)
            if eq and value not in ("true", "false"):
                raise UsageError("option %s: invalid boolean value %r" % (name, value))
            GLOBALS[_GLOBAL_FLAGS[name]] = not eq or value == "true"
            continue
        if name not in _GLOBAL_VALUED:
            break
        argv.pop(0)
        if not eq:
            if not argv:
                raise UsageError("option %s needs a value" % name)
            value = argv.pop(0)
        if not value:  # never the default state root in its place (`--root "$UNSET"`)
            raise UsageError("%s: must name %s, not ''" % (
                name, "a directory" if name == "--root" else "a value"))
        if name == "--root":
            values[name] = value
        GLOBALS[_GLOBAL_VALUED[name]] = value
    if GLOBALS.get("rootless", "auto") not in ("true", "false", "auto"):
        raise UsageError("--rootless: %r is not true, false or auto" % GLOBALS["rootless"])
    if GLOBALS.get("log_format", "text") not in ("text", "json"):
        GLOBALS.pop("log", None)  # (this error is not written to a log of unknown format)
        raise UsageError("--log-format: invalid log-format: %s (text or json)"
                         % GLOBALS["log_format"])
    return values, argv


def _warn():
    """How a command warns: with ``--log``, also into the log (minins.runc.warn)."""
    if GLOBALS.get("log"):
        from . import runc

        return runc.warn
    return None


def version_text():
    """``minins --version``: minins's version and the runtime-spec version it implements
    (runc prints its own and ``spec: ...`` the same way)."""
    import platform

    from . import OCI_VERSION, __version__

    return "minins version %s\nspec: %s\npython: %s\n" % (__version__, OCI_VERSION,
                                                           platform.python_version())


_LINE_BREAKS = {ord(c): " " for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(text):
    """``text`` with every character str.splitlines() breaks at made a space: a message
    naming a field of a hostile file stays one line."""
    return text.translate(_LINE_BREAKS)


def _help(command):
    from . import runopts, runc

    try:
        return runopts.help_text(command)  # (the runc forms are in `minins --help`)
    except ValueError:
        return runc.help_text(command)


def _fail(e):
    message = one_line(str(e))
    sys.stderr.write("minins: error: %s\n" % message)
    if GLOBALS.get("log"):  # conmon and containerd's shim read the last error from it
        from . import runc

        runc.log("error", message)
    if isinstance(e, OSError) and getattr(e, "op", None) == "exec":
        return EXIT_NOT_FOUND if e.errno == 2 else EXIT_CANNOT_EXEC
    return EXIT_MININS


# --- run and config ---------------------------------------------------------------------------

def cmd_config(args, root):
    from . import config, runopts

    values, _ = runopts.parse(args, "config")
    if values.get("help"):
        sys.stdout.write(runopts.help_text("config"))
        return 0
    cfg = runopts.build_config(values, os.geteuid(), os.getegid())
    sys.stdout.write(config.dumps(cfg) + "\n")
    return 0


def _options(args, command):
    """``(values, cfg, command argv)`` of run/create from :mod:`minins.runopts`; ``None``
    for the values when --help was asked (its text is printed)."""
    from . import runopts

    values, argv = runopts.parse(args, command)
    if values.get("help"):
        sys.stdout.write(runopts.help_text(command))
        return None, None, None
    return values, runopts.build_config(values, os.geteuid(), os.getegid()), argv


def cmd_run(args, root):
    from . import runcopts

    if runcopts.is_runc_run(args):
        from . import runc

        return runc.cmd_run(args, root)
    values, cfg, command = _options(args, "run")
    if values is None:
        return 0
    if values.get("detach"):
        return _create(cfg, values, command, root, start=True)
    from . import container
    from . import process

    c = container.Container(cfg, command, id=values.get("id"),
                            data_path=values.get("data_path"), state_root=root)
    created = None
    if values.get("pid_file"):
        def created(proc):
            _write_pid_file(values["pid_file"], proc.pid)
    code = process.foreground(c, created=created)
    if code == 137 and c.oom_note:
        sys.stderr.write("minins: the container was %s\n" % c.oom_note)
    return code


def cmd_create(args, root):
    from . import runcopts

    if runcopts.is_runc_create(args):
        from . import runc

        return runc.cmd_create(args, root)
    values, cfg, command = _options(args, "create")
    if values is None:
        return 0
    return _create(cfg, values, command, root)


def _create(cfg, values, command, root, start=False):
    """create (and with ``start`` start) a detached container and exit 0; ``run -d`` without
    ``--id`` prints the id it chose, nothing else prints anything."""
    if cfg.tty:
        raise UsageError("--tty needs a terminal that outlives this process: not supported "
                         "for detached containers")
    from . import container

    c = container.Container(cfg, command, id=values.get("id"),
                            data_path=values.get("data_path"), state_root=root,
                            detached=True)
    c.create()
    pid = c.state["init_pid"]
    try:
        if values.get("pid_file"):
            _write_pid_file(values["pid_file"], pid)
        if start:
            from . import lifecycle

            frozen = cfg.cgroups is not None and cfg.cgroups.freezer == "FROZEN"
            if frozen:
                # create left it paused (cgroups.freezer FROZEN); `run -d` runs the command
                # and then pauses it, as a foreground `run` does (start refuses a paused one)
                lifecycle.resume(c.data_path)
            lifecycle.start(c.data_path)
            if frozen:
                lifecycle.pause(c.data_path)
            if not values.get("id") and not values.get("data_path"):
                # the id we chose is the only name of the container (docker run -d prints it)
                sys.stdout.write(c.id + "\n")
                sys.stdout.flush()
    except BaseException:
        from . import lifecycle

        try:
            lifecycle.delete(c.data_path, force=True)
        except (MininsError, OSError):
            pass
        raise
    return 0


def _write_pid_file(path, pid):
    """The init's host pid, written atomically (a temporary file, then rename)."""
    from . import state

    path = os.path.abspath(path)
    try:
        state.write_atomic(path, "%d" % pid, mode=0o644)
    except OSError as e:
        raise UsageError("--pid-file: cannot write %s: %s" % (path, e.strerror)) from None


def cmd_start(args, root):
    _values, data_path, _ = _container_args(args, root, "start")
    from . import lifecycle

    lifecycle.start(data_path, warn=_warn())
    return 0


def cmd_stop(args, root):
    values, data_path, _ = _container_args(args, root, "stop", valued=(
        "-t", "--time", "--timeout", "-s", "--signal"))
    text = values.get("-t", values.get("--time", values.get("--timeout", "10")))
    try:
        timeout = float(text)
        if not 0 <= timeout <= 1e6:
            raise ValueError
    except ValueError:
        raise UsageError("-t: %r is not a number of seconds" % text) from None
    from . import lifecycle

    text = values.get("-s", values.get("--signal"))
    try:
        sig = None if text is None else lifecycle.parse_signal(text)  # None: the config's
    except ValueError as e:
        raise UsageError("-s: %s" % e) from None
    lifecycle.stop(data_path, timeout, sig)
    return 0


# --- a running container ---------------------------------------------------------------------

def _urfave(args, options):
    """``args`` with runc's urfave/cli spellings of the known ``options`` rewritten to the
    ones :func:`parse` reads: ``-name`` -> ``--name`` (when ``--name`` is an option), and a
    flag's ``--name=true`` -> ``--name``, ``--name=false`` -> nothing. Anything else is left
    as it is (``kill ID -9`` stays a signal)."""
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + list(args[i:])
        name, eq, value = arg.partition("=")
        if name.startswith("-") and not name.startswith("--") and len(name) > 2 \
                and "-" + name in options:
            name = "-" + name
        if name in options and options[name] is False and eq:
            if value.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise UsageError("option %s: invalid boolean value %r" % (name, value))
            if value.lower() in ("true", "1", "t"):
                out.append(name)
            continue
        out.append(name + eq + value if name in options else arg)
    return out


def _container_args(args, root, command, flags=(), extra=0, valued=()):
    """``(values, data_path, rest)`` for a command on one container: ``--data-path DIR``,
    ``--id ID`` or the first positional argument names it; ``flags`` are its own options
    (no value), ``valued`` its options with a value; at most ``extra`` more positional
    arguments may follow."""
    from . import lifecycle

    options = {"--data-path": True, "--id": True}
    options.update((f, False) for f in flags)
    options.update((f, True) for f in valued)
    values, rest = parse(_urfave(args, options), options, rest="args")
    if "--data-path" in values or "--id" in values:
        data_path = lifecycle.data_path_for(values.get("--id"), values.get("--data-path"), root)
    elif rest:
        data_path, rest = lifecycle.data_path_for(rest[0], None, root), rest[1:]
    else:
        raise UsageError("%s needs a container: --data-path DIR or its id" % command)
    if len(rest) > extra:
        raise UsageError("%s takes %s" % (command, "no more arguments" if not extra
                                          else "at most %d more argument" % extra))
    return values, data_path, rest


def _print_json(obj):
    import json

    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


_EXEC_OPTIONS = {
    # minins's
    "--data-path": ("data_path", "value"), "--id": ("id", "value"),
    # both
    "-t": ("tty", "flag"), "--tty": ("tty", "flag"), "-e": ("env", "multi"),
    "--env": ("env", "multi"), "--cwd": ("cwd", "value"), "-u": ("user", "value"),
    "--user": ("user", "value"),
    # runc's (runc 1.1 exec)
    "-p": ("process", "value"), "--process": ("process", "value"),
    "-d": ("detach", "flag"), "--detach": ("detach", "flag"),
    "--console-socket": ("console_socket", "value"), "--pid-file": ("pid_file", "value"),
    "-g": ("additional_gids", "multi"), "--additional-gids": ("additional_gids", "multi"),
    "-c": ("cap", "multi"), "--cap": ("cap", "multi"),
    "--no-new-privs": ("no_new_privs", "flag"), "--apparmor": ("apparmor", "value"),
    "--process-label": ("process_label", "value"), "--preserve-fds": ("preserve_fds", "value"),
    "--ignore-paused": ("ignore_paused", "flag"),
}


def cmd_exec(args, root):
    """minins's exec and runc's: ``exec [OPTIONS] (--data-path DIR | --id ID | ID) [--]
    CMD [ARG...]``, or with ``-p/--process FILE`` (an OCI process object) no command."""
    from . import lifecycle, runcopts

    values, command = runcopts.parse(args, _EXEC_OPTIONS, "exec")
    if "data_path" in values or "id" in values:
        data_path = lifecycle.data_path_for(values.get("id"), values.get("data_path"), root)
    elif command:
        data_path, command = existing(command[0], root), command[1:]
    else:
        raise UsageError("exec needs a container and a command "
                         "(minins exec --data-path DIR -- CMD [ARG...])")
    if command[:1] == ["--"]:
        command = command[1:]
    env = values.get("env", [])
    for item in env:
        if "=" not in item or item.startswith("="):
            raise UsageError("--env needs NAME=VALUE, not %r" % item)
    tty = bool(values.get("tty"))
    overrides, size, recorded = {}, None, None
    if values.get("process"):
        if command:
            raise UsageError("exec -p/--process takes no command: process.args has it")
        from . import config, runc, state

        recorded = config.Config.from_json(state.load(data_path).get("config") or {})
        cfg, command, tty, size = runc.process_config(
            _read_json(values["process"], "--process"), recorded)
        overrides = {f.name: getattr(cfg, f.name) for f in config.Config.FIELDS}
        tty = tty or bool(values.get("tty"))
    if not command:
        raise UsageError("exec needs a command (minins exec --data-path DIR -- CMD [ARG...])")
    overrides.update(_exec_option_overrides(values, data_path, recorded))
    preserve = runcopts.int_option(values, "preserve_fds", "--preserve-fds") or 0
    detach = bool(values.get("detach"))
    socket_path = values.get("console_socket")
    if tty and detach and not socket_path:
        raise UsageError("cannot allocate tty if minins will detach without setting console "
                         "socket (--console-socket)")
    if socket_path and not tty:
        raise UsageError("cannot use console socket if minins will not detach or allocate "
                         "tty (--tty)")
    from . import execin, process

    sock = None
    if socket_path:
        from . import runc

        sock = runc.connect_console_socket(socket_path)
    try:
        e = execin.Entry(data_path, command, tty=tty, env=env, cwd=values.get("cwd"),
                         user=values.get("user"), overrides=overrides, detached=detach,
                         preserve_fds=preserve)

        def created(entry):
            if sock is not None and entry.console_master is not None:
                from . import console

                if size:
                    console.set_window_size(entry.console_master, *size)
                console.send_master(sock, entry.console_master)
                entry.console_master = None  # not relayed: the socket's owner has it
            if values.get("pid_file"):
                _write_pid_file(values["pid_file"], entry.pid)

        if detach:
            e.create()
            try:
                created(e)
                e.start()
            except BaseException:
                e.destroy()
                raise
            e.close()  # the process goes on without us (runc exec -d)
            return 0
        if not overrides and sock is None and not values.get("pid_file") and not preserve:
            return execin.run_foreground(data_path, command, tty=tty, env=env,
                                         cwd=values.get("cwd"), user=values.get("user"))
        return process.foreground(e, created=created)
    finally:
        if sock is not None:
            sock.close()


def _exec_option_overrides(values, data_path, recorded=None):
    """runc exec's options that change the process's Config fields beyond env/cwd/user;
    ``recorded``: the container's Config when the caller has read it already (else read
    from the state)."""
    out = {}
    if values.get("additional_gids"):
        gids = []
        for g in values["additional_gids"]:
            if not g.isdigit():
                raise UsageError("--additional-gids: %r is not a gid number" % g)
            gids.append(int(g))
        out["additional_groups"] = tuple(gids)
    if values.get("cap"):
        # runc: each --cap joins the bounding, effective and permitted sets
        from . import caps, config, state

        for i, name in enumerate(values["cap"]):
            caps.cap_number(name, "--cap[%d]" % i)
        cfg = recorded if recorded is not None else \
            config.Config.from_json(state.load(data_path).get("config") or {})
        added = tuple(values["cap"])
        out["capabilities"] = tuple(cfg.capabilities) + added
        for field in ("effective_capabilities", "permitted_capabilities"):
            if getattr(cfg, field, None) is not None:
                out[field] = tuple(getattr(cfg, field)) + added
    if values.get("no_new_privs"):
        out["no_new_privileges"] = True
    if values.get("apparmor") is not None:
        out["apparmor_profile"] = values["apparmor"]
    if values.get("process_label") is not None:
        out["process_label"] = values["process_label"]
    return out


def _read_json(path, field):
    from . import config

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise UsageError("%s: cannot read %s: %s" % (field, path, e.strerror)) from None
    try:
        return config.parse_json(text)
    except ConfigError as e:
        raise ConfigError(field, "%s is %s" % (path, e.message)) from None


def existing(cid, root):
    """The state dir of the container ``cid``; :class:`StateError` "container ... does not
    exist" when there is none (the words containerd's shim and podman look for)."""
    from . import lifecycle, state
    from .errors import StateError

    data_path = lifecycle.data_path_for(cid, None, root)
    if not os.path.lexists(os.path.join(data_path, state.STATE_FILE)) and \
            not os.path.isdir(data_path):
        raise StateError("container %s does not exist (no container state at %s)"
                         % (cid, data_path))
    return data_path


def _on_one(name, action):
    """A command whose whole job is ``action(data_path)`` from minins.lifecycle."""
    def cmd(args, root):
        _values, data_path, _rest = _container_args(args, root, name)
        from . import lifecycle

        result = getattr(lifecycle, action)(data_path)
        if result is not None:
            _print_json(result)
        return 0
    return cmd


def cmd_delete(args, root):
    values, data_path, _ = _container_args(args, root, "delete", ("--force", "-f"))
    from . import lifecycle

    force = bool(values.get("--force") or values.get("-f"))
    if force and not os.path.lexists(data_path):
        return 0  # runc: with --force, a container that is already gone is success
    warn = _warn()
    lifecycle.delete(data_path, force=force, warn=warn)
    return 0


def cmd_kill(args, root):
    from . import lifecycle

    # `kill ID -9` / `kill ID -KILL`: kill(1)'s form of the signal, not an option
    args = [a[1:] if a.startswith("-") and len(a) > 1 and a not in ("-a", "--all")
            and not a.startswith("--") and _is_signal(a[1:]) else a for a in args]
    values, data_path, rest = _container_args(args, root, "kill", ("--all", "-a"), extra=1)

    try:
        sig = lifecycle.parse_signal(rest[0]) if rest else 15
    except ValueError as e:
        raise UsageError(str(e)) from None
    from .errors import StateError

    try:
        lifecycle.kill(data_path, sig,
                       all_processes=bool(values.get("--all") or values.get("-a")))
    except StateError as e:
        if os.path.isdir(data_path) and ("not running" in e.message or
                                         "is stopped" in e.message):
            # runc's words, which containerd's shim looks for ("container not running")
            raise StateError("container not running: %s" % e.message) from None
        raise
    return 0


def _is_signal(text):
    from . import lifecycle

    try:
        lifecycle.parse_signal(text)
        return True
    except ValueError:
        return False


def cmd_ps(args, root):
    """``ps [--json | -f table|json] ID``: without an option, a container made from a bundle
    (runc's create) gets runc's table (ps -ef's columns, read from /proc), one made by
    minins's own create or run its pids, one a line."""
    from .errors import StateError

    values, data_path, _ = _container_args(args, root, "ps", ("--json",),
                                           valued=("-f", "--format"))
    from . import lifecycle

    fmt = values.get("-f", values.get("--format"))
    if fmt not in (None, "table", "json"):
        raise UsageError("ps: invalid format option %r (table or json)" % fmt)
    try:
        pids = lifecycle.pids(data_path)
    except StateError:
        # runc's ps of a container whose init has exited: no processes, exit 0 (the table's
        # header alone; containerd's shim asks for ps --format json at any time)
        desc = lifecycle.describe(data_path)
        if desc.get("status") != "stopped" or not desc.get("bundle"):
            raise
        pids = []
    if values.get("--json") or fmt == "json":
        _print_json(pids)
    elif fmt == "table" or fmt is None and lifecycle.describe(data_path).get("bundle"):
        from . import runc

        sys.stdout.write(runc.ps_table(pids))
    else:
        sys.stdout.write("".join("%d\n" % p for p in pids))
    return 0


def cmd_oom(args, root):
    _values, data_path, _ = _container_args(args, root, "oom")
    import json

    from . import lifecycle

    for event in lifecycle.oom_events(data_path):
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
    return 0


def cmd_list(args, root):
    options = {"--json": False, "-q": False, "--quiet": False, "-f": True, "--format": True}
    values, rest = parse(_urfave(args, options), options, rest="args")
    if rest:
        raise UsageError("list takes no arguments")
    fmt = values.get("-f", values.get("--format"))
    if fmt not in (None, "table", "json"):
        raise UsageError("list: invalid format option %r (table or json)" % fmt)
    values["-q"] = values.get("-q") or values.get("--quiet")
    from . import lifecycle

    rows, refused = [], []
    for row in lifecycle.list_containers(root):
        if row.get("refused"):  # a state the checks refuse: an error (exit 125), said once
            refused.append(row["error"])
        elif "error" in row:  # unreadable: reported, and the others listed (as runc does)
            sys.stderr.write("minins: warning: container %s: %s\n"
                             % (row["id"], one_line(row["error"])))
        else:
            rows.append(row)
    from . import runc

    for r in rows:
        r["owner"] = runc.owner_of(r["data_path"])
    if values.get("--json"):
        _print_json(rows)
    elif values.get("-q"):
        sys.stdout.write("".join(r["id"] + "\n" for r in rows))
    elif fmt == "json":
        import json

        sys.stdout.write(json.dumps([runc.oci_state(r) for r in rows],
                                    separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(runc.list_table(rows))
    for message in refused:  # not in the table (no command can act on it): said on stderr
        sys.stderr.write("minins: error: %s\n" % one_line(message))
    return EXIT_MININS if refused else 0


def _runc(name):
    def cmd(args, root):
        from . import runc

        return getattr(runc, name)(args, root)
    return cmd


def _checkpoint(name):
    def cmd(args, root):
        from . import runc

        return runc.cmd_not_supported(name)(args, root)
    return cmd


COMMANDS = {
    "run": cmd_run,
    "create": cmd_create,
    "start": cmd_start,
    "stop": cmd_stop,
    "config": cmd_config,
    "exec": cmd_exec,
    "state": _on_one("state", "describe"),
    "pause": _on_one("pause", "pause"),
    "resume": _on_one("resume", "resume"),
    "kill": cmd_kill,
    "delete": cmd_delete,
    "ps": cmd_ps,
    "stats": _on_one("stats", "stats"),
    "oom": cmd_oom,
    "list": cmd_list,
    # runc's (minins.runc)
    "events": _runc("cmd_events"),
    "update": _runc("cmd_update"),
    "spec": _runc("cmd_spec"),
    "features": _runc("cmd_features"),
    "checkpoint": _checkpoint("checkpoint"),
    "restore": _checkpoint("restore"),
}
