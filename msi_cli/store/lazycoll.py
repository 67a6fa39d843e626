"""A collection read from the parse cache whose objects are built one at a time, as asked for.

At 10,000 resources, building every Resource to find one by name or id took longer than the
rest of a `show`. A LazyCollection is a dict: a lookup by key (`[k]`, `get`, `in`) builds that
one object from its cached row and keeps it; `matching(field, value)` finds objects by a field
without building the others; anything that needs the whole dict (iterating, `len`, `values`,
comparing, changing it) first builds every object, in the file's order, keeping those already
handed out, so an object is never built twice and a change to it is never lost.

`built()` tells the store which objects were handed out: a save serialises only those (an object
nobody was given cannot have changed). A row that cannot be built (a damaged cache) makes the
collection whole from `damaged()`, the objects parsed from the state file itself.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Any

from msi_cli.store.chunks import CHUNK, Chunked
from msi_cli.store.wholedict import WholeDict

Row = tuple[Any, ...]
_DAMAGE = (TypeError, ValueError, IndexError, KeyError, AttributeError, EOFError)
_SCANS = 8  # lookups by key answered by scanning the keys, before they are indexed


class LazyCollection(WholeDict):
    __slots__ = ("_table", "_build", "_row", "_fields", "_lists", "_damaged", "_index", "_scans", "_whole", "_new", "_pos", "_gone", "_replaced")

    def __init__(self, table: Chunked, build: Callable[[Row], Any], row: Callable[[Any], Row],
                 fields: tuple[str, ...], damaged: Callable[[], dict[str, Any]], lists: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self._table = table
        self._build = build
        self._row = row
        self._fields = fields
        self._lists = lists  # the fields that hold lists (their row form is a tuple of rows)
        self._damaged = damaged
        self._index: dict[str, int] | None = None
        self._scans = 0
        self._whole = False
        self._new: dict[str, None] = {}  # keys added since the collection was read, in order
        self._pos: dict[str, int] = {}  # where each object built from a row stands
        self._gone: dict[str, int] = {}  # keys of rows deleted since the collection was read, and where their rows are
        self._replaced = False  # the rows proved damaged: the objects are the file's

    def _replace(self) -> None:
        """The cache's rows proved damaged: from now on, the objects parsed from the file (but
        those already handed out, which may have been changed since)."""
        given = dict(dict.items(self))
        parsed = self._damaged()
        dict.clear(self)
        dict.update(self, {key: given.get(key, obj) for key, obj in parsed.items() if key not in self._gone})
        dict.update(self, {key: given[key] for key in self._new})
        self._new = {}
        self._gone = {}
        self._whole = True
        self._replaced = True
        self._index = None

    # ---- one object ------------------------------------------------------------------------------

    def _at(self) -> dict[str, int]:
        if self._index is None:
            self._index = {key: n for n, key in enumerate(self._table.keys())}
        return self._index

    def _where(self, key: str) -> int | None:
        n = self._pos.get(key)
        return n if n is not None else self._find(key)

    def _find(self, key: str) -> int | None:
        """Where `key`'s row is (None: it has none). The first few lookups scan the keys (a C loop,
        0.05 ms at 10,000) rather than index them all (1 ms): most commands look up one or two."""
        if key in self._gone:
            return None
        if self._index is None and self._scans < _SCANS:
            self._scans += 1
            try:
                return self._table.keys().index(key)
            except ValueError:
                return None
        return self._at().get(key)

    def __missing__(self, key: str) -> Any:
        if not self._whole:
            try:
                n = self._find(key) if isinstance(key, str) else None
                if n is not None:
                    return self._built_at(n)
            except _DAMAGE:
                self._replace()
                return dict.__getitem__(self, key)
        raise KeyError(key)

    def _built_at(self, n: int) -> Any:
        """The object of the n-th row, built now unless it was already."""
        key, row = self._table.row(n)
        obj = dict.get(self, key)
        if obj is None:
            obj = self._build(row)
            dict.__setitem__(self, key, obj)
            self._pos[key] = n
        return obj

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key) or self._whole or not isinstance(key, str):
            return dict.__contains__(self, key)
        try:
            return self._find(key) is not None
        except _DAMAGE:
            self._replace()
            return dict.__contains__(self, key)

    def matching(self, field: str, value: str) -> list[Any]:
        """The objects whose string `field` is `value` in any case (`value` lower-case), in order,
        built only when they match."""
        if not self._whole:
            try:
                names = self._table.names() if field == "name" else None
                added = [dict.__getitem__(self, k) for k in self._new]
                added = [o for o in added if getattr(o, field).lower() == value]
                gone, handed = set(self._gone.values()), self._handed()  # these by their values now, not their rows'
                if names is not None:  # the cache keeps the names apart: only the matches' rows are read
                    hits = {n for n, name in enumerate(names) if name == value}
                else:
                    at = self._fields.index(field)
                    hits = {n for n, (_, row) in enumerate(self._table.rows()) if row[at].lower() == value}
                hits = {n for n in hits if n not in handed} | {n for n, (_, o) in handed.items() if getattr(o, field).lower() == value}
                return [self._built_at(n) for n in sorted(hits - gone)] + added
            except _DAMAGE:
                self._replace()
        return [o for o in dict.values(self) if getattr(o, field).lower() == value]

    def _handed(self) -> dict[int, tuple[str, Any]]:
        """The objects handed out (not those added), by the row they were built from (they may have changed since)."""
        return {n: (k, o) for k, o in dict.items(self) if k not in self._new and (n := self._where(k)) is not None}

    def mentioning(self, value: str) -> list[Any]:
        """The objects whose row holds the string `value` (as a whole value, at any depth), in
        order: a prefilter for a search by a nested field. A chunk whose marshalled bytes do not
        hold the value's (marshal writes every string's bytes once) is not even unmarshalled."""
        return [obj for _, obj in self.mentioning_items(value)]

    def mentioning_items(self, value: str) -> list[tuple[str, Any]]:
        """`mentioning`, with each object's key."""
        if not self._whole:
            try:
                return self._mentioning(value)
            except _DAMAGE:
                self._replace()
        return [(k, o) for k, o in dict.items(self) if _holds(self._row(o), value)]

    def _mentioning(self, value: str) -> list[tuple[str, Any]]:
        needle = value.encode("utf-8", "surrogatepass")
        found = {n: item for n, item in self._handed().items() if _holds(self._row(item[1]), value)}  # their values now
        gone = set(self._gone.values())
        for c in range(len(self._table.parts())):
            if needle not in self._table.raw_chunk(c):
                continue
            for i, (key, row) in enumerate(self._table.chunk(c)):
                n = c * CHUNK + i
                if n not in gone and n not in found and not dict.__contains__(self, key) and _holds(row, value):
                    found[n] = (key, self._built_at(n))
        added = [(k, dict.__getitem__(self, k)) for k in self._new]
        return [found[n] for n in sorted(found)] + [(k, o) for k, o in added if _holds(self._row(o), value)]

    def columns(self, *names: str) -> list[tuple[Any, ...]]:
        """(key, the named fields in row form) for every object, in order, without building any:
        an object handed out gives its current values, the others their cached row's."""
        at = [self._fields.index(n) for n in names]
        if not self._whole:
            try:
                table = self._table.rows()
                if len(at) == 1:
                    i = at[0]
                    out = [(key, r[i]) for key, r in table]
                else:
                    get = itemgetter(*at)
                    out = [(key, *get(r)) for key, r in table]
                for n, (key, obj) in self._handed().items():  # the objects handed out: their values now
                    r = self._row(obj)
                    out[n] = (key, *[r[i] for i in at])
                if self._gone:  # those deleted: left out
                    gone = set(self._gone.values())
                    out = [o for n, o in enumerate(out) if n not in gone]
                if self._new:  # those added: last
                    for key in self._new:
                        r = self._row(dict.__getitem__(self, key))
                        out.append((key, *[r[i] for i in at]))
                return out
            except _DAMAGE:
                self._replace()
        if not self._lists.intersection(names):
            attr = attrgetter(*names)  # plain values are their own row form: no row to make per object
            if len(names) == 1:
                return [(key, attr(o)) for key, o in dict.items(self)]
            return [(key, *attr(o)) for key, o in dict.items(self)]
        row = self._row
        return [(key, *[r[i] for i in at]) for key, r in ((k, row(o)) for k, o in dict.items(self))]

    def previous(self, key: str) -> Row | None:
        """The row `key` had when the collection was read from the cache (None: it had none, or
        the collection is whole)."""
        if self._whole:
            return None
        try:
            n = self._gone.get(key)
            n = self._where(key) if n is None else n
            return None if n is None else self._table.row(n)[1]
        except _DAMAGE:
            return None

    def position(self, key: str) -> int:
        """Where `key` stands in the collection's order (its record's index in the file)."""
        if self._whole:
            return list(dict.keys(self)).index(key)
        if key in self._new:
            return len(self._table) - len(self._gone) + list(self._new).index(key)
        n = self._where(key)
        if n is None:
            raise KeyError(key)
        return n - sum(1 for g in self._gone.values() if g < n)

    def unchanged(self) -> bool:
        """Whether no object was changed, added or deleted since the collection was read from its
        rows (reading only the rows of the objects handed out, unless it is whole)."""
        if self._replaced or self._new or self._gone:
            return False
        try:
            if self._whole:
                table, row = self._table.rows(), self._row
                return list(dict.keys(self)) == [key for key, _ in table] and all(
                    row(dict.__getitem__(self, key)) == old for key, old in table)
            for key, obj in dict.items(self):
                n = self._where(key)
                if n is None or self._table.row(n)[1] != self._row(obj):
                    return False
            return True
        except _DAMAGE:
            return False

    def positions(self) -> dict[str, int] | None:
        """Where each object handed out from the cached rows stands (those added aside); None
        once the collection is whole."""
        if self._whole:
            return None
        pos = self._pos
        for key in dict.keys(self):
            if key not in pos and key not in self._new:
                n = self._find(key)
                if n is None:
                    raise KeyError(key)
                pos[key] = n
        return {key: pos[key] for key in dict.keys(self) if key not in self._new}

    def cached(self) -> Chunked:
        """The cached rows this collection was read from."""
        return self._table

    def added(self) -> list[str]:
        """The keys added since the collection was read (while it is not whole), in order."""
        return list(self._new)

    def removed(self) -> dict[str, int]:
        """The keys deleted since the collection was read (while it is not whole), and where
        their rows are in the cached table."""
        return dict(self._gone)

    def built(self) -> dict[str, Any] | None:
        """The objects handed out, by key, while the collection is not whole; None once it is."""
        return None if self._whole else dict(dict.items(self))

    # ---- the whole dict --------------------------------------------------------------------------

    def whole(self) -> LazyCollection:
        """Build every object (keeping those already built), in the table's order."""
        if not self._whole:
            given = dict(dict.items(self))
            build = self._build
            try:
                gone = self._gone
                objects = {key: given.get(key) or build(row) for key, row in self._table.rows() if key not in gone}
            except _DAMAGE:
                self._replace()
                return self
            objects.update((key, given[key]) for key in self._new)
            self._new = {}
            self._gone = {}
            dict.clear(self)
            dict.update(self, objects)
            self._whole = True
            self._index = None
        return self

    def __len__(self) -> int:
        return len(self._table) - len(self._gone) + len(self._new) if not self._whole else dict.__len__(self)

    def __setitem__(self, key: str, value: Any) -> None:
        """A new object (or a new one under a key) without building the others: it comes last."""
        if not self._whole:
            try:
                known = dict.__contains__(self, key) or self._find(key) is not None
            except _DAMAGE:
                self._replace()
                known = True
            if not self._whole and not known:
                self._new[key] = None
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        """Delete one object without building the others: its row is left out from now on."""
        if self._whole:
            dict.__delitem__(self, key)
            return
        if key in self._new:
            del self._new[key]
            dict.__delitem__(self, key)
            return
        try:
            n = self._where(key) if isinstance(key, str) else None
        except _DAMAGE:
            self._replace()
            dict.__delitem__(self, key)
            return
        if n is None:
            raise KeyError(key)
        self._gone[key] = n
        dict.pop(self, key, None)
        self._pos.pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:
        try:
            obj = self[key]
        except KeyError:
            if default:
                return default[0]
            raise
        del self[key]
        return obj

def _holds(row: Row, value: str) -> bool:
    """Whether `value` is one of the row's values, or of its nested rows'."""
    return any(v == value or (type(v) is tuple and _holds(v, value)) for v in row)
