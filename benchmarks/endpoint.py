"""The local token endpoint under load: requests per second and p50/p99 latency for cache hits
and for fresh tokens, with 8 concurrent clients on loopback, each on its own persistent
connection, against a real `msi serve` process. Target: at least 1,000 cache-hit tokens/s and
p99 under 20 ms.

Each client is its own process (as applications are), so that one client's GIL does not show up
as another's latency; `--threads` runs them as threads of one process instead. The server's CPU
time per request is read from /proc.

Usage: python benchmarks/endpoint.py [--clients 8] [--seconds 3] [--fresh 200] [--threads]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
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

VAULT = "https://vault.azure.net"


def run_msi(msi: list[str], env: dict, *args: str) -> str:
    proc = subprocess.run([*msi, *args], env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"msi {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a served `msi serve` as Ctrl-C would, killing it if it has not gone in 10 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_server(msi: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*msi, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(30)
    if not line or not line[0].startswith("http://"):
        proc.kill()
        raise SystemExit("msi serve did not print its address")
    return proc, line[0].strip()


class Target:
    """One endpoint to hammer: path template and headers."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.headers = headers


def imds_target(env_vars: dict) -> tuple[Target, str]:
    host = env_vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    return Target(host + "/metadata/identity/oauth2/token", {"Metadata": "true"}), "2018-02-01"


def appservice_target(env_vars: dict) -> tuple[Target, str]:
    return Target(env_vars["IDENTITY_ENDPOINT"], {"X-IDENTITY-HEADER": env_vars["IDENTITY_HEADER"]}), "2019-08-01"


def client(target: Target, version: str, audiences, latencies: list[float], errors: list[int], deadline: float | None) -> None:
    conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
    try:
        for audience in audiences:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            url = f"{target.path}?api-version={version}&resource={audience}"
            started = time.perf_counter()
            conn.request("GET", url, headers=target.headers)
            resp = conn.getresponse()
            body = resp.read()
            latencies.append(time.perf_counter() - started)
            if resp.status != 200 or b"access_token" not in body:
                errors.append(resp.status)
    finally:
        conn.close()


def repeat(value: str):
    while True:
        yield value


def _client_process(target: Target, version: str, audiences, deadline: float | None, out) -> None:
    latencies: list[float] = []
    errors: list[int] = []
    client(target, version, audiences, latencies, errors, deadline)
    out.put((latencies, errors))


def load(target: Target, version: str, clients: int, seconds: float | None, audiences_per_client, threads: bool) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds if seconds else None
    if threads or clients == 1:
        workers = [
            threading.Thread(target=client, args=(target, version, audiences_per_client(n), latencies[n], errors, deadline))
            for n in range(clients)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        workers = [ctx.Process(target=_client_process, args=(target, version, audiences_per_client(n), deadline, out))
                   for n in range(clients)]
        for w in workers:
            w.start()
        for n in range(clients):
            lat, err = out.get(timeout=300)
            latencies[n], errors = lat, errors + err
        for w in workers:
            w.join(30)
    wall = time.perf_counter() - started
    flat = sorted(x for per in latencies for x in per)
    return {
        "requests": len(flat),
        "rate": len(flat) / wall,
        "p50": statistics.median(flat) * 1000,
        "p99": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000,
        "errors": len(errors),
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each cache-hit run")
    parser.add_argument("--fresh", type=int, default=200, help="fresh tokens to mint (spread over the clients)")
    parser.add_argument("--threads", action="store_true", help="clients as threads of one process")
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp) / "state" / "state.toml")
        run_msi(msi, env, "create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none")
        run_msi(msi, env, "create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
        proc, url = start_server(msi, env)
        try:
            vm_env = json.loads(run_msi(msi, env, "env", "vm1", "-o", "json"))
            web_env = json.loads(run_msi(msi, env, "env", "web1", "-o", "json"))

            def measure(label, target, version, seconds, audiences) -> None:
                cpu = cpu_seconds(proc.pid)
                r = load(target, version, args.clients, seconds, audiences, args.threads)
                per_request = (cpu_seconds(proc.pid) - cpu) / max(1, r["requests"]) * 1e6
                rows.append((label, args.clients, r["requests"], f"{r['rate']:.0f}", f"{r['p50']:.2f}",
                             f"{r['p99']:.2f}", f"{per_request:.0f}", r["errors"]))

            for label, (target, version) in (("IMDS cache hit", imds_target(vm_env)),
                                             ("App Service cache hit", appservice_target(web_env))):
                load(target, version, 1, None, lambda n: [VAULT] * 50, True)  # mint once, warm up
                measure(label, target, version, args.seconds, lambda n: repeat(VAULT))
            target, version = imds_target(vm_env)
            per = max(1, args.fresh // args.clients)
            measure("IMDS fresh token (mint)", target, version, None,
                    lambda n: [f"https://bench{n}x{i}.vault.azure.net" for i in range(per)])
        finally:
            stop_server(proc)
    mode = "threads of one process" if args.threads else "processes"
    print(f"msi serve at {url}; {os.cpu_count()} CPUs; {args.clients} clients ({mode}), one persistent connection each")
    print(table(rows, ("case", "clients", "requests", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "errors")))


if __name__ == "__main__":
    main()
