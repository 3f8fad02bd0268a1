"""The sync channel between the runtime and the processes it starts.

One ``socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)``: the runtime keeps one end, the
child end is inherited by the intermediate process and the init. Every message is one
datagram: a type name, a space, and a JSON object. The close-on-exec flag is part of the
protocol: when the init's execve succeeds the kernel closes its end and the runtime reads
EOF; a failed execve is reported as ERROR instead.

Messages, in the order they are sent:

============== ========= ============================== ===========================================
message        direction payload                        meaning
============== ========= ============================== ===========================================
USERNS_READY   child→rt  {}                             the intermediate unshared CLONE_NEWUSER;
                                                        the runtime now writes uid_map, setgroups,
                                                        gid_map for it (only with a new user ns)
USERNS_MAPPED  rt→child  {}                             the maps are written; go on
CGROUPS_JOINED rt→child  {}                             (only with cgroups) the runtime has put the
                                                        intermediate in the container's cgroups;
                                                        the init, forked after this, is born in
                                                        them. Sent after USERNS_MAPPED.
INIT_PID       child→rt  {"pid": N}                     the init exists and is the runtime's own
                                                        child (CLONE_PARENT); N is its pid in the
                                                        runtime's pid namespace. It now blocks.
MOUNT_SOURCES  rt→init   {"keys": [i, ...]} + fds       only with a user namespace and bind mounts:
                          (SCM_RIGHTS)                  O_PATH fds of the bind sources, opened by
                                                        a host-root helper inside the init's mount
                                                        namespace (the mapped root may not reach
                                                        them); keys are mount indexes
RELEASE        rt→init   {"network_state": {...}}       cgroups joined, host side of the network
                                                        made, state saved: set the container up
CONSOLE        init→rt   {} + the pty master            only with a terminal: the master of a pty
                          (SCM_RIGHTS)                  the process allocated from the container's
                                                        own devpts; its slave is its stdio
SETUP_DONE     init→rt   {}                             the container is created: everything is
                                                        done but the execve. It blocks again.
START          rt→init   {}                             exec the command now
ERROR          child→rt  {"step", "kind", "errno",      any failure, at any point (a failed
                          "op", "path", "detail",       execve too); the sender exits right after
                          "field", "message"}
(EOF)          init→rt                                  execve succeeded (the fd was close-on-exec)
                                                        -- or the child died, which the runtime
                                                        tells apart by the message it expected
============== ========= ============================== ===========================================

Entering a running container (:mod:`minins.execin`) uses the same messages: RELEASE (the
first child is in the container's cgroups), INIT_PID (the command's process, forked into the
PID namespace), RELEASE again (so that nothing the command's process sends can overtake the
INIT_PID its parent sends on the same socket), SETUP_DONE, START, EOF or ERROR.

Any other order is a protocol error. The runtime reads with a bound on the datagram size and
treats a malformed message as an error of the child.
"""
import _socket
import json

from .errors import ConfigError, ContainerError, MininsError, SyscallError

USERNS_READY = "USERNS_READY"
USERNS_MAPPED = "USERNS_MAPPED"
CGROUPS_JOINED = "CGROUPS_JOINED"
INIT_PID = "INIT_PID"
MOUNT_SOURCES = "MOUNT_SOURCES"
RELEASE = "RELEASE"
CONSOLE = "CONSOLE"
SETUP_DONE = "SETUP_DONE"
START = "START"
ERROR = "ERROR"

MESSAGES = (USERNS_READY, USERNS_MAPPED, CGROUPS_JOINED, INIT_PID, MOUNT_SOURCES, RELEASE,
            CONSOLE, SETUP_DONE, START, ERROR)
EOF = None

_MAX = 1 << 16


