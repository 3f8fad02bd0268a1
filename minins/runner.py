"""``minins run`` in the foreground: signals the runtime receives go to the container's init,
and the runtime exits only after the container is gone and cleaned up.

Before the init has exec'd, SIGINT, SIGTERM, SIGHUP and SIGQUIT abort the start (everything
made so far is removed; the exit code is 128+N). Afterwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1, SIGUSR2 (and SIGWINCH with a terminal) are forwarded to the init.
"""
import _signal
import os

from .container import Container

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

    previous = {sig: _signal.signal(sig, on_signal) for sig in FORWARDED}
    try:
        try:
            container.create()
            container.start()
            started[0] = True
        except Interrupted as e:
            return 128 + e.sig
        return container.wait()
    finally:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)
