"""Where an entry of an estate file is: tomllib and json give values, not lines, so the lines
are found here. JSON: json's own decoder notes where each object starts, and a key is found among
that object's own keys. TOML: entries of `[[section]]` (and `[[section.sub]]` inside them) are
found by counting headers, read as TOML allows them to be written (`[[ a . "b" ]]  # a comment`),
keys by scanning their entry; inline arrays fall back to the line of their key."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Path_ = tuple[str | int, ...]  # where a value sits: ("resources", 3, "type")

_decoder: Any = json.decoder  # JSONObject and scanstring: the pure-Python decoder's parts


class Refused(Exception):
    """JSON that json reads but an estate may not hold: a key twice in one object (json keeps the
    last silently, so `"resources": []` written last would empty the section), or an integer
    longer than Python reads (json lets out a ValueError without its line)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


class _TooLong(Exception):
    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _TooLong(sum(c.isdigit() for c in text)) from None


def _guard(scan_once: Any) -> Any:
    """`scan_once`, refusing an integer too long to read at its line (json says neither)."""

    def scan(s: str, idx: int) -> Any:
        try:
            return scan_once(s, idx)
        except _TooLong as exc:
            raise Refused(s.count("\n", 0, idx) + 1, too_long(exc.digits)) from None

    return scan


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return obj


def decode_json(text: str, found: dict[Path_, int]) -> tuple[Any, int]:
    """The JSON document at the start of `text` and where it ends; fills `found` with where every
    object starts (the offset of its `{`), by its path. Raises `Refused` for a duplicate key or an
    integer too long to read."""
    positions: dict[int, int] = {}  # id(object) -> its offset; ids are stable while the document lives
    doc, end = _LocatingDecoder(positions).raw_decode(text, len(text) - len(text.lstrip()))
    _record_offsets(doc, (), positions, found)
    return doc, end


def _record_offsets(value: object, path: Path_, positions: dict[int, int], found: dict[Path_, int]) -> None:
    if isinstance(value, dict):
        offset = positions.get(id(value))
        if offset is not None:
            found[path] = offset
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                _record_offsets(item, (*path, key), positions, found)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _record_offsets(item, (*path, n), positions, found)


class _LocatingDecoder(json.JSONDecoder):
    """json's own decoder, noting where each object starts (the pure-Python scanner calls
    `parse_object` with the offset just past its `{`)."""

    def __init__(self, positions: dict[int, int]) -> None:
        super().__init__()
        from json import scanner as json_scanner

        scanner: Any = json_scanner

        def parse_object(s_and_end: tuple[str, int], strict: bool, scan_once: Any, object_hook: Any,
                         object_pairs_hook: Any, memo: Any = None) -> tuple[Any, int]:
            s, end = s_and_end
            try:
                obj, new_end = _decoder.JSONObject(s_and_end, strict, _guard(scan_once), object_hook, object_pairs_hook, memo)
            except _Duplicate as twice:  # this object's: where its key is written the second time
                second = [offset for name, offset in _object_keys(s, end - 1) if name == twice.key][1]
                raise Refused(s.count("\n", 0, second) + 1, f"duplicate key '{twice.key}' (a key is written once in an object)") from None
            positions[id(obj)] = end - 1
            return obj, new_end

        def parse_array(s_and_end: tuple[str, int], scan_once: Any) -> Any:
            return _decoder.JSONArray(s_and_end, _guard(scan_once))

        self.parse_object = parse_object
        self.parse_array = parse_array
        self.object_pairs_hook = _unique
        self.parse_int = _parse_int
        self.scan_once = _guard(scanner.py_make_scanner(self))


def json_line(text: str, found: dict[Path_, int], path: Path_) -> int | None:
    """The line of the deepest object on `path` that `decode_json` noted, or of the key of it that
    `path` names next; an object without that key is reported at its own line."""
    for depth in range(len(path), -1, -1):
        start = found.get(path[:depth])
        if start is not None:
            break
    else:
        return None
    key = next((k for k in path[depth:] if isinstance(k, str)), None)
    if key is not None:
        start = next((offset for name, offset in _object_keys(text, start) if name == key), start)
    return text.count("\n", 0, start) + 1


