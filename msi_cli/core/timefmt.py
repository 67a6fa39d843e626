"""Simulated time: parsing durations and instants, and ISO strings in UTC.

The clock is real time plus an offset kept in the state, so simulated time flows like real time
(tokens handed to real SDK clients expire when they expect) and can be moved on for demos.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import datetime, UTC

from msi_cli.errors import InvalidArgument

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = r"([0-9]+)([smhdw])"  # ASCII digits only (\d takes '١٢'); compiled when first used
DAY = 86400
# Simulated time stays between these: outside, dates do not fit the formats (certificates, ISO 8601
# with four-digit years); the upper bound is a year short of 9000 so certificates and keys made then fit.
EARLIEST = "1970-01-01T00:00:00Z"
LATEST = "8999-01-01T00:00:00Z"


def real_now() -> int:
    return int(time.time())


@functools.lru_cache(maxsize=256)  # a bulk change stamps tens of thousands of records and log entries with a few instants
def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def epoch(value: str) -> int:
    return int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def parse_duration(text: str) -> int:
    """`45d`, `1h30m`, `90s`, `2w` -> seconds. A leading `-` goes back in time."""
    body = text.strip()
    sign = 1
    if body.startswith("-"):
        sign, body = -1, body[1:]
    parts = re.findall(_DURATION, body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise InvalidArgument(f"invalid duration '{text}'", hint="use a number with a unit s, m, h, d or w, e.g. 45d or 1h30m")
    return sign * sum(int(n) * _UNITS[u] for n, u in parts)


def parse_instant(text: str) -> int:
    """An ISO 8601 date or date-time; a time without a zone is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"invalid time '{text}'", hint="use ISO 8601, e.g. 2027-01-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
