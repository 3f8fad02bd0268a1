"""The seccomp syscall tables: regenerated from the uapi headers with cpp and compared, and
checked against libseccomp's resolver where Debian's ``seccomp`` package is installed."""
import importlib.util
import os
import random
import shutil
import subprocess

import pytest

from minins import arch
from minins.seccomp import tables

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "gen_seccomp_tables", os.path.join(HERE, "..", "tools", "gen_seccomp_tables.py"))
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

ALL = sorted(tables.ARCHES.values())


@pytest.mark.parametrize("name", ALL)
def test_tables_match_the_uapi_headers(name):
    if shutil.which("cpp") is None:
        pytest.skip("cpp is not installed")
    found = gen.header_table(name)
    if found is None:
        pytest.skip("uapi headers for %s are not installed (%s)" % (name, gen.HEADERS[name][4]))
    assert tables.table(name).SYSCALLS == found


@pytest.mark.parametrize("name", ALL)
def test_audit_arch_and_shape(name):
    t = tables.table(name)
    assert t.AUDIT_ARCH == gen.HEADERS[name][3]
    assert len(t.SYSCALLS) > 250
    if name == "x32":
        assert all(nr & tables.X32_SYSCALL_BIT for nr in t.SYSCALLS.values())
    elif name == "x86_64":
        assert not any(nr & tables.X32_SYSCALL_BIT for nr in t.SYSCALLS.values())


def test_the_minins_arch_table_agrees():
    for a in arch.ARCHES:
        t = tables.table(tables.NATIVE[a]).SYSCALLS
        for call, nr in arch.SYSCALLS[a].items():
            assert t[call] == nr, (a, call)


# libseccomp's names for the architectures
_SCMP = {"x86_64": "x86_64", "x32": "x32", "x86": "x86", "aarch64": "aarch64", "arm": "arm",
         "riscv64": "riscv64"}


@pytest.mark.parametrize("name", ALL)
def test_libseccomp_resolves_the_same_numbers(name):
    """libseccomp (Debian's ``seccomp`` package) as an oracle; minins never loads it. Names it
    does not know (newer than its release) are left out; a sample keeps this quick."""
    resolver = shutil.which("scmp_sys_resolver")
    if resolver is None:
        pytest.skip("scmp_sys_resolver is not installed (Debian package seccomp)")
    t = tables.table(name).SYSCALLS
    sample = sorted(random.Random(name).sample(sorted(t), 40)) + ["read", "clone", "keyctl"]
    checked = 0
    for call in sample:
        if call not in t:
            continue
        out = subprocess.run([resolver, "-a", _SCMP[name], call], capture_output=True,
                             text=True).stdout.strip()
        try:
            nr = int(out)
        except ValueError:
            continue
        if nr < 0:  # libseccomp does not know it on this architecture
            continue
        assert nr == t[call], (name, call, nr, t[call])
        checked += 1
    assert checked >= 30
