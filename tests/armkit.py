"""Shared set-up for the ARM tests: a state with callers, tokens minted by msi, and the router
called in-process the way `msi serve` calls it."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from msi_cli import tokenservice
from msi_cli.core import lifecycle, roles, tokens
from msi_cli.server.arm import router
from msi_cli.store.keyring import FileKeyRing
from msi_cli.store.statefile import StateFile

ARM = "https://management.core.windows.net/"
BASE = "https://127.0.0.1:4443"


class Access:
    """The router's view of a state file (what the server hands it)."""

    def __init__(self, sf: StateFile) -> None:
        self.sf = sf
        self.keys = FileKeyRing(sf.keys_dir)

    def snapshot(self):
        return self.sf.read()

    def transaction(self):
        return self.sf.transaction()

    def now(self):
        from msi_cli.core.timefmt import real_now

        return real_now()


@dataclass
class World:
    sf: StateFile
    sub: str
    tenant: str

    def state(self):
        return self.sf.read()

    def caller(self, name: str, role: str | None = None, scope: str | None = None, group: str = "ci") -> str:
        """A VM with a system-assigned identity, optionally granted `role` at `scope` (default:
        the subscription). Returns the VM's name."""
        with self.sf.transaction() as ctx:
            vm = lifecycle.create_resource(ctx, name, "vm", group, None, None, system_assigned=True)
            if role:
                roles.grant(ctx, vm.system_principal_id, role, scope or f"/subscriptions/{self.sub}")
        return name

    def principal(self, name: str) -> str:
        state = self.state()
        return next(r.system_principal_id for r in state.resources.values() if r.name == name)

    def token(self, name: str, audience: str = ARM) -> str:
        state = self.state()
        vm = next(r for r in state.resources.values() if r.name == name)
        return tokenservice.acquire(self.sf, vm, audience, tokens.Selector(), state)["access_token"]

    def call(self, method: str, path: str, body=None, token: str | None = None, as_: str | None = None,
             api: str = "2022-12-01", query: str | None = None, headers: dict | None = None) -> router.ArmResponse:
        hdrs = dict(headers or {})
        if as_ is not None:
            token = self.token(as_)
        if token is not None:
            hdrs["authorization"] = f"Bearer {token}"
        q = query if query is not None else f"api-version={api}"
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        return router.handle(method, path, q, hdrs, raw, Access(self.sf), BASE)

    def rg(self, name: str = "ci") -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{name}"


def make_world(state_path: Path) -> World:
    sf = StateFile(state_path)
    state = sf.read()
    sub = state.subscriptions[state.default_subscription_id]
    return World(sf, sub.id, sub.tenant_id)


def error_of(resp) -> tuple[int, str, str]:
    body = resp.json()
    return resp.status, body["error"]["code"], body["error"]["message"]


# ---- a real `msi serve` in a subprocess, for the SDK and az tests ------------------------------------

KEEP = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "HOME", "PYTHONDONTWRITEBYTECODE")


class Served:
    """`msi serve` on a state, its two addresses, and clean client environments from `msi env`."""

    def __init__(self, folder: Path) -> None:
        from conftest import msi_executable

        self.msi_cmd = msi_executable()
        self.folder = folder
        self.state = Path(os.environ["MSI_STATE"])
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "IMDS_"))}
        self.log_path = folder / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.url = self.https_url = ""

    def msi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.msi_cmd, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, f"msi {' '.join(args)}: {proc.stderr}"
        return proc

    def msi_json(self, *args: str):
        return json.loads(self.msi(*args, "-o", "json").stdout)

    def start(self) -> Served:
        self._log = open(self.log_path, "w")  # closed in stop()
        self.proc = subprocess.Popen([*self.msi_cmd, "serve"], env=self.env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        lines: list[str] = []

        def read() -> None:
            lines.append(self.proc.stdout.readline().strip())
            lines.append(self.proc.stdout.readline().strip())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(30)
        if len(lines) < 2 or not lines[1].startswith("https://"):
            self.stop()
            raise AssertionError(f"msi serve did not start: {self.log_path.read_text()}")
        self.url, self.https_url = lines
        return self

    def stop(self) -> None:
        from conftest import stop_process

        stop_process(self.proc)
        if self.proc is not None:
            self._log.close()

    def client_env(self, resource: str) -> dict:
        """A clean environment plus exactly what `msi env RESOURCE -o json` prints."""
        env = {k: v for k, v in os.environ.items() if k in KEEP}
        env.update(self.msi_json("env", resource))
        return env
