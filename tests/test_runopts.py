"""The container options of run, create and config (issue 12 section 3).

Pure: each option against ``minins config`` output and the parser's rules, with hypothesis
for the size syntax and the option grammar. On the kernel (root): each option checked from
inside a real container started by ``python3 -m minins run``, and the same run again with
``--config`` of what ``minins config`` printed for those options.
"""
import json
import os
import re
import socket
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minins import config, runopts
from minins.errors import ConfigError

from kernel import needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "minins"] + list(args), cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kw)


def config_of(*opts, **kw):
    proc = cli("config", *opts, **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def build(*opts, euid=0, environ=None):
    values, _ = runopts.parse(list(opts), "config")
    return runopts.build_config(values, euid, euid, environ=environ or {})


# --- each option against `minins config` -----------------------------------------------------

def test_config_without_options_is_the_default():
    assert cli("config").stdout == config.dumps(config.default_config()) + "\n"


def test_env_replaces_in_place_appends_and_takes_the_callers_value(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\n\n  FROM_FILE=a b \"c\"\nTERM=dumb\nFROM_HOST\nUNSET\n")
    cfg = config_of("-e", "A=1", "--env", "TERM=vt100", "-e", "FROM_HOST", "-e", "NOPE",
                    "--env-file", str(env_file), "-eB=x=y",
                    env=dict(os.environ, FROM_HOST="host value"))
    env = cfg["environment"]
    # (no HOME: the user's home from the image's passwd is used unless one is given)
    assert env[:3] == ["PATH=" + config.DEFAULT_PATH, "TERM=vt100",
                       "HOSTNAME=minins"]  # -e comes after --env-file, as in docker
    assert env[3:] == ["FROM_FILE=a b \"c\"", "FROM_HOST=host value", "A=1", "B=x=y"]


@pytest.mark.parametrize("opt,field,value", [
    (["-u", "1000:50"], "user", "1000:50"),
    (["--user=daemon"], "user", "daemon"),
    (["-w", "/srv/app"], "working_dir", "/srv/app"),
    (["--rootfs", "/srv/img"], "root_fs", "/srv/img"),
    (["-t"], "tty", True),
])
def test_process_fields(opt, field, value):
    assert config_of(*opt)[field] == value


def test_stop_signal_sets_the_field_and_a_bad_one_names_the_option():
    assert config_of("--stop-signal", "SIGUSR1")["stop_signal"] == "SIGUSR1"
    assert config_of().get("stop_signal", "") == ""  # (a default is not written out)
    for bad in ("NOPE", "0", "65", ""):
        with pytest.raises(ConfigError) as exc:
            build("--stop-signal", bad)
        assert exc.value.field == "--stop-signal", bad
    proc = cli("config", "--stop-signal", "NOPE")
    assert proc.returncode == 125 and proc.stderr == \
        "minins: error: --stop-signal: unknown signal 'NOPE'\n"


def test_hostname_sets_the_field_and_the_environment_entry():
    cfg = config_of("-h", "web1")
    assert cfg["hostname"] == "web1" and "HOSTNAME=web1" in cfg["environment"]
    cfg = config_of("--hostname", "web1", "-e", "HOSTNAME=other")
    assert cfg["hostname"] == "web1" and "HOSTNAME=other" in cfg["environment"]


def test_volumes_and_tmpfs_are_mounts_in_order():
    cfg = config_of("-v", "/srv/a:/a", "-v", "/srv/b:/b:ro,Z", "--volume=/srv/c:/c:rw,slave",
                    "--tmpfs", "/scratch", "--tmpfs", "/tmp:size=1m,ro,nosuid")
    mounts = cfg["mount_config"]["mounts"]
    from minins import config as _config

    defaults = [m.to_json() for m in _config.default_config().mount_config.mounts]
    assert mounts[0] == {"type": "tmpfs", "destination": "/tmp",
                         "data": "size=1m,mode=1777"}  # replaced, in place
    assert mounts[1:len(defaults)] == defaults[1:]  # the default's other mounts, as they were
    assert mounts[len(defaults):] == [
        {"type": "bind", "source": "/srv/a", "destination": "/a", "writable": True},
        {"type": "bind", "source": "/srv/b", "destination": "/b", "relabel": "Z"},
        {"type": "bind", "source": "/srv/c", "destination": "/c", "writable": True,
         "slave": True},
        {"type": "tmpfs", "destination": "/scratch", "writable": True, "data": "mode=1777"},
    ]


def test_read_only_sets_readonly_fs(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"namespaces": [{"type": "NEWNS"}]}))
    assert "mount_config" not in config_of("--config", str(plain))
    assert config_of("--config", str(plain), "--read-only")["mount_config"] == \
        {"readonly_fs": True}


