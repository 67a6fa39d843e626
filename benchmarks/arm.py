"""msi's ARM endpoint under load: p50/p99 latency and requests/s of a GET and a PUT of a
user-assigned identity over HTTPS against a real `msi serve`, each request authenticated (token
signature) and authorized (role assignments) as in Azure; and the PUT against `msi
create-identity`, which does the same change from the command line (target: the PUT is no
slower).

Usage: python benchmarks/arm.py [--gets 500] [--puts 100] [--clients 4] [--cli 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
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


def run_msi(msi: list[str], env: dict, *args: str) -> str:
    proc = subprocess.run([*msi, *args], env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"msi {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def start_server(msi: list[str], env: dict) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen([*msi, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend([proc.stdout.readline().strip(), proc.stdout.readline().strip()]),
                              daemon=True)
    reader.start()
    reader.join(30)
    if len(lines) < 2 or not lines[1].startswith("https://"):
        proc.kill()
        raise SystemExit("msi serve did not print its addresses")
    return proc, lines[0], lines[1]


def token(env_vars: dict) -> str:
    parts = urlsplit(env_vars["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"{parts.path}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
                 headers={"Metadata": "true"})
    return json.loads(conn.getresponse().read())["access_token"]


def worker(https: str, context, requests: list[tuple[str, str, bytes | None]], auth: str, out: list[float], errors: list[int]) -> None:
    parts = urlsplit(https)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=30, context=context)
    for method, path, body in requests:
        start = time.perf_counter()
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - start)
        if resp.status >= 300:
            errors.append(resp.status)
    conn.close()


def load(https: str, context, requests: list, auth: str, clients: int) -> tuple[list[float], float, list[int]]:
    latencies: list[float] = []
    errors: list[int] = []
    shares = [requests[n::clients] for n in range(clients)]
    threads = [threading.Thread(target=worker, args=(https, context, share, auth, latencies, errors)) for share in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gets", type=int, default=500)
    parser.add_argument("--puts", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--cli", type=int, default=10, help="msi create-identity runs to compare the PUT with")
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp) / "state.toml")
        run_msi(msi, env, "create-resource", "runner", "--type", "vm", "-g", "ci", "--system-assigned", "-o", "none")
        sub = run_msi(msi, env, "list", "subscriptions", "--query", "[0].id", "-o", "tsv").strip()
        run_msi(msi, env, "grant", "runner", "--role", "Owner", "--scope", f"/subscriptions/{sub}", "-o", "none")
        run_msi(msi, env, "create-identity", "target", "-g", "ci", "-o", "none")
        cli = []
        for n in range(args.cli):
            start = time.perf_counter()
            run_msi(msi, env, "create-identity", f"cli{n}", "-g", "ci", "-o", "none")
            cli.append(time.perf_counter() - start)
        proc, _, https = start_server(msi, env)
        try:
            env_vars = json.loads(run_msi(msi, env, "env", "runner", "-o", "json"))
            context = ssl.create_default_context(cafile=env_vars["REQUESTS_CA_BUNDLE"])
            auth = f"Bearer {token(env_vars)}"
            base = f"/subscriptions/{sub}/resourceGroups/ci/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
            gets = [("GET", f"{base}/target?api-version=2024-11-30", None)] * args.gets
            body = json.dumps({"location": "eastus"}).encode()
            puts = [("PUT", f"{base}/arm{n}?api-version=2024-11-30", body) for n in range(args.puts)]
            load(https, context, gets[:20], auth, 1)  # warm-up: imports, key loading
            rows = []
            for label, reqs, clients in (("GET identity, 1 client", gets, 1), (f"GET identity, {args.clients} clients", gets, args.clients),
                                         ("PUT identity (create), 1 client", puts, 1)):
                lat, elapsed, errors = load(https, context, reqs, auth, clients)
                if errors:
                    raise SystemExit(f"{label}: {len(errors)} failed requests, e.g. HTTP {errors[0]}")
                rows.append((label, len(lat), f"{pct(lat, 0.5):.1f}", f"{pct(lat, 0.99):.1f}", f"{len(lat) / elapsed:.0f}"))
            rows.append((f"msi create-identity (whole process), {args.cli} runs", args.cli,
                         f"{statistics.median(cli) * 1000:.1f}", f"{max(cli) * 1000:.1f}", f"{args.cli / sum(cli):.0f}"))
            print(table(rows, ("operation", "requests", "p50 ms", "p99 ms", "req/s")))
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
