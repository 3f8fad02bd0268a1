"""seccomp filters against the real kernel: the default profile, errnoRet, argument filters,
KILL_PROCESS, LOG, TRAP, NOTIFY, exec into a filtered container, and both loading places."""
import ctypes
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

import minins
from minins import arch, config, execin
from minins.config import Rlimit
from minins.container import Container
from minins.seccomp import profile, tables

from kernel import needs_root, run_captured

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NR = tables.table(tables.NATIVE[arch.current()]).SYSCALLS
NO_CORE = (Rlimit(type=4, soft=0, hard=0),)  # RLIMIT_CORE: a SIGSYS death dumps no core


@pytest.fixture
def state_root(tmp_path):
    return str(tmp_path / "state")


def cfg_with(prof=None, **changes):
    cfg = config.default_config().replace(rlimits=NO_CORE, **changes)
    if prof is not None:
        cfg = cfg.replace(seccomp=profile.loads(prof))
    return config.validate(cfg)


# A python3 program run inside: each line "NAME ARGS..." makes syscall NAME and prints
# "NAME OK <ret>" or "NAME <ERRNO>".
PROBE = r"""
import ctypes, errno, os, sys, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nrs = json.loads(sys.argv[1])
for line in sys.argv[2:]:
    name, *args = line.split()
    args = [ctypes.c_ulong(int(a, 0)) for a in args]
    r = libc.syscall(ctypes.c_long(nrs[name]), *args)
    if r == 0 and name == "clone":
        os._exit(0)  # a child the filter let through: leave quietly
    if r == -1:
        print(name, errno.errorcode[ctypes.get_errno()], flush=True)
    else:
        print(name, "OK", r, flush=True)
"""


def probe(cfg, calls, state_root, extra=None):
    nrs = {line.split()[0]: NR.get(line.split()[0]) for line in calls}
    nrs.update(extra or {})
    code, out, err = run_captured(cfg, ["python3", "-c", PROBE, json.dumps(nrs)] + calls,
                                  state_root=state_root)
    assert code == 0, (out, err)
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_the_default_profile_denies_namespaces_and_keys(state_root):
    calls = ["unshare 0x10000000", "keyctl 0 0", "add_key 0 0 0 0 0", "getppid"]
    unconfined = probe(cfg_with(seccomp=None), calls, state_root)
    assert unconfined["unshare"] == "OK 0"  # the kernel itself would allow a user namespace
    assert unconfined["keyctl"] != "EPERM"
    got = probe(cfg_with(), calls, state_root)
    assert got["unshare"] == "EPERM"
    assert got["keyctl"] == "EPERM"
    assert got["add_key"] == "EPERM"
    assert got["getppid"] == "OK 0"
    code, out, err = run_captured(cfg_with(), ["unshare", "-U", "true"], state_root=state_root)
    assert code != 0 and "Operation not permitted" in err


def test_the_default_profile_leaves_ordinary_programs_alone(state_root):
    script = ("busybox sh -c 'echo busybox-ok' && ls / >/dev/null && hostname && "
              "sort </etc/passwd | head -1 >/dev/null && date >/dev/null && "
              "python3 -c 'import subprocess, threading, json, ssl, os; "
              "t = threading.Thread(target=print, args=(\"thread-ok\",)); t.start(); t.join(); "
              "print(subprocess.run([\"echo\", \"child-ok\"], capture_output=True, text=True)"
              ".stdout.strip()); print(os.fork() and \"fork-ok\" or os._exit(0))'")
    code, out, err = run_captured(cfg_with(), ["/bin/sh", "-c", script], state_root=state_root)
    assert code == 0, err
    assert out.split() == ["busybox-ok", "minins", "thread-ok", "child-ok", "fork-ok"]


def test_errno_ret_38_is_enosys(state_root):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["acct", "getppid"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 38}]}
    got = probe(cfg_with(prof), ["acct 0", "getppid", "getpid"], state_root)
    assert got == {"acct": "ENOSYS", "getppid": "ENOSYS", "getpid": "OK 1"}


