"""A State read from the parse cache, whose collections are built when first used.

The cache keeps each collection's rows as its own marshalled blob. A command that looks at
resources never builds the principals, and a save copies a collection nobody touched from the old
file as it was, bytes and cached rows alike. Everything else sees a plain State: the collections
are properties over State's own slots, filled on first read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from msi_cli.core.datatype import fields
from msi_cli.core.model import State
from msi_cli.store import records, rows
from msi_cli.store.cachefile import Part
from msi_cli.store.chunks import Chunked, Split
from msi_cli.store.lazycoll import LazyCollection

Row = rows.Row
# One collection in the cache: its rows and, when the file was written by this store, where each
# record's text ends, counted from the collection's first byte (None for a hand-edited file).
Table = tuple[list[tuple[str, Row]], list[int] | None]

_FIELDS = fields(State)


class LazyState(State):
    __slots__ = ("_blobs", "_pending", "_tables", "_fallback", "_roll_summary", "_head")
    _blobs: dict[str, bytes | Part | Split]  # each collection's rows, as the cache holds them (chunks.split)
    _pending: set[str]  # the collections not built yet
    _tables: dict[str, Chunked]  # collections built from the cache: the rows they came from
    _fallback: Callable[[], State]  # the state parsed from the file itself, should a blob be unreadable
    _roll_summary: tuple[str, str] | None  # credentials.roll_summary of the cached principals
    _head: tuple[Any, ...]  # the header's values as read

    @classmethod
    def from_cache(cls, head: dict[str, Any], blobs: Mapping[str, bytes | Part | Split], fallback: Callable[[], State],
                   roll_summary: tuple[str, str] | None = None) -> LazyState:
        state = cls.__new__(cls)
        state._roll_summary = roll_summary
        state.schema = head["schema"]
        state.clock_offset = head.get("clock_offset", 0)
        state.default_subscription_id = head["default_subscription"]
        state._head = state._header()
        for coll in records.collections():
            if not isinstance(blobs[coll], (bytes, Part, Split)):
                raise TypeError(coll)
        state._blobs = dict(blobs)
        state._pending = set(blobs)
        state._tables = {}
        state._fallback = fallback
        return state

    @property
    def roll_summary(self) -> tuple[str, str] | None:
        """credentials.roll_summary of the principals, while they are not read (then None: the
        principals themselves say)."""
        return self._roll_summary if "principals" in self._pending else None

    def roll_summary_now(self) -> tuple[str, str] | None:
        """A summary for a save, without reading every principal: the one the cache held while
        the principals are unused; once only some were handed out (or added), the lower of that
        and theirs. Lower is safe: roll_due's fast path only ever takes a summary that is later
        than a due date, and the principals left unread are as the old summary counted them
        (a removed one can only raise the true minimum). None when every principal is built:
        they say exactly."""
        if "principals" in self._pending or self._roll_summary is None:
            return self._roll_summary
        from msi_cli.core.credentials import roll_summary

        principals = self.principals
        built = principals.built() if isinstance(principals, LazyCollection) else None
        if built is None:
            return None
        oldest, earliest = roll_summary(built.values())
        return min(oldest, self._roll_summary[0]), min(earliest, self._roll_summary[1])

    def _header(self) -> tuple[Any, ...]:
        """The values the file's header holds (`from_cache` reads them)."""
        return self.schema, self.clock_offset, self.default_subscription_id

    def untouched(self) -> bool:
        """Whether nothing changed since the state was read: the header's values are as read, and
        each collection is unused or was used only to read objects, none of them changed."""
        if self._header() != self._head:
            return False
        for coll in records.collections():
            if coll not in self._pending:
                objects = getattr(self, coll)
                if not (isinstance(objects, LazyCollection) and objects.unchanged()):
                    return False
        return True

    def is_pending(self, coll: str) -> bool:
        """Whether the collection was never used (so it is exactly as the cache has it)."""
        return coll in self._pending

    def part(self, coll: str) -> bytes | Part | Split | None:
        """The cache's rows for the collection as it holds them, unread (None: unreadable)."""
        return self._blobs.get(coll)

    def blob(self, coll: str) -> bytes | None:
        """The cache's rows for the collection as one blob (chunks.dumps), unless they prove
        unreadable: every piece is read and checked."""
        blob = self._blobs.get(coll)
        try:
            if isinstance(blob, Part):
                return blob.data()
            if isinstance(blob, Split):
                return blob.joined()
        except ValueError:
            return None
        return blob

    def table(self, coll: str) -> Table | None:
        """The cached rows (and text ends) a used collection was built from, if it was and they
        prove readable."""
        chunked = self._tables.get(coll)
        if chunked is None:
            return None
        try:
            return chunked.rows(), chunked.ends()
        except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError):
            self._recover(coll)  # no cached text is trusted; the collection rebuilds from the file when used
            return None

    def materialize(self) -> LazyState:
        """Build every collection whole now: for a state shared between threads (msi serve),
        which then only reads plain dicts (a collection builds its objects as asked for, which is
        safe in one thread only)."""
        for coll in records.collections():
            objects = getattr(self, coll)
            if isinstance(objects, LazyCollection):
                objects.whole()
        return self

    def chunked(self, coll: str) -> Chunked | None:
        """The cached rows a used collection was read from, part by part (None: not from the cache)."""
        return self._tables.get(coll)

    def _build(self, coll: str) -> dict[str, Any]:
        """The collection, its objects built as they are asked for (LazyCollection)."""
        self._pending.discard(coll)
        blob = self._blobs[coll]
        try:
            table = Chunked(blob.data() if isinstance(blob, Part) else blob)  # a Split is read piece by piece
        except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError):
            return self._recover(coll)
        self._tables[coll] = table
        cls = records.collections()[coll]
        plan = records.plan(cls)
        lists = frozenset(plan.fields[n][0] for n, _ in plan.lists)
        return LazyCollection(table, rows.object_of(cls), rows.row_of(cls), fields(cls), lambda: self._recover(coll), lists)

    def _recover(self, coll: str) -> dict[str, Any]:
        """A damaged blob: every collection not built yet comes from the file itself, and no
        cached text is trusted for the next save."""
        parsed = self._fallback()
        for other in self._pending:
            _SLOTS[other].__set__(self, getattr(parsed, other))
        self._pending.clear()
        self._blobs.clear()
        self._tables.clear()
        objects: dict[str, Any] = getattr(parsed, coll)
        return objects

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, as State is


_SLOTS: dict[str, Any] = {coll: State.__dict__[coll] for coll in records.collections()}


def _lazy(coll: str) -> property:
    slot = _SLOTS[coll]

    def get(self: LazyState) -> dict[str, Any]:
        try:
            value: dict[str, Any] = slot.__get__(self, State)
        except AttributeError:
            value = self._build(coll)
            slot.__set__(self, value)
        return value

    def put(self: LazyState, value: dict[str, Any]) -> None:
        self._pending.discard(coll)
        slot.__set__(self, value)

    return property(get, put)


for _coll in records.collections():
    setattr(LazyState, _coll, _lazy(_coll))
