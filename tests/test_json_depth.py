"""config.parse_json refuses a document nested deeper than MAX_JSON_DEPTH before json sees it:
on Python 3.8 a RecursionError deep in json's C scanner, raised while the stack is deep
already, aborted the whole interpreter ("Cannot recover from stack overflow"; seen in the
fuzz tests). json_depth is checked against a model: the depth of the structure itself."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minins import config
from minins.errors import ConfigError

TEXT = st.text(alphabet='[]{}"\\ab:,', max_size=8)
VALUES = st.recursive(st.none() | st.integers() | TEXT,
                      lambda kids: st.lists(kids, max_size=3)
                      | st.dictionaries(TEXT, kids, max_size=3), max_leaves=12)


def depth(value):
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(VALUES, st.sampled_from(["utf-8", "utf-16", "utf-32", None]))
def test_the_depth_is_the_structures_whatever_the_strings_hold(value, encoding):
    text = json.dumps(value, ensure_ascii=False)
    assert config.json_depth(text if encoding is None else text.encode(encoding)) == depth(value)


@pytest.mark.parametrize("n", [config.MAX_JSON_DEPTH, config.MAX_JSON_DEPTH + 1])
def test_the_limit_is_exact(n):
    doc = "[" * n + "]" * n
    if n <= config.MAX_JSON_DEPTH:
        assert config.json_depth(doc) == n and config.parse_json(doc) is not None
    else:
        with pytest.raises(ConfigError, match="nested too deeply \\(more than %d levels"
                           % config.MAX_JSON_DEPTH):
            config.parse_json(doc)


@pytest.mark.parametrize("deep", ['{"a":' * 200000 + "1" + "}" * 200000,
                                  "[" * 200000, '{"x": ' + "[" * 100000])
def test_a_very_deep_document_is_one_config_error(deep):
    for text in (deep, deep.encode()):
        with pytest.raises(ConfigError) as e:
            config.loads(text)
        assert "\n" not in str(e.value) and "nested too deeply" in str(e.value)


def test_undecodable_bytes_leave_the_answer_to_the_parser():
    assert config.json_depth(b"\xff\xfe\x00") == 0
    with pytest.raises(ConfigError, match="not valid JSON"):
        config.parse_json(b"\xff[[\xfe")
