"""The activity log: one JSON line per committed change, in `<state>.d/activity.jsonl`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from msi_cli.errors import StateError
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
    """Activity log entries, oldest first; with `last`, only the tail is read from disk. A
    line that is not a log entry (a torn or hand-edited line) is skipped with a warning that
    names it: the good entries are still shown."""
    try:
        fd, _ = files._open_private(log_path, os.O_RDONLY, "activity log")
    except FileNotFoundError:
        return []
    try:
        with os.fdopen(fd, "rb") as fh:
            if last is None:
                raw = fh.read(files.MAX_PRIVATE_BYTES + 1)
                if len(raw) > files.MAX_PRIVATE_BYTES:
                    raise StateError(f"activity log {log_path} is too large to show whole", hint="use --last N")
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
        raise StateError(f"cannot read {log_path}: {exc.strerror}") from None
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
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in FIELDS):
            entries.append({k: entry[k] for k in FIELDS})
        else:
            bad.append((n, line))
    if bad:
        from msi_cli.errors import warn

        n, line = bad[0]
        where = f"line {n}" if last is None else "a line"
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        warn(f"{log_path}: {where} is not a log entry and was skipped{more}: {line[:60]!r}")
    return entries
