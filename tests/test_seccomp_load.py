"""Loading a prepared filter: the phase decision, the prctl fallback and the compile cache,
against the recording fake libc (no kernel needed)."""
import errno
import os

import pytest

from minins import config
from minins.errors import ConfigError
from minins.seccomp import compiler, load, profile

from fakes import FakeLibc

PROF = profile.loads({"defaultAction": "SCMP_ACT_ALLOW",
                      "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]})


class Ctx:
    def __init__(self, prep, lc):
        self.seccomp, self.lc = prep, lc


def cfg(**kw):
    return config.default_config().replace(**kw)


@pytest.mark.parametrize("nnp,loads_at", [(True, "exec"), (False, "privileged")])
def test_the_filter_is_installed_once_at_its_place(nnp, loads_at):
    prep = load.prepare(cfg(seccomp=PROF, no_new_privileges=nnp), native="x86_64")
    lc = FakeLibc()
    ctx = Ctx(prep, lc)
    for phase in ("privileged", "exec"):
        load.seccomp_step(ctx, phase)
        assert lc.names() == (["seccomp"] if phase == loads_at or loads_at == "privileged"
                              else [])
    assert lc.calls == [("seccomp", 1, 0)]  # SECCOMP_SET_MODE_FILTER, no flags


def test_flags_and_the_prctl_fallback():
    prof = PROF.replace(flags=("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
    prep = load.prepare(cfg(seccomp=prof), native="x86_64")
    lc = FakeLibc()
    load.install(prep, lc)
    assert lc.calls == [("seccomp", 1, 6)]
    # no seccomp(2) (before Linux 3.17): prctl(PR_SET_SECCOMP) when no flag is asked for
    prep = load.prepare(cfg(seccomp=PROF), native="x86_64")
    lc = FakeLibc(fail={"seccomp": errno.ENOSYS})
    load.install(prep, lc)
    assert lc.names() == ["seccomp", "prctl"] and lc.calls[1][1:3] == (22, 2)
    prep = load.prepare(cfg(seccomp=prof), native="x86_64")
    with pytest.raises(OSError):
        load.install(prep, FakeLibc(fail={"seccomp": errno.ENOSYS}))


def test_a_kernel_without_an_action_is_refused():
    prof = PROF.replace(defaultAction="SCMP_ACT_LOG")
    with pytest.raises(ConfigError, match="SCMP_ACT_LOG needs Linux 4.14"):
        load.prepare(cfg(seccomp=prof), native="x86_64",
                     lc=FakeLibc(fail={"seccomp": errno.EOPNOTSUPP}))
    assert load.prepare(cfg(seccomp=PROF), native="x86_64",
                        lc=FakeLibc(fail={"seccomp": errno.EOPNOTSUPP})) is not None


def test_no_profile_no_filter():
    assert load.prepare(cfg(seccomp=None)) is None
    ctx = Ctx(None, FakeLibc())
    load.seccomp_step(ctx, "exec")
    assert ctx.lc.calls == []


def test_the_cache_is_used_and_keyed(tmp_path):
    cache = str(tmp_path / "cache")
    c = cfg(seccomp="default")
    _prof, first = load.compiled(c, "x86_64", "6.1.0", cache)
    files = os.listdir(cache)
    assert len(files) == 1 and oct(os.stat(os.path.join(cache, files[0])).st_mode)[-3:] == "600"
    expected = compiler.pack(compiler.compile_profile(load.resolve_profile(c, "x86_64", "6.1.0"),
                                                      "x86_64"))
    assert first == expected
    # a hit reads the file: plant a different program under the same name to see it used
    planted = compiler.pack([(6, 0, 0, 0x7FFF0000)])
    with open(os.path.join(cache, files[0]), "wb") as f:
        f.write(planted)
    assert load.compiled(c, "x86_64", "6.1.0", cache)[1] == planted
    # other capabilities, kernel or architecture: other keys
    load.compiled(c.replace(capabilities=("SYS_ADMIN",)), "x86_64", "6.1.0", cache)
    load.compiled(c, "x86_64", "4.4.0", cache)
    load.compiled(c, "aarch64", "6.1.0", cache)
    load.compiled(cfg(seccomp=PROF), "x86_64", "6.1.0", cache)
    assert len(os.listdir(cache)) == 5


@pytest.mark.parametrize("seccomp", ["default", PROF])
def test_a_changed_compiler_does_not_use_the_old_programs(tmp_path, monkeypatch, seccomp):
    # the cache is shared by every minins on the machine (/run/minins/.seccomp-cache): a
    # program an older compiler made must not be loaded by a newer one
    cache = str(tmp_path / "cache")
    c = cfg(seccomp=seccomp)
    load.compiled(c, "x86_64", "6.1.0", cache)
    (name,) = os.listdir(cache)
    with open(os.path.join(cache, name), "wb") as f:
        f.write(compiler.pack([(6, 0, 0, 0x7FFF0000)]))  # "the old compiler's" program
    here = os.path.dirname(compiler.__file__)
    real_stat = os.stat

    class Touched:  # compiler.py as after an upgrade: a second newer
        def __init__(self, st):
            self.st_size, self.st_mtime_ns = st.st_size, st.st_mtime_ns + 10 ** 9

    def newer_compiler(path, *a, **kw):
        got = real_stat(path, *a, **kw)
        if os.path.abspath(str(path)) == os.path.join(here, "compiler.py"):
            return Touched(got)
        return got

    monkeypatch.setattr(os, "stat", newer_compiler)
    prof, program = load.compiled(c, "x86_64", "6.1.0", cache)
    assert program == compiler.pack(compiler.compile_profile(
        load.resolve_profile(c, "x86_64", "6.1.0"), "x86_64"))


def test_a_cache_others_can_write_is_ignored(tmp_path):
    cache = tmp_path / "cache"
    c = cfg(seccomp=PROF)
    good = load.compiled(c, "x86_64", "6.1.0", str(cache))[1]
    (name,) = os.listdir(cache)
    with open(cache / name, "wb") as f:
        f.write(compiler.pack([(6, 0, 0, 0x7FFF0000)]))
    os.chmod(cache, 0o777)
    assert load.compiled(c, "x86_64", "6.1.0", str(cache))[1] == good
    os.chmod(cache, 0o700)
    os.chmod(cache / name, 0o666)
    assert load.compiled(c, "x86_64", "6.1.0", str(cache))[1] == good
