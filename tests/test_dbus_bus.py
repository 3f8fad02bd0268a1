"""The D-Bus client against a real bus: a private ``dbus-daemon`` (Debian's ``dbus``
package) that the test starts in its own temp dir, with its own config and socket, and
stops by pid. Authentication, Hello, ListNames, GetNameOwner, errors with their D-Bus name,
a match rule and a signal sent from a second connection, replies matched by serial."""
import os
import select
import shutil
import signal
import subprocess
import tempfile

import pytest

from minins.dbus import bus, codec, sock
from minins.errors import DBusError, SyscallError

DAEMON = shutil.which("dbus-daemon")
pytestmark = pytest.mark.skipif(DAEMON is None, reason="dbus-daemon is not installed "
                                "(Debian package dbus)")

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>minins-test</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""


class Daemon(object):
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="minins-dbus-")
        self.path = os.path.join(self.dir, "bus")
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(CONFIG % self.path)
        self.proc = subprocess.Popen([DAEMON, "--config-file=" + conf, "--nofork",
                                      "--nopidfile", "--print-address=1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The daemon prints its address once it listens: wait for that line, bounded.
        ready = select.select([self.proc.stdout], [], [], 20)[0]
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("unix:"):
            self.stop()
            raise AssertionError("dbus-daemon did not start: %r %s" % (
                line, self.proc.stderr.read().decode(errors="replace")))
        self.address = line

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def conn(daemon):
    with sock.Connection(daemon.address, timeout=10) as c:
        yield c


def test_authenticate_and_hello(daemon, conn):
    assert conn.address.startswith("unix:path=")
    assert conn.unique_name.startswith(":1.")
    assert len(conn.guid) == 32
    assert "guid=" + conn.guid in daemon.address  # the server's guid, from its OK line


def test_list_names_and_get_name_owner(conn, daemon):
    with sock.Connection("unix:path=" + daemon.path) as other:
        names = bus.list_names(conn)
        assert "org.freedesktop.DBus" in names
        assert conn.unique_name in names and other.unique_name in names
        assert bus.request_name(other, "org.minins.Test1") == bus.PRIMARY_OWNER
        assert bus.get_name_owner(conn, "org.minins.Test1") == other.unique_name
        assert "org.minins.Test1" in bus.list_names(conn)


def test_errors_carry_the_dbus_error_name(conn):
    with pytest.raises(DBusError) as e:
        bus.get_name_owner(conn, "org.minins.NobodyHasThis")
    assert e.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"
    assert "GetNameOwner org.minins.NobodyHasThis" in str(e.value)
    with pytest.raises(DBusError) as e:
        conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                  "NoSuchMethod")
    assert e.value.name == "org.freedesktop.DBus.Error.UnknownMethod"
    # the connection is still usable after an error reply
    assert "org.freedesktop.DBus" in bus.list_names(conn)


def test_a_match_rule_and_a_signal_from_a_second_connection(conn, daemon):
    rule = bus.match_rule(type="signal", interface="org.minins.Test", member="Ping")
    bus.add_match(conn, rule)
    with sock.Connection(daemon.address) as sender:
        body = ("hi", {"n": codec.Variant("u", 5), "l": codec.Variant("as", ["a", "b"])})
        sender.emit("/org/minins/Test", "org.minins.Test", "Other", "s", ("not matched",))
        sender.emit("/org/minins/Test", "org.minins.Test", "Ping", "sa{sv}", body)
        got = conn.wait_signal(lambda m: m.member == "Ping", timeout=10)
        assert got is not None
        assert got.sender == sender.unique_name
        assert got.interface == "org.minins.Test" and got.path == "/org/minins/Test"
        assert got.body == body
        # the rule filtered the other signal out: nothing more comes, within a bound
        assert conn.wait_signal(lambda m: m.member == "Other", timeout=0.3) is None
    bus.remove_match(conn, rule)


def test_a_signal_that_arrives_before_a_reply_is_kept(conn, daemon):
    bus.add_match(conn, bus.match_rule(type="signal", member="Early"))
    with sock.Connection(daemon.address) as sender:
        sender.emit("/", "org.minins.Test", "Early")
        # a round trip on `sender` after its emit: the daemon has routed the signal
        bus.list_names(sender)
        bus.list_names(conn)  # reads the signal while waiting for this reply, queues it
        got = conn.wait_signal(lambda m: m.member == "Early", timeout=0)
        assert got is not None and got.sender == sender.unique_name


def test_big_endian_messages_are_read(conn, daemon):
    # The daemon relays a message in the byte order its sender used.
    bus.add_match(conn, bus.match_rule(type="signal", member="Big"))
    with sock.Connection(daemon.address) as sender:
        msg = codec.signal("/a", "org.minins.Test", "Big", "tas", (2 ** 40 + 3, ["x"]))
        sender.send(msg, codec.BIG)
        got = conn.wait_signal(lambda m: m.member == "Big", timeout=10)
        assert got is not None and got.order == codec.BIG
        assert got.body == (2 ** 40 + 3, ["x"])


def test_no_reply_within_the_timeout_is_an_error_not_a_hang(daemon):
    # A peer that never answers: our own listening socket, which accepts and stays silent.
    import socket

    d = tempfile.mkdtemp(prefix="minins-dbus-")
    path = os.path.join(d, "silent")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(path)
        srv.listen(1)
        with pytest.raises(DBusError) as e:
            sock.Connection("unix:path=" + path, timeout=0.5)
        assert e.value.name == sock.NO_REPLY or "authenticate" in str(e.value)
    finally:
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


def test_a_rejected_authentication_is_a_clear_error():
    import socket
    import threading

    d = tempfile.mkdtemp(prefix="minins-dbus-")
    path = os.path.join(d, "rejecting")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        with c:
            data = b""
            while b"\r\n" not in data:
                data += c.recv(100)
            c.sendall(b"REJECTED DBUS_COOKIE_SHA1\r\n")

    t = threading.Thread(target=serve)
    t.start()
    try:
        with pytest.raises(DBusError) as e:
            sock.Connection("unix:path=" + path, timeout=5)
        assert e.value.name == sock.AUTH_FAILED
        assert "REJECTED" in str(e.value)
    finally:
        t.join(5)
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


def test_addresses():
    assert sock.parse_address("unix:path=/run/x%20y;tcp:host=a,port=1;unix:abstract=z") == [
        "/run/x y", b"\0z"]
    with pytest.raises(DBusError) as e:
        sock.parse_address("tcp:host=localhost,port=1")
    assert e.value.name == sock.BAD_ADDRESS
    with pytest.raises(SyscallError) as e:
        sock.Connection("unix:path=/nonexistent/minins-bus", timeout=1)
    assert "connect /nonexistent/minins-bus" in str(e.value)


def test_the_system_bus_address_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/tmp/elsewhere")
    assert sock.system_bus_address() == "unix:path=/tmp/elsewhere"
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS")
    assert sock.system_bus_address() == "unix:path=/run/dbus/system_bus_socket"


def test_match_rules_quote_their_values():
    assert bus.match_rule(type="signal", member="JobRemoved", arg0="it's") == (
        "type='signal',member='JobRemoved',arg0='it'\\''s'")
