"""The local token endpoint (`msi serve`, `msi env`): each host protocol's request rules and exact
error bodies, live state, hostile input, fault injection and the server's lifecycle.

Most tests run the server in-process on a background thread (fast to start, same state file as
the `cli` fixture); the lifecycle tests run `msi serve` as a subprocess, as a user would. Tokens
are checked with PyJWT against the JWKS the server publishes."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import jwt
import pytest

from conftest import msi_executable
from manualclock import ManualClock

VAULT = "https://vault.azure.net"
IMDS_PATH = "/metadata/identity/oauth2/token"
IMDS_FIELDS = ["access_token", "expires_in", "expires_on", "ext_expires_in", "not_before",
               "resource", "token_type", "client_id"]  # no refresh_token, as IMDS sends it
NO_USER_ASSIGNED = "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
UNEXPECTED = "An unexpected error occured while fetching the AAD Token."  # sic
APPSERVICE_FIELDS = ["access_token", "expires_on", "resource", "token_type", "client_id", "not_before"]
MULTIPLE = "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"
BAD_API_VERSION = {
    "error": "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds",
    "newest-versions": ["2025-04-07", "2024-07-17", "2024-03-15"],
}
UNABLE = "Unable to load the proper Managed Identity."
TIMEOUT = 10


# ---- helpers ---------------------------------------------------------------------------------------


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        return json.loads(self.body)


class Endpoint:
    """HTTP against a running server; one persistent connection unless told otherwise."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> Reply:
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers)

    def close(self) -> None:
        self.conn.close()


def rid_path(resource_id: str) -> str:
    return quote(resource_id, safe="/()!$&'*+,;=:@-._~")


def imds_path(resource_id: str, api_version: str = "2018-02-01", **params) -> str:
    query = {"api-version": api_version, "resource": VAULT}
    query.update({k: v for k, v in params.items() if v is not None})
    return rid_path(resource_id) + IMDS_PATH + "?" + urlencode(query)


def app_path(resource_id: str, version: str = "2019-08-01", **params) -> str:
    query = {"resource": VAULT, "api-version": version}
    query.update({k: v for k, v in params.items() if v is not None})
    return rid_path(resource_id) + "/msi/token?" + urlencode(query)


META = {"Metadata": "true"}


def raw_exchange(url: str, data: bytes, read_timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection; return everything the server sends until it closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=read_timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def verify(url: str, token: str, tenant_id: str, audience: str = VAULT) -> dict:
    """Check a token as a resource server would: discovery document, then JWKS, then PyJWT."""
    ep = Endpoint(url)
    try:
        config = ep.get(f"/{tenant_id}/.well-known/openid-configuration").json
        jwks = ep.get(urlsplit(config["jwks_uri"]).path).json
    finally:
        ep.close()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid), algorithm="RS256")
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=config["issuer"])


# ---- fixtures --------------------------------------------------------------------------------------


class World:
    """The objects every test uses, by name: ids, client ids, principal ids. Built once per module
    through the CLI; each test gets its own copy of the state files (keys included)."""

    def __init__(self, run) -> None:
        run("create-identity", "uai1")
        run("create-identity", "uai2")
        run("create-resource", "vm1", "--type", "vm", "--system-assigned")
        run("create-resource", "vm2", "--type", "vm", "--user-assigned", "uai1", "--user-assigned", "uai2")
        run("create-resource", "vm3", "--type", "vm")
        run("create-resource", "web1", "--type", "webapp", "--system-assigned", "--user-assigned", "uai1")
        run("create-resource", "func1", "--type", "functionapp", "--user-assigned", "uai1", "--user-assigned", "uai2")
        run("create-resource", "ca1", "--type", "containerapp", "--system-assigned")
        run("create-resource", "kv1", "--type", "keyvault")
        run("token", "ca1", "--audience", "https://management.azure.com")  # the tenant's signing key, made once
        self.res = {name: run("show", name) for name in ("vm1", "vm2", "vm3", "web1", "func1", "ca1", "kv1")}
        self.uai = {name: run("show", name) for name in ("uai1", "uai2")}
        self.tenant = run("list", "tenants")[0]["tenantId"]

    def id(self, name: str) -> str:
        return self.res[name]["id"] if name in self.res else self.uai[name]["id"]


@pytest.fixture(scope="module")
def world_template(tmp_path_factory) -> tuple[World, Path]:
    from typer.testing import CliRunner

    from msi_cli.cli import app

    folder = tmp_path_factory.mktemp("world") / "state"
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, ["--state", str(folder / "state.toml"), "--create", *args, "-o", "json"], prog_name="msi")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    return World(run), folder


@pytest.fixture
def world(world_template, isolated_state: Path) -> World:
    data, folder = world_template
    shutil.copytree(folder, isolated_state.parent, dirs_exist_ok=True)
    return data


