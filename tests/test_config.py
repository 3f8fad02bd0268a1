"""The container.json model: samples round-trip, and every bad value names its field."""
import glob
import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins import config
from minins.errors import ConfigError
from minins.record import BOOL, INT, STR, ListOf, Optional, _RecordKind

SAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "data",
                                        "libcontainer-samples", "*.json")))


def test_there_are_seven_samples():
    assert len(SAMPLES) == 7


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_loads_validates_and_round_trips(path):
    with open(path) as f:
        raw = json.load(f)
    cfg = config.load(path)
    assert json.loads(config.dumps(cfg)) == raw
    assert config.loads(config.dumps(cfg)) == cfg


def test_sample_values_are_typed():
    cfg = config.load([p for p in SAMPLES if p.endswith("userns.json")][0])
    assert cfg.uid_mappings[0].host_id == 1000 and cfg.uid_mappings[2].size == 9000
    assert cfg.rlimits[0].type == 7 and cfg.rlimits[0].soft == 999
    assert cfg.networks[1].bridge == "docker0"
    assert cfg.has_namespace("NEWUSER") and not cfg.has_namespace("NEWCGROUP")
    assert cfg.cgroups.allowed_devices[0].major_number == -1


def test_records_are_immutable_and_hashable():
    cfg = config.default_config()
    with pytest.raises(AttributeError):
        cfg.hostname = "x"
    assert cfg.replace(hostname="x").hostname == "x" and cfg.hostname == "minins"
    assert hash(cfg) == hash(config.default_config())


def test_default_config_is_valid_and_round_trips():
    cfg = config.default_config()
    config.validate(cfg)
    assert config.loads(config.dumps(cfg)) == cfg


def test_unknown_field_gets_a_hint():
    with pytest.raises(ConfigError) as e:
        config.loads('{"mount_config": {"readonly_f": true}}')
    assert e.value.field == "mount_config.readonly_f"
    assert "did you mean 'readonly_fs'" in str(e.value)


def test_not_json_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        config.loads("{")


# --- hypothesis: a wrong JSON type anywhere names that field ----------------------------------

def _leaf_paths(cls, prefix=""):
    """(path, kind, container builder) for every field reachable from a record class."""
    for f in cls.FIELDS:
        path = "%s.%s" % (prefix, f.name) if prefix else f.name
        yield path, f.kind
        kind = f.kind.item if isinstance(f.kind, Optional) else f.kind
        if isinstance(kind, _RecordKind):
            yield from _leaf_paths(kind.cls, path)
        elif isinstance(kind, ListOf) and isinstance(kind.item, _RecordKind):
            yield from _leaf_paths(kind.item.cls, path + "[0]")
        elif isinstance(kind, ListOf):
            yield path + "[0]", kind.item


FIELD_PATHS = list(_leaf_paths(config.Config))


def _wrong_values(kind):
    base = kind.item if isinstance(kind, Optional) else kind
    if base is STR:
        return st.one_of(st.integers(), st.booleans(), st.lists(st.text(), max_size=2))
    if base is INT:
        return st.one_of(st.text(max_size=3), st.floats(allow_nan=False), st.booleans())
    if base is BOOL:
        return st.one_of(st.integers(), st.text(max_size=3))
    if isinstance(base, ListOf):
        return st.one_of(st.text(max_size=3), st.integers(), st.dictionaries(st.text(), st.none()))
    return st.one_of(st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=2))


def _place(path, value):
    """A JSON document with ``value`` at ``path`` (lists hold one element)."""
    doc = {}
    node = doc
    parts = path.replace("[0]", ".[0]").split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "[0]":
            continue
        nxt = parts[i + 1] if not last else None
        if last:
            node[part] = value
        elif nxt == "[0]":
            if i + 1 == len(parts) - 1:
                node[part] = [value]
                break
            child = {}
            node[part] = [child]
            node = child
        else:
            node = node.setdefault(part, {})
    return doc


@given(st.data())
def test_a_wrong_type_anywhere_names_that_field(data):
    path, kind = data.draw(st.sampled_from(FIELD_PATHS))
    value = data.draw(_wrong_values(kind))
    if isinstance(kind, Optional) and value is None:
        return
    doc = _place(path, value)
    with pytest.raises(ConfigError) as e:
        config.Config.from_json(doc)
    assert e.value.field == path, (doc, str(e.value))
    assert str(e.value).startswith(path + ": ")


@given(st.sampled_from(FIELD_PATHS), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1,
                                              max_size=12))
def test_an_unknown_key_anywhere_names_its_path(entry, key):
    path, kind = entry
    base = kind.item if isinstance(kind, Optional) else kind
    if not isinstance(base, _RecordKind):
        return
    if key in base.cls.field_names():
        return
    doc = _place(path, {key: 1})
    with pytest.raises(ConfigError) as e:
        config.Config.from_json(doc)
    assert e.value.field == "%s.%s" % (path, key)
    assert "unknown field" in e.value.message


