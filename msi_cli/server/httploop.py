"""A small HTTP/1.1 server on asyncio, for short JSON requests from token clients.

One event loop serves every connection (persistent connections, requests answered in order), so
idle or half-open connections cost no thread. Every read and write runs under a deadline, the
request head and body have size limits, and anything that is not a well-formed request gets a
plain 4xx and the connection is closed, so garbage cannot wedge the server. The application
handler is a coroutine; blocking work is its business (it uses a thread pool).
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
REQUEST_TIMEOUT = 10.0  # seconds for a whole request head (also the keep-alive idle limit), a body, a write

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_REASONS = {s.value: s.phrase for s in HTTPStatus}

Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_head(head: bytes) -> Request:
    """Parse a request line and headers (ending in CRLF CRLF); raises BadRequest."""
    lines = head.split(b"\r\n")
    while lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise BadRequest(400, "empty request")
    try:
        line = lines[0].decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "the request line is not ASCII") from None
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0].encode()):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    m = _VERSION.fullmatch(version)
    if m is None:
        raise BadRequest(400, "malformed HTTP version")
    if m[1] != "1":
        raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    if target.startswith(("http://", "https://")):
        split = urlsplit(target)
        path, query = split.path or "/", split.query
    elif target.startswith("/"):
        path, _, query = target.partition("?")
    else:
        raise BadRequest(400, "malformed request target")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many headers")
    headers: dict[str, str] = {}
    repeated: set[str] = set()
    for raw in lines[1:]:
        if raw[:1] in (b" ", b"\t"):
            raise BadRequest(400, "folded header lines are not supported")
        name, sep, value = raw.partition(b":")
        if not sep or not name or name.translate(None, _TOKEN_CHARS):
            raise BadRequest(400, "malformed header line")
        key = name.decode("ascii").lower()
        if key in headers:
            repeated.add(key)
            continue
        headers[key] = value.strip(b" \t").decode("latin-1")
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


class HttpServer:
    def __init__(self, handler: Handler, *, server_name: str, request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, on_error: Callable[[str], None] | None = None) -> None:
        self.handler = handler
        self.server_name = server_name
        self.timeout = request_timeout
        self.max_connections = max_connections
        self.on_error = on_error or (lambda message: None)
        self._clock = _Clock()
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD, backlog=256)
        sock = self._server.sockets[0]
        bound = sock.getsockname()
        return bound[0], bound[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for transport in list(self._transports):
            transport.abort()
        await asyncio.sleep(0)  # let the connection tasks see their end
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def connections(self) -> int:
        return len(self._transports)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        if len(self._transports) >= self.max_connections:
            transport.abort()
            return
        self._transports.add(transport)
        loop = asyncio.get_running_loop()
        try:
            while not transport.is_closing():
                timer = loop.call_later(self.timeout, transport.abort)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    timer.cancel()
                    await self._write(writer, plain(431, "request head too large"), loop)
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # closed by the client, or by the deadline
                finally:
                    timer.cancel()
                head = head.lstrip(b"\r\n")
                if not head:
                    continue
                try:
                    request = parse_head(head)
                    close = await self._read_body(request, reader, transport, loop)
                except BadRequest as exc:
                    self.on_error(f"{exc.status} {exc.message}")
                    await self._write(writer, plain(exc.status, exc.message), loop)
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                try:
                    response = await self.handler(request)
                except Exception as exc:  # noqa: BLE001 - the server must survive any handler bug
                    self.on_error(f"500 handler failed: {type(exc).__name__}")
                    response = plain(500, "internal error")
                connection = request.headers.get("connection", "").lower()
                keep = "close" not in connection if request.version == "HTTP/1.1" else "keep-alive" in connection
                if close or not keep:
                    response.close = True
                await self._write(writer, response, loop, head_only=request.method == "HEAD")
                if response.close:
                    return
        except asyncio.CancelledError:
            transport.abort()  # the server is stopping; end quietly (a cancelled task here upsets asyncio)
        finally:
            self._transports.discard(transport)
            if not transport.is_closing():
                transport.close()

    async def _read_body(self, request: Request, reader: asyncio.StreamReader, transport, loop) -> bool:
        """Read and drop a body; True when the connection must close after the answer."""
        if "transfer-encoding" in request.headers:
            return True  # not read: answer, then close so the stream cannot desynchronise
        length = request.headers.get("content-length")
        if length is None:
            return False
        if not length.isdigit() or "content-length" in request.repeated:
            raise BadRequest(400, "malformed Content-Length")
        size = int(length)
        if size > MAX_BODY:
            raise BadRequest(413, "request body too large")
        if size:
            timer = loop.call_later(self.timeout, transport.abort)
            try:
                await reader.readexactly(size)
            finally:
                timer.cancel()
        return False

    async def _write(self, writer: asyncio.StreamWriter, response: Response, loop, head_only: bool = False) -> None:
        transport = writer.transport
        if transport.is_closing():
            return
        writer.write(render(response, self.server_name, self._clock.date(), head_only))
        if transport.get_write_buffer_size():
            timer = loop.call_later(self.timeout, transport.abort)
            try:
                await writer.drain()
            except ConnectionError:
                pass
            finally:
                timer.cancel()
