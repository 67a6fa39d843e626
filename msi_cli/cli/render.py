"""The one renderer: data (dicts and lists, in az's shapes) to a rich table, JSON, TSV or nothing.

Results go to stdout, everything else to stderr. Values from the state are printed as plain text,
never as rich markup, so a name like `[red]` is shown as it is.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import OrderedDict
from enum import Enum
from typing import Any


class Output(str, Enum):
    table = "table"
    json = "json"
    tsv = "tsv"
    none = "none"


Columns = list[tuple[str, str]]  # (header, dotted path into each item)


def _get(item: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def _safe(text: str) -> str:
    """Text for the terminal: control characters escaped (see msi_cli.errors.printable)."""
    if text.isprintable() and text.isascii():
        return text
    from msi_cli.errors import printable

    return printable(text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "\n".join(value) if all(isinstance(v, dict) for v in value.values()) else json.dumps(value)
    if isinstance(value, list):
        return "\n".join(_cell(v) for v in value)
    return _safe(str(value))


def _tsv_value(value: Any) -> str:
    """One field, as az's TSV writes it: a nested object leaves its column empty (so the columns of
    every row still line up), a list gives its length, anything else its Python text (`None`,
    `True`, `False`), as az prints them. Tabs and newlines become spaces, to keep one row per item."""
    if isinstance(value, dict):
        return ""
    if isinstance(value, list):
        return str(len(value))
    return _safe(str(value).replace("\t", " ").replace("\r", " ").replace("\n", " "))


def _tsv_row(item: Any) -> str:
    if isinstance(item, dict):
        # A plain dict's values in key order; an object built by --query ({a: x, b: y}, an
        # OrderedDict) in the order it names them: az's rule, so the column order is stable.
        values = list(item.values()) if isinstance(item, OrderedDict) else [item[k] for k in sorted(item)]
        return "\t".join(_tsv_value(v) for v in values)
    if isinstance(item, list):
        return "\t".join(_tsv_value(v) for v in item)
    if isinstance(item, bool):
        return "true" if item else "false"
    return _tsv_value(item)


def to_tsv(data: Any) -> str:
    """az's TSV (`knack` `_TsvOutput`): one row per item of a list (a single result is one row),
    values tab-separated, no keys, nested objects not expanded; a scalar prints bare; nothing at all
    for a null result."""
    if data is None:
        return ""
    rows = data if isinstance(data, list) else [data]
    return "".join(_tsv_row(item) + "\n" for item in rows)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not all(isinstance(v, dict) for v in value.values()):
            rows.extend(flatten(value, name + "."))
        elif isinstance(value, dict) and value:
            for sub, inner in value.items():
                rows.append((name, sub))
                rows.extend(flatten(inner, "  ") if isinstance(inner, dict) else [])
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for n, inner in enumerate(value):
                rows.extend(flatten(inner, f"{name}[{n}]."))
        else:
            rows.append((name, value))
    return rows


RICH_TABLE_LIMIT = 200


def for_people() -> bool:
    """Tables are drawn with rich for a terminal (or where FORCE_COLOR asks for it, as rich itself
    reads it); piped or redirected, `-o table` is az's plain aligned text, which scripts can cut
    and which skips rich's import (about 40 ms a call)."""
    return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()


def _columns_of(data: list[Any]) -> Columns:
    keys: list[str] = []
    for item in data:
        if isinstance(item, dict):
            keys.extend(k for k, v in item.items() if k not in keys and not isinstance(v, (dict, list)))
    return [(k, k) for k in keys]


def _plain_table(data: list[Any], columns: Columns) -> str:
    """az's own table style: aligned columns under a dashed rule."""
    rows = [[_cell(_get(item, path)).replace("\n", ", ") for _, path in columns] for item in data]
    widths = [max([len(h)] + [len(r[n]) for r in rows]) for n, (h, _) in enumerate(columns)]
    out = ["  ".join(h.ljust(w) for (h, _), w in zip(columns, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return "\n".join(out) + "\n"


def _plain(data: Any, columns: Columns | None) -> str:
    if isinstance(data, list):
        if data and all(isinstance(i, dict) for i in data):
            return _plain_table(data, columns or _columns_of(data))
        if not data:
            return _plain_table([], columns) if columns else ""
        return "".join(_cell(item).replace("\n", ", ") + "\n" for item in data)
    if isinstance(data, dict):
        rows = [(key, _cell(value).replace("\n", ", ")) for key, value in flatten(data)]
        width = max((len(k) for k, _ in rows), default=0)
        return "".join(f"{k.ljust(width)}  {v}".rstrip() + "\n" for k, v in rows)
    return _cell(data) + "\n"


def _table(data: Any, columns: Columns | None, title: str | None) -> None:
    if not for_people() or (isinstance(data, list) and len(data) > RICH_TABLE_LIMIT):
        sys.stdout.write((f"{title}\n" if title else "") + _plain(data, columns))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=False)
    if isinstance(data, list):
        if columns is None:
            columns = _columns_of(data)
        table = Table(title=title, show_lines=False)
        if not columns or not all(isinstance(item, dict) for item in data):
            table.add_column("value")
            for item in data:
                table.add_row(Text(_cell(item)))
        else:
            for header, _ in columns:
                table.add_column(header, overflow="fold")
            for item in data:
                table.add_row(*(Text(_cell(_get(item, path))) for _, path in columns))
        console.print(table)
        if not data:
            console.print(Text("(none)", style="dim"))
    elif isinstance(data, dict):
        table = Table(title=title, show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in flatten(data):
            table.add_row(Text(key), Text(_cell(value)))
        console.print(table)
    else:
        console.print(Text(_cell(data)))


# DEL, C1 controls and bidi marks, written as \u escapes in JSON (the same value, nothing that can
# steer a terminal); found with one regular-expression scan (str.translate with a dict is ~50x slower
# on a large document such as a long `msi log -o json`)
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def emit(data: Any, output: Output, columns: Columns | None = None, title: str | None = None, query: str | None = None) -> None:
    """Print a command's result in the chosen format. As in az, `query` is applied first, and then
    the table shows the query's result as it is (not the command's own columns); a null result
    prints nothing in any format."""
    if query:
        from msi_cli.cli.query import apply_query

        data = apply_query(data, query)
        columns = None
    if output is Output.none or data is None:
        return
    if output is Output.json:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
        if not text.isascii():
            text = _JSON_UNSAFE.sub(_json_escape, text)
        sys.stdout.write(text + "\n")
    elif output is Output.tsv:
        sys.stdout.write(to_tsv(data))
    else:
        _table(data, columns, title)


def note(message: str) -> None:
    """Progress and narration for people: stderr, plain text."""
    sys.stderr.write(message + "\n")


def warn(messages: list[str]) -> None:
    """The core's warnings about a change that was made: stderr, one `warning:` line each."""
    for message in messages:
        note(f"warning: {message}")