@pytest.mark.parametrize("opt,cgroups", [
    (["-m", "256m"], {"memory": 256 << 20}),
    (["--memory=1.5g"], {"memory": 3 << 29}),
    (["--pids-limit", "100"], {"pids_limit": 100}),
    (["--pids-limit=-1"], {"pids_limit": -1}),
    (["--cpus", "1.5"], {"cpu_quota": 150000, "cpu_period": 100000}),
    (["--cpus", "0.25", "-m", "64k"], {"cpu_quota": 25000, "cpu_period": 100000,
                                       "memory": 65536}),
])
def test_limits_are_cgroup_fields(opt, cgroups):
    assert config_of(*opt)["cgroups"] == cgroups


def test_network_none_and_bridge(tmp_path):
    nonet = tmp_path / "nonet.json"
    nonet.write_text(json.dumps({"namespaces": [{"type": "NEWNS"}]}))
    cfg = config_of("--config", str(nonet), "--network", "none")
    assert cfg["namespaces"] == [{"type": "NEWNS"}, {"type": "NEWNET"}]
    assert cfg["networks"] == [{"type": "loopback"}]
    cfg = config_of("--network", "bridge:br0", "--ip", "198.18.0.2/24", "--gateway",
                    "198.18.0.1")
    assert cfg["networks"] == [{"type": "loopback"},
                               {"type": "veth", "bridge": "br0", "veth_prefix": "veth",
                                "address": "198.18.0.2/24", "gateway": "198.18.0.1"}]
    cfg = config_of("--network=bridge:br0", "--ip", "fd00:18::2/64", "--gateway", "fd00:18::1")
    assert cfg["networks"][1]["ipv6_address"] == "fd00:18::2/64"
    assert cfg["networks"][1]["ipv6_gateway"] == "fd00:18::1"


def test_options_apply_on_top_of_a_config_file(tmp_path):
    base = config.default_config().replace(hostname="base", environment=("A=0",))
    path = tmp_path / "c.json"
    path.write_text(config.dumps(base))
    cfg = config_of("--config", str(path), "-e", "A=1", "-m", "1m")
    assert cfg["hostname"] == "base" and cfg["environment"] == ["A=1"]
    assert cfg["cgroups"] == {"memory": 1 << 20}


def test_config_output_is_a_fixed_point(tmp_path):
    opts = ["-e", "A=1", "-u", "1:1", "-w", "/tmp", "-h", "x", "-v", "/srv:/srv:ro",
            "--tmpfs", "/scratch", "--read-only", "-m", "1g", "--pids-limit", "9",
            "--cpus", "2", "--network", "bridge:br0", "--ip", "198.18.0.9/24"]
    first = cli("config", *opts).stdout
    path = tmp_path / "c.json"
    path.write_text(first)
    assert cli("config", "--config", str(path)).stdout == first


