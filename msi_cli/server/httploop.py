"""A small HTTP/1.1 server on asyncio, for short JSON requests from token clients.

One event loop serves every connection (persistent connections, pipelined requests answered in
order), so idle or half-open connections cost no thread. It is an `asyncio.Protocol`, not streams:
a request the application can answer at once (a cache hit) is parsed and answered inside the
read callback, with no task and no extra loop turn; anything else (a mint, a fault's delay)
becomes a task, and the connection reads nothing more until it is answered.

Hostile input: the request head and body have size limits; a client gets `request_timeout`
seconds from the end of the previous answer (or from connecting) to deliver a complete request,
and as long to take an answer it is slow to read, else the connection is dropped; anything that is
not a well-formed request gets a plain 4xx and the connection is closed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

from msi_cli.server.messages import Request, Response

MAX_HEAD = 16 * 1024  # request line and headers
MAX_BODY = 64 * 1024  # token requests have none; a 405 still reads a small one to keep the connection
MAX_HEADERS = 100
MAX_CONNECTIONS = 512
REQUEST_TIMEOUT = 10.0  # seconds

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_REASONS = {s.value: s.phrase for s in HTTPStatus}

Handler = Callable[[Request], Awaitable[Response]]
QuickHandler = Callable[[Request], "Response | None"]


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


class _Clock:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def date(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


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


class _Connection(asyncio.Protocol):
    __slots__ = ("server", "transport", "buffer", "busy", "closing", "eof", "waiting_since", "write_paused_since")

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered by a task
        self.closing = False
        self.eof = False
        self.waiting_since = time.monotonic()  # when we started waiting for the next request
        self.write_paused_since: float | None = None

    # -- asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        if len(self.server.connections) >= self.server.max_connections:
            self.closing = True
            transport.abort()
            return
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        if not self.busy:
            self._process()

    def eof_received(self) -> bool:
        self.eof = True
        return self.busy  # keep the half-open connection only to write a pending answer

    def pause_writing(self) -> None:
        self.write_paused_since = time.monotonic()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused_since = None
        if not self.closing:
            self.transport.resume_reading()

    # -- requests ---------------------------------------------------------------------------------

    def _process(self) -> None:
        buf = self.buffer
        while not self.busy and not self.closing:
            while buf[:2] == b"\r\n":
                del buf[:2]
            end = buf.find(b"\r\n\r\n", 0, MAX_HEAD)
            if end < 0:
                if len(buf) >= MAX_HEAD:
                    self._fail(431, "request head too large")
                return
            try:
                request = parse_head(bytes(buf[: end + 4]))
                close, size = self._body(request)
            except BadRequest as exc:
                self._fail(exc.status, exc.message)
                return
            if len(buf) < end + 4 + size:
                return  # the body is still on its way
            request.body = bytes(buf[end + 4: end + 4 + size])
            del buf[: end + 4 + size]
            if close:
                buf.clear()
            connection = request.headers.get("connection", "").lower()
            if request.version == "HTTP/1.1":
                close = close or "close" in connection
            else:
                close = close or "keep-alive" not in connection
            response = self.server.quick(request) if self.server.quick is not None else None
            if response is None:
                self.busy = True
                task = asyncio.get_running_loop().create_task(self._answer_later(request, close))
                self.server.tasks.add(task)
                task.add_done_callback(self.server.tasks.discard)
                return
            self._respond(request, response, close)

    def _body(self, request: Request) -> tuple[bool, int]:
        """(close after answering, body size to drop)."""
        if "transfer-encoding" in request.headers:
            return True, 0  # not read: answer, then close so the stream cannot desynchronise
        length = request.headers.get("content-length")
        if length is None:
            return False, 0
        if not length.isdigit() or "content-length" in request.repeated:
            raise BadRequest(400, "malformed Content-Length")
        size = int(length)
        if size > MAX_BODY:
            raise BadRequest(413, "request body too large")
        return False, size

    async def _answer_later(self, request: Request, close: bool) -> None:
        try:
            response = await self.server.handler(request)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001 - the server must survive any handler bug
            self.server.on_error(f"500 handler failed: {type(exc).__name__}")
            response = plain(500, "internal error")
        self.busy = False
        if self.closing:
            return
        self._respond(request, response, close or self.eof)
        if not self.closing:
            self._process()

    def _respond(self, request: Request, response: Response, close: bool) -> None:
        if close:
            response.close = True
        self.transport.write(render(response, self.server.server_name, self.server.clock.date(), request.method == "HEAD"))
        self.waiting_since = time.monotonic()
        if response.close:
            self._close()

    def _fail(self, status: int, message: str) -> None:
        self.server.on_error(f"{status} {message}")
        self.transport.write(render(plain(status, message), self.server.server_name, self.server.clock.date()))
        self._close()

    def _close(self) -> None:
        self.closing = True
        self.buffer.clear()
        self.transport.close()  # after the pending answer is written

    def expired(self, now: float, timeout: float) -> bool:
        if self.write_paused_since is not None:
            return now - self.write_paused_since > timeout
        return not self.busy and now - self.waiting_since > timeout


class HttpServer:
    def __init__(self, handler: Handler, *, server_name: str, quick: QuickHandler | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.handler = handler
        self.quick = quick
        self.server_name = server_name
        self.timeout = request_timeout
        self.max_connections = max_connections
        self.on_error = on_error or (lambda message: None)
        self.clock = _Clock()
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task] = set()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int, ssl=None) -> tuple[str, int]:
        """Listen; with an `ssl.SSLContext`, speak HTTPS (a handshake gets `request_timeout`)."""
        loop = asyncio.get_running_loop()
        tls = {} if ssl is None else {"ssl": ssl, "ssl_handshake_timeout": self.timeout}
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=256, **tls)
        self._sweeper = loop.call_later(self._interval(), self._sweep)
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    def _interval(self) -> float:
        return max(0.05, min(1.0, self.timeout / 4))

    def _sweep(self) -> None:
        """Drop connections past their deadline (idle, half-open, slow, or not reading)."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.expired(now, self.timeout):
                conn.closing = True
                conn.transport.abort()
        self._sweeper = asyncio.get_running_loop().call_later(self._interval(), self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.closing = True
            conn.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()
