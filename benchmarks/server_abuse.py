"""The local token endpoint under abuse: valid-request latency and rate while another local process
(a) holds 1,000 idle connections (half of them with a request line that never ends), or (b) runs
40 pipelining floods that never read their answers; side by side with the unloaded figures.
Targets: a valid token request answers in under 100 ms while the idle sockets are held, and the
valid requests' p99 stays under 50 ms during the floods.

The attacker is one process with non-blocking sockets; it reopens any connection the server
drops, so the pressure lasts for the whole measurement. The probe is one well-behaved client
measured twice: on a persistent connection, and with a new connection per request (as a client
whose keep-alive connection was dropped would). The server's stderr is drained and its lines
counted: the floods send requests that are refused, and each refusal used to be one log line.

Everything is bounded (seconds per case, requests per probe) and stays on loopback.

Usage: python benchmarks/server_abuse.py [--seconds 3] [--idle 1000] [--floods 40] [--server-files N]
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import environment, msi_command, precompile, table
from endpoint import VAULT, imds_target, run_msi, stop_server

_MORE = re.compile(rb"\.\.\. and (\d+) more like this")
MAX_PROBES = 20000  # per probe run, whatever the duration


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def start_server(msi: list[str], env: dict, max_files: int | None = None) -> tuple[subprocess.Popen, str, list[int]]:
    """`msi serve` with its stderr drained by a thread that counts lines (a full pipe would
    block the server and measure the pipe, not the server); `max_files` caps its open files."""

    def limit() -> None:
        if max_files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    proc = subprocess.Popen([*msi, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limit)
    lines = [0, 0]  # lines written, requests they tell of (a summary line tells of many)

    def drain() -> None:
        for line in proc.stderr:
            lines[0] += 1
            more = _MORE.search(line)
            lines[1] += int(more[1]) if more else 1

    threading.Thread(target=drain, daemon=True).start()
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(30)
    if not line or not line[0].startswith(b"http://"):
        proc.kill()
        raise SystemExit("msi serve did not print its address")
    return proc, line[0].decode().strip(), lines


# ---- the attacker --------------------------------------------------------------------------------


def _connect(addr: tuple[str, int]) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    err = sock.connect_ex(addr)
    if err not in (0, errno.EINPROGRESS):
        sock.close()
        return None
    return sock


def _attack(kind: str, addr: tuple[str, int], count: int, payload: bytes, ready, stop, out) -> None:
    """Hold `count` connections until `stop` is set. idle: open, send nothing (odd ones send half
    a request line), never read. flood: write `payload` (pipelined requests) whenever the socket
    takes it, never read. A connection the server closes is reopened."""
    raise_fd_limit(count + 256)
    sel = selectors.DefaultSelector()
    opened = dropped = 0

    def open_one(n: int) -> None:
        nonlocal opened
        sock = _connect(addr)
        if sock is None:
            return
        opened += 1
        if kind == "idle":
            sel.register(sock, selectors.EVENT_WRITE, (n, "connect"))
        else:
            sel.register(sock, selectors.EVENT_WRITE, (n, "flood"))

    for n in range(count):
        open_one(n)
    connected = 0
    signalled = False
    while not stop.is_set():
        for key, _events in sel.select(0.05):
            sock, (n, state) = key.fileobj, key.data
            try:
                if state == "connect":  # the connection is up: maybe half a request, then wait
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise ConnectionResetError
                    if n % 2:
                        sock.send(b"GET /metadata/identity/oauth2/tok")
                    sel.modify(sock, selectors.EVENT_READ, (n, "idle"))
                    connected += 1
                elif state == "idle":  # readable: the server answered or closed; reopen
                    sock.recv(65536)
                    raise ConnectionResetError
                else:  # flood: write as much as the socket takes, never read
                    sock.send(payload)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                sel.unregister(sock)
                sock.close()
                dropped += 1
                open_one(n)
        if not signalled and (kind == "flood" or connected >= count):
            ready.set()
            signalled = True
    out.put({"opened": opened, "dropped": dropped})
    for key in list(sel.get_map().values()):
        key.fileobj.close()


class Attack:
    def __init__(self, kind: str, addr: tuple[str, int], count: int, payload: bytes = b"") -> None:
        ctx = multiprocessing.get_context("fork")
        self.ready, self.stop, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_attack, args=(kind, addr, count, payload, self.ready, self.stop, self.out),
                                daemon=True)

    def __enter__(self) -> Attack:
        self.proc.start()
        if not self.ready.wait(60):
            self.proc.kill()
            raise SystemExit("the attacker did not get its connections up")
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        try:
            self.result = self.out.get(timeout=30)
        except Exception:  # a benchmark reports what it has
            self.result = {}
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# ---- the well-behaved client ---------------------------------------------------------------------


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """One request, its whole answer (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed by the server")
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15:].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(data) >= end + 4 + length:
                return data


