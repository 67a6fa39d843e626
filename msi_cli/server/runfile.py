"""`<state>.d/server.json`: where a running `msi serve` records its addresses (plain HTTP in
`url`, HTTPS in `httpsUrl`), so that `msi env` finds them. Owner-only (0600, written atomically), removed when the server stops.

App Service hosts hand each app its own IDENTITY_HEADER secret. The server keeps one random key
per run and derives each resource's secret from it (HMAC-SHA256 of the resource id), so a resource
created while the server runs has a secret at once, and every restart rotates all of them, as a
restart of an App Service host does.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from msi_cli.store import files

FORMAT = 1


@dataclass(frozen=True)
class RunRecord:
    url: str  # base URL clients use, e.g. http://127.0.0.1:50123
    host: str  # the address the server is bound to
    port: int
    pid: int
    started: str
    key: str  # hex; the per-run key the identity header secrets derive from
    https_url: str = ""  # base URL of the HTTPS listener (Entra's endpoints), e.g. https://127.0.0.1:50124

    def identity_header(self, resource_id: str) -> str:
        return identity_header(bytes.fromhex(self.key), resource_id)


def new_key() -> bytes:
    return secrets.token_bytes(32)


def identity_header(key: bytes, resource_id: str) -> str:
    """The secret a resource's App Service host expects in X-IDENTITY-HEADER (and `secret`)."""
    return hmac.new(key, resource_id.lower().encode("utf-8"), hashlib.sha256).hexdigest()


def write(path: Path, record: RunRecord) -> None:
    data = {
        "format": FORMAT,
        "url": record.url,
        "host": record.host,
        "port": record.port,
        "pid": record.pid,
        "started": record.started,
        "identityHeaderKey": record.key,
    }
    if record.https_url:
        data["httpsUrl"] = record.https_url
    files.private_dir(path.parent)
    files.write_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def read(path: Path) -> RunRecord | None:
    """The record, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_bytes())
        return RunRecord(str(data["url"]), str(data["host"]), int(data["port"]), int(data["pid"]),
                         str(data["started"]), str(data["identityHeaderKey"]), str(data.get("httpsUrl", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove(path: Path, pid: int) -> None:
    """Remove the record if it is still this process's."""
    record = read(path)
    if record is None or record.pid == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _answers(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def running(path: Path) -> RunRecord | None:
    """The record of a server that is still running for this state (its process is alive and
    its port accepts connections); None when there is none or the record is stale."""
    record = read(path)
    if record is None or not _pid_alive(record.pid) or not _answers(record.url):
        return None
    return record


def client_url(host: str, port: int, scheme: str = "http") -> str:
    """The base URL clients use: a wildcard bind is reached through loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
