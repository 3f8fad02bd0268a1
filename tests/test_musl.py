"""minins runs on musl: every C library symbol minins.libc uses exists in musl's libc.so.

Debian's ``musl`` package installs musl's shared C library (``/usr/lib/<triple>-musl/libc.so``,
e.g. x86_64-linux-musl or arm-linux-musleabihf); ctypes opens it next to glibc, and a lookup
through its handle searches musl alone (it has no DT_NEEDED). The list of symbols is the one
minins.libc records as it declares its prototypes, cross-checked here against its source, so
a newly used symbol that musl lacks fails the suite.
"""
import ast
import ctypes
import glob
import pathlib

import pytest

from minins import libc

LIBC_PY = pathlib.Path(libc.__file__)


def musl_libc_path():
    found = sorted(glob.glob("/usr/lib/*-linux-musl*/libc.so")
                   + glob.glob("/usr/lib/musl/lib/libc.so"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def musl():
    path = musl_libc_path()
    if path is None:
        pytest.skip("musl's libc.so is not installed (apt-get install musl)")
    return ctypes.CDLL(path)


def symbols_in_source():
    """The literal names given to ``_fn(...)`` in minins/libc.py (the PyOS_* hooks are
    CPython's), plus ``syscall`` when ``_sys(...)`` is used, plus any ``lib["name"]``."""
    names = set()
    for node in ast.walk(ast.parse(LIBC_PY.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            first = node.args[0]
            if node.func.id == "_fn" and isinstance(first, ast.Constant):
                if not first.value.startswith("Py"):
                    names.add(first.value)
            elif node.func.id == "_sys":
                names.add("syscall")
        elif isinstance(node, ast.Subscript):
            key = node.slice  # an ast.Index around it before Python 3.9
            if not isinstance(key, ast.Constant):
                key = getattr(key, "value", None)
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
    return names


def test_the_recorded_list_is_what_the_source_uses():
    assert libc.LIBC_SYMBOLS == symbols_in_source()
    # (fork is os.fork's now: CPython's after-fork work must run in C, see libc.fork)
    assert {"mount", "unshare", "setns", "syscall"} <= libc.LIBC_SYMBOLS


def test_every_symbol_the_libc_layer_uses_is_in_musl(musl):
    missing = []
    for name in sorted(libc.LIBC_SYMBOLS):
        try:
            getattr(musl, name)
        except AttributeError:
            missing.append(name)
    assert not missing, "not in musl's libc.so (%s): %s" % (musl_libc_path(), missing)


def test_the_lookup_searches_musl_only(musl):
    """A glibc-only symbol that this process has is not found through musl's handle: the test
    above cannot pass by finding the process's own (glibc's) symbols instead."""
    try:
        ctypes.CDLL(None).gnu_get_libc_version
    except AttributeError:
        pytest.skip("this process does not run on glibc")
    with pytest.raises(AttributeError):
        getattr(musl, "gnu_get_libc_version")
