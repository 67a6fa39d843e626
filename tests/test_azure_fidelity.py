"""Issue 9: behaviours the simulator once taught wrong, now as Azure does them, through the
installed `msi` and a real `msi serve` (see shared/docs/azure-behaviour.md for each source)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import tomllib
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

import pytest
import tomli_w

from conftest import msi_executable, stop_process

VAULT = "https://vault.azure.net"
IDENTITY_NOT_FOUND = {"error": "invalid_request", "error_description": "Identity not found"}
NO_USER_ASSIGNED = "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
UNEXPECTED = "An unexpected error occured while fetching the AAD Token."  # sic, as App Service words it


def ok(result: subprocess.CompletedProcess, warnings: bool = False) -> str:
    assert result.returncode == 0, f"{result.args}: {result.returncode}\n{result.stderr}"
    if not warnings:
        assert result.stderr == "", result.stderr
    return result.stdout


def js(result: subprocess.CompletedProcess, warnings: bool = False):
    return json.loads(ok(result, warnings))


def error_line(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, f"{result.args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


class Served:
    """A real `msi serve` process on 127.0.0.1 for the test's state."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([*msi_executable(), "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        assert line and line[0].startswith("http://127.0.0.1:"), "msi serve did not start"
        self.url = line[0].strip()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str, headers: dict) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with self.opener.open(request, timeout=10) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def imds(self, resource_id: str, **params: str) -> tuple[int, dict]:
        query = urlencode({"api-version": "2018-02-01", "resource": VAULT, **params})
        return self.get(quote(resource_id) + "/metadata/identity/oauth2/token?" + query, {"Metadata": "true"})

    def appservice(self, resource_id: str, secret: str, **params: str) -> tuple[int, dict]:
        query = urlencode({"api-version": "2019-08-01", "resource": VAULT, **params})
        return self.get(quote(resource_id) + "/msi/token?" + query, {"X-IDENTITY-HEADER": secret})

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def served(isolated_state):
    server = Served()
    yield server
    server.stop()


# ---- 1. deleting a user-assigned identity leaves dangling entries -------------------------------------


def test_deleted_identity_stays_on_resources_and_gets_no_token(msi_proc, served):
    shared = js(msi_proc("create-identity", "shared-id", "-o", "json"))
    vm1 = js(msi_proc("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id", "-o", "json"))
    web1 = js(msi_proc("create-resource", "web1", "--type", "webapp", "--system-assigned", "--user-assigned", "shared-id", "-o", "json"))
    secret = js(msi_proc("env", "web1", "-o", "json"))["IDENTITY_HEADER"]
    assert served.imds(vm1["id"])[0] == 200
    assert served.appservice(web1["id"], secret, client_id=shared["clientId"])[0] == 200

    deleted = msi_proc("delete", "shared-id", "--yes", "-o", "json")
    gone = js(deleted, warnings=True)
    assert deleted.stderr.startswith("warning: 'shared-id' is still assigned to 2 resource(s)") and shared["id"] in deleted.stderr
    assert sorted(gone["stillReferencedBy"]) == sorted([vm1["id"], web1["id"]])
    entry = {shared["id"]: {"principalId": shared["principalId"], "clientId": shared["clientId"]}}
    assert js(msi_proc("show", "vm1", "-o", "json"))["identity"] == {"type": "UserAssigned", "userAssignedIdentities": entry}

    # IMDS: the dangling entry, alone or selected, is "Identity not found"
    for params in ({}, {"client_id": shared["clientId"]}, {"object_id": shared["principalId"]}, {"msi_res_id": shared["id"]}):
        assert served.imds(vm1["id"], **params) == (400, IDENTITY_NOT_FOUND), params
    assert "Identity not found" in error_line(msi_proc("token", "vm1", "--audience", VAULT), 1)
    # App Service: its own message for a selector that matches no live identity; the system one still works
    status, body = served.appservice(web1["id"], secret, client_id=shared["clientId"])
    assert status == 400 and body["message"] == NO_USER_ASSIGNED
    assert served.appservice(web1["id"], secret)[0] == 200
    assert "(deleted: dangling)" in ok(msi_proc("list", "resources"))

    # a new identity of the same name is a new principal: the old entry does not pick it up
    again = js(msi_proc("create-identity", "shared-id", "-o", "json"))
    assert again["id"] == shared["id"] and again["principalId"] != shared["principalId"]
    assert served.imds(vm1["id"]) == (400, IDENTITY_NOT_FOUND)
    line = error_line(msi_proc("assign", "vm1", "--user-assigned", "shared-id"), 1)
    assert f"msi unassign vm1 --user-assigned {shared['id']}" in line
    # removed by full id (a bare name of a deleted identity resolves to nothing: the error says which id)
    msi_proc("delete", "shared-id", "--yes", "-o", "none")
    line = error_line(msi_proc("unassign", "vm1", "--user-assigned", "shared-id"), 3)
    assert "no longer exists" in line and shared["id"] in line
    assert js(msi_proc("unassign", "vm1", "--user-assigned", shared["id"], "-o", "json"))["userAssignedIdentities"] == {}
    third = js(msi_proc("create-identity", "shared-id", "-o", "json"))
    ok(msi_proc("assign", "vm1", "--user-assigned", "shared-id", "-o", "none"))
    status, body = served.imds(vm1["id"])
    assert status == 200 and body["client_id"] == third["clientId"]


