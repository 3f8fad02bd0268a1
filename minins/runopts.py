"""The container options of ``run``, ``create`` and ``config``, with docker's and podman's names
and meanings, and each command's own ``--help``.

    values, command = parse(argv, "run")           # syntax only; UsageError names the option
    cfg = build_config(values, os.geteuid(), os.getegid())   # a validated minins.config.Config

:func:`parse` turns the arguments after the command name into ``values`` (a dict, below) and
the container's command (everything from the first positional argument, or after ``--``).
Long options take ``--name VALUE`` or ``--name=VALUE``; short ones ``-e VALUE`` or
``-eVALUE`` and may be grouped (``-td``), as docker's command line (spf13/pflag) does. For
these three commands ``-h`` is ``--hostname``, as in docker; ``--help`` sets
``values["help"]`` and stops parsing.

:func:`build_config` loads ``--config`` (or :func:`minins.config.default_config`) and
applies each option exactly as the equivalent ``container.json`` field would, so that
``minins config [options]`` prints a configuration that ``run --config`` runs the same way:

==========================  ==================================================================
option                      container.json field
==========================  ==================================================================
``-e/--env K=V``, ``K``     ``environment`` (replaces ``K``'s entry or appends; a bare ``K``
                            takes the caller's value, or is skipped when unset)
``--env-file FILE``         the same, one ``K=V`` or ``K`` per line, ``#`` comments; applied
                            before every ``-e``, as docker does
``-u/--user USER[:GROUP]``  ``user``
``-w/--workdir DIR``        ``working_dir`` (absolute)
``-h/--hostname NAME``      ``hostname``, and ``HOSTNAME=`` in ``environment`` when the
                            environment has that entry (docker sets both)
``-v/--volume SRC:DST[:O]`` ``mount_config.mounts``: ``bind``, ``writable`` unless ``ro``;
                            options ``ro``/``rw``, ``z``/``Z`` (``relabel``), ``private``,
                            ``slave`` (``rprivate``/``rslave`` too); SRC absolute
``--tmpfs DST[:OPTS]``      ``mount_config.mounts``: ``tmpfs``; OPTS go to ``data`` (``size=``,
                            ``mode=``, ``nr_inodes=``...; default ``mode=1777``), ``ro``/``rw``
                            set ``writable``, ``nosuid``/``nodev`` are always on
``--read-only``             ``mount_config.readonly_fs``
``-m/--memory SIZE``        ``cgroups.memory`` (bytes; :func:`parse_size`)
``--pids-limit N``          ``cgroups.pids_limit`` (-1 or 0: no limit)
``--cpus N.N``              ``cgroups.cpu_quota`` = N.N x 100000, ``cpu_period`` = 100000 (µs)
``--network none``          a ``NEWNET`` namespace of its own with only ``lo`` (``networks`` =
                            loopback, ``routes`` cleared)
``--network bridge:NAME``   the same plus a ``veth`` into the existing bridge NAME
``--ip CIDR``               that veth's ``address`` (or ``ipv6_address``)
``--gateway IP``            its ``gateway`` (or ``ipv6_gateway``)
``--rootfs DIR``            ``root_fs`` (made absolute)
``-t/--tty``                ``tty``
``--stop-signal SIGNAL``    ``stop_signal`` (what ``minins stop`` sends first)
==========================  ==================================================================

A mount on a destination the configuration already mounts replaces that mount (``--tmpfs
/tmp`` changes the default's ``/tmp``). As a non-root user (``euid != 0``) the configuration
is adapted as ``minins run`` always did: a ``cgroups`` section without limits (``{}``) is
dropped, since an unprivileged user makes no cgroup, and a limit is a one-line error naming
the field and the option that set it; a veth is refused the same way; then
:func:`minins.config.rootless` adds the user namespace mapping only the caller's ids.

``values`` keys (only those given): ``config``, ``rootfs``, ``id``, ``data_path``,
``pid_file``, ``user``, ``workdir``, ``hostname``, ``memory``, ``pids_limit``, ``cpus``,
``network``, ``ip``, ``gateway``, ``stop_signal`` (str); ``env``, ``env_file``, ``volume``, ``tmpfs`` (lists of
str, in order); ``tty``, ``read_only``, ``detach``, ``help`` (True).

Errors: :class:`minins.errors.ConfigError` naming the option (``--memory: '12x' is not a
size ...``) or the configuration field.

Sources: docker run(1) and podman-run(1); docker's size syntax is go-units' ``RAMInBytes``;
runc's ``--cpus`` conversion (libcontainer/cgroups/fs/cpu.go: quota = cpus x period);
the kernel's sched-bwc.rst (a quota of at least 1000 µs).
"""
import os

