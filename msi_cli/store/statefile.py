"""The TOML state file: load, validate, lock, save atomically.

The TOML file is the only source of truth. Parsing and writing TOML is slow for large states
(about 0.2 s each at 1,000 resources), so beside it, in the owner-only folder `<state>.d/`, a
parse cache holds the validated document and each record's TOML text, keyed by a BLAKE2 digest of the
file's bytes. Any change to the file (a hand edit, another version of msi) changes the hash and the
cache is ignored; a save re-serialises only the records that changed.
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
from msi_cli.core.clock import iso, real_now
from msi_cli.core.model import SCHEMA_VERSION, State
from msi_cli.errors import StateError, mark_saved
from msi_cli.store import codec, files

if TYPE_CHECKING:
    from msi_cli.core.context import Ctx, Event

# The cache is trusted only when written by this very version of msi-cli.
try:  # CPython's built-in BLAKE2: a fraction of hashlib's import cost, on every call
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b


def digest_of(data: bytes) -> str:
    return blake2b(data, digest_size=20).hexdigest()


CACHE_FORMAT = f"2/{SCHEMA_VERSION}/{__version__}"
Rows = codec.Rows
Texts = dict[str, dict[str, str]]  # each record's TOML text, by collection and key


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.private = path.parent / (path.name + ".d")
        self.cache_path = self.private / "cache"  # the parsed state, as rows
        self.texts_path = self.private / "cache-text"  # each record's TOML, for the next save
        self.lock_path = self.private / "lock"
        self.log_path = self.private / "activity.jsonl"
        self.keys_dir = self.private / "keys"
        self.tokens_path = self.private / "tokens.json"
        self.server_path = self.private / "server.json"

    # ---- reading ---------------------------------------------------------------------------------

    def _decode(self, raw: bytes) -> tuple[State, Rows, str]:
        """The state in `raw`, its rows and its digest: from the cache when it matches."""
        digest = digest_of(raw)
        files.check_private_dir(self.private)
        cached = self._read_blob(self.cache_path, digest)
        if cached is not None:
            try:
                table = cached["rows"]
                return codec.from_rows(cached["header"], table), table, digest
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # a cache this version cannot read: fall back to the file itself
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
            state = codec.load(doc)
        except codec.InvalidDocument as exc:
            line = codec.locate(text, exc.path)
            where = f"{self.path}, line {line}" if line else str(self.path)
            raise StateError(f"{where}: {exc.message}; the file was left unchanged") from None
        table = codec.rows(state)
        self._write_blob(self.cache_path, {"format": CACHE_FORMAT, "digest": digest, "header": codec.header(state), "rows": table})
        return state, table, digest

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

    def _encode(self, state: State, old_rows: Rows, old_texts: Texts) -> tuple[bytes, codec.Doc, Rows, Texts]:
        """TOML for the state. A record whose row is unchanged keeps its text; one that changed is
        validated field by field and serialised again; the links between all records are
        validated every time."""
        import tomli_w

        head = codec.header(state)
        try:
            codec.upgrade(dict(head))
            codec.check_header(head)
        except codec.InvalidDocument as exc:
            raise StateError(f"refusing to save an invalid state ({exc.message}); {self.path} is unchanged") from None
        parts = [tomli_w.dumps(head)]
        table = codec.rows(state)
        texts: Texts = {}
        for coll, entries in table.items():
            before = dict(old_rows.get(coll, ()))
            known = old_texts.get(coll, {})
            objects = getattr(state, coll)
            out: dict[str, str] = {}
            for index, (key, row) in enumerate(entries):
                text = known.get(key) if before.get(key) == row else None
                if text is None:
                    rec = codec.to_record(objects[key])
                    if before.get(key) != row:
                        self._check(functools.partial(codec.check_record, coll, rec, index))
                    text = "\n" + tomli_w.dumps({coll: [rec]})
                out[key] = text
                parts.append(text)
            texts[coll] = out
        self._check(lambda: codec.check_links(state))
        try:
            data = "".join(parts).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8 on the command line
            raise StateError(f"refusing to save an invalid state (a value is not valid Unicode text); {self.path} is unchanged") from None
        return data, head, table, texts

    def _check(self, check: Callable[[], object]) -> None:
        try:
            check()
        except codec.InvalidDocument as exc:
            raise StateError(f"refusing to save an invalid state ({exc.message}); {self.path} is unchanged") from None

    @contextlib.contextmanager
    def transaction(self, clock: Callable[[], int] = real_now) -> Iterator[Ctx]:
        """Lock, load (or start fresh), hand out a context, then validate and save if it changed.
        `clock`: real epoch seconds (the server passes its injected clock)."""
        from msi_cli.core import lifecycle, maintenance
        from msi_cli.core.context import Ctx
        from msi_cli.store.keyring import FileKeyRing

        files.check_state_path(self.path)
        files.private_dir(self.path.parent)
        files.private_dir(self.private, tighten=True)
        with files.exclusive_lock(self.lock_path):
            raw = files.read_bytes(self.path)
            self._remove_leftovers()
            now = clock()
            old_rows: Rows = {}
            old_texts: Texts = {}
            if raw is None:
                state = lifecycle.fresh_state(iso(now))
            else:
                state, old_rows, digest = self._decode(raw)
                blob = self._read_blob(self.texts_path, digest)
                if blob is not None and isinstance(blob.get("texts"), dict):
                    old_texts = blob["texts"]
            keys = FileKeyRing(self.keys_dir)
            ctx = Ctx(state, now + state.clock_offset, keys)
            try:
                maintenance.maintain(ctx)
                yield ctx
                data, head, table, texts = self._encode(ctx.state, old_rows, old_texts)
                if data != raw:
                    files.write_atomic(self.path, data)
                    mark_saved()
                    digest = digest_of(data)
                    self._write_blob(self.cache_path, {"format": CACHE_FORMAT, "digest": digest, "header": head, "rows": table})
                    self._write_blob(self.texts_path, {"format": CACHE_FORMAT, "digest": digest, "texts": texts})
            except BaseException:
                keys.discard_new()
                raise
            keys.settle(_key_names(ctx.state))
            if ctx.events:
                self._append_log(ctx.events)

    def _remove_leftovers(self) -> None:
        """Temporary files of a writer that was killed mid-write (we hold the lock)."""
        files.remove_leftovers(self.path.parent, f".{self.path.name}.")
        files.remove_leftovers(self.private)  # keys/ (thousands of files) only when its journal says so

    def _append_log(self, events: list[Event]) -> None:
        """Record the committed change in the activity log. The change is saved already: a log
        that cannot be written is a warning, never a failure reported for a change that was made."""
        import json

        lines = "".join(
            json.dumps({"time": e.time, "operation": e.operation, "target": e.target, "outcome": e.outcome, "detail": e.detail})
            + "\n"
            for e in events
        )
        try:
            files.append_line(self.log_path, lines.encode("utf-8", "backslashreplace"))
        except (StateError, OSError) as exc:
            from msi_cli.errors import warn

            why = exc.message if isinstance(exc, StateError) else exc.strerror or str(exc)
            warn(f"the change was saved, but the activity log was not written: {why}")

    def log_entries(self, last: int | None = None) -> list[dict[str, str]]:
        """Activity log entries, oldest first; with `last`, only the tail is read from disk. A
        line that is not a log entry (a torn or hand-edited line) is skipped with a warning that
        names it: the good entries are still shown."""
        if not files.check_private_dir(self.private):
            return []
        try:
            fd, _ = files._open_private(self.log_path, os.O_RDONLY, "activity log")
        except FileNotFoundError:
            return []
        try:
            with os.fdopen(fd, "rb") as fh:
                if last is None:
                    raw = fh.read(files.MAX_PRIVATE_BYTES + 1)
                    if len(raw) > files.MAX_PRIVATE_BYTES:
                        raise StateError(f"activity log {self.log_path} is too large to show whole", hint="use --last N")
                else:
                    size = fh.seek(0, 2)
                    block, raw = 64 * 1024, b""
                    while size > 0 and raw.count(b"\n") <= last:
                        step = min(block, size)
                        size -= step
                        fh.seek(size)
                        raw = fh.read(step) + raw
                    if size > 0:
                        raw = raw.split(b"\n", 1)[1]  # drop a partial first line
        except OSError as exc:
            raise StateError(f"cannot read {self.log_path}: {exc.strerror}") from None
        import json

        numbered = [(n, line) for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1) if line.strip()]
        if last is not None:
            numbered = numbered[-last:]
        entries, bad = [], []
        for n, line in numbered:
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                entry = None
            if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in LOG_FIELDS):
                entries.append({k: entry[k] for k in LOG_FIELDS})
            else:
                bad.append((n, line))
        if bad:
            from msi_cli.errors import warn

            n, line = bad[0]
            where = f"line {n}" if last is None else "a line"
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            warn(f"{self.log_path}: {where} is not a log entry and was skipped{more}: {line[:60]!r}")
        return entries


LOG_FIELDS = ("time", "operation", "target", "outcome", "detail")


def _key_names(state: State) -> set[str]:
    """The key files the state uses: tenants' signing keys, identities' certificates and the keys
    of the OIDC issuers msi plays."""
    names = {k.kid for t in state.tenants.values() for k in t.signing_keys}
    names.update(c.thumbprint for p in state.principals.values() for c in p.key_credentials)
    names.update(i.kid for i in state.issuers.values())
    return names