def test_a_schema_1_state_file_is_upgraded(msi_proc, isolated_state):
    """Schema 1 listed attached identities by id only (and had no resource group objects); schema 2
    records each one's principal and client ids, schema 3 its groups. An old file loads, reading
    leaves it as it is, the next change writes the current schema."""
    shared = js(msi_proc("create-identity", "shared-id", "-o", "json"))
    vm1 = js(msi_proc("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id", "-o", "json"))
    doc = tomllib.loads(isolated_state.read_text())
    assert doc["schema"] == 3
    doc["schema"] = 1
    del doc["resource_groups"]
    for res in doc["resources"]:
        res["user_identities"] = [u["id"] for u in res.get("user_identities", [])]
    isolated_state.write_text(tomli_w.dumps(doc))
    before = isolated_state.read_bytes()
    assert js(msi_proc("show", "vm1", "-o", "json")) == vm1
    assert isolated_state.read_bytes() == before
    ok(msi_proc("create-identity", "other", "-o", "none"))
    upgraded = tomllib.loads(isolated_state.read_text())
    assert upgraded["schema"] == 3 and [g["name"] for g in upgraded["resource_groups"]] == ["default"]
    [res] = upgraded["resources"]
    assert res["user_identities"] == [{"id": shared["id"], "principal_id": shared["principalId"], "client_id": shared["clientId"]}]


# ---- 2, 5. Container Apps and App Service hosts ------------------------------------------------------


def test_container_apps_use_the_app_service_rules(msi_proc, served):
    uai = js(msi_proc("create-identity", "uai1", "-o", "json"))
    ca = js(msi_proc("create-resource", "ca1", "--type", "containerapp", "--user-assigned", "uai1", "-o", "json"))
    env = js(msi_proc("env", "ca1", "-o", "json"))
    trust = {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"}  # for the HTTPS endpoints
    assert [k for k in env if k not in trust] == ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]
    assert env["IDENTITY_ENDPOINT"].endswith("/msi/token")
    # no selector means the system-assigned identity, and ca1 has none
    assert "HTTP 400" in error_line(msi_proc("token", "ca1", "--audience", VAULT), 1)
    assert served.appservice(ca["id"], env["IDENTITY_HEADER"])[0] == 400
    status, body = served.appservice(ca["id"], env["IDENTITY_HEADER"], client_id=uai["clientId"])
    assert status == 200 and body["client_id"] == uai["clientId"] and "refresh_token" not in body
    assert js(msi_proc("token", "ca1", "--audience", VAULT, "--client-id", uai["clientId"], "-o", "json"))["client_id"] == uai["clientId"]
    line = error_line(msi_proc("token", "ca1", "--audience", "https://nothing.example.com", "--client-id", uai["clientId"]), 1)
    assert f"HTTP 500: {UNEXPECTED}" in line
    status, body = served.appservice(ca["id"], env["IDENTITY_HEADER"], client_id=uai["clientId"], resource="https://nothing.example.com")
    assert status == 500 and body["message"] == UNEXPECTED


# ---- 4. moving the clock never corrupts the state ------------------------------------------------------


