"""`msi serve --https-workers N`: the HTTPS port answered by N processes sharing one listening
socket. Each process is told apart by which one holds the server side of a connection (/proc)."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from conftest import msi_executable
from msi_cli.core import exchange
from msi_cli.store.statefile import StateFile
from test_federation import AUD, SUBJECT
from test_tls import Served

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="tells the processes apart through /proc")

VAULT = "https://vault.azure.net"


def children(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def owner(conn: http.client.HTTPSConnection, pids: list[int]) -> int:
    """The process holding the server side of `conn` (an IPv4 loopback connection)."""
    assert conn.sock is not None
    client_port, server_port = conn.sock.getsockname()[1], conn.sock.getpeername()[1]
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == server_port and int(fields[2].split(":")[1], 16) == client_port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no process of {pids} holds the connection from port {client_port}")


def gone(pid: int, timeout: float = 10) -> bool:
    """Wait (without sleeping) until process `pid` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


class Pool:
    def __init__(self, served: Served) -> None:
        self.s = served
        self.ident = served.json("create-identity", "ci-id")
        issuer = served.json("issuer", "create", "gh", "--kind", "github")["issuer"]
        added = served.msi("federation", "add", "ci-id", "--name", "ci-main", "--issuer", issuer, "--subject", SUBJECT, "-o", "none")
        assert added.returncode == 0, added.stderr
        self.assertion = served.msi("oidc-token", "gh", "--subject", SUBJECT, "--audience", AUD).stdout.strip()
        self.tenant = self.ident["tenantId"]
        parts = urlsplit(served.https_url)
        self.address = (parts.hostname, parts.port)
        self.exchanged = 0

    @property
    def pids(self) -> list[int]:
        assert self.s.proc is not None
        return [self.s.proc.pid, *children(self.s.proc.pid)]

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(*self.address, context=self.s.context(), timeout=10)

    def exchange(self, conn: http.client.HTTPSConnection) -> tuple[int, dict]:
        form = {"grant_type": "client_credentials", "client_id": self.ident["clientId"], "scope": f"{VAULT}/.default",
                "client_assertion_type": exchange.ASSERTION_TYPE, "client_assertion": self.assertion}
        conn.request("POST", f"/{self.tenant}/oauth2/v2.0/token", body=urlencode(form).encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        self.exchanged += resp.status == 200
        return resp.status, answer

    def discovery(self, conn: http.client.HTTPSConnection) -> tuple[int, dict]:
        conn.request("GET", f"/{self.tenant}/v2.0/.well-known/openid-configuration")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    def one_per_process(self) -> dict[int, http.client.HTTPSConnection]:
        """Open connections (each answering an exchange and discovery) until every process holds one."""
        pids = self.pids
        held: dict[int, http.client.HTTPSConnection] = {}
        for _ in range(200):
            conn = self.connect()
            status, body = self.exchange(conn)
            assert status == 200 and body["access_token"], body
            status, doc = self.discovery(conn)
            assert status == 200 and doc["token_endpoint"].startswith(self.s.https_url), doc
            pid = owner(conn, pids)
            if pid in held:
                conn.close()
            else:
                held[pid] = conn
            if len(held) == len(pids):
                return held
        raise AssertionError(f"200 connections reached only processes {sorted(held)} of {pids}")


@pytest.fixture
def pool(tmp_path):
    served = Served(tmp_path)
    served.start("--https-workers", "2")
    try:
        yield Pool(served)
    finally:
        served.stop()


def test_every_process_answers_exchanges_and_discovery(pool):
    assert len(pool.pids) == 2
    assert f"HTTPS answered by 2 processes (this one and workers {pool.pids[1]})" in pool.s.log()
    held = pool.one_per_process()
    for conn in held.values():  # again, on the same persistent connection
        status, body = pool.exchange(conn)
        assert status == 200, body
        verdict = pool.s.json("verify", body["access_token"], "--audience", VAULT)
        assert verdict["valid"] and verdict["claims"]["appid"] == pool.ident["clientId"]
        conn.close()
    logged = [e for e in StateFile(pool.s.state).log_entries() if e["detail"].startswith("federated credential exchange")]
    assert len(logged) == pool.exchanged  # every process appends to the activity log


def test_a_cli_change_is_seen_by_every_process_on_the_next_request(pool):
    held = pool.one_per_process()
    removed = pool.s.msi("federation", "remove", "ci-id", "ci-main", "--yes")
    assert removed.returncode == 0, removed.stderr
    for pid, conn in held.items():
        status, body = pool.exchange(conn)
        # no credential trusts the issuer any more: Entra's AADSTS700211
        assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [700211]), (pid, body)
        conn.close()


def test_ctrl_c_stops_the_workers_with_exit_130(pool):
    workers = pool.pids[1:]
    assert workers and all(Path(f"/proc/{pid}").exists() for pid in workers)
    proc = pool.s.proc
    assert proc is not None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 130
    assert all(gone(pid) for pid in workers)
    log = pool.s.log()
    assert "Traceback" not in log and "msi serve: stopped" in log and "exited" not in log  # stopped, not lost


def test_a_killed_worker_does_not_take_the_server_down(pool):
    worker = pool.pids[1]
    os.kill(worker, signal.SIGKILL)
    assert gone(worker)
    for _ in range(8):  # new connections: the parent accepts them all now
        conn = pool.connect()
        assert pool.exchange(conn)[0] == 200
        assert pool.discovery(conn)[0] == 200
        conn.close()
    proc = pool.s.proc
    assert proc is not None and proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 130
    log = pool.s.log()
    assert f"HTTPS worker {worker} exited (signal 9); the other processes still answer HTTPS" in log
    assert "Traceback" not in log


def test_workers_exit_by_themselves_when_the_parent_dies(pool):
    workers = pool.pids[1:]
    proc = pool.s.proc
    assert proc is not None
    proc.kill()
    proc.wait(10)
    assert all(gone(pid) for pid in workers)


def test_one_process_when_asked(tmp_path):
    served = Served(tmp_path)
    served.start("--https-workers", "1")
    try:
        assert served.proc is not None and children(served.proc.pid) == []
        assert "HTTPS answered by" not in served.log()
    finally:
        served.stop()


def test_the_worker_count_is_checked(tmp_path):
    served = Served(tmp_path)
    proc = subprocess.run([*msi_executable(), "serve", "--https-workers", "0"], env=served.env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "--https-workers" in proc.stderr and "Traceback" not in proc.stderr