@pytest.fixture
def serve(isolated_state: Path):
    """Start an in-process server for the test's state: serve(faults=[...], request_timeout=...).
    Its monotonic clock stands still until the test moves it (the wall clock runs, as the CLI's does): `serve.clock.advance(s)` (also `ep.clock`)."""
    from msi_cli.server import faults as fault_specs
    from msi_cli.server.service import Server
    from msi_cli.server.background import ServerThread
    from msi_cli.store.statefile import StateFile

    started: list[ServerThread] = []
    logs: list[str] = []
    clock = ManualClock()

    def start(faults: tuple[str, ...] = (), request_timeout: float = 5.0) -> Endpoint:
        server = Server(StateFile(isolated_state), faults=[fault_specs.parse(f) for f in faults],
                        request_timeout=request_timeout, log=logs.append, clock=clock)
        thread = ServerThread(server)
        started.append(thread)
        endpoint = Endpoint(thread.start())
        endpoint.clock = clock
        return endpoint

    start.logs = logs
    start.clock = clock
    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def ep(world, serve) -> Endpoint:
    endpoint = serve()
    yield endpoint
    endpoint.close()


def secret_of(cli, name: str) -> str:
    return cli.json("env", name)["IDENTITY_HEADER"]


# ---- IMDS ------------------------------------------------------------------------------------------


def test_imds_token_for_the_system_assigned_identity_verifies(ep, world):
    reply = ep.get(imds_path(world.id("vm1")), META)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    body = reply.json
    assert list(body) == IMDS_FIELDS
    assert all(isinstance(v, str) for v in body.values())
    assert body["token_type"] == "Bearer" and body["resource"] == VAULT and "refresh_token" not in body
    assert body["ext_expires_in"] == "86400"  # as issued, like expires_in on a fresh token
    claims = verify(ep.url, body["access_token"], world.tenant)
    assert claims["oid"] == world.res["vm1"]["identity"]["principalId"]
    assert claims["appid"] == body["client_id"]
    assert claims["tid"] == world.tenant and claims["iss"] == f"https://sts.windows.net/{world.tenant}/"
    assert int(body["expires_on"]) == claims["exp"] and int(body["expires_in"]) > 86000


def test_imds_cache_hit_returns_the_same_token_counting_down(ep, world):
    first = ep.get(imds_path(world.id("vm1")), META).json
    ep.clock.advance(1.1)
    second = ep.get(imds_path(world.id("vm1")), META).json
    assert second["access_token"] == first["access_token"]
    assert int(second["expires_in"]) < int(first["expires_in"])


@pytest.mark.parametrize("headers", [{}, {"Metadata": "True"}, {"Metadata": "false"}, {"Metadata": ""}])
def test_imds_requires_the_metadata_header_in_lower_case(ep, world, headers):
    reply = ep.get(imds_path(world.id("vm1")), headers)
    assert reply.status == 400
    assert reply.json == {"error": "invalid_request", "error_description": "Required metadata header not specified"}


