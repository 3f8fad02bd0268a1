"""A D-Bus connection on a standard-library ``AF_UNIX`` stream socket.

:class:`Connection` connects to an address (``unix:path=...`` or ``unix:abstract=...``,
several separated by ``;``, tried in turn), authenticates, and, on a message bus, says
``Hello`` to get its unique name. Peer-to-peer connections -- systemd's private socket
``/run/systemd/private`` -- have no bus daemon: no ``Hello``, no destination needed, and
systemd sends them its signals without ``AddMatch``.

Authentication (Specification, "Authentication Protocol"): one NUL byte (the credentials
byte: the server reads our uid from ``SO_PEERCRED``), ``AUTH EXTERNAL <uid as hex of its
decimal digits>``, the server's ``OK <guid>``, then ``BEGIN``; from there on the stream
carries messages. A ``REJECTED`` answer is a :class:`~minins.errors.DBusError` named
``org.freedesktop.DBus.Error.AuthFailed``.

Calls (:meth:`Connection.call`) get the next serial; the answer is the ``METHOD_RETURN`` or
``ERROR`` whose ``reply_serial`` is that serial. An ``ERROR`` is raised as a
:class:`~minins.errors.DBusError` with the D-Bus error name and its message. Signals that
arrive meanwhile are queued, so one that comes before the reply of the call that caused it
(systemd's ``JobRemoved`` can) is not lost; :meth:`Connection.wait_signal` takes the first
that matches, waiting at most its timeout. Every wait is bounded.

Man pages: unix(7), socket(2); D-Bus Specification, "Message Bus Specification"
(the addresses and the well-known system bus socket).
"""
import _socket
import errno as _errno
import os as _os
import select as _select
import time as _time

from ..errors import DBusError, SyscallError
from . import codec as _c

SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"
SYSTEM_BUS_ADDRESS = "unix:path=" + SYSTEM_BUS_SOCKET
SYSTEMD_PRIVATE_SOCKET = "/run/systemd/private"
DEFAULT_TIMEOUT = 25.0  # seconds: the reply timeout of libdbus and sd-bus

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
BUS_INTERFACE = "org.freedesktop.DBus"

AUTH_FAILED = "org.freedesktop.DBus.Error.AuthFailed"
NO_REPLY = "org.freedesktop.DBus.Error.NoReply"
DISCONNECTED = "org.freedesktop.DBus.Error.Disconnected"
BAD_ADDRESS = "org.freedesktop.DBus.Error.BadAddress"
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"

_MAX_QUEUED_SIGNALS = 4096
# $MININS_DBUS_TRACE names a file that gets one line per message sent or received.
_TRACE = _os.environ.get("MININS_DBUS_TRACE")


def _trace(conn, way, msg):
    with open(_TRACE, "a") as f:
        f.write("%.6f %d %s %s %r\n" % (_time.monotonic(), _os.getpid(), id(conn) & 0xFFFF,
                                         way, msg))
_MAX_AUTH_LINE = 16384


def system_bus_address():
    """``$DBUS_SYSTEM_BUS_ADDRESS``, else the well-known ``unix:path=/run/dbus/system_bus_socket``."""
    return _os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS_ADDRESS


def parse_address(address):
    """The ``AF_UNIX`` socket addresses of a D-Bus address string, in order: paths as
    ``str``, abstract names as ``bytes`` starting with NUL. Values are %-unescaped;
    transports other than ``unix:path``/``unix:abstract`` are skipped. Raise
    :class:`DBusError` (``BadAddress``) when nothing usable is left."""
    out = []
    for entry in address.split(";"):
        if not entry:
            continue
        transport, colon, rest = entry.partition(":")
        if not colon:
            raise DBusError(BAD_ADDRESS, "%r has no transport (like unix:path=...)" % entry)
        params = {}
        for kv in rest.split(","):
            if kv:
                k, eq, v = kv.partition("=")
                if not eq:
                    raise DBusError(BAD_ADDRESS, "%r: %r is not key=value" % (entry, kv))
                params[k] = _unescape(v, entry)
        if transport != "unix":
            continue
        if "path" in params:
            out.append(params["path"])
        elif "abstract" in params:
            out.append(b"\0" + params["abstract"].encode())
    if not out:
        raise DBusError(BAD_ADDRESS, "no unix:path= or unix:abstract= in %r" % address)
    return out


