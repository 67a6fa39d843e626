"""The one renderer: data (dicts and lists, in az's shapes) to a table, JSON, YAML, TSV or nothing.

A table is drawn for a terminal by msi_cli.cli.terminal (fitted to its width, values never broken)
and written as az's plain aligned text to a pipe.

Results go to stdout, everything else to stderr. Values from the state are printed as plain text,
never as rich markup, so a name like `[red]` is shown as it is.
"""

from __future__ import annotations

import os
import re
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from enum import Enum
from typing import Any
from msi_cli.core.datatype import record


class Output(str, Enum):
    table = "table"
    json = "json"
    jsonc = "jsonc"
    yaml = "yaml"
    tsv = "tsv"
    none = "none"


# (header, dotted path into each item), or a Col that also says how a terminal shows it
Columns = Sequence[Any]


@record(frozen=True)
class Col:
    """A table column. `rank` 0 is always shown; at narrow widths the highest rank goes first.
    `wrap` lets prose wrap between words (values never wrap). `tty` is what a terminal shows for
    an item instead of the value at `path` (a short type name, a marker); piped output keeps the
    value at `path`. `short` is a shorter header a terminal shows where the full one, wider than
    the column's values, would cost a column its place (`Group` for `Resource group`)."""

    header: str
    path: str
    rank: int = 0
    wrap: bool = False
    tty: Callable[[dict[str, Any]], Any] | None = None
    short: str | None = None


def as_col(column: Any) -> Col:
    return column if isinstance(column, Col) else Col(column[0], column[1])


# Set by `msi demo` while it runs a step: (is a terminal, width) of the console it prints to.
TERMINAL: ContextVar[tuple[bool, int] | None] = ContextVar("TERMINAL", default=None)


