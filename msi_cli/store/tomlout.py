"""TOML text for the state file's header and records, byte for byte what `tomli_w.dumps` writes.

tomli_w is general: it walks every value through isinstance checks, generators and a
character-by-character string formatter, which made it most of the time a large save takes (about
2 s of 4 at 10,000 resources). The store's documents are narrow: tables of strings, whole numbers,
booleans, lists of strings and arrays of tables (see records.to_record). This writer handles
exactly those, with tomli_w's layout rules, and hands anything else to tomli_w itself:

- a string with nothing tomli_w escapes (a control character other than tab, `"`, `\\`, DEL) is
  written between quotes as it is (tomli_w keeps every other character, non-ASCII included, and
  never writes multi-line strings by default); any other string sends the whole document to tomli_w;
- an array of tables is inline when every table, rendered inline and indented with its comma, fits
  in 100 characters without a newline (tomli_w's `is_suitable_inline_table`), else each table
  becomes a `[[parent.key]]` section after the parent's plain values;
- any other value (float, date, a table outside an array, a tuple, a mixed list, a non-string key
  that needs escaping) sends the whole document to tomli_w, so the output never differs; tomli_w
  is imported only then.

tests/test_tomlout.py checks the equality on random records of every collection.
"""

from __future__ import annotations

import re
from typing import Any

# Characters tomli_w escapes inside a basic string (its ILLEGAL_BASIC_STR_CHARS).
_ESCAPED = re.compile(r'[\x00-\x08\x0a-\x1f"\\\x7f]').search
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+").fullmatch
_INDENT = "    "  # tomli_w's default indent
_INLINE_MAX = 100 - len(_INDENT) - 1  # its MAX_LINE_LENGTH, less the indent and the comma
_KEYS: dict[str, str] = {}  # key -> as written (bare, or quoted): the store's few field names


class _Unusual(Exception):
    """A value this writer does not know: tomli_w writes the document."""


def dumps(doc: dict[str, Any]) -> str:
    """`tomli_w.dumps(doc)` (default options)."""
    try:
        out: list[str] = []
        strings: list[str] = []  # every string written, checked at once for what tomli_w escapes
        for key, items in _values(doc, out, strings):
            for item in items:
                if out:
                    out.append("\n")
                _table(key, item, out, strings)
        if _ESCAPED("".join(strings)):
            raise _Unusual
        return "".join(out)
    except _Unusual:
        import tomli_w

        return tomli_w.dumps(doc)


def _table(name: str, table: dict[str, Any], out: list[str], strings: list[str]) -> None:
    """One table of an array of tables: its header, its plain values, then its own arrays of tables."""
    out.append(f"[[{name}]]\n")
    for key, items in _values(table, out, strings):
        for item in items:
            out.append("\n")
            _table(f"{name}.{key}", item, out, strings)


def _values(table: dict[str, Any], out: list[str], strings: list[str]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Append a line for each plain value of `table` (inline arrays of tables included); returns
    the arrays of tables written as sections, with their keys as written."""
    if type(table) is not dict:
        raise _Unusual
    sections: list[tuple[str, list[dict[str, Any]]]] = []
    for k, v in table.items():
        key = _KEYS.get(k) or _key(k)
        t = type(v)
        if t is str:
            strings.append(v)
            out.append(f'{key} = "{v}"\n')
        elif t is list:
            if not v:
                out.append(f"{key} = []\n")
            elif type(v[0]) is dict:
                if not all(type(d) is dict for d in v):
                    raise _Unusual
                inline = [_inline(d, strings) for d in v]
                if None in inline:
                    sections.append((key, v))
                else:
                    out.append(f"{key} = [\n" + "".join([f"{_INDENT}{s},\n" for s in inline]) + "]\n")
            else:
                if not all(type(s) is str for s in v):
                    raise _Unusual
                strings.extend(v)
                out.append(f"{key} = [\n" + "".join([f'{_INDENT}"{s}",\n' for s in v]) + "]\n")
        elif t is bool:
            out.append(f"{key} = {'true' if v else 'false'}\n")
        elif t is int:
            out.append(f"{key} = {v}\n")
        else:
            raise _Unusual
    return sections


def _inline(table: dict[str, Any], strings: list[str]) -> str | None:
    """`table` as an inline table, or None when tomli_w would not write it inline (a newline in it,
    from a non-empty list, or too long: most records stop after a few values)."""
    if not table:
        return "{}"
    parts = []
    size = 2  # "{ " and " }", less the last ", "
    for k, v in table.items():
        key = _KEYS.get(k) or _key(k)
        t = type(v)
        if t is str:
            part = f'{key} = "{v}"'
        elif t is list:
            if v:
                return None  # tomli_w renders a non-empty array over lines
            part = f"{key} = []"
        elif t is bool:
            part = f"{key} = {'true' if v else 'false'}"
        elif t is int:
            part = f"{key} = {v}"
        else:
            raise _Unusual
        size += len(part) + 2
        if size > _INLINE_MAX:
            return None
        parts.append(part)
    strings.extend([v for v in table.values() if type(v) is str])
    return "{ " + ", ".join(parts) + " }"


def _key(k: object) -> str:
    """A key as tomli_w writes it: bare when it can be, else a basic string."""
    if type(k) is not str or _ESCAPED(k):
        raise _Unusual
    written = k if _BARE_KEY(k) else f'"{k}"'
    if len(_KEYS) < 1000:
        _KEYS[k] = written
    return written
