"""Pure pieces of the exec path: the sync codec, state files, user lookup, command lookup,
the mount plan, the in-root resolver and the command-line parser."""
import errno
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins import child, cli, config, fspath, rootfs, state, sync, users
from minins.errors import ConfigError, ContainerError, StateError, SyscallError

# --- sync ------------------------------------------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20)


@given(st.sampled_from(sync.MESSAGES), st.dictionaries(st.text(max_size=8), json_values,
                                                       max_size=5))
def test_sync_messages_round_trip(kind, payload):
    assert sync.decode(sync.encode(kind, payload)) == (kind, payload)


@given(st.binary(max_size=64))
def test_sync_garbage_is_a_clean_error(data):
    try:
        kind, payload = sync.decode(data)
    except ContainerError:
        return
    assert kind in sync.MESSAGES or (kind is sync.EOF and not data)


@given(st.sampled_from(sorted(errno.errorcode)), st.text(min_size=1, max_size=10),
       st.one_of(st.none(), st.text(max_size=10)), st.one_of(st.none(), st.text(max_size=10)))
def test_syscall_errors_cross_with_errno_intact(err, op, path, step):
    exc = SyscallError(err, op, path)
    back = sync.error_from_payload(sync.decode(sync.encode(sync.ERROR, sync.error_payload(
        exc, step)))[1])
    assert isinstance(back, SyscallError) and back.errno == err
    assert (back.op, back.path, back.step) == (op, path, step or None)


def test_config_and_other_errors_cross():
    back = sync.error_from_payload(sync.error_payload(ConfigError("user", "no user 'x'"),
                                                      "init: identity"))
    assert isinstance(back, ConfigError) and str(back) == "init: identity: user: no user 'x'"
    back = sync.error_from_payload(sync.error_payload(KeyError("boom"), "init: mounts"))
    assert isinstance(back, ContainerError) and "KeyError" in str(back)
    back = sync.error_from_payload(sync.error_payload(FileNotFoundError(2, "x", "/a"), "s"))
    assert isinstance(back, SyscallError) and back.errno == 2 and back.path == "/a"


def test_sync_over_a_real_socketpair():
    a, b = sync.socketpair()
    try:
        sync.send(a, sync.INIT_PID, {"pid": 42})
        assert sync.expect(b, sync.INIT_PID) == {"pid": 42}
        sync.send(b, sync.ERROR, sync.error_payload(SyscallError(1, "mount", "/proc"), "s"))
        with pytest.raises(SyscallError, match="s: mount /proc: EPERM"):
            sync.expect(a, sync.SETUP_DONE)
        r, w = os.pipe()
        sync.send_fds(a, sync.MOUNT_SOURCES, {"keys": [3]}, [r])
        kind, payload, fds = sync.recv_fds(b)
        assert (kind, payload, len(fds)) == (sync.MOUNT_SOURCES, {"keys": [3]}, 1)
        os.write(w, b"x")
        assert os.read(fds[0], 1) == b"x"
        assert not os.get_inheritable(fds[0])
        for fd in (r, w, fds[0]):
            os.close(fd)
        a.close()
        with pytest.raises(ContainerError, match="exited before START"):
            sync.expect(b, sync.START)
    finally:
        a.close()
        b.close()


# --- state -----------------------------------------------------------------------------------

def test_state_round_trip_and_atomic_replace(tmp_path):
    st = {"init_pid": os.getpid(), "init_start_time": state.proc_start_time(os.getpid()),
          "id": "x", "cgroup_paths": {"memory": "/sys/fs/cgroup/memory/x"},
          "network_state": {}}
    state.save(str(tmp_path), st)
    assert state.load(str(tmp_path)) == dict(st, data_path=str(tmp_path))
    assert state.init_alive(st)
    st["init_start_time"] = "1"
    state.save(str(tmp_path), st)
    assert not state.init_alive(state.load(str(tmp_path)))
    assert sorted(os.listdir(str(tmp_path))) == ["state.json"]
    assert stat.S_IMODE(os.stat(str(tmp_path / "state.json")).st_mode) == 0o600


