"""`msi serve` under abuse by another local process: idle and half-open connections must not lock
out a well-behaved client, pipelining floods that never read their answers must not starve it or
flood the log, and slow or silent connections are dropped at their deadlines. Plus the HTTP loop's
request bodies (Content-Length framed, bounded, pipelining-safe).

The server runs in-process (`Server` on a `ServerThread`) with a ManualClock: its monotonic time
stands still until a test moves it, so a deadline is reached by `clock.advance`, and each test
checks that a connection is open just before its deadline and closed just after it. The deadline
sweep is run on the server's loop at once (`sweep`) rather than waiting for its timer. Nothing is
timed: "still served" means the answer arrives (a socket timeout is only a hang guard), and
fairness is checked by order and counts. The connection limit comes from an injected open-file
limit (`open_files`); tests/test_serve_abuse_process.py runs `msi serve` under a real one, and
checks what reaches the terminal. benchmarks/server_abuse.py measures the real latencies."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from urllib.parse import urlsplit

import pytest

from manualclock import ManualClock
from rawhttp import TIMEOUT, close_all, closed_by_server, exchange, hold_idle, imds_request, is_open, read_answer, served

pytestmark = pytest.mark.usefixtures("enough_file_descriptors")

REQUEST_TIMEOUT = 10.0  # `msi serve`'s default --request-timeout


# ---- helpers ---------------------------------------------------------------------------------------


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


class InProcess:
    """`msi serve` for the test's state on a background thread, with a ManualClock and an
    injected open-file limit (by default room for the most connections the loop allows)."""

    def __init__(self, state, request_timeout: float, open_files: int | None) -> None:
        from msi_cli.server.background import ServerThread
        from msi_cli.server.httploop import FD_RESERVE, MAX_CONNECTIONS
        from msi_cli.server.service import Server
        from msi_cli.store.statefile import StateFile

        self.clock = ManualClock()
        self.logs: list[str] = []
        self.server = Server(StateFile(state), request_timeout=request_timeout, log=self.logs.append, clock=self.clock,
                             open_files=open_files or MAX_CONNECTIONS + FD_RESERVE)
        self.http = self.server.http
        self.thread = ServerThread(self.server)
        parts = urlsplit(self.thread.start())
        self.addr = (parts.hostname, parts.port)
        self.stopped = False

    def sweep(self) -> None:
        sweep(self.http, self.thread.loop)

    def stop(self) -> list[str]:
        """Stop it (the log's last summaries are written) and return its log lines."""
        if not self.stopped:
            self.stopped = True
            self.thread.stop()
        return self.logs


@pytest.fixture
def in_process(isolated_state):
    started: list[InProcess] = []

    def start(request_timeout: float = REQUEST_TIMEOUT, open_files: int | None = None) -> InProcess:
        server = InProcess(isolated_state, request_timeout, open_files)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def vm(cli) -> bytes:
    return imds_request(cli)


def ok(answer: bytes) -> bool:
    return answer.startswith(b"HTTP/1.1 200 ") and b"access_token" in answer


# ---- idle and half-open connections (issue 10, item 12) --------------------------------------------


def test_a_thousand_idle_sockets_do_not_lock_out_a_client(vm, in_process):
    server = in_process()
    served(server.addr, vm)  # the token is minted: what follows are cache hits
    idle = hold_idle(server.addr, 1000)
    try:
        assert ok(served(server.addr, vm))
        with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:  # and it keeps being served
            for _ in range(20):
                assert ok(exchange(sock, vm))
        server.clock.advance(REQUEST_TIMEOUT - 0.1)
        server.sweep()
        assert all(is_open(sock) for sock in idle)  # under the limit, each gets the whole request timeout
        server.clock.advance(0.2)
        server.sweep()
        assert all(closed_by_server(sock) for sock in idle)
    finally:
        close_all(idle)
    assert ok(served(server.addr, vm))


def test_at_the_open_file_limit_the_longest_idle_connection_makes_room(vm, in_process):
    """256 open files leave room for 64 connections: the 1,000 idle ones push each other out, the
    oldest first, and a new client still gets its token. (The clock stands still: room is made by
    count, not by age.)"""
    server = in_process(open_files=256)
    assert server.http.max_connections == 64
    served(server.addr, vm)
    idle = hold_idle(server.addr, 1000)
    try:
        with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:
            assert ok(exchange(sock, vm))  # accepted after every idle one: each has had its turn
            kept = server.http.max_connections - 1  # the client holds the last place
            assert all(closed_by_server(sock) for sock in idle[:-kept])  # the oldest were dropped for newer ones
            assert all(is_open(sock) for sock in idle[-kept:])
            assert server.http.evicted >= len(idle) - kept
    finally:
        close_all(idle)
    assert ok(served(server.addr, vm))
    assert server.stop() == []  # nothing went wrong (a failed accept or callback would be logged)


def test_under_pressure_idle_connections_time_out_sooner(vm, in_process):
    """Past three quarters of the connection limit an idle connection gets one second, not the
    request timeout (10 s here); below it, the request timeout."""
    server = in_process(open_files=320)
    assert server.http.max_connections == 128
    idle = hold_idle(server.addr, 110)  # under the limit, past three quarters of it
    try:
        served(server.addr, vm)  # accepted after every idle one: all are waiting since now
        server.clock.advance(0.9)
        server.sweep()
        assert all(is_open(sock) for sock in idle)
        server.clock.advance(0.2)
        server.sweep()
        assert all(closed_by_server(sock) for sock in idle)
        assert ok(served(server.addr, vm))
    finally:
        close_all(idle)
    idle = hold_idle(server.addr, 90)  # below three quarters: no pressure
    try:
        served(server.addr, vm)
        server.clock.advance(1.1)
        server.sweep()
        assert all(is_open(sock) for sock in idle)
        server.clock.advance(REQUEST_TIMEOUT - 1.2)
        server.sweep()
        assert all(is_open(sock) for sock in idle)
        server.clock.advance(0.2)
        server.sweep()
        assert all(closed_by_server(sock) for sock in idle)
    finally:
        close_all(idle)


# ---- pipelining floods (item 13) -------------------------------------------------------------------


def flood(addr, request: bytes, connections: int = 40, limit: int = 1 << 20) -> list[socket.socket]:
    """Connections that pipeline requests as fast as the kernel takes them and never read."""
    socks = []
    payload = request * (65536 // len(request))
    for _ in range(connections):
        sock = socket.create_connection(addr, timeout=TIMEOUT)
        sock.setblocking(False)
        sent = 0
        try:
            while sent < limit:
                sent += sock.send(payload)
        except BlockingIOError:
            pass
        socks.append(sock)
    return socks


def test_pipelining_floods_neither_starve_a_client_nor_flood_the_log(vm, in_process):
    server = in_process()
    served(server.addr, vm)
    refused = vm.replace(b"Metadata: true\r\n", b"")  # a 400 (no Metadata header), which is logged
    floods = flood(server.addr, refused)
    try:
        with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:
            for _ in range(20):
                assert ok(exchange(sock, vm))
        assert ok(served(server.addr, vm))
    finally:
        close_all(floods)
    lines = server.stop()
    refusals = [line for line in lines if " 400 " in line and "Required metadata header not specified" in line]
    told = sum(int(m[1]) if (m := re.search(r"\.\.\. and (\d+) more like this", line)) else 1 for line in refusals)
    assert any("more like this" in line for line in refusals)  # the floods' refusals are summed up...
    assert told > 10 * len(refusals)  # ...so there are far fewer lines than refusals
    assert len(lines) < 400


def test_a_client_that_reads_gets_every_pipelined_answer_in_order(vm, in_process):
    server = in_process()
    refused = vm.replace(b"Metadata: true\r\n", b"")
    pattern = [vm, refused, vm] * 100
    with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(pattern))
        sock.shutdown(socket.SHUT_WR)  # half-closed: what was sent is still answered
        pending = bytearray()
        statuses = [read_answer(sock, pending)[9:12] for _ in pattern]
        assert closed_by_server(sock)  # then closed, with no clock moved: no deadline involved
    assert statuses == [b"200" if request is vm else b"400" for request in pattern]


# ---- the log (item 3) ------------------------------------------------------------------------------


def test_printable_escapes_and_bounds():
    from msi_cli.server.serverlog import printable

    assert printable("plain text / é") == "plain text / é"
    assert printable("a\x1b[2Jb\r\n\u202e\u2028\x9b") == "a\\x1b[2Jb\\x0d\\x0a\\u202e\\u2028\\x9b"
    long = printable("x" * 5000)
    assert len(long) <= 400 and long.endswith("more)")


def test_like_log_lines_are_summed_up():
    from msi_cli.server.serverlog import PER_KIND, ServerLog

    now = [0.0]
    written: list[str] = []
    log = ServerLog(written.append, clock=lambda: now[0])
    for n in range(1000):
        log(f"GET /x{n} 404", kind="GET 404")
    log("GET / 500 (a different kind)", kind="GET 500")
    assert len(written) == PER_KIND + 1
    now[0] = 1.5
    log("GET /y 404", kind="GET 404")  # a new second: the summary first, then the line
    assert written[-2:] == [f"... and {1000 - PER_KIND} more like this: GET /x999 404", "GET /y 404"]


# ---- the HTTP loop alone: request bodies, deadlines, turns ------------------------------------------


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


@pytest.fixture(params=["quick", "task"])
def echo(request):
    server = EchoServer(request.param == "quick")
    yield server
    server.close()


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nContent-Length: %d\r\n%s\r\n" % (path.encode(), len(body), extra) + body


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]


