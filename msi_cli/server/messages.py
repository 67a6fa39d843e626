"""A parsed HTTP request and the response to write: the only types shared by the HTTP loop and
the protocol modules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(slots=True)
class Request:
    method: str
    path: str  # raw (percent-encoded) path, without the query
    query: str  # raw query string, without '?'
    headers: dict[str, str]  # lower-case names; a repeated header keeps its first value
    repeated: frozenset[str] = frozenset()  # lower-case names of headers sent more than once
    version: str = "HTTP/1.1"
    body: bytes = b""  # read when framed by Content-Length (at most 64 KiB); a chunked one is refused (411)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False  # close the connection after writing
    log: str = ""  # why, in the simulator's words, for the server's own log (never a secret)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
MAX_QUERY_FIELDS = 64


def encode(data: object) -> bytes:
    return _ENCODER.encode(data).encode("utf-8")


def json_response(status: int, data: object, headers: list[tuple[str, str]] | None = None, log: str = "") -> Response:
    return Response(status, encode(data), headers=headers or [], log=log)


def parse_query(raw: str) -> list[tuple[str, str]] | None:
    """The query's (name, value) pairs in order, percent-decoded as UTF-8 (`+` is a space);
    None when it cannot be decoded or has more than MAX_QUERY_FIELDS fields. Empty fields
    (`a=1&&b=2`, a trailing `&`) are skipped and a field without `=` is a name with an empty
    value, as clients have always been answered; the rest is the standard library's strict
    parser."""
    from urllib.parse import parse_qsl

    fields = [part if "=" in part else part + "=" for part in raw.split("&") if part]
    try:
        return parse_qsl("&".join(fields), keep_blank_values=True, strict_parsing=True, errors="strict",
                         max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:  # UnicodeDecodeError (not UTF-8), or too many fields
        return None


def duplicates(pairs: list[tuple[str, str]]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for name, _ in pairs:
        if name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    return dup
