"""`msi serve`'s federation endpoints and `msi env --workload/--github/--kubernetes`: issuer
discovery and keys, Entra's token route (through the Application: the HTTP loop in this branch
does not hand bodies on yet), GitHub's token request, projected token files rotated on the
simulated clock, and `msi demo federation`. No test sleeps."""

from __future__ import annotations

import asyncio
import http.client
import json
import stat
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
import pytest

from conftest import fails
from msi_cli.core import exchange
from msi_cli.store.statefile import StateFile
from test_federation import AUD, SUBJECT, add, claims_of


@pytest.fixture
def ident(cli) -> dict:
    return cli.json("create-identity", "ci-id", "-g", "rg1")


# ---- msi serve -------------------------------------------------------------------------------------


class Http:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        return resp.status, resp.read()


@pytest.fixture
def server(isolated_state):
    from msi_cli.server.service import Server
    from msi_cli.server.background import ServerThread

    logs: list[str] = []
    thread = ServerThread(Server(StateFile(isolated_state), log=logs.append))
    url = thread.start()
    yield thread, Http(url)
    thread.stop()


@pytest.fixture
def fed(cli, ident, server):
    """An identity trusting the GitHub issuer msi plays, as `msi serve` publishes it."""
    thread, http_ = server
    issuer = cli.json("issuer", "create", "gh", "--kind", "github")
    assert issuer["issuer"] == f"{thread.url}/issuers/gh"
    add(cli, issuer=issuer["issuer"])
    return thread, http_, issuer["issuer"]


def test_issuer_discovery_and_keys_verify_oidc_token(cli, fed):
    thread, h, iss = fed
    status, body = h.request("GET", "/issuers/gh/.well-known/openid-configuration")
    assert status == 200
    config = json.loads(body)
    assert config["issuer"] == iss and config["jwks_uri"] == iss + "/jwks"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    status, body = h.request("GET", "/issuers/gh/jwks")
    [jwk] = json.loads(body)["keys"]
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and "d" not in jwk
    token = cli.ok("oidc-token", "gh", "--subject", SUBJECT, "--claim", "team=payments").stdout.strip()
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="https://github.com/octo-org", issuer=iss)
    assert claims["sub"] == SUBJECT and claims["repository"] == "octo-org/app" and claims["repository_owner"] == "octo-org"
    assert claims["ref"] == "refs/heads/main" and claims["event_name"] == "push" and claims["team"] == "payments"
    for name in ("sha", "job_workflow_ref", "actor", "jti"):
        assert claims[name]
    assert claims["exp"] - claims["iat"] == 300
    assert h.request("GET", "/issuers/nope/jwks")[0] == 404
    assert h.request("GET", "/issuers/GH/jwks")[0] == 404  # the URL is case-sensitive, as `iss` is


def test_oidc_token_subject_formats_and_clock(cli, fed):
    env = claims_of(cli.ok("oidc-token", "gh", "--subject", "repo:octo-org/app:environment:prod").stdout.strip())
    assert env["environment"] == "prod"
    pr = claims_of(cli.ok("oidc-token", "gh", "--subject", "repo:octo-org/app:pull_request").stdout.strip())
    assert pr["event_name"] == "pull_request"
    fails(cli("oidc-token", "gh", "--subject", "octo-org/app"), 2, "not a GitHub Actions subject")
    fails(cli("oidc-token", "gh", "--subject", SUBJECT, "--claim", "exp=1"), 2, "set by the issuer")
    # sub and aud come from their options only: a GitHub subject's shape is checked, never bypassed
    fails(cli("oidc-token", "gh", "--subject", SUBJECT, "--claim", "sub=octo-org/app"), 2, "claim 'sub' is set by --subject")
    fails(cli("oidc-token", "gh", "--subject", SUBJECT, "--claim", "aud=x"), 2, "claim 'aud' is set by --audience")
    before = claims_of(cli.ok("oidc-token", "gh", "--subject", SUBJECT).stdout.strip())
    cli.ok("clock", "advance", "2h")
    after = claims_of(cli.ok("oidc-token", "gh", "--subject", SUBJECT, "--lifetime", "10m").stdout.strip())
    assert after["iat"] - before["iat"] >= 7200 and after["exp"] - after["iat"] == 600
    cli.ok("issuer", "create", "aks", "--kind", "kubernetes")
    k8s = cli.json("oidc-token", "aks", "--subject", "system:serviceaccount:default:app")["claims"]
    assert k8s["aud"] == [AUD] and k8s["exp"] - k8s["iat"] == 3600
    assert k8s["kubernetes.io"]["namespace"] == "default" and k8s["kubernetes.io"]["serviceaccount"]["name"] == "app"
    fails(cli("oidc-token", "aks", "--subject", "app"), 2, "service-account subject")


