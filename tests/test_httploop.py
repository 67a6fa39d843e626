"""The HTTP loop alone (`msi_cli.server.httploop`), answering with an echo application, quick (in
the read callback) or as a task: request bodies framed by Content-Length and bounded, `Expect:
100-continue`, chunked bodies refused without desynchronising, pipelined requests in order.
(Its deadlines and turns under abuse: tests/test_serve_abuse.py.)"""

from __future__ import annotations

import socket

import pytest

from loopkit import EchoServer, body_of, post
from rawhttp import TIMEOUT, closed_by_server, exchange, read_answer


@pytest.fixture(params=["quick", "task"])
def echo(request):
    server = EchoServer(request.param == "quick")
    yield server
    server.close()


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
        answer = read_answer(sock, bytearray())  # refused, not answered as if it had no body (a write lost silently)
        assert answer.startswith(b"HTTP/1.1 411 ") and b"Connection: close" in answer  # not read, not desynchronised
        assert closed_by_server(sock)
    assert "/chunked" not in echo.order  # the application never saw it


def test_many_pipelined_requests_are_answered_in_order(echo):
    with socket.create_connection(echo.addr, timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\n\r\n" % n if n % 3 else post(f"/{n}", b"b%d" % n) for n in range(300)))
        sock.shutdown(socket.SHUT_WR)
        pending = bytearray()
        paths = [body_of(read_answer(sock, pending)).split(b" ")[1] for _ in range(300)]
        assert paths == [b"/%d" % n for n in range(300)]
        assert closed_by_server(sock)



def test_a_failing_quick_answer_is_left_to_the_handler_and_the_connection_lives():
    """A bug on the quick path (as a time no date holds once was) does not reach asyncio's
    protocol (which drops the connection, or kills a TLS one): the handler answers instead."""
    server = EchoServer(True)
    answered_quickly = server.http.quick

    def quick(req):
        if req.path == "/boom":
            raise OverflowError("timestamp out of range for platform time_t")
        return answered_quickly(req)

    server.http.quick = quick
    try:
        with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:
            assert body_of(exchange(sock, b"GET /boom HTTP/1.1\r\n\r\n")) == b"GET /boom 0 "
            assert body_of(exchange(sock, b"GET /after HTTP/1.1\r\n\r\n")) == b"GET /after 0 "  # the same connection
    finally:
        server.close()
