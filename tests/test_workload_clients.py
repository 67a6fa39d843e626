"""Workload identity federation with unmodified clients, as on AKS and GitHub Actions.

A real `msi serve` (HTTP and HTTPS) and a user-assigned identity that trusts msi's Kubernetes
issuer; each client runs in its own process with nothing but what `msi env --kubernetes` (or
`--github`) printed, trusts msi's CA only through the variables printed, and every token it gets
verifies with `msi verify`.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from conftest import msi_executable

VAULT = "https://vault.azure.net"
SUBJECT = "system:serviceaccount:payments:api"
KEEP = ("PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "NODE_PATH")
TIMEOUT = 120


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Cluster:
    """msi serve, an identity `deploy-id` and its federated credential for payments/api."""

    def __init__(self, msi_proc, home: Path) -> None:
        self.msi = msi_proc
        self.home = home
        self.identity = json.loads(ok(msi_proc("create-identity", "deploy-id", "-o", "json")))
        self.proc = subprocess.Popen([*msi_executable(), "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines: list[str] = []

        def read() -> None:
            lines.append(self.proc.stdout.readline())
            lines.append(self.proc.stdout.readline())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(30)
        assert len(lines) == 2 and lines[1].startswith("https://127.0.0.1:"), f"msi serve did not start: {lines}"
        self.http_url, self.https_url = lines[0].strip(), lines[1].strip()
        # first `msi env --kubernetes` makes the issuer; then the identity trusts it
        self.variables = self.env("--kubernetes", "payments/api")
        issuer = ok(msi_proc("issuer", "show", "kubernetes", "--query", "issuer", "-o", "tsv")).strip()
        assert issuer.startswith(self.https_url)
        ok(msi_proc("federation", "add", "deploy-id", "--name", "api", "--issuer", issuer, "--subject", SUBJECT, "-o", "none"))
        self.issuer = issuer

    def env(self, *args: str) -> dict[str, str]:
        return json.loads(ok(self.msi("env", "deploy-id", *args, "-o", "json")))

    def run(self, command: list[str], variables: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        import os

        env = {k: v for k, v in os.environ.items() if k in KEEP}
        env.update(HOME=str(self.home), **(variables or self.variables))
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=self.home)

    def verify(self, token: str) -> dict:
        result = json.loads(ok(self.msi("verify", token, "--audience", VAULT, "-o", "json")))
        assert result["valid"], result
        return result["claims"]

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.variables["NODE_EXTRA_CA_CERTS"])  # msi's CA alone

    def post_token(self, form: dict[str, str], tenant: str | None = None) -> tuple[int, dict]:
        url = f"{self.https_url}/{tenant or self.variables['AZURE_TENANT_ID']}/oauth2/v2.0/token"
        request = urllib.request.Request(url, data=urlencode(form).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context()) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def cluster(msi_proc, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(msi_proc, home)
    yield c
    c.stop()


PYTHON_CLIENTS = """
import asyncio, json, os
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential, WorkloadIdentityCredential
import msal

scope = "https://vault.azure.net/.default"
out = {}
for cls in (WorkloadIdentityCredential, DefaultAzureCredential, ManagedIdentityCredential):
    out[cls.__name__] = cls().get_token(scope).token

async def main():
    try:
        import aiohttp  # noqa: F401  (the async transport)
    except ImportError:
        return
    from azure.identity import aio
    for name in ("WorkloadIdentityCredential", "DefaultAzureCredential", "ManagedIdentityCredential"):
        async with getattr(aio, name)() as credential:
            out[name + " (async)"] = (await credential.get_token(scope)).token
asyncio.run(main())

with open(os.environ["AZURE_FEDERATED_TOKEN_FILE"]) as f:
    assertion = f.read()
app = msal.ConfidentialClientApplication(
    os.environ["AZURE_CLIENT_ID"], authority=os.environ["AZURE_AUTHORITY_HOST"] + os.environ["AZURE_TENANT_ID"],
    client_credential={"client_assertion": assertion}, instance_discovery=False)
