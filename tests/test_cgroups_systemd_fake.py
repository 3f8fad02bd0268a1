"""The systemd driver's D-Bus conversation, on any host: a fake systemd manager on a
peer-to-peer socket (what /run/systemd/private is) in a test thread, speaking the wire
format through minins's codec, and a temporary cgroup v2 tree played by FakeKernelFs. The
fake sends JobRemoved *before* the reply of StartTransientUnit (systemd may), refuses a
unit that exists, fails jobs on request, and answers NoSuchUnit for units it does not have.
The real systemd is tests/test_cgroups_systemd.py (in the guest)."""
import os
import socket
import threading

import pytest

from cgroups_support import FakeKernelFs, cgroup_config, device
from minins import cgroups
from minins.dbus import codec as c
from minins.dbus import sock, systemd
from minins.errors import ContainerError

CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


class FakeSystemd(object):
    """The manager's side of the calls the driver makes, and a record of them."""

    def __init__(self, path, fs, root):
        self.path, self.fs, self.root = path, fs, root
        self.units = {}  # name -> properties
        self.failed = set()  # units that are loaded and failed (a stop that timed out)
        self.calls = []
        self.job_result = "done"
        self.unanswered = set()  # members whose next call gets no answer at all
        self.jobs = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.stopping = False
        self.errors = []
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def connect(self):
        def open_():
            return sock.Connection("unix:path=" + self.path, bus=False, timeout=10)
        return systemd.Systemd(open_(), open_)

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        self.srv.close()

    # --- the wire ----------------------------------------------------------------------------

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            conn.settimeout(10)
            try:
                self._session(conn)
            except socket.timeout:
                pass  # a client that waits for an answer this fake never gives
            except Exception as e:  # shown by the test that checks self.errors
                self.errors.append(repr(e))
            finally:
                conn.close()

    def _session(self, conn):
        buf = b""
        while b"BEGIN\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
            if b"AUTH EXTERNAL " in buf and b"\r\n" in buf and b"OK" not in buf:
                line = buf.split(b"\r\n")[0]
                assert line == b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode()
                conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
                buf += b"OK"  # answered
        buf = buf.split(b"BEGIN\r\n", 1)[1]
        self.serial = 0
        while True:
            while len(buf) < 16 or len(buf) < c.message_length(buf[:16]):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            n = c.message_length(buf[:16])
            msg, buf = c.decode_message(buf[:n]), buf[n:]
            assert msg.destination is None  # peer to peer: no destination
            for out in self._answer(msg):
                self.serial += 1
                out.serial = self.serial
                conn.sendall(c.encode_message(out, c.BIG))  # the other byte order

    def _reply(self, msg, sig="", body=()):
        return c.Message(c.METHOD_RETURN, reply_serial=msg.serial, signature=sig, body=body)

    def _error(self, msg, name, text):
        return c.Message(c.ERROR, reply_serial=msg.serial, error_name=name, signature="s",
                         body=(text,))

    def _job_removed(self, job, unit, result):
        return c.signal(systemd.PATH, systemd.MANAGER, "JobRemoved", "uoss",
                        (self.jobs, job, unit, result))

    # --- the manager -------------------------------------------------------------------------

    def _answer(self, msg):
        self.calls.append((msg.member, msg.body))
        if msg.member in self.unanswered:
            self.unanswered.discard(msg.member)
            return []
        if msg.member == "Get" and msg.body == (systemd.MANAGER, "Version"):
            return [self._reply(msg, "v", (c.Variant("s", "252.22-1~deb12u1"),))]
        if msg.member == "Get" and msg.body == (systemd.UNIT, "ActiveState"):
            name = msg.path.rsplit("/", 1)[1].replace("_2d", "-").replace("_2e", ".")
            state = ("failed" if name in self.failed else "active" if name in self.units
                     else "inactive")
            return [self._reply(msg, "v", (c.Variant("s", state),))]
        if msg.member == "ResetFailedUnit":
            if msg.body[0] not in self.units:
                return [self._error(msg, systemd.NO_SUCH_UNIT, "Unit %s not loaded."
                                    % msg.body[0])]
            if msg.body[0] in self.failed:  # inactive now, and collected
                self.failed.discard(msg.body[0])
                del self.units[msg.body[0]]
            return [self._reply(msg)]
        if msg.member == "GetUnit":
            if msg.body[0] not in self.units:
                return [self._error(msg, systemd.NO_SUCH_UNIT, "Unit %s not loaded."
                                    % msg.body[0])]
            return [self._reply(msg, "o", ("/org/freedesktop/systemd1/unit/" + msg.body[0]
                                           .replace("-", "_2d").replace(".", "_2e"),))]
        if msg.member == "StartTransientUnit":
            name, mode, props, aux = msg.body
            if name in self.units:
                return [self._error(msg, systemd.UNIT_EXISTS, "Unit %s was already loaded or "
                                    "has a fragment file." % name)]
            props = {k: v.value for k, v in props}
            self.units[name] = props
            self.jobs += 1
            job = "/org/freedesktop/systemd1/job/%d" % self.jobs
            if self.job_result == "done":
                self._make_scope(name, props)
            # JobRemoved before the reply: the driver must keep it while it waits
            return [self._job_removed(job, name, self.job_result), self._reply(msg, "o", (job,))]
        if msg.member == "StopUnit":
            name, mode = msg.body
            if name not in self.units:
                return [self._error(msg, systemd.NO_SUCH_UNIT, "Unit %s not loaded." % name)]
            props = self.units.pop(name)
            scope = self._scope_dir(name, props)
            if os.path.isdir(scope):
                with open(scope + "/cgroup.procs") as f:
                    for pid in f.read().split():
                        self.fs.exit(pid)
                self.fs.rmdir(scope)
            self.jobs += 1
            job = "/org/freedesktop/systemd1/job/%d" % self.jobs
            return [self._reply(msg, "o", (job,)), self._job_removed(job, name, "done")]
        if msg.member == "SetUnitProperties":
            name, runtime, props = msg.body
            self.units[name].update({k: v.value for k, v in props})
            return [self._reply(msg)]
        return [self._error(msg, sock.UNKNOWN_METHOD, msg.member)]

    def _scope_dir(self, name, props):
        return os.path.join(self.root, props["Slice"], name)

    def _make_scope(self, name, props):
        """What systemd does for a scope: the slice and the scope directory, controllers
        enabled on the way, the pids moved in."""
        enable = " ".join("+" + x for x in CONTROLLERS)
        slice_dir = os.path.join(self.root, props["Slice"])
        self.fs.write(self.root + "/cgroup.subtree_control", enable)
        if not os.path.isdir(slice_dir):
            self.fs.mkdir(slice_dir)
        self.fs.write(slice_dir + "/cgroup.subtree_control", enable)
        scope = self._scope_dir(name, props)
        self.fs.mkdir(scope)
        for pid in props["PIDs"]:
            self.fs.write(scope + "/cgroup.procs", str(pid))
        self.fs.log.append(("systemd made", scope, None))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    from minins.cgroups import systemd as driver

    # the fake tree's cgroup.events never changes: do not wait for systemd to collect
    monkeypatch.setattr(driver, "COLLECT_WAIT", 0.0)
    root = str(tmp_path / "cg")
    os.mkdir(root)
    fs = FakeKernelFs(root, v2=CONTROLLERS, v2_only=True)
    sd = FakeSystemd(str(tmp_path / "private"), fs, root)
    try:
        yield sd
    finally:
        sd.stop()
    assert sd.errors == []