# --- semantic checks name their field ----------------------------------------------------------

USERNS = {"namespaces": [{"type": "NEWUSER"}],
          "uid_mappings": [{"container_id": 0, "host_id": 1000, "size": 1}],
          "gid_mappings": [{"container_id": 0, "host_id": 1000, "size": 1}]}


def _with(**kw):
    doc = json.loads(json.dumps(USERNS))
    doc.update(kw)
    return doc


BAD = [
    (_with(uid_mappings=[{"container_id": 0, "host_id": 1000, "size": 1},
                         {"container_id": 5, "host_id": 5, "size": 0}]),
     "uid_mappings[1].size", "must be at least 1"),
    (_with(gid_mappings=[{"container_id": 0, "host_id": 10, "size": 5},
                         {"container_id": 3, "host_id": 100, "size": 5}]),
     "gid_mappings[1]", "overlaps gid_mappings[0] on the container side"),
    (_with(gid_mappings=[]), "gid_mappings", "needs mappings"),
    ({"uid_mappings": [{"container_id": 0, "host_id": 1, "size": 1}]}, "uid_mappings",
     "need a new user namespace"),
    (_with(namespaces=[{"type": "NEWUSER"}, {"type": "NEWFOO"}]), "namespaces[1].type",
     "unknown namespace type"),
    (_with(namespaces=[{"type": "NEWUSER"}, {"type": "NEWUSER"}]), "namespaces[1].type",
     "twice"),
    ({"namespaces": [{"type": "NEWIPC", "path": "proc/1/ns/ipc"}]}, "namespaces[0].path",
     "absolute"),
    ({"capabilities": ["CHOWN", "CAP_NET_RAW", "FLY"]}, "capabilities[2]",
     "unknown capability 'FLY'"),
    ({"capabilities": ["CHOWN"], "ambient_capabilities": ["KILL"]},
     "ambient_capabilities[0]", "must also be in capabilities"),
    ({"rlimits": [{"type": 7, "hard": 10, "soft": 20}]}, "rlimits[0].soft", "must not exceed"),
    ({"rlimits": [{"type": 99, "hard": 1, "soft": 1}]}, "rlimits[0].type", "RLIMIT_"),
    ({"environment": ["PATH=/bin", "BROKEN"]}, "environment[1]", "NAME=VALUE"),
    ({"hostname": "x"}, "hostname", "NEWUTS"),
    ({"namespaces": [{"type": "NEWUTS"}], "hostname": "x" * 65}, "hostname", "64 bytes"),
    ({"working_dir": "tmp"}, "working_dir", "absolute"),
    ({"user": "a:b:c"}, "user", "name|uid"),
    ({"mount_config": {}}, "mount_config", "NEWNS"),
    ({"restrict_sys": True}, "restrict_sys", "NEWNS"),
    ({"namespaces": [{"type": "NEWNS"}],
      "mount_config": {"mounts": [{"type": "overlay", "destination": "/x"}]}},
     "mount_config.mounts[0].type", "unsupported mount type"),
    ({"namespaces": [{"type": "NEWNS"}],
      "mount_config": {"mounts": [{"type": "bind", "source": "/", "destination": "x"}]}},
     "mount_config.mounts[0].destination", "absolute"),
    ({"namespaces": [{"type": "NEWNS"}],
      "mount_config": {"device_nodes": [{"type": 99, "path": "/dev/null",
                                         "major_number": -1}]}},
     "mount_config.device_nodes[0].major_number", "no wildcard"),
    ({"namespaces": [{"type": "NEWNS"}],
      "mount_config": {"device_nodes": [{"type": 99, "path": "/etc/passwd"}]}},
     "mount_config.device_nodes[0].path", "under /dev"),
    ({"networks": [{"type": "loopback"}]}, "networks", "NEWNET"),
    ({"additional_groups": [1, -2]}, "additional_groups[1]", "within"),
]


@pytest.mark.parametrize("doc,field,words", BAD, ids=[b[1] for b in BAD])
def test_bad_values_name_their_field(doc, field, words):
    with pytest.raises(ConfigError) as e:
        config.loads(json.dumps(doc))
    assert e.value.field == field
    assert words in e.value.message, str(e.value)
    assert "\n" not in str(e.value)


@given(st.integers(-10, 10), st.integers(0, 2 ** 32))
def test_generated_mapping_sizes(size, host):
    doc = _with(uid_mappings=[{"container_id": 0, "host_id": host, "size": size}])
    if size < 1:
        with pytest.raises(ConfigError) as e:
            config.loads(json.dumps(doc))
        assert e.value.field == "uid_mappings[0].size"
    elif host + size - 1 > 2 ** 32 - 2:
        with pytest.raises(ConfigError) as e:
            config.loads(json.dumps(doc))
        assert e.value.field.startswith("uid_mappings[0].")
    else:
        assert config.loads(json.dumps(doc)).uid_mappings[0].size == size
