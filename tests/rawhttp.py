"""Raw HTTP/1.1 over loopback sockets, for the tests that attack `msi serve` (tests/test_serve_abuse.py
in-process, tests/test_serve_abuse_process.py against the installed `msi serve`).

Nothing here waits for time to pass: a socket's timeout (TIMEOUT) only bounds a wait for something
the server is due to send, so a broken server fails the test instead of hanging it."""

from __future__ import annotations

import re
import socket
from urllib.parse import quote

import pytest

VAULT = "https://vault.azure.net"
TIMEOUT = 10  # seconds: a hang guard, never a measure

Address = tuple[str, int]


def imds_request(cli) -> bytes:
    """A valid IMDS token request (raw HTTP/1.1) for a new VM with a system-assigned identity."""
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    rid = cli.json("show", "vm1")["id"]
    path = quote(rid, safe="/()!$&'*+,;=:@-._~") + f"/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}"
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nMetadata: true\r\n\r\n".encode()


def read_answer(sock: socket.socket, pending: bytearray) -> bytes:
    """One Content-Length framed answer from `sock` (bytes past it stay in `pending`)."""
    while True:
        end = pending.find(b"\r\n\r\n")
        if end >= 0:
            match = re.search(rb"\r\ncontent-length: *(\d+)", bytes(pending[:end]), re.IGNORECASE)
            size = end + 4 + (int(match[1]) if match else 0)
            if len(pending) >= size:
                answer = bytes(pending[:size])
                del pending[:size]
                return answer
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        pending += chunk


def exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    return read_answer(sock, bytearray())


def served(addr: Address, request: bytes) -> bytes:
    """The answer to `request` on a new connection (the test fails if the client is refused)."""
    try:
        with socket.create_connection(addr, timeout=TIMEOUT) as sock:
            return exchange(sock, request)
    except OSError as exc:
        pytest.fail(f"a well-behaved client was refused: {exc!r}")


def hold_idle(addr: Address, count: int) -> list[socket.socket]:
    """`count` connections that never finish a request: even ones send nothing, odd ones half a
    request line (the server's view of a slowloris or half-open client)."""
    held = []
    for n in range(count):
        sock = socket.create_connection(addr, timeout=TIMEOUT)
        if n % 2:
            sock.sendall(b"GET /metadata/identity/oauth2/tok")
        held.append(sock)
    return held


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes `sock` (FIN or reset): True; False if it is still open when
    the socket's timeout ends (the hang guard)."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def is_open(sock: socket.socket) -> bool:
    """The server has not closed `sock`: no FIN or reset is waiting (reads nothing, waits for nothing)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for it (poll) before peeking
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return True
    except ConnectionError:
        return False
    finally:
        sock.settimeout(timeout)


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()
