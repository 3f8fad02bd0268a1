"""The container's terminal: a pty from ``/dev/ptmx``, and the relay between it and ours.

:func:`open_pty_in` allocates a pseudo-terminal of the container's own devpts the way pts(4)
describes it (open its ``ptmx``, unlock, open the peer); the slave becomes the container's
stdio and ``/dev/console``, and the process makes it its controlling terminal (setsid, TIOCSCTTY). :func:`relay` copies bytes
between the runtime's stdin/stdout and the master until the init has exited and its output
is drained. With a terminal on our side, it is put in raw mode for the duration -- restored on
every exit path -- and its window size is copied to the pty at the start and on every
SIGWINCH (the kernel then signals the container's foreground process group).

pts(4), termios(3), ioctl_tty(2), poll(2).
"""
import ctypes
import errno
import os

from . import libc as _libc
from .errors import SyscallError

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414


TIOCGPTPEER = 0x5441  # _IO('T', 0x41), Linux 4.13
DEVPTS_SUPER_MAGIC = 0x1CD1


def open_pty_in(pts_dir=None, lc=_libc):
    """A pty of the *container's* devpts: ``(master_fd, slave_fd)``, both close-on-exec.

    ``pts_dir``: a descriptor of the container's ``/dev/pts`` (the devpts instance the init
    mounted), or ``None`` for ``/dev/pts`` of our mount namespace (a process that joined
    the container's). The master must be that instance's ``ptmx`` -- a character device on a
    devpts filesystem, checked -- so that the slave is a ``/dev/pts/N`` the container sees
    (ttyname(3) works, ``ps`` shows it); the slave is opened from the master
    (``TIOCGPTPEER``), never by a path the container could swap. pts(4), ioctl_tty(2)."""
    import stat

    flags = os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC
    where = "/dev/pts/ptmx"
    try:
        if pts_dir is None:
            master = os.open(where, flags | os.O_NOFOLLOW)
        else:
            master = os.open("ptmx", flags | os.O_NOFOLLOW, dir_fd=pts_dir)
    except OSError as e:
        raise SyscallError(e.errno, "open", where) from None
    try:
        if not stat.S_ISCHR(os.fstat(master).st_mode) or \
                lc.fstatfs_type(master) != DEVPTS_SUPER_MAGIC:
            raise SyscallError(errno.ENOTTY, "open", where, "not the ptmx of a devpts")
        lc.ioctl(master, TIOCSPTLCK, ctypes.c_int(0), op="ioctl TIOCSPTLCK", path=where)
        try:
            slave = lc.ioctl(master, TIOCGPTPEER, flags, op="ioctl TIOCGPTPEER", path=where)
        except SyscallError as e:
            if e.errno not in (errno.EINVAL, errno.ENOTTY):  # before 4.13
                raise
            n = ctypes.c_uint(0)
            lc.ioctl(master, TIOCGPTN, n, op="ioctl TIOCGPTN", path=where)
            path = "/dev/pts/%d" % n.value
            try:
                slave = os.open(str(n.value), flags, dir_fd=pts_dir) if pts_dir is not None \
                    else os.open(path, flags)
            except OSError as e2:
                raise SyscallError(e2.errno, "open", path) from None
    except BaseException:
        os.close(master)
        raise
    return master, slave


def copy_window_size(src_fd, dst_fd):
    """Copy the window size of the terminal ``src_fd`` to ``dst_fd``; False if src is none."""
    import fcntl

    try:
        size = fcntl.ioctl(src_fd, TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst_fd, TIOCSWINSZ, size)
    except OSError:
        return False
    return True


class RawMode:
    """Our terminal in raw mode inside the ``with``; its settings restored however it ends."""

    def __init__(self, fd):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        import termios

        if not os.isatty(self.fd):
            return self
        self.saved = termios.tcgetattr(self.fd)
        mode = list(self.saved)
        # cfmakeraw(3)
        mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                     | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        mode[1] &= ~termios.OPOST
        mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG
                     | termios.IEXTEN)
        mode[2] &= ~(termios.CSIZE | termios.PARENB)
        mode[2] |= termios.CS8
        mode[6] = list(mode[6])
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSAFLUSH, mode)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)  # keep typed input
        return False


def relay(master, pid, stdin=0, stdout=1, lc=_libc):
    """Copy stdin to the master and the master to stdout until process ``pid`` exits (then
    drain what it wrote). Returns when the container's output is done."""
    import select

    pidfd = lc.pidfd_open(pid)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    reading_stdin = stdin is not None
    if reading_stdin:
        poller.register(stdin, select.POLLIN)
    try:
        while True:
            for fd, _ev in poller.poll():
                if fd == master:
                    if not _pump(master, stdout):
                        return
                elif fd == stdin:
                    if not _pump(stdin, master):
                        poller.unregister(stdin)
                        _send_eof(master)
                elif fd == pidfd:
                    _drain(master, stdout)
                    return
    finally:
        os.close(pidfd)


def _pump(src, dst):
    try:
        data = os.read(src, 65536)
    except OSError as e:
        if e.errno == errno.EIO:  # the slave side is closed: nothing more will come
            return False
        raise
    if not data:
        return False
    _write_all(dst, data)
    return True


def _send_eof(master):
    """Our stdin ended: type the container terminal's end-of-file character (^D), as a user
    at a terminal would, so that a reader there sees EOF too."""
    import termios

    try:
        eof = termios.tcgetattr(master)[6][termios.VEOF]
    except (OSError, termios.error):
        eof = b"\x04"
    _write_all(master, eof if isinstance(eof, bytes) else bytes([eof]))


def _drain(master, stdout):
    os.set_blocking(master, False)
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            _write_all(stdout, data)
    finally:
        os.set_blocking(master, True)


def _write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        data = data[n:]


def set_window_size(fd, rows, cols):
    """TIOCSWINSZ: the terminal ``fd`` is ``rows`` x ``cols`` (process.consoleSize: height,
    width). ioctl_tty(2)."""
    import fcntl
    import struct

    try:
        fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    except OSError as e:
        raise SyscallError(e.errno, "ioctl TIOCSWINSZ", "the console") from None


PTMX_NAME = b"/dev/ptmx"


def send_master(sock, master):
    """Send the pty master ``master`` over the connected unix socket ``sock`` with
    SCM_RIGHTS, as runc does for ``--console-socket``: one message whose bytes are the
    master's name (``/dev/ptmx``) and whose ancillary data is the descriptor (what runc's
    ``recvtty``, conmon and containerd's shim receive). unix(7), cmsg(3)."""
    import array
    import socket

    try:
        sock.sendmsg([PTMX_NAME], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                    array.array("i", [master]).tobytes())])
    except OSError as e:
        raise SyscallError(e.errno, "sendmsg", "the console socket") from None