from .errors import ConfigError

__all__ = ["parse", "build_config", "help_text", "parse_size", "parse_cpus", "parse_env_file",
           "COMMANDS", "CPU_PERIOD"]

CPU_PERIOD = 100000  # µs, docker's and runc's default CFS period
MIN_CPU_QUOTA = 1000  # µs, the least cpu.cfs_quota_us the kernel takes
FLAG, VALUE, MULTI = "flag", "value", "multi"

# (long name, short letter or "", kind, metavar, help)
_CONTAINER_OPTIONS = (
    ("config", "", VALUE, "FILE", "start from this container.json instead of the default"),
    ("rootfs", "", VALUE, "DIR", "the container's root filesystem (default: the host's /, "
     "read-only)"),
    ("env", "e", MULTI, "K=V", "set an environment variable (K alone: the caller's value); "
     "repeatable"),
    ("env-file", "", MULTI, "FILE", "read K=V lines (# comments) into the environment"),
    ("user", "u", VALUE, "USER[:GROUP]", "run as this user (name or uid, from the "
     "container's /etc/passwd)"),
    ("workdir", "w", VALUE, "DIR", "working directory inside the container (absolute)"),
    ("hostname", "h", VALUE, "NAME", "the container's hostname"),
    ("volume", "v", MULTI, "SRC:DST[:ro]", "bind the host's SRC (absolute) on DST; options "
     "ro, rw, z, Z, private, slave"),
    ("tmpfs", "", MULTI, "DST[:OPTS]", "mount a tmpfs on DST (OPTS: size=64m,mode=1777,ro)"),
    ("read-only", "", FLAG, "", "make the root filesystem read-only"),
    ("memory", "m", VALUE, "SIZE", "memory limit, bytes or with a k, m or g suffix (512m)"),
    ("pids-limit", "", VALUE, "N", "at most N processes (-1: no limit)"),
    ("cpus", "", VALUE, "N.N", "CPU time limit in CPUs (1.5: a CFS quota of 150000 per "
     "100000 µs)"),
    ("network", "", VALUE, "none|bridge:NAME", "network: none (only lo), or a veth into the "
     "existing bridge NAME"),
    ("ip", "", VALUE, "CIDR", "the veth's address, like 198.18.0.2/24 (with bridge:NAME)"),
    ("gateway", "", VALUE, "IP", "the default gateway through the veth (with --ip)"),
    ("tty", "t", FLAG, "", "give the container a terminal and relay yours to it"),
    ("stop-signal", "", VALUE, "SIGNAL", "what `minins stop` sends first (default SIGTERM)"),
    ("seccomp", "", VALUE, "default|unconfined|FILE", "the syscall filter: the default "
     "profile, none, or an OCI linux.seccomp JSON file"),
    ("cgroup-driver", "", VALUE, "cgroupfs|systemd", "who makes the container's cgroups: "
     "minins itself, or systemd (a transient scope, over D-Bus)"),
)
_ID = ("id", "", VALUE, "ID", "the container's id (default: a random one)")
_ID_REQUIRED = ("id", "", VALUE, "ID", "the container's id (required)")
_DATA_PATH = ("data-path", "", VALUE, "DIR", "where its state lives (default: <state root>/ID)")
_DETACH = ("detach", "d", FLAG, "", "create and start it, then exit (do not wait)")
_PID_FILE = ("pid-file", "", VALUE, "FILE", "write the init's host pid to FILE")
_HELP = ("help", "", FLAG, "", "this help")

