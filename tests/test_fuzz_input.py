"""A fuzzer over everything a user hands minins: configurations, command lines and state files
(issue 11, section 2).

Whatever the input, the answer is exactly one of: it is accepted, or one line ``minins:
error: ...`` on stderr with exit code 125. Never a traceback, never a hang (every command
runs under a timeout), and nothing left on the host (the suite's guard checks links,
cgroups, mounts and children; each test checks its own state root).

The inputs are mutations of real ones -- the default configuration, the libcontainer samples
in tests/data, a valid state file -- with wrong types, numbers at and past the kernel's
limits, odd strings (NUL, newlines, lone surrogates, ``..``), deep nesting and truncation.
Bounded: a few hundred examples in all, well under a minute.

Safety: the commands really run (``delete`` removes, ``kill`` signals), so a state file never
names a live process (its pids are past PID_MAX_LIMIT), a path outside the test's own
directory that exists, or an existing network link; a command line never names a rootfs
that exists, so ``run`` can never start a container.
"""
import contextlib
import copy
import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from minins import cli, config
from minins.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = sorted(glob.glob(os.path.join(REPO, "tests", "data", "libcontainer-samples",
                                        "*.json")))
DEAD_PID = 4 * 1024 * 1024 + 7  # past PID_MAX_LIMIT: never a process
COMMAND_TIMEOUT = 30

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])
FEW = settings(FUZZ, max_examples=15)


def _bases():
    out = [config.default_config().to_json(),
           config.rootless(config.default_config(), 1000, 1000).to_json()]
    for path in SAMPLES:
        with open(path) as f:
            out.append(json.load(f))
    return out


BASES = _bases()


def _field_names():
    names = set()
    for cls in (config.Config, config.MountConfig, config.Mount, config.Device,
                config.Network, config.Route, config.Cgroup, config.Rlimit, config.Namespace,
                config.IDMap):
        names.update(cls.field_names())
    return sorted(names)


FIELD_NAMES = _field_names()

NUMBERS = st.sampled_from([
    0, 1, -1, -2, 2, 7, 68, 99, 1000, 1023, 1024, 65535, 65536, 262144, 262145, 1000000,
    4194304, 4194305, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1, 2 ** 32, 2 ** 44 - 1,
    2 ** 44, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, 2 ** 100, -2 ** 63, -2 ** 64,
]) | st.integers()
ODD_STRINGS = st.sampled_from([
    "", " ", "\0", "a\0b", "a\nb", "a\udcff", "\ud800", "\udc80x", "/", "..", "../..",
    "/../../etc", "x" * 300, "é", "-1", "max", "NEWNET", "NEWUSER", "bind", "tmpfs", "veth",
    "loopback", "netns", "c", "rwm", "FROZEN", "0-3", "1.2.3.4/24", "::1", "eth0", "lo",
    "root", "0:0", "KILL", "/dev/null", "/proc", "a=b", "=x",
]) | st.text(max_size=24)
DEEP = st.sampled_from([50, 990, 1000, 1100, 5000, 100000])


def _weird(depth=0):
    leaf = st.one_of(st.none(), st.booleans(), NUMBERS, ODD_STRINGS,
                     st.floats(allow_nan=True, allow_infinity=True),
                     DEEP.map(lambda n: ("__deep__", n)))
    if depth >= 2:
        return leaf
    return st.one_of(leaf, st.lists(_weird(depth + 1), max_size=3),
                     st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8),
                                     _weird(depth + 1), max_size=3))


WEIRD = _weird()


def _slots(node, out=None):
    """Every (container, key) in a decoded JSON document, the root's own keys included."""
    out = [] if out is None else out
    if isinstance(node, dict):
        for k in node:
            out.append((node, k))
            _slots(node[k], out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)
    return out


def _containers(node, out=None):
    out = [] if out is None else out
    if isinstance(node, (dict, list)):
        out.append(node)
        for v in (node.values() if isinstance(node, dict) else node):
            _containers(v, out)
    return out


