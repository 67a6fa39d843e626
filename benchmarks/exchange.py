"""Entra's token exchange on `msi serve` under load, on loopback: a Kubernetes workload trading its
service-account token for a managed-identity token (`POST {https}/{tenant}/oauth2/v2.0/token`,
client_credentials with a jwt-bearer client assertion), 8 client processes each on its own
persistent HTTPS connection, for N seconds: exchanges per second, p50/p99 latency, and CPU time
per exchange of the server (from /proc) and of the clients (getrusage). The same run measures, for
scale, IMDS cache hits over plain HTTP (benchmarks/endpoint.py's case) and full TLS handshakes per
second (a new connection per request, benchmarks/tls.py's case). Target (issue 11): at least 1,000 exchanges/s with p99 under
20 ms for 8 clients on 2 cores.

The set-up is what a pod on AKS has: an identity `deploy-id` that trusts msi's `kubernetes` issuer
for system:serviceaccount:payments:api, and the assertion `msi env --kubernetes` keeps fresh in
AZURE_FEDERATED_TOKEN_FILE (read once: clients reuse it, as azure-identity does between reads).
Clients trust msi's CA only (NODE_EXTRA_CA_CERTS). Every answer is checked (200 and an
access_token), and one token is verified with `msi verify` before the load starts.

`msi serve` runs as a user starts it: its HTTPS port answered by one process per CPU (at most 4:
`--https-workers`); the count is printed, and the server's CPU time is that of all of them.
`--https-workers N` here passes N on (1: a single process, for comparison).

Usage: python benchmarks/exchange.py [--clients 8] [--seconds 3] [--runs 1] [--threads] [--https-workers N]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import endpoint
import tls
from _timing import environment, msi_command, precompile, table
from endpoint import cpu_seconds, run_msi, stop_server

VAULT = "https://vault.azure.net"
SUBJECT = "system:serviceaccount:payments:api"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"


def exchanges(url: str, path: str, ca: str, deadline: float, latencies: list[float], errors: list[str], *, body: bytes) -> None:
    """One persistent HTTPS connection: POST the token request again and again until the deadline."""
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=tls._context(ca), timeout=30)
    headers = {"Content-Type": FORM}
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            latencies.append(time.perf_counter() - started)
            if resp.status != 200 or b'"access_token"' not in answer:
                errors.append(f"{resp.status} {answer[:120].decode('latin-1')}")
    finally:
        conn.close()


def one_exchange(https_url: str, path: str, ca: str, body: bytes) -> str:
    """A single exchange, checked: the access token, or SystemExit with Entra's answer."""
    parts = urlsplit(https_url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=tls._context(ca), timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": FORM})
        resp = conn.getresponse()
        answer = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise SystemExit(f"token exchange refused ({resp.status}): {answer.decode('utf-8', 'replace')}")
    return json.loads(answer)["access_token"]


def set_up(msi: list[str], env: dict) -> None:
    run_msi(msi, env, "create-identity", "deploy-id", "-o", "none")
    run_msi(msi, env, "create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none")


def trust(msi: list[str], env: dict) -> dict:
    """With msi serve running: the pod's variables, and the identity's federated credential."""
    variables = json.loads(run_msi(msi, env, "env", "deploy-id", "--kubernetes", "payments/api", "-o", "json"))
    issuer = run_msi(msi, env, "issuer", "show", "kubernetes", "--query", "issuer", "-o", "tsv").strip()
    run_msi(msi, env, "federation", "add", "deploy-id", "--name", "api", "--issuer", issuer, "--subject", SUBJECT, "-o", "none")
    return variables


def row(label: str, conn: str, r: dict, cpu_us: tuple[float, float]) -> tuple:
    return (label, conn, r["n"], f"{r['rate']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}", f"{cpu_us[0]:.0f}",
            f"{cpu_us[1]:.0f}", r["errors"])


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the client processes, once joined)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def workers(pid: int) -> list[int]:
    """The child processes of `msi serve` (its HTTPS workers), from /proc."""
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def server_cpu(pid: int) -> float:
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in workers(pid))


def measure(proc: subprocess.Popen, fn) -> tuple[dict, tuple[float, float]]:
    """Run `fn()` (a load returning a dict with "n"); also the CPU microseconds per operation of the
    server (all its processes) and of the clients: on 2 shared cores both come out of the same budget."""
    cpu, own = server_cpu(proc.pid), _own_cpu()
    r = fn()
    n = max(1, r["n"])
    return r, ((server_cpu(proc.pid) - cpu) / n * 1e6, (_own_cpu() - own) / n * 1e6)


