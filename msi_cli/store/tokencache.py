"""The platform's token cache: responses by (identity, tenant, host, audience), in an owner-only
JSON file beside the state. It holds live tokens, so it is never printed or logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from msi_cli.store import files
from msi_cli.errors import deep_input


# A cached token response: every value a string (msi writes them so; `_entry` checks it on reading).
Entry = dict[str, str]


def read_entries(path: Path) -> dict[str, Any]:
    """The cache file's entries: {} when it is missing or damaged (a cache, not state: a damaged
    one is simply rebuilt). Raises StateError when the file cannot be read at all (a folder, no
    permission). The one reader of the file: `TokenCache` and the server's `Snapshot` use it."""
    raw = files.read_private(path, "token cache", cache=True)  # refused when another user planted it
    try:
        with deep_input():
            data = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past reason
        data = {}
    return data if isinstance(data, dict) else {}


def _entry(entries: dict[str, Any], key: str) -> Entry | None:
    """The cached response for `key`: only one shaped as msi writes them (every value a string,
    the times whole numbers); a damaged entry is a miss and is re-minted."""
    entry = entries.get(key)
    if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
        return None
    if not all(_whole(entry.get(k)) for k in ("expires_on", "not_before", "expires_in")):
        return None
    return entry


def _whole(value: object) -> bool:
    """A time as msi writes it: ASCII digits, at most 12 (str.isdigit also takes '²' and '١')."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12


class Snapshot:
    """The entries as read once, read-only, with TokenCache's `get` (the server keeps one in
    memory and re-reads the file only when it changes)."""

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[str, Any]) -> None:
        self._entries = entries

    @classmethod
    def read(cls, path: Path) -> Snapshot:
        return cls(read_entries(path))

    def get(self, key: str) -> Entry | None:
        return _entry(self._entries, key)


class TokenCache:
    def __init__(self, path: Path, under_lock: bool = False) -> None:
        """`under_lock`: made while the state lock is held, so what it reads stays current until
        the lock is released (a write need not read the file again)."""
        self.path = path
        self.under_lock = under_lock
        self._entries: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = read_entries(self.path)
        return self._entries

    def get(self, key: str) -> Entry | None:
        return _entry(self._load(), key)

    def put(self, key: str, response: Entry, now: int) -> None:
        """Store a response (call with the state lock held); expired entries are dropped."""
        if not self.under_lock:
            self._entries = None  # re-read under the lock
        loaded = self._load()  # a JSON object: its keys are strings
        entries: dict[str, Any] = {k: e for k in loaded if (e := _entry(loaded, k)) is not None and int(e["expires_on"]) > now}
        entries[key] = response
        self._entries = entries
        files.write_atomic(self.path, json.dumps(entries).encode("utf-8"), durable=False)  # lost: re-minted

    def drop_signed_by(self, kid: str) -> None:
        """Forget the tokens a withdrawn signing key signed (call with the state lock held)."""
        import base64

        def kid_of(entry: object) -> str | None:
            if not isinstance(entry, dict):
                return None
            try:
                head = entry["access_token"].split(".", 1)[0]
                kid = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))).get("kid")
                return kid if isinstance(kid, str) else None
            except (AttributeError, KeyError, TypeError, ValueError):
                return None

        self._entries = None
        entries = {k: v for k, v in self._load().items() if kid_of(v) != kid}
        self._entries = entries
        files.write_atomic(self.path, json.dumps(entries).encode("utf-8"), durable=False)
