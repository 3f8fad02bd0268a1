"""Turn a raw wait status (wait(2)) into the exit code a shell would report.

A normal exit gives its code; death by signal N gives 128 + N whatever the core-dump bit
says. Pure bit arithmetic on the 16-bit status, so it is exact on every Linux architecture.
"""

SIGNAL_OFFSET = 128


def exit_code_from_status(status):
    """``$?`` for a process that ended with wait status ``status``.

    Raises ``ValueError`` for a status that is not a termination (stopped, continued) or not a
    16-bit value.
    """
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 0xFFFF:
        raise ValueError("wait status must be an integer in 0..0xffff, not %r" % (status,))
    sig = status & 0x7F
    if sig == 0:
        return (status >> 8) & 0xFF
    if sig != 0x7F:
        return SIGNAL_OFFSET + sig
    raise ValueError("wait status %#06x is not a termination (stopped or continued)" % status)
