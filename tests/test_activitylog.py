"""The activity log's lines (store/activitylog.py): written without importing json for the plain
entries most commands make, and read back by json all the same."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from msi_cli.store import activitylog

VALUES = st.one_of(st.text(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))


@given(st.tuples(VALUES, VALUES, VALUES, VALUES, VALUES))
def test_a_line_is_what_json_dumps_writes(values):
    line = activitylog._line(values)
    assert line == json.dumps(dict(zip(activitylog.FIELDS, values))) + "\n"
    assert json.loads(line) == dict(zip(activitylog.FIELDS, values))


def test_plain_and_escaped_values():
    plain = ("2026-01-01T00:00:00Z", "create-identity", "/subscriptions/x/y", "Succeeded", "")
    assert activitylog._line(plain) == json.dumps(dict(zip(activitylog.FIELDS, plain))) + "\n"
    for odd in ('say "hi"', "back\\slash", "tab\there", "caf\u00e9", "\x7f", "\ud800"):
        values = (*plain[:4], odd)
        assert activitylog._line(values) == json.dumps(dict(zip(activitylog.FIELDS, values))) + "\n"