@pytest.mark.parametrize("opts,words", [
    (["-m", "12x"], "--memory: '12x' is not a size"),
    (["--memory", "-1"], "--memory: '-1' is not a size"),
    (["--cpus", "0.001"], "--cpus: 0.001 is less than 0.01 CPU"),
    (["--cpus", "many"], "--cpus: 'many' is not a number"),
    (["--pids-limit", "1_0"], "--pids-limit: '1_0' is not an integer"),
    (["--pids-limit", "-2"], "--pids-limit: must be at least -1"),
    (["-v", "data:/data"], "--volume: the source 'data' must be an absolute path"),
    (["-v", "/data"], "--volume: '/data' is not SRC:DST"),
    (["-v", "/a:/b:rw,ro"], "both ro and rw"),
    (["-v", "/a:/b:nocopy"], "unknown volume option 'nocopy'"),
    (["--tmpfs", "run"], "--tmpfs: the destination 'run' must be an absolute path"),
    (["--tmpfs", "/x:noexec"], "--tmpfs: option 'noexec' is not supported"),
    (["-w", "rel"], "--workdir: the working directory 'rel' must be an absolute path"),
    (["-u", "a:b:c"], "--user: must be USER[:GROUP]"),
    (["-e", "=x"], "--env: '=x' is not NAME=VALUE"),
    (["--network", "host"], "--network: 'host' is not none or bridge:NAME"),
    (["--network", "bridge:"], "--network: 'bridge:' is not none"),
    (["--ip", "10.0.0.2/24"], "--ip: needs --network bridge:NAME"),
    (["--network", "none", "--ip", "10.0.0.2/24"], "--ip: needs --network bridge:NAME, not"),
    (["--network", "bridge:b", "--ip", "10.0.0.2"], "--ip: '10.0.0.2' needs a prefix"),
    (["--network", "bridge:b", "--ip", "10.0.0.2/24", "--gateway", "fd00::1"],
     "--gateway: fd00::1 is IPv6 but --ip is IPv4"),
    (["--network", "bridge:b", "--gateway", "10.0.0.1"], "--gateway: needs --ip"),
    (["--network", "bridge:sixteen-chars-xx"], "networks[1].bridge"),
    (["--env-file", "/nonexistent"], "--env-file: cannot read /nonexistent"),
    (["--bogus"], "unknown option --bogus"),
    (["-x"], "unknown option -x"),
    (["-m"], "option -m needs a value"),
    (["--read-only=yes"], "option --read-only takes no value"),
    (["--", "true"], "config takes no command"),
    (["-d"], "unknown option -d"),
    (["--id", "x"], "unknown option --id"),
])
def test_bad_options_are_one_line_errors(opts, words):
    proc = cli("config", *opts)
    assert proc.returncode == 125, proc.stdout
    assert proc.stderr.startswith("minins: error: ") and proc.stderr.count("\n") == 1
    assert words in proc.stderr, proc.stderr


def test_run_and_create_need_a_command_and_create_an_id():
    with pytest.raises(ConfigError, match="run needs a command"):
        runopts.parse(["-e", "A=1"], "run")
    with pytest.raises(ConfigError, match="create needs --id"):
        runopts.parse(["true"], "create")
    values, argv = runopts.parse(["--id", "c1", "--pid-file", "/p", "--", "-x"], "create")
    assert values == {"id": "c1", "pid_file": "/p"} and argv == ["-x"]
    values, argv = runopts.parse(["-dt", "--data-path=/d", "sh", "-e", "x"], "run")
    assert values == {"detach": True, "tty": True, "data_path": "/d"}
    assert argv == ["sh", "-e", "x"]  # options after the command are the command's


# --- rootless ---------------------------------------------------------------------------------

def test_rootless_drops_a_cgroups_section_without_limits(tmp_path):
    cfg = build(euid=1000)
    assert cfg.cgroups is None and cfg.namespaces[0].type == "NEWUSER"
    assert cfg.uid_mappings[0].host_id == 1000 and cfg.uid_mappings[0].size == 1
    path = tmp_path / "c.json"
    path.write_text(config.dumps(config.default_config()))  # "cgroups": {}
    assert build("--config", str(path), euid=1000).cgroups is None


@pytest.mark.parametrize("opts,field", [
    (["-m", "1g"], "cgroups.memory: a rootless container gets no cgroup, so this limit "
                   "(set by --memory)"),
    (["--cpus", "1"], "cgroups.cpu_quota"),
    (["--pids-limit", "5"], "cgroups.pids_limit"),
    (["--network", "bridge:br0"], "networks[1]: a veth into a host bridge needs root"),
])
def test_rootless_refuses_what_it_cannot_apply(opts, field):
    with pytest.raises(ConfigError) as exc:
        build(*opts, euid=1000)
    assert str(exc.value).startswith(field)