COMMANDS = {
    "run": _CONTAINER_OPTIONS + (_ID, _DATA_PATH, _DETACH, _PID_FILE, _HELP),
    "create": _CONTAINER_OPTIONS + (_ID_REQUIRED, _DATA_PATH, _PID_FILE, _HELP),
    "config": _CONTAINER_OPTIONS + (_HELP,),
}


def _usage_error(message):
    return ConfigError("", message)  # printed as "minins: error: MESSAGE", exit 125


def _tables(command):
    try:
        options = COMMANDS[command]
    except KeyError:
        raise ValueError("no container options for command %r" % (command,)) from None
    longs = {o[0]: o for o in options}
    shorts = {o[1]: o for o in options if o[1]}
    return longs, shorts


def _key(long_name):
    return long_name.replace("-", "_")


def _store(values, option, value):
    long_name, _short, kind = option[:3]
    if kind == MULTI:
        values.setdefault(_key(long_name), []).append(value)
    elif kind == VALUE:
        values[_key(long_name)] = value
    else:
        values[_key(long_name)] = True


def parse(args, command):
    """Split the arguments of ``run``, ``create`` or ``config`` into ``(values, argv)``:
    ``values`` as in the module docstring, ``argv`` the container's command. Raises
    :class:`ConfigError` without a field (exit 125) for an unknown option, a missing value, a
    missing command (``run``, ``create``), a command given to ``config``, or ``create``
    without ``--id``."""
    longs, shorts = _tables(command)
    values, argv = {}, []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            argv = list(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            option = longs.get(name)
            if option is None:
                raise _usage_error("%s: unknown option %s (see minins %s --help)"
                                   % (command, "--" + name, command))
            if option[2] == FLAG:
                if eq:
                    raise _usage_error("option --%s takes no value" % name)
            elif not eq:
                if i == len(args):
                    raise _usage_error("option --%s needs a value (%s)" % (name, option[3]))
                value = args[i]
                i += 1
            if name == "help":
                return {"help": True}, []
            _store(values, option, value)
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                option = shorts.get(arg[j])
                if option is None:
                    raise _usage_error("%s: unknown option -%s (see minins %s --help)"
                                       % (command, arg[j], command))
                j += 1
                if option[2] == FLAG:
                    _store(values, option, True)
                    continue
                value = arg[j + 1:] if arg[j:j + 1] == "=" else arg[j:]  # -e=K=V: pflag's
                if not value and j == len(arg):
                    if i == len(args):
                        raise _usage_error("option -%s needs a value (%s)"
                                           % (option[1], option[3]))
                    value = args[i]
                    i += 1
                _store(values, option, value)
                break
            continue
        argv = list(args[i - 1:])
        break
    if command == "config":
        if argv:
            raise _usage_error("config takes no command (minins config [OPTIONS])")
    elif not argv:
        raise _usage_error("%s needs a command (minins %s [OPTIONS] [--] CMD [ARG...])"
                           % (command, command))
    if command == "create" and "id" not in values:
        raise _usage_error("create needs --id ID (the id that start, exec and delete use)")
    return values, argv


# --- values ----------------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
          "p": 1 << 50}


