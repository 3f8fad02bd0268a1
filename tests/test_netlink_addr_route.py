"""Addresses and routes: pure parsing (hypothesis), then the real kernel inside a namespace the
test creates, read back by a netlink dump and by ``ip -j addr``/``ip -j route``."""
import errno
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins.errors import ConfigError
from minins.netlink import addr, link, route
from minins.netlink import codec as c
from minins.netlink.sock import NetlinkError
from netns_util import netns  # noqa: F401  (fixture)

# --- pure ------------------------------------------------------------------------------------


@given(st.binary(min_size=4, max_size=4), st.integers(0, 32))
def test_ipv4_cidr_round_trip(packed, plen):
    text = "%s/%d" % (socket.inet_ntop(socket.AF_INET, packed), plen)
    assert addr.parse_cidr(text) == (c.AF_INET, packed, plen)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 128))
def test_ipv6_cidr_round_trip(packed, plen):
    text = "%s/%d" % (socket.inet_ntop(socket.AF_INET6, packed), plen)
    assert addr.parse_cidr(text) == (c.AF_INET6, packed, plen)


@pytest.mark.parametrize("bad", ["10.0.0.1", "10.0.0.1/33", "fd00::1/129", "10.1/8",
                                 "10.0.0.256/24", "10.0.0.1/-1", "10.0.0.1/ 8", "10.0.0.1/24/1",
                                 "fe80::1%eth0/64", "", None, 10, "localhost/8"])
def test_bad_cidrs_are_config_errors(bad):
    with pytest.raises(ConfigError) as exc:
        addr.parse_cidr(bad, "networks[0].address")
    assert exc.value.field == "networks[0].address"


@given(st.binary(min_size=4, max_size=4), st.integers(0, 32))
def test_ipv4_broadcast(packed, plen):
    brd = addr.broadcast(packed, plen)
    if plen >= 31:
        assert brd is None
    else:
        value, b = int.from_bytes(packed, "big"), int.from_bytes(brd, "big")
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        assert b & mask == value & mask and b | mask == 0xFFFFFFFF


def test_route_families_must_agree():
    with pytest.raises(ConfigError, match="mixes IPv6 destination and IPv4 gateway"):
        route._plan("fd00::/64", "10.0.0.1", None, None, "route")
    with pytest.raises(ConfigError):
        route._plan(None, None, None, None, "route")
    assert route._plan("default", "fd00::1", None, None, "r")[0] == c.AF_INET6


# --- kernel ----------------------------------------------------------------------------------


@pytest.fixture
def ns(netns):
    return netns()


@pytest.fixture
def s(ns):
    with ns.socket() as sock:
        link.add_veth(sock, "ara", "arb", up=True)
        link.set_up(sock, "arb")
        yield sock


def _ip_addrs(ns, dev):
    out = ns.ip("addr", "show", "dev", dev)
    if out is None:
        return None
    return {"%s/%d" % (a["local"], a["prefixlen"]): a for a in out[0]["addr_info"]}


@pytest.mark.root
def test_ipv4_address_add_list_delete(ns, s):
    addr.add(s, "ara", "198.18.5.2/24")
    [a] = addr.dump(s, c.AF_INET, "ara")
    assert (a.cidr, a.broadcast, a.index) == ("198.18.5.2/24", "198.18.5.255", link.index(s,
                                                                                        "ara"))
    ip = _ip_addrs(ns, "ara")
    if ip is not None:
        assert ip["198.18.5.2/24"]["broadcast"] == "198.18.5.255"
    with pytest.raises(NetlinkError) as exc:
        addr.add(s, "ara", "198.18.5.2/24")
    assert exc.value.errno == errno.EEXIST and exc.value.path == "ara"
    addr.delete(s, "ara", "198.18.5.2/24")
    assert addr.dump(s, c.AF_INET, "ara") == []
    with pytest.raises(NetlinkError) as exc:
        addr.delete(s, "ara", "198.18.5.2/24")
    assert exc.value.errno == errno.EADDRNOTAVAIL


@pytest.mark.root
def test_ipv6_address_without_dad(ns, s):
    idx = link.index(s, "ara")
    addr.add(s, idx, "fd00:5::2/64", nodad=True)
    [a] = [x for x in addr.dump(s, c.AF_INET6, idx) if x.cidr == "fd00:5::2/64"]
    assert a.flags & c.IFA_F_NODAD and a.flags & c.IFA_F_PERMANENT
    ip = _ip_addrs(ns, "ara")
    if ip is not None:
        assert "fd00:5::2/64" in ip and not ip["fd00:5::2/64"].get("tentative")
    addr.delete(s, idx, "fd00:5::2/64")
    assert "fd00:5::2/64" not in {x.cidr for x in addr.dump(s, c.AF_INET6, idx)}


@pytest.mark.root
def test_routes_with_gateway_source_and_interface(ns, s):
    addr.add(s, "ara", "198.18.6.2/24")
    addr.add(s, "ara", "fd00:6::2/64", nodad=True)
    route.add(s, "198.19.0.0/16", gateway="198.18.6.1", src="198.18.6.2", oif="ara")
    route.add(s, "198.19.7.0/24", oif="ara")
    route.add_default(s, "198.18.6.1", "ara")
    route.add_default(s, "fd00:6::1", "ara")
    idx = link.index(s, "ara")
    got = {r.destination: r for r in route.dump(s)}
    r = got["198.19.0.0/16"]
    assert (r.gateway, r.prefsrc, r.oif, r.protocol, r.scope) == (
        "198.18.6.1", "198.18.6.2", idx, c.RTPROT_BOOT, c.RT_SCOPE_UNIVERSE)
    assert got["198.19.7.0/24"].scope == c.RT_SCOPE_LINK and got["198.19.7.0/24"].gateway is None
    assert got["default"].gateway == "198.18.6.1"
    v6 = {r.destination: r for r in route.dump(s, c.AF_INET6)}
    assert v6["default"].gateway == "fd00:6::1" and v6["default"].oif == idx
    ip = ns.ip("route", "show")
    if ip is not None:
        seen = {x["dst"]: x for x in ip}
        assert seen["198.19.0.0/16"]["gateway"] == "198.18.6.1"
        assert seen["198.19.0.0/16"]["prefsrc"] == "198.18.6.2"
        assert seen["default"]["dev"] == "ara"
    route.delete(s, "198.19.0.0/16")
    route.delete(s, None, family=c.AF_INET6)
    assert "198.19.0.0/16" not in {r.destination for r in route.dump(s)}
    assert "default" not in {r.destination for r in route.dump(s, c.AF_INET6)}
    with pytest.raises(NetlinkError) as exc:
        route.delete(s, "198.19.0.0/16")
    assert exc.value.errno == errno.ESRCH


@pytest.mark.root
def test_route_errors_carry_the_kernels_errno(ns, s):
    with pytest.raises(NetlinkError) as exc:
        route.add_default(s, "203.0.113.1", "ara")  # no address on the link reaches it
    assert exc.value.errno == errno.ENETUNREACH
    assert exc.value.op == "add route default via 203.0.113.1" and exc.value.path == "ara"
    route.add(s, "198.19.9.0/24", oif="ara")
    with pytest.raises(NetlinkError) as exc:
        route.add(s, "198.19.9.0/24", oif="ara")
    assert exc.value.errno == errno.EEXIST
    with pytest.raises(NetlinkError) as exc:
        route.add(s, "198.19.10.0/24", oif="nosuch")
    assert exc.value.errno == errno.ENODEV