def probe(addr: tuple[str, int], request: bytes, seconds: float, fresh: bool) -> dict:
    latencies: list[float] = []
    errors = 0
    sock = None
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline and len(latencies) + errors < MAX_PROBES:
        t0 = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection(addr, timeout=10)
            answer = _exchange(sock, request)
            latencies.append(time.perf_counter() - t0)
            if not answer.startswith(b"HTTP/1.1 200 ") or b"access_token" not in answer:
                errors += 1
        except OSError:
            errors += 1
            latencies.append(time.perf_counter() - t0)
            if sock is not None:
                sock.close()
            sock = None
            continue
        if fresh:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    wall = time.perf_counter() - started
    flat = sorted(latencies) or [float("nan")]
    return {"requests": len(latencies), "rate": len(latencies) / wall, "p50": statistics.median(flat) * 1000,
            "p99": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000, "max": flat[-1] * 1000,
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each probe run")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections held in case (a)")
    parser.add_argument("--floods", type=int, default=40, help="pipelining connections in case (b)")
    parser.add_argument("--server-files", type=int, default=None,
                        help="the server's open-file limit (say 1024: fewer connections than idle sockets)")
    args = parser.parse_args()
    precompile()
    raise_fd_limit(4096)
    msi = msi_command()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp) / "state" / "state.toml")
        run_msi(msi, env, "create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none")
        proc, url, log_lines = start_server(msi, env, args.server_files)
        try:
            target, version = imds_target(json.loads(run_msi(msi, env, "env", "vm1", "-o", "json")))
            addr = (target.host, target.port)
            valid = (f"GET {target.path}?api-version={version}&resource={VAULT} HTTP/1.1\r\n"
                     f"Host: {target.host}\r\nMetadata: true\r\n\r\n").encode()
            refused = (f"GET {target.path}?api-version={version}&resource={VAULT} HTTP/1.1\r\n"
                       f"Host: {target.host}\r\n\r\n").encode()  # no Metadata header: a 400, logged
            probe(addr, valid, 0.5, False)  # mint once, warm up

            def measure(label: str, attack: tuple | None) -> None:
                for fresh in (False, True):
                    before, told = log_lines
                    extra = ""
                    if attack is None:
                        r = probe(addr, valid, args.seconds, fresh)
                    else:
                        with Attack(*attack) as running:
                            r = probe(addr, valid, args.seconds, fresh)
                        res = running.result
                        extra = f"{res.get('dropped', 0)} reconnects"
                        if attack[0] == "flood":
                            extra = f"{log_lines[1] - told} refused, " + extra
                    rows.append((label, "new per request" if fresh else "persistent", r["requests"],
                                 f"{r['rate']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}", f"{r['max']:.1f}",
                                 r["errors"], log_lines[0] - before, extra))

            measure("unloaded", None)
            measure(f"{args.idle} idle sockets", ("idle", addr, args.idle))
            measure(f"{args.floods} pipelining floods", ("flood", addr, args.floods, refused * 500))
        finally:
            stop_server(proc)
    files = f"; server open-file limit {args.server_files}" if args.server_files else ""
    print(f"msi serve at {url}; {os.cpu_count()} CPUs; one well-behaved client (valid IMDS cache hits) "
          f"against an attacker process; {args.seconds:g} s per row{files}")
    print(table(rows, ("case", "probe connection", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors",
                       "server log lines", "attacker")))


if __name__ == "__main__":
    main()
