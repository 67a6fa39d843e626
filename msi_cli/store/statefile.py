"""The TOML state file: load, validate, lock, save atomically.

The TOML file is the only source of truth. Parsing and writing TOML is slow for large states
(about 0.2 s each at 1,000 resources), so beside it, in the owner-only folder `<state>.d/`, a
parse cache holds the validated document and each record's TOML text, keyed by a BLAKE2 digest of the
file's bytes. Any change to the file (a hand edit, another version of msi) changes the hash and the
cache is ignored; a save re-serialises only the records that changed.
"""

from __future__ import annotations

import contextlib
import marshal
from collections.abc import Iterator
from typing import TYPE_CHECKING
from pathlib import Path

from msi_cli import __version__
from msi_cli.core.clock import iso, real_now
from msi_cli.core.model import SCHEMA_VERSION, State
from msi_cli.errors import StateError
from msi_cli.store import codec, files

if TYPE_CHECKING:
    from msi_cli.core.context import Ctx

# The cache is trusted only when written by this very version of msi-cli.
try:  # CPython's built-in BLAKE2: a fraction of hashlib's import cost, on every call
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b


def digest_of(data: bytes) -> str:
    return blake2b(data, digest_size=20).hexdigest()


CACHE_FORMAT = f"1/{SCHEMA_VERSION}/{__version__}"
Chunks = dict[str, dict[str, tuple[dict, str | None]]]


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.private = path.parent / (path.name + ".d")
        self.cache_path = self.private / "cache"
        self.lock_path = self.private / "lock"
        self.log_path = self.private / "activity.jsonl"
        self.keys_dir = self.private / "keys"
        self.tokens_path = self.private / "tokens.json"
        self.server_path = self.private / "server.json"

    # ---- reading ---------------------------------------------------------------------------------

    def _decode(self, raw: bytes) -> tuple[State, Chunks]:
        digest = digest_of(raw)
        cached = self._read_cache(digest)
        if cached is not None:
            try:
                head, chunks = cached
                doc = dict(head)
                for coll, entries in chunks.items():
                    if entries:
                        doc[coll] = [rec for rec, _ in entries.values()]
                return codec.load_trusted(doc), chunks
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
        try:
            doc = codec.upgrade(doc)
            state = codec.load(doc)
        except codec.InvalidDocument as exc:
            line = codec.locate(text, exc.path)
            where = f"{self.path}, line {line}" if line else str(self.path)
            raise StateError(f"{where}: {exc.message}; the file was left unchanged") from None
        chunks: Chunks = {coll: {key: (rec, None) for key, rec in recs} for coll, recs in codec.records(state).items()}
        self._write_cache(digest, codec.header(state), chunks)
        return state, chunks

    def _read_cache(self, digest: str) -> tuple[dict, Chunks] | None:
        try:
            blob = marshal.loads(self.cache_path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT or blob.get("digest") != digest:
            return None
        return blob.get("header"), blob.get("chunks")

    def _write_cache(self, digest: str, head: dict, chunks: Chunks) -> None:
        blob = marshal.dumps({"format": CACHE_FORMAT, "digest": digest, "header": head, "chunks": chunks})
        with contextlib.suppress(StateError, OSError):
            files.private_dir(self.private)
            files.write_atomic(self.cache_path, blob, durable=False)  # keyed by hash: a lost one is rebuilt

    def read(self) -> State:
        """The current state, without taking the lock. A missing file is created fresh first."""
        raw = files.read_bytes(self.path)
        if raw is None:
            with self.transaction() as ctx:
                return ctx.state
        return self._decode(raw)[0]

    # ---- writing ---------------------------------------------------------------------------------

    def _encode(self, state: State, prev: Chunks) -> tuple[bytes, dict, Chunks]:
        """TOML for the state, re-serialising only records that changed, which are validated
        field by field; the links between all records are validated every time."""
        import tomli_w

        head = codec.header(state)
        try:
            codec.upgrade(dict(head))
            codec.check_header(head)
        except codec.InvalidDocument as exc:
            raise StateError(f"refusing to save an invalid state ({exc.message}); {self.path} is unchanged") from None
        parts = [tomli_w.dumps(head)]
        chunks: Chunks = {}
        for coll, recs in codec.records(state).items():
            old = prev.get(coll, {})
            entries: dict[str, tuple[dict, str | None]] = {}
            for index, (key, rec) in enumerate(recs):
                hit = old.get(key)
                chunk = hit[1] if hit is not None and hit[0] == rec else None
                if chunk is None:
                    if hit is None or hit[0] != rec:
                        self._check(lambda: codec.check_record(coll, rec, index))
                    chunk = "\n" + tomli_w.dumps({coll: [rec]})
                entries[key] = (rec, chunk)
                parts.append(chunk)
            chunks[coll] = entries
        self._check(lambda: codec.check_links(state))
        return "".join(parts).encode("utf-8"), head, chunks

    def _check(self, check) -> None:
        try:
            check()
        except codec.InvalidDocument as exc:
            raise StateError(f"refusing to save an invalid state ({exc.message}); {self.path} is unchanged") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Ctx]:
        """Lock, load (or start fresh), hand out a context, then validate and save if it changed."""
        from msi_cli.core import credentials, lifecycle
        from msi_cli.core.context import Ctx
        from msi_cli.store.keyring import FileKeyRing

        files.private_dir(self.path.parent)
        files.private_dir(self.private, tighten=True)
        with files.exclusive_lock(self.lock_path):
            raw = files.read_bytes(self.path)
            now = real_now()
            if raw is None:
                state, prev = lifecycle.fresh_state(iso(now)), {}
            else:
                state, prev = self._decode(raw)
            keys = FileKeyRing(self.keys_dir)
            ctx = Ctx(state, now + state.clock_offset, keys)
            try:
                credentials.roll_due(ctx)
                yield ctx
                data, head, chunks = self._encode(ctx.state, prev)
                if data != raw:
                    files.write_atomic(self.path, data)
                    self._write_cache(digest_of(data), head, chunks)
            except BaseException:
                keys.discard_new()
                raise
            if ctx.events:
                import json

                lines = "".join(
                    json.dumps({"time": e.time, "operation": e.operation, "target": e.target, "outcome": e.outcome, "detail": e.detail})
                    + "\n"
                    for e in ctx.events
                )
                files.append_line(self.log_path, lines.encode("utf-8"))

    def log_entries(self, last: int | None = None) -> list[dict]:
        """Activity log entries, oldest first; with `last`, only the tail is read from disk."""
        try:
            with open(self.log_path, "rb") as fh:
                if last is None:
                    raw = fh.read()
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
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot read {self.log_path}: {exc.strerror}") from None
        import json

        lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
        if last is not None:
            lines = lines[-last:]
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise StateError(f"{self.log_path}: a line is not a JSON log entry: {line[:60]!r}") from None
            entries.append(entry)
        return entries
