"""OCI ``linux.seccomp``: the profile model, its validation and the rule-precedence model.

The record mirrors the runtime specification's ``config-linux.md#seccomp`` field by field
(``defaultAction``, ``defaultErrnoRet``, ``architectures``, ``flags``, ``listenerPath``,
``listenerMetadata``, ``syscalls[].names/action/errnoRet/args[].index/value/valueTwo/op``).
:func:`validate` raises :class:`~minins.errors.ConfigError` naming the field path under a
prefix the caller gives (``seccomp`` for container.json, ``linux.seccomp`` for an OCI bundle)::

    seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_XX"

Semantics (seccomp(2), libseccomp's seccomp_rule_add(3), runc's ``getAction``):

* ``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD``; ``SCMP_ACT_ERRNO`` and ``SCMP_ACT_TRACE``
  carry ``errnoRet`` (EPERM when absent); no other action takes one.
* ``SCMP_CMP_MASKED_EQ`` is ``(arg & value) == valueTwo``; the others compare the argument
  with ``value`` as unsigned 64-bit numbers (only the low 32 bits on 32-bit architectures).
  Several ``args`` of one rule must all hold -- unless two of them compare the same
  argument: then each condition is a rule of its own (any one suffices), as in runc, which
  splits such a rule because libseccomp refuses it (so ``socket`` with ``args[0] == 16`` and
  ``args[0] == 17`` matches both domains instead of none).
* Precedence (:func:`rules_by_number`): for one syscall, every rule with argument conditions is
  tried before any rule without, each group in the profile's order; the first that matches
  decides. So a conditional rule refines an unconditional one whatever their order (as in
  libseccomp, where the more specific chain is checked first), and an unmatched syscall gets
  ``defaultAction``.
* A name the architecture does not have is skipped, as libseccomp does.

Pure: no kernel calls.
"""
from ..errors import ConfigError
from ..record import INT, STR, Field, ListOf, Record

__all__ = ["Seccomp", "SeccompSyscall", "SeccompArg", "validate", "ACTIONS", "OPERATORS",
           "FLAGS", "action_value", "rules_by_number"]

# seccomp(2) return values (linux/seccomp.h)
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

