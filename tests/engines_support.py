"""A safe harness for driving real container engines (podman with conmon, containerd with
its runc shim) against an OCI runtime given as an executable path: minins, or runc/crun to
check the harness itself.

Not a test module (no ``test_`` prefix): tests/test_engines.py and tools/bench_engines.py
import it. Nothing here may change the host outside a directory the caller owns:

* every engine command runs in one private mount namespace (:class:`MountNamespace`, made
  recursively private by ``unshare --propagation private``) where ``/run``, ``/dev/shm``
  and ``/var/lib`` are fresh tmpfs: the paths the engines hard-code (containerd's shim
  sockets in ``/run/containerd/s``, runc's default roots, podman's shm lock, podman's
  blob-info cache in ``/var/lib/containers``) land there and vanish with the namespace, and
  the engines' storage mounts never reach the host's mount table;
* all engine state (podman's --root/--runroot/tmp_dir/events log, containerd's
  --root/--state/socket) lives in the caller's directory, with a containers.conf and a
  storage.conf of our own (``CONTAINERS_CONF``, ``CONTAINERS_STORAGE_CONF``) and a
  containerd config.toml of our own;
* containers get no network (podman ``--network none``; ctr without ``--cni``): no link,
  bridge, firewall rule or CNI file is made;
* engines place cgroups at the hierarchy roots unless told otherwise: they are given a parent
  (:class:`CgroupParent`) below this process's own cgroup in every hierarchy, which
  :meth:`CgroupParent.remove` removes deepest first;
* daemons and helpers are stopped by their pid, read from our own directory (containerd's
  pid from its Popen, conmon's and the shims' from their pid files under our state dirs).

Images are made offline: a busybox-static rootfs (tests/rootfs_util.py) packed as a tarball
(``podman import``) and as an OCI image layout archive (``ctr images import``).
"""
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading

from cgroups_support import end_cgroup_members

IMAGE = "localhost/minins-busybox:test"
CTR_NAMESPACE = "minins-test"
PODMAN_NPROC = 32768
SUPPORTS_JSON = ("crun", "runc", "kata", "runsc", "youki", "krun", "minins")


class Unavailable(Exception):
    """An engine, a tool or a privilege the harness needs is missing: the reason."""


def need(*programs):
    """The absolute paths of ``programs``; :class:`Unavailable` naming the first missing."""
    found = []
    for name in programs:
        path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if not path:
            raise Unavailable("%s is not installed (Debian package %s)" % (name, _PACKAGE.get(
                name, name)))
        found.append(path)
    return found


_PACKAGE = {"ctr": "containerd", "containerd": "containerd", "containerd-shim-runc-v2":
            "containerd", "unshare": "util-linux", "nsenter": "util-linux",
            "mount": "mount", "busybox": "busybox-static"}


def need_root():
    if os.geteuid() != 0:
        raise Unavailable("engines need root (running as uid %d)" % os.geteuid())


# --- the runtime under test ------------------------------------------------------------------

def runtime_wrapper(bindir, name, target, argv_log=None, env=None):
    """Write an executable ``bindir/name`` that runs ``target`` (a list: the command and its
    first arguments) with the engine's arguments, and return its path.

    The engines know a runtime by the base name of its path (podman passes ``--log-format
    json`` only to names in ``runtime_supports_json``), so ``name`` should be the runtime's
    own. With ``argv_log``, each call's arguments are appended to that file first (one line
    a call), which is how a failure is traced to the argv an engine used."""
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, name)
    lines = ["#!/bin/sh"]
    for key, value in sorted((env or {}).items()):
        lines.append("export %s=%s" % (key, _sh(value)))
    if argv_log:
        lines.append('echo "$$ $*" >>%s' % _sh(argv_log))
    lines.append("exec %s \"$@\"" % " ".join(_sh(a) for a in target))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)
    return path


def _sh(word):
    return "'" + str(word).replace("'", "'\\''") + "'"


def minins_target(repo):
    """The command that runs minins from the checkout ``repo``, as vendor-notes.md gives it
    for a vendored copy: ``python3 -I -c "...; from minins.cli import entry; entry()"``.
    Not ``python3 -m minins`` with ``PYTHONPATH``: ``-m`` puts the working directory first
    on ``sys.path``, and an engine may call the runtime from any directory (a ``minins``
    folder there would be run instead). Returns ``(argv, env)``."""
    code = "import sys; sys.path.insert(0, %r); from minins.cli import entry; entry()" % repo
    return [sys.executable, "-I", "-c", code], {}


