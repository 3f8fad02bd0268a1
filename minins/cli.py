"""The ``minins`` command line.

Exit codes follow ``docker run`` and ``podman run``: the container's own code (128+N when it
died by signal N); 125 when minins itself fails (one line ``minins: error: ...`` on stderr);
126 when the command cannot be executed; 127 when it is not found.

Each command imports what it needs when it runs: ``minins config`` never loads ctypes, and no
command loads argparse, json or the socket module (see tools/bench_exec.py for the figures).
"""
import os
import sys

from .errors import ConfigError, MininsError

EXIT_MININS = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127

USAGE = """usage: minins [--root DIR] COMMAND [OPTIONS] [ARGS]

Commands:
  run     [--config FILE] [--rootfs DIR] [--data-path DIR] [--id ID] [--tty]
          [--cgroup-driver cgroupfs|systemd] [--] CMD [ARG...]
          run CMD in a new container; exit with its exit code
  config  print the default configuration (container.json)
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
  list                                  the containers under the state root

Global options:
  --root DIR   the state root (default /run/minins; $XDG_RUNTIME_DIR/minins when not root)
  -h, --help   this help
"""


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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        values, rest = _global_options(argv)
        if not rest or rest[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return 0 if rest else 2
        command, args = rest[0], rest[1:]
        handler = COMMANDS.get(command)
        if handler is None:
            raise UsageError("unknown command %r (see minins --help)" % command)
        if "-h" in args[:1] or "--help" in args[:1]:
            sys.stdout.write(USAGE)
            return 0
        return handler(args, values.get("--root"))
    except MininsError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


def _global_options(argv):
    values = {}
    while argv and argv[0] in ("--root",) or argv and argv[0].startswith("--root="):
        name, eq, value = argv.pop(0).partition("=")
        if not eq:
            if not argv:
                raise UsageError("option --root needs a value")
            value = argv.pop(0)
        values[name] = value
    return values, argv


def _fail(e):
    message = str(e).replace("\n", " ")
    sys.stderr.write("minins: error: %s\n" % message)
    if isinstance(e, OSError) and getattr(e, "op", None) == "exec":
        return EXIT_NOT_FOUND if e.errno == 2 else EXIT_CANNOT_EXEC
    return EXIT_MININS


# --- run and config ---------------------------------------------------------------------------

def cmd_config(args, root):
    if args:
        raise UsageError("config takes no arguments")
    from . import config

    sys.stdout.write(config.dumps(config.default_config()) + "\n")
    return 0


def cmd_run(args, root):
    values, command = parse(args, {"--config": True, "--rootfs": True, "--data-path": True,
                                   "--id": True, "--tty": False, "-t": False,
                                   "--cgroup-driver": True})
    if not command:
        raise UsageError("run needs a command (minins run [OPTIONS] -- CMD [ARG...])")
    from . import config as _config

    if "--config" in values:
        cfg = _config.load(values["--config"])
    else:
        cfg = _config.default_config()
        if os.geteuid() != 0:
            cfg = cfg.replace(cgroups=None)  # an unprivileged user cannot make cgroups
    if "--rootfs" in values:
        cfg = cfg.replace(root_fs=os.path.abspath(values["--rootfs"]))
    if values.get("--tty") or values.get("-t"):
        cfg = cfg.replace(tty=True)
    if "--cgroup-driver" in values and cfg.cgroups is not None:  # checked with the cgroups
        cfg = cfg.replace(cgroups=cfg.cgroups.replace(driver=values["--cgroup-driver"]))
    if os.geteuid() != 0:
        # rootless: a user namespace that maps only our own ids, no setuid helper
        cfg = _config.rootless(cfg, os.geteuid(), os.getegid())
    from . import runner

    return runner.run_foreground(cfg, command, container_id=values.get("--id"),
                                 data_path=values.get("--data-path"), state_root=root)


# --- a running container ---------------------------------------------------------------------

def _container_args(args, root, command, flags=(), extra=0):
    """``(values, data_path, rest)`` for a command on one container: ``--data-path DIR``,
    ``--id ID`` or the first positional argument names it; ``flags`` are its own options
    (no value); at most ``extra`` more positional arguments may follow."""
    from . import lifecycle

    options = {"--data-path": True, "--id": True}
    options.update((f, False) for f in flags)
    values, rest = parse(args, options, rest="args")
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
    from . import _json

    sys.stdout.write(_json.dumps(obj, indent=2) + "\n")


def cmd_exec(args, root):
    values, command = parse(args, {"--data-path": True, "--id": True, "--tty": False,
                                   "-t": False, "--env": "multi", "-e": "multi", "--cwd": True,
                                   "--user": True, "-u": True})
    from . import lifecycle

    if "--data-path" in values or "--id" in values:
        data_path = lifecycle.data_path_for(values.get("--id"), values.get("--data-path"),
                                            root)
    elif len(command) >= 2:
        data_path, command = lifecycle.data_path_for(command[0], None, root), command[1:]
    else:
        raise UsageError("exec needs a container and a command "
                         "(minins exec --data-path DIR -- CMD [ARG...])")
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("exec needs a command (minins exec --data-path DIR -- CMD [ARG...])")
    from . import execin

    env = values.get("--env", []) + values.get("-e", [])
    for item in env:
        if "=" not in item or item.startswith("="):
            raise UsageError("--env needs NAME=VALUE, not %r" % item)
    return execin.run_foreground(data_path, command,
                                 tty=bool(values.get("--tty") or values.get("-t")), env=env,
                                 cwd=values.get("--cwd"),
                                 user=values.get("--user", values.get("-u")))


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

    lifecycle.delete(data_path, force=bool(values.get("--force") or values.get("-f")))
    return 0


def cmd_kill(args, root):
    values, data_path, rest = _container_args(args, root, "kill", ("--all", "-a"), extra=1)
    from . import lifecycle

    try:
        sig = lifecycle.parse_signal(rest[0]) if rest else 15
    except ValueError as e:
        raise UsageError(str(e)) from None
    lifecycle.kill(data_path, sig, all_processes=bool(values.get("--all") or values.get("-a")))
    return 0


def cmd_ps(args, root):
    values, data_path, _ = _container_args(args, root, "ps", ("--json",))
    from . import lifecycle

    pids = lifecycle.pids(data_path)
    if values.get("--json"):
        _print_json(pids)
    else:
        sys.stdout.write("".join("%d\n" % p for p in pids))
    return 0


def cmd_oom(args, root):
    _values, data_path, _ = _container_args(args, root, "oom")
    from . import _json
    from . import lifecycle

    for event in lifecycle.oom_events(data_path):
        sys.stdout.write(_json.dumps(event) + "\n")
        sys.stdout.flush()
    return 0


def cmd_list(args, root):
    values, rest = parse(args, {"--json": False, "-q": False}, rest="args")
    if rest:
        raise UsageError("list takes no arguments")
    from . import lifecycle

    rows = lifecycle.list_containers(root)
    if values.get("--json"):
        _print_json(rows)
    elif values.get("-q"):
        sys.stdout.write("".join(r["id"] + "\n" for r in rows))
    else:
        sys.stdout.write("%-20s %-8s %-9s %-30s %s\n" % ("ID", "PID", "STATUS", "CREATED",
                                                         "DATA PATH"))
        for r in rows:
            sys.stdout.write("%-20s %-8s %-9s %-30s %s\n" % (r["id"], r["pid"], r["status"],
                                                             r["created"], r["data_path"]))
    return 0


COMMANDS = {
    "run": cmd_run,
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
}