def test_rootless_refuses_a_limit_from_a_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(config.dumps(config.default_config().replace(
        cgroups=config.Cgroup(cpu_shares=512))))
    with pytest.raises(ConfigError, match=r"^cgroups.cpu_shares: .*cannot be applied"):
        build("--config", str(path), euid=1000)
    assert build("--config", str(path), "--network", "none", euid=0).cgroups.cpu_shares == 512


# --- help ---------------------------------------------------------------------------------------

ALL = ["run", "create", "config", "start", "stop", "exec", "state", "pause", "resume", "kill",
       "delete", "ps", "stats", "oom", "list"]


@pytest.mark.parametrize("command", ALL)
def test_every_command_has_its_own_help(command):
    text = runopts.help_text(command)
    assert text.startswith("usage: minins [--root DIR] %s" % command)
    assert all(len(line) <= 100 for line in text.splitlines())
    others = [c for c in ALL if c != command and c not in ("create", "run", "start")]
    assert not any(text.startswith("usage: minins [--root DIR] %s " % c) for c in others)


def test_help_on_the_command_line():
    run = cli("run", "--help")
    assert run.returncode == 0 and run.stdout == runopts.help_text("run")
    for opt in ("-e, --env K=V", "--env-file FILE", "-u, --user", "-w, --workdir",
                "-h, --hostname NAME", "-v, --volume", "--tmpfs", "--read-only",
                "-m, --memory SIZE", "--pids-limit N", "--cpus N.N", "--network",
                "--ip CIDR", "--gateway IP", "-d, --detach"):
        assert opt in run.stdout, opt
    assert cli("config", "-e", "A=1", "--help").stdout == runopts.help_text("config")
    kill = cli("kill", "-h")
    assert kill.returncode == 0 and kill.stdout == runopts.help_text("kill")
    assert "--pid-file FILE" in runopts.help_text("create")
    # create needs --id: its help must not promise a random one
    line = [x for x in runopts.help_text("create").splitlines() if "--id ID" in x][-1]
    assert "random" not in line and "required" in line, line


# --- hypothesis: sizes and the option grammar -------------------------------------------------

# go-units' RAMInBytes grammar, as docker reads --memory
GO_SIZE = re.compile(r"^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$", re.ASCII)
MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@given(st.text(alphabet="0123456789.kKmMgGtTpPiIbB x-+e\u0661", max_size=12))
def test_sizes_are_accepted_exactly_as_docker_accepts_them(text):
    m = GO_SIZE.match(text)
    expected = m is not None and m.group(1).count(".") <= 1
    try:
        n = runopts.parse_size(text)
    except ConfigError as e:
        assert not expected, text
        assert e.field == "--memory"
        return
    assert expected, text
    from fractions import Fraction

    unit = (m.group(3) or "").lower()
    assert n == int(Fraction(m.group(1)) * MULT[unit])


@given(st.integers(0, 2 ** 40), st.sampled_from(["", "b", "k", "K", "m", "M", "g", "G"]),
       st.sampled_from(["", "i", "b", "ib", "iB", "B"]), st.booleans())
def test_whole_sizes_multiply(n, unit, tail, space):
    text = "%d%s%s%s" % (n, " " if space and unit else "", unit,
                         tail if unit and unit.lower() != "b" else "")
    assert runopts.parse_size(text) == n * MULT[unit.lower().replace("b", "")]


@given(st.decimals(min_value="0.01", max_value="512", places=3))
def test_cpus_are_a_quota_per_100ms(cpus):
    quota, period = runopts.parse_cpus(str(cpus))
    assert period == 100000 and quota == int(cpus * 100000)


NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_./:=-", min_size=1, max_size=8)
VALUED = [o for o in runopts.COMMANDS["run"] if o[2] != runopts.FLAG and o[0] != "help"]
FLAGS = [o for o in runopts.COMMANDS["run"] if o[2] == runopts.FLAG and o[0] != "help"]


@st.composite
def invocations(draw):
    """A list of options in every spelling docker accepts, the values they mean, and a
    command."""
    argv, want = [], {}
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()) and FLAGS:
            opt = draw(st.sampled_from(FLAGS))
            argv.append("-" + opt[1] if opt[1] and draw(st.booleans()) else "--" + opt[0])
            want[opt[0].replace("-", "_")] = True
            continue
        opt = draw(st.sampled_from(VALUED))
        value = draw(NAME if draw(st.booleans()) else st.just("-x"))  # a dash is a value too
        style = draw(st.sampled_from(["long", "long=", "short", "short+", "short="]))
        if not opt[1] and style.startswith("short"):
            style = "long"
        if style == "short+" and value.startswith("="):
            style = "short"  # -e=X means X, as in pflag
        if style == "long":
            argv += ["--" + opt[0], value]
        elif style == "long=":
            argv.append("--%s=%s" % (opt[0], value))
        elif style == "short":
            argv += ["-" + opt[1], value]
        elif style == "short=":
            argv.append("-%s=%s" % (opt[1], value))
        else:
            argv.append("-" + opt[1] + value)
        key = opt[0].replace("-", "_")
        if opt[2] == runopts.MULTI:
            want.setdefault(key, []).append(value)
        else:
            want[key] = value
    command = draw(st.lists(NAME, min_size=1, max_size=3))
    if command[0].startswith("-") or draw(st.booleans()):
        argv.append("--")
    return argv + command, want, command


@settings(max_examples=300)
@given(invocations())
def test_every_spelling_of_an_option_parses_to_its_value(inv):
    argv, want, command = inv
    values, got_command = runopts.parse(argv, "run")
    assert values == want and got_command == command


@given(st.lists(st.text(max_size=6), max_size=6), st.sampled_from(["run", "create", "config"]))
def test_parse_only_raises_config_errors(argv, command):
    try:
        runopts.parse(argv, command)
    except ConfigError as e:
        assert "\n" not in str(e)


# --- inside a real container (root) -------------------------------------------------------

CGROUP_FILES = r"""
cg=/tmp/cg
if [ -d $cg/memory ]; then  # v1
  p() { grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" /proc/self/cgroup | cut -d: -f3; }
  echo memory $(cat $cg/memory$(p memory)/memory.limit_in_bytes)
  echo pids $(cat $cg/pids$(p pids)/pids.max)
  echo cpu $(cat $cg/cpu$(p cpu)/cpu.cfs_quota_us) $(cat $cg/cpu$(p cpu)/cpu.cfs_period_us)
else  # v2
  d=$cg$(sed -n 's/^0:://p' /proc/self/cgroup)
  echo memory $(cat $d/memory.max)
  echo pids $(cat $d/pids.max)
  echo cpu $(cat $d/cpu.max)
fi
"""


def _run_both(tmp_path, opts, script, **kw):
    """Run ``script`` with ``opts``, then with ``--config`` of ``minins config opts``; both
    outputs, which must agree."""
    root = str(tmp_path / "state")
    direct = cli("--root", root, "run", *opts, "--", "/bin/sh", "-c", script, **kw)
    conf = [o for o in opts if o not in ("-t",)]
    path = tmp_path / "c.json"
    path.write_text(cli("config", *conf, **kw).stdout)
    via = cli("--root", root, "run", "--config", str(path), "--", "/bin/sh", "-c", script,
              **kw)
    assert direct.returncode == 0, direct.stderr
    assert (via.returncode, via.stdout) == (0, direct.stdout), via.stderr
    return direct.stdout