def _post(thread, tenant: str, form: dict, method: str = "POST"):
    """The token route through the Application, with the form body the HTTP loop will hand it."""
    from msi_cli.server.messages import Request

    body = urlencode(form).encode()
    req = Request(method, f"/{tenant}/oauth2/v2.0/token", "", {"content-type": "application/x-www-form-urlencoded",
                                                               "content-length": str(len(body))}, body=body)
    resp = asyncio.run_coroutine_threadsafe(thread.server.app.handle(req, tls=True), thread.loop).result(10)
    return resp.status, json.loads(resp.body)


def _form(ident: dict, assertion: str, **over) -> dict:
    form = {"grant_type": "client_credentials", "client_id": ident["clientId"], "scope": "https://vault.azure.net/.default",
            "client_assertion_type": exchange.ASSERTION_TYPE, "client_assertion": assertion}
    form.update(over)
    return form


def test_token_route_exchanges_and_the_token_verifies(cli, fed, ident, isolated_state):
    thread, h, iss = fed
    assertion = cli.ok("oidc-token", "gh", "--subject", SUBJECT, "--audience", AUD).stdout.strip()
    status, body = _post(thread, ident["tenantId"], _form(ident, assertion))
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == body["ext_expires_in"] > 86000
    verdict = cli.json("verify", body["access_token"], "--audience", "https://vault.azure.net")
    assert verdict["valid"] and verdict["claims"]["oid"] == ident["principalId"]
    assert verdict["claims"]["appid"] == ident["clientId"]
    # the first token made the tenant's signing key (under the state lock); the next ones sign
    # with it without touching the state file, and every exchange is in the activity log
    before = isolated_state.read_bytes()
    again = _post(thread, ident["tenantId"], _form(ident, assertion))
    assert again[0] == 200 and again[1]["access_token"] != body["access_token"]
    assert cli.json("verify", again[1]["access_token"])["valid"]
    assert isolated_state.read_bytes() == before
    logged = [e for e in StateFile(isolated_state).log_entries() if e["detail"].startswith("federated credential exchange")]
    assert len(logged) == 2 and logged[0]["target"] == ident["id"]


@pytest.mark.parametrize(
    "case, status, error, code",
    [
        ("tenant", 400, "invalid_tenant", 90002),
        ("tenant-name", 400, "invalid_tenant", 90002),  # a display name is no tenant for Entra
        ("missing", 400, "invalid_request", 900144),
        ("client", 400, "unauthorized_client", 700016),
        ("signature", 401, "invalid_client", 700027),
        ("expired", 401, "invalid_client", 700024),
        ("subject", 401, "invalid_client", 700213),
        ("audience", 400, "invalid_request", 70021),
        ("issuer", 401, "invalid_client", 700211),
        ("resource", 400, "invalid_resource", 500011),
        ("scope", 400, "invalid_scope", 1002012),
    ],
)
def test_token_route_refusals(cli, fed, ident, case, status, error, code):
    thread, h, iss = fed
    token = lambda *a: cli.ok("oidc-token", "gh", "--audience", AUD, *a).stdout.strip()  # noqa: E731
    good = token("--subject", SUBJECT)
    tenant = ident["tenantId"]
    form = _form(ident, good)
    if case == "tenant":
        tenant = "nowhere"
    elif case == "tenant-name":
        tenant = "Default Directory"
    elif case == "missing":
        del form["client_assertion"]
    elif case == "client":
        form["client_id"] = "00000000-0000-0000-0000-000000000009"
    elif case == "signature":
        form["client_assertion"] = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    elif case == "expired":
        form["client_assertion"] = token("--subject", SUBJECT, "--lifetime", "1m")
        cli.ok("clock", "advance", "2m")
    elif case == "subject":
        form["client_assertion"] = token("--subject", "repo:octo-org/app:ref:refs/heads/dev")
    elif case == "audience":
        form["client_assertion"] = cli.ok("oidc-token", "gh", "--subject", SUBJECT).stdout.strip()  # aud https://github.com/octo-org
    elif case == "issuer":
        cli.ok("issuer", "create", "other")
        form["client_assertion"] = cli.ok("oidc-token", "other", "--subject", SUBJECT).stdout.strip()
    elif case == "resource":
        form["scope"] = "https://nothing.example/.default"
    elif case == "scope":
        form["scope"] = "https://vault.azure.net"
    got_status, body = _post(thread, tenant, form)
    assert (got_status, body["error"], body["error_codes"]) == (status, error, [code]), body
    assert body["error_description"].startswith(f"AADSTS{code}: ") and "Trace ID: " in body["error_description"]