def manager(fake, **kw):
    kw.setdefault("name", "c1")
    return cgroups.new_manager(cgroup_config(driver="systemd", **kw), root=fake.root,
                               fs=fake.fs, connect=fake.connect)


def test_the_scope_is_started_with_its_properties_and_cgroupfs_writes_the_rest(fake):
    mgr = manager(fake, memory=64 << 20, pids_limit=50, cpu_shares=512, cpu_quota=33333,
                  cpu_period=100000, allowed_devices=[device("c", 1, 3)])
    assert mgr.unit == "minins-c1.scope" and mgr.driver == "systemd-v2"
    mgr.apply(4242)
    props = fake.units["minins-c1.scope"]
    assert props["PIDs"] == [4242] and props["Delegate"] is True
    assert props["DefaultDependencies"] is False and props["Slice"] == "system.slice"
    assert props["MemoryMax"] == 64 << 20 and props["TasksMax"] == 50
    assert props["CPUWeight"] == 59 and props["CPUQuotaPerSecUSec"] == 340000
    assert props["DevicePolicy"] == "strict"
    assert props["DeviceAllow"] == [("/dev/char/1:3", "rwm")]
    assert props["MemoryAccounting"] is True and props["TasksAccounting"] is True
    scope = fake.root + "/system.slice/minins-c1.scope"
    assert mgr.paths == {"unified": scope}
    after = fake.fs.log[fake.fs.log.index(("systemd made", scope, None)) + 1:]
    # cgroupfs after systemd: a mkdir that finds the scope (EEXIST: joined, not made), the
    # exact quota, the device program, the join; nothing else
    assert after == [("mkdir", scope, None),
                     ("write", scope + "/cpu.max", "33333 100000"),
                     ("bpf", scope, (("c", 1, 3, "rwm"),)),
                     ("write", scope + "/cgroup.procs", "4242")]
    assert [m for m, _ in fake.calls] == ["Get", "StartTransientUnit"]