ACTIONS = {
    "SCMP_ACT_KILL": RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_ERRNO": RET_ERRNO,
    "SCMP_ACT_TRACE": RET_TRACE,
    "SCMP_ACT_ALLOW": RET_ALLOW,
    "SCMP_ACT_LOG": RET_LOG,
    "SCMP_ACT_NOTIFY": RET_USER_NOTIF,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")

# seccomp(2) SECCOMP_FILTER_FLAG_*
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
FLAG_NEW_LISTENER = 8
FLAG_TSYNC_ESRCH = 16  # Linux 5.7: TSYNC may be combined with NEW_LISTENER only with it

EPERM = 1
_MAX_ERRNO = 4095  # the kernel caps SECCOMP_RET_ERRNO data there
_U64 = (1 << 64) - 1


class _List(ListOf):
    """A list that may also be JSON null (Go writes nil slices as null)."""

    def load(self, value, path):
        return () if value is None else ListOf.load(self, value, path)


class _OptInt(INT.__class__):
    """An integer that may be absent: ``errnoRet`` 0 is a real value, not "unset"."""

    def load(self, value, path):
        return None if value is None else INT.load(value, path)


class SeccompArg(Record):
    FIELDS = (Field("index", INT, 0, omit=False), Field("value", INT, 0),
              Field("valueTwo", INT, 0), Field("op", STR, ""))


class SeccompSyscall(Record):
    FIELDS = (Field("names", _List(STR), ()), Field("action", STR, ""),
              Field("errnoRet", _OptInt(), None), Field("args", _List(SeccompArg), ()))


class Seccomp(Record):
    FIELDS = (
        Field("defaultAction", STR, ""),
        Field("defaultErrnoRet", _OptInt(), None),
        Field("architectures", _List(STR), ()),
        Field("flags", _List(STR), ()),
        Field("listenerPath", STR, ""),
        Field("listenerMetadata", STR, ""),
        Field("syscalls", _List(SeccompSyscall), ()),
    )

    def uses_notify(self):
        return any(s.action == "SCMP_ACT_NOTIFY" for s in self.syscalls)

    def flag_bits(self):
        """The SECCOMP_FILTER_FLAG_* bits for seccomp(2), NEW_LISTENER added for NOTIFY, and
        with it TSYNC_ESRCH when TSYNC is asked for: the kernel refuses TSYNC with
        NEW_LISTENER (EINVAL) otherwise, and libseccomp adds it too (seccomp(2))."""
        bits = 0
        for f in self.flags:
            bits |= FLAGS[f]
        if self.uses_notify():
            bits |= FLAG_NEW_LISTENER
            if bits & FLAGS["SECCOMP_FILTER_FLAG_TSYNC"]:
                bits |= FLAG_TSYNC_ESRCH
        return bits


def loads(data, field="seccomp"):
    """A validated :class:`Seccomp` from decoded JSON (a dict)."""
    return validate(Seccomp.from_json(data, field), field)


def _quote(value):
    return '"%s"' % value if isinstance(value, str) else repr(value)


def _check_action(action, errno_ret, field, errno_field):
    if not action:
        raise ConfigError(field, "must be set (one of %s)" % ", ".join(sorted(ACTIONS)))
    if action not in ACTIONS:
        raise ConfigError(field, "unknown action %s; known: %s"
                          % (_quote(action), ", ".join(sorted(ACTIONS))))
    if errno_ret is not None:
        if action not in _WITH_ERRNO:
            raise ConfigError(errno_field, "%s takes no errno (only SCMP_ACT_ERRNO and "
                              "SCMP_ACT_TRACE do)" % action)
        if not 0 <= errno_ret <= _MAX_ERRNO:
            raise ConfigError(errno_field, "must be within 0..%d" % _MAX_ERRNO)


def validate(profile, field="seccomp"):
    """Check ``profile``; raise :class:`ConfigError` naming ``field``'s sub-path. Returns it."""
    from . import tables

    if profile.defaultAction == "SCMP_ACT_NOTIFY":
        raise ConfigError(field + ".defaultAction", "SCMP_ACT_NOTIFY cannot be the default "
                          "action (the process sending the listener would block on itself)")
    _check_action(profile.defaultAction, profile.defaultErrnoRet, field + ".defaultAction",
                  field + ".defaultErrnoRet")
    for i, a in enumerate(profile.architectures):
        if a not in tables.ARCHES and a not in tables.OTHER_ARCHES:
            raise ConfigError("%s.architectures[%d]" % (field, i), "unknown architecture %s"
                              % _quote(a))
    for i, f in enumerate(profile.flags):
        if f not in FLAGS:
            raise ConfigError("%s.flags[%d]" % (field, i), "unknown flag %s; known: %s"
                              % (_quote(f), ", ".join(sorted(FLAGS))))
    for i, sc in enumerate(profile.syscalls):
        here = "%s.syscalls[%d]" % (field, i)
        if not sc.names:
            raise ConfigError(here + ".names", "must name at least one syscall")
        for j, name in enumerate(sc.names):
            if not name:
                raise ConfigError("%s.names[%d]" % (here, j), "must not be empty")
        _check_action(sc.action, sc.errnoRet, here + ".action", here + ".errnoRet")
        if sc.action == "SCMP_ACT_NOTIFY" and any(n in _NOTIFY_FORBIDDEN for n in sc.names):
            raise ConfigError(here + ".names", "SCMP_ACT_NOTIFY cannot be used for %s: minins "
                              "sends the listener with it" % ", ".join(
                                  sorted(_NOTIFY_FORBIDDEN & set(sc.names))))
        for k, arg in enumerate(sc.args):
            at = "%s.args[%d]" % (here, k)
            if not 0 <= arg.index <= 5:
                raise ConfigError(at + ".index", "must be within 0..5, not %d" % arg.index)
            for name in ("value", "valueTwo"):
                if not 0 <= getattr(arg, name) <= _U64:
                    raise ConfigError("%s.%s" % (at, name), "must be within 0..2^64-1")
            if arg.op not in OPERATORS:
                raise ConfigError(at + ".op", "unknown operator %s; known: %s"
                                  % (_quote(arg.op), ", ".join(OPERATORS)))
    if profile.uses_notify() and not profile.listenerPath:
        raise ConfigError(field + ".listenerPath", "must be set when an action is "
                          "SCMP_ACT_NOTIFY")
    if profile.listenerPath and not profile.listenerPath.startswith("/"):
        raise ConfigError(field + ".listenerPath", "must be an absolute path")
    return profile


# The calls the loader makes between seccomp() and execve() when NOTIFY is used: a listener
# waiting on them would never get its descriptor.
_NOTIFY_FORBIDDEN = frozenset(("sendmsg", "sendto", "close"))


def action_value(action, errno_ret=None):
    """The SECCOMP_RET_* value of an OCI action; ``errno_ret`` (EPERM when ``None``) is the
    data of SCMP_ACT_ERRNO and SCMP_ACT_TRACE."""
    base = ACTIONS[action]
    if action in _WITH_ERRNO:
        return base | (EPERM if errno_ret is None else errno_ret)
    return base


def default_value(profile):
    return action_value(profile.defaultAction, profile.defaultErrnoRet)


def rules_by_number(profile, syscalls):
    """``{nr: [(conditions, ret), ...]}`` in the order they are tried (see the module
    docstring); ``conditions`` is a tuple of ``(index, op, value, valueTwo)``, empty for an
    unconditional rule; ``syscalls`` is a table's name -> number map. Rules after the first
    unconditional one can never match and are dropped."""
    conditional, unconditional = {}, {}
    for sc in profile.syscalls:
        ret = action_value(sc.action, sc.errnoRet)
        conds = tuple((a.index, a.op, a.value, a.valueTwo) for a in sc.args)
        groups = [conds]
        if len(set(c[0] for c in conds)) < len(conds):
            groups = [(c,) for c in conds]  # one argument compared twice: alternatives
        for name in sc.names:
            nr = syscalls.get(name)
            if nr is None:
                continue  # not on this architecture
            if conds:
                conditional.setdefault(nr, []).extend((g, ret) for g in groups)
            elif nr not in unconditional:
                unconditional[nr] = ((), ret)
    out = {}
    for nr in set(conditional) | set(unconditional):
        rules = conditional.get(nr, [])
        if nr in unconditional:
            rules = rules + [unconditional[nr]]
        out[nr] = rules
    return out
