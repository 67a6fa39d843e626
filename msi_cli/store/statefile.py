"""The TOML state file: load, validate, lock, save atomically.

The TOML file is the only source of truth. Parsing and writing TOML is slow for large states
(about 0.2 s each at 1,000 resources), so beside it, in the owner-only folder `<state>.d/`, a
parse cache holds the validated state as rows, each collection on its own, with where each record's
text sits in the file, keyed by a BLAKE2 digest of the file's bytes. Any change to the file (a hand
edit, another version of msi) changes the hash and the cache is ignored.

Hashing a large file costs a read of it (10-15 ms at 10,000 resources), so once a file has been
hashed and has been still for a while, a stamp records its digest against its exact stat (inode,
size, modification and change times in ns). A read whose stat matches the stamp trusts the digest
without reading the file. A later change to the file, by any means, sets its change time (which no
user can set back) to the time of that change, so it is never missed, unless it fell in the very
clock tick the stamped stat was taken in (file times are kept per tick, at most 10 ms on Linux's
filesystems): so no stamp is written for a file changed less than STAMP_SETTLED_NS ago (ten
ticks), or COARSE_SETTLED_NS ago where a time is a whole second (a filesystem that keeps whole
seconds: ext3, FAT, some network ones). A writer of a large file stamps it itself at the end of
its transaction (`_vouch`), after comparing the file with what it wrote, once the tick of the file
clock its times were taken in has passed (any later change then gets a later time): otherwise the
next command of a script, which comes sooner than 100 ms, would hash it again. A command builds only the
collections it uses (LazyState); a save copies unused collections and unchanged records from the
old file byte for byte and serialises only the records that changed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from pathlib import Path

from msi_cli import __version__, hashing
from msi_cli.core.timefmt import iso, real_now
from msi_cli.core.model import SCHEMA_VERSION, State
from msi_cli.errors import StateError, mark_saved, notice
from msi_cli.store import cachefile, files, records
from msi_cli.store.lazystate import LazyState
from msi_cli.store.stamp import _changed_ns, _coarse_now_ns, _key_names, _stat_key, _whole_seconds, seal, unseal

__all__ = ["CACHE_FORMAT", "StateFile", "_coarse_now_ns", "_key_names", "_stat_key", "digest_of", "seal", "unseal"]

if TYPE_CHECKING:
    from msi_cli.store import codec
    from msi_cli.store.encode import Coll, Spans
    from msi_cli.core.context import Ctx, Event

def digest_of(data: bytes) -> str:
    return hashing.blake2b_160(data)


# The cache is trusted only when written by this very version of msi-cli.
CACHE_FORMAT = f"9/{SCHEMA_VERSION}/{__version__}"
STAMP_SETTLED_NS = 100_000_000
COARSE_SETTLED_NS = 2_000_000_000
_now_ns = time.time_ns  # the real clock (file times are real), read through this name so tests can move it
VOUCH_MIN_BYTES = 1 << 20


class StateFile:
    def __init__(self, path: Path) -> None:
        if os.path.islink(path):  # the state is the file it names: written there, its private folder beside it
            path = Path(os.path.realpath(path))
        self.path = path
        self.private = path.parent / (path.name + ".d")
        self.cache_path = self.private / "cache"  # the parsed state, as rows
        self.stamp_path = self.private / "stamp"  # the digest of the state file with this exact stat
        self.lock_path = self.private / "lock"
        self.log_path = self.private / "activity.jsonl"
        self.keys_dir = self.private / "keys"
        self.tokens_path = self.private / "tokens.json"
        self.server_path = self.private / "server.json"

    # ---- reading ---------------------------------------------------------------------------------

    def _decode(self, raw: bytes, digest: str | None = None) -> tuple[LazyState, Spans, str]:
        """The state in `raw`, where its collections' records sit in `raw`, and its digest (given
        when a stamp vouches for it): from the cache when it matches, else parsed from the TOML
        (and cached)."""
        digest = digest or digest_of(raw)
        files.check_private_dir(self.private)
        cached = self._read_blob(self.cache_path, digest)
        found = self._from_cache(cached, lambda: self._parse(raw)) if cached is not None else None
        if found is not None:
            return found[0], found[1], digest
        from msi_cli.store import chunks, codec, encode  # a cache that misses: the file is parsed

        parsed = self._parse(raw)
        head = codec.header(parsed)
        from msi_cli.core.credentials import roll_summary

        summary = roll_summary(parsed.principals.values())
        blobs = {coll: chunks.split(codec.collection_rows(coll, getattr(parsed, coll)), None, encode.name_at(coll)) for coll in codec.COLLECTIONS}
        self._write_blob(self.cache_path, {"format": CACHE_FORMAT, "digest": digest, "header": head, "roll_summary": summary,
                                           "colls": {coll: (None, None, blob) for coll, blob in blobs.items()}})
        # built from the rows, as a cached state is: equal strings are one object, and stay so in the next cache
        state = LazyState.from_cache(head, blobs, lambda: parsed, summary)
        return state, {coll: (None, None) for coll in codec.COLLECTIONS}, digest

    def _from_cache(self, cached: dict[str, Any], fallback: Callable[[], State]) -> tuple[LazyState, Spans] | None:
        """The state the cache holds and where its records sit in the file; None if this version
        cannot read it. `fallback` parses the file, should a collection prove damaged."""
        try:
            colls = cached["colls"]
            names = records.collections()
            blobs = {coll: colls[coll][2] for coll in names}
            spans = {coll: (colls[coll][0], colls[coll][1]) for coll in names}
            summary = cached.get("roll_summary")
            if not (isinstance(summary, tuple) and len(summary) == 2 and all(isinstance(v, str) for v in summary)):
                summary = None
            return LazyState.from_cache(cached["header"], blobs, fallback, summary), spans
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return None  # a cache this version cannot read: fall back to the file itself

    def _stamped(self, st: os.stat_result | None) -> str | None:
        """The digest the stamp records for exactly this stat of the state file, if it does."""
        if st is None:
            return None
        blob = self._read_blob(self.stamp_path, None)
        if blob is None or blob.get("stat") != _stat_key(st) or not isinstance(blob.get("digest"), str):
            return None
        digest: str = blob["digest"]
        return digest

    def _stamp(self, st: os.stat_result | None, digest: str) -> None:
        """Record the digest against the stat, once the file has been still long enough."""
        if st is not None and _now_ns() - _changed_ns(st) >= (COARSE_SETTLED_NS if _whole_seconds(st) else STAMP_SETTLED_NS):
            self._write_stamp(st, digest)

    def _write_stamp(self, st: os.stat_result, digest: str) -> None:
        self._write_blob(self.stamp_path, {"format": CACHE_FORMAT, "stat": _stat_key(st), "digest": digest})

    def _vouch(self, data: bytes, digest: str) -> None:
        """Stamp the file this writer saved, at the end of its transaction, if it is still what was
        written (compared byte for byte: cheaper than the next command's hash) and its times lie
        in a tick of the file clock that has passed: any later change then gets a later time.
        Large files only (at 10,000 resources the next command saves a 12 ms hash); a small one is
        hashed in a moment."""
        if len(data) < VOUCH_MIN_BYTES:
            return
        coarse = _coarse_now_ns()  # before the stats: a change after this instant gets this tick's time or a later one
        try:
            before = os.stat(self.path)
        except OSError:
            return
        if coarse is None or _whole_seconds(before) or coarse <= _changed_ns(before):  # still the tick of the last change: a change now could keep the stat
            return
        from msi_cli.store import samefile

        st = samefile.holds(self.path, data)
        if st is not None and _stat_key(st) == _stat_key(before):
            self._write_stamp(st, digest)

    def _reread(self) -> State:
        raw = files.read_bytes(self.path)
        if raw is None:
            raise StateError(f"state file {self.path} disappeared while reading it")
        return self._parse(raw)

    def _parse(self, raw: bytes) -> State:
        """The state the TOML in `raw` describes, validated; StateError naming the line if not."""
        from msi_cli.store import codec

        text = ""
        try:
            text, doc = codec.decode(raw)
            return codec.load(codec.upgrade(doc))
        except codec.InvalidDocument as exc:
            line = codec.locate(text, exc.path)
            where = f"{self.path}, line {line}" if line else str(self.path)
            raise StateError(f"{where}: {exc.message}; the file was left unchanged") from None

    def _read_blob(self, path: Path, digest: str | None) -> dict[str, Any] | None:
        if path == self.cache_path:  # its head now, each collection's rows when used
            opened = files.open_private(path, "cache file", cache=True)  # refused when planted by another user
            blob = None if opened is None else cachefile.load(cachefile.Source(opened[0], opened[1].st_size))
        else:
            raw = files.read_private(path, "cache file", cache=True)
            blob = None if raw is None else unseal(raw)
        if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT or (digest is not None and blob.get("digest") != digest):
            return None
        return blob

    def _write_blob(self, path: Path, blob: dict[str, Any]) -> None:
        if path == self.cache_path and self._append_cache(blob):
            return
        with contextlib.suppress(StateError, OSError, ValueError):
            files.private_dir(self.private)
            data = cachefile.dumps(blob) if path == self.cache_path else seal(blob)
            files.write_atomic(path, data, durable=False)  # keyed by digest: a lost one is rebuilt

    def _append_cache(self, blob: dict[str, Any]) -> bool:
        """Append to the cache file the pieces of `blob` it does not hold yet and a new head, if
        `blob` was read from that very file (else, or when mostly stale, it is written whole)."""
        src = cachefile.source_of(blob)
        expect = src.identity() if src is not None else None
        if src is None or expect is None:
            return False
        try:
            tail = cachefile.appended(src, blob)
        except ValueError:  # a piece to copy proved unreadable
            return False
        from msi_cli.store import samefile

        return tail is not None and samefile.append_to(self.cache_path, tail, expect, "cache file")

    def read(self) -> State:
        """The current state, without taking the lock. A missing file is created fresh first."""
        try:
            st: os.stat_result | None = os.stat(self.path)
        except OSError:
            st = None
        trusted = st is not None and stat.S_ISREG(st.st_mode) and files.check_private_dir(self.private)
        digest = self._stamped(st) if trusted else None
        if digest is not None:  # the file is as it was hashed: its cache, without reading it
            cached = self._read_blob(self.cache_path, digest)
            found = self._from_cache(cached, self._reread) if cached is not None else None
            if found is not None:
                return found[0]
        raw, st = files.read_bytes_stat(self.path)
        if raw is None:
            with self.transaction() as ctx:
                return ctx.state
        state, _, digest = self._decode(raw)
        self._stamp(st, digest)
        return state

    # ---- writing ---------------------------------------------------------------------------------

    def _encode(self, state: State, raw: bytes, spans: Spans) -> tuple[bytes, codec.Doc, dict[str, Coll]]:
        """The text and cache rows of a save (store/encode.py)."""
        from msi_cli.store import encode

        return encode.encode(self.path, state, raw, spans)

    @contextlib.contextmanager
    def transaction(self, clock: Callable[[], int] = real_now) -> Iterator[Ctx]:
        """Lock, load (or start fresh), hand out a context, then validate and save if it changed.
        `clock`: real epoch seconds (the server passes its injected clock)."""
        from msi_cli.core import directory, maintenance
        from msi_cli.core.context import Ctx
        from msi_cli.store.keyring import FileKeyRing

        files.check_state_path(self.path)
        files.private_dir(self.path.parent)
        files.private_dir(self.private, tighten=True)
        with files.exclusive_lock(self.lock_path):
            raw, st = files.read_bytes_stat(self.path)
            self._remove_leftovers()
            now = clock()
            spans: Spans = {}
            if raw is None:
                state = directory.fresh_state(iso(now))
            else:
                state, spans, digest = self._decode(raw, self._stamped(st))
            keys = FileKeyRing(self.keys_dir)
            ctx = Ctx(state, now + state.clock_offset, keys)
            written: tuple[bytes, str] | None = None
            try:
                maintenance.maintain(ctx)
                yield ctx
                if ctx.state is not state or not _as_read(state, spans):  # else a save would give back the file as it is
                    data, head, colls = self._encode(ctx.state, raw or b"", spans)
                    if data != raw:
                        digest_later = _digest_beside(data)  # on the other core while the file is written
                        keys.flush()  # the key files it names are durable before the state is
                        files.write_atomic(self.path, data)
                        mark_saved()
                        if raw is None:
                            notice(f"created a new state at {self.path} (one tenant, one subscription)")
                        digest = digest_later()
                        written = (data, digest)
                        self._cache_saved(ctx.state, digest, head, colls)
                        with contextlib.suppress(OSError):
                            os.unlink(self.private / "cache-text")  # the record texts of msi-cli before 0.2: now read from the file
                    elif any(start is None for start, _ in spans.values()):  # a file parsed as it was (edited by hand)
                        self._cache_saved(ctx.state, digest, head, colls)  # and is: the cache learns where its records sit
            except BaseException:
                keys.discard_new()
                raise
            keys.settle(lambda: _key_names(ctx.state), lambda: _key_names(ctx.state, changed_only=True))
            if ctx.events:
                self._append_log(ctx.events)
            if written is not None:
                self._vouch(*written)

    def _cache_saved(self, state: State, digest: str, head: codec.Doc, colls: dict[str, Coll]) -> None:
        """Cache the state a save wrote (or found written) as the file with `digest`: its header,
        and each collection's place in the file with its rows."""
        from msi_cli.core import credentials

        summary = state.roll_summary_now() if isinstance(state, LazyState) else None
        if summary is None:
            summary = credentials.roll_summary(state.principals.values())
        self._write_blob(self.cache_path, {"format": CACHE_FORMAT, "digest": digest, "header": head, "colls": colls,
                                           "roll_summary": summary})

    def _remove_leftovers(self) -> None:
        """Temporary files of a writer that was killed mid-write (we hold the lock)."""
        files.remove_leftovers(self.path.parent, f".{self.path.name}.")
        files.remove_leftovers(self.private)  # keys/ (thousands of files) only when its journal says so

    def _append_log(self, events: list[Event]) -> None:
        from msi_cli.store import activitylog

        activitylog.append(self.log_path, events)

    def log_entries(self, last: int | None = None) -> list[dict[str, str]]:
        """Activity log entries, oldest first (see activitylog.entries)."""
        if not files.check_private_dir(self.private):
            return []
        from msi_cli.store import activitylog

        return activitylog.entries(self.log_path, last)



def _as_read(state: State, spans: Spans) -> bool:
    """Whether a save of `state` would give back the file it was read from byte for byte, without
    encoding it: a state read from the cache of a file this store wrote (so every collection's
    place in it is known, and the header is as it writes one), in which nothing changed."""
    return (isinstance(state, LazyState) and len(spans) == len(records.collections())
            and all(start is not None and end is not None for start, end in spans.values()) and state.untouched())


def _digest_beside(data: bytes) -> Callable[[], str]:
    """digest_of(data), computed in another thread for a large file (BLAKE2 releases the GIL, so
    it runs while the file is written and synced); call the result for the digest."""
    if len(data) < 1 << 20:
        digest = digest_of(data)
        return lambda: digest
    import threading

    found: list[str] = []
    worker = threading.Thread(target=lambda: found.append(digest_of(data)), daemon=True)
    worker.start()

    def result() -> str:
        worker.join()
        return found[0] if found else digest_of(data)

    return result