def oci_cli_missing(runtime):
    """``None`` when ``runtime`` (a path) answers runc's command line as a runtime must for an
    engine, else the reason it does not: ``--version`` must name the OCI runtime spec
    version (runc prints ``spec: 1.0.2-dev``) and ``spec`` must write a config.json."""
    import tempfile

    try:
        out = subprocess.run([runtime, "--version"], capture_output=True, text=True,
                             timeout=60)
    except OSError as e:
        return "%s cannot be run: %s" % (runtime, e)
    text = (out.stdout + out.stderr).strip()
    if out.returncode != 0 or "spec" not in text.lower():
        return "`%s --version` does not print the OCI spec version (exit %d: %s)" % (
            os.path.basename(runtime), out.returncode, text.splitlines()[-1] if text else "")
    with tempfile.TemporaryDirectory(prefix="minins-spec-") as d:
        out = subprocess.run([runtime, "spec", "-b", d], capture_output=True, text=True,
                             timeout=60, cwd=d)
        if out.returncode != 0 or not os.path.exists(os.path.join(d, "config.json")):
            text = (out.stdout + out.stderr).strip()
            return "`%s spec` does not write a config.json (exit %d: %s)" % (
                os.path.basename(runtime), out.returncode,
                text.splitlines()[-1] if text else "")
    return None


# --- images, made offline --------------------------------------------------------------------