def parse_size(text, field="--memory"):
    """A size as docker reads ``--memory``: digits with an optional fraction, an optional
    space, then an optional unit ``b``, ``k``, ``m``, ``g``, ``t`` or ``p`` (any case, binary:
    ``k`` is 1024) optionally followed by ``i`` and/or ``b`` (``512m``, ``1.5g``, ``64KiB``,
    ``100``) -> bytes, an int (a fraction of a byte is dropped). :class:`ConfigError` naming
    ``field`` otherwise. (go-units ``RAMInBytes``; exact arithmetic instead of float64.)"""
    from fractions import Fraction

    s = text if isinstance(text, str) else ""
    n = 0
    while n < len(s) and s[n] in "0123456789.":
        n += 1
    number, rest = s[:n], s[n:]
    if rest.startswith(" "):
        rest = rest[1:]
    unit = rest[:1].lower() if rest[:1].lower() in "kmgtp" and rest else ""
    tail = rest[len(unit):].lower()
    ok = (number and number[0].isdigit() and number.count(".") <= 1
          and not number.endswith(".") and tail in ("", "i", "b", "ib"))
    if not ok:
        raise ConfigError(field, "%r is not a size: use bytes or a number with a k, m or g "
                          "suffix, like 512m or 1.5g" % (text,))
    return int(Fraction(number) * _UNITS[unit])


def parse_cpus(text, field="--cpus"):
    """``--cpus N.N`` -> ``(cpu_quota, cpu_period)`` in µs, period 100000 as docker and runc
    use; ``0`` means no limit (``(0, 0)``). At least 0.01 CPU (the kernel's 1 ms quota)."""
    from fractions import Fraction

    s = text if isinstance(text, str) else ""
    whole, dot, frac = s.partition(".")
    if (not (whole or frac) or not set(whole + frac) <= set("0123456789")
            or (dot and not frac)):
        raise ConfigError(field, "%r is not a number of CPUs, like 1.5" % (text,))
    cpus = Fraction(s if whole else "0" + s)
    if cpus == 0:
        return 0, 0
    quota = int(cpus * CPU_PERIOD)
    if quota < MIN_CPU_QUOTA:
        raise ConfigError(field, "%s is less than 0.01 CPU, the least a CFS quota can give"
                          % s)
    return quota, CPU_PERIOD


def parse_env_file(text, environ=None, field="--env-file"):
    """docker's env-file format -> ``[(name, value)]``: one ``NAME=VALUE`` (taken literally,
    no quotes) or bare ``NAME`` (the caller's value, skipped when unset) per line; blank lines
    and lines starting with ``#`` are skipped; leading whitespace is ignored."""
    environ = os.environ if environ is None else environ
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        out.extend(_env_item(line, environ, "%s line %d" % (field, number)))
    return out


def _env_item(item, environ, field):
    name, eq, value = item.partition("=")
    if not name or any(c.isspace() for c in name) or "\0" in item:
        raise ConfigError(field, "%r is not NAME=VALUE or NAME (the name may not be empty or "
                          "contain whitespace)" % item)
    if eq:
        return [(name, value)]
    if name in environ:
        return [(name, environ[name])]
    return []


def _set_env(environment, name, value):
    entry = "%s=%s" % (name, value)
    out, done = [], False
    for e in environment:
        if e.partition("=")[0] == name:
            if not done:
                out.append(entry)
                done = True
            continue
        out.append(e)
    if not done:
        out.append(entry)
    return tuple(out)


def _abs_path(path, field, what):
    if not path.startswith("/"):
        raise ConfigError(field, "%s %r must be an absolute path" % (what, path))
    return os.path.normpath(path) if path != "/" else path


_VOLUME_OPTIONS = {"ro", "rw", "z", "Z", "private", "rprivate", "slave", "rslave"}