def test_default_errno_ret_and_default_eperm(state_root):
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
                         {"names": sorted(set(NR) - {"acct"}), "action": "SCMP_ACT_ALLOW"}]}
    # every known call allowed but getppid (EPERM: errnoRet left out; the first of two
    # unconditional rules decides) and acct, which gets defaultErrnoRet 13 (EACCES); a number
    # no table has gets ENOSYS, as under runc
    got = probe(cfg_with(prof), ["getppid", "getpid", "acct 0", "unknown"], state_root,
                {"unknown": 1000})
    assert got == {"getppid": "EPERM", "getpid": "OK 1", "acct": "EACCES",
                   "unknown": "ENOSYS"}


def test_a_call_newer_than_the_profile_gets_enosys(state_root):
    # runc's filter answers ENOSYS above the profile's last syscall, so that libc falls back
    # from a call newer than the profile (glibc 2.39's fchmodat2 to fchmodat); minins answers
    # it for every number its tables have no name for. The default's EPERM would not let
    # libc fall back.
    newer = max(NR.values()) + 2
    got = probe(cfg_with(), ["newer", "keyctl 0 0", "getppid"], state_root, {"newer": newer})
    assert got == {"newer": "ENOSYS", "keyctl": "EPERM", "getppid": "OK 0"}


def test_personality_only_for_the_given_values(state_root):
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
    ]}
    out = subprocess.run(["python3", "-c", PROBE, json.dumps({"personality": NR["personality"]}),
                          "personality 0xffffffff", "personality 0x0040000"],
                         capture_output=True, text=True).stdout.split("\n")
    # unfiltered, the kernel takes it; the query (0xffffffff) answers the persona a process
    # starts with, which is not 0 everywhere (armv7 kernels set ADDR_LIMIT_32BIT-like bits)
    query, changed = out[0], out[1]
    assert query.startswith("personality OK") and changed.startswith("personality OK")
    code, out, err = run_captured(cfg_with(prof), [
        "python3", "-c", PROBE, json.dumps({"personality": NR["personality"]}),
        "personality 0xffffffff", "personality 0", "personality 0x0040000",
        "personality 0x100000000"], state_root=state_root)
    assert code == 0, err
    # each call answers the persona before it: the query and the set to 0 both see the
    # starting one; on a 32-bit kernel 0x100000000 is 0 (only the low half is compared)
    assert out.split("\n")[:4] == [query, query, "personality EPERM",
                                   "personality EPERM" if struct.calcsize("P") == 8 else
                                   "personality OK 0"]


def test_one_argument_compared_twice_denies_either_value_as_runc(state_root):
    # runc splits a rule comparing one argument twice into alternatives; minins ANDed them,
    # so this rule denied neither netlink (16) nor packet (17) sockets
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                          "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                                   {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]}]}
    got = probe(cfg_with(prof), ["socket 16 3 0", "socket2 17 3 0", "socket3 1 1 0"],
                state_root, {"socket2": NR["socket"], "socket3": NR["socket"]})
    assert got["socket"] == "EACCES" and got["socket2"] == "EACCES"
    assert got["socket3"].startswith("OK")


def test_clone_denied_for_namespace_flags(state_root):
    ns_flags = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": ns_flags, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW"},
    ]}
    # inverted on purpose: the ERRNO rule matches when no namespace flag is set
    assert probe(cfg_with(prof), ["clone 17"], state_root) == {"clone": "EPERM"}
    prof["syscalls"][0] = {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}]}
    assert probe(cfg_with(prof), ["clone 0x10000011"], state_root) == {"clone": "EPERM"}
    assert probe(cfg_with(prof), ["clone 0x11"], state_root)["clone"].startswith("OK")
    # without the filter the kernel lets that CLONE_NEWUSER through
    assert probe(cfg_with(seccomp=None), ["clone 0x10000011"], state_root)["clone"] \
        .startswith("OK")