def test_a_body_reaches_the_handler_and_pipelining_stays_in_step(echo):
    smuggled = b"grant_type=x&GET /smuggled HTTP/1.1\r\n\r\n"
    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:
        sock.sendall(post("/a", smuggled) + b"GET /b HTTP/1.1\r\n\r\n" + post("/c", b"") + post("/d", b"k=v"))
        pending = bytearray()
        bodies = [body_of(read_answer(sock, pending)) for _ in range(4)]
        assert bodies == [b"POST /a %d " % len(smuggled) + smuggled, b"GET /b 0 ", b"POST /c 0 ", b"POST /d 3 k=v"]
        request = post("/e", b"x" * 5000)  # a body in pieces
        for n in range(0, len(request), 700):
            sock.sendall(request[n:n + 700])
        assert body_of(read_answer(sock, pending)) == b"POST /e 5000 " + b"x" * 5000


def test_expect_100_continue_gets_an_interim_answer(echo):
    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /t HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert read_answer(sock, bytearray()).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"a=b")
        assert body_of(read_answer(sock, bytearray())) == b"POST /t 3 a=b"


def test_body_limits_and_chunked_bodies(echo):
    from msi_cli.server.httploop import MAX_BODY

    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:
        assert body_of(exchange(sock, post("/max", b"y" * MAX_BODY))).startswith(b"POST /max %d " % MAX_BODY)
    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:  # refused while the body is still coming
        sock.sendall(b"POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1) + b"z" * 300_000)
        answer = read_answer(sock, bytearray())  # the 413 arrives, not a reset
        assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
        assert closed_by_server(sock)
    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
        answer = read_answer(sock, bytearray())
        assert body_of(answer) == b"POST /chunked 0 " and b"Connection: close" in answer  # not read, not desynchronised
        assert closed_by_server(sock)


def test_many_pipelined_requests_are_answered_in_order(echo):
    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\n\r\n" % n if n % 3 else post(f"/{n}", b"b%d" % n) for n in range(300)))
        sock.shutdown(socket.SHUT_WR)
        pending = bytearray()
        paths = [body_of(read_answer(sock, pending)).split(b" ")[1] for _ in range(300)]
        assert paths == [b"/%d" % n for n in range(300)]
        assert closed_by_server(sock)


def test_a_pipelined_backlog_yields_to_another_client_within_a_turn(echo):
    """A connection with 300 pipelined requests gets BURST answers, then waits its turn: a request
    from another client that arrives with them is answered after at most one burst and one turn
    of the queue, not after the backlog."""
    from msi_cli.server.connection import BURST
    from msi_cli.server.httploop import PUMP

    with socket.create_connection(echo.addr, timeout=TIMEOUT) as flood, \
            socket.create_connection(echo.addr, timeout=TIMEOUT) as client:
        for sock in (flood, client):  # both accepted
            exchange(sock, b"GET /hello HTTP/1.1\r\n\r\n")
        echo.order.clear()
        with echo.frozen():
            flood.sendall(b"".join(b"GET /f%d HTTP/1.1\r\n\r\n" % n for n in range(300)))
            client.sendall(b"GET /client HTTP/1.1\r\n\r\n")
        assert body_of(read_answer(client, bytearray())) == b"GET /client 0 "
        pending = bytearray()
        assert [body_of(read_answer(flood, pending)).split(b" ")[1] for _ in range(300)] == [b"/f%d" % n for n in range(300)]
    assert echo.order.index("/client") <= BURST + PUMP <= 50  # one burst and one turn: a small part of the backlog
    assert [path for path in echo.order if path != "/client"] == [f"/f{n}" for n in range(300)]


# ---- the HTTP loop's deadlines, reached by moving its clock -----------------------------------------


@pytest.fixture
def timed():
    """The HTTP loop alone with the request timeout of `msi serve` (10 s) and a ManualClock."""
    server = EchoServer(quick=True)
    yield server
    server.close()


def test_a_keep_alive_connection_is_dropped_after_the_request_timeout(timed):
    with socket.create_connection(timed.addr, timeout=TIMEOUT) as sock:
        assert body_of(exchange(sock, b"GET /one HTTP/1.1\r\n\r\n")) == b"GET /one 0 "
        timed.clock.advance(REQUEST_TIMEOUT - 0.1)  # counted from the end of the answer
        timed.sweep()
        assert is_open(sock)
        assert body_of(exchange(sock, b"GET /two HTTP/1.1\r\n\r\n")) == b"GET /two 0 "  # a new answer: a new deadline
        timed.clock.advance(REQUEST_TIMEOUT - 0.1)
        timed.sweep()
        assert is_open(sock)
        timed.clock.advance(0.2)
        timed.sweep()
        assert closed_by_server(sock)


def test_a_request_sent_slowly_gets_no_more_time(timed):
    """The deadline runs from the last answer (or connecting) to the end of a whole request:
    bytes trickling in do not extend it (a slowloris)."""
    with socket.create_connection(timed.addr, timeout=TIMEOUT) as sock:
        exchange(sock, b"GET /first HTTP/1.1\r\n\r\n")  # the deadline runs from here
        request = b"GET /slow HTTP/1.1\r\nHost: x\r\n"
        elapsed = 0.0
        for n, byte in enumerate(request):
            sock.sendall(bytes([byte]))
            if n % 5 == 4:
                timed.clock.advance(0.3)
                elapsed += 0.3
        assert elapsed < REQUEST_TIMEOUT - 1
        timed.clock.advance(REQUEST_TIMEOUT - 0.1 - elapsed)
        timed.sweep()
        assert is_open(sock)
        sock.sendall(b"X-More: 1\r\n")
        timed.clock.advance(0.2)
        timed.sweep()
        assert closed_by_server(sock)
    assert timed.order == ["/first"]  # the slow request was never answered


def test_a_client_that_does_not_read_its_answer_is_dropped_after_the_request_timeout(timed):
    """An answer the client does not take (our write buffer full) gets the request timeout from
    when writing stopped; a client that takes it in time gets all of it."""
    size = 4 << 20  # past the kernel's buffers and ours
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(TIMEOUT)
        sock.connect(timed.addr)
        sock.sendall(b"GET /big/%d HTTP/1.1\r\n\r\n" % size)
        assert sock.recv(1, socket.MSG_PEEK)  # the answer is being written...
        settled(timed.loop)  # ...and the loop has stopped writing it (in the same callback)
        timed.clock.advance(REQUEST_TIMEOUT - 0.1)
        timed.sweep()
        answer = read_answer(sock, bytearray())  # not dropped: read now, it arrives whole
        assert len(body_of(answer)) == size
        sock.sendall(b"GET /big/%d HTTP/1.1\r\n\r\n" % size)
        assert sock.recv(1, socket.MSG_PEEK)
        settled(timed.loop)
        timed.clock.advance(REQUEST_TIMEOUT + 0.1)
        timed.sweep()
        received = 0  # dropped: what was already on its way arrives, then the end
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail("the server kept a connection that did not take its answer")
        assert received < size


def test_a_client_that_does_not_take_its_answers_gets_no_more_answered(timed):
    """While an answer waits to be read, the requests pipelined behind it wait too: no more are
    answered than the burst being written when it stopped; once it is read, the rest follow in
    order."""
    from msi_cli.server.connection import BURST

    size = 4 << 20
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(TIMEOUT)
        sock.connect(timed.addr)
        sock.sendall(b"GET /big/%d HTTP/1.1\r\n\r\n" % size + b"".join(b"GET /after%d HTTP/1.1\r\n\r\n" % n for n in range(50)))
        assert sock.recv(1, socket.MSG_PEEK)
        for _ in range(3):  # turns of the loop in which a round-robin turn would come
            settled(timed.loop)
        assert timed.order[0] == f"/big/{size}" and len(timed.order) <= BURST <= 8
        pending = bytearray()
        assert len(body_of(read_answer(sock, pending))) == size
        assert [body_of(read_answer(sock, pending)).split(b" ")[1] for _ in range(50)] == [b"/after%d" % n for n in range(50)]