def _unescape(value, entry):
    if "%" not in value:
        return value
    raw, i = bytearray(), 0
    while i < len(value):
        if value[i] == "%":
            try:
                raw.append(int(value[i + 1:i + 3], 16))
            except ValueError:
                raise DBusError(BAD_ADDRESS, "%r: bad %%-escape" % entry) from None
            i += 3
        else:
            raw += value[i].encode()
            i += 1
    return raw.decode("utf-8", "surrogateescape")


class Connection(object):
    """One D-Bus connection.

    ``address``: a D-Bus address (default: the system bus, :func:`system_bus_address`).
    ``bus``: ``True`` for a message bus (``Hello`` is called, :attr:`unique_name` set),
    ``False`` for a peer-to-peer connection such as systemd's private socket. ``timeout``
    bounds connecting, authenticating and each call (seconds).
    """

    def __init__(self, address=None, bus=True, timeout=DEFAULT_TIMEOUT):
        self.address = address or system_bus_address()
        self.bus = bus
        self.timeout = timeout
        self.unique_name = None
        self.guid = None
        self._serial = 0
        self._buf = bytearray()
        self._signals = []
        self._sock = None
        deadline = _time.monotonic() + timeout
        self._sock = self._connect(parse_address(self.address), deadline)
        if _TRACE:
            _trace(self, "connect", self.address)
        try:
            self._authenticate(deadline)
            if bus:
                self.unique_name = self.call(BUS_NAME, BUS_PATH, BUS_INTERFACE, "Hello")[0]
        except BaseException:
            self.close()
            raise

    # --- set-up --------------------------------------------------------------------------------

    def _connect(self, addrs, deadline):
        last = None
        for addr in addrs:
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
            try:
                s.settimeout(max(0.001, deadline - _time.monotonic()))
                s.connect(addr)
                s.setblocking(False)
                return s
            except OSError as e:
                s.close()
                shown = addr if isinstance(addr, str) else "@" + addr[1:].decode(errors="replace")
                err = e.errno or (_errno.ETIMEDOUT if isinstance(e, _socket.timeout)
                                  else _errno.EINVAL)
                last = SyscallError(err, "connect", shown,
                                    "D-Bus address %s" % self.address)
        raise last

    def _authenticate(self, deadline):
        uid = str(_os.geteuid()).encode().hex()
        self._send_bytes(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n", deadline)
        line = self._auth_line(deadline)
        if line.startswith(b"OK "):
            self.guid = line[3:].decode(errors="replace").strip()
            self._send_bytes(b"BEGIN\r\n", deadline)
            return
        raise DBusError(AUTH_FAILED, "the server answered %r to AUTH EXTERNAL for uid %d"
                        % (line.decode(errors="replace"), _os.geteuid()),
                        "authenticate to %s" % self.address)

    def _auth_line(self, deadline):
        while b"\r\n" not in self._buf:
            if len(self._buf) > _MAX_AUTH_LINE:
                raise DBusError(AUTH_FAILED, "no line end in %d bytes of the server's answer"
                                % len(self._buf), "authenticate to %s" % self.address)
            if not self._fill(deadline, "authenticate"):
                raise DBusError(NO_REPLY, "no answer to AUTH EXTERNAL within %.1f s"
                                % self.timeout, "authenticate to %s" % self.address)
        line, _, rest = bytes(self._buf).partition(b"\r\n")
        self._buf = bytearray(rest)
        return line

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def fileno(self):
        return self._sock.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- bytes ---------------------------------------------------------------------------------

    def _wait(self, events, deadline, op):
        left = deadline - _time.monotonic()
        if left <= 0:
            return False
        p = _select.poll()
        p.register(self._sock.fileno(), events)
        try:
            return bool(p.poll(max(1, int(left * 1000))))
        except InterruptedError:  # pragma: no cover (PEP 475 retries)
            return True

    def _send_bytes(self, data, deadline, op="send"):
        view = memoryview(data)
        while view:
            try:
                n = self._sock.send(view)
            except BlockingIOError:
                if not self._wait(_select.POLLOUT, deadline, op):
                    raise DBusError(NO_REPLY, "could not send within %.1f s" % self.timeout,
                                    op)
                continue
            except OSError as e:
                raise SyscallError(e.errno or _errno.EIO, "send", self.address, op)
            view = view[n:]

    def _fill(self, deadline, op):
        """Read more bytes into the buffer; False when ``deadline`` passed first."""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except BlockingIOError:
                if not self._wait(_select.POLLIN, deadline, op):
                    return False
                continue
            except OSError as e:
                raise SyscallError(e.errno or _errno.EIO, "recv", self.address, op)
            if not chunk:
                raise DBusError(DISCONNECTED, "the peer closed the connection", op)
            self._buf += chunk
            return True

    def _read_message(self, deadline, op):
        """The next whole message, or ``None`` when ``deadline`` passes first."""
        while len(self._buf) < _c.FIXED_HEADER:
            if not self._fill(deadline, op):
                return None
        total = _c.message_length(self._buf)
        while len(self._buf) < total:
            if not self._fill(deadline, op):
                return None
        data = bytes(self._buf[:total])
        del self._buf[:total]
        msg = _c.decode_message(data)
        if _TRACE:
            _trace(self, "<-", msg)
        return msg

    # --- messages ------------------------------------------------------------------------------

    def send(self, msg, order=_c.LITTLE):
        """Number ``msg`` with the next serial, send it (in byte order ``order``), return
        the serial."""
        self._serial = self._serial % 0xFFFFFFFF + 1
        msg.serial = self._serial
        op = msg.member or "send"
        if _TRACE:
            _trace(self, "->", msg)
        self._send_bytes(_c.encode_message(msg, order), _time.monotonic() + self.timeout, op)
        return msg.serial

    def call(self, destination, path, interface, member, signature="", body=(),
             timeout=None, op=None):
        """Call a method and return the reply's body (a tuple). An ERROR reply raises
        :class:`DBusError` with its name and text; no reply within ``timeout`` raises one
        named ``org.freedesktop.DBus.Error.NoReply``. ``op`` names the call in errors
        (default: the member)."""
        if not self.bus:
            destination = None  # peer to peer: nobody to route to
        msg = _c.method_call(destination, path, interface, member, signature, body)
        op = op or member
        serial = self.send(msg)
        deadline = _time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            reply = self._read_message(deadline, op)
            if reply is None:
                raise DBusError(NO_REPLY, "no reply from %s within %.1f s"
                                % (destination or "the peer",
                                   self.timeout if timeout is None else timeout), op)
            if reply.reply_serial == serial and reply.type in (_c.METHOD_RETURN, _c.ERROR):
                if reply.type == _c.ERROR:
                    text = reply.body[0] if reply.signature[:1] == "s" else ""
                    raise DBusError(reply.error_name, text, op)
                return reply.body
            self._dispatch(reply)

    def _dispatch(self, msg):
        """A message that is not the reply awaited: queue signals, refuse method calls,
        drop late replies to earlier calls."""
        if msg.type == _c.SIGNAL:
            if len(self._signals) >= _MAX_QUEUED_SIGNALS:
                del self._signals[0]
            self._signals.append(msg)
        elif msg.type == _c.METHOD_CALL and not msg.flags & _c.NO_REPLY_EXPECTED:
            err = _c.Message(_c.ERROR, error_name=UNKNOWN_METHOD, reply_serial=msg.serial,
                             destination=msg.sender, signature="s",
                             body=("minins serves no methods",))
            self.send(err)

    def emit(self, path, interface, member, signature="", body=(), destination=None):
        """Send a signal; return its serial."""
        return self.send(_c.signal(path, interface, member, signature, body, destination))

    def wait_signal(self, match=None, timeout=DEFAULT_TIMEOUT):
        """The first signal (queued or arriving) for which ``match(msg)`` is true, or
        ``None`` after ``timeout`` seconds. Signals that do not match stay queued."""
        for n, msg in enumerate(self._signals):
            if match is None or match(msg):
                del self._signals[n]
                return msg
        deadline = _time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline, "wait for a signal")
            if msg is None:
                return None
            if msg.type == _c.SIGNAL and (match is None or match(msg)):
                return msg
            self._dispatch(msg)

    def drop_signals(self, match=None):
        """Forget queued signals (those for which ``match(msg)`` is true)."""
        self._signals = [m for m in self._signals if match is not None and not match(m)]
