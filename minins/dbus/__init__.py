"""A D-Bus client for minins, on a standard-library ``AF_UNIX`` socket.

Three layers, each importable on its own (the same shape as :mod:`minins.netlink`):

* :mod:`minins.dbus.codec` -- the wire format, pure: signatures, the marshalling of every
  type minins needs (``y b n q i u x t d s o g a ( ) { } v``, and ``h`` as a plain index),
  alignment, both byte orders, messages and their header fields;
* :mod:`minins.dbus.sock` -- the connection: the address (``DBUS_SYSTEM_BUS_ADDRESS``,
  ``/run/dbus/system_bus_socket``, systemd's private ``/run/systemd/private``), SASL
  ``EXTERNAL`` authentication, serials, replies matched by ``reply_serial``, D-Bus errors
  raised as :class:`minins.errors.DBusError`, signals queued and waited for with a bound;
* the calls: :mod:`~minins.dbus.bus` (the bus itself: ``Hello``, ``ListNames``,
  ``GetNameOwner``, ``AddMatch``) and :mod:`~minins.dbus.systemd` (the unit calls the
  systemd cgroup driver needs, and waiting for ``JobRemoved``).

No dbus-python, no libdbus or libsystemd, no ``busctl`` or ``systemd-run``. Nothing is
imported here, so that ``import minins.dbus.codec`` stays cheap.

Specification: the D-Bus Specification (dbus.freedesktop.org/doc/dbus-specification.html),
sections "Type System", "Message Protocol", "Authentication Protocol", "Message Bus
Specification"; systemd's org.freedesktop.systemd1(5).
"""