def test_kill_process_exits_159(state_root, tmp_path):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    args = ["python3", "-c", "import os; print('before', flush=True); os.getppid(); "
                             "print('after', flush=True)"]
    code, out, _ = run_captured(cfg_with(prof), args, state_root=state_root)
    assert (code, out) == (159, "before\n")
    # the command line, with the profile in a file
    path = tmp_path / "prof.json"
    path.write_text(json.dumps(prof))
    proc = subprocess.run([sys.executable, "-m", "minins", "--root", state_root, "run",
                           "--seccomp", str(path), "--"] + args, cwd=REPO, capture_output=True,
                          text=True)
    assert (proc.returncode, proc.stdout) == (159, "before\n")


def test_kill_thread_kills_only_the_thread(state_root):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"}]}
    # the killed thread never says it ended (join would wait for ever): the main thread
    # watches the task list until it is alone again. The call goes through ctypes, which
    # lets the GIL go first: a thread killed holding it would stop the interpreter.
    script = ("import ctypes, os, threading, time\n"
              "threading.Thread(target=ctypes.CDLL(None).getppid).start()\n"
              "deadline = time.monotonic() + 20\n"
              "while len(os.listdir('/proc/self/task')) > 1 and time.monotonic() < deadline:\n"
              "    time.sleep(0.01)\n"
              "print('main survives', len(os.listdir('/proc/self/task')), flush=True)\n"
              "os._exit(0)\n")
    code, out, err = run_captured(cfg_with(prof), ["python3", "-c", script],
                                  state_root=state_root)
    assert (code, out) == (0, "main survives 1\n"), err


def test_trap_sends_sigsys(state_root):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRAP"}]}
    script = ("import os, signal\n"
              "seen = []\n"
              "signal.signal(signal.SIGSYS, lambda s, f: seen.append(s))\n"
              "os.getppid()\n"
              "print('handled', seen, flush=True)\n"
              "signal.signal(signal.SIGSYS, signal.SIG_DFL)\n"
              "os.getppid()\n"
              "print('not reached')\n")
    code, out, err = run_captured(cfg_with(prof), ["python3", "-c", script],
                                  state_root=state_root)
    assert out == "handled [%d]\n" % int(__import__("signal").SIGSYS)
    assert code == 159  # SIGSYS's default action ends the process


def test_log_allows_and_logs(state_root):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}
    comm = "sclog%d" % os.getpid()  # the audit record names the command: make it ours
    script = ("import ctypes, os; ctypes.CDLL(None).prctl(15, %r.encode(), 0, 0, 0); "
              "print(os.getppid())" % comm)
    code, out, err = run_captured(cfg_with(prof), ["python3", "-c", script],
                                  state_root=state_root)
    assert (code, out) == (0, "0\n"), err  # allowed: PID 1's parent is outside, so 0
    with open("/proc/sys/kernel/seccomp/actions_logged") as f:
        if "log" not in f.read().split():
            pytest.skip("SECCOMP_RET_LOG is not in kernel.seccomp.actions_logged")
    want = ('comm="%s"' % comm, "syscall=%d " % NR["getppid"], "code=0x7ffc0000")
    deadline = time.monotonic() + 15
    while True:  # kauditd writes the record after the call returned
        lines = _kernel_log()
        if lines is None:
            pytest.skip("the kernel log cannot be read here (dmesg)")
        if any(all(w in line for w in want) for line in lines):
            break
        assert time.monotonic() < deadline, "no audit record of the logged call"
        time.sleep(0.1)


def _kernel_log():
    try:
        proc = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def _status(text):
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_loaded_before_exec_with_no_new_privileges_and_before_caps_without(state_root):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    for nnp in (True, False):
        code, out, err = run_captured(cfg_with(prof, no_new_privileges=nnp),
                                      ["cat", "/proc/self/status"], state_root=state_root)
        assert code == 0, err
        st = _status(out)
        assert st["Seccomp"].strip() == "2"
        assert st["Seccomp_filters"].strip() == "1"
        assert st["NoNewPrivs"].strip() == ("1" if nnp else "0")


