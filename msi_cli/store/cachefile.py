"""The parse cache's file: a small head, then each collection's pieces, each checked when used.

Reading, checking and unmarshalling the whole 4 MB cache of 10,000 resources cost a command that
needs one resource ~8 ms. The file is a mark, the pieces, the head (the state's header and, per
collection, where each of its pieces sits in this file and its CRC-32: keys, names, text ends and
chunks of rows, see store/chunks.py), then a trailer: where the head starts, its length and CRC-32,
and the mark. A reader reads the trailer and the head at once and a piece only when it uses it
(`Part.data`); a damaged piece raises ValueError there, and the store falls back to the state file
itself. A save that changed a few pieces appends them and a new head (`appended`): the pieces
already there never move, so a reader holding the file open keeps reading what its head names.
"""

from __future__ import annotations

import binascii
import contextlib
import marshal
import os
from collections.abc import Callable
from typing import Any

from msi_cli.store.chunks import Split

_MARK = b"msi\x03"
_TRAILER = 8 + 4 + 4 + len(_MARK)  # where the head starts, its length and CRC-32, the mark again
_SLACK = 1 << 20  # pieces no head names that a file may carry before it is written whole again
_MAX_HEAD = 16 << 20  # far above any real head (10,000 resources: about 20 KB); a larger one is damage


class Source:
    """An open cache file, read a part at a time (os.pread): a command that needs one resource of
    10,000 reads the head and one chunk, not 6 MB. The file is only ever replaced or appended to,
    so the open file keeps the bytes its head describes. Closed with its last Part."""

    __slots__ = ("_fd", "size")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    def grew(self) -> bool:
        """Whether the file is now longer than `size` (which then becomes its size)."""
        try:
            size = os.fstat(self._fd).st_size
        except OSError:
            return False
        grown, self.size = size > self.size, max(size, self.size)
        return grown

    def identity(self) -> tuple[int, int, int] | None:
        """(inode, device, size): what a file must still be for this one's pieces to be in it."""
        try:
            st = os.fstat(self._fd)
        except OSError:
            return None
        return st.st_ino, st.st_dev, self.size

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
    """A piece of the cache file (a collection's keys, names, text ends or chunk of rows; or a
    collection's rows as one blob), read and checked on first use."""

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
    return _MARK + _tail(blob, len(_MARK), None)[0]


def appended(src: Source, blob: dict[str, Any]) -> bytes | None:
    """What to append to the open cache file `src` so that it holds `blob`: the pieces it does
    not hold yet, a new head and trailer. The pieces `blob` shares with it stay where they are
    (at 10,000 resources a one-resource change appends a chunk, its text ends and a head, where
    writing the whole 6 MB file took 12-16 ms). None when the file would then be mostly pieces no
    head names any more: the caller writes it whole."""
    tail, live = _tail(blob, src.size, src)
    if src.size + len(tail) > 2 * live + _SLACK:
        return None
    return tail


def _tail(blob: dict[str, Any], at: int, src: Source | None) -> tuple[bytes, int]:
    """The pieces of `blob` not held by `src` (placed from offset `at`), then the head and the
    trailer; and how many bytes the head's pieces take in all."""
    parts: list[bytes | memoryview] = []
    index: dict[str, tuple[Any, ...]] = {}
    live = 0

    def piece(raw: bytes | Part) -> tuple[int, int, int]:
        nonlocal at, live
        if isinstance(raw, Part) and src is not None and raw._src is src:  # already in the file
            live += raw._len
            return raw._at, raw._len, raw.crc
        data: bytes | memoryview
        if isinstance(raw, Part):  # copied unread, with the CRC it came with: damage stays found
            data, crc = raw.view(), raw.crc
        else:
            data, crc = raw, binascii.crc32(raw)
        parts.append(data)
        at += len(data)
        live += len(data)
        return at - len(data), len(data), crc

    for coll, (start, end, rows) in blob["colls"].items():
        if isinstance(rows, Split):
            index[coll] = (start, end, rows.count, tuple(piece(p) for p in rows.pieces()))  # type: ignore[arg-type]  # cachefile's own Parts
        else:
            index[coll] = (start, end, *piece(rows))
    head = marshal.dumps({**blob, "colls": index})
    trailer = at.to_bytes(8, "big") + len(head).to_bytes(4, "big") + binascii.crc32(head).to_bytes(4, "big") + _MARK
    return b"".join([*parts, head, trailer]), live  # one copy


def loads(raw: bytes) -> dict[str, Any] | None:
    """The blob `dumps` wrote, its collections' rows as Parts; None for a file that is damaged
    in its head or not one."""
    view = memoryview(raw)
    return _blob(lambda at, length: view[at:at + length], len(raw), None)


def load(src: Source) -> dict[str, Any] | None:
    """`loads` of an open cache file, reading its head only: each Part reads its bytes when used.
    A file that grows while it is read (a writer appending) is read again at its new size."""
    for _ in range(100):
        blob = _blob(lambda at, length: memoryview(src.read(at, length)), src.size, src)
        if blob is not None or not src.grew():
            return blob
    return None


def _blob(read: Callable[[int, int], memoryview], total: int, src: Source | None) -> dict[str, Any] | None:
    if total < len(_MARK) + _TRAILER:
        return None
    try:
        if bytes(read(0, len(_MARK))) != _MARK:
            return None
        trailer = bytes(read(total - _TRAILER, _TRAILER))
        if trailer[16:] != _MARK:
            return None
        head_at, size, crc = int.from_bytes(trailer[:8], "big"), int.from_bytes(trailer[8:12], "big"), int.from_bytes(trailer[12:16], "big")
        if head_at < len(_MARK) or head_at + size != total - _TRAILER or size > _MAX_HEAD:
            return None
        head = read(head_at, size)
    except ValueError:
        return None
    if binascii.crc32(head) != crc:
        return None
    try:
        blob = marshal.loads(head)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(blob, dict) or not isinstance(blob.get("colls"), dict):
        return None

    def part(entry: Any) -> Part | None:
        if not (isinstance(entry, tuple) and len(entry) == 3 and all(isinstance(v, int) for v in entry)):
            return None
        at, length, crc = entry
        if at < len(_MARK) or length < 0 or at + length > head_at:
            return None
        return Part(read(at, length), crc) if src is None else Part(None, crc, src, at, length)

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


def source_of(blob: dict[str, Any]) -> Source | None:
    """The open cache file some piece of `blob` was read from, if any."""
    for _, _, rows in blob["colls"].values():
        for p in rows.pieces() if isinstance(rows, Split) else [rows]:
            if isinstance(p, Part) and p._src is not None:
                return p._src
    return None