def parse_volume(text, field="--volume"):
    """``SRC:DST[:OPTS]`` -> a :class:`minins.config.Mount` (bind)."""
    from .config import Mount

    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(field, "%r is not SRC:DST[:OPTIONS] (named and anonymous volumes "
                          "are not supported: give a host directory)" % text)
    src = _abs_path(parts[0], field, "the source")
    dst = _abs_path(parts[1], field, "the destination")
    opts = [o for o in parts[2].split(",") if o] if len(parts) == 3 else []
    bad = [o for o in opts if o not in _VOLUME_OPTIONS]
    if bad:
        raise ConfigError(field, "unknown volume option %r in %r (known: ro, rw, z, Z, "
                          "private, slave)" % (bad[0], text))
    if "ro" in opts and "rw" in opts:
        raise ConfigError(field, "%r is both ro and rw" % text)
    if {"z", "Z"} <= set(opts):
        raise ConfigError(field, "%r is both z and Z" % text)
    private = bool({"private", "rprivate"} & set(opts))
    slave = bool({"slave", "rslave"} & set(opts))
    if private and slave:
        raise ConfigError(field, "%r is both private and slave" % text)
    relabel = "Z" if "Z" in opts else "z" if "z" in opts else ""
    return Mount(type="bind", source=src, destination=dst, writable="ro" not in opts,
                 relabel=relabel, private=private, slave=slave)


def parse_tmpfs(text, field="--tmpfs"):
    """``DST[:OPTS]`` -> a :class:`minins.config.Mount` (tmpfs)."""
    from .config import Mount

    dst, _colon, opts = text.partition(":")
    dst = _abs_path(dst, field, "the destination")
    writable, data = True, []
    for o in (x for x in opts.split(",") if x):
        if o in ("ro", "rw"):
            writable = o == "rw"
        elif o in ("nosuid", "nodev"):
            pass  # always set on a tmpfs of minins
        elif o in ("noexec", "exec", "suid", "dev"):
            raise ConfigError(field, "option %r is not supported (container.json has no field "
                              "for it; nosuid and nodev are always on)" % o)
        else:
            data.append(o)
    if not any(d.startswith("mode=") for d in data):
        data.append("mode=1777")
    return Mount(type="tmpfs", destination=dst, writable=writable, data=",".join(data))


def _int(text, field, low):
    digits = text[1:] if text[:1] == "-" else text
    if not digits or not all(c in "0123456789" for c in digits):
        raise ConfigError(field, "%r is not an integer" % (text,))
    n = int(text)
    if n < low:
        raise ConfigError(field, "must be at least %d, not %d" % (low, n))
    return n


# --- the configuration ---------------------------------------------------------------------

def build_config(values, euid, egid, environ=None):
    """The configuration ``values`` (from :func:`parse`) describe: ``--config`` or the
    default, each option applied as its container.json field, adapted for an unprivileged
    caller when ``euid != 0``, validated. ``environ`` (default ``os.environ``) gives the
    values of bare ``-e NAME``. Raises :class:`ConfigError` naming the option or field."""
    from . import config as _config

    environ = os.environ if environ is None else environ
    if values.get("config"):
        cfg = _config.load(values["config"])
    else:
        # an image has no host sockets to hide: only /tmp and /run of its own then
        cfg = _config.default_config(os.path.abspath(values.get("rootfs") or "/"))
    set_by = {}  # config field -> the option that set it, for the rootless errors
    changes = {}
    if "rootfs" in values:
        changes["root_fs"] = os.path.abspath(values["rootfs"])
    if values.get("tty"):
        changes["tty"] = True
    if "seccomp" in values:
        from .seccomp import option_value

        changes["seccomp"] = option_value(values["seccomp"])
    if "cgroup_driver" in values:
        if cfg.cgroups is not None:  # checked with the cgroups; rootless has none
            changes["cgroups"] = cfg.cgroups.replace(driver=values["cgroup_driver"])
    if "user" in values:
        changes["user"] = _user(values["user"])
    if "stop_signal" in values:
        from .signals import parse_signal

        try:
            if parse_signal(values["stop_signal"]) == 0:
                raise ValueError("signal 0 stops nothing")
        except ValueError as e:
            raise ConfigError("--stop-signal", str(e)) from None
        changes["stop_signal"] = values["stop_signal"]
    if "workdir" in values:
        changes["working_dir"] = _abs_path(values["workdir"], "--workdir",
                                           "the working directory")
    environment = cfg.environment
    if "hostname" in values:
        changes["hostname"] = values["hostname"]
        if any(e.startswith("HOSTNAME=") for e in environment):
            environment = _set_env(environment, "HOSTNAME", values["hostname"])
    for path in values.get("env_file", ()):
        for name, value in parse_env_file(_read(path, "--env-file"), environ,
                                          "--env-file %s" % path):
            environment = _set_env(environment, name, value)
    for item in values.get("env", ()):
        for name, value in _env_item(item, environ, "--env"):
            environment = _set_env(environment, name, value)
    if environment != cfg.environment:
        changes["environment"] = environment
    cfg = cfg.replace(**changes)
    cfg = _apply_mounts(cfg, values)
    cfg = _apply_cgroups(cfg, values, set_by)
    cfg = _apply_network(cfg, values)
    if euid != 0:
        cfg = _rootless(cfg, euid, egid, set_by)
    _config.validate(cfg)
    return cfg


