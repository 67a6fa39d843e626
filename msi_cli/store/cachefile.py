"""The parse cache's file: a small head, then each collection's rows, each part checked when used.

Reading, checking and unmarshalling the whole 4 MB cache of 10,000 resources cost a command that
needs one resource ~8 ms. The file is a mark, the head's length and CRC-32, the head (the state's
header and, per collection, where its rows sit in this file and their CRC-32), then the rows. A
reader checks the head at once and a collection's rows only when it reads them (`Part.data`); a
damaged part raises ValueError there, and the store falls back to the state file itself.
"""

from __future__ import annotations

import binascii
import marshal
from typing import Any

_MARK = b"msi\x02"
_FIXED = len(_MARK) + 8


class Part:
    """One collection's rows in the cache file, checked on first use."""

    __slots__ = ("_view", "_crc", "_data")

    def __init__(self, view: memoryview, crc: int) -> None:
        self._view = view
        self._crc = crc
        self._data: bytes | None = None

    @property
    def crc(self) -> int:
        return self._crc

    def view(self) -> memoryview:
        return self._view

    def data(self) -> bytes:
        if self._data is None:
            data = bytes(self._view)
            if binascii.crc32(data) != self._crc:
                raise ValueError("a part of the parse cache is damaged")
            self._data = data
        return self._data


def dumps(blob: dict[str, Any]) -> bytes:
    """The file for `blob` ({..., "colls": {coll: (start, end, rows)}}; rows bytes or a Part)."""
    parts: list[bytes | memoryview] = []
    index: dict[str, tuple[Any, Any, int, int, int]] = {}
    at = 0
    for coll, (start, end, rows) in blob["colls"].items():
        if isinstance(rows, Part):  # copied unread, with the CRC it came with: damage stays found
            data, crc = rows.view(), rows.crc
        else:
            data, crc = rows, binascii.crc32(rows)
        index[coll] = (start, end, at, len(data), crc)
        parts.append(data)
        at += len(data)
    head = marshal.dumps({**blob, "colls": index})
    return b"".join([_MARK, len(head).to_bytes(4, "big"), binascii.crc32(head).to_bytes(4, "big"), head, *parts])  # one copy


def loads(raw: bytes) -> dict[str, Any] | None:
    """The blob `dumps` wrote, its collections' rows as Parts; None for a file that is damaged
    in its head or not one."""
    if raw[:len(_MARK)] != _MARK or len(raw) < _FIXED:
        return None
    size = int.from_bytes(raw[4:8], "big")
    view = memoryview(raw)
    head = view[_FIXED:_FIXED + size]
    if len(head) != size or binascii.crc32(head) != int.from_bytes(raw[8:12], "big"):
        return None
    try:
        blob = marshal.loads(head)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(blob, dict) or not isinstance(blob.get("colls"), dict):
        return None
    base = _FIXED + size
    colls: dict[str, tuple[Any, Any, Part]] = {}
    for coll, entry in blob["colls"].items():
        if not (isinstance(entry, tuple) and len(entry) == 5 and all(isinstance(v, int) for v in entry[2:])):
            return None
        start, end, at, length, crc = entry
        if at < 0 or length < 0 or base + at + length > len(raw):
            return None
        colls[coll] = (start, end, Part(view[base + at:base + at + length], crc))
    blob["colls"] = colls
    return blob
