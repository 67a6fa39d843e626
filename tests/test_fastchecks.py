"""Checks that run on every save answer without compiling a regex (core/arm.py, store/validation.py),
and answer exactly as the patterns they stand for."""

from __future__ import annotations

import re

from hypothesis import example, given, strategies as st

from msi_cli.core import arm
from msi_cli.store import validation

HEXISH = st.text(alphabet="0123456789abcdefABCDEFgG-x\u0660", min_size=30, max_size=40)
TIMEISH = st.text(alphabet="0123456789-TZ:\u0661 ", min_size=18, max_size=22)


@given(st.one_of(HEXISH, st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.text()))
@example("12345678-1234-1234-1234-1234567890ab")
@example("12345678-1234-1234-1234-1234567890a\u0660")
def test_is_guid_is_the_guid_rule(value):
    assert arm.is_guid(value) == (re.fullmatch(arm._GUID_RULE, value) is not None)


@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=127))))
@example("tab\there")
@example("del\x7f")
@example("c1\x85")
@example("bidi\u202e")
@example("lone\ud800")
@example("caf\u00e9")
def test_unprintable_is_the_pattern(value):
    assert arm.unprintable(value) == (re.search(arm._UNPRINTABLE, value) is not None)


@given(st.one_of(TIMEISH, st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))))
@example("2026-02-30T00:00:00Z")
@example("2026-01-01T24:00:00Z")
@example("2026-01-01T00:00:00Z")
@example("\u0662026-01-01T00:00:00Z")
def test_valid_instant_reads_what_the_iso_pattern_matches(value):
    m = re.fullmatch(validation._ISO, value, re.ASCII)
    if m is None:
        assert not validation.valid_instant(value)
        return
    year, month, day, hour, minute, second = map(int, m.groups())
    import calendar

    real = (1970 <= year < 9000 and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60
            and 1 <= day <= calendar.monthrange(year, month)[1])
    assert validation.valid_instant(value) == real