def test_imds_rejects_x_forwarded_for(ep, world):
    reply = ep.get(imds_path(world.id("vm1")), {**META, "X-Forwarded-For": "10.0.0.1"})
    assert reply.status == 400
    assert reply.json == {"error": "invalid_request", "error_description": "Requests must not contain the X-Forwarded-For header"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
def test_imds_only_answers_get(ep, world, method):
    reply = ep.request(method, imds_path(world.id("vm1")), META, body=b"x=1" if method != "HEAD" else None)
    assert reply.status == 405
    assert reply.headers["allow"] == "GET"
    if method != "HEAD":
        assert reply.json == {"error": "invalid_request", "error_description": "The HTTP method (verb) isn't supported on the endpoint."}
    assert ep.get(imds_path(world.id("vm1")), META).status == 200  # same connection, still in step


@pytest.mark.parametrize("query, status, description", [
    (f"&api-version=2018-02-01&&resource={VAULT}&", 200, None),  # empty fields are skipped
    (f"api-version=2018-02-01&resource={VAULT}&client_id", 400, None),  # a bare name is an empty value
    ("api-version=2018-02-01&resource", 400, "Required audience parameter not specified"),
    (f"api-version=2018-02-01&resource={VAULT}&x=%ff", 400, "The query string cannot be decoded"),
    (f"api-version=2018-02-01&resource={VAULT}" + "&x=1" * 62, 400, "Requests with duplicate query parameter names are rejected: x"),
    (f"api-version=2018-02-01&resource={VAULT}" + "&x=1" * 63, 400, "The query string cannot be decoded"),  # 65 fields
])
def test_imds_query_string_edge_cases(ep, world, query, status, description):
    reply = ep.get(rid_path(world.id("vm1")) + IMDS_PATH + "?" + query, META)
    assert reply.status == status
    if description is not None:
        assert reply.json["error_description"] == description


def test_imds_rejects_duplicate_query_parameters(ep, world):
    path = rid_path(world.id("vm1")) + IMDS_PATH + f"?api-version=2018-02-01&resource={VAULT}&resource={VAULT}"
    reply = ep.get(path, META)
    assert reply.status == 400
    assert reply.json == {"error": "invalid_request", "error_description": "Requests with duplicate query parameter names are rejected: resource"}


@pytest.mark.parametrize("version", [None, "", "2017-12-01", "2018-02-02", "latest", "2099-01-01"])
def test_imds_rejects_a_missing_or_unsupported_api_version(ep, world, version):
    path = rid_path(world.id("vm1")) + IMDS_PATH + "?" + urlencode({"resource": VAULT, **({"api-version": version} if version is not None else {})})
    reply = ep.get(path, META)
    assert reply.status == 400
    assert reply.json == BAD_API_VERSION


@pytest.mark.parametrize("version", ["2018-02-01", "2019-08-01", "2021-02-01", "2025-04-07"])
def test_imds_accepts_supported_api_versions(ep, world, version):
    assert ep.get(imds_path(world.id("vm1"), api_version=version), META).status == 200


def test_imds_requires_a_resource(ep, world):
    path = rid_path(world.id("vm1")) + IMDS_PATH + "?api-version=2018-02-01"
    reply = ep.get(path, META)
    assert reply.status == 400
    assert reply.json == {"error": "invalid_request", "error_description": "Required audience parameter not specified"}


def test_imds_selectors_pick_user_assigned_identities(ep, world):
    uai1, uai2 = world.uai["uai1"], world.uai["uai2"]
    by_client = ep.get(imds_path(world.id("vm2"), client_id=uai1["clientId"]), META).json
    assert by_client["client_id"] == uai1["clientId"]
    by_object = ep.get(imds_path(world.id("vm2"), object_id=uai2["principalId"]), META).json
    assert verify(ep.url, by_object["access_token"], world.tenant)["oid"] == uai2["principalId"]
    for name in ("msi_res_id", "mi_res_id"):
        reply = ep.get(imds_path(world.id("vm2"), **{name: uai1["id"]}), META)
        claims = verify(ep.url, reply.json["access_token"], world.tenant)
        assert claims["xms_mirid"].lower() == uai1["id"].lower()
        assert claims["xms_az_rid"].lower() == world.id("vm2").lower()


def test_imds_several_user_assigned_without_a_selector(ep, world):
    reply = ep.get(imds_path(world.id("vm2")), META)
    assert reply.status == 400
    assert reply.json == {"error": "invalid_request", "error_description": MULTIPLE}


@pytest.mark.parametrize("resource,params", [
    ("vm3", {}),  # no identity at all
    ("vm1", {"client_id": "00000000-0000-0000-0000-000000000000"}),
    ("vm2", {"object_id": "00000000-0000-0000-0000-000000000000"}),
    ("vm2", {"msi_res_id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope"}),
])
def test_imds_unknown_identity(ep, world, resource, params):
    reply = ep.get(imds_path(world.id(resource), **params), META)
    assert reply.status == 400
    assert reply.json == {"error": "invalid_request", "error_description": "Identity not found"}


def test_imds_at_most_one_selector(ep, world):
    uai1 = world.uai["uai1"]
    for params in ({"client_id": uai1["clientId"], "object_id": uai1["principalId"]},
                   {"msi_res_id": uai1["id"], "mi_res_id": uai1["id"]}):
        reply = ep.get(imds_path(world.id("vm2"), **params), META)
        assert reply.status == 400
        assert reply.json["error"] == "invalid_request"
        assert reply.json["error_description"].startswith("Only one of client_id, object_id or msi_res_id")


def test_imds_unknown_audience(ep, world):
    reply = ep.get(imds_path(world.id("vm1"), resource="https://nothing.example.com"), META)
    assert reply.status == 400
    body = reply.json
    assert body["error"] == "invalid_resource"
    assert body["error_description"].startswith(
        "AADSTS500011: The resource principal named https://nothing.example.com was not found in the tenant named Default Directory.")


def test_container_apps_speak_the_app_service_protocol(ep, world, cli):
    assert ep.get(imds_path(world.id("ca1")), META).status == 404  # no IMDS in a container app
    secret = {"X-IDENTITY-HEADER": secret_of(cli, "ca1")}
    reply = ep.get(app_path(world.id("ca1")), secret)
    assert reply.status == 200 and list(reply.json) == APPSERVICE_FIELDS
    assert verify(ep.url, reply.json["access_token"], world.tenant)["oid"] == world.res["ca1"]["identity"]["principalId"]
    reply = ep.get(app_path(world.id("ca1"), client_id="00000000-0000-0000-0000-000000000000"), secret)
    assert reply.status == 400 and reply.json["message"] == NO_USER_ASSIGNED
    reply = ep.get(app_path(world.id("ca1"), resource="https://nothing.example.com"), secret)
    assert reply.status == 500 and reply.json["message"] == UNEXPECTED


@pytest.mark.parametrize("path", [
    "/",
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/x/providers/Microsoft.Compute/virtualMachines/none/metadata/identity/oauth2/token",
])
def test_unknown_paths_are_404(ep, path):
    reply = ep.get(path, META)
    assert reply.status == 404
    assert reply.json["error"] == "not_found"


def test_a_resource_only_has_its_own_hosts_endpoint(ep, world):
    assert ep.get(imds_path(world.id("web1")), META).status == 404  # web apps speak App Service
    assert ep.get(app_path(world.id("vm1")), {"X-IDENTITY-HEADER": "x"}).status == 404  # VMs speak IMDS
    assert ep.get(imds_path(world.id("kv1")), META).status == 404  # a key vault has no endpoint


# ---- App Service -----------------------------------------------------------------------------------


def test_app_service_token(ep, world, cli):
    reply = ep.get(app_path(world.id("web1")), {"X-IDENTITY-HEADER": secret_of(cli, "web1")})
    assert reply.status == 200
    body = reply.json
    assert list(body) == APPSERVICE_FIELDS
    assert body["expires_on"].isdigit() and body["not_before"].isdigit()
    claims = verify(ep.url, body["access_token"], world.tenant)
    assert claims["oid"] == world.res["web1"]["identity"]["principalId"]
    assert claims["appid"] == body["client_id"] and claims["exp"] == int(body["expires_on"])


def test_app_service_legacy_2017_09_01(ep, world, cli):
    secret = secret_of(cli, "web1")
    reply = ep.get(app_path(world.id("web1"), "2017-09-01"), {"secret": secret})
    assert reply.status == 200
    body = reply.json
    assert list(body) == ["access_token", "expires_on", "resource", "token_type"]
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \+00:00", body["expires_on"])
    exp = verify(ep.url, body["access_token"], world.tenant)["exp"]
    assert body["expires_on"] == time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(exp))
    uai1 = world.uai["uai1"]
    by_client = ep.get(app_path(world.id("web1"), "2017-09-01", clientid=uai1["clientId"]), {"secret": secret})
    assert verify(ep.url, by_client.json["access_token"], world.tenant)["appid"] == uai1["clientId"]
    # the legacy protocol's header is `secret`, the current one's X-IDENTITY-HEADER
    assert ep.get(app_path(world.id("web1"), "2017-09-01"), {"X-IDENTITY-HEADER": secret}).status == 401
    assert ep.get(app_path(world.id("web1")), {"secret": secret}).status == 401


