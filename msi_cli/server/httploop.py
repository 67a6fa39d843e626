"""A small HTTP/1.1 server on asyncio, for short requests from token clients.

One event loop serves every connection (persistent connections, pipelined requests answered in
order), so idle or half-open connections cost no thread. It is an `asyncio.Protocol`, not streams:
a request the application can answer at once (a cache hit) is parsed and answered inside the
read callback, with no task and no extra loop turn; anything else (a mint, a fault's delay)
becomes a task, and the connection answers nothing more until it is answered. A body framed by
Content-Length (up to MAX_BODY) is read into `Request.body`; a chunked one is not read: the
request is refused (411) and the connection closed, so the stream cannot desynchronise.

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
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from msi_cli.server.messages import Request, Response
from msi_cli.server.timesource import REAL, TimeSource
from msi_cli.server.connection import BURST, Connection
from msi_cli.server.wire import MAX_BODY, MAX_HEAD, BadRequest, DateHeader, parse_head, plain, render

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["HttpServer", "BadRequest", "parse_head", "render", "plain", "MAX_HEAD", "MAX_BODY", "REQUEST_TIMEOUT"]

READ_SIZE = 16 * 1024  # bytes read from a socket at a time (asyncio's own default is 256 KiB)
MAX_CONNECTIONS = 4096  # at most: start() lowers it to what the open-file limit leaves
ACCEPT_BURST = 32  # connections accepted per wake-up of the listener
# Descriptors kept free: the state files, the thread pool, stdio; and the connections accepted
# before they make room (an accepted one drops the longest idle three turns of the loop later).
FD_RESERVE = 64 + 4 * ACCEPT_BURST
LISTEN_BACKLOG = 1024  # connections the kernel queues until they are accepted
REQUEST_TIMEOUT = 10.0  # seconds
PRESSURE = 0.75  # share of max_connections past which idle connections get PRESSURE_TIMEOUT
PRESSURE_TIMEOUT = 1.0  # seconds
PUMP = 16  # queued pipelined requests answered per turn of the loop

Handler = Callable[[Request], Awaitable[Response]]
QuickHandler = Callable[[Request], "Response | None"]


def connection_budget(want: int, open_files: int | None = None) -> int:
    """How many connections fit in the open-file limit, after raising its soft value toward
    `want` plus a reserve (never past the hard limit). `open_files` is that limit when given
    (tests); by default it is the process's RLIMIT_NOFILE, which is then raised."""
    if open_files is not None:
        return max(16, min(want, open_files - FD_RESERVE))
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
    loop: asyncio.AbstractEventLoop  # the loop `start` runs on; nothing else runs before it

    def __init__(self, handler: Handler, *, server_name: str, quick: QuickHandler | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                 on_error: Callable[[str], None] | None = None, clock: TimeSource = REAL,
                 open_files: int | None = None) -> None:
        self.handler = handler
        self.monotonic = clock.monotonic  # deadlines: idle, slow and unread connections
        self.quick = quick
        self.server_name = server_name
        self.timeout = request_timeout
        self.max_connections = max_connections
        self.open_files = open_files  # the limit the connections must fit in; None: the process's RLIMIT_NOFILE
        self.on_error = on_error or (lambda message: None)
        self.clock = DateHeader(clock.time)
        self.connections: dict[Connection, None] = {}  # in the order they last started waiting
        self.tasks: set[asyncio.Task[None]] = set()
        self.evicted = 0  # connections dropped to make room for a new one
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._queue: deque[Connection] = deque()  # connections with requests left after their turn
        self.chunk = memoryview(bytearray(READ_SIZE))  # what the loop reads into (one loop, one read at a time)
        self._pumping = False

    async def start(self, host: str | None, port: int | None, *, ssl: SSLContext | None = None,
                    sock: socket.socket | None = None) -> tuple[str, int]:
        """Listen (TLS when given an `ssl.SSLContext`), or accept on `sock`, a listening socket
        another process bound (an HTTPS worker); returns the bound address."""
        self.loop = asyncio.get_running_loop()
        self.max_connections = connection_budget(self.max_connections, self.open_files)
        handshake = self.timeout if ssl is not None else None
        if sock is not None:
            self._server = await self.loop.create_server(lambda: Connection(self), sock=sock, backlog=ACCEPT_BURST, ssl=ssl,
                                                         ssl_handshake_timeout=handshake)
        else:
            assert port is not None  # a port to bind when no socket is given
            self._server = await self.loop.create_server(lambda: Connection(self), host, port, backlog=ACCEPT_BURST, ssl=ssl,
                                                         ssl_handshake_timeout=handshake)
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

    def defer(self, conn: Connection) -> None:
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
        now = self.monotonic()
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
