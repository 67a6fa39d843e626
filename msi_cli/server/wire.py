"""HTTP/1.1 on the wire, without the loop: a request head parsed into a `Request` (with its
limits), and a `Response` rendered to bytes. Pure functions, so the loop in `httploop` only
frames, schedules and guards connections."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

from msi_cli.server.messages import Request, Response

MAX_HEAD = 16 * 1024  # request line and headers
MAX_HEADERS = 100
MAX_BODY = 64 * 1024  # a form-encoded token request fits many times over; larger is a 413

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_head(head: bytes) -> Request:
    """Parse a request line and headers (ending in CRLF CRLF); raises BadRequest."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise BadRequest(400, "empty request")
    line = lines[0]
    if not line.isascii():
        raise BadRequest(400, "the request line is not ASCII")
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        m = _VERSION.fullmatch(version)
        if m is None:
            raise BadRequest(400, "malformed HTTP version")
        raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are supported") if m[1] != "1" else BadRequest(400, "unknown HTTP version")
    if target[:1] == "/":
        path, _, query = target.partition("?")
    elif target.startswith(("http://", "https://")):
        split = urlsplit(target)
        path, query = split.path or "/", split.query
    else:
        raise BadRequest(400, "malformed request target")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many headers")
    headers: dict[str, str] = {}
    repeated: set[str] = set()
    for raw in lines[1:]:
        name, sep, value = raw.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "folded header lines are not supported" if raw[:1] in (" ", "\t") else "malformed header line")
        key = name.lower()
        if key in headers:
            repeated.add(key)
            continue
        headers[key] = value.strip(" \t")
    return Request(method, path, query, headers, frozenset(repeated), version)


class DateHeader:
    """The Date header, formatted once a second."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._second = -1
        self._value = ""

    def date(self) -> str:
        now = int(self._now())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


def framing(request: Request, max_body: int = MAX_BODY) -> tuple[bool, int]:
    """How the request's body is framed: (close after answering, size of the body to read)."""
    if "transfer-encoding" in request.headers:  # not read: refused (answering without it would drop a write silently)
        raise BadRequest(411, "a request body must be framed by Content-Length; chunked bodies are not read")
    length = request.headers.get("content-length")
    if length is None:
        return False, 0
    if not length.isdigit() or "content-length" in request.repeated:
        raise BadRequest(400, "malformed Content-Length")
    size = int(length)
    if size > max_body:
        raise BadRequest(413, "request body too large")
    return False, size


def keep_alive(request: Request) -> bool:
    """Does the client keep the connection open after this request (HTTP/1.1 by default)?"""
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.1":
        return "close" not in connection
    return "keep-alive" in connection


def render(response: Response, server: str, date: str, head_only: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}",
        f"Server: {server}",
        f"Date: {date}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
    ]
    lines.extend(f"{k}: {v}" for k, v in response.headers)
    if response.close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


def plain(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode("utf-8"), content_type="text/plain; charset=utf-8", close=True, log=message)
