"""``minins run`` in the foreground: signals the runtime receives go to the container's init,
and the runtime exits only after the container is gone and cleaned up.

While the container is being created, SIGINT, SIGTERM, SIGHUP and SIGQUIT abort the start
(everything made so far is removed; the exit code is 128+N); one that comes while the init is
being released is delivered to it as soon as it runs. Afterwards SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 are forwarded to the init. With ``--tty`` the container's pty is relayed
to our terminal in raw mode (so ^C reaches the container as a byte and its own terminal makes
the signal), and SIGWINCH copies our window size to the pty.
"""
import _signal

from .container import Container, relay_console

FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT,
             _signal.SIGUSR1, _signal.SIGUSR2)
ABORTING = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT)


def run_foreground(cfg, command, container_id=None, data_path=None, state_root=None,
                   stdin=None, stdout=None, stderr=None):
    """Run the container in the foreground; its exit code (128+N when a signal N aborted the
    start). The handlers never raise: a signal only records itself, and the code checks
    between steps, so no half-made container is ever left by an exception in the wrong
    place."""
    container = Container(cfg, command, id=container_id, data_path=data_path,
                          state_root=state_root, stdin=stdin, stdout=stdout, stderr=stderr)
    phase = ["create"]
    aborted = []  # an aborting signal that came before the init existed
    queued = []  # signals that came while the init was being released: forwarded after

    def on_signal(sig, _frame):
        if phase[0] == "started":
            container.kill(sig)
        elif phase[0] == "create":
            if sig in ABORTING and not aborted:
                aborted.append(sig)
        else:
            queued.append(sig)

    previous = install_handlers(on_signal, container if cfg.tty else None)
    try:
        container.create()
        if aborted:
            container.destroy()
            return 128 + aborted[0]
        phase[0] = "start"
        container.start()
        phase[0] = "started"
        for sig in queued:
            container.kill(sig)
        if container.console_master is not None:
            relay_console(container, 0, 1)
        code = container.wait()
        if code == 137 and container.oom_note:
            import sys

            sys.stderr.write("minins: the container was %s\n" % container.oom_note)
        return code
    finally:
        restore_handlers(previous)


def install_handlers(on_signal, tty_owner=None):
    """``on_signal`` for every FORWARDED signal and, when ``tty_owner`` (anything with a
    ``console_master``) is given, SIGWINCH copying our window size to its pty. Returns what
    :func:`restore_handlers` puts back."""
    previous = {sig: _signal.signal(sig, on_signal) for sig in FORWARDED}
    if tty_owner is not None:
        def on_winch(_sig, _frame):
            if tty_owner.console_master is not None:
                from . import console

                console.copy_window_size(0, tty_owner.console_master)

        previous[_signal.SIGWINCH] = _signal.signal(_signal.SIGWINCH, on_winch)
    return previous


def restore_handlers(previous):
    for sig, handler in previous.items():
        _signal.signal(sig, handler)