def test_set_sends_unit_properties_and_writes_the_rest(fake):
    mgr = manager(fake, memory=64 << 20, cpu_quota=20000)
    mgr.apply(4242)
    loaded = cgroups.load_manager_from_state(mgr.to_state(), fs=fake.fs, connect=fake.connect)
    n = len(fake.fs.log)
    loaded.set(cgroup_config(memory=96 << 20, pids_limit=-1, cpu_period=50000))
    props = fake.units["minins-c1.scope"]
    assert props["MemoryMax"] == 96 << 20 and props["TasksMax"] == (1 << 64) - 1
    assert props["CPUQuotaPeriodUSec"] == 50000
    assert fake.calls[-1][0] == "SetUnitProperties" and fake.calls[-1][1][1] is True
    scope = mgr.paths["unified"]
    assert fake.fs.log[n:] == [("write", scope + "/cpu.max", "20000 50000")]  # quota kept


def test_destroy_stops_the_unit_and_a_gone_unit_is_fine(fake):
    mgr = manager(fake)
    mgr.apply(4242)
    scope = mgr.paths["unified"]
    mgr.destroy()
    assert "minins-c1.scope" not in fake.units and not os.path.exists(scope)
    assert [m for m, _ in fake.calls][-3:] == ["GetUnit", "Get", "StopUnit"]
    n = len(fake.calls)
    mgr.destroy()  # the scope's cgroup is gone: nothing to stop, nothing asked
    assert len(fake.calls) == n


def test_a_unit_that_exists_is_a_one_line_error(fake):
    manager(fake).apply(4242)
    with pytest.raises(ContainerError) as e:
        manager(fake).apply(4343)
    assert str(e.value) == ("cgroups: systemd has a unit minins-c1.scope already (another "
                            "container of that name, or one left behind: systemctl stop "
                            "minins-c1.scope)")


def test_a_failed_unit_left_behind_is_reset_and_the_scope_started(fake):
    # `systemctl stop` of a container's scope times out (the init, PID 1 of its namespace,
    # ignores SIGTERM) and leaves the unit loaded and failed: the name would be taken for
    # good. As runc does, the driver resets it and starts the scope once more.
    fake.units["minins-c1.scope"] = {}
    fake.failed.add("minins-c1.scope")
    mgr = manager(fake)
    mgr.apply(4242)
    members = [m for m, _ in fake.calls]
    assert "ResetFailedUnit" in members and members.count("StartTransientUnit") == 2
    assert fake.units["minins-c1.scope"]["PIDs"] == [4242]
    mgr.destroy()


