"""runc's command-line syntax (urfave/cli's, as runc 1.1 parses it), and the rule that tells
runc's ``create``/``run``/``exec`` forms from minins's own. Kept apart from :mod:`minins.runc`
so that deciding which form a command line is, and parsing ``exec``'s options, imports
nothing but this (``minins run -- true`` never loads minins.runc nor minins.oci).
"""
import os

from .cli import UsageError

FLAG, VALUE, MULTI = "flag", "value", "multi"


# --- runc's option parser ------------------------------------------------------------------

def parse(argv, table, command):
    """Split ``argv`` as runc's urfave/cli does: options (``--name``, ``-name``,
    ``--name=value``, ``-n value``; booleans also ``--name=true|false``) up to the first
    argument that is not one, or ``--``; the rest is positional. ``table`` maps each option
    spelling to ``(key, kind)``. Returns ``(values, positionals)``."""
    values, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return values, list(argv[i + 1:])
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        spec = table.get(name) or (table.get("-" + name) if not name.startswith("--") else None)
        if spec is None:
            raise UsageError("%s: flag provided but not defined: %s (see minins %s --help)"
                             % (command, name, command))
        key, kind = spec
        i += 1
        if kind == FLAG:
            if eq and value not in ("true", "false", "1", "0"):
                raise UsageError("%s: invalid boolean value %r for %s" % (command, value, name))
            values[key] = not eq or value in ("true", "1")
            continue
        if not eq:
            if i == len(argv):
                raise UsageError("%s: flag needs an argument: %s" % (command, name))
            value = argv[i]
            i += 1
        if kind == MULTI:
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
    return values, list(argv[i:])


def _table(*rows):
    out = {}
    for names, key, kind in rows:
        for n in names.split():
            out[n] = (key, kind)
    return out


_COMMON_CREATE = (
    ("-b --bundle", "bundle", VALUE),
    ("--console-socket", "console_socket", VALUE),
    ("--pid-file", "pid_file", VALUE),
    ("--no-pivot", "no_pivot", FLAG),
    ("--no-new-keyring", "no_new_keyring", FLAG),
    ("--preserve-fds", "preserve_fds", VALUE),
)
CREATE = _table(*_COMMON_CREATE)
RUN = _table(*(_COMMON_CREATE + (("-d --detach", "detach", FLAG), ("--keep", "keep", FLAG),
                                  ("--no-subreaper", "no_subreaper", FLAG))))
#: options only runc's run/create have: any of them makes the form runc's
RUNC_ONLY_RUN = ("-b", "--bundle", "--console-socket", "--no-pivot", "--no-new-keyring",
                 "--preserve-fds", "--keep", "--no-subreaper")


def _option_names(argv):
    for arg in argv:
        if arg == "--":
            return
        if arg.startswith("-"):
            yield arg.partition("=")[0]


def is_runc_create(argv):
    """``create`` is runc's unless it names minins's ``--id`` or ``--data-path``, which
    minins's own create requires."""
    return not any(n in ("--id", "--data-path") for n in _option_names(argv))


def is_runc_run(argv, cwd=None):
    """``run`` is runc's when it has an option only runc's run has (``-b/--bundle``,
    ``--console-socket``, ``--no-pivot``, ``--no-new-keyring``, ``--preserve-fds``,
    ``--keep``); or when, with no ``--``, it holds nothing but runc's run options and exactly
    one more argument (the id) and the bundle (the current directory) has a config.json."""
    names = list(_option_names(argv))
    if any(n in RUNC_ONLY_RUN for n in names):
        return True
    if "--" in argv:
        return False
    try:
        _values, rest = parse(argv, RUN, "run")
    except UsageError:
        return False
    return len(rest) == 1 and os.path.isfile(os.path.join(cwd or os.getcwd(), "config.json"))


def _one_id(positionals, command):
    if len(positionals) != 1:
        raise UsageError('%s: "%s" requires exactly 1 argument(s): the container id'
                         % (command, command))
    from . import state as _state

    _state.validate_id(positionals[0], "container id")
    return positionals[0]


def int_option(values, key, name, minimum=0):
    text = values.get(key)
    if text is None:
        return None
    try:
        n = int(text)
        if n < minimum:
            raise ValueError
    except ValueError:
        raise UsageError("%s: %r is not a number >= %d" % (name, text, minimum)) from None
    return n