def test_token_route_is_post_only_and_reads_only_forms(cli, fed, ident):
    thread, h, iss = fed
    from msi_cli.server.messages import Request

    def handle(method: str, headers: dict, body: bytes, tls: bool = True):
        req = Request(method, f"/{ident['tenantId']}/oauth2/v2.0/token", "", headers, body=body)
        return asyncio.run_coroutine_threadsafe(thread.server.app.handle(req, tls=tls), thread.loop).result(10)

    assert handle("GET", {}, b"").status == 405
    resp = handle("POST", {"content-type": "application/json"}, b'{"a": 1}')
    assert resp.status == 400 and json.loads(resp.body)["error_codes"] == [900144]
    status, body = h.request("POST", f"/{ident['tenantId']}/oauth2/v2.0/token",  # the plain-HTTP listener
                             {"content-type": "application/x-www-form-urlencoded"}, b"grant_type=client_credentials")
    assert status == 404 and b"HTTPS only" in body


# ---- GitHub Actions and Kubernetes emulation ---------------------------------------------------------


def _with_https(isolated_state: Path, thread, cli=None) -> str:
    """Give the server an HTTPS address as the TLS part of `msi serve` will (the seam: the run
    file's `httpsUrl` for the CLI, the Application's `https_url` for the server), and trust the
    issuer at its HTTPS URL. Returns that issuer URL."""
    path = isolated_state.parent / "state.toml.d" / "server.json"
    data = json.loads(path.read_text())
    data["httpsUrl"] = "https://127.0.0.1:1"
    path.write_text(json.dumps(data))
    thread.server.app.https_url = "https://127.0.0.1:1"
    iss = "https://127.0.0.1:1/issuers/gh"
    if cli is not None:
        assert cli.json("issuer", "show", "gh")["issuer"] == iss
        add(cli, issuer=iss)
    return iss


def test_env_workload_refuses_without_https(cli, fed):
    fails(cli("env", "ci-id", "--kubernetes", "default/app"), 1, "no HTTPS address")


