"""tools/mutation (issue 17), the developer tool's pure half: making mutants. Pure."""
import ast
import importlib.machinery
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9),
                                reason="tools/mutation needs ast.unparse (Python 3.9+)")


def _tool():
    path = os.path.join(ROOT, "tools", "mutation")
    loader = importlib.machinery.SourceFileLoader("minins_tool_mutation", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_a_lambda_whose_body_is_not_a_list_is_mutated():
    # minins/seccomp/compiler.py has `lambda v: (JEQ, 0, _F, v)` at module level: the tool
    # crashed on it ("argument of type 'Tuple' is not iterable")
    tool = _tool()
    source = b"OPS = {'EQ': lambda v: (1, 0, v)}\n"
    mutants = tool.make_mutants("m.py", source)
    changes = sorted(m.change for m in mutants)
    assert changes == sorted("{'EQ': lambda v: (1, 0, v)} -> {'EQ': lambda v: %s}" % new
                             for new in ("(2, 0, v)", "(0, 0, v)", "(1, 1, v)", "(1, -1, v)"))
    for m in mutants:
        ast.parse(m.apply(source))  # each mutant is still Python
        assert not m.at_import  # a lambda's body runs when it is called


@pytest.mark.parametrize("module", ["minins/seccomp/compiler.py", "minins/seccomp/profile.py",
                                    "minins/dbus/codec.py"])
def test_the_pure_modules_of_the_later_issues_are_measured(module):
    # issue 17: the seccomp compiler and the D-Bus codec must be measured too, with their tests
    tool = _tool()
    tests, _ = tool.MODULES[module]
    assert tool.expand_tests(tests)
    with open(os.path.join(ROOT, module), "rb") as f:
        assert tool.make_mutants(module, f.read())
