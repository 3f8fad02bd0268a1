"""Exit-status decoding: every 16-bit status against os.W*, and real processes."""
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import minins


@given(st.integers(0, 0xFFFF))
def test_every_status_matches_the_os_macros(status):
    if os.WIFEXITED(status):
        assert minins.exit_code_from_status(status) == os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        assert minins.exit_code_from_status(status) == 128 + os.WTERMSIG(status)
    else:
        with pytest.raises(ValueError):
            minins.exit_code_from_status(status)


def test_all_16_bit_statuses_exhaustively():
    for status in range(0x10000):
        if os.WIFEXITED(status):
            assert minins.exit_code_from_status(status) == os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            assert minins.exit_code_from_status(status) == 128 + os.WTERMSIG(status)


@given(st.integers(1, 0x7E))
def test_core_dump_bit_does_not_matter(sig):
    assert minins.exit_code_from_status(sig | 0x80) == minins.exit_code_from_status(sig)


@pytest.mark.parametrize("bad", [-1, 0x10000, 1.5, True, "0"])
def test_non_statuses_are_rejected(bad):
    with pytest.raises(ValueError):
        minins.exit_code_from_status(bad)


def _status_of(code):
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = 0  # reaped by hand; keep Popen from waiting again
    return status


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_real_exit_codes(code):
    assert minins.exit_code_from_status(_status_of("import sys; sys.exit(%d)" % code)) == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_real_deaths_by_signal(sig):
    code = "import os, resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); " \
           "os.kill(os.getpid(), %d)" % sig
    assert minins.exit_code_from_status(_status_of(code)) == 128 + sig
