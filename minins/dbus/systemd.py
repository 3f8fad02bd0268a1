"""The systemd manager over D-Bus: the unit calls of the systemd cgroup driver.

:func:`connect` opens systemd's private socket (``/run/systemd/private``, peer to peer,
root only: no bus daemon in the way, and it works where dbus-daemon does not run), or the
system bus when that is not possible (then it subscribes: ``AddMatch`` for the manager's
``JobRemoved`` and ``Subscribe``, without which systemd sends no signals to the bus).

:class:`Systemd` wraps the connection: ``StartTransientUnit``, ``StopUnit``,
``ResetFailedUnit``, ``SetUnitProperties``, ``GetUnit``, properties, and :meth:`Systemd.wait_job`, which waits
(bounded) for the ``JobRemoved`` signal of a job so that a unit is really started or
stopped before minins goes on. ``JobRemoved`` can come before the reply of the call that
queued the job; the connection keeps signals that arrive while it waits for a reply.

Reference: org.freedesktop.systemd1(5), systemd.resource-control(5), systemd.scope(5).
"""
import os as _os

from ..errors import DBusError
from . import bus as _bus
from . import sock as _sock
from .codec import Variant

DESTINATION = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SCOPE = "org.freedesktop.systemd1.Scope"
PROPERTIES = "org.freedesktop.DBus.Properties"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
RUNTIME_DIR = "/run/systemd/system"  # exists when systemd is PID 1's manager (sd_booted(3))
JOB_TIMEOUT = 30.0  # seconds a start or stop job may take before minins gives up
CALL_TIMEOUT = 10.0  # seconds for one answer; an idempotent call is then tried once more


def booted(runtime_dir=RUNTIME_DIR):
    """True when the host was booted with systemd (sd_booted(3): the directory exists)."""
    return _os.path.isdir(runtime_dir)


def connect(private=None, address=None, timeout=_sock.DEFAULT_TIMEOUT):
    """A :class:`Systemd` on the private socket (root) or the system bus.

    ``private``: ``True`` only the private socket, ``False`` only the bus, ``None`` the
    private socket when root and it answers, else the bus. ``address`` overrides the bus
    address (default ``$DBUS_SYSTEM_BUS_ADDRESS`` or the well-known socket).
    """
    first = None
    if private is not False and (private or _os.geteuid() == 0):
        try:
            return Systemd(_open_private(timeout), lambda: _open_private(timeout))
        except (OSError, DBusError) as e:
            if private:
                raise
            first = e
    try:
        return Systemd(_open_bus(address, timeout), lambda: _open_bus(address, timeout))
    except (OSError, DBusError) as e:
        if first is not None:
            raise DBusError(_sock.DISCONNECTED, "neither systemd's private socket (%s) nor "
                            "the system bus (%s) answers" % (first, e), "connect to systemd")
        raise


def _open_private(timeout):
    return _sock.Connection("unix:path=" + _sock.SYSTEMD_PRIVATE_SOCKET, bus=False,
                            timeout=timeout)


def _open_bus(address, timeout):
    conn = _sock.Connection(address, bus=True, timeout=timeout)
    try:
        _bus.add_match(conn, _bus.match_rule(type="signal", sender=DESTINATION,
                                             interface=MANAGER, member="JobRemoved",
                                             path=PATH))
        try:
            conn.call(DESTINATION, PATH, MANAGER, "Subscribe")
        except DBusError as e:
            if not e.name.endswith("AlreadySubscribed"):
                raise
    except BaseException:
        conn.close()
        raise
    return conn


class Systemd(object):
    """The systemd manager on a connection (private socket or bus)."""

    def __init__(self, conn, reopen=None):
        self.conn = conn
        self._reopen = reopen  # makes a new connection like conn, for a retry
        self._version = None

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, member, signature="", body=(), op=None, path=PATH, interface=MANAGER,
              retry=True):
        """One call. An idempotent one (``retry``) that gets no answer within
        :data:`CALL_TIMEOUT` is sent once more on a new connection: under load, systemd has
        been seen to leave a call on a private connection unanswered."""
        try:
            return self.conn.call(DESTINATION, path, interface, member, signature, body,
                                  timeout=CALL_TIMEOUT if retry and self._reopen else None,
                                  op=op)
        except DBusError as e:
            if not (retry and self._reopen and e.name == _sock.NO_REPLY):
                raise
        self.conn.close()
        self.conn = self._reopen()
        return self.conn.call(DESTINATION, path, interface, member, signature, body, op=op)

    # --- manager -------------------------------------------------------------------------------

    def subscribe(self):
        """``Subscribe``: have systemd send its signals to the bus (a private connection
        gets them anyway)."""
        try:
            self._call("Subscribe")
        except DBusError as e:
            if not e.name.endswith("AlreadySubscribed"):
                raise

    def property(self, interface, name, path=PATH):
        """One property (``org.freedesktop.DBus.Properties.Get``), unwrapped."""
        got = self._call("Get", "ss", (interface, name), path=path, interface=PROPERTIES,
                         op="Get %s.%s" % (interface.rsplit(".", 1)[-1], name))[0]
        return got.value

    def version(self):
        """systemd's ``Version`` property as a number (``252``), asked once."""
        if self._version is None:
            from ..cgroups.values import systemd_version

            self._version = systemd_version(self.property(MANAGER, "Version"))
        return self._version

    # --- units ---------------------------------------------------------------------------------

    def start_transient_unit(self, name, properties, mode="fail", aux=()):
        """``StartTransientUnit``: the job's object path. ``properties`` is
        ``[(name, signature, value)]``."""
        props = [(k, Variant(sig, v)) for k, sig, v in properties]
        return self._call("StartTransientUnit", "ssa(sv)a(sa(sv))", (name, mode, props, aux),
                          op="StartTransientUnit %s" % name, retry=False)[0]

    def stop_unit(self, name, mode="replace"):
        """``StopUnit``: the job's object path."""
        return self._call("StopUnit", "ss", (name, mode), op="StopUnit %s" % name)[0]

    def reset_failed_unit(self, name):
        """``ResetFailedUnit``: forget that ``name`` failed, so that systemd can collect it
        (a failed unit stays loaded, and its name taken, until then)."""
        self._call("ResetFailedUnit", "s", (name,), op="ResetFailedUnit %s" % name)

    def set_unit_properties(self, name, properties, runtime=True):
        """``SetUnitProperties`` (``runtime``: not kept across a reboot)."""
        props = [(k, Variant(sig, v)) for k, sig, v in properties]
        self._call("SetUnitProperties", "sba(sv)", (name, runtime, props),
                   op="SetUnitProperties %s" % name)

    def get_unit(self, name):
        """``GetUnit``: the unit's object path; :class:`DBusError` ``NoSuchUnit`` when
        it is not loaded."""
        return self._call("GetUnit", "s", (name,), op="GetUnit %s" % name)[0]

    def unit_property(self, name, interface, prop):
        return self.property(interface, prop, self.get_unit(name))

    def wait_job(self, job, timeout=JOB_TIMEOUT):
        """Wait for the ``JobRemoved`` of ``job`` (an object path); return its result
        (``done``, ``canceled``, ``timeout``, ``failed``, ``dependency``, ``skipped``), or
        ``None`` when it did not come within ``timeout`` seconds."""
        msg = self.conn.wait_signal(
            lambda m: (m.member == "JobRemoved" and m.interface == MANAGER
                       and m.signature == "uoss" and m.body[1] == job), timeout)
        return None if msg is None else msg.body[3]