_JSON_TOKEN = re.compile(r'[{}\[\]"]')
_COLON = re.compile(r"[ \t\n\r]*:")


def _object_keys(text: str, start: int) -> Iterator[tuple[str, int]]:
    """The keys of the object whose `{` is at `start`, each with its offset, in the order written;
    not those of the objects inside it, nor strings that are values."""
    depth, pos = 0, start
    while (m := _JSON_TOKEN.search(text, pos)) is not None:
        token = m.group()
        if token == '"':
            name, pos = _decoder.scanstring(text, m.end())
            if depth == 1 and _COLON.match(text, pos):
                yield name, m.start()
            continue
        pos = m.end()
        depth += 1 if token in "{[" else -1
        if depth == 0:
            return


_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_DOTTED = rf"(?:{_BARE}|{_QUOTED})(?:[ \t]*\.[ \t]*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"[ \t]*(?:\[\[[ \t]*(?P<array>{_DOTTED})[ \t]*\]\]|\[[ \t]*(?P<table>{_DOTTED})[ \t]*\])[ \t]*(?:#.*)?\r?$")
_KEY_LINE = re.compile(rf"[ \t]*(?P<key>{_DOTTED})[ \t]*=")
_ONE_KEY = re.compile(rf"{_BARE}|{_QUOTED}")


@dataclass(frozen=True, slots=True)
class _Mark:
    """A line of a TOML file that says where it is: a header (`[[a.b]]`, `[a]`) or a key (`a.b = ...`)."""

    line: int  # 1-based
    keys: tuple[str, ...]  # the header's or the key's dotted keys, unquoted
    kind: str  # "array" ([[...]]), "table" ([...]) or "key"


def _keys(dotted: str) -> tuple[str, ...]:
    out = []
    for m in _ONE_KEY.finditer(dotted):
        key = m.group()
        if key.startswith('"'):
            try:
                key = json.loads(key)
            except ValueError:  # a TOML escape JSON does not know (\U0001F600): close enough for a line number
                key = key[1:-1]
        elif key.startswith("'"):
            key = key[1:-1]
        out.append(key)
    return tuple(out)


def _toml_marks(text: str) -> list[_Mark]:
    marks = []
    for number, raw, clean, _ in _toml_lines(text):
        if not clean:  # inside a multi-line string or array: a header there is text, not a header
            continue
        m = _HEADER.match(raw)
        if m:
            kind = "array" if m.group("array") else "table"
            marks.append(_Mark(number, _keys(m.group(kind)), kind))
            continue
        m = _KEY_LINE.match(raw)
        if m:
            marks.append(_Mark(number, _keys(m.group("key")), "key"))
    return marks


_TOKEN = re.compile(r"""\"\"\"|'''|"(?:[^"\\]|\\.)*"|'[^']*'|#|[\[\]{}]""")
_BASIC_END = re.compile(r'\\.|"""')


def _toml_lines(text: str) -> Iterator[tuple[int, str, bool, str]]:
    """Each line of `text` (numbered by "\\n", as tomllib counts them); whether it starts outside
    any string and bracket: only such a line can be a header or a key; and its values without
    strings and comments. tomllib has read the text (up to what it refused, at least), so what is
    not TOML needs no care here."""
    in_string: str | None = None  # the quotes of the multi-line string the line is in
    depth = 0  # of the arrays and inline tables the line is in
    for number, raw in enumerate(text.split("\n"), 1):
        clean = in_string is None and depth == 0
        pos, code = 0, []
        if clean:
            if _HEADER.match(raw):
                yield number, raw, clean, ""
                continue
            m = _KEY_LINE.match(raw)
            pos = m.end() if m else 0
        while pos < len(raw):
            if in_string is not None:
                pos = _string_end(raw, pos, in_string)
                if pos < 0:
                    break
                in_string = None
                code.append(" ")
                continue
            m = _TOKEN.search(raw, pos)
            code.append(raw[pos:m.start() if m else len(raw)])
            if m is None:
                break
            token, pos = m.group(), m.end()
            if token in ('"""', "'''"):
                in_string = token
            elif token == "#":
                break
            elif token in ("[", "{", "]", "}"):
                depth += 1 if token in ("[", "{") else -1
                code.append(token)
            else:
                code.append(" ")  # a string
        yield number, raw, clean, "".join(code)


_INTEGER = re.compile(r"(?<![\w.+-])[+-]?[0-9][0-9_]*(?![\w.:])")


def toml_long_integer(text: str) -> tuple[int, int] | None:
    """The line and the digits of the first integer of `text` that is too long for Python to read
    (`sys.get_int_max_str_digits`), which tomllib lets out as a ValueError without its line."""
    limit = sys.get_int_max_str_digits()
    for number, _, _, code in _toml_lines(text):
        for m in _INTEGER.finditer(code):
            if limit and len(m.group()) > limit:
                try:
                    int(m.group(), 0)
                except ValueError:
                    return number, sum(c.isdigit() for c in m.group())
    return None


def too_long(digits: int) -> str:
    return f"an integer of {digits} digits, more than msi reads (at most {sys.get_int_max_str_digits()})"


def _string_end(raw: str, pos: int, quotes: str) -> int:
    """Where the multi-line string `quotes` opened ends on this line (past up to two more quotes,
    which are its last characters), or -1."""
    if quotes == '"""':
        close = next((m.start() for m in _BASIC_END.finditer(raw, pos) if m.group() == '"""'), -1)
    else:
        close = raw.find(quotes, pos)
    if close < 0:
        return -1
    end = close + 3
    while end < len(raw) and end < close + 5 and raw[end] == quotes[0]:
        end += 1
    return end


def toml_line(text: str, path: Path_) -> int | None:
    """Entries of `[[section]]` (and `[[section.sub]]` inside them) found by counting their headers;
    a key by scanning its entry. Inline arrays fall back to the line of the section's key."""
    marks = _toml_marks(text)
    lo, hi = 0, len(marks)  # the marks of the entry looked in; marks[lo] is its header, unless at the top
    prefix: tuple[str, ...] = ()
    result: int | None = None
    rest = list(path)
    while rest:
        name = rest.pop(0)
        if not isinstance(name, str):
            break
        full = (*prefix, name)
        index = rest[0] if rest else None
        if not isinstance(index, int):
            return _toml_key(marks, lo, hi, result is not None, full) or result
        rest.pop(0)
        headers = [n for n in range(lo, hi) if marks[n].kind == "array" and marks[n].keys == full]
        if index >= len(headers):  # an inline array (or a list of strings): the line of its key
            return _toml_key(marks, lo, hi, result is not None, full) or result
        found = headers[index]
        stop = next((n for n in range(found + 1, hi)
                     if marks[n].kind != "key" and (marks[n].keys[:len(full)] != full or marks[n].keys == full)), hi)
        lo, hi, result, prefix = found, stop, marks[found].line, full
    return result


def _toml_key(marks: list[_Mark], lo: int, hi: int, in_entry: bool, full: tuple[str, ...]) -> int | None:
    """The line of the key `full[-1]` of the entry at marks[lo] (or of the top of the file): its
    own `key = ...` line, else a header of a table below it that defines the key."""
    for n in range(lo + 1 if in_entry else lo, hi):
        if marks[n].kind != "key":
            break
        if marks[n].keys[0] == full[-1]:
            return marks[n].line
    return next((marks[n].line for n in range(lo, hi) if marks[n].kind != "key" and marks[n].keys[:len(full)] == full), None)
