"""minins.run in a program whose other threads keep the interpreter busy (issue 11, item 10).

With other threads, ``run`` creates, starts, waits and cleans up in a forked single-threaded
helper (minins.process.in_helper); these tests check that it does exactly what the in-process
path does -- exit codes, errors with their errno, the start callback while the state exists --
and leaves nothing behind: no child, no descriptor, no state, the switch interval as it was.
Correctness only: tools/bench_embed.py measures the time.
"""
import logging
import os
import select
import signal
import sys
import tempfile
import threading

import pytest

import minins
from minins import config
from minins.errors import ConfigError, SyscallError

from kernel import children, needs_root, open_fds

pytestmark = needs_root


@pytest.fixture
def state_root(tmp_path):
    return str(tmp_path / "state")


# Container ids name cgroups, which are global: unique to this run, so that two runs of this
# file at once (two Python versions) never meet.
ID = {name: "%s-%d" % (name, os.getpid())
      for name in ("busy-7", "kill-me", "alone", "boom", "ctrl-c", "usr1")}


def sh(script):
    return ["/bin/sh", "-c", script]


class Busy:
    """8 threads spinning in pure Python; one of them logs all the time through a real
    handler (logging's module lock in getLogger, the handler's lock in emit) and holds the
    module lock itself for stretches, as a chatty program would."""

    def __init__(self, n=8):
        self.n = n
        self.stop = threading.Event()
        self.spins = [0] * n

    def spin(self, i):
        log = "minins-test-embed"
        while not self.stop.is_set():
            self.spins[i] += 1
            if i == 0:
                logging.getLogger(log).warning("busy %d", self.spins[i])
                with logging._lock:  # held across many bytecodes
                    for _ in range(200):
                        self.spins[i] += 1

    def __enter__(self):
        self.sink = open(os.devnull, "w")
        logger = logging.getLogger("minins-test-embed")
        self.handler = logging.StreamHandler(self.sink)
        logger.addHandler(self.handler)
        logger.propagate = False
        self.threads = [threading.Thread(target=self.spin, args=(i,), daemon=True)
                        for i in range(self.n)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        logging.getLogger("minins-test-embed").removeHandler(self.handler)
        self.sink.close()
        assert all(self.spins), "a busy thread never ran"


def runtime_pid_seen(state_root, cid, seen):
    def check():
        st = minins.load_state(os.path.join(state_root, cid))
        seen["runtime_pid"] = st["runtime_pid"]
        seen["init_pid"] = st["init_pid"]
    return check


def warm_up(state_root):
    """One start first: what a runtime keeps for good (the sealed interpreter copy, made on
    the first start, and imported modules) is no leak."""
    assert minins.run(config.default_config(), ["true"], state_root=state_root) == 0


def test_exit_status_and_callback_through_the_helper(state_root):
    warm_up(state_root)
    fds, kids, interval = open_fds(), children(), sys.getswitchinterval()
    seen = {}
    with Busy():
        code = minins.run(config.default_config(), sh("exit 7"), id=ID["busy-7"],
                          state_root=state_root,
                          start_callback=runtime_pid_seen(state_root, ID["busy-7"], seen))
        # the helper ran it: the state named another runtime process than us
        assert seen["runtime_pid"] not in (0, os.getpid())
        assert seen["init_pid"] > 0
        assert code == 7
        codes = [minins.run(config.default_config(), sh("exit %d" % n), state_root=state_root)
                 for n in (0, 3, 255)]
    assert codes == [0, 3, 255]
    assert open_fds() == fds
    assert children() == kids
    assert sys.getswitchinterval() == interval
    assert os.listdir(state_root) == []


def test_signal_death_is_128_plus_n(state_root):
    seen = {}

    def kill_init():
        runtime_pid_seen(state_root, ID["kill-me"], seen)()
        os.kill(seen["init_pid"], signal.SIGKILL)

    with Busy():
        code = minins.run(config.default_config(), ["sleep", "60"], id=ID["kill-me"],
                          state_root=state_root, start_callback=kill_init)
    assert code == 137


def test_without_other_threads_the_runtime_is_this_process(state_root):
    seen = {}
    code = minins.run(config.default_config(), ["true"], id=ID["alone"], state_root=state_root,
                      start_callback=runtime_pid_seen(state_root, ID["alone"], seen))
    assert code == 0 and seen["runtime_pid"] == os.getpid()


def test_exec_error_keeps_its_errno_and_nothing_is_left(state_root):
    warm_up(state_root)
    fds, kids = open_fds(), children()
    with Busy():
        with pytest.raises(SyscallError) as e:
            minins.run(config.default_config(), ["/no/such/file"], state_root=state_root)
    assert e.value.errno == 2 and e.value.op == "exec" and e.value.path == "/no/such/file"
    assert str(e.value).startswith("init: exec: ")
    assert open_fds() == fds
    assert children() == kids
    assert os.listdir(state_root) == []


def test_config_error_in_the_helper_names_its_field(state_root):
    cfg = config.default_config().replace(namespaces=(
        config.Namespace(type="NEWNS"), config.Namespace(type="NEWIPC", path="/etc/hostname")))
    kids = children()
    with Busy():
        with pytest.raises(ConfigError) as e:
            minins.run(cfg, ["true"], state_root=state_root)
    assert e.value.field == "namespaces[1].path" and "not a namespace file" in str(e.value)
    assert children() == kids


def test_a_taken_id_is_refused_as_in_process(state_root):
    os.makedirs(os.path.join(state_root, "taken", "x"))
    with Busy():
        with pytest.raises(ConfigError) as e:
            minins.run(config.default_config(), ["true"], id="taken", state_root=state_root)
    assert e.value.field == "--data-path" and "not a container's state dir" in str(e.value)
    assert os.listdir(os.path.join(state_root, "taken")) == ["x"]


class Boom(Exception):
    pass


def test_a_raising_callback_removes_the_container_and_its_error_comes_out(state_root):
    kids = children()
    seen = {}

    def callback():
        runtime_pid_seen(state_root, ID["boom"], seen)()
        raise Boom("from the callback")

    with Busy():
        with pytest.raises(Boom):
            minins.run(config.default_config(), ["sleep", "60"], id=ID["boom"],
                       state_root=state_root, start_callback=callback)
    assert seen["init_pid"] > 0
    assert not os.path.exists("/proc/%d" % seen["init_pid"]) or \
        _is_zombie_or_other(seen["init_pid"])
    assert children() == kids
    assert os.listdir(state_root) == []


def _is_zombie_or_other(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"sleep" not in f.read()
    except OSError:
        return True


def test_keyboard_interrupt_while_waiting_kills_and_cleans_up(state_root):
    """SIGINT to the program while the container runs: the calling (main) thread gets its
    KeyboardInterrupt only after the helper has killed the container and removed it."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT's KeyboardInterrupt goes to the main thread")
    kids = children()
    seen = {}

    def callback():
        runtime_pid_seen(state_root, ID["ctrl-c"], seen)()
        # from another thread, once we wait: wherever it lands, the start is aborted
        threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT)).start()

    with Busy():
        with pytest.raises(KeyboardInterrupt):
            minins.run(config.default_config(), ["sleep", "60"], id=ID["ctrl-c"],
                       state_root=state_root, start_callback=callback)
    assert children() == kids
    assert os.listdir(state_root) == []
    assert _is_zombie_or_other(seen["init_pid"])


def test_the_helper_holds_none_of_the_programs_descriptors(state_root):
    """A pipe the program closes while the container runs reads EOF at once: the helper,
    which lives as long as the container, did not keep a copy of its write end."""
    r, w = os.pipe()
    seen = {}

    def callback():
        os.close(w)
        poller = select.poll()
        poller.register(r, select.POLLIN)
        seen["events"] = dict(poller.poll(0)).get(r, 0)

    try:
        with Busy():
            code = minins.run(config.default_config(), ["true"], state_root=state_root,
                              start_callback=callback)
    finally:
        os.close(r)
    assert code == 0
    assert seen["events"] & select.POLLHUP


def test_the_programs_signal_handlers_never_run_in_the_helper(state_root, tmp_path):
    """A signal the program handles in Python, sent to the helper, is ignored there: the
    container runs on, and the program's handler runs nowhere (it would leave its pid in a
    file)."""
    trace = str(tmp_path / "handler-ran")

    def handler(*_):
        with open(trace, "a") as f:
            f.write("%d\n" % os.getpid())

    previous = signal.signal(signal.SIGUSR1, handler)
    seen = {}
    r, w = os.pipe()

    def callback():
        runtime_pid_seen(state_root, ID["usr1"], seen)()
        os.kill(seen["runtime_pid"], signal.SIGUSR1)
        os.write(w, b"x\n")  # the container's `read` returns: it exits 5

    try:
        with Busy():
            code = minins.run(config.default_config(), sh("read -r x; exit 5"), id=ID["usr1"],
                              state_root=state_root, stdin=r, start_callback=callback)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        os.close(r)
        os.close(w)
    assert code == 5
    assert not os.path.exists(trace)


def test_a_program_that_reaps_every_child_still_gets_the_exit_status(state_root):
    """With the helper, a SIGCHLD handler that reaps everything (waitpid(-1)) can only take
    the helper's status, never the init's: run still returns the container's code."""
    def reap_all(*_):
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    previous = signal.signal(signal.SIGCHLD, reap_all)
    try:
        with Busy():
            codes = [minins.run(config.default_config(), sh("exit 9"), state_root=state_root)
                     for _ in range(3)]
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert codes == [9, 9, 9]
    assert os.listdir(state_root) == []


def test_many_starts_with_busy_threads(state_root):
    """A program's worker thread starts containers in a row while 8 threads spin."""
    kids = children()
    result = {}

    def starts():
        result["codes"] = [minins.run(config.default_config(), sh("exit %d" % (n % 4)),
                                      state_root=state_root) for n in range(12)]

    with Busy():
        worker = threading.Thread(target=starts)
        worker.start()
        worker.join()
    assert result["codes"] == [n % 4 for n in range(12)]
    assert children() == kids
    assert os.listdir(state_root) == []


def test_stdout_of_the_container_goes_where_it_was_given(state_root):
    with tempfile.TemporaryFile() as out, Busy():
        code = minins.run(config.default_config(), sh("echo hello from $(hostname)"),
                          state_root=state_root, stdout=out)
        out.seek(0)
        assert (code, out.read()) == (0, b"hello from minins\n")


def test_a_namespace_named_by_one_of_our_descriptors_is_still_joined(state_root):
    """The helper closes the program's descriptors, but not one the configuration names as
    /proc/self/fd/N: the container joins the namespace it refers to, as in process."""
    fd = os.open("/proc/self/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    try:
        base = [config.Namespace(type=t) for t in ("NEWNS", "NEWUTS", "NEWPID", "NEWNET")]
        cfg = config.default_config().replace(namespaces=tuple(base + [
            config.Namespace(type="NEWIPC", path="/proc/self/fd/%d" % fd)]))
        with tempfile.TemporaryFile() as out, Busy():
            code = minins.run(cfg, ["readlink", "/proc/self/ns/ipc"], state_root=state_root,
                              stdout=out)
            out.seek(0)
            seen = out.read().decode().strip()
    finally:
        os.close(fd)
    assert (code, seen) == (0, os.readlink("/proc/self/ns/ipc"))


def test_a_killed_helper_leaves_a_stopped_container_that_delete_removes(state_root):
    """The helper is the container's runtime: SIGKILLed while the container runs, it takes
    the init with it (parent-death signals), run says so, and what is left is on record --
    `list` shows it stopped, `delete` removes every trace, and the id is free again."""
    from minins import lifecycle

    cid = "crash-%d" % os.getpid()
    data_path = os.path.join(state_root, cid)
    kids = children()
    seen = {}

    def callback():
        runtime_pid_seen(state_root, cid, seen)()
        os.kill(seen["runtime_pid"], signal.SIGKILL)

    try:
        with Busy():
            with pytest.raises(minins.ContainerError) as e:
                minins.run(config.default_config(), ["sleep", "60"], id=cid,
                           state_root=state_root, start_callback=callback)
        assert "helper process exited without a word" in str(e.value)
        assert children() == kids
        rows = lifecycle.list_containers(state_root)
        assert [(r["id"], r["status"]) for r in rows] == [(cid, "stopped")]
        assert rows[0]["cgroup_paths"]
        lifecycle.delete(data_path)
        assert os.listdir(state_root) == []
        for path in rows[0]["cgroup_paths"].values():
            assert not os.path.exists(path)
        with Busy():
            assert minins.run(config.default_config(), ["true"], id=cid,
                              state_root=state_root) == 0
    finally:
        if os.path.exists(data_path):
            lifecycle.delete(data_path, force=True)


def test_the_command_gets_no_ignored_or_blocked_signal_from_the_helper(state_root):
    """The helper ignores SIGINT (the program's business); the command must not inherit it."""
    with tempfile.TemporaryFile() as out, Busy():
        code = minins.run(config.default_config(),
                          ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"],
                          state_root=state_root, stdout=out)
        out.seek(0)
        lines = out.read().decode().split("\n")
    assert code == 0
    assert sorted(line.split()[1] for line in lines if line) == ["0" * 16] * 2


def test_two_runs_at_once_restore_the_programs_switch_interval():
    """prompt_gil is counted: two callers that overlap (two threads in run) leave the
    program's own interval behind, whichever leaves first."""
    from minins.process import prompt_gil

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.004)
        a, b = prompt_gil(), prompt_gil()
        a.prompt()
        b.prompt()
        assert sys.getswitchinterval() == pytest.approx(prompt_gil.INTERVAL)
        a.relax()
        assert sys.getswitchinterval() == pytest.approx(prompt_gil.INTERVAL)
        a.relax()  # twice is once
        b.relax()
        assert sys.getswitchinterval() == 0.004
        with prompt_gil():
            a.prompt()
        assert sys.getswitchinterval() == pytest.approx(prompt_gil.INTERVAL)
        a.relax()
        assert sys.getswitchinterval() == 0.004
    finally:
        sys.setswitchinterval(before)