def socketpair():
    """``(runtime_end, child_end)``, both close-on-exec."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)


def encode(kind, payload=None):
    if kind not in MESSAGES:
        raise ValueError("unknown sync message %r" % kind)
    return ("%s %s" % (kind, json.dumps(payload or {}))).encode()


def decode(data):
    """``(kind, payload)`` of one datagram; ``(EOF, None)`` for an empty read."""
    if not data:
        return EOF, None
    try:
        kind, _, body = data.decode().partition(" ")
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ContainerError("sync: malformed message %r" % data[:80]) from None
    if kind not in MESSAGES or not isinstance(payload, dict):
        raise ContainerError("sync: unknown message %r" % data[:80])
    return kind, payload


def send(sock, kind, payload=None):
    """Send one message. When the other side is gone, raise what it reported before it went
    (its ERROR is still queued in the socket) rather than a bare EPIPE."""
    try:
        sock.send(encode(kind, payload))
    except (BrokenPipeError, ConnectionResetError):
        left, pending = recv(sock)
        if left == ERROR:
            raise error_from_payload(pending) from None
        raise ContainerError("the container process exited before %s" % kind) from None


def recv(sock):
    """The next ``(kind, payload)``; ``(EOF, None)`` when every peer end is closed.

    A peer that exits with messages of ours unread makes the kernel report ECONNRESET once
    (unix(7)), *before* what the peer sent last: read again, so that its ERROR is not lost."""
    try:
        data = sock.recv(_MAX)
    except ConnectionResetError:
        try:
            data = sock.recv(_MAX)
        except ConnectionResetError:
            data = b""
    return decode(data)


_MAX_FDS = 64


def send_fds(sock, kind, payload, fds):
    """One message with descriptors attached (SCM_RIGHTS)."""
    import struct

    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))]
    sock.sendmsg([encode(kind, payload)], anc if fds else [])


def recv_fds(sock):
    """``(kind, payload, fds)``; received descriptors are close-on-exec."""
    import struct

    try:
        data, anc, _flags, _addr = sock.recvmsg(_MAX, _socket.CMSG_SPACE(4 * _MAX_FDS),
                                                _socket.MSG_CMSG_CLOEXEC)
    except ConnectionResetError:  # see recv
        try:
            data, anc, _flags, _addr = sock.recvmsg(
                _MAX, _socket.CMSG_SPACE(4 * _MAX_FDS), _socket.MSG_CMSG_CLOEXEC)
        except ConnectionResetError:
            data, anc = b"", []
    fds = []
    for level, typ, blob in anc:
        if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
            n = len(blob) // 4
            fds.extend(struct.unpack("%di" % n, blob[:4 * n]))
    kind, payload = decode(data)
    return kind, payload, fds


def expect(sock, wanted, watch=None):
    """Receive one message: the payload of ``wanted``; an ERROR is raised as the error it
    carries; EOF or anything else is a :class:`ContainerError`.

    ``watch`` is a pidfd of the process that is to send it: should that process die without
    a word (killed, say) while another still holds the socket open, the wait ends anyway."""
    if watch is not None:
        import select

        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(watch, select.POLLIN)
        ready = dict(poller.poll())
        if sock.fileno() not in ready:
            ready = dict(poller.poll(0))  # a last word may have come with the exit
            if sock.fileno() not in ready:
                raise ContainerError("the container's process died before %s" % wanted)
    kind, payload = recv(sock)
    if kind == wanted:
        return payload
    if kind == ERROR:
        raise error_from_payload(payload)
    if kind is EOF:
        raise ContainerError("the container process exited before %s" % wanted)
    raise ContainerError("sync: expected %s, got %s" % (wanted, kind))


def error_payload(exc, step=None):
    """What a child sends for ``exc``: enough to rebuild the same error on the other side."""
    payload = {"kind": type(exc).__name__, "step": getattr(exc, "step", None) or step,
               "message": str(exc)}
    if isinstance(exc, SyscallError):
        payload.update(kind="SyscallError", errno=exc.errno, op=exc.op, path=exc.path,
                       detail=exc.detail)
        payload["message"] = None
    elif isinstance(exc, OSError) and exc.errno:
        payload.update(kind="SyscallError", errno=exc.errno, op="system call",
                       path=exc.filename if isinstance(exc.filename, str) else None,
                       detail=None, message=None)
    elif isinstance(exc, ConfigError):
        payload.update(field=exc.field, message=exc.message)
    elif isinstance(exc, MininsError):
        payload["message"] = getattr(exc, "message", str(exc))
    return payload


def error_from_payload(p):
    """Rebuild the error a child reported, errno intact, with the step it happened in."""
    kind = p.get("kind")
    if kind == "SyscallError" and isinstance(p.get("errno"), int):
        exc = SyscallError(p["errno"], p.get("op") or "?", p.get("path"), p.get("detail"))
    elif kind == "ConfigError":
        exc = ConfigError(p.get("field") or "", p.get("message") or "")
    else:
        msg = p.get("message") or "unknown error"
        if kind not in ("ContainerError", "StateError", None):
            msg = "%s: %s" % (kind, msg)
        exc = ContainerError(msg)
    step = p.get("step")
    if step:
        exc.with_step(step)
    return exc