@pytest.mark.parametrize("header", [None, "", "wrong", "web2"])
def test_app_service_wrong_identity_header(ep, world, cli, header):
    if header == "web2":  # another app's secret does not open this one
        header = secret_of(cli, "func1")
    reply = ep.get(app_path(world.id("web1")), {} if header is None else {"X-IDENTITY-HEADER": header})
    assert reply.status == 401
    body = reply.json
    assert list(body) == ["statusCode", "message", "correlationId"]
    assert body["statusCode"] == 401
    assert body["message"] == "The X-IDENTITY-HEADER header is missing or does not match this app's identity secret."
    assert re.fullmatch(r"[0-9a-f-]{36}", body["correlationId"])
    assert reply.headers["x-correlation-id"] == body["correlationId"]


def test_app_service_selectors(ep, world, cli):
    secret = {"X-IDENTITY-HEADER": secret_of(cli, "func1")}
    uai1, uai2 = world.uai["uai1"], world.uai["uai2"]
    cases = [({"client_id": uai1["clientId"]}, uai1), ({"principal_id": uai2["principalId"]}, uai2),
             ({"object_id": uai1["principalId"]}, uai1), ({"mi_res_id": uai2["id"]}, uai2)]
    for params, expected in cases:
        reply = ep.get(app_path(world.id("func1"), **params), secret)
        assert reply.status == 200, (params, reply.body)
        assert verify(ep.url, reply.json["access_token"], world.tenant)["oid"] == expected["principalId"]


@pytest.mark.parametrize(("params", "message"), [
    ({}, UNABLE),  # no selector and no system-assigned identity
    ({"client_id": "00000000-0000-0000-0000-000000000000"}, NO_USER_ASSIGNED),
    ({"principal_id": "nope"}, NO_USER_ASSIGNED),
])
def test_app_service_unknown_or_ambiguous_identity(ep, world, cli, params, message):
    reply = ep.get(app_path(world.id("func1"), **params), {"X-IDENTITY-HEADER": secret_of(cli, "func1")})
    assert reply.status == 400
    body = reply.json
    assert body["statusCode"] == 400 and body["message"] == message and body["correlationId"]


def test_app_service_at_most_one_selector(ep, world, cli):
    uai1 = world.uai["uai1"]
    reply = ep.get(app_path(world.id("func1"), principal_id=uai1["principalId"], object_id=uai1["principalId"]),
                   {"X-IDENTITY-HEADER": secret_of(cli, "func1")})
    assert reply.status == 400
    assert reply.json["message"].startswith("Only one of client_id, principal_id (object_id) or mi_res_id")


@pytest.mark.parametrize("version", [None, "", "2018-02-01", "2019-08-02"])
def test_app_service_bad_api_version(ep, world, cli, version):
    path = rid_path(world.id("web1")) + "/msi/token?" + urlencode({"resource": VAULT, **({"api-version": version} if version is not None else {})})
    reply = ep.get(path, {"X-IDENTITY-HEADER": secret_of(cli, "web1")})
    assert reply.status == 400
    assert reply.json["message"] == "Unsupported/Invalid api-version parameter" and reply.json["statusCode"] == 400


def test_app_service_request_rules(ep, world, cli):
    secret = {"X-IDENTITY-HEADER": secret_of(cli, "web1")}
    reply = ep.request("POST", app_path(world.id("web1")), secret, body=b"")
    assert reply.status == 405 and reply.json["statusCode"] == 405 and reply.headers["allow"] == "GET"
    reply = ep.get(rid_path(world.id("web1")) + f"/msi/token?api-version=2019-08-01&resource={VAULT}&client_id=a&client_id=b", secret)
    assert reply.status == 400 and reply.json["message"] == "Duplicate query parameters are not allowed: client_id"
    reply = ep.get(rid_path(world.id("web1")) + "/msi/token?api-version=2019-08-01", secret)
    assert reply.status == 400 and reply.json["message"] == "The resource parameter is required."
    # an unknown audience: App Service answers 500 (clients retry it); IMDS keeps its 400 AADSTS500011
    reply = ep.get(app_path(world.id("web1"), resource="https://nothing.example.com"), secret)
    assert reply.status == 500 and reply.json["message"] == UNEXPECTED and reply.json["statusCode"] == 500


