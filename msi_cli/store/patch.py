"""A save that changed a few records of a large collection: their texts and rows are replaced in
place, and nothing else of the collection is read.

The general save (StateFile._texts) compares every row with its cached one to find what changed;
at 10,000 resources that meant reading all their rows, comparing, re-assembling each record's place
in the file and checking the cache's chunks, for one changed resource. A LazyCollection knows which
objects it handed out: only those can have changed. Their records are validated and written
again, the texts after them shift, and only the cache chunks that hold them are written again.
"""

from __future__ import annotations

import functools
import marshal
from collections.abc import Callable
from typing import Any

from msi_cli.store import chunks, codec, rows
from msi_cli.store.lazycoll import LazyCollection

MAX_EDITS = 64  # more changed records than this: the general save, which compares all rows at once
Row = tuple[Any, ...]


class Patched:
    """What a patch made: the collection's new text and cache blob, the keys it changed."""

    __slots__ = ("text", "blob", "keys", "removed")

    def __init__(self, text: list[bytes | memoryview], blob: chunks.Split, keys: set[str], removed: set[str]) -> None:
        self.text = text
        self.blob = blob
        self.keys = keys  # changed or added
        self.removed = removed


def patch(coll: str, objects: LazyCollection, raw: memoryview, start: int, end: int, name_at: int | None,
          render: Callable[[str, Any, int], bytes]) -> Patched | None:
    """The collection saved by editing its old text (`raw[start:end]`) and cached rows, or None
    when a patch does not apply (too many changes, no text positions): the caller saves it whole.
    `render(coll, obj, index)` validates an object and returns its record's text."""
    table = objects.cached()
    positions, ends = objects.positions(), table.ends()
    if positions is None or ends is None or len(ends) != len(table):
        return None
    row_of = rows.row_of(_cls(coll))
    edits: dict[int, tuple[str, Row]] = {}
    for key, n in positions.items():
        new = row_of(dict.__getitem__(objects, key))
        if new != table.row(n)[1]:
            edits[n] = (key, new)
    added = [(key, row_of(dict.__getitem__(objects, key))) for key in objects.added()]
    removed = {n: key for key, n in objects.removed().items()}
    if len(edits) + len(added) + len(removed) > MAX_EDITS:
        return None
    text: list[bytes | memoryview] = []
    new_ends = list(ends)
    at = 0  # how far the old text is copied, from the collection's start
    shift = 0
    for n in sorted([*edits, *removed]):
        first = ends[n - 1] if n else 0
        text.append(raw[start + at:start + first])
        if n in removed:  # its text is left out
            delta = first - ends[n]
        else:
            key, _ = edits[n]
            record = render(coll, dict.__getitem__(objects, key), objects.position(key))
            text.append(record)
            delta = len(record) - (ends[n] - first)
        at = ends[n]
        if delta:
            shift += delta
            for i in range(n, len(new_ends)):
                new_ends[i] += delta
    text.append(raw[start + at:end])
    if removed:
        new_ends = [e for i, e in enumerate(new_ends) if i not in removed]
    size = (ends[-1] if ends else 0) + shift
    for key, _ in added:
        record = render(coll, dict.__getitem__(objects, key), objects.position(key))
        text.append(record)
        size += len(record)
        new_ends.append(size)
    blob = _rows(table, edits, added, new_ends, name_at) if not removed else _without(table, edits, added, set(removed), new_ends, name_at)
    return Patched(text, blob, {key for key, _ in edits.values()} | {key for key, _ in added}, set(removed.values()))


@functools.cache
def _cls(coll: str) -> type:
    from msi_cli.store import records

    return records.collections()[coll]


