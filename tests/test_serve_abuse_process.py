"""`msi serve` under abuse, as the installed command in a subprocess (end-to-end): the connection
limit it derives from a real open-file limit (RLIMIT_NOFILE), and what reaches the terminal.

Everything about deadlines, floods and fairness is tested in-process, on a clock the tests move
(tests/test_serve_abuse.py). Nothing here is timed: each wait is on a socket or the process, with
a timeout that only guards against a hang."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import threading
from urllib.parse import urlsplit

import pytest

from conftest import msi_executable
from rawhttp import TIMEOUT, close_all, closed_by_server, exchange, hold_idle, imds_request, is_open, served

pytestmark = pytest.mark.usefixtures("enough_file_descriptors")


class Serve:
    """`msi serve` as a subprocess; its stderr is drained (a full pipe would block the server)."""

    def __init__(self, *args: str, max_files: int | None = None) -> None:
        def limit() -> None:
            if max_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

        self.proc = subprocess.Popen([*msi_executable(), "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(os.environ), preexec_fn=limit)
        self.err: list[bytes] = []
        self._drain = threading.Thread(target=self._read_log, daemon=True)
        self._drain.start()
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        if not line or not line[0].startswith(b"http://127.0.0.1:"):
            self.stop()
            pytest.fail(f"msi serve did not start: {b''.join(self.err).decode(errors='replace')}")
        parts = urlsplit(line[0].decode().strip())
        self.addr = (parts.hostname, parts.port)

    def _read_log(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)

    def stop(self) -> bytes:
        """Stop it (SIGINT: the log's last summaries are written) and return its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        self._drain.join(TIMEOUT)
        return b"".join(self.err)


@pytest.fixture
def serve_proc():
    started: list[Serve] = []

    def start(*args: str, max_files: int | None = None) -> Serve:
        server = Serve(*args, max_files=max_files)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def vm(cli) -> bytes:
    return imds_request(cli)


def test_at_the_open_file_limit_the_longest_idle_connection_makes_room(vm, serve_proc):
    """256 open files (the process's real limit) leave room for 64 connections: the 1,000 idle
    ones push each other out, the oldest first, and a new client still gets its token."""
    server = serve_proc(max_files=256)
    served(server.addr, vm)
    idle = hold_idle(server.addr, 1000)
    try:
        with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:
            answer = exchange(sock, vm)  # accepted after every idle one: each has had its turn
            assert answer.startswith(b"HTTP/1.1 200 ") and b"access_token" in answer
            assert all(closed_by_server(sock) for sock in idle[:-64])  # the oldest were dropped for newer ones
            assert is_open(idle[-1])
    finally:
        close_all(idle)
    assert b"Traceback" not in server.stop()


def test_nothing_from_the_network_reaches_the_log_raw(vm, serve_proc):
    server = serve_proc("--verbose")
    evil = [
        b"GET /\x1b[31mred\x07 HTTP/1.1\r\n\r\n",  # raw control characters in the request line
        b"GET /%1b%5d0;owned%07/.well-known/openid-configuration HTTP/1.1\r\n\r\n",  # decoded from the path
        b"GET /subscriptions/%C2%9B2J/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
        b"/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x HTTP/1.1\r\nMetadata: true\r\n\r\n",
        b"GET /" + b"a" * 12000 + b" HTTP/1.1\r\n\r\n",
    ]
    for request in evil:
        with socket.create_connection(server.addr, timeout=TIMEOUT) as sock:
            assert exchange(sock, request)[9:10] == b"4"
    err = server.stop()
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", err)
    assert "\x9b" not in err.decode()
    text = err.decode()
    assert "/\\x1b[31mred\\x07 404" in text
    assert "no simulated tenant '\\x1b]0;owned\\x07'" in text
    assert "/subscriptions/\\x9b2j/" in text  # the resource id, decoded and lower-cased
    assert max(len(line) for line in text.splitlines()) < 500
