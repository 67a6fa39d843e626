"""The TOML state file: load, validate, lock, save atomically.

The TOML file is the only source of truth. Parsing and writing TOML is slow for large states
(about 0.2 s each at 1,000 resources), so beside it, in the owner-only folder `<state>.d/`, a
parse cache holds the validated state as rows, each collection on its own, with where each record's
text sits in the file, keyed by a BLAKE2 digest of the file's bytes. Any change to the file (a hand
edit, another version of msi) changes the hash and the cache is ignored. A command builds only the
collections it uses (LazyState); a save copies unused collections and unchanged records from the
old file byte for byte and serialises only the records that changed.
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from pathlib import Path

from msi_cli import __version__
from msi_cli.core.timefmt import iso, real_now
from msi_cli.core.model import SCHEMA_VERSION, State
from msi_cli.errors import StateError, mark_saved, notice
from msi_cli.store import activitylog, codec, files
from msi_cli.store.lazystate import LazyState
from msi_cli.store.rows import shared

if TYPE_CHECKING:
    from msi_cli.core.context import Ctx, Event

# The cache is trusted only when written by this very version of msi-cli.
try:  # CPython's built-in BLAKE2: a fraction of hashlib's import cost, on every call
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b


def digest_of(data: bytes) -> str:
    return blake2b(data, digest_size=20).hexdigest()


CACHE_FORMAT = f"3/{SCHEMA_VERSION}/{__version__}"
# Where each collection's records sit in the file (None: not known, the file was not written by
# this store); a collection in the cache: (start, end, its marshalled rows and record ends).
Spans = dict[str, tuple[int | None, int | None]]
Coll = tuple[int | None, int | None, bytes]
Row = tuple[Any, ...]


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.private = path.parent / (path.name + ".d")
        self.cache_path = self.private / "cache"  # the parsed state, as rows
        self.lock_path = self.private / "lock"
        self.log_path = self.private / "activity.jsonl"
        self.keys_dir = self.private / "keys"
        self.tokens_path = self.private / "tokens.json"
        self.server_path = self.private / "server.json"

    # ---- reading ---------------------------------------------------------------------------------

    def _decode(self, raw: bytes) -> tuple[LazyState, Spans, str]:
        """The state in `raw`, where its collections' records sit in `raw`, and its digest: from
        the cache when it matches, else parsed from the TOML (and cached)."""
        digest = digest_of(raw)
        files.check_private_dir(self.private)
        cached = self._read_blob(self.cache_path, digest)
        if cached is not None:
            try:
                colls = cached["colls"]
                blobs = {coll: colls[coll][2] for coll in codec.COLLECTIONS}
                spans = {coll: (colls[coll][0], colls[coll][1]) for coll in codec.COLLECTIONS}
                summary = cached.get("roll_summary")
                if not (isinstance(summary, tuple) and len(summary) == 2 and all(isinstance(v, str) for v in summary)):
                    summary = None
                state = LazyState.from_cache(cached["header"], blobs, lambda: self._parse(raw), summary)
                return state, spans, digest
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                pass  # a cache this version cannot read: fall back to the file itself
        parsed = self._parse(raw)
        head = codec.header(parsed)
        from msi_cli.core.credentials import roll_summary

        summary = roll_summary(parsed.principals.values())
        blobs = {coll: marshal.dumps((shared(codec.collection_rows(coll, getattr(parsed, coll))), None)) for coll in codec.COLLECTIONS}
        self._write_blob(self.cache_path, {"format": CACHE_FORMAT, "digest": digest, "header": head, "roll_summary": summary,
                                           "colls": {coll: (None, None, blob) for coll, blob in blobs.items()}})
        # built from the rows, as a cached state is: equal strings are one object, and stay so in the next cache
        state = LazyState.from_cache(head, blobs, lambda: parsed, summary)
        return state, {coll: (None, None) for coll in codec.COLLECTIONS}, digest

    def _parse(self, raw: bytes) -> State:
        """The state the TOML in `raw` describes, validated; StateError naming the line if not."""
        import tomllib

        try:
            text = raw.decode("utf-8")
            doc = tomllib.loads(text)
        except UnicodeDecodeError as exc:
            raise StateError(f"{self.path}: not UTF-8 text (byte {exc.start}); the file was left unchanged") from None
        except tomllib.TOMLDecodeError as exc:
            raise StateError(f"{self.path}: not valid TOML: {exc}; the file was left unchanged") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise StateError(f"{self.path}: arrays or tables nested too deeply for a state file; the file was left unchanged") from None
        try:
            doc = codec.upgrade(doc)
            return codec.load(doc)
        except codec.InvalidDocument as exc:
            line = codec.locate(text, exc.path)
            where = f"{self.path}, line {line}" if line else str(self.path)
            raise StateError(f"{where}: {exc.message}; the file was left unchanged") from None

    def _read_blob(self, path: Path, digest: str) -> dict[str, Any] | None:
        raw = files.read_private(path, "cache file", cache=True)  # refused when planted by another user
        if raw is None:
            return None
        try:
            blob = marshal.loads(raw)
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT or blob.get("digest") != digest:
            return None
        return blob

    def _write_blob(self, path: Path, blob: dict[str, Any]) -> None:
        with contextlib.suppress(StateError, OSError, ValueError):
            files.private_dir(self.private)
            files.write_atomic(path, marshal.dumps(blob), durable=False)  # keyed by digest: a lost one is rebuilt

    def read(self) -> State:
        """The current state, without taking the lock. A missing file is created fresh first."""
        raw = files.read_bytes(self.path)
        if raw is None:
            with self.transaction() as ctx:
                return ctx.state
        return self._decode(raw)[0]

    # ---- writing ---------------------------------------------------------------------------------

    def _encode(self, state: State, raw: bytes, spans: Spans) -> tuple[bytes, codec.Doc, dict[str, Coll]]:
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
            raise StateError(f"refusing to save an invalid state ({exc.message}); {self.path} is unchanged") from None
        lazy = state if isinstance(state, LazyState) else None
        parts = [self._utf8(tomlout.dumps(head))]
        pos = len(parts[0])
        colls: dict[str, Coll] = {}
        changed: dict[str, set[str]] | None = {} if lazy is not None else None
        for coll in codec.COLLECTIONS:
            start, end = spans.get(coll, (None, None))
            blob = lazy.blob(coll) if lazy is not None else None
            old = lazy.table(coll) if lazy is not None else None
            if lazy is not None and blob is not None and start is not None and end is not None and lazy.is_pending(coll):
                parts.append(raw[start:end])  # never used: as it was
                colls[coll] = (pos, pos + end - start, blob)
                pos += end - start
                continue
            objects = getattr(state, coll)
            table = codec.collection_rows(coll, objects)
            old_rows, old_ends = old or ([], None)
            if old is not None and table == old_rows and blob is not None and old_ends is not None and start is not None and end is not None:
                parts.append(raw[start:end])  # used, but unchanged
                colls[coll] = (pos, pos + end - start, blob)
                pos += end - start
                continue
            keys: set[str] = set()
            ends, size = self._texts(coll, objects, table, old_rows, old_ends, raw, start, parts, keys)
            if changed is not None and (old is None or keys or len(table) != len(old_rows)):
                keys.update(set(dict(old_rows)) - set(objects))  # removed
                changed[coll] = keys
            colls[coll] = (pos, pos + size, marshal.dumps((table if old is not None else shared(table), ends)))
            pos += size
        self._check(lambda: codec.check_links(state, changed))  # with nothing changed: the default subscription alone
        return b"".join(parts), head, colls

    def _texts(self, coll: str, objects: dict[str, Any], table: list[tuple[str, Row]], old_rows: list[tuple[str, Row]],
               old_ends: list[int] | None, raw: bytes, start: int | None, parts: list[bytes],
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
                text = raw[start + (old_ends[n - 1] if n else 0):start + old_ends[n]]
            else:
                rec = codec.to_record(objects[key])
                if not same:
                    keys.add(key)
                    self._check(functools.partial(codec.check_record, coll, rec, index))
                text = self._utf8("\n" + tomlout.dumps({coll: [rec]}))
            parts.append(text)
            size += len(text)
            ends.append(size)
        return ends, size

    def _utf8(self, text: str) -> bytes:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8 on the command line
            raise StateError(f"refusing to save an invalid state (a value is not valid Unicode text); {self.path} is unchanged") from None

    def _check(self, check: Callable[[], object]) -> None:
        try:
            check()
        except codec.InvalidDocument as exc:
            raise StateError(f"refusing to save an invalid state ({exc.message}); {self.path} is unchanged") from None

    @contextlib.contextmanager
    def transaction(self, clock: Callable[[], int] = real_now) -> Iterator[Ctx]:
        """Lock, load (or start fresh), hand out a context, then validate and save if it changed.
        `clock`: real epoch seconds (the server passes its injected clock)."""
        from msi_cli.core import credentials, directory, maintenance
        from msi_cli.core.context import Ctx
        from msi_cli.store.keyring import FileKeyRing

        files.check_state_path(self.path)
        files.private_dir(self.path.parent)
        files.private_dir(self.private, tighten=True)
        with files.exclusive_lock(self.lock_path):
            raw = files.read_bytes(self.path)
            self._remove_leftovers()
            now = clock()
            spans: Spans = {}
            if raw is None:
                state = directory.fresh_state(iso(now))
            else:
                state, spans, digest = self._decode(raw)
            keys = FileKeyRing(self.keys_dir)
            ctx = Ctx(state, now + state.clock_offset, keys)
            try:
                maintenance.maintain(ctx)
                yield ctx
                data, head, colls = self._encode(ctx.state, raw or b"", spans)
                if data != raw:
                    files.write_atomic(self.path, data)
                    mark_saved()
                    if raw is None:
                        notice(f"created a new state at {self.path} (one tenant, one subscription)")
                    digest = digest_of(data)
                    summary = ctx.state.roll_summary if isinstance(ctx.state, LazyState) else None
                    if summary is None:
                        summary = credentials.roll_summary(ctx.state.principals.values())
                    self._write_blob(self.cache_path, {"format": CACHE_FORMAT, "digest": digest, "header": head, "colls": colls,
                                                       "roll_summary": summary})
                    with contextlib.suppress(OSError):
                        os.unlink(self.private / "cache-text")  # the record texts of msi-cli before 0.2: now read from the file
            except BaseException:
                keys.discard_new()
                raise
            keys.settle(lambda: _key_names(ctx.state))
            if ctx.events:
                self._append_log(ctx.events)

    def _remove_leftovers(self) -> None:
        """Temporary files of a writer that was killed mid-write (we hold the lock)."""
        files.remove_leftovers(self.path.parent, f".{self.path.name}.")
        files.remove_leftovers(self.private)  # keys/ (thousands of files) only when its journal says so

    def _append_log(self, events: list[Event]) -> None:
        activitylog.append(self.log_path, events)

    def log_entries(self, last: int | None = None) -> list[dict[str, str]]:
        """Activity log entries, oldest first (see activitylog.entries)."""
        if not files.check_private_dir(self.private):
            return []
        return activitylog.entries(self.log_path, last)


LOG_FIELDS = activitylog.FIELDS


def _key_names(state: State) -> set[str]:
    """The key files the state uses: tenants' signing keys, identities' certificates and the keys
    of the OIDC issuers msi plays."""
    names = {k.kid for t in state.tenants.values() for k in t.signing_keys}
    names.update(c.thumbprint for p in state.principals.values() for c in p.key_credentials)
    names.update(i.kid for i in state.issuers.values())
    return names