@st.composite
def mutated(draw, bases):
    """A deep copy of one of ``bases`` with one to four mutations."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        slots = _slots(doc)
        if action == "replace" and slots:
            parent, key = draw(st.sampled_from(slots))
            parent[key] = draw(WEIRD)
        elif action == "delete" and slots:
            parent, key = draw(st.sampled_from(slots))
            del parent[key]
        else:
            where = draw(st.sampled_from(_containers(doc) or [doc]))
            if isinstance(where, dict):
                where[draw(st.sampled_from(FIELD_NAMES) | st.text(max_size=8))] = draw(WEIRD)
            elif isinstance(where, list):
                where.append(draw(WEIRD))
            else:
                doc = draw(WEIRD)
    return doc


def to_text(doc):
    """JSON text, with the ``("__deep__", n)`` markers replaced by nesting n levels deep (too
    deep for json.dumps itself)."""
    deep = []

    def encode(node):
        if isinstance(node, tuple) and len(node) == 2 and node[0] == "__deep__":
            deep.append(node[1])
            return "__deep_%d__" % (len(deep) - 1)
        if isinstance(node, dict):
            return {k: encode(v) for k, v in node.items()}
        if isinstance(node, list):
            return [encode(v) for v in node]
        return node

    text = json.dumps(encode(doc))
    for i, n in enumerate(deep):
        nest = "[" * n + "]" * n if i % 2 == 0 else '{"a":' * n + "1" + "}" * n
        text = text.replace('"__deep_%d__"' % i, nest)
    return text


def check_config_text(text):
    """The library's answer: a Config that round-trips, or one ConfigError of one line."""
    try:
        cfg = config.loads(text)
    except ConfigError as e:
        message = str(e)
        assert message and "\n" not in message, repr(message)
        return e
    assert config.loads(config.dumps(cfg)) == cfg
    if cfg.cgroups is not None:
        # what would be written to cgroupfs fits what the kernel parses (memparse, kstrtoull
        # and friends take at most 2**64-1: past it a limit wraps around)
        from minins.cgroups import values

        s = values.parse(cfg.cgroups)
        for w in values.plan_v1(s) + values.plan_v2(s):
            for text in (w.value,) if isinstance(w.value, str) else w.value:
                for word in text.split():
                    if word.lstrip("-").isdigit():
                        assert -1 <= int(word) < 2 ** 64, (w, cfg.cgroups)
    return None


@FUZZ
@given(mutated(BASES))
@example(dict(BASES[0], hostname="a\udcff"))
@example(dict(BASES[0], cgroups={"memory": 2 ** 64}))
@example(dict(BASES[0], cgroups={"memory": 2 ** 63}))
@example(dict(BASES[0], mount_config=("__deep__", 100000)))
@example(dict(BASES[0], cgroups={"\n": 1}))
def test_fuzz_configs_are_accepted_or_one_config_error(doc):
    check_config_text(to_text(doc))


@FUZZ
@given(st.sampled_from(BASES), st.data())
def test_fuzz_truncated_and_flipped_config_text(base, data):
    raw = to_text(base).encode()
    how = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
    i = data.draw(st.integers(0, len(raw)))
    if how == "truncate":
        raw = raw[:i]
    elif how == "flip":
        raw = raw[:i] + bytes([data.draw(st.integers(0, 255))]) + raw[i + 1:]
    else:
        raw = raw[:i] + data.draw(st.binary(min_size=1, max_size=8)) + raw[i:]
    check_config_text(raw)


# --- the command line ------------------------------------------------------------------------

def one_line_or_success(code, out, err, warn_ok=False):
    assert "Traceback" not in err, err
    lines = err.splitlines()
    if code == 125:
        assert len(lines) == 1 and lines[0].startswith("minins: error: "), err
    else:
        assert code in (0, 2), (code, err)
        if warn_ok:
            assert all(line.startswith("minins: warning: ") for line in lines), err
        else:
            assert lines == [], err


