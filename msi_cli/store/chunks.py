"""A collection's rows in the parse cache, kept in chunks of CHUNK rows.

Unmarshalling 10,000 resources' rows took about 10 ms, as long as the rest of a `show`. A
collection is therefore written as its keys, its lower-case names (where its objects have a name)
and where each record's text ends, each marshalled on its own, and its rows in chunks: finding one
resource by name reads the names and one chunk. Every piece is read when first asked for, and the
cache file keeps each piece apart (store/cachefile.py), so an unused piece is not even read from disk.
"""

from __future__ import annotations

import marshal
from typing import Any, Protocol, Union

from msi_cli.store.rows import shared

CHUNK = 256
Row = tuple[Any, ...]
Table = list[tuple[str, Row]]


class Piece(Protocol):
    """A piece of a collection in the cache file, read (and checked) when used: cachefile.Part."""

    def data(self) -> bytes: ...


Raw = Union[bytes, Piece]


def _raw(piece: Raw) -> bytes:
    return piece if isinstance(piece, bytes) else piece.data()


class Split:
    """A collection's rows as the cache keeps them: the row count; its keys, lower-case names
    and text ends, each marshalled on its own; its rows in chunks of CHUNK. Each piece is bytes,
    or a Piece of the cache file read when first used: finding one resource of 10,000 by name
    reads the names and one chunk, not the collection's 3 MB."""

    __slots__ = ("count", "keys", "names", "ends", "chunks")

    def __init__(self, count: int, keys: Raw, names: Raw, ends: Raw, chunks: list[Raw]) -> None:
        self.count = count
        self.keys = keys
        self.names = names
        self.ends = ends
        self.chunks = chunks

    def pieces(self) -> list[Raw]:
        return [self.keys, self.names, self.ends, *self.chunks]

    def joined(self) -> bytes:
        """The whole collection as one marshalled blob (every piece read and checked)."""
        return marshal.dumps((self.count, _raw(self.keys), _raw(self.names), _raw(self.ends), [_raw(c) for c in self.chunks]))


def split(table: Table, ends: list[int] | None, name_at: int | None, old: Chunked | None = None) -> Split:
    """The cache's pieces for a collection's rows (and their text ends; None: not known). `old`,
    the rows the table was read from: its chunks whose rows did not change are kept as they are
    (marshalling a chunk again costs far more than comparing its rows)."""
    before = old.loaded() if old is not None else None
    parts: list[Raw] = []
    for i in range(0, len(table), CHUNK):
        chunk = table[i:i + CHUNK]
        if before is not None and old is not None and i // CHUNK < len(old._parts) and before[i:i + CHUNK] == chunk:
            parts.append(old._parts[i // CHUNK])
        else:
            parts.append(marshal.dumps(shared(chunk)))
    keys: Raw
    names: Raw
    if before is not None and old is not None and len(before) == len(table) and all(p is q for p, q in zip(parts, old._parts)):
        keys, names = old.raw_keys(), old.raw_names()  # every row as it was: so are the keys and names
    else:
        keys = marshal.dumps([key for key, _ in table])
        names = marshal.dumps([row[name_at].lower() for _, row in table] if name_at is not None else None)
    return Split(len(table), keys, names, marshal.dumps(ends), parts)


def dumps(table: Table, ends: list[int] | None, name_at: int | None, old: Chunked | None = None) -> bytes:
    """`split`, as one marshalled blob."""
    return split(table, ends, name_at, old).joined()


class Chunked:
    """A collection's rows, read piece by piece. A damaged piece raises ValueError, TypeError or
    EOFError when it is read (the caller falls back to the state file)."""

    __slots__ = ("count", "_keys", "_names", "_ends", "_raw_keys", "_raw_names", "_parts", "_chunks", "_rows")

    def __init__(self, blob: bytes | Split) -> None:
        if isinstance(blob, bytes):
            count, keys, names, ends, parts = marshal.loads(blob)
            if not isinstance(parts, list):
                raise ValueError("not a collection's rows")
            blob = Split(count, keys, names, ends, parts)
        if not (isinstance(blob.count, int) and isinstance(blob.chunks, list) and len(blob.chunks) == -(-blob.count // CHUNK)
                and all(isinstance(p, bytes) or hasattr(p, "data") for p in blob.pieces())):
            raise ValueError("not a collection's rows")
        self.count = blob.count
        self._raw_keys: Raw = blob.keys
        self._raw_names: Raw = blob.names
        self._keys: Any = blob.keys
        self._names: Any = blob.names
        self._ends: Any = blob.ends
        self._parts: list[Raw] = blob.chunks
        self._chunks: dict[int, Table] = {}
        self._rows: Table | None = None

    def __len__(self) -> int:
        return self.count

    def _part(self, raw: Any) -> Any:
        """A list part (keys, names, ends), read once: None or a list of one item per row."""
        value: Any = marshal.loads(_raw(raw)) if isinstance(raw, bytes) or hasattr(raw, "data") else raw
        if value is not None and not (isinstance(value, list) and len(value) == self.count):
            raise ValueError("a part of the rows does not match them")
        return value

    def keys(self) -> list[str]:
        self._keys = self._part(self._keys)
        keys: list[str] = self._keys
        return keys

    def names(self) -> list[str] | None:
        """The objects' names in lower case, in order (None for a collection without names)."""
        self._names = self._part(self._names)
        names: list[str] | None = self._names
        return names

    def ends(self) -> list[int] | None:
        self._ends = self._part(self._ends)
        ends: list[int] | None = self._ends
        return ends

    def row(self, index: int) -> tuple[str, Row]:
        """The key and row at `index` (0 <= index < count), unmarshalling its chunk only."""
        if self._rows is not None:
            return self._rows[index]
        return self.chunk(index // CHUNK)[index % CHUNK]

    def chunk(self, n: int) -> Table:
        """The rows of chunk `n`, read once."""
        if self._rows is not None:
            return self._rows[n * CHUNK:(n + 1) * CHUNK]
        chunk = self._chunks.get(n)
        if chunk is None:
            chunk = marshal.loads(_raw(self._parts[n]))
            if not isinstance(chunk, list) or len(chunk) != min(CHUNK, self.count - n * CHUNK):
                raise ValueError("a chunk of rows does not match them")
            self._chunks[n] = chunk
        return chunk

    def raw_chunk(self, n: int) -> bytes:
        """Chunk `n` as marshalled (checked), without unmarshalling it."""
        return _raw(self._parts[n])

    def parts(self) -> list[Raw]:
        """Each chunk's marshalled rows, as the cache holds them."""
        return self._parts

    def loaded(self) -> Table | None:
        """Every row, if they were all read already (else None: nothing is read for this)."""
        return self._rows

    def raw_keys(self) -> Raw:
        return self._raw_keys

    def raw_names(self) -> Raw:
        return self._raw_names

    def rows(self) -> Table:
        """Every key and row, in order."""
        if self._rows is None:
            rows: Table = []
            for n in range(len(self._parts)):
                rows.extend(self._chunks.get(n) or marshal.loads(_raw(self._parts[n])))
            if len(rows) != self.count:
                raise ValueError("the chunks of rows do not match them")
            self._rows = rows
            self._chunks.clear()
        return self._rows