def one_run(msi: list[str], args) -> tuple[list[tuple], str, str, int]:
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp) / "state" / "state.toml")
        if args.https_workers is not None:
            env["MSI_SERVE_HTTPS_WORKERS"] = str(args.https_workers)
        set_up(msi, env)
        proc, _http_url, https_url = tls.start_server(msi, env)
        try:
            processes = 1 + len(workers(proc.pid))
            pod = trust(msi, env)
            ca, tenant = pod["NODE_EXTRA_CA_CERTS"], pod["AZURE_TENANT_ID"]
            assertion = Path(pod["AZURE_FEDERATED_TOKEN_FILE"]).read_text().strip()
            body = urlencode({"grant_type": "client_credentials", "client_id": pod["AZURE_CLIENT_ID"],
                              "scope": f"{VAULT}/.default", "client_assertion_type": ASSERTION_TYPE,
                              "client_assertion": assertion}).encode()
            token_path = f"/{tenant}/oauth2/v2.0/token"
            verified = json.loads(run_msi(msi, env, "verify", one_exchange(https_url, token_path, ca, body),
                                          "--audience", VAULT, "-o", "json"))
            if not verified.get("valid"):
                raise SystemExit(f"the exchanged token does not verify: {verified}")
            keys_path = f"/{tenant}/discovery/v2.0/keys"
            vm = json.loads(run_msi(msi, env, "env", "vm1", "-o", "json"))
            imds, version = endpoint.imds_target(vm)
            fn = functools.partial(exchanges, body=body)

            tls.load(fn, https_url, token_path, ca, 1, 0.3, True)  # warm up: key loaded, caches filled
            tls.load(tls.keepalive, https_url, keys_path, ca, 1, 0.2, True)
            endpoint.load(imds, version, 1, None, lambda n: [VAULT] * 50, True)  # the IMDS token is minted

            r, cpu = measure(proc, lambda: tls.load(fn, https_url, token_path, ca, args.clients, args.seconds, args.threads))
            rows.append(row("token exchange (POST oauth2/v2.0/token)", "persistent HTTPS", r, cpu))
            r, cpu = measure(proc, lambda: _renamed(endpoint.load(imds, version, args.clients, args.seconds,
                                                                  lambda n: endpoint.repeat(VAULT), args.threads)))
            rows.append(row("IMDS cache hit (GET, for scale)", "persistent HTTP", r, cpu))
            r, cpu = measure(proc, lambda: tls.load(tls.handshakes, https_url, keys_path, ca, args.clients, args.seconds, args.threads))
            rows.append(row("TLS handshake + GET keys + close", "new HTTPS each", r, cpu))
        finally:
            stop_server(proc)
    return rows, https_url, token_path, processes


def _renamed(r: dict) -> dict:
    """endpoint.load counts "requests"; tls.load counts "n"."""
    return {**r, "n": r["requests"]}


def medians(runs: list[list[tuple]]) -> list[tuple]:
    """Per case, the median of each figure over the runs (operations summed)."""
    out = []
    for cases in zip(*runs):
        label, conn = cases[0][0], cases[0][1]
        ops = sum(c[2] for c in cases)
        figures = [statistics.median(float(c[n]) for c in cases) for n in (3, 4, 5, 6, 7)]
        out.append((label, conn, ops, f"{figures[0]:.0f}", f"{figures[1]:.2f}", f"{figures[2]:.2f}", f"{figures[3]:.0f}",
                    f"{figures[4]:.0f}", sum(c[8] for c in cases)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measured case")
    parser.add_argument("--runs", type=int, default=1, help="fresh state and server per run; medians are printed")
    parser.add_argument("--threads", action="store_true", help="clients as threads of one process")
    parser.add_argument("--https-workers", type=int, help="msi serve's --https-workers (default: msi's own default)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 60 or not 1 <= args.runs <= 20:
        parser.error("bounds: 1-64 clients, 0-60 seconds, 1-20 runs")
    precompile()
    msi = msi_command()
    headers = ("case", "connection", "operations", "ops/s", "p50 ms", "p99 ms", "server CPU us/op", "client CPU us/op", "errors")
    load_before = os.getloadavg()[0]
    runs = []
    for n in range(args.runs):
        rows, https_url, token_path, processes = one_run(msi, args)
        runs.append(rows)
        if args.runs > 1:
            print(f"run {n + 1}:")
            print(table(rows, headers), flush=True)
    mode = "threads of one process" if args.threads else "processes"
    print(f"msi serve HTTPS at {https_url}{token_path}; {os.cpu_count()} CPUs; {args.clients} clients ({mode}); "
          f"{args.seconds:g} s per case; TLS {ssl.OPENSSL_VERSION}; HTTPS answered by {processes} msi serve process(es)")
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: other work on the same CPUs shows in every figure")
    if args.runs > 1:
        print(f"medians of {args.runs} runs (operations and errors summed):")
    print(table(medians(runs) if args.runs > 1 else runs[0], headers))


if __name__ == "__main__":
    main()
