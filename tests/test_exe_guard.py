"""CVE-2019-5736, the class: no process in a container can write the runtime's executable.

minins runs here under a *copy* of the interpreter in a temp dir (the real one is never
touched). A script in the container starts with ``#!/proc/self/exe``; when the runtime's own
process execs it (the init of ``run``, or the process of ``exec``), the kernel runs the
runtime's executable as its interpreter inside the container. The script keeps a descriptor
of that executable, lets the runtime exit, and then tries to open it for writing and write,
again and again until the test says the runtime is gone, and once more after that. Every
attempt must fail, and the copy's hash must be unchanged. Without the sealed interpreter
(minins.process.sealed_interpreter) the last attempts succeed. Real kernel, as root."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from kernel import Subreaper, needs_root, needs_userns

pytestmark = needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_PY = "/usr/bin/python3"

# Run by the runtime's interpreter (the kernel follows #!/proc/self/exe). It keeps an O_PATH
# descriptor of its own executable and hands it to a loop run by another program, so that
# nothing executes the runtime's file any more once the runtime exits.
ATTACK = r'''#!/proc/self/exe
import os, sys
fd = os.open("/proc/self/exe", os.O_PATH)
os.set_inheritable(fd, True)
loop = ["%(py)s", "-c", %(loop)r, str(fd), os.readlink("/proc/self/exe")]
if sys.argv[1] == "fork":
    if os.fork():
        os._exit(0)
os.execv(loop[0], loop)
'''

LOOP = r'''
import errno, os, sys, time
fd, exe = int(sys.argv[1]), sys.argv[2]
seen = []
def attempt():
    try:
        w = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY)
    except OSError as e:
        seen.append("open " + errno.errorcode[e.errno]); return
    try:
        os.write(w, b"\0")
        seen.append("WROTE")
    except OSError as e:
        seen.append("write " + errno.errorcode[e.errno])
    finally:
        os.close(w)
deadline = time.monotonic() + 60
while not os.path.exists("/mnt/done") and time.monotonic() < deadline:
    attempt()
    time.sleep(0.02)
attempt()  # the runtime is gone now: nothing else runs its executable
with open("/mnt/result.tmp", "w") as f:
    f.write("%s\n%s" % (exe, "\n".join(seen)))
os.rename("/mnt/result.tmp", "/mnt/result")
'''


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def setup(tmp_path):
    if sys.version_info < (3, 11):
        # The sealed copy of an interpreter before 3.11 cannot even start in the container:
        # it finds its stdlib from its executable's path, and a memfd has none (3.11 has the
        # start-up modules frozen in). The attack then has no process to work with; there is
        # nothing to observe.
        pytest.skip("the attack needs the sealed interpreter to start: Python 3.11+")
    if not os.path.exists(HOST_PY):
        pytest.skip("needs %s for the attack's loop" % HOST_PY)
    pydir = tmp_path / "py"
    pydir.mkdir()
    copy = str(pydir / os.path.basename(os.path.realpath(sys.executable)))
    shutil.copy2(os.path.realpath(sys.executable), copy)
    share = tmp_path / "share"
    share.mkdir()
    (share / "x.py").write_text(ATTACK % {"py": HOST_PY, "loop": LOOP})
    (share / "x.py").chmod(0o755)
    from minins import config

    cfg = config.default_config()
    mc = cfg.mount_config.replace(mounts=cfg.mount_config.mounts + (config.Mount(
        type="bind", source=str(share), destination="/mnt", writable=True),))
    cfg = cfg.replace(mount_config=mc)
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(config.dumps(cfg))
    # the same with a user namespace that maps neither host root nor the copy's owner
    maps = (config.IDMap(container_id=0, host_id=420000, size=65536),)
    userns = cfg.replace(namespaces=(config.Namespace(type="NEWUSER"),) + cfg.namespaces,
                         uid_mappings=maps, gid_mappings=maps)
    (tmp_path / "userns.json").write_text(config.dumps(userns))
    share.chmod(0o777)  # the container's root is host uid 420000: it writes its result here
    env = dict(os.environ, PYTHONHOME=sys.prefix + ":" + sys.exec_prefix)
    root = str(tmp_path / "state")
    with Subreaper() as reaper:
        try:
            yield {"copy": copy, "share": share, "cfg": str(cfg_path), "env": env,
                   "root": root, "userns": str(tmp_path / "userns.json")}
        finally:
            (share / "done").write_text("")  # ends the attack's loop, if it still runs
            from minins import lifecycle

            for row in lifecycle.list_containers(root):
                lifecycle.delete(row["data_path"], force=True)
            reaper.reap(60)


def _minins(s, *args, timeout=120, library=False):
    """The command line run by the copy; ``library``: through ``cli.main`` alone, which, like
    a program calling the library, does not re-execute the runtime from the sealed copy
    first (``cli.entry`` does, for run, create and exec)."""
    import tempfile

    start = ["-c", "import sys; from minins import cli; sys.exit(cli.main())"] if library \
        else ["-m", "minins"]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.run([s["copy"]] + start + ["--root", s["root"]] + list(args),
                              cwd=REPO, env=s["env"], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=out, timeout=timeout)
        out.seek(0)
        return proc.returncode, out.read().decode()


def _outcome(s, before):
    (s["share"] / "done").write_text("")  # the runtime has exited
    result = s["share"] / "result"
    deadline = time.monotonic() + 90
    while not result.exists():
        assert time.monotonic() < deadline, "the attack never reported"
        time.sleep(0.05)
    exe, *seen = result.read_text().split("\n")
    assert seen, "no write was attempted"
    assert "WROTE" not in seen, seen
    assert _sha(s["copy"]) == before
    return exe, seen


def test_the_init_of_run_cannot_write_the_runtime(setup):
    s = setup
    before = _sha(s["copy"])
    code, out = _minins(s, "run", "-d", "--config", s["cfg"], "--id", "atk%d" % os.getpid(), "--",
                        "/mnt/x.py", "become")
    assert code == 0, out
    exe, seen = _outcome(s, before)
    assert exe.startswith("/memfd:"), exe  # it ran the sealed copy, not the file
    assert _minins(s, "delete", "--force", "atk%d" % os.getpid())[0] == 0


def test_a_process_of_exec_cannot_write_the_runtime(setup):
    s = setup
    before = _sha(s["copy"])
    code, out = _minins(s, "run", "-d", "--config", s["cfg"], "--id", "box%d" % os.getpid(), "--",
                        "sleep", "1000")
    assert code == 0, out
    code, out = _minins(s, "exec", "box%d" % os.getpid(), "--", "/mnt/x.py", "fork")
    assert code == 0, out
    exe, seen = _outcome(s, before)
    assert exe.startswith("/memfd:"), exe
    assert _minins(s, "delete", "--force", "box%d" % os.getpid())[0] == 0


@needs_userns
def test_where_the_guard_is_skipped_the_write_is_impossible(setup):
    """The skip's claim, checked by the attack itself: in a user namespace that maps neither
    host root nor the owner of the 0755 copy, the container's process runs the copy itself
    (no sealed memfd), grabs it, and still every write attempt fails (EACCES). Through the
    library's path: the command line runs sealed from the start, whatever the config."""
    s = setup
    before = _sha(s["copy"])
    st = os.stat(s["copy"])
    assert st.st_uid == 0 and not st.st_mode & 0o022
    cid = "uns%d" % os.getpid()
    code, out = _minins(s, "run", "-d", "--config", s["userns"], "--id", cid, "--",
                        "sleep", "1000", library=True)
    assert code == 0, out
    code, out = _minins(s, "exec", cid, "--", "/mnt/x.py", "fork", library=True)
    assert code == 0, out
    exe, seen = _outcome(s, before)
    assert exe == s["copy"], exe  # the guard was skipped: the file itself ran inside
    assert set(seen) == {"open EACCES"}, seen
    assert _minins(s, "delete", "--force", cid)[0] == 0