def _read(path, field):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(field, "cannot read %s: %s" % (path, e.strerror)) from None


def _user(text):
    parts = text.split(":")
    if len(parts) > 2 or not all(parts):
        raise ConfigError("--user", "must be USER[:GROUP] (names or numbers), not %r" % text)
    return text


def _apply_mounts(cfg, values):
    from .config import MountConfig

    volumes = [parse_volume(v) for v in values.get("volume", ())]
    tmpfs = [parse_tmpfs(t) for t in values.get("tmpfs", ())]
    if not volumes and not tmpfs and not values.get("read_only"):
        return cfg
    mc = cfg.mount_config or MountConfig()
    mounts = list(mc.mounts)
    for m in volumes + tmpfs:  # one on a destination mounted already takes its place
        same = [i for i, x in enumerate(mounts)
                if x.destination.rstrip("/") == m.destination.rstrip("/")]
        if same:
            mounts[same[0]] = m
            mounts = [x for i, x in enumerate(mounts) if i not in same[1:]]
        else:
            mounts.append(m)
    mc = mc.replace(mounts=tuple(mounts))
    if values.get("read_only"):
        mc = mc.replace(readonly_fs=True)
    cfg = cfg.replace(mount_config=mc)
    if not cfg.has_namespace("NEWNS"):
        raise ConfigError("--volume" if volumes else "--tmpfs" if tmpfs else "--read-only",
                          "needs a mount namespace (NEWNS) in the configuration")
    return cfg


def _apply_cgroups(cfg, values, set_by):
    from .config import Cgroup

    limits = {}
    if "memory" in values:
        limits["memory"] = parse_size(values["memory"], "--memory")
        set_by["memory"] = "--memory"
    if "pids_limit" in values:
        limits["pids_limit"] = _int(values["pids_limit"], "--pids-limit", -1)
        set_by["pids_limit"] = "--pids-limit"
    if "cpus" in values:
        limits["cpu_quota"], limits["cpu_period"] = parse_cpus(values["cpus"])
        set_by["cpu_quota"] = set_by["cpu_period"] = "--cpus"
    if not limits:
        return cfg
    return cfg.replace(cgroups=(cfg.cgroups or Cgroup()).replace(**limits))


def _apply_network(cfg, values):
    from .config import Namespace, Network

    network = values.get("network")
    if network is None:
        for opt in ("ip", "gateway"):
            if opt in values:
                raise ConfigError("--" + opt, "needs --network bridge:NAME")
        return cfg
    networks = [Network(type="loopback")]
    if network == "none":
        for opt in ("ip", "gateway"):
            if opt in values:
                raise ConfigError("--" + opt, "needs --network bridge:NAME, not none")
    elif network.startswith("bridge:") and network[7:]:
        networks.append(_veth(network[7:], values.get("ip"), values.get("gateway")))
    else:
        raise ConfigError("--network", "%r is not none or bridge:NAME (a veth into the "
                          "existing bridge NAME)" % network)
    namespaces = tuple(ns for ns in cfg.namespaces if ns.type != "NEWNET")
    namespaces += (Namespace(type="NEWNET"),)
    return cfg.replace(namespaces=namespaces, networks=tuple(networks), routes=())


