"""Properties of the ID-mapping arithmetic, checked against a brute-force reference."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minins
from minins import idmap
from minins.config import Config, Namespace
from minins.errors import ConfigError
from minins.idmap import IDMap

SMALL = 200  # a small id universe keeps the brute force exact and fast


def brute_host(cid, maps):
    table = {}
    for m in maps:
        for k in range(m.size):
            table.setdefault(m.container_id + k, m.host_id + k)
    return table.get(cid)


def mapping(limit=SMALL):
    return st.builds(IDMap, container_id=st.integers(0, limit), host_id=st.integers(0, limit),
                     size=st.integers(1, 20))


@st.composite
def disjoint_sets(draw, max_lines=8, limit=SMALL):
    """Mapping sets that overlap on neither side: cut both id lines into ordered pieces."""
    n = draw(st.integers(0, max_lines))
    sizes = [draw(st.integers(1, 15)) for _ in range(n)]
    gaps_c = [draw(st.integers(0, 10)) for _ in range(n)]
    gaps_h = [draw(st.integers(0, 10)) for _ in range(n)]
    order = draw(st.permutations(list(range(n))))
    cpos, hpos, cstarts, hstarts = 0, 0, [], []
    for i in range(n):
        cpos += gaps_c[i]
        cstarts.append(cpos)
        cpos += sizes[i]
    for i in order:
        hpos += gaps_h[i]
        hstarts.append((i, hpos))
        hpos += sizes[i]
    hmap = dict(hstarts)
    return [IDMap(container_id=cstarts[i], host_id=hmap[i], size=sizes[i]) for i in range(n)]


@given(disjoint_sets(), st.integers(-5, 400))
def test_forward_agrees_with_brute_force(maps, cid):
    assert idmap.host_id_from_mapping(cid, maps) == brute_host(cid, maps)


@given(disjoint_sets(), st.integers(0, 400))
def test_reverse_inverts_forward(maps, cid):
    host = idmap.host_id_from_mapping(cid, maps)
    if host is None:
        return
    assert idmap.container_id_from_mapping(host, maps) == cid
    assert idmap.host_id_from_mapping(idmap.container_id_from_mapping(host, maps), maps) == host


@given(disjoint_sets(), st.integers(0, 400), st.randoms())
def test_order_does_not_matter(maps, cid, rnd):
    shuffled = list(maps)
    rnd.shuffle(shuffled)
    assert idmap.host_id_from_mapping(cid, shuffled) == idmap.host_id_from_mapping(cid, maps)
    assert (idmap.container_id_from_mapping(cid, shuffled)
            == idmap.container_id_from_mapping(cid, maps))


@given(disjoint_sets())
def test_ids_outside_every_range_give_none(maps):
    top = max([m.container_id + m.size for m in maps] + [0])
    assert idmap.host_id_from_mapping(top, maps) is None
    assert idmap.host_id_from_mapping(-1, maps) is None
    htop = max([m.host_id + m.size for m in maps] + [0])
    assert idmap.container_id_from_mapping(htop, maps) is None


def overlaps(a, b, side):
    sa, sb = getattr(a, side), getattr(b, side)
    return sa < sb + b.size and sb < sa + a.size


@given(st.lists(mapping(), max_size=6))
def test_overlapping_sets_are_rejected_and_others_accepted(maps):
    bad = any(overlaps(a, b, side) for i, a in enumerate(maps) for b in maps[i + 1:]
              for side in ("container_id", "host_id"))
    if bad:
        with pytest.raises(ConfigError) as e:
            idmap.validate_mappings(maps, "uid_mappings")
        assert "overlaps" in str(e.value) and str(e.value).startswith("uid_mappings[")
    else:
        idmap.validate_mappings(maps, "uid_mappings")


@given(disjoint_sets())
def test_disjoint_sets_are_valid(maps):
    idmap.validate_mappings(maps)


@given(disjoint_sets())
def test_render_then_parse_gives_the_same_set(maps):
    text = idmap.render(maps)
    assert text.count("\n") == len(maps)
    assert list(idmap.parse(text)) == maps


def test_render_is_the_kernel_format():
    maps = [IDMap(container_id=0, host_id=1000, size=1), IDMap(container_id=1, host_id=100000,
                                                               size=65536)]
    assert idmap.render(maps) == "0 1000 1\n1 100000 65536\n"
    # the kernel pads what it shows back; parse accepts that too
    assert idmap.parse("         0       1000          1\n") == (maps[0],)


@pytest.mark.parametrize("bad,field,words", [
    (IDMap(container_id=0, host_id=0, size=0), "uid_mappings[0].size", "at least 1"),
    (IDMap(container_id=-1, host_id=0, size=1), "uid_mappings[0].container_id", "within"),
    (IDMap(container_id=0, host_id=2 ** 32 - 1, size=1), "uid_mappings[0].host_id", "within"),
    (IDMap(container_id=2 ** 32 - 2, host_id=0, size=2), "uid_mappings[0].size", "goes past"),
])
def test_bad_lines_name_their_field(bad, field, words):
    with pytest.raises(ConfigError) as e:
        idmap.validate_mappings([bad])
    assert e.value.field == field and words in e.value.message


def test_largest_valid_ids():
    idmap.validate_mappings([IDMap(container_id=2 ** 32 - 2, host_id=2 ** 32 - 2, size=1)])
    idmap.validate_mappings([IDMap(container_id=0, host_id=0, size=2 ** 32 - 1)])


def test_at_most_340_lines():
    maps = [IDMap(container_id=i, host_id=i, size=1) for i in range(341)]
    idmap.validate_mappings(maps[:340])
    with pytest.raises(ConfigError, match="at most 340"):
        idmap.validate_mappings(maps)


def userns_config(uids=(), gids=()):
    return Config(namespaces=(Namespace(type="NEWUSER"),), uid_mappings=tuple(uids),
                  gid_mappings=tuple(gids))


def test_host_root_without_user_namespace_is_zero():
    assert minins.get_host_root_uid(Config()) == 0
    assert minins.get_host_root_gid(Config()) == 0


@given(disjoint_sets())
def test_host_root_follows_the_mapping_of_zero(maps):
    cfg = userns_config(maps, maps)
    expected = brute_host(0, maps)
    if expected is None:
        with pytest.raises(ConfigError, match="root" if maps else "no uid mappings"):
            minins.get_host_root_uid(cfg)
    else:
        assert minins.get_host_root_uid(cfg) == expected
        assert minins.get_host_root_gid(cfg) == expected


def test_host_root_with_user_namespace_and_no_mappings_is_an_error():
    with pytest.raises(ConfigError, match="no uid mappings"):
        minins.get_host_root_uid(userns_config())
    with pytest.raises(ConfigError, match="no gid mappings"):
        minins.get_host_root_gid(userns_config([IDMap(container_id=0, host_id=5, size=1)]))


def test_exported_names():
    assert minins.host_id_from_mapping(3, [IDMap(container_id=0, host_id=100, size=10)]) == 103
    assert minins.IDMap is IDMap
