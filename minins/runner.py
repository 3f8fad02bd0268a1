"""``minins run`` in the foreground: signals the runtime receives go to the container's init,
and the runtime exits only after the container is gone and cleaned up.

Before the init has exec'd, SIGINT, SIGTERM, SIGHUP and SIGQUIT abort the start (everything
made so far is removed; the exit code is 128+N). Afterwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 are forwarded to the init. With ``--tty`` the container's pty is relayed
to our terminal in raw mode (so ^C reaches the container as a byte and its own terminal makes
the signal), and SIGWINCH copies our window size to the pty.
"""
import _signal
import os

from .container import Container, relay_console

FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT,
             _signal.SIGUSR1, _signal.SIGUSR2)
ABORTING = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT)


class Interrupted(BaseException):
    def __init__(self, sig):
        BaseException.__init__(self, sig)
        self.sig = sig


def run_foreground(cfg, command, container_id=None, data_path=None, state_root=None,
                   stdin=None, stdout=None, stderr=None):
    container = Container(cfg, command, id=container_id, data_path=data_path,
                          state_root=state_root, stdin=stdin, stdout=stdout, stderr=stderr)
    started = [False]

    def on_signal(sig, _frame):
        if started[0]:
            container.kill(sig)
        elif sig in ABORTING:
            raise Interrupted(sig)

    def on_winch(_sig, _frame):
        if container.console_master is not None:
            from . import console

            console.copy_window_size(0, container.console_master)

    previous = {sig: _signal.signal(sig, on_signal) for sig in FORWARDED}
    if cfg.tty:
        previous[_signal.SIGWINCH] = _signal.signal(_signal.SIGWINCH, on_winch)
    try:
        try:
            container.create()
            container.start()
            started[0] = True
        except Interrupted as e:
            return 128 + e.sig
        if container.console_master is not None:
            relay_console(container, 0, 1)
        return container.wait()
    finally:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)
