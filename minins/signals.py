"""Signal names and numbers of Linux, for ``kill``, ``stop -s`` and the ``stop_signal`` field.

Pure: nothing here touches a process. Numbers are the generic ones of signal(7) (x86,
arm, riscv: the architectures minins runs on share them).
"""

__all__ = ["SIGNALS", "parse_signal"]

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "PWR": 30, "SYS": 31,
}


def parse_signal(text):
    """``TERM``, ``SIGTERM``, ``15`` or ``RTMIN+3`` -> a number; ValueError otherwise."""
    t = text.upper()
    if t.startswith("SIG"):
        t = t[3:]
    if t.isdigit() and 0 <= int(t) < 65:  # 0: only check that the init lives
        return int(t)
    if t in SIGNALS:
        return SIGNALS[t]
    if t.startswith(("RTMIN", "RTMAX")):
        base = 34 if t.startswith("RTMIN") else 64
        off = t[5:]
        if not off:
            return base
        if off[0] in "+-" and off[1:].isdigit():
            n = base + int(off)
            if 34 <= n <= 64:
                return n
    raise ValueError("unknown signal %r" % text)