def _veth(bridge, ip, gateway):
    import ipaddress

    from .config import Network

    fields = {"type": "veth", "bridge": bridge, "veth_prefix": "veth"}
    family = None
    if ip is not None:
        if "/" not in ip:
            raise ConfigError("--ip", "%r needs a prefix length, like 198.18.0.2/24" % ip)
        try:
            family = ipaddress.ip_interface(ip).version
        except ValueError:
            raise ConfigError("--ip", "%r is not an address with a prefix length, like "
                              "198.18.0.2/24" % ip) from None
        fields["address" if family == 4 else "ipv6_address"] = ip
    if gateway is not None:
        if family is None:
            raise ConfigError("--gateway", "needs --ip (an address on the link)")
        try:
            gw = ipaddress.ip_address(gateway).version
        except ValueError:
            raise ConfigError("--gateway", "%r is not an IP address" % gateway) from None
        if gw != family:
            raise ConfigError("--gateway", "%s is IPv%d but --ip is IPv%d" % (gateway, gw,
                                                                               family))
        fields["gateway" if gw == 4 else "ipv6_gateway"] = gateway
    return Network(**fields)


_LIMITS = ("memory", "memory_reservation", "memory_swap", "cpu_shares", "cpu_quota",
           "cpu_period", "cpuset_cpus", "cpuset_mems", "blkio_weight", "pids_limit", "freezer")


def _rootless(cfg, euid, egid, set_by):
    """An unprivileged caller gets no cgroup and no veth (both need root on the host): a
    ``cgroups`` section without limits is dropped as the default's is; a limit is an
    error."""
    from . import config as _config

    if cfg.cgroups is not None:
        for name in _LIMITS:
            if getattr(cfg.cgroups, name):
                how = (" (set by %s)" % set_by[name]) if name in set_by else ""
                raise ConfigError("cgroups." + name, "a rootless container gets no cgroup, "
                                  "so this limit%s cannot be applied; run as root or drop it"
                                  % how)
        cfg = cfg.replace(cgroups=None)
    for i, net in enumerate(cfg.networks):
        if net.type == "veth":
            raise ConfigError("networks[%d]" % i, "a veth into a host bridge needs root on the "
                              "host; a rootless container can only have --network none")
    return _config.rootless(cfg, euid, egid)


# --- help ------------------------------------------------------------------------------------

