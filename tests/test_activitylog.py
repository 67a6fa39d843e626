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


def test_last_n_is_the_last_n_entries_whatever_lines_are_not_entries(tmp_path):
    """Damaged lines do not count: --last 2 shows two entries, reading further back for them, and
    warns only of the damaged lines among or after what it shows."""
    from msi_cli.errors import WARNINGS

    path = tmp_path / "activity.jsonl"
    good = [{"time": f"2026-01-0{i}T00:00:00Z", "operation": f"op{i}", "target": "t", "outcome": "Succeeded", "detail": ""}
            for i in range(1, 6)]
    lines = [json.dumps(good[0]), "old junk", *map(json.dumps, good[1:4]), "junk", json.dumps(good[4]), "junk", "junk"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    WARNINGS.clear()
    assert activitylog.entries(path, last=2) == good[3:]
    assert len(WARNINGS) == 1 and "(and 2 more)" in WARNINGS[0]  # the three junk lines after good[3], not "old junk"
    WARNINGS.clear()
    assert activitylog.entries(path, last=5) == good
    assert activitylog.entries(path, last=50) == good
    assert activitylog.entries(path, last=0) == []
    WARNINGS.clear()
