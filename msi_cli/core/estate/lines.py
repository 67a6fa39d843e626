"""Where an entry of an estate file is: tomllib and json give values, not lines, so the lines
are found here. JSON: json's own decoder notes the line each object starts on. TOML: entries of
`[[section]]` (and `[[section.sub]]` inside them) are found by counting headers, keys by scanning
their entry; inline arrays fall back to the line of their key."""

from __future__ import annotations

import bisect
import json
import re
from typing import Any

Path_ = tuple[str | int, ...]  # where a value sits: ("resources", 3, "type")


def decode_json(text: str, found: dict[Path_, int]) -> tuple[Any, int]:
    """The JSON document at the start of `text` and where it ends; fills `found` with the line
    of every object, by its path."""
    positions: dict[int, int] = {}  # id(object) -> its line; ids are stable while the document lives
    doc, end = _LocatingDecoder(positions).raw_decode(text, len(text) - len(text.lstrip()))
    _record_lines(doc, (), positions, found)
    return doc, end


def _record_lines(value: object, path: Path_, positions: dict[int, int], lines: dict[Path_, int]) -> None:
    if isinstance(value, dict):
        line = positions.get(id(value))
        if line is not None:
            lines[path] = line
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                _record_lines(item, (*path, key), positions, lines)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _record_lines(item, (*path, n), positions, lines)


class _LocatingDecoder(json.JSONDecoder):
    """json's own decoder, noting the line each object starts on (the pure-Python scanner calls
    `parse_object` with the offset of its `{`)."""

    def __init__(self, positions: dict[int, int]) -> None:
        super().__init__()
        from json import decoder as json_decoder
        from json import scanner as json_scanner

        decoder: Any = json_decoder
        scanner: Any = json_scanner

        text_lines: list[tuple[str, list[int]]] = []

        def line_of(s: str, offset: int) -> int:
            if not text_lines or text_lines[0][0] is not s:
                text_lines[:] = [(s, [m.start() for m in re.finditer("\n", s)])]
            return bisect.bisect_right(text_lines[0][1], offset) + 1

        def parse_object(s_and_end: tuple[str, int], strict: bool, scan_once: Any, object_hook: Any,
                         object_pairs_hook: Any, memo: Any = None) -> tuple[Any, int]:
            s, end = s_and_end
            obj, new_end = decoder.JSONObject(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo)
            positions[id(obj)] = line_of(s, end - 1)
            return obj, new_end

        self.parse_object = parse_object
        self.scan_once = scanner.py_make_scanner(self)


_KEY = re.compile(r"\s*(?:\"([^\"]+)\"|([A-Za-z0-9_-]+))\s*=")


def json_line(text: str, found: dict[Path_, int], path: Path_) -> int | None:
    """The line of the deepest object on `path` that `decode_json` noted, or of a key inside it."""
    best, depth = None, 0
    for depth in range(len(path), 0, -1):
        best = found.get(path[:depth])
        if best is not None:
            break
    key = next((k for k in path[depth:] if isinstance(k, str)), None)
    if best is not None and key is not None:
        return _json_key_line(text, best, key) or best
    return best


def _json_key_line(text: str, start_line: int, key: str) -> int | None:
    lines = text.splitlines()
    needle = json.dumps(key) + ":"
    for n in range(start_line - 1, min(len(lines), start_line + 200)):
        if needle in lines[n].replace('" :', '":'):
            return n + 1
    return None


def toml_line(lines: list[str], path: Path_) -> int | None:
    """Entries of `[[section]]` (and `[[section.sub]]` inside them) found by counting headers; a
    key by scanning its entry. Inline arrays fall back to the line of the section's key."""
    if not path:
        return None
    start, end = 0, len(lines)
    prefix = ""
    result: int | None = None
    rest = list(path)
    while rest:
        name = rest.pop(0)
        if not isinstance(name, str):
            break
        full = f"{prefix}{name}"
        if rest and isinstance(rest[0], int):
            index = rest.pop(0)
            header = f"[[{full}]]"
            count, found = -1, None
            for n in range(start, end):
                if lines[n].strip().replace(" ", "") == header:
                    count += 1
                    if count == index:
                        found = n
                        break
            if found is None:  # an inline array (or a list of strings): the line of its key
                return _key_line(lines, start + (1 if result else 0), end, name) or result
            stop = end
            for n in range(found + 1, end):
                s = lines[n].strip().replace(" ", "")
                if s.startswith("[") and not s.startswith(f"[[{full}.") and not s.startswith(f"[{full}."):
                    stop = n
                    break
            start, end, result, prefix = found, stop, found + 1, full + "."
        else:
            return _key_line(lines, start + (1 if result else 0), end, name) or result
    return result


def _key_line(lines: list[str], start: int, end: int, key: str) -> int | None:
    for n in range(start, end):
        if lines[n].strip().startswith("["):
            if n > start:
                break
            continue
        m = _KEY.match(lines[n])
        if m and (m.group(1) or m.group(2)) == key:
            return n + 1
    return None