def cli_subprocess(argv, cwd=REPO):
    proc = subprocess.run([sys.executable, "-m", "minins"] + argv, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


class _Timeout(BaseException):
    pass


def _alarm(_sig, _frame):
    raise _Timeout("a command took more than %d s" % COMMAND_TIMEOUT)


PR_SET_CHILD_SUBREAPER = 36


def cli_in_process(argv):
    """``minins.cli.main(argv)`` here, stdout and stderr captured, under a timeout."""
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(COMMAND_TIMEOUT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        # `exec` on a container sharing the host's PID namespace makes us a subreaper first
        from minins import libc

        libc.prctl(PR_SET_CHILD_SUBREAPER, 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def scratch():
    d = os.path.realpath(tempfile.mkdtemp(prefix="minins-fuzz-"))
    _SCRATCH[0] = d
    yield d
    shutil.rmtree(d, ignore_errors=True)


_SCRATCH = [None]  # the module's scratch directory, for the state-file strategy


def _fresh(scratch, name):
    d = os.path.join(scratch, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


@FEW
@given(doc=mutated(BASES))
def test_fuzz_bad_configs_on_the_command_line_are_one_line(scratch, doc):
    text = to_text(doc)
    assume(check_config_text(text) is not None)  # only what the library refuses: never runs
    work = _fresh(scratch, "run-config")
    path = os.path.join(work, "c.json")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    state_root = os.path.join(work, "state")
    code, out, err = cli_subprocess(["--root", state_root, "run", "--config", path, "--",
                                     "true"])
    assert code == 125
    one_line_or_success(code, out, err)
    assert not os.path.exists(state_root) or os.listdir(state_root) == []


COMMANDS = sorted(cli.COMMANDS) + ["", "bogus", "-h", "--help", "help"]
TOKENS = st.sampled_from([
    "--data-path", "--id", "--tty", "-t", "--env", "-e", "--cwd", "--user", "-u", "--all",
    "-a", "--force", "-f", "--json", "-q", "--root", "--config", "--", "-h", "--help", "-",
    "-9", "0", "9", "65", "KILL", "SIGKILL", "RTMIN+3", "RTMAX-40", "=", "--id=", "--env=",
    "--data-path=", "--bogus", "-x", "c1", "true", "A=1", "=1", "..", ".", "",
]) | ODD_STRINGS.filter(lambda s: "\0" not in s)


def _safe_token(t, scratch):
    """No token may name a container that exists on this host (other tests run them)."""
    value = t.partition("=")[2] if t.startswith("-") else t
    try:
        named = bool(value) and os.path.exists(os.path.join(value, "state.json"))
    except (ValueError, UnicodeEncodeError):
        named = False
    return not named or os.path.realpath(value).startswith(scratch + "/")


@FUZZ
@given(command=st.sampled_from([c for c in COMMANDS if c != "run"]),
       tokens=st.lists(TOKENS, max_size=6))
def test_fuzz_argv_in_process(scratch, command, tokens):
    assume(all(_safe_token(t, scratch) for t in tokens))
    root = _fresh(scratch, "argv")
    # in a fresh directory: `spec` writes config.json there, runc's `create ID` reads it
    cwd, here = _fresh(scratch, "argv-cwd"), os.getcwd()
    os.chdir(cwd)
    try:
        code, out, err = cli_in_process(["--root", root] + ([command] if command else [])
                                        + tokens)
    finally:
        os.chdir(here)
    one_line_or_success(code, out, err)
    assert os.listdir(root) == []


def _encodable(t):
    try:
        os.fsencode(t)
    except UnicodeEncodeError:
        return False
    return "\0" not in t


@FEW
@given(tokens=st.lists(TOKENS.filter(_encodable).filter(
    lambda t: not t.startswith(("--rootfs", "--data-path"))), max_size=6))
def test_fuzz_run_argv_in_a_subprocess(scratch, tokens):
    # The rootfs never exists: whatever the rest says, no container can start.
    work = _fresh(scratch, "run-argv")
    root = os.path.join(work, "state")
    code, out, err = cli_subprocess(["--root", root, "run", "--rootfs",
                                     os.path.join(work, "no-rootfs")] + tokens, cwd=work)
    one_line_or_success(code, out, err)
    assert code == 125 or "--help" in tokens[:1] or "-h" in tokens[:1]
    assert not os.path.exists(root) or os.listdir(root) == []
    assert os.listdir(work) in ([], ["state"])


# --- state files -----------------------------------------------------------------------------

def good_state(data_path, cid, full=True):
    """A state file as minins writes it, of a container that has stopped; its cgroups and
    links are gone (they are named below the scratch directory, and "mnfz" links)."""
    gone = os.path.join(os.path.dirname(os.path.dirname(data_path)), "gone")
    return {"id": cid, "init_pid": DEAD_PID, "init_start_time": "12345",
            "created": "2026-01-01T00:00:00.000000Z", "root_fs": "/", "data_path": data_path,
            "network_state": {"veth_host": "mnfz0host", "veth_child": "mnfz0child"},
            "cgroup_paths": {"memory": gone + "/memory/" + cid,
                             "unified": gone + "/unified/" + cid},
            "pid_namespace": True, "user_namespace": False, "labels": ["a=b"],
            "runtime_pid": DEAD_PID + 1,
            "config": config.default_config().to_json() if full else {}}


def _sanitize(node, scratch, links):
    """Make a fuzzed state harmless to act on: no live pid, no existing path outside the
    scratch directory, no existing link."""
    if isinstance(node, dict):
        return {k: _sanitize(v, scratch, links) for k, v in node.items()}
    if isinstance(node, list):
        return [_sanitize(v, scratch, links) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        alive = 0 < node < 2 ** 31 and os.path.exists("/proc/%d" % node)
        return DEAD_PID if alive else node
    if isinstance(node, str):
        try:
            exists = os.path.lexists(node)
        except (ValueError, UnicodeEncodeError):
            exists = False
        if (exists and not os.path.realpath(node).startswith(scratch + "/")) \
                or node in links:
            return os.path.join(scratch, "gone", "x")
    return node


STATE_COMMANDS = (["state"], ["ps"], ["ps", "--json"], ["stats"], ["pause"], ["resume"],
                  ["kill"], ["kill", "--all"], ["kill", "KILL"], ["oom"],
                  ["exec", "--", "true"], ["delete"], ["delete", "--force"])


@st.composite
def state_file(draw):
    scratch = _SCRATCH[0]
    base = good_state(os.path.join(scratch, "states", "c1"), "c1")
    if draw(st.booleans()):
        small = good_state(os.path.join(scratch, "states", "c1"), "c1", full=False)
        doc = _sanitize(draw(mutated([base, small, small])), scratch,
                        set(os.listdir("/sys/class/net")))
        return to_text(doc).encode("utf-8", "surrogatepass")
    raw = json.dumps(base, indent=2).encode()
    i = draw(st.integers(0, len(raw)))
    how = draw(st.sampled_from(["truncate", "flip", "empty", "binary"]))
    if how == "truncate":
        return raw[:i]
    if how == "flip":
        return raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1:]
    if how == "empty":
        return b""
    return draw(st.binary(max_size=64))


# What users tripped over (issue 11), always tried first.
_STOPPED = json.dumps({"id": "c1", "init_pid": DEAD_PID, "init_start_time": "1"})


@settings(FUZZ, max_examples=80)
@given(raw=state_file())
@example(raw=_STOPPED[:len(_STOPPED) // 2].encode())
@example(raw=b"{")
@example(raw=_STOPPED.replace("}", ', "cgroup_paths": {"memory": 5}}').encode())
@example(raw=_STOPPED.replace("}", ', "x": %s}' % ("[" * 100000 + "]" * 100000)).encode())
def test_fuzz_state_files(scratch, raw):
    root = os.path.join(scratch, "states")
    for command in STATE_COMMANDS:
        os.makedirs(os.path.join(root, "c1"), exist_ok=True)  # delete may remove them
        os.makedirs(os.path.join(root, "c2"), exist_ok=True)
        with open(os.path.join(root, "c1", "state.json"), "wb") as f:
            f.write(raw)
        with open(os.path.join(root, "c2", "state.json"), "w") as f:
            # (no cgroup paths: the checks of minins.statecheck would rightly refuse paths
            # outside a cgroup hierarchy, and c2 must be the container everyone can read)
            json.dump(dict(good_state(os.path.join(root, "c2"), "c2"), cgroup_paths={}), f)
        code, out, err = cli_in_process(["--root", root] + command[:1] + ["c1"] + command[1:])
        one_line_or_success(code, out, err)
        # list: the readable one is always there; the other is listed or reported, never
        # fatal
        code, out, err = cli_in_process(["--root", root, "list", "--json"])
        # an unreadable state is a warning; one the checks refuse is an error (exit 125):
        # either way one line for it, and the others are listed
        assert "Traceback" not in err, err
        assert code in (0, 125), (code, err)
        said = err.splitlines()
        assert all(ln.startswith(("minins: warning: ", "minins: error: ")) for ln in said), err
        assert (code == 125) == any(ln.startswith("minins: error: ") for ln in said), err
        rows = json.loads(out)
        assert "c2" in [r["id"] for r in rows]
        present = [d for d in os.listdir(root)
                   if os.path.exists(os.path.join(root, d, "state.json"))]
        assert len(rows) + len(err.splitlines()) == len(present), (rows, err)
    shutil.rmtree(root, ignore_errors=True)
