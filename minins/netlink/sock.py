"""The rtnetlink socket: requests out, replies matched back, errors raised with their errno.

One :class:`Socket` serves many requests (the seed opened one per call). Each request gets
the next sequence number; replies are matched on (sequence, port id), and anything else on
the socket (a late answer to an earlier request that raised half-way, say) is dropped. Every
change is sent with ``NLM_F_ACK``; the ACK or the error is read before the call returns, so
an error always belongs to the request that caused it: its errno comes from the kernel's
``NLMSG_ERROR``, never from a libc ``errno`` left over by something else.

Errors are :class:`NetlinkError`, an OSError (a :class:`minins.errors.SyscallError`) naming
the operation and the link, with the kernel's extended-ack text (``NETLINK_EXT_ACK``) as the
detail::

    set mtu veth0: EINVAL (Invalid argument): MTU greater than device maximum

A socket belongs to the network namespace current when it was opened; :func:`open_in_netns`
opens one inside another namespace by switching only the calling thread there and back.

Man pages: netlink(7), rtnetlink(7), setns(2); Documentation/userspace-api/netlink/intro.rst.
"""
import _socket
import errno as _errno
import os as _os

from ..errors import SyscallError
from . import codec as _c

CLONE_NEWNET = 0x40000000
_BUFSIZE = 32768
_DUMP_TRIES = 5


class NetlinkError(SyscallError):
    """A failed netlink request: ``errno`` from the kernel, ``op`` and the link (``path``)."""


def with_field(exc, field):
    """The same error, its text prefixed with the config field it came from.

    The field is folded into ``op`` so that it survives the (errno, op, path, detail) form in
    which errors cross from the container to the runtime.
    """
    err = type(exc)(exc.errno, "%s: %s" % (field, exc.op), exc.path, exc.detail)
    err.step = exc.step
    return err


class Socket:
    """A ``NETLINK_ROUTE`` socket in the caller's network namespace."""

    def __init__(self):
        try:
            s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                               _c.NETLINK_ROUTE)
        except OSError as e:
            raise NetlinkError(e.errno or _errno.EIO, "open netlink socket")
        try:
            s.bind((0, 0))
            # Ask for the kernel's error text, and not to echo our whole request back in errors.
            for opt in (_c.NETLINK_EXT_ACK, _c.NETLINK_CAP_ACK):
                try:
                    s.setsockopt(_c.SOL_NETLINK, opt, 1)
                except OSError:
                    pass  # older kernels: plain errors still work
            self.port = s.getsockname()[0]
        except OSError as e:
            s.close()
            raise NetlinkError(e.errno or _errno.EIO, "bind netlink socket")
        self._sock = s
        self._seq = 0
        self._buf = bytearray(_BUFSIZE)

    def close(self):
        self._sock.close()

    def fileno(self):
        return self._sock.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests ----------------------------------------------------------------------------

    def send(self, mtype, flags, header=None, attrs=(), op="netlink", name=None):
        """Send one request; return its sequence number. Pair with :meth:`replies`."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        data = _c.encode(mtype, flags | _c.NLM_F_REQUEST, self._seq, 0, header, attrs)
        try:
            self._sock.send(data)
        except OSError as e:
            raise NetlinkError(e.errno or _errno.EIO, op, name)
        return self._seq

    def request(self, mtype, flags, header=None, attrs=(), op="netlink", name=None):
        """Send a request with ``NLM_F_ACK`` and wait for its ACK; return any replies before
        it (the answer of a non-dump GET), or raise :class:`NetlinkError`."""
        seq = self.send(mtype, flags | _c.NLM_F_ACK, header, attrs, op, name)
        return self.replies(seq, op, name)

    def dump(self, mtype, header, attrs=(), op="dump", name=None):
        """Every message of a multi-part dump. A dump that the kernel marks inconsistent
        (``NLM_F_DUMP_INTR``: the table changed under it) is taken again."""
        for _ in range(_DUMP_TRIES):
            seq = self.send(mtype, _c.NLM_F_DUMP, header, attrs, op, name)
            msgs = self.replies(seq, op, name)
            if not any(m.flags & _c.NLM_F_DUMP_INTR for m in msgs):
                return msgs
        raise NetlinkError(_errno.EAGAIN, op, name,
                           "the table kept changing during %d dumps" % _DUMP_TRIES)

    def replies(self, seq, op="netlink", name=None):
        """Read until the ACK, error or NLMSG_DONE answering ``seq``; return the data
        messages before it. Messages for other sequence numbers or ports are dropped."""
        out = []
        while True:
            for msg in self._recv(op, name):
                if msg.seq != seq or msg.pid != self.port:
                    continue
                if msg.type == _c.NLMSG_ERROR or msg.type == _c.NLMSG_DONE:
                    if msg.error:
                        raise NetlinkError(msg.error, op, name, msg.ext_msg)
                    return out
                if msg.type == _c.NLMSG_OVERRUN:
                    raise NetlinkError(_errno.ENOBUFS, op, name, "netlink overrun")
                if msg.type != _c.NLMSG_NOOP:
                    out.append(msg)

    def _recv(self, op, name):
        # Peek at the size first so that no datagram is ever cut (MSG_TRUNC returns its
        # real length); the buffer grows to fit.
        try:
            n = self._sock.recv_into(self._buf, 0, _socket.MSG_PEEK | _socket.MSG_TRUNC)
            if n > len(self._buf):
                self._buf = bytearray(n)
            n = self._sock.recv_into(self._buf)
        except OSError as e:
            raise NetlinkError(e.errno or _errno.EIO, op, name)
        try:
            return _c.decode(memoryview(self._buf)[:n])
        except _c.DecodeError as e:
            raise NetlinkError(_errno.EBADMSG, op, name, "malformed reply: %s" % e)


class thread_in_netns:
    """``with thread_in_netns(fd):`` runs the block with the calling thread in the network
    namespace ``fd`` and puts it back after, on every path. Other threads are unaffected."""

    def __init__(self, fd, path=None):
        self.fd = fd
        self.path = path
        self._own = None

    def __enter__(self):
        from .. import libc
        self._own = _os.open("/proc/thread-self/ns/net", _os.O_RDONLY | _os.O_CLOEXEC)
        try:
            libc.setns(self.fd, CLONE_NEWNET, self.path)
        except BaseException:
            _os.close(self._own)
            raise
        return self

    def __exit__(self, *exc):
        from .. import libc
        try:
            libc.setns(self._own, CLONE_NEWNET, "the thread's own network namespace")
        finally:
            _os.close(self._own)


def open_in_netns(fd, path=None):
    """A :class:`Socket` inside the network namespace ``fd``; the calling thread is switched
    there only while the socket is opened."""
    with thread_in_netns(fd, path):
        return Socket()