def test_the_guard_is_skipped_only_where_the_write_is_impossible():
    from minins import config, process
    from minins.config import Namespace

    default = config.default_config()
    assert process.needs_sealed_interpreter(default)
    st = os.stat("/proc/self/exe")
    maps = (config.IDMap(container_id=0, host_id=st.st_uid + 100000, size=65536),)
    userns = default.replace(namespaces=default.namespaces + (Namespace(type="NEWUSER"),),
                             uid_mappings=maps, gid_mappings=maps)
    # host root and the executable's owner unmapped: no uid inside can write it
    assert process.needs_sealed_interpreter(userns) == bool(st.st_mode & 0o022)
    mapped = userns.replace(uid_mappings=(config.IDMap(container_id=0, host_id=st.st_uid,
                                                       size=1),))
    assert process.needs_sealed_interpreter(mapped)
    joined = default.replace(namespaces=default.namespaces + (
        Namespace(type="NEWUSER", path="/proc/1/ns/user"),))
    assert process.needs_sealed_interpreter(joined)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_without_a_user_namespace_host_root_could_write_the_file(tmp_path):
    """The claim behind the skip, checked: a process with a uid that is not the file's owner
    nor root, and no capability, cannot open an 0755 root-owned file for writing."""
    f = tmp_path / "exe"
    f.write_bytes(b"\x7fELF")
    f.chmod(0o755)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            try:
                os.open(str(f), os.O_WRONLY)
                os._exit(1)
            except PermissionError:
                os._exit(0)
        finally:
            os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
@pytest.mark.parametrize("start", [["-m", "minins"],
                                   ["-c", "import sys; from minins import cli; "
                                          "sys.exit(cli.main())"]],
                         ids=["command-line", "library"])
def test_the_sealed_interpreter_of_a_venv_starts(tmp_path, start):
    """``pip install`` into a virtual environment is how many users get minins. The sealed
    copy of the interpreter has no path of its own: it must find the base installation's
    standard library (a venv has none; PYTHONHOME=sys.prefix broke every --rootfs start from
    a venv). Both ways: the command line's runtime runs from the copy, and the library's
    forked intermediate re-executes it."""
    from rootfs_util import build_rootfs

    rootfs = build_rootfs(str(tmp_path / "rootfs"))
    venv = str(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = os.path.join(venv, "bin", "python")
    assert subprocess.run([py, "-c", "import sys; assert sys.prefix != sys.base_prefix"]
                          ).returncode == 0
    proc = subprocess.run([py] + start + ["--root", str(tmp_path / "state"), "run",
                           "--rootfs", rootfs, "--", "/bin/sh", "-c", "echo in; exit 7"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("PYTHON")})
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "in\n", "")
