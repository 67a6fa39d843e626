"""The HTTPS listener of `msi serve` under load, on loopback: full TLS handshakes per second (each
client opens a new connection, completes the handshake with no session resumption, asks for one
document and closes), and requests per second over persistent TLS connections, with p50/p99
latency and the server's CPU time per operation. Clients trust only msi's CA (as `msi env`
arranges) and are processes of their own unless `--threads`.

Usage: python benchmarks/tls.py [--clients 8] [--seconds 3] [--threads]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import environment, msi_command, precompile, table
from endpoint import cpu_seconds, run_msi, stop_server


def start_server(msi: list[str], env: dict) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen([*msi, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend([proc.stdout.readline(), proc.stdout.readline()]), daemon=True)
    reader.start()
    reader.join(30)
    if len(lines) < 2 or not lines[1].startswith("https://"):
        proc.kill()
        raise SystemExit("msi serve did not print its addresses")
    return proc, lines[0].strip(), lines[1].strip()


def _context(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def handshakes(url: str, path: str, ca: str, deadline: float, latencies: list[float], errors: list[str]) -> None:
    """New connection, full handshake, one GET, close; again until the deadline."""
    parts = urlsplit(url)
    ctx = _context(ca)
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nConnection: close\r\n\r\n".encode()
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=30) as raw:
                with ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                    tls.sendall(request)
                    data = b""
                    while chunk := tls.recv(65536):
                        data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                errors.append(data[:40].decode("latin-1"))
        except OSError as exc:
            errors.append(type(exc).__name__)
        latencies.append(time.perf_counter() - started)


def keepalive(url: str, path: str, ca: str, deadline: float, latencies: list[float], errors: list[str]) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=_context(ca), timeout=30)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - started)
            if resp.status != 200:
                errors.append(str(resp.status))
    finally:
        conn.close()


def _process(fn, args, out) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    fn(*args, latencies, errors)
    out.put((latencies, errors))


def load(fn, url: str, path: str, ca: str, clients: int, seconds: float, threads: bool) -> dict:
    started = time.perf_counter()
    deadline = started + seconds
    per: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    if threads:
        workers = [threading.Thread(target=fn, args=(url, path, ca, deadline, per[n], errors)) for n in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        workers = [ctx.Process(target=_process, args=(fn, (url, path, ca, deadline), out)) for _ in range(clients)]
        for w in workers:
            w.start()
        for n in range(clients):
            lat, err = out.get(timeout=300)
            per[n], errors = lat, errors + err
        for w in workers:
            w.join(30)
    wall = time.perf_counter() - started
    flat = sorted(x for lat in per for x in lat)
    return {"n": len(flat), "rate": len(flat) / wall, "p50": statistics.median(flat) * 1000,
            "p99": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000, "errors": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", action="store_true", help="clients as threads of one process")
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp) / "state" / "state.toml")
        run_msi(msi, env, "create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none")
        tenant = json.loads(run_msi(msi, env, "list", "tenants", "-o", "json"))[0]["tenantId"]
        proc, http_url, https_url = start_server(msi, env)
        try:
            ca = json.loads(run_msi(msi, env, "env", "vm1", "-o", "json"))["NODE_EXTRA_CA_CERTS"]
            path = f"/{tenant}/discovery/v2.0/keys"
            load(keepalive, https_url, path, ca, 1, 0.2, True)  # the tenant's key is made, caches warm
            for label, fn in (("new connection: TLS handshake + GET + close", handshakes),
                              ("persistent TLS connection: GET", keepalive)):
                cpu = cpu_seconds(proc.pid)
                r = load(fn, https_url, path, ca, args.clients, args.seconds, args.threads)
                per_op = (cpu_seconds(proc.pid) - cpu) / max(1, r["n"]) * 1e6
                rows.append((label, args.clients, r["n"], f"{r['rate']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
                             f"{per_op:.0f}", r["errors"]))
        finally:
            stop_server(proc)
    mode = "threads of one process" if args.threads else "processes"
    print(f"msi serve HTTPS at {https_url} (JWKS, {len(path)}-char path); {os.cpu_count()} CPUs; "
          f"{args.clients} clients ({mode}); TLS {ssl.OPENSSL_VERSION}")
    print(table(rows, ("case", "clients", "operations", "ops/s", "p50 ms", "p99 ms", "server CPU us/op", "errors")))


if __name__ == "__main__":
    main()
