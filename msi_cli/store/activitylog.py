"""The activity log: one JSON line per committed change, in `<state>.d/activity.jsonl`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from msi_cli.errors import StateError, deep_input
from msi_cli.store import files

if TYPE_CHECKING:
    from msi_cli.core.context import Event

FIELDS = ("time", "operation", "target", "outcome", "detail")


def append(log_path: Path, events: list[Event]) -> None:
    """Record the committed change in the activity log. The change is saved already: a log
    that cannot be written is a warning, never a failure reported for a change that was made."""
    lines = "".join(_line((e.time, e.operation, e.target, e.outcome, e.detail)) for e in events)
    try:
        files.append_line(log_path, lines.encode("utf-8", "backslashreplace"))
    except (StateError, OSError) as exc:
        from msi_cli.errors import warn

        why = exc.message if isinstance(exc, StateError) else exc.strerror or str(exc)
        warn(f"the change was saved, but the activity log was not written: {why}")

def _line(values: tuple[str, ...]) -> str:
    """One entry as json.dumps writes it; a value that needs escaping goes through json itself
    (imported only then: most entries are plain ASCII)."""
    if all(isinstance(v, str) and v.isascii() and v.isprintable() and '"' not in v and "\\" not in v for v in values):
        return "{" + ", ".join(f'"{k}": "{v}"' for k, v in zip(FIELDS, values)) + "}\n"
    import json

    return json.dumps(dict(zip(FIELDS, values))) + "\n"


def entries(log_path: Path, last: int | None = None) -> list[dict[str, str]]:
    """Activity log entries, oldest first; with `last`, the last `last` entries, only the tail
    read from disk (further back for as many lines as were not entries). A line that is not a
    log entry (a torn or hand-edited line) is skipped with a warning that names it: the good
    entries are still shown."""
    try:
        fd, _ = files._open_private(log_path, os.O_RDONLY, "activity log")
    except FileNotFoundError:
        return []
    found: list[tuple[int, dict[str, str]]] = []
    bad: list[tuple[int, str]] = []
    try:
        with os.fdopen(fd, "rb") as fh:
            if last is None:
                raw = fh.read(files.MAX_PRIVATE_BYTES + 1)
                if len(raw) > files.MAX_PRIVATE_BYTES:
                    raise StateError(f"activity log {log_path} is too large to show whole", hint="use --last N")
                found, bad = _parse(raw)
            else:
                size, raw, lines = fh.seek(0, 2), b"", last
                while True:
                    while size > 0 and raw.count(b"\n") <= lines:
                        step = min(64 * 1024, size)
                        size -= step
                        fh.seek(size)
                        raw = fh.read(step) + raw
                    found, bad = _parse(raw.split(b"\n", 1)[1] if size > 0 else raw)  # a partial first line dropped
                    if len(found) >= last or size == 0:
                        break
                    lines += last - len(found)  # as many lines again as were not entries
                shown = found[-last:] if last else []
                first = shown[0][0] if shown else len(found) + len(bad) + 1
                found, bad = shown, [b for b in bad if b[0] > first]  # not lines older than what is shown
    except OSError as exc:
        raise StateError(f"cannot read {log_path}: {exc.strerror}") from None
    if bad:
        from msi_cli.errors import warn

        n, line = bad[0]
        where = f"line {n}" if last is None else "a line"
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        warn(f"{log_path}: {where} is not a log entry and was skipped{more}: {line[:60]!r}")
    return [entry for _, entry in found]


def _parse(raw: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[tuple[int, str]]]:
    """(the (line number, entry) of each entry, the (line number, text) of the lines that are not
    entries) of `raw`."""
    import json

    found: list[tuple[int, dict[str, str]]] = []
    bad: list[tuple[int, str]] = []
    with deep_input():  # once for the whole log: a `msi log` reads tens of thousands of lines
        for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                entry = None
            if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in FIELDS):
                found.append((n, {k: entry[k] for k in FIELDS}))
            else:
                bad.append((n, line))
    return found, bad