def test_a_failed_job_is_an_error_and_the_unit_is_stopped_again(fake):
    fake.job_result = "failed"
    with pytest.raises(ContainerError) as e:
        manager(fake, name="c2").apply(4242)
    assert "systemd did not start minins-c2.scope: its job ended 'failed'" in str(e.value)
    assert "minins-c2.scope" not in fake.units
    assert [m for m, _ in fake.calls][-1] == "StopUnit"


def test_a_cgroupfs_failure_after_the_start_stops_the_unit(fake):
    from minins.errors import SyscallError

    mgr = manager(fake, name="c3", cpu_quota=50000)
    write = fake.fs.write

    def failing(path, value):
        if path.endswith("/cpu.max"):
            raise SyscallError(22, "write", path, "injected")
        return write(path, value)
    fake.fs.write = failing
    with pytest.raises(SyscallError) as e:
        mgr.apply(4242)
    assert "cgroups.cpu_quota" in str(e.value) and "injected" in str(e.value)
    assert "minins-c3.scope" not in fake.units  # stopped again
    assert [m for m, _ in fake.calls][-1] == "StopUnit"


def test_systemd_that_does_not_answer_is_a_one_line_error(tmp_path):
    root = str(tmp_path / "cg")
    os.mkdir(root)
    fs = FakeKernelFs(root, v2=CONTROLLERS, v2_only=True)

    def nobody():
        return systemd.Systemd(sock.Connection("unix:path=%s/none" % tmp_path, bus=False))
    mgr = cgroups.new_manager(cgroup_config(driver="systemd", name="c1"), root=root, fs=fs,
                              connect=nobody)
    with pytest.raises(Exception) as e:
        mgr.apply(4242)
    assert str(e.value).startswith("cgroups.driver: systemd does not answer on D-Bus (connect "
                                   "%s/none: ENOENT" % tmp_path)


def test_an_unanswered_idempotent_call_is_tried_again_on_a_new_connection(fake, monkeypatch):
    monkeypatch.setattr(systemd, "CALL_TIMEOUT", 0.5)
    mgr = manager(fake)
    mgr.apply(4242)
    fake.unanswered = {"StopUnit", "Get"}
    mgr.destroy()
    assert "minins-c1.scope" not in fake.units
    assert [m for m, _ in fake.calls][-2:] == ["StopUnit", "StopUnit"]
    fake.unanswered = {"StartTransientUnit"}  # not idempotent: not sent twice
    with pytest.raises(Exception) as e:
        manager(fake, name="c2").apply(4343)
    assert "NoReply" in str(e.value) or "Disconnected" in str(e.value)
    assert [m for m, _ in fake.calls].count("StartTransientUnit") == 2  # c1's and c2's


def test_a_scope_systemd_collected_needs_no_call(fake, monkeypatch):
    mgr = manager(fake)
    mgr.apply(4242)
    scope = mgr.paths["unified"]
    fake.fs.exit("4242")  # the container ended; systemd removes the empty scope
    fake.units.pop("minins-c1.scope")
    fake.fs.rmdir(scope)
    n = len(fake.calls)
    mgr.destroy()
    assert len(fake.calls) == n  # nothing asked


def test_oci_fields_without_a_property_are_written_by_cgroupfs_after_the_scope(fake):
    from minins.config import WeightDevice

    mgr = manager(fake, memory=64 << 20, unified={"memory.low": "4096"},
                  blkio_weight_device=(WeightDevice(major=8, minor=0, weight=1000),))
    mgr.apply(4242)
    props = fake.units["minins-c1.scope"]
    assert props["MemoryMax"] == 64 << 20
    assert not [p for p in props if p.startswith(("IO", "BlockIO")) and p != "IOAccounting"]
    scope = mgr.paths["unified"]
    after = fake.fs.log[fake.fs.log.index(("systemd made", scope, None)) + 1:]
    assert after == [("mkdir", scope, None),
                     ("write", scope + "/io.weight", "8:0 10000"),
                     ("write", scope + "/memory.low", "4096"),
                     ("write", scope + "/cgroup.procs", "4242")]
    # an update that lifts memory lifts swap through systemd too
    mgr.set(cgroup_config(memory=-1, memory_swap=-1))
    assert props["MemoryMax"] == props["MemorySwapMax"] == (1 << 64) - 1