# ---- discovery -------------------------------------------------------------------------------------


def test_openid_configuration_and_jwks(ep, world):
    ep.get(imds_path(world.id("vm1")), META)  # the tenant's first token creates its signing key
    for ref in (world.tenant, world.tenant.upper()):
        reply = ep.get(f"/{ref}/.well-known/openid-configuration")
        assert reply.status == 200
        config = reply.json
        assert config["issuer"] == f"https://sts.windows.net/{world.tenant}/"
        assert config["jwks_uri"] == f"{ep.url}/{world.tenant}/discovery/keys"
        assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = ep.get(f"/{world.tenant}/discovery/keys").json["keys"]
    assert keys and all({"kty", "use", "kid", "x5t", "n", "e", "x5c"} <= set(k) for k in keys)
    # Entra names a tenant by its id (or a verified domain), never by its display name
    for path in ("/Default%20Directory/.well-known/openid-configuration", "/default%20directory/v2.0/.well-known/openid-configuration",
                 "/Default%20Directory/discovery/keys", "/Default%20Directory/discovery/v2.0/keys"):
        reply = ep.get(path)
        assert reply.status == 400 and reply.json["error"] == "invalid_tenant", path
        assert reply.json["error_description"].startswith("AADSTS90002: Tenant '"), path
    assert all(k["use"] == "sig" and k["kty"] == "RSA" for k in keys)


def test_jwks_of_a_tenant_that_never_signed_has_its_signing_key(ep, world, cli):
    fresh = cli.json("create-tenant", "Northwind")["tenantId"]
    keys = ep.get(f"/{fresh}/discovery/keys").json["keys"]
    assert len(keys) == 2 and keys[0]["kty"] == "RSA"  # the signing key and the next one
    assert ep.get(f"/{fresh}/discovery/keys").json["keys"] == keys  # made once, then served as is
    assert cli.json("jwks", "--tenant", "Northwind")["keys"] == keys


def test_discovery_unknown_tenant_and_methods(ep):
    reply = ep.get("/00000000-0000-0000-0000-000000000000/.well-known/openid-configuration")
    assert reply.status == 400
    assert reply.json["error"] == "invalid_tenant"
    assert reply.json["error_description"].startswith("AADSTS90002: Tenant '00000000-0000-0000-0000-000000000000' not found.")
    assert ep.get("/nope/discovery/keys").status == 400
    assert ep.request("POST", "/nope/discovery/keys", body=b"").status == 405


# ---- live state ------------------------------------------------------------------------------------


def test_cli_changes_apply_to_the_next_request(ep, world, cli):
    first = ep.get(imds_path(world.id("vm1")), META).json
    old_oid = verify(ep.url, first["access_token"], world.tenant)["oid"]
    cli.ok("unassign", "vm1", "--system-assigned", "-o", "none")
    reply = ep.get(imds_path(world.id("vm1")), META)
    assert reply.status == 400 and reply.json["error_description"] == "Identity not found"
    cli.ok("assign", "vm1", "-o", "none")  # a new identity: new principal, new token
    again = ep.get(imds_path(world.id("vm1")), META).json
    new_oid = verify(ep.url, again["access_token"], world.tenant)["oid"]
    assert new_oid != old_oid and new_oid == cli.json("show", "vm1")["identity"]["principalId"]
    # a resource created while the server runs is served at once, secret included
    cli.ok("create-resource", "web9", "--type", "webapp", "--system-assigned", "-o", "none")
    web9 = cli.json("show", "web9")["id"]
    assert ep.get(app_path(web9), {"X-IDENTITY-HEADER": secret_of(cli, "web9")}).status == 200
    cli.ok("delete", "web9", "--yes", "-o", "none")
    assert ep.get(app_path(web9), {"X-IDENTITY-HEADER": "any"}).status == 404


def test_clock_moves_reach_the_token_cache(ep, world, cli):
    first = ep.get(imds_path(world.id("vm1")), META).json
    cli.ok("clock", "advance", "1d")  # the cached token now has less than five minutes left
    second = ep.get(imds_path(world.id("vm1")), META).json
    assert second["access_token"] != first["access_token"]
    assert int(second["expires_on"]) >= int(first["expires_on"]) + 86000


def test_a_token_minted_by_the_cli_is_a_cache_hit_for_the_server(ep, world, cli):
    minted = cli.json("token", "vm1", "--audience", VAULT)
    assert ep.get(imds_path(world.id("vm1")), META).json["access_token"] == minted["access_token"]


def test_a_broken_state_file_is_a_500_and_the_server_recovers(ep, world, isolated_state):
    good = isolated_state.read_bytes()
    isolated_state.write_bytes(b"this is = not [valid toml")
    reply = ep.get(imds_path(world.id("vm1")), META)
    assert reply.status == 500 and reply.json["error"] == "unknown"
    isolated_state.write_bytes(good)
    assert ep.get(imds_path(world.id("vm1")), META).status == 200


