"""The netlink socket against the real kernel, inside namespaces the tests create: ACKs,
errors with the kernel's errno and text, reply matching, multi-part dumps, sockets opened
inside another namespace."""
import ctypes
import errno
import os

import pytest

from minins.errors import SyscallError
from minins.netlink import codec as c
from minins.netlink import link
from minins.netlink.sock import NetlinkError, Socket, with_field
from netns_util import netns  # noqa: F401  (fixture)

pytestmark = pytest.mark.root


def _own_netns():
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_socket_opened_inside_a_namespace_sees_only_it(netns):
    ns = netns()
    before = _own_netns()
    with ns.socket() as s:
        assert _own_netns() == before  # the thread came back
        link.add_bridge(s, "brsock0")
        names = {l.name for l in link.dump(s)}
    assert names == {"lo", "brsock0"}
    assert ns.links() == {"lo", "brsock0"}
    assert "brsock0" not in os.listdir("/sys/class/net")


def test_thread_in_netns_comes_back_on_an_exception(netns):
    ns = netns()
    before = _own_netns()
    with pytest.raises(RuntimeError):
        with ns.enter():
            assert _own_netns() == ns.inode
            raise RuntimeError("boom")
    assert _own_netns() == before


def test_open_in_a_bad_namespace_fd_raises_and_stays_home():
    before = _own_netns()
    fd = os.open("/", os.O_RDONLY)
    try:
        from minins.netlink.sock import open_in_netns
        with pytest.raises(SyscallError) as exc:
            open_in_netns(fd, "/")
        assert exc.value.errno == errno.EINVAL and exc.value.op == "setns"
    finally:
        os.close(fd)
    assert _own_netns() == before


def test_error_carries_the_kernels_errno_op_link_and_text(netns):
    with netns().socket() as s:
        link.add_bridge(s, "brerr0")
        ctypes.set_errno(errno.EPERM)  # a stale libc errno must not leak into the error
        with pytest.raises(NetlinkError) as exc:
            link.set_mtu(s, "brerr0", 70000)
    e = exc.value
    assert isinstance(e, OSError) and isinstance(e, SyscallError)
    assert e.errno == errno.EINVAL and e.op == "set mtu 70000" and e.path == "brerr0"
    assert "mtu" in (e.detail or "").lower()  # NETLINK_EXT_ACK text
    assert str(e).startswith("set mtu 70000 brerr0: EINVAL (Invalid argument): ")


def test_missing_link_is_enodev(netns):
    with netns().socket() as s:
        for call in (lambda: link.get(s, "nosuch0"), lambda: link.set_up(s, "nosuch0"),
                     lambda: link.delete(s, 999), lambda: link.get(s, 999)):
            with pytest.raises(NetlinkError) as exc:
                call()
            assert exc.value.errno == errno.ENODEV


def test_a_stale_reply_is_never_taken_for_the_next_answer(netns):
    with netns().socket() as s:
        # A request whose (error) answer is left unread on the socket...
        stale = s.send(c.RTM_DELLINK, c.NLM_F_ACK, c.IfInfoMsg(index=4242))
        # ...must not be read as the answer to the next one, which succeeds.
        link.add_bridge(s, "brseq0")
        assert link.get(s, "brseq0").kind == "bridge"
        assert s._seq > stale


def test_sequence_numbers_and_port_are_per_request(netns):
    ns = netns()
    with ns.socket() as s:
        first = s.send(c.RTM_GETLINK, c.NLM_F_ACK, c.IfInfoMsg(index=1))
        [reply] = s.replies(first)
        second = s.send(c.RTM_GETLINK, c.NLM_F_ACK, c.IfInfoMsg(index=1))
        [again] = s.replies(second)
    assert second == first + 1
    assert (reply.seq, again.seq) == (first, second)
    assert reply.pid == again.pid == s.port != 0


class _CountingSocket(Socket):
    datagrams = 0

    def _recv(self, op, name):
        self.datagrams += 1
        return Socket._recv(self, op, name)


def test_a_dump_spanning_many_datagrams_is_read_whole(netns):
    ns = netns()
    with ns.enter():
        s = _CountingSocket()
    with s:
        for i in range(40):
            link.add_veth(s, "dh%d" % i, "dc%d" % i)
        s.datagrams = 0
        names = {l.name for l in link.dump(s)}
        assert s.datagrams > 2  # multi-part: several datagrams, several links in each
    assert names == {"lo"} | {"dh%d" % i for i in range(40)} | {"dc%d" % i for i in range(40)}


def test_with_field_prefixes_the_operation():
    e = with_field(NetlinkError(errno.ENODEV, "look up link", "br9"), "networks[0].bridge")
    assert isinstance(e, NetlinkError) and e.errno == errno.ENODEV
    assert str(e) == "networks[0].bridge: look up link br9: ENODEV (No such device)"
