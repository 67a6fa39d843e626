"""cli/jsonout.dumps prints exactly what json.dumps(indent=2, ensure_ascii=False) prints."""

from __future__ import annotations

import json
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples

from msi_cli.cli import jsonout

_leaves = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4) | st.tuples(inner),
    max_leaves=40,
)


def _reference(data):
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)


@settings(max_examples=examples(400), deadline=None)
@given(_values)
def test_the_same_text_as_json_dumps(data):
    assert jsonout.dumps(data) == _reference(data)


class Colour(str, Enum):
    red = "red"


@pytest.mark.parametrize("data", [
    {}, [], {"a": {}}, {"a": []}, [[], [{}]], "\u2028\x7f\ud800", {1: "int key"}, {None: 1, True: 2},
    {"enum": Colour.red}, [1.5, 2e300], {"deep": [[[[["x"]]]]]}, -0, 10**40,
])
def test_unusual_values_match_too(data):
    assert jsonout.dumps(data) == _reference(data)


def test_what_json_refuses_is_refused():
    with pytest.raises(ValueError):
        jsonout.dumps({"x": float("nan")})
    with pytest.raises(TypeError):
        jsonout.dumps({"x": object()})


def test_keys_are_written_the_same_once_remembered_and_past_the_limit():
    """The writer remembers how a key is written, up to a limit: the text never changes."""
    many = {f"k{i}\u00e9\"": i for i in range(jsonout._MAX_KEYS + 50)}
    for _ in range(2):
        assert jsonout.dumps([many, {"": "x", 1: "int key"}]) == _reference([many, {"": "x", 1: "int key"}])
    assert len(jsonout._KEYS) <= jsonout._MAX_KEYS