def test_clock_moves_keep_every_identity_and_unexpired_token_working(msi_proc, isolated_state):
    ok(msi_proc("create-resource", "vmz", "--type", "vm", "--system-assigned", "-o", "none"))
    before = ok(msi_proc("token", "vmz", "--audience", VAULT, "-o", "tsv")).strip()
    ok(msi_proc("clock", "advance", "91d", "-o", "none"))
    ok(msi_proc("clock", "reset", "-o", "none"))
    ok(msi_proc("token", "vmz", "--audience", "https://management.azure.com/", "-o", "none"))
    assert js(msi_proc("verify", before, "-o", "json"))["valid"] is True
    # back before the VM existed, and forward again
    ok(msi_proc("clock", "set", "2020-01-01T00:00:00Z", "-o", "none"))
    old_time = ok(msi_proc("token", "vmz", "--audience", VAULT, "-o", "tsv")).strip()
    assert js(msi_proc("verify", old_time, "-o", "json"))["valid"] is True
    ok(msi_proc("clock", "reset", "-o", "none"))
    assert js(msi_proc("verify", before, "-o", "json"))["valid"] is True
    ok(msi_proc("token", "vmz", "--audience", VAULT, "-o", "none"))
    # out-of-range moves are refused with the range, and change nothing
    unchanged = isolated_state.read_bytes()
    for args in (["advance", "999999999999d"], ["set", "1949-06-01T00:00:00Z"], ["advance", "3000000d"]):
        line = error_line(msi_proc("clock", *args), 2)
        assert "1970-01-01T00:00:00Z" in line and "8999-01-01T00:00:00Z" in line
        assert isolated_state.read_bytes() == unchanged
    # a far but accepted move: every later command still works
    ok(msi_proc("clock", "set", "8998-06-01T00:00:00Z", "-o", "none"))
    ok(msi_proc("create-identity", "late", "-o", "none"))
    ok(msi_proc("create-resource", "vm-late", "--type", "vm", "--system-assigned", "--user-assigned", "late", "-o", "none"))
    late = ok(msi_proc("token", "vm-late", "--audience", VAULT, "--msi-res-id", js(msi_proc("show", "late", "-o", "json"))["id"], "-o", "tsv"))
    assert js(msi_proc("verify", late.strip(), "-o", "json"))["valid"] is True
    assert len(js(msi_proc("jwks", "-o", "json"))["keys"]) >= 2
    ok(msi_proc("clock", "reset", "-o", "none"))
    ok(msi_proc("token", "vm-late", "--audience", "https://storage.azure.com/", "-o", "none"))
    assert "AADSTS700027" not in " ".join(json.dumps(e) for e in js(msi_proc("log", "-o", "json")))


# ---- 6. az shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["webapp", "functionapp", "containerapp"])
def test_assign_on_apps_returns_the_identity_block(msi_proc, kind):
    ok(msi_proc("create-resource", "app1", "--type", kind, "-o", "none"))
    pid = ok(msi_proc("assign", "app1", "--query", "principalId", "-o", "tsv")).strip()
    shown = js(msi_proc("show", "app1", "-o", "json"))["identity"]
    assert pid == shown["principalId"]
    block = js(msi_proc("assign", "app1", "-o", "json"))
    assert block == {"principalId": pid, "tenantId": shown["tenantId"], "type": "SystemAssigned", "userAssignedIdentities": None}


def test_vm_assign_keeps_az_vm_shape_and_live_assignments_carry_principal_name(msi_proc):
    ok(msi_proc("create-resource", "vm1", "--type", "vm", "-o", "none"))
    assigned = js(msi_proc("assign", "vm1", "-o", "json"))
    assert list(assigned) == ["systemAssignedIdentity", "userAssignedIdentities"]
    sp = js(msi_proc("show", assigned["systemAssignedIdentity"], "-o", "json"))
    ok(msi_proc("create-resource", "kv1", "--type", "keyvault", "-o", "none"))
    granted = js(msi_proc("grant", "vm1", "--role", "Reader", "--scope", "kv1", "-o", "json"))
    assert (granted["principalType"], granted["principalName"]) == ("ServicePrincipal", sp["appId"])
    ok(msi_proc("delete", "vm1", "--yes", "-o", "none"))
    [orphan] = js(msi_proc("list", "role-assignments", "-o", "json"))
    assert (orphan["principalType"], orphan["principalName"]) == ("ServicePrincipal", "")


# ---- 7. signing keys --------------------------------------------------------------------------------------


def test_roll_keys_normal_and_emergency(msi_proc):
    ok(msi_proc("create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none"))
    first = ok(msi_proc("token", "vm1", "--audience", VAULT, "-o", "tsv")).strip()
    published = [k["kid"] for k in js(msi_proc("jwks", "-o", "json"))["keys"]]
    assert len(published) >= 2
    rolled = js(msi_proc("tenant", "roll-keys", "Default Directory", "-o", "json"))
    assert rolled["signingKid"] == published[1]  # the published next key signs now
    assert rolled["previousWithdrawn"] is False and len(rolled["publishedKids"]) >= 2
    assert js(msi_proc("verify", first, "-o", "json"))["valid"] is True  # the old key stays published
    second = ok(msi_proc("token", "vm1", "--audience", "https://storage.azure.com/", "-o", "tsv")).strip()
    assert js(msi_proc("verify", second, "-o", "json"))["header"]["kid"] == rolled["signingKid"]

    emergency = js(msi_proc("tenant", "roll-keys", "Default Directory", "--emergency", "-o", "json"))
    assert emergency["previousKid"] == rolled["signingKid"] and emergency["previousWithdrawn"] is True
    verdict = msi_proc("verify", second, "-o", "json")
    assert verdict.returncode == 1 and json.loads(verdict.stdout)["reason"].startswith("unknown key")
    kids = [k["kid"] for k in js(msi_proc("jwks", "-o", "json"))["keys"]]
    assert rolled["signingKid"] not in kids and emergency["signingKid"] in kids and len(kids) >= 2
    # the platform hands out a token that verifies, not the cached one signed by the withdrawn key
    third = ok(msi_proc("token", "vm1", "--audience", "https://storage.azure.com/", "-o", "tsv")).strip()
    assert third != second and js(msi_proc("verify", third, "-o", "json"))["valid"] is True
    error_line(msi_proc("tenant", "roll-keys", "Nowhere"), 3)


