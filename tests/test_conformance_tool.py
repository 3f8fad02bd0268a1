"""tools/conformance's verdict on one runtime-tools test file (TAP 13 output, exit status):
the cases the suite really prints (outputs shaped as in runs on this host)."""
import importlib.machinery
import importlib.util
import os

import pytest

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                    "conformance")


@pytest.fixture(scope="module")
def verdict():
    loader = importlib.machinery.SourceFileLoader("minins_conformance_tool", PATH)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.verdict


OK3 = "TAP version 13\nok 1 - a\nok 2 - b\n  ---\n  {\n    \"error\": \"x\"\n  }\n  ...\nok 3\n1..3\n"


def test_every_planned_test_ok_passes(verdict):
    assert verdict(0, OK3) == ("PASS", "3/3")


def test_one_not_ok_fails(verdict):
    assert verdict(0, OK3.replace("ok 2 - b", "not ok 2 - b")) == ("fail", "2/3")


def test_fewer_oks_than_planned_fails(verdict):
    assert verdict(0, "TAP version 13\nok 1\n1..2\n") == ("fail", "1/2")


def test_no_plan_fails(verdict):
    assert verdict(0, "TAP version 13\nok 1\n") == ("fail", "1/?")


def test_a_nonzero_exit_fails_whatever_was_printed(verdict):
    assert verdict(1, OK3) == ("fail", "3/3 exit 1")


def test_skip_all_is_a_skip_and_says_whether_an_error_came_with_it(verdict):
    out = "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\"\n  }\n  ...\n1..0\n"
    assert verdict(0, out) == ("skip", "0/0 error")
    assert verdict(0, "TAP version 13\n1..0\n") == ("skip", "0/0")


def test_a_second_stream_planned_empty_does_not_spoil_a_pass(verdict):
    assert verdict(0, OK3 + "TAP version 13\n1..0\n") == ("PASS", "3/3+0")
    assert verdict(0, OK3 + "TAP version 13\nnot ok 1\n1..1\n") == ("fail", "3/3+1")


def test_not_ok_is_not_counted_as_ok(verdict):
    assert verdict(0, "TAP version 13\nnot ok 1\nok 2\n1..2\n") == ("fail", "1/2")
