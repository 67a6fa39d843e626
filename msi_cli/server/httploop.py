"""A small HTTP/1.1 server on asyncio, for short requests from token clients.

One event loop serves every connection (persistent connections, pipelined requests answered in
order), so idle or half-open connections cost no thread. It is an `asyncio.Protocol`, not streams:
a request the application can answer at once (a cache hit) is parsed and answered inside the
read callback, with no task and no extra loop turn; anything else (a mint, a fault's delay)
becomes a task, and the connection answers nothing more until it is answered. A body framed by
Content-Length (up to MAX_BODY) is read into `Request.body`; a chunked one is not read: the
request is answered without it and the connection closed, so the stream cannot desynchronise.

Hostile input: the request head and body have size limits; a client gets `request_timeout`
seconds from the end of the previous answer (or from connecting) to deliver a complete request,
and as long to take an answer it is slow to read, else the connection is dropped; anything that is
not a well-formed request gets a plain 4xx and the connection is closed. Abuse by other local
processes must not lock out a well-behaved client:
- Idle connections: when the connections reach the limit (raised toward the open-file limit), a
  new one drops the connection that has waited longest for a request instead of being refused;
  past PRESSURE of the limit, idle connections get PRESSURE_TIMEOUT instead of `request_timeout`.
- Pipelining: a connection gets BURST answers in a row, then waits its turn in a round-robin
  queue that answers PUMP requests per turn of the loop, so another client's request is answered
  within one turn, not after every backlog; a connection whose answers are not read (the kernel's
  small send buffer and ours are full) is neither read nor answered until they are, and what is
  read ahead is bounded: READ_SIZE at a time, until MAX_HEAD bytes wait (or the request whose
  body is arriving).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

from msi_cli.server.messages import Request, Response

MAX_HEAD = 16 * 1024  # request line and headers
MAX_BODY = 64 * 1024  # a form-encoded token request fits many times over; larger is a 413
READ_SIZE = 16 * 1024  # bytes read from a socket at a time (asyncio's own default is 256 KiB)
MAX_HEADERS = 100
MAX_CONNECTIONS = 4096  # at most: start() lowers it to what the open-file limit leaves
ACCEPT_BURST = 32  # connections accepted per wake-up of the listener
# Descriptors kept free: the state files, the thread pool, stdio; and the connections accepted
# before they make room (an accepted one drops the longest idle three turns of the loop later).
FD_RESERVE = 64 + 4 * ACCEPT_BURST
LISTEN_BACKLOG = 1024  # connections the kernel queues until they are accepted
REQUEST_TIMEOUT = 10.0  # seconds
PRESSURE = 0.75  # share of max_connections past which idle connections get PRESSURE_TIMEOUT
PRESSURE_TIMEOUT = 1.0  # seconds
BURST = 8  # pipelined requests a connection gets answered in a row
PUMP = 16  # queued pipelined requests answered per turn of the loop
SEND_BUFFER = 32 * 1024  # the kernel's send buffer per connection (fixed, not autotuned to megabytes)
WRITE_HIGH = 16 * 1024  # our write buffer past the kernel's: above it, the connection is paused

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


class _Connection(asyncio.BufferedProtocol):
    __slots__ = ("server", "transport", "buffer", "busy", "closing", "eof", "waiting_since", "write_paused_since",
                 "yielded", "reading", "continued", "need")

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered by a task
        self.closing = False
        self.eof = False
        self.waiting_since = time.monotonic()  # when we started waiting for the next request
        self.write_paused_since: float | None = None
        self.yielded = False  # gave the loop to other connections after a burst of answers
        self.reading = True
        self.continued = False  # sent "100 Continue" for the request at the head of the buffer
        self.need = MAX_HEAD  # buffered bytes past which reading pauses: a head, or the request whose body arrives

    # -- asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        server = self.server
        if len(server.connections) >= server.max_connections and not server.evict():
            self.closing = True
            transport.abort()
            return
        server.connections[self] = None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            except OSError:
                pass
        transport.set_write_buffer_limits(WRITE_HIGH)

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.server.connections.pop(self, None)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.chunk  # shared by the connections: buffer_updated copies it out at once

    def buffer_updated(self, nbytes: int) -> None:
        if self.closing:
            return
        self.buffer += self.server.chunk[:nbytes]
        if not self.busy and not self.yielded:
            # while pipelining connections wait their turn, a new arrival gets one answer at once
            self._process(1 if self.server._queue else BURST)
        if len(self.buffer) >= self.need:
            self._update_reading()

    def eof_received(self) -> bool:
        self.eof = True
        # keep the half-open connection only to answer what was received
        return self.busy or self.yielded or self.write_paused_since is not None

    def pause_writing(self) -> None:
        self.write_paused_since = time.monotonic()
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused_since = None
        if not self.busy and not self.yielded:
            self._process()
        self._update_reading()

    def _update_reading(self) -> None:
        """Read only while the answers are taken and the buffer has room."""
        want = not (self.closing or self.write_paused_since is not None or len(self.buffer) >= self.need)
        if want != self.reading:
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    # -- requests ---------------------------------------------------------------------------------

    def _process(self, limit: int = BURST) -> int:
        """Answer the complete requests in the buffer, in order: at most `limit` (the rest wait
        their turn in the server's queue), none while a task answers one or the client does not
        take its answers. The answers are written together, with one system call. Returns how
        many were answered."""
        buf = self.buffer
        out: list[bytes] = []
        answered = 0
        try:
            while not self.busy and not self.closing and self.write_paused_since is None:
                while buf[:2] == b"\r\n":
                    del buf[:2]
                end = buf.find(b"\r\n\r\n", 0, MAX_HEAD)
                if end < 0:
                    if len(buf) >= MAX_HEAD:
                        self._fail(431, "request head too large", out)
                    elif self.eof:
                        self._close(out)  # the client sent all it will; a partial request is dropped
                    return answered
                if answered == limit:
                    self.yielded = True  # reading goes on, into the bounded buffer
                    self.server.defer(self)
                    return answered
                try:
                    request = parse_head(bytes(buf[: end + 4]))
                    close, size = self._body(request)
                except BadRequest as exc:
                    self._fail(exc.status, exc.message, out)
                    return answered
                start = end + 4
                if len(buf) < start + size:  # the body is still on its way
                    self.need = max(MAX_HEAD, start + size)
                    if (not self.continued and request.version == "HTTP/1.1"
                            and request.headers.get("expect", "").lower() == "100-continue"):
                        self.continued = True
                        out.append(b"HTTP/1.1 100 Continue\r\n\r\n")
                    if self.eof:
                        self._close(out)
                    return answered
                if size:
                    request.body = bytes(buf[start: start + size])
                del buf[: start + size]
                self.continued = False
                self.need = MAX_HEAD
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
                    task = self.server.loop.create_task(self._answer_later(request, close))
                    self.server.tasks.add(task)
                    task.add_done_callback(self.server.tasks.discard)
                    return answered
                self._respond(request, response, close, out)
                answered += 1
            return answered
        finally:
            if out:
                self.transport.write(b"".join(out))

    def _body(self, request: Request) -> tuple[bool, int]:
        """(close after answering, size of the body to read)."""
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
        self._respond(request, response, close)
        if not self.closing and not self.yielded:
            self._process()
            self._update_reading()

    def _respond(self, request: Request, response: Response, close: bool, out: list[bytes] | None = None) -> None:
        """Write the answer, or add it to `out` (written by the caller)."""
        if close:
            response.close = True
        data = render(response, self.server.server_name, self.server.clock.date(), request.method == "HEAD")
        if out is None:
            self.transport.write(data)
        else:
            out.append(data)
        self.waiting_since = time.monotonic()
        if response.close:
            self._close(out)
        else:  # the most recently answered connection is the last to be dropped for room
            connections = self.server.connections
            if connections.pop(self, 0) is None:
                connections[self] = None

    def _fail(self, status: int, message: str, out: list[bytes]) -> None:
        self.server.on_error(f"{status} {message}")
        out.append(render(plain(status, message), self.server.server_name, self.server.clock.date()))
        self._close(out)

    def _close(self, out: list[bytes] | None = None) -> None:
        """Close after writing `out` and what is pending. Where it can, only the sending side is
        closed, and what the client still sends is read and dropped until it closes its side (or
        times out): closing a socket with unread data would reset it, and the client could lose
        the answer (say a 431 to a head it is still sending)."""
        self.closing = True
        self.buffer.clear()
        if out:
            self.transport.write(b"".join(out))
            out.clear()
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.resume_reading()
            self.reading = True
        else:
            self.transport.close()

    def drop(self) -> None:
        """Close now: a FIN if nothing is pending, else a reset (the client is not reading)."""
        self.closing = True
        self.buffer.clear()
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()

    def expired(self, now: float, timeout: float, idle_timeout: float) -> bool:
        if self.write_paused_since is not None:
            return now - self.write_paused_since > timeout
        return not self.busy and now - self.waiting_since > idle_timeout


def connection_budget(want: int) -> int:
    """How many connections fit in the open-file limit, after raising its soft value toward
    `want` plus a reserve (never past the hard limit)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return want
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = want + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return want
    return max(16, min(want, soft - FD_RESERVE))


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
        self.connections: dict[_Connection, None] = {}  # in the order they last started waiting
        self.tasks: set[asyncio.Task] = set()
        self.evicted = 0  # connections dropped to make room for a new one
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._queue: deque[_Connection] = deque()  # connections with requests left after their turn
        self.chunk = memoryview(bytearray(READ_SIZE))  # what the loop reads into (one loop, one read at a time)
        self._pumping = False

    async def start(self, host: str, port: int, *, ssl=None) -> tuple[str, int]:
        """Listen (TLS when given an `ssl.SSLContext`); returns the bound address."""
        self.loop = asyncio.get_running_loop()
        self.max_connections = connection_budget(self.max_connections)
        self._server = await self.loop.create_server(lambda: _Connection(self), host, port, backlog=ACCEPT_BURST, ssl=ssl,
                                                     ssl_handshake_timeout=self.timeout if ssl is not None else None)
        for sock in self._server.sockets:  # asyncio accepts `backlog` at a time: keep that small, the queue long
            try:
                listener = socket.socket(fileno=os.dup(sock.fileno()))
                listener.listen(LISTEN_BACKLOG)
                listener.close()
            except OSError:
                pass
        self._sweeper = self.loop.call_later(self._interval(), self._sweep)
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    def _pressed(self) -> bool:
        return len(self.connections) > self.max_connections * PRESSURE

    def _interval(self) -> float:
        timeout = min(self.timeout, PRESSURE_TIMEOUT) if self._pressed() else self.timeout
        return max(0.05, min(1.0, timeout / 4))

    def evict(self) -> bool:
        """Make room for a new connection: drop the one that has waited longest for a request
        (idle, half-open, or not reading its answers), never one whose answer is being made."""
        for n, conn in enumerate(self.connections):
            if n == 64:
                break
            if not conn.busy:
                del self.connections[conn]
                conn.drop()
                self.evicted += 1
                return True
        return False

    def defer(self, conn: _Connection) -> None:
        self._queue.append(conn)
        if not self._pumping:
            self._pumping = True
            self.loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Answer up to PUMP queued requests, round robin by connection, then let the loop read
        the sockets again: a request that arrives while pipelining connections wait for their
        turn is answered within one turn of the loop, not after all their backlogs."""
        budget = PUMP
        queue = self._queue
        while queue and budget > 0:
            conn = queue.popleft()
            conn.yielded = False
            if conn.closing or conn.busy:
                continue
            budget -= max(1, conn._process(min(BURST, budget)))
            conn._update_reading()
        if queue:
            self.loop.call_soon(self._pump)
        else:
            self._pumping = False

    def _sweep(self) -> None:
        """Drop connections past their deadline (idle, half-open, slow, or not reading)."""
        now = time.monotonic()
        idle_timeout = min(self.timeout, PRESSURE_TIMEOUT) if self._pressed() else self.timeout
        for conn in list(self.connections):
            if conn.expired(now, self.timeout, idle_timeout):
                self.connections.pop(conn, None)
                conn.closing = True
                conn.transport.abort()
        self._sweeper = self.loop.call_later(self._interval(), self._sweep)

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
