"""The HTTP loop (`msi_cli.server.httploop.HttpServer`) in-process for tests, alone or inside the
server: an echo application on its own event loop with a ManualClock, and ways to act on the loop
from the test's thread without waiting for time to pass."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from manualclock import ManualClock
from rawhttp import TIMEOUT

REQUEST_TIMEOUT = 10.0  # `msi serve`'s default --request-timeout


def sweep(http, loop: asyncio.AbstractEventLoop) -> None:
    """Run the HTTP loop's deadline sweep now, on its loop, and let the sockets it drops close.
    (Its timer sweeps every quarter of a timeout, at most a second, of real time; waiting for it
    would be waiting for real time. The timer itself is tested in tests/test_serve.py.)"""

    async def now() -> None:
        if http._sweeper is not None:
            http._sweeper.cancel()
        http._sweep()  # reschedules the timer
        await asyncio.sleep(0)  # the aborted transports close their sockets first

    asyncio.run_coroutine_threadsafe(now(), loop).result(TIMEOUT)


def settled(loop: asyncio.AbstractEventLoop) -> None:
    """Return once the callback the server's loop is running (if any) has finished."""
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(TIMEOUT)



class EchoServer:
    """The HTTP loop alone, with a handler that echoes what it received (quick or as a task) and
    records the paths in the order it answers them; `GET /big/N` answers N bytes."""

    def __init__(self, quick: bool, request_timeout: float = REQUEST_TIMEOUT) -> None:
        from msi_cli.server.httploop import HttpServer
        from msi_cli.server.messages import Response

        self.order: list[str] = []
        self.clock = ManualClock()

        def echo(req):
            self.order.append(req.path)
            if req.path.startswith("/big/"):
                return Response(200, b"b" * int(req.path[5:]), content_type="text/plain")
            return Response(200, f"{req.method} {req.path} {len(req.body)} ".encode() + req.body,
                            content_type="text/plain")

        async def handler(req):
            return echo(req)

        self.loop = asyncio.new_event_loop()
        self.http = HttpServer(handler, quick=echo if quick else None, server_name="test",
                               request_timeout=request_timeout, clock=self.clock, open_files=1024)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.addr = asyncio.run_coroutine_threadsafe(self.http.start("127.0.0.1", 0), self.loop).result(TIMEOUT)

    def sweep(self) -> None:
        sweep(self.http, self.loop)

    @contextlib.contextmanager
    def frozen(self):
        """The server's loop held still (blocked on an event, not asleep) while the test sends:
        what is sent meanwhile is all waiting when the loop next looks."""
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            holding.set()
            release.wait(TIMEOUT)

        self.loop.call_soon_threadsafe(hold)
        assert holding.wait(TIMEOUT)
        try:
            yield
        finally:
            release.set()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.http.close(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()



def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nContent-Length: %d\r\n%s\r\n" % (path.encode(), len(body), extra) + body


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]

