"""Exit-status decoding at its edges: which of the two ValueErrors a value gets.

A value outside 0..0xffff is not a wait status at all; 0xffff and the other statuses with
0x7f in the low bits are real statuses of a stopped (or continued) process. The messages
tell the two apart, so a range check moved by one cannot hide behind the second error.
"""
import pytest

from minins.exitstatus import exit_code_from_status


@pytest.mark.parametrize("bad", [-1, -0x7F - 1, 0x10000, 0x1007F, 2 ** 64 - 1])
def test_outside_16_bits_is_not_a_status(bad):
    with pytest.raises(ValueError, match="must be an integer in 0..0xffff"):
        exit_code_from_status(bad)


@pytest.mark.parametrize("status", [0x007F, 0x137F, 0xFFFF, 0xFF7F])
def test_stopped_and_continued_are_statuses_but_not_terminations(status):
    with pytest.raises(ValueError, match="not a termination"):
        exit_code_from_status(status)


@pytest.mark.parametrize("status,code", [(0x0000, 0), (0xFF00, 255), (0x0100, 1),
                                         (0x0001, 129), (0x007E, 254), (0x00FE, 254),
                                         (0xFFFE, 254)])
def test_the_edges_of_both_terminations(status, code):
    assert exit_code_from_status(status) == code