# ---- hostile input ---------------------------------------------------------------------------------


def healthy(ep: Endpoint, world) -> None:
    fresh = Endpoint(ep.url)
    try:
        assert fresh.get(imds_path(world.id("vm1")), META).status == 200
    finally:
        fresh.close()


@pytest.mark.parametrize("data,status", [
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET nopath HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nbad name: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
    ("GET /\u00e9 HTTP/1.1\r\n\r\n".encode("utf-8"), 400),
    (b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
])
def test_garbage_gets_an_error_and_a_closed_connection(ep, world, data, status):
    raw = raw_exchange(ep.url, data)
    assert raw.startswith(b"HTTP/1.1 ") and status_of(raw) == status
    assert b"Connection: close" in raw
    healthy(ep, world)


def test_random_bytes_never_hurt_the_server(ep, world):
    rng = random.Random(5)
    for n in range(60):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        if n % 2:
            blob += b"\r\n\r\n"
        parts = urlsplit(ep.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=2) as sock:
            sock.sendall(blob)
            sock.shutdown(socket.SHUT_WR)  # half-close: the server must not wait forever
            try:
                while sock.recv(4096):
                    pass
            except TimeoutError:
                pytest.fail("the server kept a half-closed connection open")
    healthy(ep, world)


def test_half_open_connections_time_out_and_do_not_block_others(world, serve):
    ep = serve(request_timeout=30)  # past the sockets' own 5 s timeout: only moving the clock can close them
    parts = urlsplit(ep.url)
    idle = [socket.create_connection((parts.hostname, parts.port), timeout=5) for _ in range(40)]
    try:
        for sock in idle[:20]:
            sock.sendall(b"GET /partial-request-line")  # never finished
        healthy(ep, world)  # served while 40 connections hang: the clock stands still, none has timed out
        ep.clock.advance(31)  # past their deadline
        for sock in idle:  # each is closed by the server after its deadline (a socket timeout bounds the wait)
            assert closed_by_server(sock)
    finally:
        for sock in idle:
            sock.close()
    healthy(ep, world)


def test_keep_alive_pipelining_and_http_1_0(ep, world):
    path = imds_path(world.id("vm1")).encode()
    request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n"
    raw = raw_exchange(ep.url, request + request + b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 OK") == 2 and raw.count(b"HTTP/1.1 404 Not Found") == 1
    raw = raw_exchange(ep.url, b"GET " + path + b" HTTP/1.0\r\nMetadata: true\r\n\r\n")
    assert status_of(raw) == 200 and b"Connection: close" in raw


def test_chunked_body_is_refused_then_the_connection_closes(ep, world):
    data = (b"POST " + imds_path(world.id("vm1")).encode() + b" HTTP/1.1\r\nMetadata: true\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    raw = raw_exchange(ep.url, data)
    assert status_of(raw) == 411 and b"Connection: close" in raw  # a body msi does not read is never dropped silently
    healthy(ep, world)


def test_secrets_are_compared_in_constant_time():
    import inspect

    from msi_cli.server import appservice

    assert "hmac.compare_digest" in inspect.getsource(appservice.parse)


# ---- fault injection -------------------------------------------------------------------------------


def test_fault_410_for_a_count(world, serve):
    ep = serve(faults=("vm1:410:count=2",))
    for _ in range(2):
        reply = ep.get(imds_path(world.id("vm1")), META)
        assert reply.status == 410
        assert reply.json == {"error": "gone", "error_description": "The identity endpoint is being updated and will be available within 70 seconds"}
    assert ep.get(imds_path(world.id("vm1")), META).status == 200
    assert ep.get(imds_path(world.id("vm2")), META).status != 410  # other resources are untouched


def test_fault_5xx_for_a_share(world, serve):
    ep = serve(faults=("vm1:503:share=50%",))
    replies = [ep.get(imds_path(world.id("vm1")), META) for _ in range(6)]
    assert [r.status for r in replies] == [200, 503, 200, 503, 200, 503]
    assert replies[1].json == {"error": "unknown", "error_description": "Failed to retrieve token from the Active directory."}


def test_faults_chain_in_order(world, serve):
    ep = serve(faults=("vm1:503:count=1", "vm1:429:count=1", "vm1:410:share=50%"))
    statuses = [ep.get(imds_path(world.id("vm1")), META).status for _ in range(6)]
    assert statuses == [503, 429, 200, 410, 200, 410]


def test_fault_bodies_follow_the_hosts_protocol(world, serve, cli):
    ep = serve(faults=("web1:429",))
    reply = ep.get(app_path(world.id("web1")), {"X-IDENTITY-HEADER": secret_of(cli, "web1")})
    assert reply.status == 429
    assert reply.json["statusCode"] == 429 and reply.json["message"] == "Too many requests." and reply.json["correlationId"]


def test_throttle_past_20_requests_per_second(world, serve, cli):
    cli.ok("token", "vm1", "--audience", VAULT, "-o", "none")  # cached: no slow first mint inside the window
    ep = serve(faults=("vm1:throttle",))
    statuses = [ep.get(imds_path(world.id("vm1")), META).status for _ in range(30)]
    assert statuses[:20] == [200] * 20  # 30 requests take well under a second
    assert set(statuses[20:]) == {429}
    reply = ep.get(imds_path(world.id("vm1")), META)
    assert reply.json["error"] == "too_many_requests"
    ep.clock.advance(1.05)  # the one-second window has passed
    assert ep.get(imds_path(world.id("vm1")), META).status == 200


def test_throttle_past_5_concurrent_requests(world, serve, cli):
    cli.ok("token", "vm1", "--audience", VAULT, "-o", "none")
    ep = serve(faults=("vm1:throttle", "vm1:latency=400ms"))
    statuses: list[int] = []

    def one() -> None:
        e = Endpoint(ep.url)
        try:
            statuses.append(e.get(imds_path(world.id("vm1")), META).status)
        finally:
            e.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    ep.clock.wait_for_sleepers(8)  # every request is in its 400 ms latency (5 admitted, 3 to be throttled)
    ep.clock.advance(0.4)
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(statuses) == [200] * 5 + [429] * 3


def test_latency_fault(world, serve):
    from concurrent.futures import ThreadPoolExecutor

    ep = serve(faults=("*:latency=300ms:count=1",))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(ep.get, imds_path(world.id("vm1")), META)
        assert ep.clock.wait_for_sleepers(1) and not first.done()  # held until the clock moves 300 ms
        ep.clock.advance(0.3)
        assert first.result(TIMEOUT).status == 200
    assert ep.clock.slept == [0.3]
    assert ep.get(imds_path(world.id("vm1")), META).status == 200
    assert ep.clock.slept == [0.3]  # the second request (past count=1) waited for nothing


@pytest.mark.parametrize("spec", ["vm1", "vm1:404", "vm1:500:count=0", "vm1:500:share=2", "vm1:latency=fast",
                                  "vm1:throttle:count=2", "vm1:500:count=1:share=0.5", ":500"])
def test_bad_fault_specs_are_usage_errors(cli, spec):
    result = cli("serve", "--fault", spec)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: invalid fault '{spec}'")


# ---- msi env ---------------------------------------------------------------------------------------


def test_env_without_a_server(cli, world):
    result = cli("env", "vm1")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no 'msi serve' is running for state ")


def test_env_for_each_host(ep, world, cli):
    vm = cli.json("env", "vm1")
    assert vm == {"AZURE_POD_IDENTITY_AUTHORITY_HOST": ep.url + rid_path(world.id("vm1"))}
    web = cli.json("env", "web1")
    assert list(web) == ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"]  # App Service sets both pairs
    assert web["IDENTITY_ENDPOINT"] == web["MSI_ENDPOINT"] == ep.url + rid_path(world.id("web1")) + "/msi/token"
    assert re.fullmatch(r"[0-9a-f]{64}", web["IDENTITY_HEADER"]) and web["MSI_SECRET"] == web["IDENTITY_HEADER"]
    ca = cli.json("env", world.id("ca1"))
    assert list(ca) == ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]
    assert ca["IDENTITY_ENDPOINT"] == ep.url + rid_path(world.id("ca1")) + "/msi/token"
    assert cli.json("env", "vm1", "--client-id", "abc")["AZURE_CLIENT_ID"] == "abc"
    result = cli("env", "kv1")
    assert result.exit_code == 1 and "has no managed identity token endpoint" in result.stderr
    assert cli("env", "nothing").exit_code == 3


def test_env_query_and_tsv(ep, world, cli):
    secret = cli.json("env", "web1")["IDENTITY_HEADER"]
    assert cli.ok("env", "web1", "--query", "IDENTITY_HEADER", "-o", "tsv").stdout == secret + "\n"
    lines = cli.ok("env", "web1", "-o", "tsv").stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"]


def test_env_shell_syntaxes(ep, world, cli):
    url = ep.url + rid_path(world.id("vm1"))
    bash = cli.ok("env", "vm1", "--shell", "bash").stdout
    assert f"export AZURE_POD_IDENTITY_AUTHORITY_HOST={url}\n" in bash
    assert "unset IDENTITY_ENDPOINT\n" in bash and "unset IDENTITY_HEADER\n" in bash
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "IDENTITY_SERVER_THUMBPRINT",
                 "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"):
        assert f"unset {name}\n" in bash  # a CI shell's own identity must not win
    assert cli.ok("env", "vm1", "--shell", "zsh").stdout == bash
    fish = cli.ok("env", "web1", "--shell", "fish").stdout
    assert "set -e AZURE_POD_IDENTITY_AUTHORITY_HOST\n" in fish and "set -gx IDENTITY_HEADER '" in fish
    ps = cli.ok("env", "web1", "--shell", "powershell").stdout
    assert "$Env:IDENTITY_ENDPOINT = '" in ps and "Remove-Item Env:AZURE_POD_IDENTITY_AUTHORITY_HOST" in ps
    env = dict(os.environ)
    out = subprocess.run(["bash", "-c", bash + 'printf %s "$AZURE_POD_IDENTITY_AUTHORITY_HOST"'], capture_output=True,
                         text=True, env=env, timeout=TIMEOUT)
    assert out.stdout == url


# ---- the process: server.json, second server, clean stop -------------------------------------------


def start_process(msi_env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*msi_executable(), "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=msi_env)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(30)
    if not line or not line[0].startswith("http://127.0.0.1:"):
        proc.kill()
        proc.wait(TIMEOUT)
        pytest.fail(f"msi serve did not start: {proc.stderr.read()}")
    return proc, line[0].strip()


@pytest.fixture
def msi_env(isolated_state: Path) -> dict:
    env = dict(os.environ)
    env["MSI_STATE"] = str(isolated_state)
    return env


@pytest.fixture
def processes():
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_server_json_lifecycle_and_clean_stop(world, msi_env, isolated_state, processes, msi_proc, sig):
    proc, url = start_process(msi_env)
    processes.append(proc)
    record_path = isolated_state.parent / (isolated_state.name + ".d") / "server.json"
    record = json.loads(record_path.read_text())
    assert record["url"] == url and record["pid"] == proc.pid and record["host"] == "127.0.0.1"
    assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(record_path.parent.stat().st_mode) == 0o700
    env_out = msi_proc("env", "vm1", "-o", "json")
    assert env_out.returncode == 0 and json.loads(env_out.stdout)["AZURE_POD_IDENTITY_AUTHORITY_HOST"].startswith(url)
    second = msi_proc("serve", timeout=30)  # one server per state
    assert second.returncode == 1
    assert second.stderr.startswith(f"error: a server is already running for this state at {url} (pid {proc.pid})")
    ep = Endpoint(url)
    assert ep.get(imds_path(world.id("vm1")), META).status == 200  # a live keep-alive connection at stop time
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=TIMEOUT)
    ep.close()
    assert proc.returncode in (0, 130)
    assert "Traceback" not in err and err.rstrip().endswith("stopped")
    assert out == ""  # the address line was read at start
    assert not record_path.exists()
    gone = msi_proc("env", "vm1")
    assert gone.returncode == 1 and "no 'msi serve' is running" in gone.stderr


def test_a_port_in_use_is_a_clear_error(world, cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr


def test_a_stale_server_json_is_ignored(world, msi_env, isolated_state, processes, msi_proc):
    record_path = isolated_state.parent / (isolated_state.name + ".d") / "server.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    record_path.write_text(json.dumps({"format": 1, "url": "http://127.0.0.1:9", "host": "127.0.0.1", "port": 9,
                                       "pid": dead.pid, "started": "x", "identityHeaderKey": "00"}))
    assert msi_proc("env", "vm1").returncode == 1
    proc, url = start_process(msi_env)
    processes.append(proc)
    assert json.loads(record_path.read_text())["pid"] == proc.pid


