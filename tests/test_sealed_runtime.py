"""The command line's runtime runs from the sealed copy of the interpreter (minins.sealed).

``run``, ``create`` and ``exec`` re-execute the runtime from a sealed memfd copy before their
imports; the processes it forks into the container share that copy and start no interpreter
of their own. The other commands do not re-execute. Whether a process runs sealed is asked of
the kernel (F_GET_SEALS on /proc/self/exe), so each check here is against a real execve."""
import os
import subprocess
import sys

import pytest

from kernel import needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _py(code, *args, env=None):
    """Run ``code`` in a fresh interpreter with minins importable; its stdout, stripped."""
    out = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r)\n%s"
                          % (REPO, code)] + list(args), capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


EXEC_FROM = r'''
import os
from minins import sealed
fd = FD_EXPR
os.execve(fd, [sys.executable, "-s", "-S", "-c", "import sys; sys.path.insert(0, %r); "
          "from minins import sealed, config; "
          "print(sealed.running_sealed(), sealed.needed(config.default_config()))" % sys.path[0]],
          os.environ)
'''

UNSEALED_COPY = '''os.memfd_create("unsealed", os.MFD_CLOEXEC)
src = os.open("/proc/self/exe", os.O_RDONLY)
os.sendfile(fd, src, 0, os.fstat(src).st_size)'''


def test_a_process_of_the_sealed_copy_knows_it_and_forks_need_no_reexec():
    assert _py(EXEC_FROM.replace("FD_EXPR", "sealed.copy()")) == "True False"


def test_an_unsealed_memfd_copy_is_not_taken_for_the_sealed_one():
    code = EXEC_FROM.replace("FD_EXPR", UNSEALED_COPY)
    assert _py(code) == "False %s" % (os.geteuid() == 0 or os.access(sys.executable, os.W_OK))


def test_the_interpreter_file_itself_is_not_sealed():
    assert _py("from minins import sealed; print(sealed.running_sealed())") == "False"


def test_no_reexec_where_no_container_could_write_the_executable():
    # (in a child interpreter: a wrong answer would replace the process running it)
    code = ("from minins import sealed\n"
            "sealed.writable_by_containers = lambda: False\n"
            "print(sealed.reexec_runtime(['list']), sealed.COPIES)")
    assert _py(code) == "None []"
    frozen = ("from minins import sealed\n"
              "sys.frozen = True\n"
              "print(sealed.reexec_runtime(['list']), sealed.COPIES)")
    assert _py(frozen) == "None []"


def _minins(root, *args, **kw):
    return subprocess.Popen([sys.executable, "-m", "minins", "--root", root] + list(args),
                            cwd=REPO, **kw)


@needs_root
def test_run_runs_sealed_and_its_init_shares_the_copy(tmp_path):
    """The runtime's own pid (execve keeps it) runs the copy while its container runs, and
    the init ran from the same copy until its execve."""
    root = str(tmp_path / "state")
    proc = _minins(root, "run", "--", "/bin/sh", "-c", "echo ready; read x; echo done",
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read()
        exe = os.readlink("/proc/%d/exe" % proc.pid)
        assert exe.startswith("/memfd:minins-runtime"), exe
        proc.stdin.write(b"\n")
        proc.stdin.close()
        assert proc.stdout.read() == b"done\n"
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        from minins import lifecycle

        for row in lifecycle.list_containers(root):
            lifecycle.delete(row["data_path"], force=True)


def test_commands_that_enter_no_container_do_not_reexec(tmp_path):
    """``list`` (like state, kill, delete, ...) starts no process in a container: it keeps
    the interpreter file. Seen from outside, through its /proc/PID/exe while it is blocked
    writing its table into a pipe we filled first."""
    import fcntl

    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: one page
        os.set_blocking(w, False)
        try:
            while True:
                os.write(w, b"x" * 4096)
        except BlockingIOError:
            pass
        os.set_blocking(w, True)
        proc = _minins(str(tmp_path / "state"), "list", stdout=w, stdin=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        os.close(w)
        w = None
        try:
            deadline_reads = 0
            while True:  # wait until it is blocked in write(2) on the full pipe
                with open("/proc/%d/wchan" % proc.pid) as f:
                    wchan = f.read()
                with open("/proc/%d/stat" % proc.pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if state == "S" and "pipe" in wchan:
                    break
                deadline_reads += 1
                assert deadline_reads < 10 ** 6 and proc.poll() is None
                os.sched_yield()
            exe = os.readlink("/proc/%d/exe" % proc.pid)
            assert exe == os.path.realpath(sys.executable), exe
        finally:
            while os.read(r, 65536):
                pass
            assert proc.wait(60) == 0
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def test_the_reexecuted_interpreter_keeps_the_options_that_change_how_it_runs():
    out = subprocess.run([sys.executable, "-I", "-B", "-W", "error::DeprecationWarning", "-X",
                          "importtime", "-X", "utf8=1", "-c",
                          "import sys; sys.path.insert(0, %r)\n"
                          "from minins import sealed; print(sealed.interpreter_options())"
                          % REPO], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    opts = eval(out.stdout)
    assert opts[:3] == ["-I", "-s", "-S"]
    assert "-B" in opts
    assert opts[opts.index("-W") + 1] == "error::DeprecationWarning"
    xs = [opts[i + 1] for i, o in enumerate(opts) if o == "-X"]
    assert "importtime" in xs and "utf8=1" in xs
    plain = _py("from minins import sealed; print(sealed.interpreter_options())",
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    assert eval(plain) == ["-s", "-S"]