result = app.acquire_token_for_client(scopes=[scope])
out["msal ConfidentialClientApplication"] = result.get("access_token") or result
print(json.dumps(out))
"""


def test_python_clients_get_tokens_with_what_msi_env_prints(cluster):
    proc = cluster.run([sys.executable, "-c", textwrap.dedent(PYTHON_CLIENTS)])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {"WorkloadIdentityCredential", "DefaultAzureCredential", "ManagedIdentityCredential", "msal ConfidentialClientApplication"}
    assert expected <= set(out)
    import importlib.util

    if importlib.util.find_spec("aiohttp") is not None:  # the async clients need it; the test extra installs it
        assert {"WorkloadIdentityCredential (async)", "DefaultAzureCredential (async)", "ManagedIdentityCredential (async)"} <= set(out)
    for client, token in out.items():
        assert isinstance(token, str), (client, token)
        claims = cluster.verify(token)
        assert claims["oid"] == cluster.identity["principalId"] and claims["appid"] == cluster.identity["clientId"], client
        assert claims["aud"] == VAULT and "xms_az_rid" not in claims


NODE_CLIENT = """
const { WorkloadIdentityCredential } = require("@azure/identity");
new WorkloadIdentityCredential({ disableInstanceDiscovery: true }).getToken("https://vault.azure.net/.default")
  .then(t => console.log(JSON.stringify({ token: t.token })))
  .catch(e => { console.error(String(e)); process.exit(1); });
"""


def test_node_workload_identity_credential(cluster):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    found = cluster.run([node, "-e", "require.resolve('@azure/identity')"])
    if found.returncode != 0:
        pytest.skip("@azure/identity is not installed (the tests never install it)")
    proc = cluster.run([node, "-e", NODE_CLIENT])
    assert proc.returncode == 0, proc.stderr
    claims = cluster.verify(json.loads(proc.stdout.strip().splitlines()[-1])["token"])
    assert claims["oid"] == cluster.identity["principalId"]


GITHUB_JOB = """
import json, os, urllib.request
from azure.identity import ClientAssertionCredential

def github_token():  # what a job's own code (and azure/login) does
    request = urllib.request.Request(os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=api://AzureADTokenExchange",
                                     headers={"Authorization": "bearer " + os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]})
    with urllib.request.urlopen(request) as resp:
        return json.load(resp)["value"]

credential = ClientAssertionCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], github_token,
                                       authority=os.environ["AZURE_AUTHORITY_HOST"])
print(json.dumps({"token": credential.get_token("https://vault.azure.net/.default").token}))
"""


def test_a_github_actions_job_fetches_its_token_and_trades_it(cluster, msi_proc):
    variables = cluster.env("--github", "octo-org/app@main")
    github = ok(msi_proc("issuer", "show", "github", "--query", "issuer", "-o", "tsv")).strip()
    ok(msi_proc("federation", "add", "deploy-id", "--name", "app-main", "--issuer", github,
                "--subject", "repo:octo-org/app:ref:refs/heads/main", "-o", "none"))
    proc = cluster.run([sys.executable, "-c", textwrap.dedent(GITHUB_JOB)], variables)
    assert proc.returncode == 0, proc.stderr
    assert cluster.verify(json.loads(proc.stdout.strip().splitlines()[-1])["token"])["oid"] == cluster.identity["principalId"]


def test_refusals_over_https_carry_entras_codes(cluster):
    with open(cluster.variables["AZURE_FEDERATED_TOKEN_FILE"]) as f:
        good = f.read().strip()
    form = {"grant_type": "client_credentials", "client_id": cluster.identity["clientId"], "scope": f"{VAULT}/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": good}
    status, body = cluster.post_token(form)
    assert status == 200 and cluster.verify(body["access_token"])["oid"] == cluster.identity["principalId"]

    def refused(expected_status: int, error: str, code: int, **change: str) -> None:
        status, body = cluster.post_token({**form, **{k: v for k, v in change.items() if k != "tenant"}}, change.get("tenant"))
        assert (status, body["error"], body["error_codes"]) == (expected_status, error, [code]), body
        assert body["error_description"].startswith(f"AADSTS{code}: ") and "access_token" not in body

    other = ok(cluster.msi("oidc-token", "kubernetes", "--subject", "system:serviceaccount:payments:other", "-o", "tsv")).strip()
    refused(401, "invalid_client", 700213, client_assertion=other)
    refused(400, "invalid_request", 900144, client_assertion="")
    refused(400, "unauthorized_client", 700016, client_id="00000000-0000-0000-0000-000000000001")
    refused(400, "invalid_resource", 500011, scope="https://nothing.example.com/.default")
    refused(400, "invalid_tenant", 90002, tenant="00000000-0000-0000-0000-000000000000")
    head, claims, sig = good.split(".")
    refused(401, "invalid_client", 700027, client_assertion=f"{head}.{claims}.{sig[:-6]}AAAAAA")
