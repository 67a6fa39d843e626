"""Real, unmodified Azure SDK clients against `msi serve`.

`msi serve` runs as a subprocess; each client runs in its own Python process whose environment is
a clean base plus exactly what `msi env RESOURCE -o json` prints. Every token is then verified the
way a resource server would: the tenant's OpenID discovery document served by `msi serve`, its
JWKS, and PyJWT (nothing from msi_cli on the verifying side)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path

import jwt
import pytest

from conftest import msi_executable, stop_process

pytest.importorskip("azure.identity")
pytest.importorskip("msal")

VAULT = "https://vault.azure.net"
SCOPE = VAULT + "/.default"
TIMEOUT = 60
# What a client process inherits: nothing that could point it anywhere but `msi env`'s output.
KEEP = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "NODE_PATH")  # NODE_PATH: where CI put @azure/identity


class Deployment:
    """A state with VMs and apps, `msi serve` running on it, and what the tests need to know."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / "state" / "state.toml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))}
        self.env.update(MSI_STATE=str(self.state), NO_COLOR="1")
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "serve.log"
        self.printed: dict[str, dict] = {}

    def msi(self, *args: str) -> str:
        proc = subprocess.run([*msi_executable(), *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, f"msi {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def msi_json(self, *args: str):
        return json.loads(self.msi(*args, "-o", "json"))

    def start(self, *faults: str) -> None:
        args = [arg for f in faults for arg in ("--fault", f)]
        self._log = open(self.log_path, "w")  # closed in stop()
        self.proc = subprocess.Popen([*msi_executable(), "serve", *args], env=self.env, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        if not line or not line[0].startswith("http://127.0.0.1:"):
            self.stop()
            pytest.fail(f"msi serve did not start: {self.log_path.read_text()}")
        self.url = line[0].strip()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    def client_env(self, resource: str) -> dict:
        """A clean environment plus `msi env RESOURCE -o json`, nothing else."""
        env = {k: v for k, v in os.environ.items() if k in KEEP}
        env["HOME"] = str(self.folder / "home")  # no developer credentials, no caches
        if resource not in self.printed:  # what `msi env` prints for a resource is the same while msi serve runs
            self.printed[resource] = self.msi_json("env", resource)
        env.update(self.printed[resource])
        return env

    def run_client(self, resource: str, code: str, *args: str) -> dict:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=self.client_env(resource),
                              capture_output=True, text=True, timeout=TIMEOUT, cwd=self.folder)
        assert proc.returncode == 0, f"client for {resource} failed:\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _resource(name: str, kind: str, system: bool, *user: str) -> str:
    lines = [f'name = "{name}"', f'type = "{kind}"', 'subscription = "default"', 'resource_group = "default"']
    if system:
        lines.append("system_assigned = true")
    if user:
        lines.append("user_assigned = [" + ", ".join(f'"{u}"' for u in user) + "]")
    return "[[resources]]\n" + "\n".join(lines) + "\n"


# VMs and apps in the fresh state's subscription, with system- and user-assigned identities
ESTATE = (
    'format = "msi-estate"\n'
    '[[resource_groups]]\nname = "default"\nsubscription = "default"\nlocation = "eastus"\n'
    + "".join(f'[[identities]]\nname = "{n}"\nsubscription = "default"\nresource_group = "default"\n' for n in ("uai1", "uai2"))
    + _resource("vm1", "vm", True) + _resource("vm2", "vm", False, "uai1", "uai2") + _resource("vmf", "vm", True)
    + _resource("web1", "webapp", True, "uai1") + _resource("ca1", "containerapp", True, "uai2")
)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    d = Deployment(tmp_path_factory.mktemp("sdk"))
    (d.folder / "home").mkdir()
    estate = d.folder / "estate.toml"  # one `msi apply`, as a CI job seeds its world
    estate.write_text(ESTATE)
    d.msi("apply", str(estate), "--yes", "-o", "none")
    d.tenant = d.msi_json("list", "tenants")[0]["tenantId"]
    d.res = {r["name"]: r for r in d.msi_json("list", "resources")}
    d.uai = {i["name"]: i for i in d.msi_json("list", "identities")}
    assert sorted(d.res) == ["ca1", "vm1", "vm2", "vmf", "web1"] and sorted(d.uai) == ["uai1", "uai2"]
    d.start("vmf:503:count=1", "vmf:429:count=1")
    yield d
    d.stop()


def verify(deployment: Deployment, token: str, audience: str = VAULT) -> dict:
    """Discovery document -> jwks_uri -> JWKS -> PyJWT, with the tenant we expect to have issued it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{deployment.url}/{deployment.tenant}/.well-known/openid-configuration", timeout=10) as resp:
        config = json.load(resp)
    assert config["jwks_uri"].startswith(deployment.url + "/")
    with opener.open(config["jwks_uri"], timeout=10) as resp:
        jwks = jwt.PyJWKSet.from_dict(json.load(resp))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=config["issuer"],
                      options={"require": ["exp", "iat", "nbf", "iss", "aud"]})


AZURE_IDENTITY = """
    import json, sys
    from azure.identity import ManagedIdentityCredential
    out = []
    for kwargs in json.loads(sys.argv[1]):
        with ManagedIdentityCredential(**kwargs) as cred:
            out.append(cred.get_token("https://vault.azure.net/.default").token)
    print(json.dumps(out))
"""

MSAL = """
    import json, sys
    import msal, requests
    out = []
    for spec in json.loads(sys.argv[1]):
        identity = msal.SystemAssignedManagedIdentity() if spec is None else msal.UserAssignedManagedIdentity(**spec)
        client = msal.ManagedIdentityClient(identity, http_client=requests.Session())
        result = client.acquire_token_for_client(resource="https://vault.azure.net")
        out.append(result.get("access_token") or result)
    print(json.dumps(out))
"""


def test_azure_identity_system_assigned_on_a_vm(deployment):
    [token] = deployment.run_client("vm1", AZURE_IDENTITY, json.dumps([{}]))
    claims = verify(deployment, token)
    assert claims["oid"] == deployment.res["vm1"]["identity"]["principalId"]
    assert claims["xms_mirid"].lower() == deployment.res["vm1"]["id"].lower()


def test_azure_identity_user_assigned_by_client_id_object_id_and_resource_id(deployment):
    uai1, uai2 = deployment.uai["uai1"], deployment.uai["uai2"]
    kwargs = [{"client_id": uai1["clientId"]},
              {"identity_config": {"object_id": uai2["principalId"]}},
              {"identity_config": {"resource_id": uai1["id"]}}]
    tokens = deployment.run_client("vm2", AZURE_IDENTITY, json.dumps(kwargs))
    claims = [verify(deployment, t) for t in tokens]
    assert [c["appid"] for c in claims] == [uai1["clientId"], uai2["clientId"], uai1["clientId"]]
    assert [c["oid"] for c in claims] == [uai1["principalId"], uai2["principalId"], uai1["principalId"]]
    assert all(c["xms_az_rid"].lower() == deployment.res["vm2"]["id"].lower() for c in claims)


def test_azure_identity_on_app_service(deployment):
    uai1 = deployment.uai["uai1"]
    tokens = deployment.run_client("web1", AZURE_IDENTITY, json.dumps([{}, {"client_id": uai1["clientId"]}]))
    system, user = (verify(deployment, t) for t in tokens)
    assert system["oid"] == deployment.res["web1"]["identity"]["principalId"]
    assert user["oid"] == uai1["principalId"]


def test_default_azure_credential_on_a_vm_and_the_imds_probe(deployment):
    code = """
        import json
        from azure.core.exceptions import HttpResponseError
        from azure.identity import DefaultAzureCredential
        from azure.identity._credentials.imds import ImdsCredential
        out = {}
        with DefaultAzureCredential() as cred:
            out["default"] = cred.get_token("https://vault.azure.net/.default").token
        # DefaultAzureCredential probes IMDS before its first token request (without the Metadata
        # header; any HTTP answer means IMDS is there). azure-identity skips the probe when
        # AZURE_POD_IDENTITY_AUTHORITY_HOST is set, so run that same credential with the probe on.
        with ImdsCredential(_enable_imds_probe=True) as probing:
            probing._endpoint_available = None
            out["probed"] = probing.get_token("https://vault.azure.net/.default").token
        print(json.dumps(out))
    """
    before = deployment.log_path.read_text()
    out = deployment.run_client("vm1", code)
    for token in out.values():
        assert verify(deployment, token)["oid"] == deployment.res["vm1"]["identity"]["principalId"]
    new_log = deployment.log_path.read_text()[len(before):]
    assert "400" in new_log and "Required metadata header not specified" in new_log  # the probe got its answer


def test_azure_identity_errors_and_retries(deployment):
    code = """
        import json
        from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
        try:
            ManagedIdentityCredential().get_token("https://vault.azure.net/.default")
            print(json.dumps({"error": None}))
        except CredentialUnavailableError as exc:
            print(json.dumps({"error": str(exc)}))
    """
    out = deployment.run_client("vm2", code)  # two user-assigned identities and no selector
    assert "Multiple user assigned identities exist" in out["error"]
    # vmf answers 503 then 429 once each (fault injection): azure-identity retries and succeeds
    [token] = deployment.run_client("vmf", AZURE_IDENTITY, json.dumps([{}]))
    assert verify(deployment, token)["oid"] == deployment.res["vmf"]["identity"]["principalId"]
    log = deployment.log_path.read_text()
    assert "vmf" in log and " 503 " in log and " 429 " in log


def test_msal_system_and_user_assigned_on_a_vm(deployment):
    [token] = deployment.run_client("vm1", MSAL, json.dumps([None]))
    assert verify(deployment, token)["oid"] == deployment.res["vm1"]["identity"]["principalId"]
    uai1, uai2 = deployment.uai["uai1"], deployment.uai["uai2"]
    specs = [{"client_id": uai1["clientId"]}, {"object_id": uai2["principalId"]}, {"resource_id": uai2["id"]}]
    tokens = deployment.run_client("vm2", MSAL, json.dumps(specs))
    assert [verify(deployment, t)["oid"] for t in tokens] == [uai1["principalId"], uai2["principalId"], uai2["principalId"]]


def test_msal_on_app_service(deployment):
    uai1 = deployment.uai["uai1"]
    tokens = deployment.run_client("web1", MSAL, json.dumps([None, {"client_id": uai1["clientId"]}, {"resource_id": uai1["id"]}]))
    oids = [verify(deployment, t)["oid"] for t in tokens]
    assert oids == [deployment.res["web1"]["identity"]["principalId"], uai1["principalId"], uai1["principalId"]]


def test_msal_reports_the_endpoints_error(deployment):
    out = deployment.run_client("vm2", MSAL, json.dumps([{"client_id": "00000000-0000-0000-0000-000000000000"}]))
    assert out == [{"error": "invalid_request", "error_description": "Identity not found"}]


# ---- exactly what `msi env` prints, from a shell that already had a CI job's identity variables --------

# What a CI job's shell may hold: each would make a client choose another source (a service
# principal, workload identity, Service Fabric, Arc, Azure ML, another host) or another identity.
CI_VARIABLES = {
    "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "AZURE_TENANT_ID": "22222222-2222-2222-2222-222222222222",
    "AZURE_CLIENT_SECRET": "not-a-secret",
    "AZURE_FEDERATED_TOKEN_FILE": "/nonexistent/federated-token",
    "AZURE_TOKEN_CREDENTIALS": "dev",
    "IDENTITY_ENDPOINT": "http://127.0.0.1:9/identity",
    "IDENTITY_HEADER": "stale",
    "IDENTITY_SERVER_THUMBPRINT": "0000000000000000000000000000000000000000",
    "IMDS_ENDPOINT": "http://127.0.0.1:9",
    "MSI_ENDPOINT": "http://127.0.0.1:9/msi",
    "MSI_SECRET": "stale",
}

CLIENTS = """
    import json, sys
    out = {}
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
    with ManagedIdentityCredential() as cred:
        out["ManagedIdentityCredential"] = cred.get_token("https://vault.azure.net/.default").token
    with DefaultAzureCredential() as cred:
        out["DefaultAzureCredential"] = cred.get_token("https://vault.azure.net/.default").token
    import msal, requests
    client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
    result = client.acquire_token_for_client(resource="https://vault.azure.net")
    out["msal"] = result.get("access_token") or result
    try:
        import aiohttp  # noqa: F401  (azure-identity's async credentials need an async transport)
    except ImportError:
        pass
    else:
        import asyncio
        from azure.identity.aio import ManagedIdentityCredential as AsyncCredential

        async def main():
            async with AsyncCredential() as cred:
                return (await cred.get_token("https://vault.azure.net/.default")).token

        out["async ManagedIdentityCredential"] = asyncio.run(main())
    print(json.dumps(out))
"""

NODE_CLIENT = """
const { ManagedIdentityCredential } = require("@azure/identity");
new ManagedIdentityCredential().getToken("https://vault.azure.net/.default")
  .then(t => console.log(JSON.stringify({ token: t.token })))
  .catch(e => { console.error(String(e)); process.exit(1); });
"""


def run_in_ci_shell(deployment: Deployment, resource: str, command: list[str]) -> subprocess.CompletedProcess:
    """`eval "$(msi env RESOURCE)"` in a bash that already holds CI_VARIABLES, then run `command`."""
    env = {k: v for k, v in os.environ.items() if k in KEEP}
    env.update(HOME=str(deployment.folder / "home"), MSI_STATE=str(deployment.state), **CI_VARIABLES)
    msi = " ".join(shlex.quote(part) for part in msi_executable())
    script = f'eval "$({msi} env {shlex.quote(resource)} --shell bash)" && exec "$@"'
    return subprocess.run(["bash", "-c", script, "bash", *command], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=deployment.folder)


@pytest.mark.parametrize("resource", ["vm1", "web1", "ca1"])
def test_clients_use_exactly_what_msi_env_prints_despite_ci_variables(deployment, resource):
    proc = run_in_ci_shell(deployment, resource, [sys.executable, "-c", textwrap.dedent(CLIENTS)])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"ManagedIdentityCredential", "DefaultAzureCredential", "msal"} <= set(out)
    for client, token in out.items():
        assert isinstance(token, str), (client, token)
        assert verify(deployment, token)["oid"] == deployment.res[resource]["identity"]["principalId"], client


def test_node_azure_identity_uses_what_msi_env_prints(deployment):
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    found = subprocess.run([node, "-e", "require.resolve('@azure/identity')"], capture_output=True, cwd=deployment.folder)
    if found.returncode != 0:
        pytest.skip("@azure/identity is not installed (the tests never install it)")
    for resource in ("vm1", "web1", "ca1"):
        proc = run_in_ci_shell(deployment, resource, [node, "-e", NODE_CLIENT])
        assert proc.returncode == 0, proc.stderr
        token = json.loads(proc.stdout.strip().splitlines()[-1])["token"]
        assert verify(deployment, token)["oid"] == deployment.res[resource]["identity"]["principalId"]