@pytest.mark.parametrize("text,words", [
    ("{", "not valid JSON"),
    ("[]", "must hold a JSON object"),
    ('{"init_start_time": "1"}', "init_pid: missing"),
    ('{"init_pid": "7", "init_start_time": "1"}', "init_pid: must be int"),
    ('{"init_pid": true, "init_start_time": "1"}', "init_pid: must be int"),
    ('{"init_pid": -3, "init_start_time": "1"}', "init_pid: must not be negative"),
    ('{"init_pid": 3, "init_start_time": 1}', "init_start_time: must be str"),
    ('{"init_pid": 3, "init_start_time": "1", "cgroup_paths": []}', "cgroup_paths: must be dict"),
])
def test_bad_state_files_name_the_problem(tmp_path, text, words):
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(StateError) as e:
        state.load(str(tmp_path))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_state_is_a_state_error(tmp_path):
    with pytest.raises(StateError, match="no container state"):
        state.load(str(tmp_path / "nope"))


def test_start_time_parses_comm_with_spaces_and_parens(tmp_path):
    (tmp_path / "7").mkdir()
    fields = ["S"] + [str(i) for i in range(4, 52)]
    (tmp_path / "7" / "stat").write_text("7 (we ird) (x) " + " ".join(fields) + "\n")
    assert state.proc_start_time(7, str(tmp_path)) == "22"
    assert state.proc_state(7, str(tmp_path)) == "S"
    assert state.proc_start_time(8, str(tmp_path)) is None


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "x" * 129, "é"])
def test_bad_container_ids(cid):
    with pytest.raises(ConfigError, match="container id"):
        state.validate_id(cid)


