"""The default profile: Docker's (Moby's ``profiles/seccomp/default.json``), resolved for one
container.

``default.json`` beside this file is Moby's profile as Debian ships it in
``golang-github-docker-docker-dev`` 20.10.24 (Apache-2.0, Docker, Inc.). It is the profile
podman's containers-common profile started from; containers-common 0.50 (Debian 12) has since
allowed ``keyctl``, ``add_key``, ``request_key`` and unconditional ``unshare``/``clone``,
which are exactly the calls a default profile is meant to close, so minins ships Moby's.

The file is not OCI: its rules carry conditions, resolved here the way Moby's
``setupSeccomp`` does (profiles/seccomp/seccomp_linux.go):

* ``archMap``: the entry of the native architecture gives ``architectures`` (x86_64 lists
  x86 and x32 too, aarch64 lists arm);
* ``includes.arches`` / ``excludes.arches``: matched against the native architecture's Go
  name (``amd64``, ``arm64``, ``arm``, ``riscv64``);
* ``includes.caps``: every capability must be in the container's bounding set;
  ``excludes.caps``: the rule is dropped when any of them is;
* ``includes.minKernel``: the running kernel must be at least that version;
* ``comment``, ``errno`` (a name) and other keys outside OCI are dropped.

The result is an ordinary :class:`~.profile.Seccomp`, so it compiles like any other profile.
"""
import os as _os

from . import profile as _profile

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm": "arm", "riscv64": "riscv64",
           "x86": "386"}
_SCMP = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64", "arm": "SCMP_ARCH_ARM",
         "riscv64": "SCMP_ARCH_RISCV64", "x86": "SCMP_ARCH_X86"}

_raw = None


def raw():
    """The decoded ``default.json`` (cached)."""
    global _raw
    if _raw is None:
        from json import loads

        with open(_os.path.join(_os.path.dirname(__file__), "default.json"), "rb") as f:
            _raw = loads(f.read())
    return _raw


def _version(text):
    parts = []
    for p in text.split("-")[0].split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (3 - len(parts)))


def _cap_names(capabilities):
    out = set()
    for c in capabilities:
        c = c.upper()
        out.add(c if c.startswith("CAP_") else "CAP_" + c)
    return out


def resolve(data, capabilities, native, kernel):
    """The OCI profile (a :class:`~.profile.Seccomp`) of a Moby-format profile ``data`` for a
    container with bounding set ``capabilities`` (names, with or without ``CAP_``) on table
    architecture ``native``, kernel release ``kernel`` (``"6.1.0-13-amd64"``)."""
    caps = _cap_names(capabilities)
    goarch = _GOARCH.get(native, native)
    kver = _version(kernel)
    arches = []
    for entry in data.get("archMap") or ():
        if entry.get("architecture") == _SCMP.get(native):
            arches = [entry["architecture"]] + list(entry.get("subArchitectures") or ())
    syscalls = []
    for rule in data.get("syscalls") or ():
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if exc.get("arches") and goarch in exc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        if inc.get("minKernel") and kver < _version(inc["minKernel"]):
            continue
        syscalls.append(_profile.SeccompSyscall(
            names=tuple(rule["names"]), action=rule["action"],
            errnoRet=rule.get("errnoRet"),
            args=tuple(_profile.SeccompArg(index=a["index"], value=a.get("value", 0),
                                           valueTwo=a.get("valueTwo", 0), op=a["op"])
                       for a in rule.get("args") or ())))
    return _profile.Seccomp(defaultAction=data["defaultAction"],
                            defaultErrnoRet=data.get("defaultErrnoRet"),
                            architectures=tuple(arches), syscalls=tuple(syscalls))


def default_profile(capabilities, native, kernel=None):
    """The default profile for a container with these capabilities on ``native``;
    ``kernel`` defaults to the running kernel's release."""
    if kernel is None:
        kernel = _os.uname().release
    return resolve(raw(), capabilities, native, kernel)