def _rows(table: chunks.Chunked, edits: dict[int, tuple[str, Row]], added: list[tuple[str, Row]],
          ends: list[int], name_at: int | None) -> chunks.Split:
    """The cache blob of `table` with the rows at `edits` replaced and `added` appended: only the
    chunks that hold a change are marshalled again."""
    parts: list[chunks.Raw] = list(table.parts())
    count = len(table)
    touched = _edited(table, edits, len(parts))
    if added:
        last = (count - 1) // chunks.CHUNK if count else 0
        tail = touched.pop(last, None) if count else []
        if tail is None:
            tail = list(table.chunk(last))
        tail.extend(added)
        del parts[last:]
        for i in range(0, len(tail), chunks.CHUNK):
            touched[last + i // chunks.CHUNK] = tail[i:i + chunks.CHUNK]
            parts.append(b"")
    for c, chunk in touched.items():
        parts[c] = marshal.dumps(chunk)  # rows read from the cache share their strings already; new ones need not
    keys: chunks.Raw = table.raw_keys()
    names: chunks.Raw = table.raw_names()
    old_names = table.names() if name_at is not None and (edits or added) else None
    renamed = name_at is not None and old_names is not None and any(row[name_at].lower() != old_names[n] for n, (_, row) in edits.items())
    if added:
        keys = marshal.dumps(table.keys() + [key for key, _ in added])
    if (added or renamed) and name_at is not None and old_names is not None:
        names_list = list(old_names)
        for n, (_, row) in edits.items():
            names_list[n] = row[name_at].lower()
        names_list.extend(row[name_at].lower() for _, row in added)
        names = marshal.dumps(names_list)
    return chunks.Split(count + len(added), keys, names, marshal.dumps(ends), parts)


def _edited(table: chunks.Chunked, edits: dict[int, tuple[str, Row]], below: int) -> dict[int, list[tuple[str, Row]]]:
    """The chunks before chunk `below` that hold an edit, by number, with their edits made."""
    touched: dict[int, list[tuple[str, Row]]] = {}
    for n, item in edits.items():
        c = n // chunks.CHUNK
        if c < below:
            if c not in touched:
                touched[c] = list(table.chunk(c))
            touched[c][n % chunks.CHUNK] = item
    return touched


def _without(table: chunks.Chunked, edits: dict[int, tuple[str, Row]], added: list[tuple[str, Row]], removed: set[int],
             ends: list[int], name_at: int | None) -> chunks.Split:
    """The cache pieces of `table` with the rows at `removed` left out (and `edits`, `added`):
    the chunks before the first removed row are kept, those from it on are cut again."""
    first = min(removed) // chunks.CHUNK
    parts: list[chunks.Raw] = list(table.parts())[:first]
    for c, chunk in _edited(table, edits, first).items():  # edits in the chunks kept
        parts[c] = marshal.dumps(chunk)
    tail: list[tuple[str, Row]] = []
    for c in range(first, len(table.parts())):
        base = c * chunks.CHUNK
        for i, item in enumerate(table.chunk(c)):
            n = base + i
            if n not in removed:
                tail.append(edits.get(n, item))
    tail.extend(added)
    parts.extend(marshal.dumps(tail[i:i + chunks.CHUNK]) for i in range(0, len(tail), chunks.CHUNK))
    keys = [key for n, key in enumerate(table.keys()) if n not in removed] + [key for key, _ in added]
    names = table.names() if name_at is not None else None
    if names is not None and name_at is not None:
        renamed = {n: row[name_at].lower() for n, (_, row) in edits.items()}
        names = [renamed.get(n, name) for n, name in enumerate(names) if n not in removed]
        names.extend(row[name_at].lower() for _, row in added)
    return chunks.Split(len(keys), marshal.dumps(keys), marshal.dumps(names), marshal.dumps(ends), parts)


def render_record(check: Callable[[Callable[[], object]], None], utf8: Callable[[str], bytes]) -> Callable[[str, Any, int], bytes]:
    """The `render` of patch(): a record validated field by field (check) and written as TOML."""
    from msi_cli.store import tomlout

    def render(coll: str, obj: Any, index: int) -> bytes:
        rec = codec.to_record(obj)
        check(functools.partial(codec.check_record, coll, rec, index))
        return utf8("\n" + tomlout.dumps({coll: [rec]}))

    return render