# --- users -----------------------------------------------------------------------------------

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
broken line
alice:x:1000:1000::/home/alice:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
wheel:x:10:alice,bob
staff:x:50:alice
bad:x:notanumber:alice
"""


@pytest.mark.parametrize("spec,expected", [
    ("", (0, 0, (), "/root")),
    ("root", (0, 0, (), "/root")),
    ("alice", (1000, 1000, (10, 50), "/home/alice")),
    ("alice:daemon", (1000, 1, (), "/home/alice")),  # explicit group: no image groups
    ("1000:1000", (1000, 1000, (), "/home/alice")),
    ("1000", (1000, 1000, (10, 50), "/home/alice")),
    ("4242", (4242, 0, (), "/")),
    ("4242:77", (4242, 77, (), "/")),
    ("daemon:staff", (1, 50, (), "/usr/sbin")),
])
def test_resolve_user(spec, expected):
    u = users.resolve_user(spec, PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == expected


def test_additional_groups_come_after_and_once():
    assert users.resolve_user("alice", PASSWD, GROUP, (50, 99)).sgids == (10, 50, 99)


@pytest.mark.parametrize("spec,words", [("mallory", "no user 'mallory'"),
                                        ("alice:nogroup", "no group 'nogroup'")])
def test_unknown_user_or_group(spec, words):
    with pytest.raises(ConfigError) as e:
        users.resolve_user(spec, PASSWD, GROUP)
    assert e.value.field == "user" and words in e.value.message


@given(st.text(max_size=200), st.text(max_size=200))
def test_user_files_never_crash_the_parser(passwd, group):
    users.parse_passwd(passwd)
    users.parse_group(group)
    try:
        users.resolve_user("1", passwd, group)
    except ConfigError:
        pytest.fail("a numeric user needs no entry")


# --- command lookup --------------------------------------------------------------------------

def test_lookup(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "tool").write_text("")  # not executable
    (b / "tool").write_text("#!/bin/sh\n")
    (b / "tool").chmod(0o755)
    (a / "dir").mkdir()
    path = "%s:%s" % (a, b)
    assert child.lookup("tool", path) == str(b / "tool")
    assert child.lookup("/abs/x", path) == "/abs/x"
    with pytest.raises(SyscallError) as e:
        child.lookup("tool", str(a))
    assert e.value.errno == errno.EACCES and e.value.path == str(a / "tool")
    with pytest.raises(SyscallError) as e:
        child.lookup("dir", path)
    assert e.value.errno == errno.ENOENT and "not found in PATH" in str(e.value)


# --- the mount plan --------------------------------------------------------------------------

def test_system_mount_plan_follows_the_config():
    cfg = config.default_config()
    plan = {m.dest: m for m in rootfs.system_mounts(cfg)}
    assert list(plan) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    assert "newinstance" in plan["/dev/pts"].data and "gid=5" in plan["/dev/pts"].data
    assert plan["/sys"].readonly  # restrict_sys
    plan = {m.dest: m for m in rootfs.system_mounts(cfg.replace(restrict_sys=False))}
    assert not plan["/sys"].readonly  # own network namespace: sysfs may be writable
    nonet = cfg.replace(restrict_sys=False, networks=(),
                        namespaces=tuple(n for n in cfg.namespaces if n.type != "NEWNET"))
    plan = {m.dest: m for m in rootfs.system_mounts(nonet, in_userns=True, gid5_mapped=False)}
    assert plan["/sys"].readonly and plan["/sys"].fallback_bind
    assert "gid=5" not in plan["/dev/pts"].data


def test_device_plan():
    cfg = config.default_config()
    plan = rootfs.device_plan(cfg)
    null = [p for p in plan if p[0] == "/dev/null"][0]
    assert stat.S_ISCHR(null[1]) and stat.S_IMODE(null[1]) == 0o666
    assert (os.major(null[2]), os.minor(null[2])) == (1, 3)
    bare = cfg.replace(mount_config=cfg.mount_config.replace(device_nodes=()))
    assert [p[0] for p in rootfs.device_plan(bare)] == ["/dev/null"]  # to mask files with
    assert rootfs.device_plan(bare.replace(restrict_sys=False)) == []


# --- the in-root resolver: openat2 and the by-hand walk agree ----------------------------------

names = st.sampled_from(["a", "b", "c", "..", "."])


@st.composite
def trees(draw):
    """Random little trees of dirs and symlinks (absolute, relative, dangling, looping)."""
    entries = []
    for _ in range(draw(st.integers(1, 8))):
        parts = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3))
        kind = draw(st.sampled_from(["dir", "link"]))
        target = "/".join(draw(st.lists(names, min_size=1, max_size=4)))
        if draw(st.booleans()):
            target = "/" + target
        entries.append(("/".join(parts), kind, target))
    return entries


def _build(root, entries):
    for rel, kind, target in entries:
        p = os.path.join(root, rel)
        try:
            if kind == "dir":
                os.makedirs(p, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                os.symlink(target, p)
        except OSError:
            pass


class _NoOpenat2:
    """A libc whose openat2 is missing (ENOSYS): open_in_root walks by hand."""

    @staticmethod
    def openat2(*args, **kwargs):
        raise OSError(errno.ENOSYS, "no openat2")


def _resolve(rootfd, path, use_openat2):
    try:
        fd = fspath.open_in_root(rootfd, path, lc=fspath._libc if use_openat2 else _NoOpenat2)
    except OSError as e:
        return ("error", e.errno)
    try:
        return ("ok", fspath.real_path(fd))
    finally:
        os.close(fd)


@settings(max_examples=150, deadline=None)
@given(trees(), st.lists(names, min_size=1, max_size=5))
def test_walk_agrees_with_openat2_and_never_leaves_the_root(tmp_path_factory, entries, parts):
    root = str(tmp_path_factory.mktemp("root"))
    _build(root, entries)
    rootfd = os.open(root, fspath.O_PATH | os.O_DIRECTORY)
    try:
        path = "/".join(parts)
        kernel = _resolve(rootfd, path, True)
        ours = _resolve(rootfd, path, False)
        assert kernel == ours, (entries, path)
        if kernel[0] == "ok":
            assert kernel[1] == root or kernel[1].startswith(root + "/")
    finally:
        os.close(rootfd)


# --- the command-line parser -----------------------------------------------------------------

def test_cli_parse():
    opts = {"--config": True, "--tty": False}
    assert cli.parse(["--config", "c.json", "--", "sh", "-c", "x"], opts) == (
        {"--config": "c.json"}, ["sh", "-c", "x"])
    assert cli.parse(["--config=c", "--tty", "ls", "--tty"], opts) == (
        {"--config": "c", "--tty": True}, ["ls", "--tty"])
    assert cli.parse(["a", "--tty", "b"], opts, rest="args") == ({"--tty": True}, ["a", "b"])
    for bad, words in ((["--nope"], "unknown option"), (["--config"], "needs a value"),
                       (["--tty=1"], "takes no value")):
        with pytest.raises(ConfigError, match=words):
            cli.parse(bad, opts)
