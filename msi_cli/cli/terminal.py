"""Output for a person at a terminal: tables fitted to the width, values never broken.

An id, GUID, name or timestamp is one word that must survive a copy from the screen, so no value
is ever folded or wrapped inside: a table drops its least useful columns until what is left fits
the width (measured, the way `gh` and `kubectl` choose), and a column of prose (an operation, a
detail) wraps only between words. When even the essential columns do not fit, the table is drawn
wider than the terminal, which soft-wraps the line; msi never inserts a newline inside a value.

Only imported when a terminal is written to (rich costs about 40 ms to import).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from msi_cli.cli.render import Col, as_col, get, safe, terminal_width
from msi_cli.core.datatype import replace


def console(width: int | None = None) -> Console:
    return Console(highlight=False, soft_wrap=False, width=width or terminal_width())


def _table(cols: Sequence[Col], rows: list[list[str]], title: str | None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    for col in cols:
        table.add_column(Text(col.header), no_wrap=not col.wrap, overflow="fold" if col.wrap else "ignore")  # a key, never markup
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


GAP = 3  # between two columns: a space of padding each side of a blank rule


def _needs(col: Col, cells: list[str]) -> int:
    """The narrowest a column can be: its longest line (a value never wraps), or for prose its
    longest word."""
    texts = [col.header, *cells]
    if col.wrap:
        return max(cell_len(word) for text in texts for word in (text.split() or [""]))
    return max(cell_len(line) for text in texts for line in (text.splitlines() or [""]))


def _choose(out: Console, cols: list[Col], cells: list[list[str]]) -> tuple[list[int], int]:
    """The columns that fit `out`'s width, by rank (rank 0 always; then, lowest rank first, each
    next one that still fits), and the width they need."""
    needs = [_needs(col, [row[n] for row in cells]) for n, col in enumerate(cols)]

    def width(chosen: list[int]) -> int:
        return sum(needs[i] for i in chosen) + GAP * (len(chosen) - 1)

    keep = [i for i, col in enumerate(cols) if col.rank == 0]
    for i in sorted((i for i, col in enumerate(cols) if col.rank > 0), key=lambda i: (cols[i].rank, i)):
        if width(sorted([*keep, i])) <= out.width:  # the next most useful column, if it fits
            keep = sorted([*keep, i])
    return keep, width(keep)


def _shortened(col: Col) -> Col:
    return col if col.short is None else replace(col, header=col.short)


def fit(out: Console, cols: list[Col], cells: list[list[str]], title: str | None = None) -> tuple[Table, int]:
    """The table of the columns that fit `out`'s width (dropping the highest rank first), and the
    width it needs. Where short headers (Col.short) keep other columns than the full ones, they
    keep more useful ones (a column narrows, never widens, so the first column that differs is one
    only the short headers make room for), or where even the essential columns are too wide, the
    table is drawn with them. Otherwise the headers are the full ones, as at a wide terminal."""
    keep, need = _choose(out, cols, cells)
    if any(col.short for col in cols):
        short = [_shortened(col) for col in cols]
        keep_short, need_short = _choose(out, short, cells)
        if keep_short != keep or need > out.width:
            cols, keep, need = short, keep_short, need_short
    return _table([cols[i] for i in keep], [[row[i] for i in keep] for row in cells], title), need


def print_list(data: list[Any], columns: Sequence[Any] | None, title: str | None, cell: Callable[[Any], str]) -> None:
    out = console()
    if not columns or not all(isinstance(item, dict) for item in data):
        cols = [Col("value", "")]
        cells = [[cell(item)] for item in data]
    else:
        cols = [as_col(c) for c in columns]
        cells = [[cell(c.tty(item) if c.tty else get(item, c.path)) for c in cols] for item in data]
    table, need = fit(out, cols, cells, title)
    if need > out.width:  # too wide even so: draw it whole, the terminal soft-wraps each line
        out = console(need)
    out.print(table)
    if not data:
        out.print(Text("(none)", style="dim"))


def print_object(rows: list[tuple[str, str]], title: str | None) -> None:
    """`key  value` lines; a value is printed whole, never padded or broken (the terminal may
    soft-wrap a long line)."""
    out = Console(highlight=False, soft_wrap=True)
    if title:
        out.print(Text(title, style="bold"))
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        line = Text.assemble((key.ljust(width), "bold"), "  ", value)
        line.rstrip()
        out.print(line)


def print_value(text: str) -> None:
    Console(highlight=False, soft_wrap=True).print(Text(text))


_ARM_ID = re.compile(r"/subscriptions/[^\s/]+(?:/[^\s/]+/[^\s/]+)*")


def short_id(text: str) -> str:
    """Every ARM id in `text` as its last name (a resource group's id as `rg NAME`, a
    subscription's as `subscription ID`): for a terminal, where a full id would run over lines."""

    def name(match: re.Match[str]) -> str:
        parts = match.group(0).split("/")
        if len(parts) == 3:
            return f"subscription {parts[2]}"
        if len(parts) == 5 and parts[3].lower() == "resourcegroups":
            return f"rg {parts[4]}"
        return parts[-1]

    return _ARM_ID.sub(name, text)


def log_lines(entries: list[dict[str, Any]]) -> str:
    """`msi log` for a terminal: a line per event (time, operation, target by name, and the outcome
    when it is not Succeeded), and its detail indented below; ids as their names (`-o json` has
    them whole)."""
    lines: list[str] = []
    for e in entries:
        target = short_id(str(e.get("target") or ""))
        outcome = str(e.get("outcome") or "")
        head = f"{e.get('time', '')}  {e.get('operation', '')}  {target}" + ("" if outcome in ("", "Succeeded") else f"  [{outcome}]")
        lines.append(safe(head))
        detail = short_id(str(e.get("detail") or ""))
        if detail:
            lines.append(safe("    " + detail))
    return "".join(line.rstrip() + "\n" for line in lines)


def print_json(text: str) -> None:
    """`-o jsonc` at a terminal: the same JSON text, coloured as az colours it (keys, strings,
    numbers); never wrapped."""
    from rich.highlighter import JSONHighlighter

    Console(highlight=False, soft_wrap=True).print(JSONHighlighter()(Text(text)))