def test_unconfined_has_no_filter(state_root):
    code, out, _ = run_captured(cfg_with(seccomp=None), ["cat", "/proc/self/status"],
                                state_root=state_root)
    assert _status(out)["Seccomp"].strip() == "0"


def test_exec_into_a_filtered_container_is_filtered(state_root):
    null = open(os.devnull, "wb")
    c = Container(cfg_with(), ["sleep", "60"], id="filtered", state_root=state_root,
                  stdout=null, stderr=null)
    try:
        c.create()
        c.start()
        nrs = json.dumps({"unshare": NR["unshare"], "keyctl": NR["keyctl"]})
        with tempfile.TemporaryFile() as out:
            code = execin.exec_in(c.data_path, ["python3", "-c", PROBE, nrs,
                                                "unshare 0x10000000", "keyctl 0 0"],
                                  stdout=out, stderr=out)
            out.seek(0)
            text = out.read().decode()
        assert code == 0, text
        assert text.split("\n")[:2] == ["unshare EPERM", "keyctl EPERM"]
        with tempfile.TemporaryFile() as out:
            assert execin.exec_in(c.data_path, ["cat", "/proc/self/status"], stdout=out) == 0
            out.seek(0)
            assert _status(out.read().decode())["Seccomp"].strip() == "2"
    finally:
        c.kill(9)
        c.wait()
        c.destroy()
        null.close()


# --- NOTIFY ------------------------------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)


def _agent(server, result):
    """A seccomp agent: takes the listener and the state, answers one getppid with 4242."""
    conn, _ = server.accept()
    with conn:
        msg, anc, _f, _a = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        fds = [struct.unpack("i", data[:4])[0] for lvl, typ, data in anc
               if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS]
        result["state"] = json.loads(msg)
        result["fds"] = len(fds)
    libc = ctypes.CDLL(None, use_errno=True)
    notif = ctypes.create_string_buffer(80)
    if libc.ioctl(fds[0], ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_RECV), notif) != 0:
        result["error"] = ctypes.get_errno()
        return
    nid, _pid, _flags, nr = struct.unpack_from("=QIIi", notif.raw)
    result["nr"] = nr
    resp = struct.pack("=QqiI", nid, 4242, 0, 0)
    buf = ctypes.create_string_buffer(resp, 24)
    libc.ioctl(fds[0], ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_SEND), buf)
    os.close(fds[0])


@pytest.mark.parametrize("flags", [[], ["SECCOMP_FILTER_FLAG_TSYNC"]])
def test_notify_hands_the_listener_and_state_to_the_agent(state_root, tmp_path, flags):
    # with TSYNC the kernel wants TSYNC_ESRCH next to NEW_LISTENER (EINVAL otherwise)
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    # the agent is a process of its own: a thread alive while minins forks would be a test
    # of fork-with-threads, not of seccomp
    r, w = os.pipe()
    agent = os.fork()
    if agent == 0:
        try:
            os.close(r)
            result = {}
            _agent(server, result)
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    server.close()
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "flags": flags,
            "listenerMetadata": "hello-agent",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}
    try:
        code, out, err = run_captured(cfg_with(prof, labels=("app=web",)),
                                      ["python3", "-c", "import os; print(os.getppid())"],
                                      state_root=state_root, id="notified")
    finally:
        with os.fdopen(r, "rb") as f:
            raw = f.read()
        os.waitpid(agent, 0)
    result = json.loads(raw or b"{}")
    assert (code, out) == (0, "4242\n"), err
    assert result["fds"] == 1 and result["nr"] == NR["getppid"]
    st = result["state"]
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "hello-agent"
    assert st["state"]["id"] == "notified" and st["state"]["status"] == "creating"
    assert st["state"]["annotations"] == {"app": "web"}
    assert st["pid"] == st["state"]["pid"] > 1