def test_errors_are_logged_without_secrets(world, serve, cli):
    ep = serve()
    secret = secret_of(cli, "web1")
    ep.get(app_path(world.id("web1")), {"X-IDENTITY-HEADER": secret + "x"})
    token = ep.get(app_path(world.id("web1")), {"X-IDENTITY-HEADER": secret}).json["access_token"]
    ep.get(imds_path(world.id("vm3")), META)
    logs = "\n".join(serve.logs)
    assert " 401 " in logs and "X-IDENTITY-HEADER missing or wrong" in logs
    assert "'vm3' has no managed identity" in logs
    assert secret not in logs and token not in logs and token.split(".")[1] not in logs


def test_two_servers_started_at_once_on_one_state_cannot_both_serve(world, isolated_state):
    """The record is written only once a server listens; the lock it takes first decides, so
    two starts at the same moment cannot both pass the record's check."""
    import asyncio

    from msi_cli.errors import MsiError
    from msi_cli.server.service import Server
    from msi_cli.store.statefile import StateFile

    async def both() -> list[object]:
        first, second = Server(StateFile(isolated_state), log=lambda m: None), Server(StateFile(isolated_state), log=lambda m: None)
        results = await asyncio.gather(first.start(), second.start(), return_exceptions=True)
        for server, result in zip((first, second), results):
            if not isinstance(result, BaseException):
                await server.stop()
        return results

    results = asyncio.run(both())
    refused = [r for r in results if isinstance(r, MsiError)]
    assert len(refused) == 1 and "a server is already running for this state" in refused[0].message, results
    served = [r for r in results if isinstance(r, str)]
    assert len(served) == 1 and served[0].startswith("http://127.0.0.1:")
    again = asyncio.run(both())  # the lock went with the server that stopped
    assert sum(isinstance(r, str) for r in again) == 1


def test_the_server_collects_cycles_though_a_command_does_not(isolated_state):
    """`msi` runs a command without the cycle collector (a fraction of a second, few cycles);
    `msi serve` runs for hours and turns it back on before it starts serving."""
    probe = (
        "import gc, sys\n"
        "import msi_cli.server.service as service\n"
        "class Stub:\n"
        "    workers, tls_setup, https_url = [], None, ''\n"
        "    def __init__(self, *args, **kwargs): pass\n"
        "    def run(self, ready):\n"
        "        print('serving with the collector', gc.isenabled())\n"
        "service.Server = Stub\n"
        "sys.argv = ['msi', *sys.argv[1:]]\n"
        "from msi_cli.cli import run\n"
        "run()\n"
    )
    env = {**os.environ, "MSI_STATE": str(isolated_state)}
    served = subprocess.run([sys.executable, "-c", probe, "serve"], capture_output=True, text=True, env=env, timeout=60)
    assert served.returncode == 0, served.stderr
    assert served.stdout == "serving with the collector True\n"