def test_env_github_prints_the_variables_and_serves_the_job_token(cli, fed, ident, isolated_state):
    thread, h, _ = fed
    iss = _with_https(isolated_state, thread, cli)
    result = cli("env", "ci-id", "--github", "octo-org/app", "--issuer", "gh", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # the credential for this repo and branch exists: no note
    env = json.loads(result.stdout)
    assert env["AZURE_CLIENT_ID"] == ident["clientId"] and env["AZURE_TENANT_ID"] == ident["tenantId"]
    assert env["AZURE_AUTHORITY_HOST"] == "https://127.0.0.1:1/"
    token_file = Path(env["AZURE_FEDERATED_TOKEN_FILE"])
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    claims = claims_of(token_file.read_text())
    assert claims["sub"] == SUBJECT and claims["aud"] == AUD and claims["iss"] == iss
    url, secret = env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    spec = token_file.with_suffix(".json")
    assert stat.S_IMODE(spec.stat().st_mode) == 0o600 and stat.S_IMODE(spec.parent.stat().st_mode) == 0o700
    assert url.startswith("https://127.0.0.1:1/github/token?run=")  # served where the issuers are
    base_path = url[len("https://127.0.0.1:1"):]
    path = base_path + "&" + urlencode({"audience": AUD})
    status, body = h.request("GET", path, {"Authorization": f"bearer {secret}"})
    assert status == 200
    job = claims_of(json.loads(body)["value"])
    assert job["aud"] == AUD and job["sub"] == SUBJECT and job["repository"] == "octo-org/app"
    assert h.request("GET", path, {"Authorization": "bearer wrong"})[0] == 401
    assert h.request("GET", path)[0] == 401
    default = claims_of(json.loads(h.request("GET", base_path, {"Authorization": f"Bearer {secret}"})[1])["value"])
    assert default["aud"] == "https://github.com/octo-org"
    # the same job's environment again keeps its request token; shell lines unset the host variables
    lines = cli.ok("env", "ci-id", "--github", "octo-org/app@main", "--issuer", "gh", "--shell", "bash").stdout
    assert f"export ACTIONS_ID_TOKEN_REQUEST_TOKEN={secret}" in lines
    assert "unset IDENTITY_ENDPOINT" in lines and "unset AZURE_POD_IDENTITY_AUTHORITY_HOST" in lines


def test_env_notes_a_missing_credential_and_creates_the_issuer(cli, fed, isolated_state):
    thread, h, iss = fed
    _with_https(isolated_state, thread, cli)
    result = cli("env", "ci-id", "--kubernetes", "payments/api", "-o", "json")
    assert result.exit_code == 0
    identity = cli.json("show", "ci-id")["id"]
    assert f"msi federation add {identity} --name NAME --issuer" in result.stderr
    assert "system:serviceaccount:payments:api" in result.stderr
    assert [i["name"] for i in cli.json("issuer", "list")] == ["gh", "kubernetes"]
    fails(cli("env", "ci-id", "--workload", "--issuer", "nope", "--subject", "s"), 3, "issuer 'nope' not found")
    fails(cli("env", "ci-id", "--workload"), 2, "--subject")
    fails(cli("env", "ci-id", "--github", "nodash"), 2, "OWNER/REPO")
    fails(cli("env", "ci-id", "--kubernetes", "onlyns"), 2, "NAMESPACE/SERVICEACCOUNT")


def test_projected_token_rotates_after_a_clock_advance(cli, fed, ident, isolated_state):
    from msi_cli.server import entra

    thread, h, iss = fed
    _with_https(isolated_state, thread)
    env = cli.json("env", "ci-id", "--kubernetes", "default/app")
    path = Path(env["AZURE_FEDERATED_TOKEN_FILE"])
    first = path.read_text()
    app = thread.server.app
    assert entra.refresh_projections(app) == []  # fresh: nothing to do
    cli.ok("clock", "advance", "47m")  # 78% of the hour
    app.live.refresh()
    assert entra.refresh_projections(app) == []
    cli.ok("clock", "advance", "2m")  # past 80%: the kubelet would rotate it now
    app.live.refresh()
    assert len(entra.refresh_projections(app)) == 1
    second = path.read_text()
    assert second != first
    old, new = claims_of(first), claims_of(second)
    assert new["iat"] - old["iat"] >= 49 * 60 and new["exp"] > old["exp"]
    assert new["sub"] == "system:serviceaccount:default:app"
    # the server's periodic task does the same on its own tick
    cli.ok("clock", "advance", "2h")
    asyncio.run_coroutine_threadsafe(_tick(app), thread.loop).result(10)
    assert claims_of(path.read_text())["iat"] > new["iat"]


async def _tick(app) -> None:
    from msi_cli.server import entra

    await asyncio.get_running_loop().run_in_executor(app.pool, entra._tick, app)


def test_demo_federation_narrates_the_story(cli):
    result = cli("demo", "federation")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "$ msi issuer create gh --kind github" in text
    assert "→ 200: a Bearer token for ARM" in text
    assert "→ 401 invalid_client: AADSTS700213: No matching federated identity record found for presented assertion subject" in text
    assert text.count("→ 200") == 2 and "eyJ" not in text


def test_env_workload_with_a_subject(cli, fed, isolated_state):
    thread, h, iss = fed
    _with_https(isolated_state, thread, cli)
    env = cli.json("env", "ci-id", "--workload", "--issuer", "gh", "--subject", SUBJECT)
    claims = claims_of(Path(env["AZURE_FEDERATED_TOKEN_FILE"]).read_text())
    assert claims["sub"] == SUBJECT and claims["aud"] == AUD and claims["iss"] == "https://127.0.0.1:1/issuers/gh"
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" not in env
    env = cli.json("env", "ci-id", "--workload", "--subject", "job-7")
    assert claims_of(Path(env["AZURE_FEDERATED_TOKEN_FILE"]).read_text())["iss"] == "https://127.0.0.1:1/issuers/workload"
    fails(cli("env", "ci-id", "--workload", "--github", "o/r", "--subject", "s"), 2, "exactly one of")


@pytest.mark.e2e
def test_serve_warns_when_credentials_trust_its_issuers_at_an_earlier_port(tmp_path, isolated_state):
    """An issuer's URL holds the HTTPS port: after a restart on another port, the credentials that
    trust it stop matching (AADSTS700211). msi serve says so at start, with the way out."""
    from armkit import Served

    served = Served(tmp_path)
    served.msi("create-identity", "wid")
    served.start()
    try:
        issuer = served.msi_json("issuer", "create", "gh", "--kind", "github")["issuer"]
        served.msi("federation", "add", "wid", "--name", "main", "--issuer", issuer, "--subject", SUBJECT)
        first = served.https_url
    finally:
        served.stop()
    assert "warning" not in served.log_path.read_text()
    served.start()
    try:
        assert served.https_url != first
        log = served.log_path.read_text()
    finally:
        served.stop()
    port = first.rsplit(":", 1)[1]
    assert f"warning: 1 federated credential(s) trust msi's issuers at {first}, not {served.https_url}" in log
    assert f"--https-port {port}" in log
    served.env["MSI_SERVE_HTTPS_PORT"] = port  # the way out: the same port again, and no warning
    served.start()
    try:
        assert served.https_url == first
        assert "warning" not in served.log_path.read_text()
    finally:
        served.stop()


@pytest.mark.e2e
def test_env_notes_a_missing_credential_escaped_with_a_command_that_runs(tmp_path, isolated_state):
    import shlex

    from armkit import Served

    served = Served(tmp_path)
    served.msi("create-identity", "wid")
    subject = "x y\x1b]0;pwned\x07"
    served.start()
    try:
        proc = served.msi("env", "wid", "--workload", "--subject", subject)
    finally:
        served.stop()
    [note] = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert "\x1b" not in note and "\x07" not in note and "\\x1b]0;pwned\\x07" in note
    words = shlex.split(note.split("add one with: ", 1)[1].replace("\\x1b", "\x1b").replace("\\x07", "\x07"))
    assert words[:3] == ["msi", "federation", "add"] and words[words.index("--subject") + 1] == subject


@pytest.mark.e2e
def test_env_says_what_a_user_assigned_identity_and_a_stray_subject_need(tmp_path, isolated_state):
    from armkit import Served

    served = Served(tmp_path)
    served.msi("create-identity", "wid")
    served.msi("create-resource", "vm1", "--type", "vm", "--system-assigned")
    served.start()
    try:
        identity = served.msi("env", "wid", check=False)
        stray = served.msi("env", "vm1", "--subject", "x", check=False)
    finally:
        served.stop()
    assert identity.returncode == 2 and identity.stderr.count("\n") == 1  # it exists: a wrong use, not "not found"
    assert "'wid' is a user-assigned identity" in identity.stderr and "--workload" in identity.stderr
    assert stray.returncode == 2 and stray.stderr.startswith("error: --subject is for a workload") and "--workload" in stray.stderr