# ---- 8. long identity names on VMs ------------------------------------------------------------------------


def test_long_identity_name_on_a_vm_or_scale_set_warns(msi_proc):
    long_name, fine = "a" * 25, "b" * 24
    for name in (long_name, fine):
        ok(msi_proc("create-identity", name, "-o", "none"))
    for kind in ("vm", "vmss"):
        ok(msi_proc("create-resource", f"{kind}1", "--type", kind, "-o", "none"))
        result = msi_proc("assign", f"{kind}1", "--user-assigned", long_name, "-o", "none")
        assert result.returncode == 0 and result.stderr.startswith("warning: ") and long_name in result.stderr
        assert result.stderr.count("\n") == 1
        ok(msi_proc("assign", f"{kind}1", "--user-assigned", fine, "-o", "none"))
    created = msi_proc("create-resource", "vm2", "--type", "vm", "--user-assigned", long_name, "-o", "none")
    assert created.returncode == 0 and "24 characters" in created.stderr
    ok(msi_proc("create-resource", "web1", "--type", "webapp", "--user-assigned", long_name, "-o", "none"))


def test_env_unsets_client_id_unless_asked(msi_proc, served):
    ok(msi_proc("create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none"))
    lines = ok(msi_proc("env", "vm1", "--shell", "bash")).splitlines()
    assert "unset AZURE_CLIENT_ID" in lines and "unset AZURE_TENANT_ID" in lines
    assert "unset ACTIONS_ID_TOKEN_REQUEST_URL" in lines  # what an earlier `msi env --github` set does not linger
    asked = ok(msi_proc("env", "vm1", "--shell", "bash", "--client-id", "abc")).splitlines()
    assert "export AZURE_CLIENT_ID=abc" in asked and "unset AZURE_CLIENT_ID" not in asked
    shell = subprocess.run(["bash", "-c", "\n".join(lines) + '\nprintf %s "${AZURE_CLIENT_ID-unset}"'], capture_output=True,
                           text=True, env={**os.environ, "AZURE_CLIENT_ID": "from-ci"}, timeout=30)
    assert shell.stdout == "unset"


def test_app_service_move_between_resource_groups_of_one_subscription_keeps_its_identity(msi_proc):
    app = js(msi_proc("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "json"))
    sub = app["subscriptionId"]
    moved = js(msi_proc("migrate", "web1", "--subscription", sub, "-g", "other", "-o", "json"))
    assert [h["works"] for h in moved["identities"]] == [True]
    claims = js(msi_proc("verify", ok(msi_proc("token", "web1", "--audience", VAULT, "-o", "tsv")).strip(), "-o", "json"))["claims"]
    assert claims["oid"] == app["identity"]["principalId"] and "/resourcegroups/other/" in claims["xms_mirid"]


def test_emergency_roll_while_serving(msi_proc, served):
    vm = js(msi_proc("create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "json"))
    status, body = served.imds(vm["id"])
    assert status == 200
    old_kid = js(msi_proc("verify", body["access_token"], "-o", "json"))["header"]["kid"]
    tenant = vm["identity"]["tenantId"]
    assert old_kid in [k["kid"] for k in served.get(f"/{tenant}/discovery/keys", {})[1]["keys"]]
    rolled = js(msi_proc("tenant", "roll-keys", tenant, "--emergency", "-o", "json"))
    assert rolled["previousKid"] == old_kid
    kids = [k["kid"] for k in served.get(f"/{tenant}/discovery/keys", {})[1]["keys"]]
    assert old_kid not in kids and rolled["signingKid"] in kids and len(kids) >= 2
    status, fresh = served.imds(vm["id"])
    assert status == 200 and fresh["access_token"] != body["access_token"]
    assert js(msi_proc("verify", fresh["access_token"], "-o", "json"))["header"]["kid"] == rolled["signingKid"]
