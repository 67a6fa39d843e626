"""One client connection of the HTTP loop (`httploop.HttpServer`): reads into a bounded buffer,
frames requests (`wire`), answers them in order (at once from the quick handler, else in a task),
and closes by half-closing and draining. The server owns the policy: eviction, round-robin turns
for pipelined requests, and deadlines (read from the server's `monotonic` clock)."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, cast

from msi_cli.server.messages import Request, Response
from msi_cli.server.wire import MAX_BODY, MAX_HEAD, BadRequest, framing, keep_alive, parse_head, plain, render

if TYPE_CHECKING:
    from msi_cli.server.httploop import HttpServer

BURST = 8  # pipelined requests a connection gets answered in a row
SEND_BUFFER = 32 * 1024  # the kernel's send buffer per connection (fixed, not autotuned to megabytes)
WRITE_HIGH = 16 * 1024  # our write buffer past the kernel's: above it, the connection is paused


class Connection(asyncio.BufferedProtocol):
    __slots__ = ("server", "transport", "buffer", "busy", "closing", "eof", "waiting_since", "write_paused_since",
                 "yielded", "reading", "continued", "need")

    transport: asyncio.Transport  # set by connection_made, before any other callback

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.busy = False  # a request is being answered by a task
        self.closing = False
        self.eof = False
        self.waiting_since = self.server.monotonic()  # when we started waiting for the next request
        self.write_paused_since: float | None = None
        self.yielded = False  # gave the loop to other connections after a burst of answers
        self.reading = True
        self.continued = False  # sent "100 Continue" for the request at the head of the buffer
        self.need = MAX_HEAD  # buffered bytes past which reading pauses: a head, or the request whose body arrives

    # -- asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_server hands a stream protocol a full (read and write) Transport
        transport = self.transport = cast(asyncio.Transport, transport)
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

    def connection_lost(self, exc: Exception | None) -> None:
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
        self.write_paused_since = self.server.monotonic()
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
                    close, size = framing(request, MAX_BODY)
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
                close = close or not keep_alive(request)
                try:
                    response = self.server.quick(request) if self.server.quick is not None else None
                except Exception:  # a bug on the quick path: the handler answers (a 500, logged) and the connection lives
                    response = None
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

    async def _answer_later(self, request: Request, close: bool) -> None:
        try:
            response = await self.server.handler(request)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # the server must survive any handler bug
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
        self.waiting_since = self.server.monotonic()
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
