"""The parse cache's file: a small head, then each collection's pieces, each checked when used.

Reading, checking and unmarshalling the whole 4 MB cache of 10,000 resources cost a command that
needs one resource ~8 ms. The file is a mark, the head's length and CRC-32, the head (the state's
header and, per collection, where each of its pieces sits in this file and its CRC-32: keys,
names, text ends and chunks of rows, see store/chunks.py), then the pieces. A reader reads and
checks the head at once and a piece only when it uses it (`Part.data`); a damaged piece raises
ValueError there, and the store falls back to the state file itself.
"""

from __future__ import annotations

import binascii
import contextlib
import marshal
import os
from collections.abc import Callable
from typing import Any

from msi_cli.store.chunks import Split

_MARK = b"msi\x02"
_FIXED = len(_MARK) + 8


class Source:
    """An open cache file, read a part at a time (os.pread): a command that needs one resource of
    10,000 reads the head and one chunk, not 6 MB. The file is only ever replaced, never changed
    in place, so the open file keeps the bytes its head describes. Closed with its last Part."""

    __slots__ = ("_fd", "size")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    def read(self, at: int, length: int) -> bytes:
        try:
            data = os.pread(self._fd, length, at)
        except OSError as exc:
            raise ValueError(f"the parse cache could not be read ({exc.strerror})") from None
        if len(data) != length:
            raise ValueError("the parse cache ends early")
        return data

    def __del__(self) -> None:
        with contextlib.suppress(OSError, TypeError):  # TypeError: os gone at interpreter exit
            os.close(self._fd)


class Part:
    """One collection's rows in the cache file, read and checked on first use."""

    __slots__ = ("_view", "_crc", "_data", "_src", "_at", "_len")

    def __init__(self, view: memoryview | None, crc: int, src: Source | None = None, at: int = 0, length: int = 0) -> None:
        self._view = view
        self._crc = crc
        self._data: bytes | None = None
        self._src = src
        self._at = at
        self._len = length

    @property
    def crc(self) -> int:
        return self._crc

    def view(self) -> memoryview:
        """The part's bytes as the file holds them (unchecked: copied with their CRC, damage stays found)."""
        if self._view is None:
            assert self._src is not None
            self._view = memoryview(self._src.read(self._at, self._len))
        return self._view

    def data(self) -> bytes:
        if self._data is None:
            data = bytes(self.view())
            if binascii.crc32(data) != self._crc:
                raise ValueError("a part of the parse cache is damaged")
            self._data = data
        return self._data


def dumps(blob: dict[str, Any]) -> bytes:
    """The file for `blob` ({..., "colls": {coll: (start, end, rows)}}; rows a chunks.Split of
    bytes and Parts, or one blob, bytes or a Part). Each piece is written with its CRC-32."""
    parts: list[bytes | memoryview] = []
    index: dict[str, tuple[Any, ...]] = {}
    at = 0

    def piece(raw: bytes | Part) -> tuple[int, int, int]:
        nonlocal at
        data: bytes | memoryview
        if isinstance(raw, Part):  # copied unread, with the CRC it came with: damage stays found
            data, crc = raw.view(), raw.crc
        else:
            data, crc = raw, binascii.crc32(raw)
        parts.append(data)
        at += len(data)
        return at - len(data), len(data), crc

    for coll, (start, end, rows) in blob["colls"].items():
        if isinstance(rows, Split):
            index[coll] = (start, end, rows.count, tuple(piece(p) for p in rows.pieces()))  # type: ignore[arg-type]  # cachefile's own Parts
        else:
            index[coll] = (start, end, *piece(rows))
    head = marshal.dumps({**blob, "colls": index})
    return b"".join([_MARK, len(head).to_bytes(4, "big"), binascii.crc32(head).to_bytes(4, "big"), head, *parts])  # one copy


def loads(raw: bytes) -> dict[str, Any] | None:
    """The blob `dumps` wrote, its collections' rows as Parts; None for a file that is damaged
    in its head or not one."""
    view = memoryview(raw)
    return _blob(raw[:_FIXED], lambda at, length: view[at:at + length], len(raw), None)


def load(src: Source) -> dict[str, Any] | None:
    """`loads` of an open cache file, reading its head only: each Part reads its bytes when used."""
    try:
        fixed = src.read(0, _FIXED)
    except ValueError:
        return None
    return _blob(fixed, lambda at, length: memoryview(src.read(at, length)), src.size, src)


def _blob(fixed: bytes, read: Callable[[int, int], memoryview], total: int, src: Source | None) -> dict[str, Any] | None:
    if fixed[:len(_MARK)] != _MARK or len(fixed) < _FIXED:
        return None
    size = int.from_bytes(fixed[4:8], "big")
    if _FIXED + size > total:
        return None
    try:
        head = read(_FIXED, size)
    except ValueError:
        return None
    if binascii.crc32(head) != int.from_bytes(fixed[8:12], "big"):
        return None
    try:
        blob = marshal.loads(head)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(blob, dict) or not isinstance(blob.get("colls"), dict):
        return None
    base = _FIXED + size

    def part(entry: Any) -> Part | None:
        if not (isinstance(entry, tuple) and len(entry) == 3 and all(isinstance(v, int) for v in entry)):
            return None
        at, length, crc = entry
        if at < 0 or length < 0 or base + at + length > total:
            return None
        return Part(read(base + at, length), crc) if src is None else Part(None, crc, src, base + at, length)

    colls: dict[str, tuple[Any, Any, Part | Split]] = {}
    for coll, entry in blob["colls"].items():
        if not isinstance(entry, tuple) or len(entry) not in (4, 5):
            return None
        if len(entry) == 5:  # one blob
            whole = part(entry[2:])
            if whole is None:
                return None
            colls[coll] = (entry[0], entry[1], whole)
            continue
        start, end, count, entries = entry
        pieces = [part(e) for e in entries] if isinstance(entries, tuple) and isinstance(count, int) else [None]
        if len(pieces) < 3 or not all(isinstance(p, Part) for p in pieces):
            return None
        keys, names, ends, *chunks = pieces
        colls[coll] = (start, end, Split(count, keys, names, ends, chunks))  # type: ignore[arg-type]  # all Parts, checked above
    blob["colls"] = colls
    return blob