def rootfs_tar(rootfs, path):
    """Pack the directory ``rootfs`` as an uncompressed tar at ``path`` (owners numeric,
    entries sorted so the digest is stable); returns ``path``."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                info = tar.gettarinfo(full, os.path.relpath(full, rootfs))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return path


def oci_archive(layer_tar, path, name=IMAGE):
    """An OCI image layout archive (image-spec 1.0: ``oci-layout``, ``index.json``,
    ``blobs/sha256``) at ``path`` holding one image named ``name`` whose single layer is
    the uncompressed ``layer_tar``; the form ``ctr images import`` reads."""
    with open(layer_tar, "rb") as f:
        layer = f.read()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": _goarch(), "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    mdesc = _descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
    mdesc["annotations"] = {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}
    index = json.dumps({"schemaVersion": 2, "manifests": [mdesc]}, sort_keys=True).encode()
    with tarfile.open(path, "w") as tar:
        def add(arcname, data):
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in (config, manifest):
            add("blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
        add("blobs/sha256/" + layer_digest.split(":")[1], layer)
    return path


def _descriptor(media_type, blob):
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
            "size": len(blob)}


def _goarch():
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "riscv64": "riscv64",
            "i686": "386"}.get(machine, machine)


# --- the private mount namespace -------------------------------------------------------------

class MountNamespace:
    """A private mount namespace held open by a small process; :meth:`cmd` prefixes a
    command so that it runs there. ``/run``, ``/dev/shm`` and ``/var/lib`` are fresh tmpfs
    inside it (podman writes its blob-info cache to /var/lib/containers whatever --root
    says); with ``hide_unified`` the hybrid host's ``/sys/fs/cgroup/unified`` is unmounted
    there (crun 1.8 refuses hybrid hosts).

    Closing it ends the holder (its stdin closes); the namespace then dies with the last
    process in it, and every mount made there with it."""

    def __init__(self, log, hide_unified=False):
        unshare, nsenter, _ = need("unshare", "nsenter", "mount")
        self.nsenter = nsenter
        script = ("mount -t tmpfs -o mode=755 minins-engines /run && "
                  "mount -t tmpfs -o mode=1777 minins-engines /dev/shm && "
                  "mount -t tmpfs -o mode=755 minins-engines /var/lib && ")
        if hide_unified and os.path.ismount("/sys/fs/cgroup/unified"):
            # crun 1.8 refuses a hybrid host; without the v2 mount it sees a v1 host
            script += "umount -l /sys/fs/cgroup/unified && "
        script += "echo ready && exec cat >/dev/null"
        self.proc = subprocess.Popen([unshare, "--mount", "--propagation", "private", "--",
                                      "/bin/sh", "-c", script],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(log, "ab"), close_fds=True)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.close()
            with open(log, errors="replace") as f:
                raise Unavailable("no private mount namespace: %s" % f.read().strip())
        self.path = "/proc/%d/ns/mnt" % self.proc.pid

    def cmd(self, argv):
        return [self.nsenter, "--mount=" + self.path, "--"] + list(argv)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


# --- a cgroup parent of our own --------------------------------------------------------------

def _cgroup_mounts():
    """``[(mount point, fstype, {super options})]`` of our cgroup and cgroup2 mounts."""
    from minins.cgroups.discovery import parse_mountinfo

    with open("/proc/self/mountinfo") as f:
        return [(point, fstype, set(opts))
                for point, fstype, _root, opts in parse_mountinfo(f.read())]


def _own_cgroup_paths():
    """{mount point: this process's cgroup path in that hierarchy}."""
    lines = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            lines.append((set(ctrls.split(",")) if ctrls else set(), path))
    own = {}
    for point, fstype, opts in _cgroup_mounts():
        for names, path in lines:
            if (fstype == "cgroup2" and not names) or (fstype == "cgroup" and names and
                                                       names <= opts):
                own[point] = path
    return own


def _inherit_cpuset(d):
    """A new v1 cpuset cgroup starts with empty ``cpuset.cpus``/``cpuset.mems`` and takes
    no process until they are set (kernel doc cgroup-v1/cpusets.rst): copy the parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            with open(os.path.join(os.path.dirname(d), name)) as f:
                value = f.read().strip()
            with open(path, "w") as f:
                f.write(value)


class CgroupParent:
    """One cgroup path ``path`` (absolute from each hierarchy's root, the form engines take)
    that lies below this process's own cgroup in every hierarchy: the deepest of our own
    paths plus a unique name. Created in every hierarchy here so that everything an engine
    makes below it is ours; :meth:`remove` ends what is still in it (only processes our
    engines started can be there) and removes it deepest first, with the intermediate
    directories we had to create."""

    def __init__(self, tag):
        own = _own_cgroup_paths()
        if not own:
            raise Unavailable("no cgroup hierarchy is mounted")
        deepest = max(own.values(), key=len)
        for point, path in own.items():
            if not (deepest + "/").startswith(path.rstrip("/") + "/"):
                raise Unavailable("our own cgroups are not nested (%s in %s, %s elsewhere): "
                                  "no single parent below all of them" % (path, point, deepest))
        self.path = "%s/minins-engines-%s-%d" % (deepest.rstrip("/"), tag, os.getpid())
        self.created = []  # directories, in creation order
        try:
            for point in own:
                d = point
                for part in self.path.strip("/").split("/"):
                    d = os.path.join(d, part)
                    if not os.path.isdir(d):
                        os.mkdir(d)
                        self.created.append(d)
                        _inherit_cpuset(d)
        except OSError:
            self.remove()
            raise

    def tops(self):
        return [d for d in self.created if d.endswith(self.path)]

    def remove(self):
        """Remove everything below and including our parent, and the ancestors we made.
        Returns a list of what could not be removed (empty when all is gone)."""
        left = []
        for top in self.tops():
            dirs = [dp for dp, _, _ in os.walk(top)]
            for d in sorted(dirs, key=len, reverse=True):
                end_cgroup_members(d)
                if os.path.isdir(d) and d not in self.created:
                    try:
                        os.rmdir(d)
                    except OSError as e:
                        left.append("%s: %s" % (d, e))
        for d in reversed(self.created):
            if os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError as e:
                    left.append("%s: %s" % (d, e))
        return left


# --- podman -----------------------------------------------------------------------------------

class Podman:
    """podman and conmon with every piece of state in ``base``, in the namespace ``ns``,
    running containers through ``runtime`` (the path of an executable) below
    ``cgroup_parent``."""

    def __init__(self, base, runtime, ns, cgroup_parent):
        self.podman, self.conmon = need("podman", "conmon")
        self.base, self.runtime, self.ns = base, runtime, ns
        self.cgroup_parent = cgroup_parent
        self.root = os.path.join(base, "root")
        self.runroot = os.path.join(base, "runroot")
        if len(self.runroot) > 50:
            raise Unavailable("podman refuses a runroot longer than 50 characters: %s"
                              % self.runroot)
        self.tmp = os.path.join(base, "tmp")
        self.net = os.path.join(base, "net.d")
        for d in (self.root, self.runroot, self.tmp, self.net, os.path.join(base, "libpod")):
            os.makedirs(d, exist_ok=True)
        self.conf = os.path.join(base, "containers.conf")
        self.storage_conf = os.path.join(base, "storage.conf")
        self.registries_conf = os.path.join(base, "registries.conf")
        self.events = os.path.join(base, "events.log")
        self.env = self._env()
        self._write_conf()

    def _env(self):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": self.base, "TMPDIR": self.tmp, "LC_ALL": "C",
               "CONTAINERS_CONF": self.conf, "CONTAINERS_STORAGE_CONF": self.storage_conf,
               "CONTAINERS_REGISTRIES_CONF": self.registries_conf}
        return env

    def _write_conf(self):
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        ulimits = ['"nofile=%d:%d"' % (nofile, nofile)] if nofile > 0 else []
        # podman 4.3 lowers its own RLIMIT_NPROC to 32768 (seen in /proc/PID/limits of
        # podman, conmon and the runtime it starts); without CAP_SYS_RESOURCE the runtime
        # cannot then raise a container's limit above that: ask for no more.
        nproc = min(nproc, PODMAN_NPROC) if nproc > 0 else PODMAN_NPROC
        ulimits.append('"nproc=%d:%d"' % (nproc, nproc))
        conmon_env = ['"%s=%s"' % (k, v) for k, v in sorted(self.env.items())]
        name = os.path.basename(self.runtime)
        with open(self.conf, "w") as f:
            f.write("""[containers]
default_ulimits = [%(ulimits)s]
log_driver = "k8s-file"
netns = "none"
[network]
network_backend = "cni"
network_config_dir = "%(net)s"
default_network = "minins-none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "%(events)s"
tmp_dir = "%(libpod)s"
image_copy_tmp_dir = "%(tmp)s"
conmon_path = ["%(conmon)s"]
conmon_env_vars = [%(conmon_env)s]
runtime = "%(name)s"
runtime_supports_json = [%(json)s]
lock_type = "file"
num_locks = 128
[engine.runtimes]
%(name)s = ["%(runtime)s"]
""" % dict(ulimits=", ".join(ulimits), net=self.net, events=self.events,
                libpod=os.path.join(self.base, "libpod"), tmp=self.tmp, conmon=self.conmon,
                conmon_env=", ".join(conmon_env), name=name, runtime=self.runtime,
                json=", ".join('"%s"' % n for n in sorted(set(SUPPORTS_JSON + (name,))))))
        with open(self.storage_conf, "w") as f:
            f.write('[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n'
                    % (self.runroot, self.root))
        with open(self.registries_conf, "w") as f:
            f.write("unqualified-search-registries = []\n")

    def argv(self, *args):
        return self.ns.cmd([self.podman, "--root", self.root, "--runroot", self.runroot,
                            "--runtime", self.runtime, "--cgroup-manager", "cgroupfs",
                            "--events-backend", "file", "--storage-driver", "vfs",
                            "--tmpdir", os.path.join(self.base, "libpod"),
                            "--network-config-dir", self.net] + list(args))

    def __call__(self, *args, check=True, timeout=120, input=None):
        """Run ``podman ARGS``; a CompletedProcess (text). With ``check`` a non-zero exit
        raises AssertionError carrying the argv, the output and the runtime's last log."""
        out = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                             timeout=timeout, input=input if input is not None else "",
                             cwd=self.base)
        if check and out.returncode != 0:
            raise AssertionError("podman %s: exit %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), out.returncode, out.stdout, out.stderr))
        return out

    def import_image(self, tar, name=IMAGE):
        self("import", tar, name)

    def run_args(self):
        """Options every ``podman run``/``create`` of the tests takes."""
        return ["--cgroup-parent", self.cgroup_parent, "--network", "none"]

    def conmon_pids(self):
        pids = []
        for dirpath, _, files in os.walk(self.runroot):
            if "conmon.pid" in files:
                pids.append(_read_pid(os.path.join(dirpath, "conmon.pid")))
        for dirpath, _, files in os.walk(self.root):
            if "conmon.pid" in files:
                pids.append(_read_pid(os.path.join(dirpath, "conmon.pid")))
        return [p for p in pids if p]

    def close(self):
        """Remove every container (stopping it), then end any conmon still running."""
        problems = []
        try:
            out = self("rm", "--all", "--force", "--time", "0", check=False, timeout=120)
            if out.returncode != 0:
                problems.append("podman rm --all --force: %s" % out.stderr.strip())
        except subprocess.TimeoutExpired:
            problems.append("podman rm --all --force timed out")
        for pid in self.conmon_pids():
            if _kill_ours(pid, "conmon"):
                problems.append("conmon %d was still running" % pid)
        return problems


# --- containerd -------------------------------------------------------------------------------

class Containerd:
    """A containerd of our own (root, state, socket and config in ``base``), started in
    ``ns`` and stopped by its pid; ``ctr`` talks to it through its socket."""

    def __init__(self, base, ns, cgroup_parent):
        self.containerd, self.ctr, self.shim = need("containerd", "ctr",
                                                   "containerd-shim-runc-v2")
        self.base, self.ns, self.cgroup_parent = base, ns, cgroup_parent
        self.address = os.path.join(base, "containerd.sock")
        self.config = os.path.join(base, "config.toml")
        self.log = os.path.join(base, "containerd.log")
        self.fifo = os.path.join(base, "fifo")
        os.makedirs(self.fifo, exist_ok=True)
        with open(self.config, "w") as f:
            f.write("""version = 2
root = "%(base)s/root"
state = "%(base)s/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "%(sock)s"
[ttrpc]
  address = ""
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[cgroup]
  path = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "%(base)s/opt"
""" % dict(base=base, sock=self.address))
        self.proc = None

    def start(self):
        """Start the daemon; return when it serves its socket (its log says so)."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.ns.cmd([self.containerd, "--config", self.config]),
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.PIPE, close_fds=True, cwd=self.base,
                                     env=_plain_env(self.base))
        booted = False
        for raw in self.proc.stderr:
            logf.write(raw)
            logf.flush()
            if b"containerd successfully booted" in raw:
                booted = True
                break
        if not booted:
            self.proc.wait()
            logf.close()
            raise Unavailable("containerd did not start (exit %s): see %s" % (
                self.proc.returncode, self.log))

        def drain():
            for raw in self.proc.stderr:
                logf.write(raw)
                logf.flush()
            logf.close()
        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()

    def __call__(self, *args, check=True, timeout=120):
        argv = self.ns.cmd([self.ctr, "--address", self.address, "--namespace",
                            CTR_NAMESPACE] + list(args))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL, env=_plain_env(self.base),
                             cwd=self.base)
        if check and out.returncode != 0:
            raise AssertionError("ctr %s: exit %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), out.returncode, out.stdout, out.stderr))
        return out

    def import_image(self, archive, name=IMAGE):
        self("images", "import", "--snapshotter", "native", archive)
        if name not in self("images", "list", "-q").stdout.split():
            raise AssertionError("ctr images import did not name the image %s" % name)

    def run_args(self, runtime, cid):
        """Options every ``ctr run`` of the tests takes, for container ``cid``."""
        return ["--snapshotter", "native", "--runc-binary", runtime, "--fifo-dir", self.fifo,
                "--cgroup", "%s/%s" % (self.cgroup_parent, cid)]

    def shim_pids(self):
        pids = []
        for dirpath, _, files in os.walk(os.path.join(self.base, "state")):
            if "shim.pid" in files:
                pids.append(_read_pid(os.path.join(dirpath, "shim.pid")))
        return [p for p in pids if p]

    def close(self):
        """Kill and delete every task and container, stop the daemon by its pid, then end
        any shim still running (by the pid in its state directory)."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                tasks = self("tasks", "list", "-q", check=False).stdout.split()
                for cid in tasks:
                    self("tasks", "kill", "--signal", "SIGKILL", cid, check=False)
                    self("tasks", "delete", "--force", cid, check=False)
                for cid in self("containers", "list", "-q", check=False).stdout.split():
                    self("containers", "delete", cid, check=False)
            except subprocess.TimeoutExpired:
                problems.append("ctr timed out while cleaning up")
            shims = self.shim_pids()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("containerd did not stop on SIGTERM")
            self._drain.join(timeout=10)
            self.proc.stderr.close()
            for pid in set(shims + self.shim_pids()):
                if _kill_ours(pid, "containerd-shim"):
                    problems.append("shim %d was still running" % pid)
        return problems


def _plain_env(home):
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": home, "LC_ALL": "C", "TMPDIR": home}


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _kill_ours(pid, comm):
    """SIGKILL ``pid`` if it is still a ``comm`` process (pids come from our own state
    files; the name check guards against a recycled pid). True when one was killed."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            if not f.read().strip().startswith(comm[:15]):
                return False
        os.kill(pid, signal.SIGKILL)
        return True
    except (OSError, ProcessLookupError):
        return False
