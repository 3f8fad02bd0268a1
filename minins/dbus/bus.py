"""The message bus's own methods (``org.freedesktop.DBus``) and match rules.

Each function takes a bus :class:`~minins.dbus.sock.Connection` first. Match rules are
built by :func:`match_rule` (pure): ``key='value'`` pairs joined by commas, a quote in a
value written as ``'\\''`` (Specification, "Match Rules").

Specification: "Message Bus Specification", "Message Bus Messages".
"""
from .sock import BUS_INTERFACE, BUS_NAME, BUS_PATH

# RequestName flags and answers
DO_NOT_QUEUE = 0x4
PRIMARY_OWNER = 1


def _call(conn, member, signature="", body=(), op=None):
    return conn.call(BUS_NAME, BUS_PATH, BUS_INTERFACE, member, signature, body, op=op)


def hello(conn):
    """``Hello``: the connection's unique name (``:1.42``). :class:`Connection` calls it."""
    return _call(conn, "Hello")[0]


def list_names(conn):
    """``ListNames``: every name on the bus, unique and well-known."""
    return list(_call(conn, "ListNames")[0])


def get_name_owner(conn, name):
    """``GetNameOwner``: the unique name owning ``name``; raises
    :class:`~minins.errors.DBusError` ``org.freedesktop.DBus.Error.NameHasNoOwner``."""
    return _call(conn, "GetNameOwner", "s", (name,), op="GetNameOwner %s" % name)[0]


def request_name(conn, name, flags=DO_NOT_QUEUE):
    """``RequestName``: 1 when this connection became the primary owner."""
    return _call(conn, "RequestName", "su", (name, flags), op="RequestName %s" % name)[0]


def add_match(conn, rule):
    """``AddMatch``: signals matching ``rule`` (a string, see :func:`match_rule`) are
    routed to this connection."""
    _call(conn, "AddMatch", "s", (rule,), op="AddMatch %s" % rule)


def remove_match(conn, rule):
    _call(conn, "RemoveMatch", "s", (rule,), op="RemoveMatch %s" % rule)


def match_rule(**keys):
    """A match rule from ``type``, ``sender``, ``interface``, ``member``, ``path``,
    ``destination``, ``arg0`` ... keys, in a fixed order; ``None`` values are left out."""
    order = ("type", "sender", "interface", "member", "path", "path_namespace",
             "destination")
    names = [k for k in order if k in keys] + sorted(k for k in keys if k not in order)
    parts = []
    for k in names:
        v = keys[k]
        if v is None:
            continue
        parts.append("%s='%s'" % (k, str(v).replace("'", "'\\''")))
    return ",".join(parts)