_CONTAINER_ARGS = "(--data-path DIR | ID)"
_HELP = {
    "run": ("run [OPTIONS] [--] CMD [ARG...]",
            "Run CMD in a new container and exit with its exit code (125: minins failed, "
            "126: CMD cannot be executed, 127: not found). With -d, create and start it and "
            "exit at once."),
    "create": ("create [OPTIONS] --id ID [--pid-file FILE] [--] CMD [ARG...]",
               "Create a container up to the start of CMD (namespaces, cgroups, network, "
               "mounts) and exit; `minins start ID` runs CMD."),
    "config": ("config [OPTIONS]",
               "Print the configuration (container.json) that `minins run` with the same "
               "OPTIONS uses; `minins run --config FILE` of it behaves the same."),
    "start": ("start ID",
              "Start the command of a created container; exit 0 once it runs, 126 or 127 "
              "when it cannot be executed or is not found."),
    "stop": ("stop [-t SECONDS] [-s SIGNAL] " + _CONTAINER_ARGS,
             "Send the stop signal to the container's init, then SIGKILL after SECONDS "
             "(default 10); a stopped container is success.\n\nOptions:\n"
             "  -t, --time SECONDS  how long to wait before SIGKILL (default 10)\n"
             "  -s, --signal SIGNAL the stop signal (default: the stop_signal of the\n"
             "                      container's config, set by run --stop-signal; else TERM)"),
    "exec": ("exec [OPTIONS] (--data-path DIR | --id ID | ID) [--] CMD [ARG...]",
             "Run CMD inside a running container, with its namespaces, cgroups, environment, "
             "user and capabilities; exit with its exit code.\n\nOptions:\n"
             "  -e, --env K=V      set an environment variable (repeatable)\n"
             "  --cwd DIR          working directory inside the container\n"
             "  -u, --user U       run as this user (name|uid[:group|gid])\n"
             "  -t, --tty          give the command a terminal\n"
             "  --data-path DIR    the container's data path (instead of ID)\n"
             "  --id ID            the container's id"),
    "state": ("state " + _CONTAINER_ARGS,
              "Print the container's state as JSON (status derived from the kernel: created, "
              "running, paused or stopped)."),
    "pause": ("pause " + _CONTAINER_ARGS, "Freeze every process of the container."),
    "resume": ("resume " + _CONTAINER_ARGS, "Thaw a paused container."),
    "kill": ("kill [--all] " + _CONTAINER_ARGS + " [SIGNAL]",
             "Send SIGNAL (default TERM; KILL, SIGUSR1, 9, RTMIN+3...) to the container's "
             "init.\n\nOptions:\n  -a, --all  signal every process of the container"),
    "delete": ("delete [--force] " + _CONTAINER_ARGS,
               "Remove what a stopped container left: its cgroups and state.\n\nOptions:\n"
               "  -f, --force  kill a container that still runs first"),
    "ps": ("ps [--json] " + _CONTAINER_ARGS,
           "Print the pids of the container's processes.\n\nOptions:\n"
           "  --json  as a JSON list"),
    "stats": ("stats " + _CONTAINER_ARGS,
              "Print the container's resource usage as JSON (cgroups and network)."),
    "oom": ("oom " + _CONTAINER_ARGS, "Print one JSON line per OOM kill as it happens."),
    "list": ("list [--json | -q]",
             "List the containers under the state root.\n\nOptions:\n"
             "  --json  as JSON\n  -q      ids only"),
}


def _option_lines(command):
    import textwrap

    lines = []
    for long_name, short, kind, metavar, text in COMMANDS[command]:
        flag = ("-%s, --%s" % (short, long_name)) if short else "    --%s" % long_name
        if kind != FLAG:
            flag += " " + metavar
        body = textwrap.wrap(text, 79 - 33)
        if len(flag) > 30:
            lines.append("  " + flag)
            lines.extend(" " * 33 + b for b in body)
        else:
            lines.append("  %-30s %s" % (flag, body[0]))
            lines.extend(" " * 33 + b for b in body[1:])
    return "\n".join(lines)


def help_text(command):
    """``minins COMMAND --help``: the usage line, what the command does, its options.
    ``ValueError`` for a command it does not know."""
    import textwrap

    if command not in _HELP:
        raise ValueError("no help for command %r" % (command,))
    usage, text = _HELP[command]
    about, _sep, options = text.partition("\n\n")
    out = "usage: minins [--root DIR] %s\n\n%s\n" % (usage, textwrap.fill(about, 79))
    if options:
        out += "\n" + options + "\n"
    if command in COMMANDS:
        out += "\nOptions:\n%s\n" % _option_lines(command)
        if command == "run":
            out += ("\nExamples:\n"
                    "  minins run -e A=1 -w /tmp -m 256m --cpus 0.5 -- sh -c 'echo $A'\n"
                    "  minins run -v /srv/data:/data:ro --network bridge:br0 \\\n"
                    "             --ip 198.18.0.2/24 --gateway 198.18.0.1 -- sh\n")
    return out
