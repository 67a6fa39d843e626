"""ARM through a real `msi serve` on 127.0.0.1, with `requests`: bodies travel, changes made over
HTTP show in `msi show`, and changes made with the CLI show over HTTP at once."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from armkit import make_world


@pytest.fixture
def arm_server(isolated_state, msi_proc):
    world = make_world(isolated_state)
    world.caller("admin", "Owner")
    proc = subprocess.Popen([*_msi(), "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        plain = _ready(proc)
        url = _ready(proc)  # the HTTPS listener, where az and the SDKs talk to ARM
        bundle = json.loads(msi_proc("env", "admin", "-o", "json").stdout)["REQUESTS_CA_BUNDLE"]
        session = requests.Session()
        session.verify = bundle
        session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment would override the bundle
        yield world, url, plain, session
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _msi() -> list[str]:
    from conftest import msi_executable

    return msi_executable()


def _ready(proc) -> str:
    """The URL `msi serve` prints on stdout once it listens."""
    line = proc.stdout.readline().strip()
    assert line.startswith("http"), f"msi serve did not start: {line!r}"
    return line.rstrip("/")


def test_identity_created_over_http_is_msis_and_cli_changes_are_served(arm_server, msi_proc):
    world, url, _, requests = arm_server
    auth = {"Authorization": f"Bearer {world.token('admin')}"}
    path = f"{url}/subscriptions/{world.sub}/resourcegroups/ci/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web-id"
    resp = requests.put(path, params={"api-version": "2024-11-30"}, json={"location": "eastus"}, headers=auth, timeout=10)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Content-Type"].startswith("application/json") and resp.headers["x-ms-request-id"]
    shown = msi_proc("show", "web-id", "-o", "json")
    assert resp.json()["properties"]["principalId"] in shown.stdout
    assert msi_proc("create-identity", "cli-id", "-g", "ci").returncode == 0
    listed = requests.get(f"{url}/subscriptions/{world.sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                          params={"api-version": "2024-11-30"}, headers=auth, timeout=10).json()["value"]
    assert sorted(i["name"] for i in listed) == ["cli-id", "web-id"]


def test_http_errors_carry_arms_envelope_and_headers(arm_server):
    world, url, plain, requests = arm_server
    resp = requests.get(f"{url}/subscriptions", params={"api-version": "2022-12-01"}, timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    meta = requests.get(f"{url}/metadata/endpoints", params={"api-version": "2022-09-01"}, timeout=10).json()
    assert meta["resourceManager"] == url + "/"
    # the token endpoints still answer beside ARM
    vm = next(r for r in world.state().resources.values() if r.name == "admin")
    token = requests.get(f"{plain}{vm.id}/metadata/identity/oauth2/token",
                         params={"api-version": "2018-02-01", "resource": "https://management.azure.com/"},
                         headers={"Metadata": "true"}, timeout=10)
    assert token.status_code == 200, token.text


def test_resource_manager_and_entras_token_endpoint_are_https_only(arm_server, msi_proc):
    world, url, plain, requests = arm_server
    auth = {"Authorization": f"Bearer {world.token('admin')}"}
    group = f"/subscriptions/{world.sub}/resourcegroups/ci"
    assert requests.get(f"{url}{group}", params={"api-version": "2023-01-31"}, headers=auth, timeout=10).status_code == 200
    for path in (group, "/metadata/endpoints", "/subscriptions"):
        resp = requests.get(f"{plain}{path}", params={"api-version": "2022-09-01"}, headers=auth, timeout=10)
        assert resp.status_code == 404 and f"HTTPS only: use {url}" in resp.json()["error_description"], path
    ident = json.loads(msi_proc("create-identity", "fed-id", "-g", "ci", "-o", "json").stdout)
    issuer = json.loads(msi_proc("issuer", "create", "gh", "--kind", "github", "-o", "json").stdout)["issuer"]
    subject = "repo:octo-org/app:ref:refs/heads/main"
    assert msi_proc("federation", "add", "fed-id", "--name", "main", "--issuer", issuer, "--subject", subject).returncode == 0

    def form() -> dict:
        assertion = msi_proc("oidc-token", "gh", "--subject", subject, "--audience", "api://AzureADTokenExchange").stdout.strip()
        return {"grant_type": "client_credentials", "client_id": ident["clientId"], "scope": "https://vault.azure.net/.default",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertion}

    for suffix in ("oauth2/v2.0/token", "oauth2/token"):
        refused = requests.post(f"{plain}/{world.tenant}/{suffix}", data=form(), timeout=10)
        assert refused.status_code == 404 and "access_token" not in refused.text, suffix
    served = requests.post(f"{url}/{world.tenant}/oauth2/v2.0/token", data=form(), timeout=10)
    assert served.status_code == 200 and served.json()["access_token"]
    # discovery over plain HTTP keeps its http keys, and names Entra's endpoints where they are served
    for doc_path in ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"):
        doc = requests.get(f"{plain}/{world.tenant}/{doc_path}", timeout=10).json()
        assert doc["jwks_uri"].startswith(f"{plain}/{world.tenant}/") and requests.get(doc["jwks_uri"], timeout=10).ok
        assert doc["token_endpoint"].startswith(f"{url}/{world.tenant}/oauth2/")
        assert doc["authorization_endpoint"].startswith(f"{url}/{world.tenant}/oauth2/")
    common = requests.get(f"{plain}/common/v2.0/.well-known/openid-configuration", timeout=10).json()
    assert common["token_endpoint"] == f"{url}/common/oauth2/v2.0/token" and common["jwks_uri"].startswith(plain)


def test_msi_env_az_isolates_az_and_registers_the_cloud(arm_server, msi_proc, isolated_state):
    _, url, _, _ = arm_server
    variables = json.loads(msi_proc("env", "admin", "--az", "-o", "json").stdout)
    private = isolated_state.parent / (isolated_state.name + ".d")
    assert variables["AZURE_CONFIG_DIR"] == str(private / "azure")
    assert variables["AZURE_CORE_INSTANCE_DISCOVERY"] == "false" and variables["AZURE_CORE_COLLECT_TELEMETRY"] == "false"
    assert variables["REQUESTS_CA_BUNDLE"].startswith(str(private))
    lines = msi_proc("env", "admin", "--az", "--shell", "bash").stdout.splitlines()
    assert f"export AZURE_CONFIG_DIR={private / 'azure'}" in lines
    assert lines[-2] == (f"az cloud register -n msi --endpoint-resource-manager {url}/ >/dev/null 2>&1 || "
                         f"az cloud update -n msi --endpoint-resource-manager {url}/ >/dev/null")
    assert lines[-1] == "az cloud set -n msi --only-show-errors >/dev/null"
    plain = json.loads(msi_proc("env", "admin", "-o", "json").stdout)
    assert "AZURE_CONFIG_DIR" not in plain
    ps = msi_proc("env", "admin", "--az", "--shell", "powershell").stdout
    assert f"$Env:AZURE_CONFIG_DIR = '{private / 'azure'}'" in ps and "if (-not $?)" in ps


def test_powershell_lines_double_every_character_powershell_takes_for_a_single_quote():
    """PowerShell's tokenizer ends a single-quoted string at ' and at the typographic quotes
    U+2018, U+2019, U+201A and U+201B (CharExtensions.IsSingleQuote); each is doubled to stand for
    itself, so a path such as "Bob’s Projects" or "p’; $(x)" stays one literal string."""
    from msi_cli.cli.azsetup import ps_quote

    assert ps_quote("/home/Bob\u2019s Projects/x") == "'/home/Bob\u2019\u2019s Projects/x'"
    assert ps_quote("p\u2018'\u201a\u201b; $(x)") == "'p\u2018\u2018''\u201a\u201a\u201b\u201b; $(x)'"
    assert ps_quote('"$x" `n') == "'\"$x\" `n'"  # nothing else is special between single quotes