@needs_root
def test_env_user_workdir_hostname_inside(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("FILE_VAR=from file\n")
    out = _run_both(tmp_path, ["-e", "A=1", "-e", "CALLER", "--env-file", str(env_file),
                               "-u", "1234:5678", "-w", "/etc", "-h", "web1"],
                    'echo "$A|$CALLER|$FILE_VAR|$HOSTNAME"; id -u; id -g; pwd; hostname',
                    env=dict(os.environ, CALLER="caller's"))
    assert out.split("\n") == ["1|caller's|from file|web1", "1234", "5678", "/etc", "web1", ""]


@needs_root
def test_volumes_rw_and_ro_inside(tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("host\n")
    out = _run_both(tmp_path, ["-v", "%s:/tmp/rw" % rw, "-v", "%s:/tmp/ro:ro" % ro],
                    "echo written > /tmp/rw/new && cat /tmp/ro/f && "
                    "(echo x > /tmp/ro/f) 2>/dev/null || echo refused")
    assert out == "host\nrefused\n"
    assert (rw / "new").read_text() == "written\n" and (ro / "f").read_text() == "host\n"


@needs_root
def test_tmpfs_and_read_only_inside(tmp_path):
    from rootfs_util import build_rootfs

    rootfs = build_rootfs(str(tmp_path / "rootfs"))
    script = ("grep ' /mnt ' /proc/mounts | cut -d' ' -f3,4 | tr , ' ' | "
              "grep -o 'tmpfs\\|size=[0-9a-z]*\\|ro\\b' | tr '\\n' ' '; echo; "
              "touch /rootfile 2>/dev/null && echo writable || echo read-only")
    dflt = config.default_config()
    writable = tmp_path / "writable.json"  # the default has readonly_fs already
    writable.write_text(config.dumps(dflt.replace(
        mount_config=dflt.mount_config.replace(readonly_fs=False))))
    base = ["--config", str(writable), "--rootfs", rootfs]
    out = _run_both(tmp_path, base + ["--tmpfs", "/mnt:size=1m"], script)
    assert out == "tmpfs size=1024k \nwritable\n"
    os.unlink(os.path.join(rootfs, "rootfile"))
    out = _run_both(tmp_path, base + ["--read-only", "--tmpfs", "/mnt:ro"], script)
    assert out.split("\n")[1] == "read-only"
    assert not os.path.exists(os.path.join(rootfs, "rootfile"))


@needs_root
def test_memory_pids_and_cpus_are_the_containers_cgroup_files(tmp_path):
    out = _run_both(tmp_path, ["-m", "64m", "--pids-limit", "42", "--cpus", "0.5",
                               "-v", "/sys/fs/cgroup:/tmp/cg:ro"], CGROUP_FILES)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["memory"] == str(64 << 20)
    assert lines["pids"] == "42"
    assert lines["cpu"] == "50000 100000"


@needs_root
def test_network_bridge_and_none_inside(tmp_path, netns):
    """A bridge in a test-made namespace; minins runs inside it, so the veth's host end and
    all traffic stay in test-made namespaces."""
    from minins import libc
    from minins.netlink import addr, link

    host = netns()
    bridge = "brro" + os.urandom(3).hex()
    with host.socket() as s:
        link.add_bridge(s, bridge, up=True)
        addr.add(s, bridge, "198.18.7.1/24")
    with host.enter():
        srv = socket.socket()
    with srv:
        srv.bind(("198.18.7.1", 0))
        srv.listen(1)
        srv.settimeout(30)
        port = srv.getsockname()[1]
        script = ("cat /sys/class/net/lo/operstate /sys/class/net/eth0/address >/dev/null && "
                  "ls /sys/class/net | tr '\\n' ' '; echo; "
                  "python3 -c \"import socket; s=socket.create_connection(('198.18.7.1', %d), 10);"
                  " s.sendall(b'hi'); print(s.recv(2).decode())\"" % port)
        opts = ["--network", "bridge:" + bridge, "--ip", "198.18.7.2/24",
                "--gateway", "198.18.7.1"]
        enter = lambda: libc.setns(host.fd, 0x40000000, host.path)  # noqa: E731
        root = str(tmp_path / "state")
        proc = subprocess.Popen([sys.executable, "-m", "minins", "--root", root, "run"] + opts
                                + ["--", "/bin/sh", "-c", script], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=enter)
        try:
            conn, peer = srv.accept()
            with conn:
                assert conn.recv(2) == b"hi"
                conn.sendall(b"ok")
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert peer[0] == "198.18.7.2"
    assert out.split("\n")[:2] == ["eth0 lo ", "ok"]
    none = subprocess.run([sys.executable, "-m", "minins", "--root", root, "run",
                           "--network", "none", "--", "/bin/sh", "-c",
                           "ls /sys/class/net; cat /sys/class/net/lo/flags"],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=enter)
    assert none.returncode == 0, none.stderr
    name, flags = none.stdout.split()
    assert name == "lo" and int(flags, 16) & 1  # IFF_UP
    with host.socket() as s:
        assert link.bridge_ports(s) == {}  # the veth went with the container


from netns_util import netns  # noqa: E402,F401  (fixture)


@needs_root
def test_rootless_config_output_runs_the_same_as_the_default(request):
    """Issue 11 section 5: as an unprivileged user, `config > c.json; run --config c.json`
    works as `run` does, and a limit is a one-line error naming the field."""
    import shutil

    from kernel import USERNS

    if not USERNS or not shutil.which("setpriv"):
        pytest.skip("needs user namespaces and setpriv")
    from test_rootfs import _python_for_nobody

    import pathlib
    import tempfile

    work = pathlib.Path(tempfile.mkdtemp(prefix="minins-runopts-"))  # nobody can reach it
    request.addfinalizer(lambda: shutil.rmtree(str(work), ignore_errors=True))
    os.chown(str(work), 65534, 65534)
    env = dict(os.environ, PYTHONPATH=REPO, HOME=str(work), XDG_RUNTIME_DIR=str(work))

    def nobody(*args):
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               _python_for_nobody(), "-m", "minins"] + list(args),
                              cwd=str(work), env=env, capture_output=True, text=True,
                              timeout=120)

    printed = nobody("config", "-e", "A=1")
    assert printed.returncode == 0, printed.stderr
    (work / "c.json").write_text(printed.stdout)
    (work / "plain.json").write_text(config.dumps(config.default_config()))  # cgroups: {}
    script = "echo $A; id -u; cat /proc/self/uid_map"
    outs = [nobody("run", "-e", "A=1", "--", "sh", "-c", script),
            nobody("run", "--config", str(work / "c.json"), "--", "sh", "-c", script),
            nobody("run", "--config", str(work / "plain.json"), "-e", "A=1", "--", "sh", "-c",
                   script)]
    for proc in outs:
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.split("\n")
        assert lines[:2] == ["1", "0"] and lines[2].split() == ["0", "65534", "1"]
    refused = nobody("run", "-m", "64m", "--", "true")
    assert refused.returncode == 125 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("minins: error: cgroups.memory: ")


@needs_root
def test_a_volume_or_tmpfs_or_workdir_missing_from_the_read_only_host_root_names_its_field(
        tmp_path):
    """The default rootfs is the host's / read-only: a mount point it lacks cannot be made
    (it would be made on the host). The one-line error must name the configuration field and
    the way out, not only `mkdir /x: EROFS`; and nothing is made on the host."""
    missing = "/minins-no-such-dir-" + os.urandom(4).hex()
    src = tmp_path / "src"
    src.mkdir()
    root = str(tmp_path / "state")
    for opts, field in ((["-v", "%s:%s" % (src, missing)], "mount_config.mounts["),
                        (["--tmpfs", missing], "mount_config.mounts["),
                        (["-w", missing], "working_dir")):
        proc = cli("--root", root, "run", *opts, "--", "true")
        assert proc.returncode == 125, proc.stderr
        assert proc.stderr.startswith("minins: error: ") and proc.stderr.count("\n") == 1
        assert field in proc.stderr and missing in proc.stderr, proc.stderr
        assert "--rootfs" in proc.stderr, proc.stderr
        assert not os.path.exists(missing)
        assert not os.path.exists(root) or os.listdir(root) == []
