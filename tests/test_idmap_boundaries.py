"""ID mapping at its exact edges: the last valid id, one past it, adjacent and overlapping
ranges by a single id, 340 and 341 lines, gid 0, and the parser's line numbers.

Each example pins one boundary of user_namespaces(7) / kernel/user_namespace.c ``map_write``
so that a comparison or a constant moved by one in minins.idmap fails here.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins import idmap
from minins.config import Config, Namespace
from minins.errors import ConfigError
from minins.idmap import IDMap

TOP = 2 ** 32 - 2  # the largest id a map may name; 2**32 - 1 is (u32)-1, "no id"


def m(c, h, n):
    return IDMap(container_id=c, host_id=h, size=n)


def rejected(maps, field="uid_mappings"):
    with pytest.raises(ConfigError) as e:
        idmap.validate_mappings(maps, field)
    return e.value.field, e.value.message


def test_max_id_is_the_kernels():
    assert idmap.MAX_ID == 4294967294
    assert idmap.MAX_LINES == 340


@pytest.mark.parametrize("side", ["container_id", "host_id"])
def test_the_last_id_is_valid_and_the_next_is_not(side):
    other = "host_id" if side == "container_id" else "container_id"
    idmap.validate_mappings([IDMap(**{side: TOP, other: 0, "size": 1})])
    assert rejected([IDMap(**{side: TOP + 1, other: 0, "size": 1})]) == (
        "uid_mappings[0].%s" % side, "must be within 0..4294967294")
    assert rejected([IDMap(**{side: -1, other: 0, "size": 1})]) == (
        "uid_mappings[0].%s" % side, "must be within 0..4294967294")
    idmap.validate_mappings([IDMap(**{side: 0, other: 0, "size": 1})])


@pytest.mark.parametrize("side", ["container_id", "host_id"])
def test_a_range_may_end_on_the_last_id_but_not_past_it(side):
    other = "host_id" if side == "container_id" else "container_id"
    idmap.validate_mappings([IDMap(**{side: TOP - 9, other: 0, "size": 10})])
    assert rejected([IDMap(**{side: TOP - 9, other: 0, "size": 11})], "gid_mappings") == (
        "gid_mappings[0].size",
        "the range %s %d..%d goes past %d" % (side, TOP - 9, TOP + 1, TOP))


def test_size_one_is_the_smallest():
    idmap.validate_mappings([m(0, 0, 1)])
    assert rejected([m(0, 0, 0)]) == ("uid_mappings[0].size", "must be at least 1")
    assert rejected([m(0, 0, 1), m(5, 5, -1)]) == ("uid_mappings[1].size",
                                                   "must be at least 1")


def test_a_whole_32_bit_range_from_zero():
    idmap.validate_mappings([m(0, 0, TOP + 1)])
    assert rejected([m(0, 0, TOP + 2)])[0] == "uid_mappings[0].size"
    assert rejected([m(1, 0, TOP + 1)])[0] == "uid_mappings[0].size"


def test_340_lines_pass_341_do_not():
    maps = [m(i, 1000 + i, 1) for i in range(341)]
    idmap.validate_mappings(maps[:340])
    assert rejected(maps) == ("uid_mappings", "at most 340 mappings are allowed, not 341")


@pytest.mark.parametrize("side", ["container", "host"])
def test_adjacent_ranges_do_not_overlap_but_one_shared_id_does(side):
    if side == "container":
        touching = [m(0, 100, 5), m(5, 200, 5)]
        sharing = [m(0, 100, 5), m(4, 200, 5)]
    else:
        touching = [m(0, 100, 5), m(50, 105, 5)]
        sharing = [m(0, 100, 5), m(50, 104, 5)]
    idmap.validate_mappings(touching)
    idmap.validate_mappings(touching[::-1])
    assert rejected(sharing) == ("uid_mappings[1]", "overlaps uid_mappings[0] on the %s side"
                                 % side)
    # listed the other way round, the later line is still the one named
    assert rejected(sharing[::-1]) == ("uid_mappings[1]",
                                       "overlaps uid_mappings[0] on the %s side" % side)


def test_the_line_named_is_the_later_of_the_two_whatever_the_id_order():
    maps = [m(100, 0, 1), m(0, 10, 1), m(7, 20, 3), m(9, 30, 1)]
    assert rejected(maps, "gid_mappings") == ("gid_mappings[3]",
                                              "overlaps gid_mappings[2] on the container side")


def test_identical_starts_overlap():
    assert rejected([m(3, 0, 1), m(3, 9, 1)])[0] == "uid_mappings[1]"
    assert rejected([m(0, 3, 1), m(9, 3, 1)])[1].endswith("host side")


@given(st.integers(0, 50), st.integers(1, 20), st.integers(0, 80))
def test_translation_edges(start, size, host):
    maps = [m(start, host, size)]
    assert idmap.host_id_from_mapping(start, maps) == host
    assert idmap.host_id_from_mapping(start + size - 1, maps) == host + size - 1
    assert idmap.host_id_from_mapping(start + size, maps) is None
    assert idmap.host_id_from_mapping(start - 1, maps) is None
    assert idmap.container_id_from_mapping(host, maps) == start
    assert idmap.container_id_from_mapping(host + size - 1, maps) == start + size - 1
    assert idmap.container_id_from_mapping(host + size, maps) is None
    assert idmap.container_id_from_mapping(host - 1, maps) is None


def test_translation_uses_the_first_covering_line():
    maps = [m(0, 500, 10), m(0, 900, 10)]  # invalid as a set, but translation is first-wins
    assert idmap.host_id_from_mapping(3, maps) == 503
    assert idmap.container_id_from_mapping(905, maps) == 5


def userns(uids, gids, extra=()):
    return Config(namespaces=(Namespace(type="NEWUSER"),) + tuple(extra),
                  uid_mappings=tuple(uids), gid_mappings=tuple(gids))


def test_gid_0_mapped_to_host_0_is_root_not_missing():
    cfg = userns([m(0, 0, 1)], [m(0, 0, 1)])
    assert idmap.get_host_root_uid(cfg) == 0
    assert idmap.get_host_root_gid(cfg) == 0


def test_gid_0_must_be_covered():
    cfg = userns([m(0, 1000, 1)], [m(1, 0, 65536)])
    assert idmap.get_host_root_uid(cfg) == 1000
    with pytest.raises(ConfigError) as e:
        idmap.get_host_root_gid(cfg)
    assert e.value.field == "gid_mappings"
    assert "no mapping covers gid 0 (root)" in e.value.message


def test_no_mappings_name_the_kind():
    cfg = userns([], [m(0, 5, 1)])
    with pytest.raises(ConfigError) as e:
        idmap.get_host_root_uid(cfg)
    assert (e.value.field, "no uid mappings" in e.value.message) == ("uid_mappings", True)
    assert idmap.get_host_root_gid(cfg) == 5


def test_other_namespaces_alone_mean_host_root():
    cfg = Config(namespaces=(Namespace(type="NEWUTS"), Namespace(type="NEWNS")),
                 uid_mappings=(m(0, 1000, 1),), gid_mappings=(m(0, 1000, 1),))
    assert idmap.get_host_root_uid(cfg) == 0
    assert idmap.get_host_root_gid(cfg) == 0
    assert idmap.get_host_root_uid(userns([m(0, 1000, 1)], [m(0, 7, 1)],
                                          [Namespace(type="NEWUTS")])) == 1000


def test_render_each_field_in_place():
    assert idmap.render([m(1, 2, 3), m(0, 4294967294, 1)]) == "1 2 3\n0 4294967294 1\n"
    assert idmap.render([]) == ""


@pytest.mark.parametrize("text,line", [
    ("0 0\n", 1), ("0 0 1 1\n", 1), ("0 0 1\n-1 0 1\n", 2), ("0 0 1\n\n1 1 x\n", 3),
    ("0 0 1.5\n", 1), ("0 +1 1\n", 1),
])
def test_parse_names_the_bad_line(text, line):
    with pytest.raises(ValueError) as e:
        idmap.parse(text)
    assert str(e.value).startswith("id map line %d: expected three unsigned integers" % line)


def test_parse_skips_blank_lines_and_keeps_order():
    assert idmap.parse("\n  \n0 1000 1\n\t\n1 100000 65536\n") == (
        m(0, 1000, 1), m(1, 100000, 65536))
    assert idmap.parse("") == ()


def test_an_empty_line_is_all_zeros_and_writes_every_field():
    empty = IDMap()
    assert (empty.container_id, empty.host_id, empty.size) == (0, 0, 0)
    assert empty.to_json() == {"container_id": 0, "host_id": 0, "size": 0}
    assert IDMap.from_json({"size": 3}) == m(0, 0, 3)
