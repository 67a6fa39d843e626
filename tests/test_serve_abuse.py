"""`msi serve` under abuse by another local process: idle and half-open connections must not lock
out a well-behaved client, pipelining floods that never read their answers must not starve it or
flood the log, and slow or silent connections are dropped at their deadlines; the same for the
HTTP loop alone, with an echo application (tests/loopkit.py; its request bodies:
tests/test_httploop.py).

The server runs in-process (`Server` on a `ServerThread`) with a ManualClock: its monotonic time
stands still until a test moves it, so a deadline is reached by `clock.advance`, and each test
checks that a connection is open just before its deadline and closed just after it. The deadline
sweep is run on the server's loop at once (`sweep`) rather than waiting for its timer. Nothing is
timed: "still served" means the answer arrives (a socket timeout is only a hang guard), and
fairness is checked by order and counts. The connection limit comes from an injected open-file
limit (`open_files`); tests/test_serve_abuse_process.py runs `msi serve` under a real one, and
checks what reaches the terminal. benchmarks/server_abuse.py measures the real latencies."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import pytest

from loopkit import REQUEST_TIMEOUT, EchoServer, body_of, settled, sweep
from manualclock import ManualClock
from rawhttp import TIMEOUT, close_all, closed_by_server, exchange, hold_idle, imds_request, is_open, read_answer, served

pytestmark = pytest.mark.usefixtures("enough_file_descriptors")


# ---- helpers ---------------------------------------------------------------------------------------


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


# ---- the HTTP loop alone: turns and deadlines ---------------------------------------------------------


@pytest.fixture
def echo_server():
    """The HTTP loop alone (quick answers) with the request timeout of `msi serve` (10 s) and a ManualClock."""
    server = EchoServer(quick=True)
    yield server
    server.close()


def test_a_pipelined_backlog_yields_to_another_client_within_a_turn(echo_server):
    """A connection with 300 pipelined requests gets BURST answers, then waits its turn: a request
    from another client that arrives with them is answered after at most one burst and one turn
    of the queue, not after the backlog."""
    from msi_cli.server.connection import BURST
    from msi_cli.server.httploop import PUMP

    with socket.create_connection(echo_server.addr, timeout=TIMEOUT) as flood, \
            socket.create_connection(echo_server.addr, timeout=TIMEOUT) as client:
        for sock in (flood, client):  # both accepted
            exchange(sock, b"GET /hello HTTP/1.1\r\n\r\n")
        echo_server.order.clear()
        with echo_server.frozen():
            flood.sendall(b"".join(b"GET /f%d HTTP/1.1\r\n\r\n" % n for n in range(300)))
            client.sendall(b"GET /client HTTP/1.1\r\n\r\n")
        assert body_of(read_answer(client, bytearray())) == b"GET /client 0 "
        pending = bytearray()
        assert [body_of(read_answer(flood, pending)).split(b" ")[1] for _ in range(300)] == [b"/f%d" % n for n in range(300)]
    assert echo_server.order.index("/client") <= BURST + PUMP <= 50  # one burst and one turn: a small part of the backlog
    assert [path for path in echo_server.order if path != "/client"] == [f"/f{n}" for n in range(300)]


def test_a_keep_alive_connection_is_dropped_after_the_request_timeout(echo_server):
    with socket.create_connection(echo_server.addr, timeout=TIMEOUT) as sock:
        assert body_of(exchange(sock, b"GET /one HTTP/1.1\r\n\r\n")) == b"GET /one 0 "
        echo_server.clock.advance(REQUEST_TIMEOUT - 0.1)  # counted from the end of the answer
        echo_server.sweep()
        assert is_open(sock)
        assert body_of(exchange(sock, b"GET /two HTTP/1.1\r\n\r\n")) == b"GET /two 0 "  # a new answer: a new deadline
        echo_server.clock.advance(REQUEST_TIMEOUT - 0.1)
        echo_server.sweep()
        assert is_open(sock)
        echo_server.clock.advance(0.2)
        echo_server.sweep()
        assert closed_by_server(sock)


def test_a_request_sent_slowly_gets_no_more_time(echo_server):
    """The deadline runs from the last answer (or connecting) to the end of a whole request:
    bytes trickling in do not extend it (a slowloris)."""
    with socket.create_connection(echo_server.addr, timeout=TIMEOUT) as sock:
        exchange(sock, b"GET /first HTTP/1.1\r\n\r\n")  # the deadline runs from here
        request = b"GET /slow HTTP/1.1\r\nHost: x\r\n"
        elapsed = 0.0
        for n, byte in enumerate(request):
            sock.sendall(bytes([byte]))
            if n % 5 == 4:
                echo_server.clock.advance(0.3)
                elapsed += 0.3
        assert elapsed < REQUEST_TIMEOUT - 1
        echo_server.clock.advance(REQUEST_TIMEOUT - 0.1 - elapsed)
        echo_server.sweep()
        assert is_open(sock)
        sock.sendall(b"X-More: 1\r\n")
        echo_server.clock.advance(0.2)
        echo_server.sweep()
        assert closed_by_server(sock)
    assert echo_server.order == ["/first"]  # the slow request was never answered


def test_a_client_that_does_not_read_its_answer_is_dropped_after_the_request_timeout(echo_server):
    """An answer the client does not take (our write buffer full) gets the request timeout from
    when writing stopped; a client that takes it in time gets all of it."""
    size = 4 << 20  # past the kernel's buffers and ours
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(TIMEOUT)
        sock.connect(echo_server.addr)
        sock.sendall(b"GET /big/%d HTTP/1.1\r\n\r\n" % size)
        assert sock.recv(1, socket.MSG_PEEK)  # the answer is being written...
        settled(echo_server.loop)  # ...and the loop has stopped writing it (in the same callback)
        echo_server.clock.advance(REQUEST_TIMEOUT - 0.1)
        echo_server.sweep()
        answer = read_answer(sock, bytearray())  # not dropped: read now, it arrives whole
        assert len(body_of(answer)) == size
        sock.sendall(b"GET /big/%d HTTP/1.1\r\n\r\n" % size)
        assert sock.recv(1, socket.MSG_PEEK)
        settled(echo_server.loop)
        echo_server.clock.advance(REQUEST_TIMEOUT + 0.1)
        echo_server.sweep()
        received = 0  # dropped: what was already on its way arrives, then the end
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail("the server kept a connection that did not take its answer")
        assert received < size


def test_a_client_that_does_not_take_its_answers_gets_no_more_answered(echo_server):
    """While an answer waits to be read, the requests pipelined behind it wait too: no more are
    answered than the burst being written when it stopped; once it is read, the rest follow in
    order."""
    from msi_cli.server.connection import BURST

    size = 4 << 20
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(TIMEOUT)
        sock.connect(echo_server.addr)
        sock.sendall(b"GET /big/%d HTTP/1.1\r\n\r\n" % size + b"".join(b"GET /after%d HTTP/1.1\r\n\r\n" % n for n in range(50)))
        assert sock.recv(1, socket.MSG_PEEK)
        for _ in range(3):  # turns of the loop in which a round-robin turn would come
            settled(echo_server.loop)
        assert echo_server.order[0] == f"/big/{size}" and len(echo_server.order) <= BURST <= 8
        pending = bytearray()
        assert len(body_of(read_answer(sock, pending))) == size
        assert [body_of(read_answer(sock, pending)).split(b" ")[1] for _ in range(50)] == [b"/after%d" % n for n in range(50)]
