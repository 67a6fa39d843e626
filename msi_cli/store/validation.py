"""Checking a state document's values one by one: the error type that locates a bad value, the
typed reader that raises it, and the value rules (GUIDs, instants, ARM ids, names).

Every error carries the value's path in the document (`("resources", 3, "type")`), which the
state file turns into a line number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msi_cli.core import arm
from msi_cli.core.arm import rx
from msi_cli.errors import MsiError

# A document, or one record of it: TOML-shaped data, checked value by value as it is read.
Doc = dict[str, Any]
# Where a value sits in a document: keys and array indexes, ("resources", 3, "type").
DocPath = tuple[str | int, ...]

_ISO = r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z"  # what valid_instant accepts, checked without a regex
_DIGITS = frozenset("0123456789")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Simulated time stays between these instants: every date msi writes (certificates run 90 days
# past now) must still be a valid X.509 and JWT time, and a 64-bit time_t.
EARLIEST_YEAR = 1970
LATEST = 221845392000  # 9000-01-01T00:00:00Z: no stored time may reach it
# The simulated now stays a year short, so certificates and keys it makes fit: clock.LATEST,
# 8999-01-01T00:00:00Z (a constant: parsing it at import would cost every command the strptime import).
LATEST_NOW = 221813856000

KID = r"[A-Za-z0-9_-]{27}"  # a signing or issuer key's kid (base64url SHA-1)
THUMBPRINT = r"[0-9A-F]{40}"  # an identity certificate's thumbprint (hex SHA-1)
UNPRINTABLE = arm._UNPRINTABLE


class InvalidDocument(Exception):
    """The document breaks the schema. `path` locates the value: ("resources", 3, "type")."""

    def __init__(self, path: DocPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def valid_instant(value: str) -> bool:
    """An ISO instant as msi writes it that names a real second (no 30 February, no hour 24),
    between 1970 and 9000."""
    if not (len(value) == 20 and value[4] == value[7] == "-" and value[10] == "T" and value[13] == value[16] == ":"
            and value[19] == "Z" and _DIGITS.issuperset(value[:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19])):
        return False  # what _ISO matches, without compiling it
    year, month, day, hour, minute, second = (int(value[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19)))
    if not (EARLIEST_YEAR <= year < 9000 and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= (_DAYS[month - 1] if month != 2 or leap else 28)


def shown(value: str) -> str:
    """A value as an error message quotes it: at most 80 characters."""
    return value if len(value) <= 80 else value[:77] + "..."


def arm_id(value: str) -> bool:
    """A printable ARM id (subscription, resource group or resource scope)."""
    return arm.parse_id(value) is not None and not arm.unprintable(value)


def alternative_name(value: str) -> bool:
    return 0 < len(value) <= 1024 and not arm.unprintable(value)


class Reader:
    """Typed access to one record, raising InvalidDocument with the value's path."""

    __slots__ = ("rec", "path")
    rec: Doc
    path: DocPath

    def __init__(self, rec: object, path: DocPath) -> None:
        if not isinstance(rec, dict):
            raise InvalidDocument(path, "expected a table")
        self.rec = rec
        self.path = path

    def fail(self, key: str | int, message: str) -> InvalidDocument:
        """The error for the value at `key` of this record."""
        return InvalidDocument(self.path + (key,), message)

    def string(self, key: str, pattern: str | None = None) -> str:
        value = self.rec.get(key)
        if not isinstance(value, str):
            raise self.fail(key, f"'{key}' must be a string" if key in self.rec else f"'{key}' is missing")
        if pattern is not None and not rx(pattern).fullmatch(value):
            raise self.fail(key, f"'{key}' has an invalid value '{shown(value)}'")
        return value

    def guid(self, key: str) -> str:
        value = self.string(key)
        if not (arm.is_guid(value) and value == value.lower()):
            raise self.fail(key, f"'{key}' must be a lower-case GUID, not '{shown(value)}'")
        return value

    def optional_guid(self, key: str) -> str | None:
        """A GUID, or None when the key is absent."""
        return None if self.rec.get(key) is None else self.guid(key)

    def time(self, key: str) -> str:
        value = self.string(key)
        if not valid_instant(value):
            raise self.fail(key, f"'{key}' is not a real UTC time between 1970 and 9000 (YYYY-MM-DDTHH:MM:SSZ): '{shown(value)}'")
        return value

    def text(self, key: str, what: str, limit: int) -> str:
        """A display name: 1-`limit` printable characters."""
        value = self.string(key)
        self.follows(key, arm.validate_display_name, what, value, limit)
        return value

    def strings(self, key: str, check: Callable[[str], bool] | None = None) -> list[str]:
        value = self.rec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"'{key}' must be a list of strings")
        if check is not None:
            for v in value:
                if not check(v):
                    raise self.fail(key, f"'{key}' holds an invalid value '{shown(v)}'")
        return list(value)

    def ordered(self, *keys: str) -> None:
        """The named times do not go backwards (created <= valid until, start <= end)."""
        values = [self.rec[k] for k in keys]
        if values != sorted(values):
            raise self.fail(keys[-1], f"'{keys[-1]}' comes before '{keys[0]}'")

    def follows(self, key: str, rule: Callable[..., None], *args: object) -> None:
        """Apply one of Azure's naming rules (msi_cli.core.arm) to a field, reporting at it."""
        try:
            rule(*args)
        except MsiError as exc:
            raise self.fail(key, exc.message) from None

    def tables(self, key: str) -> list[Reader]:
        value = self.rec.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"'{key}' must be a list of tables")
        return [Reader(v, self.path + (key, n)) for n, v in enumerate(value)]


def collection(doc: Doc, name: str) -> list[Reader]:
    """Readers for the records of one collection (an absent one is empty)."""
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise InvalidDocument((name,), f"'{name}' must be an array of tables")
    return [Reader(rec, (name, n)) for n, rec in enumerate(value)]