def get(item: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def safe(text: str) -> str:
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
        import json

        return "\n".join(value) if all(isinstance(v, dict) for v in value.values()) else json.dumps(value)
    if isinstance(value, list):
        return "\n".join(_cell(v) for v in value)
    return safe(str(value))


def _tsv_value(value: Any) -> str:
    """One field, as az's TSV writes it: a nested object leaves its column empty (so the columns of
    every row still line up), a list gives its length, anything else its Python text (`None`,
    `True`, `False`), as az prints them. Tabs and newlines become spaces, to keep one row per item."""
    if isinstance(value, dict):
        return ""
    if isinstance(value, list):
        return str(len(value))
    return safe(str(value).replace("\t", " ").replace("\r", " ").replace("\n", " "))


def _tsv_keys(rows: list[Any]) -> list[str] | None:
    """The columns of a list of objects: every key any row has, so that a key missing on one row is
    an empty field there, not a shift of the fields after it. A plain dict's keys in sorted order;
    an object built by --query ({a: x, b: y}, an OrderedDict) in the order it names them (az's
    rule, so the column order is stable)."""
    if not rows or not all(isinstance(item, dict) for item in rows):
        return None
    keys: dict[str, None] = {}
    for item in rows:
        keys.update(dict.fromkeys(item if isinstance(item, OrderedDict) else sorted(item)))
    return list(keys) if all(isinstance(item, OrderedDict) for item in rows) else sorted(keys)


def _tsv_row(item: Any, keys: list[str] | None = None) -> str:
    if isinstance(item, dict):
        if keys is None:
            keys = list(item) if isinstance(item, OrderedDict) else sorted(item)
        return "\t".join("" if k not in item else _tsv_value(item[k]) for k in keys)
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
    keys = _tsv_keys(rows)
    return "".join(_tsv_row(item, keys) + "\n" for item in rows)


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
    forced = TERMINAL.get()
    if forced is not None:
        return forced[0]
    return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()


def terminal_width() -> int:
    """The width to fit: `msi demo`'s console while it runs a step, else the terminal's (rich reads
    COLUMNS, then the tty)."""
    forced = TERMINAL.get()
    if forced is not None:
        return forced[1]
    from rich.console import Console

    return Console().width


def _columns_of(data: list[Any]) -> Columns:
    keys: list[str] = []
    for item in data:
        if isinstance(item, dict):
            keys.extend(k for k, v in item.items() if k not in keys and not isinstance(v, (dict, list)))
    return [(safe(k), k) for k in keys]  # a header is a key of the data (a --query may write any): escaped


def _plain_table(data: list[Any], columns: Columns) -> str:
    """az's own table style: aligned columns under a dashed rule."""
    pairs = [(c.header, c.path) for c in map(as_col, columns)]
    rows = [[_cell(get(item, path)).replace("\n", ", ") for _, path in pairs] for item in data]
    widths = [max([len(h)] + [len(r[n]) for r in rows]) for n, (h, _) in enumerate(pairs)]
    out = ["  ".join(h.ljust(w) for (h, _), w in zip(pairs, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return "\n".join(out) + "\n"


def _object_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(safe(key), _cell(value).replace("\n", ", ")) for key, value in flatten(data)]


def plain(data: Any, columns: Columns | None) -> str:
    """`-o table` for a pipe: az's plain text."""
    if isinstance(data, list):
        if data and all(isinstance(i, dict) for i in data):
            return _plain_table(data, columns or _columns_of(data))
        if not data:
            return _plain_table([], columns) if columns else ""
        return "".join(_cell(item).replace("\n", ", ") + "\n" for item in data)
    if isinstance(data, dict):
        rows = _object_rows(data)
        width = max((len(k) for k, _ in rows), default=0)
        return "".join(f"{k.ljust(width)}  {v}".rstrip() + "\n" for k, v in rows)
    return _cell(data) + "\n"


def _table(data: Any, columns: Columns | None, title: str | None) -> None:
    if not for_people() or (isinstance(data, list) and len(data) > RICH_TABLE_LIMIT):
        sys.stdout.write((f"{title}\n" if title else "") + plain(data, columns))
        return
    from msi_cli.cli import terminal

    if isinstance(data, list):
        terminal.print_list(data, columns if columns is not None else _columns_of(data), title, _cell)
    elif isinstance(data, dict):
        terminal.print_object(_object_rows(data), title)
    else:
        terminal.print_value(_cell(data))


def _yaml(data: Any) -> str:
    """az's `-o yaml` (knack's format_yaml): PyYAML's safe_dump, block style, keys sorted,
    unicode kept. PyYAML is imported here only, when yaml is asked for. PyYAML writes bidi marks
    and separators raw where unicode is kept (it escapes only C0/C1 controls), so a document
    holding one is written with every non-ASCII character escaped instead: the same values,
    nothing that can reorder what the terminal shows."""
    import yaml

    import json

    text = json.dumps(data, ensure_ascii=False)
    unsafe = re.search(f"[{_BIDI}]", text) is not None
    return str(yaml.safe_dump(json.loads(text), default_flow_style=False, allow_unicode=not unsafe))


# DEL, C1 controls and bidi marks, written as \u escapes in JSON (the same value, nothing that can
# steer a terminal); found with one regular-expression scan (str.translate with a dict is ~50x slower
# on a large document such as a long `msi log -o json`)
_BIDI = "\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"  # bidi marks and line separators (a character class's body)
_JSON_UNSAFE = f"[\x7f-\x9f{_BIDI}]"  # compiled when first used


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
    if output in (Output.json, Output.jsonc):
        from msi_cli.cli import jsonout

        text = jsonout.dumps(data)
        if not text.isascii():
            text = re.sub(_JSON_UNSAFE, _json_escape, text)
        if output is Output.jsonc and for_people():
            from msi_cli.cli import terminal

            terminal.print_json(text)
        else:
            sys.stdout.write(text + "\n")
    elif output is Output.yaml:
        sys.stdout.write(_yaml(data))
    elif output is Output.tsv:
        sys.stdout.write(to_tsv(data))
    else:
        _table(data, columns, title)


def text_lines(lines: Sequence[str]) -> str:
    """Lines of a report written for people (a plan, a rehearsal), each with the control
    characters of what it quotes from the state or a file escaped (errors.printable), so a name,
    an issuer or a subject cannot move the cursor or retitle the terminal."""
    from msi_cli.errors import printable

    return "".join(printable(line) + "\n" for line in lines)


def note(message: str) -> None:
    """Progress and narration for people: stderr, plain text."""
    sys.stderr.write(message + "\n")


def warn(messages: list[str]) -> None:
    """The core's warnings about a change that was made: stderr, one `warning:` line each (none
    with --only-show-errors)."""
    from msi_cli.cli.globalopts import QUIET, level

    if level() <= QUIET:
        return
    for message in messages:
        note(f"warning: {message}")
