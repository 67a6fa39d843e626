"""Writing the state file's text and the parse cache's rows for a save (StateFile.transaction).

A collection nobody used is copied from the old file as it was, with its cached rows unread; in a
used one, a few changed records are edited in place (store/patch.py), and otherwise each record
whose row is unchanged keeps its text while one that changed is validated field by field and
serialised again; when anything changed, the links a change can break are validated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msi_cli.core.datatype import fields
from msi_cli.core.model import State
from msi_cli.errors import StateError
from msi_cli.store import cachefile, chunks, codec, patch, records, rows
from msi_cli.store.lazycoll import LazyCollection
from msi_cli.store.lazystate import LazyState

# Where each collection's records sit in the file (None: not known, the file was not written by
# this store); a collection in the cache: (start, end, its rows as chunks.split cuts them).
Spans = dict[str, tuple[int | None, int | None]]
Coll = tuple[int | None, int | None, "bytes | cachefile.Part | chunks.Split"]
Row = tuple[Any, ...]


def encode(path: Path, state: State, raw: bytes, spans: Spans) -> tuple[bytes, codec.Doc, dict[str, Coll]]:
    """TOML for the state, and each collection's place in it with its cached rows. A
    collection nobody used is copied from `raw` as it was; in a used one, a record whose row
    is unchanged keeps its text, one that changed is validated field by field and serialised
    again; when anything changed, the links between all records are validated."""
    from msi_cli.store import tomlout

    head = codec.header(state)
    try:
        codec.upgrade(dict(head))
        codec.check_header(head)
    except codec.InvalidDocument as exc:
        raise StateError(f"refusing to save an invalid state ({exc.message}); {path} is unchanged") from None
    lazy = state if isinstance(state, LazyState) else None
    text = memoryview(raw)  # the old file's pieces are copied once, into the new file
    parts: list[bytes | memoryview] = [_utf8(path, tomlout.dumps(head))]
    pos = len(parts[0])
    colls: dict[str, Coll] = {}
    changed: dict[str, set[str]] | None = {} if lazy is not None else None
    removed: dict[str, set[str]] = {}
    render = patch.render_record(functools.partial(_check, path), functools.partial(_utf8, path))
    for coll in codec.COLLECTIONS:
        start, end = spans.get(coll, (None, None))
        part = lazy.part(coll) if lazy is not None else None
        if lazy is not None and part is not None and start is not None and end is not None and (
                lazy.is_pending(coll) or _untouched(getattr(state, coll))):
            parts.append(text[start:end])  # never used, or no object of it changed: as it was
            colls[coll] = (pos, pos + end - start, part)  # its cached rows too, not even read
            pos += end - start
            continue
        objects = getattr(state, coll)
        done = _patched(coll, objects, text, start, end, render) if lazy is not None else None
        if done is not None:  # a few records changed: edited in place
            parts.extend(done.text)
            size = sum(len(t) for t in done.text)
            if changed is not None and (done.keys or done.removed):
                changed[coll] = done.keys | done.removed
                if done.removed - done.keys:  # a key deleted and set again is there: changed, not removed
                    removed[coll] = done.removed - done.keys
            colls[coll] = (pos, pos + size, done.blob)
            pos += size
            continue
        old = lazy.table(coll) if lazy is not None else None  # its rows, read (and checked) whole
        blob = lazy.part(coll) if old is not None and lazy is not None else None
        old_rows, old_ends = old or ([], None)
        built = objects.built() if isinstance(objects, LazyCollection) and old is not None else None
        if built is not None:  # only the objects handed out (and added, last) can have changed
            row = rows.row_of(records.collections()[coll])
            left_out = objects.removed()
            table = [(k, row(built[k])) if k in built else (k, r) for k, r in old_rows if k not in left_out]
            table += [(k, row(built[k])) for k in objects.added()]
        else:
            table = codec.collection_rows(coll, objects)
        if old is not None and table == old_rows and blob is not None and old_ends is not None and start is not None and end is not None:
            parts.append(text[start:end])  # used, but unchanged
            colls[coll] = (pos, pos + end - start, blob)
            pos += end - start
            continue
        keys: set[str] = set()
        ends, size = _texts(path, coll, objects, table, old_rows, old_ends, text, start, parts, keys)
        if changed is not None and (old is None or keys or len(table) != len(old_rows)):
            gone = {k for k, _ in old_rows} - {k for k, _ in table}
            keys.update(gone)
            changed[coll] = keys
            if gone:
                removed[coll] = gone
        colls[coll] = (pos, pos + size, chunks.split(table, ends, name_at(coll), lazy.chunked(coll) if lazy is not None else None))
        pos += size
    _check(path, lambda: codec.check_links(state, changed, removed))  # with nothing changed: the default subscription alone
    return b"".join(parts), head, colls

def _texts(path: Path, coll: str, objects: dict[str, Any], table: list[tuple[str, Row]], old_rows: list[tuple[str, Row]],
           old_ends: list[int] | None, raw: memoryview, start: int | None, parts: list[bytes | memoryview],
           keys: set[str]) -> tuple[list[int], int]:
    """Append each record's text to `parts`: unchanged ones from `raw` (a run of them in one
    piece), changed ones validated and serialised (their keys added to `keys`). Returns where
    each text ends (from the collection's start) and their total size."""
    from msi_cli.store import tomlout  # tomli_w's bytes, several times faster

    common = min(len(table), len(old_rows))
    if old_ends is not None and start is not None:
        differ = [i for i in range(common) if table[i] != old_rows[i]]  # the rest stay in place
    else:
        differ = list(range(common))  # no text to copy: every record is serialised
    differ.extend(range(common, len(table)))
    before = {k: i for i, (k, _) in enumerate(old_rows)} if differ else {}
    ends: list[int] = []
    size = at = 0
    for index in [*differ, len(table)]:
        if index > at:  # records [at, index) are unchanged, in place: copied as one piece
            assert old_ends is not None and start is not None
            first = old_ends[at - 1] if at else 0
            parts.append(raw[start + first:start + old_ends[index - 1]])
            shift = size - first
            ends.extend([e + shift for e in old_ends[at:index]])
            size = ends[-1]
        at = index + 1
        if index == len(table):
            break
        key, row = table[index]
        n = before.get(key)
        same = n is not None and old_rows[n][1] == row
        if same and n is not None and old_ends is not None and start is not None:
            piece: bytes | memoryview = raw[start + (old_ends[n - 1] if n else 0):start + old_ends[n]]
        else:
            rec = codec.to_record(objects[key])
            if not same:
                keys.add(key)
                _check(path, functools.partial(codec.check_record, coll, rec, index))
            piece = _utf8(path, "\n" + tomlout.dumps({coll: [rec]}))
        parts.append(piece)
        size += len(piece)
        ends.append(size)
    return ends, size

def _utf8(path: Path, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8 on the command line
        raise StateError(f"refusing to save an invalid state (a value is not valid Unicode text); {path} is unchanged") from None

def _check(path: Path, check: Callable[[], object]) -> None:
    try:
        check()
    except codec.InvalidDocument as exc:
        raise StateError(f"refusing to save an invalid state ({exc.message}); {path} is unchanged") from None


def _patched(coll: str, objects: object, raw: memoryview, start: int | None, end: int | None,
             render: Callable[[str, Any, int], bytes]) -> patch.Patched | None:
    """patch.patch for a collection read from the cache and never built whole; None otherwise,
    or when its cached rows prove unreadable (the general save then reads them, or the file)."""
    if not isinstance(objects, LazyCollection) or objects.built() is None or start is None or end is None:
        return None
    try:
        return patch.patch(coll, objects, raw, start, end, name_at(coll), render)
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None


@functools.cache
def name_at(coll: str) -> int | None:
    """Where a collection's rows hold the object's name, if its objects have one."""
    names = fields(records.collections()[coll])
    return names.index("name") if "name" in names else None


def _untouched(objects: object) -> bool:
    """A collection used only to read a few objects, none of them changed."""
    return isinstance(objects, LazyCollection) and objects.unchanged()
