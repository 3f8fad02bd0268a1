"""The syscall numbers in minins.arch, checked against the kernel's uapi headers."""
import os
import shutil
import subprocess

import pytest

from minins import arch

# Where Debian's linux-libc-dev and the -cross packages put each architecture's headers.
HEADERS = {
    "x86_64": ("/usr/include/x86_64-linux-gnu", "asm/unistd_64.h", []),
    "aarch64": ("/usr/aarch64-linux-gnu/include", "asm/unistd.h", []),
    "riscv64": ("/usr/riscv64-linux-gnu/include", "asm/unistd.h", []),
    "arm": ("/usr/arm-linux-gnueabihf/include", "asm/unistd.h", ["-D__ARM_EABI__"]),
}


def header_numbers(arch_name):
    inc, header, defines = HEADERS[arch_name]
    if not os.path.exists(os.path.join(inc, header)):
        pytest.skip("uapi headers for %s are not installed (%s)" % (arch_name, inc))
    if shutil.which("cpp") is None:
        pytest.skip("cpp is not installed")
    names = sorted(arch.SYSCALLS[arch_name])
    src = "#include <%s>\n" % header + "".join("N_%s = __NR_%s\n" % (n, n) for n in names)
    out = subprocess.run(["cpp", "-P", "-nostdinc", "-I", inc, "-I", "/usr/include"] + defines,
                         input=src, capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        if line.startswith("N_"):
            name, expr = line[2:].split(" = ", 1)
            if not expr.startswith("__NR_"):
                found[name] = eval(expr, {"__builtins__": {}})  # arithmetic only: (0 + 435)
    return found


@pytest.mark.parametrize("arch_name", arch.ARCHES)
def test_numbers_match_the_uapi_headers(arch_name):
    found = header_numbers(arch_name)
    for name, number in arch.SYSCALLS[arch_name].items():
        assert name in found, "%s: __NR_%s missing from the headers" % (arch_name, name)
        assert found[name] == number, "%s: %s is %d, not %d" % (arch_name, name, found[name],
                                                                number)


@pytest.mark.parametrize("machine,bits,expected", [
    ("x86_64", 8, "x86_64"), ("aarch64", 8, "aarch64"), ("aarch64", 4, "arm"),
    ("armv7l", 4, "arm"), ("armv8l", 4, "arm"), ("riscv64", 8, "riscv64"),
    ("i686", 4, None), ("x86_64", 4, None), ("mips", 4, None), ("ppc64le", 8, None),
])
def test_normalize(machine, bits, expected):
    assert arch.normalize(machine, bits) == expected


def test_unsupported_architecture_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(arch._os, "uname", lambda: os.uname_result(("Linux", "h", "r", "v",
                                                                     "s390x")))
    with pytest.raises(arch.UnsupportedArchitecture, match="unsupported architecture 's390x'"):
        arch.current()
