"""HTTPS on loopback: msi's local CA (`msi tls show`), server certificates (`msi tls cert`), the
HTTPS listener of `msi serve` (Entra's discovery and keys per tenant), and client trust through
`msi env` alone.

Certificates are checked with cryptography; the listener with Python's ssl trusting only msi's CA
(strict X.509 checks on), with requests, urllib and node in their own processes given only what
`msi env` prints, and with msal's confidential client, which must get past discovery."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import fails, msi_executable, stop_process

TIMEOUT = 60
VAULT = "https://vault.azure.net"
KEEP = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "PYTHONDONTWRITEBYTECODE")


def load_cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def mode(path) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def private_dir(state: Path) -> Path:
    return state.parent / (state.name + ".d")


# ---- the CA ----------------------------------------------------------------------------------------


def test_the_ca_is_a_p256_authority_with_an_owner_only_key(cli, isolated_state):
    shown = cli.json("tls", "show")
    assert list(shown) == ["subject", "fingerprintSha256", "notBefore", "notAfter", "certificate"]
    tls_dir = private_dir(isolated_state) / "tls"
    assert Path(shown["certificate"]) == tls_dir / "ca.pem"
    ca = load_cert(shown["certificate"])
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"
    assert ca.subject == ca.issuer and ca.subject.rfc4514_string() == shown["subject"]
    ca.verify_directly_issued_by(ca)  # self-signed
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= timedelta(days=3650)
    assert shown["notAfter"] == ca.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert shown["fingerprintSha256"] == ca.fingerprint(hashes.SHA256()).hex(":").upper()
    key = serialization.load_pem_private_key((tls_dir / "ca-key.pem").read_bytes(), password=None)
    assert key.public_key() == ca.public_key()
    assert mode(tls_dir / "ca-key.pem") == 0o600 and mode(tls_dir) == 0o700
    assert mode(private_dir(isolated_state)) == 0o700


def test_tls_show_makes_the_ca_once_and_never_prints_key_material(msi_proc, isolated_state):
    first = msi_proc("tls", "show")
    second = msi_proc("tls", "show", "-o", "json")
    third = msi_proc("tls", "show", "--query", "fingerprintSha256", "-o", "tsv")
    assert first.returncode == second.returncode == third.returncode == 0
    assert first.stderr.startswith("made a local certificate authority: ") and second.stderr == third.stderr == ""
    fingerprint = json.loads(second.stdout)["fingerprintSha256"]
    assert third.stdout == fingerprint + "\n" and fingerprint in first.stdout
    key_pem = (private_dir(isolated_state) / "tls" / "ca-key.pem").read_text()
    body = [line for line in key_pem.splitlines() if line and not line.startswith("-----")]
    for out in (first, second, third):
        text = out.stdout + out.stderr
        assert "PRIVATE" not in text and not any(line in text for line in body)


# ---- server certificates for emulators ---------------------------------------------------------------


def test_tls_cert_writes_a_server_certificate_key_and_ca(cli, tmp_path, isolated_state):
    out = tmp_path / "certs"
    made = cli.json("tls", "cert", "--host", "localhost", "--host", "127.0.0.1", "--host", "::1", "--out", str(out),
                    "--days", "30")
    assert made["certificate"] == str(out / "cert.pem") and made["key"] == str(out / "key.pem")
    assert made["dnsNames"] == ["localhost"] and made["ipAddresses"] == ["127.0.0.1", "::1"]
    leaf, ca = load_cert(out / "cert.pem"), load_cert(out / "ca.pem")
    assert (out / "ca.pem").read_bytes() == (private_dir(isolated_state) / "tls" / "ca.pem").read_bytes()
    leaf.verify_directly_issued_by(ca)
    assert leaf.issuer == ca.subject and made["issuer"] == ca.subject.rfc4514_string()
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp256r1"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert timedelta(days=30) <= life <= timedelta(days=30, minutes=10)
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    assert key.public_key() == leaf.public_key()
    assert mode(out / "key.pem") == 0o600 and mode(out / "cert.pem") == 0o644
    again = cli.json("tls", "cert", "--host", "localhost", "--out", str(out))  # files are replaced, same CA
    assert again["fingerprintSha256"] != made["fingerprintSha256"] and load_cert(out / "ca.pem") == ca


@pytest.mark.parametrize("args, fragment", [
    (["--host", "bad_host!"], "'bad_host!' is neither a DNS name nor an IP address"),
    (["--host", "localhost", "--days", "0"], "--days"),
    (["--host", "localhost", "--days", "3651"], "--days"),
])
def test_tls_cert_refuses_bad_input_and_makes_nothing(cli, tmp_path, isolated_state, args, fragment):
    out = tmp_path / "certs"
    fails(cli("tls", "cert", *args, "--out", str(out)), 2, fragment)
    assert not out.exists() and not (private_dir(isolated_state) / "tls").exists()


def test_tls_cert_out_must_be_a_folder(cli, tmp_path, isolated_state):
    target = tmp_path / "file"
    target.write_text("x")
    fails(cli("tls", "cert", "--host", "localhost", "--out", str(target)), 2, "is a file, not a folder")
    assert target.read_text() == "x" and not (private_dir(isolated_state) / "tls").exists()


def test_tls_cert_is_required_to_name_a_host(cli, tmp_path):
    fails(cli("tls", "cert", "--out", str(tmp_path / "c")), 2, "--host")


# ---- msi serve over HTTPS --------------------------------------------------------------------------


class Served:
    """`msi serve --verbose` as a subprocess on its own state, with a VM and a web app."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / "state" / "state.toml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))}
        self.env.update(MSI_STATE=str(self.state), NO_COLOR="1")
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"):
            self.env.pop(name, None)
        self.log_path = folder / "serve.log"
        self.proc: subprocess.Popen | None = None

    def msi(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*msi_executable(), *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT)

    def json(self, *args: str):
        proc = self.msi(*args, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def start(self, *args: str) -> None:
        self._log = open(self.log_path, "w")  # closed in stop()
        self.proc = subprocess.Popen([*msi_executable(), "serve", "--verbose", *args], env=self.env,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend([self.proc.stdout.readline(), self.proc.stdout.readline()]),
                                  daemon=True)
        reader.start()
        reader.join(30)
        if len(lines) < 2 or not lines[1].startswith("https://127.0.0.1:"):
            self.stop()
            pytest.fail(f"msi serve did not start: {self.log_path.read_text()}")
        self.http_url, self.https_url = lines[0].strip(), lines[1].strip()
        self.tls_dir = private_dir(self.state) / "tls"
        self.ca = self.tls_dir / "ca.pem"

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def context(self) -> ssl.SSLContext:
        """Python's ssl trusting msi's CA and nothing else, with strict X.509 checks."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        return ctx

    def get(self, url: str, host: str | None = None) -> tuple[int, dict]:
        parts = urlsplit(url)
        conn = http.client.HTTPSConnection(host or parts.hostname, parts.port, context=self.context(), timeout=10)
        try:
            conn.request("GET", parts.path)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def client(self, code: str, *args: str, resource: str = "vm1", command: list[str] | None = None) -> subprocess.CompletedProcess:
        """A client in its own process whose environment is a clean base plus `msi env RESOURCE`."""
        env = {k: v for k, v in os.environ.items() if k in KEEP}
        env["HOME"] = str(self.folder / "home")
        env.update(self.json("env", resource))
        return subprocess.run([*(command or [sys.executable, "-c"]), textwrap.dedent(code), *args], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, cwd=self.folder)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("tls"))
    (s.folder / "home").mkdir()
    for args in (("create-resource", "vm1", "--type", "vm", "--system-assigned"),
                 ("create-resource", "web1", "--type", "webapp", "--system-assigned")):
        assert s.msi(*args, "-o", "none").returncode == 0
    s.tenant = s.json("list", "tenants")[0]["tenantId"]
    s.vm1 = s.json("show", "vm1")["id"]
    s.start()
    yield s
    s.stop()


def test_serve_prints_and_records_both_addresses(served):
    record = json.loads((private_dir(served.state) / "server.json").read_text())
    assert record["url"] == served.http_url and record["httpsUrl"] == served.https_url
    assert served.http_url.startswith("http://127.0.0.1:") and urlsplit(served.http_url).port != urlsplit(served.https_url).port
    assert f"listening on {served.http_url} (IMDS, App Service) and {served.https_url}" in served.log()
    leaf = load_cert(served.tls_dir / "serve-cert.pem")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {"127.0.0.1", "::1"} <= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert mode(served.tls_dir / "serve-key.pem") == 0o600 and mode(served.tls_dir / "ca-key.pem") == 0o600


def test_python_ssl_trusting_only_msis_ca_verifies_the_server(served):
    path = f"/{served.tenant}/v2.0/.well-known/openid-configuration"
    status, doc = served.get(served.https_url + path)
    assert status == 200 and doc["token_endpoint"].startswith(served.https_url)
    status, _ = served.get(served.https_url.replace("127.0.0.1", "localhost") + path, host="localhost")
    assert status == 200
    port = urlsplit(served.https_url).port
    with pytest.raises(ssl.SSLCertVerificationError):  # not trusted without msi's CA
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            ssl.create_default_context(cafile=_certifi()).wrap_socket(
                sock, server_hostname="127.0.0.1")


def _certifi() -> str:
    import certifi

    return certifi.where()


def test_the_v2_discovery_document_and_its_keys_over_https(served):
    base = f"{served.https_url}/{served.tenant}"
    status, doc = served.get(f"{base}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert doc["issuer"] == f"https://login.microsoftonline.com/{served.tenant}/v2.0"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    status, keys = served.get(doc["jwks_uri"])
    assert status == 200 and keys["keys"] and keys == served.json("jwks")
    assert all(k["kty"] == "RSA" and k["use"] == "sig" for k in keys["keys"])


def test_the_v1_discovery_document_over_https_names_https_urls(served):
    base = f"{served.https_url}/{served.tenant}"
    status, doc = served.get(f"{base}/.well-known/openid-configuration")
    assert status == 200 and doc["issuer"] == f"https://sts.windows.net/{served.tenant}/"
    assert doc["jwks_uri"] == f"{base}/discovery/keys" and doc["token_endpoint"] == f"{base}/oauth2/token"
    status, keys = served.get(doc["jwks_uri"])
    assert status == 200 and keys == served.json("jwks")
    status, body = served.get(f"{served.https_url}/nosuchtenant/v2.0/.well-known/openid-configuration")
    assert status == 400 and body["error"] == "invalid_tenant" and body["error_description"].startswith("AADSTS90002: ")


def test_the_token_endpoints_the_documents_name_are_served(served):
    for path in ("/v2.0/.well-known/openid-configuration", "/.well-known/openid-configuration"):
        _, doc = served.get(f"{served.https_url}/{served.tenant}{path}")
        parts = urlsplit(doc["token_endpoint"])
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=served.context(), timeout=10)
        conn.request("POST", parts.path, body=b"grant_type=client_credentials",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        assert resp.status != 404 and "error" in body, (doc["token_endpoint"], resp.status, body)


def test_imds_and_app_service_stay_plain_http(served):
    status, body = served.get(f"{served.https_url}{served.vm1}/metadata/identity/oauth2/token?api-version=2018-02-01")
    assert status == 404 and f"plain HTTP, as in Azure: use {served.http_url}" in body["error_description"]
    parts = urlsplit(served.http_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"{served.vm1}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}",
                 headers={"Metadata": "true"})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["access_token"]
    conn.close()
    https = urlsplit(served.https_url)
    with socket.create_connection((https.hostname, https.port), timeout=10) as sock:  # plain HTTP to the TLS port
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(100)
    assert not answer.startswith(b"HTTP/")


def test_msi_env_carries_the_trust_variables(served):
    variables = served.json("env", "vm1")
    bundle, system_bundle = served.tls_dir / "ca-bundle.pem", served.tls_dir / "system-bundle.pem"
    assert variables["REQUESTS_CA_BUNDLE"] == str(bundle) and variables["SSL_CERT_FILE"] == str(system_bundle)
    assert variables["NODE_EXTRA_CA_CERTS"] == str(served.ca) and variables["CURL_CA_BUNDLE"] == str(system_bundle)
    assert set(served.json("env", "web1")) >= {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"}
    if shutil.which("curl"):  # a CI job fetches its GitHub OIDC token with curl: it trusts msi's CA by the variable alone
        clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
        fetched = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", served.https_url + "/common/discovery/v2.0/keys"],
                                 env={**clean, "CURL_CA_BUNDLE": variables["CURL_CA_BUNDLE"]}, capture_output=True, text=True, timeout=TIMEOUT)
        assert fetched.stdout == "200", fetched.stderr
    lines = served.msi("env", "vm1", "--shell", "bash").stdout
    assert f"export REQUESTS_CA_BUNDLE={bundle}\n" in lines and f"export NODE_EXTRA_CA_CERTS={served.ca}\n" in lines
    ca_pem = served.ca.read_text()
    # each bundle keeps the roots its readers trust by default (requests: certifi; OpenSSL: its default file)
    for path, roots_file in ((bundle, _certifi()), (system_bundle, ssl.get_default_verify_paths().openssl_cafile)):
        text = path.read_text()
        assert text.count(ca_pem) == 1 and text.endswith(ca_pem)
        roots = Path(roots_file).read_text()
        last_root = roots[roots.rindex("-----BEGIN CERTIFICATE-----"):roots.rindex("-----END CERTIFICATE-----")]
        assert last_root in text


def test_requests_with_only_msi_env_verifies_the_server(served):
    proc = served.client("""
        import json, sys, requests
        doc = requests.get(sys.argv[1], timeout=10).json()
        keys = requests.get(doc["jwks_uri"], timeout=10).json()
        print(json.dumps({"token_endpoint": doc["token_endpoint"], "keys": len(keys["keys"])}))
    """, f"{served.https_url}/{served.tenant}/v2.0/.well-known/openid-configuration")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["token_endpoint"] == f"{served.https_url}/{served.tenant}/oauth2/v2.0/token" and out["keys"] >= 1


def test_ssl_cert_file_from_msi_env_is_what_default_contexts_trust(served):
    # aiohttp (async azure-identity) verifies with ssl.create_default_context(), which reads SSL_CERT_FILE
    proc = served.client("""
        import json, sys, urllib.request
        with urllib.request.urlopen(sys.argv[1], timeout=10) as resp:
            print(json.dumps({"status": resp.status, "issuer": json.load(resp)["issuer"]}))
    """, f"{served.https_url}/{served.tenant}/.well-known/openid-configuration")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": 200, "issuer": f"https://sts.windows.net/{served.tenant}/"}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_with_node_extra_ca_certs_verifies_the_server(served):
    proc = served.client("""
        const https = require("https");
        https.get(process.argv[1], res => {
          let body = "";
          res.on("data", d => body += d);
          res.on("end", () => console.log(JSON.stringify({status: res.statusCode, jwks: JSON.parse(body).jwks_uri})));
        }).on("error", e => { console.error(e.message); process.exit(1); });
    """, f"{served.https_url}/{served.tenant}/v2.0/.well-known/openid-configuration", command=["node", "-e"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": 200, "jwks": f"{served.https_url}/{served.tenant}/discovery/v2.0/keys"}


def test_msal_confidential_client_gets_past_discovery(served):
    authority = f"{served.https_url}/{served.tenant}"
    proc = served.client("""
        import json, sys, msal
        app = msal.ConfidentialClientApplication(
            "00000000-0000-0000-0000-0000000000c1", client_credential={"client_assertion": "not-a-jwt"},
            authority=sys.argv[1], instance_discovery=False)
        result = app.acquire_token_for_client(scopes=["https://vault.azure.net/.default"])
        print(json.dumps({"token_endpoint": app.authority.token_endpoint, "tenant": app.authority.tenant,
                          "error": result.get("error"), "token": "access_token" in result}))
    """, authority)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["token_endpoint"] == f"{authority}/oauth2/v2.0/token" and out["tenant"] == served.tenant
    assert out["error"] and not out["token"]  # refused at the token endpoint: "not-a-jwt" is no assertion
    log = served.log()
    assert f"GET /{served.tenant}/v2.0/.well-known/openid-configuration 200 " in log
    assert f"POST /{served.tenant}/oauth2/v2.0/token " in log


# ---- the listener's life -------------------------------------------------------------------------------


def test_a_restart_keeps_the_ca_and_issues_a_new_server_certificate(tmp_path):
    s = Served(tmp_path)
    assert s.msi("create-resource", "vm1", "--type", "vm", "-o", "none").returncode == 0
    s.start()
    try:
        ca_before = s.ca.read_bytes()
        serial = load_cert(s.tls_dir / "serve-cert.pem").serial_number
        assert "made a local certificate authority" in s.log()
    finally:
        s.stop()
    assert not (private_dir(s.state) / "server.json").exists()
    s.start()
    try:
        assert s.ca.read_bytes() == ca_before and "made a local certificate authority" not in s.log()
        assert load_cert(s.tls_dir / "serve-cert.pem").serial_number != serial
        for name in ("ca-bundle.pem", "system-bundle.pem"):
            assert (s.tls_dir / name).read_text().count(ca_before.decode()) == 1
        assert s.get(f"{s.https_url}/{s.json('list', 'tenants')[0]['tenantId']}/discovery/v2.0/keys")[0] == 200
    finally:
        s.stop()


def test_an_https_port_in_use_is_a_clear_error(cli, isolated_state):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--https-port", str(port))
    fails(result, 1, f"cannot listen on 127.0.0.1:{port}: ", "--https-port")
    assert not (private_dir(isolated_state) / "server.json").exists()


# ---- start-up of the everyday commands -------------------------------------------------------------------


def test_show_list_and_token_import_no_tls_code(served):
    probe = """
        import sys
        sys.argv = ["msi", *sys.argv[1:]]
        from msi_cli.cli import main
        try:
            main()
        except SystemExit:
            pass
        tls = ("ssl", "_ssl", "certifi", "msi_cli.tls", "msi_cli.tls.certs", "msi_cli.store.ca", "msi_cli.server.tls",
               "msi_cli.cli.tls")
        print([m for m in tls if m in sys.modules], file=sys.stderr)
    """
    for args in (["show", "vm1"], ["list", "resources"], ["token", "vm1", "--audience", VAULT],
                 ["token", "vm1", "--audience", "https://storage.azure.com"]):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(probe), *args], env=served.env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0 and proc.stderr.splitlines()[-1] == "[]", (args, proc.stderr)


# ---- Azurite, the model emulator (run only when already installed; never installed here) ----------------


@pytest.mark.skipif(shutil.which("azurite-blob") is None, reason="Azurite is not installed (npm install -g azurite)")
def test_azurite_with_a_certificate_from_msi_accepts_a_managed_identity_token(served, tmp_path):
    certs = tmp_path / "certs"
    assert served.msi("tls", "cert", "--host", "localhost", "--host", "127.0.0.1", "--out", str(certs), "-o", "none").returncode == 0
    azurite = subprocess.Popen(["azurite-blob", "--oauth", "basic", "--cert", str(certs / "cert.pem"), "--key",
                                str(certs / "key.pem"), "--skipApiVersionCheck", "--disableTelemetry", "--blobPort", "0",
                                "--location", str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    found: list[str] = []

    def read() -> None:
        for line in azurite.stdout:
            if "listens on https://" in line:
                found.append(line.rsplit(" ", 1)[-1].strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    try:
        assert found, "Azurite did not start"
        proc = served.client("""
            import json, sys, requests
            from azure.identity import ManagedIdentityCredential
            token = ManagedIdentityCredential().get_token("https://storage.azure.com/.default").token
            base = sys.argv[1] + "/devstoreaccount1/box1"
            headers = {"Authorization": "Bearer " + token, "x-ms-version": "2021-08-06"}
            made = requests.put(base + "?restype=container", headers=headers, timeout=10).status_code
            put = requests.put(base + "/hello.txt", data=b"hi", headers={**headers, "x-ms-blob-type": "BlockBlob"},
                               timeout=10).status_code
            got = requests.get(base + "/hello.txt", headers=headers, timeout=10)
            anonymous = requests.get(base + "/hello.txt", headers={"x-ms-version": "2021-08-06"}, timeout=10).status_code
            print(json.dumps([made, put, got.status_code, got.text, anonymous]))
        """, found[0])
        assert proc.returncode == 0, proc.stderr
        made, put, status, text, anonymous = json.loads(proc.stdout.strip().splitlines()[-1])
        assert (made, put, status, text) == (201, 201, 200, "hi") and anonymous in (401, 403, 404)
    finally:
        azurite.terminate()
        azurite.wait(10)


# ---- hostile or broken input ---------------------------------------------------------------------------


def test_a_client_that_never_completes_the_handshake_is_dropped(isolated_state):
    from msi_cli.server.service import Server
    from msi_cli.server.background import ServerThread
    from msi_cli.store.statefile import StateFile

    thread = ServerThread(Server(StateFile(isolated_state), request_timeout=0.3, https_port=0, log=lambda m: None))
    thread.start()
    try:
        https = urlsplit(thread.server.https_url)
        with socket.create_connection((https.hostname, https.port), timeout=5) as sock:  # a timeout fails the test
            sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and nothing more
            assert sock.recv(100) == b""  # closed by the server, long before the socket's timeout
    finally:
        thread.stop()


def test_a_ca_that_is_about_to_expire_is_replaced(isolated_state):
    from msi_cli.core.timefmt import real_now
    from msi_cli.store.ca import LocalCA

    ca = LocalCA(private_dir(isolated_state))
    first, made = ca.ensure(real_now())
    assert made and ca.ensure(real_now()) == (first, False)
    later = real_now() + 3650 * 86400 - 3600  # an hour before the CA expires
    second, made = ca.ensure(later)
    assert made and second != first and ca.paths.cert.read_bytes() == second
    key = serialization.load_pem_private_key(ca.paths.key.read_bytes(), password=None)
    assert key.public_key() == x509.load_pem_x509_certificate(second).public_key()


def test_a_damaged_ca_certificate_is_an_error_that_names_it(cli, isolated_state):
    cli.ok("tls", "show")
    cert = private_dir(isolated_state) / "tls" / "ca.pem"
    cert.write_text("not a certificate\n")
    fails(cli("tls", "show"), 1, f"{cert} is not a PEM certificate", "remove the folder")
    fails(cli("tls", "cert", "--host", "localhost", "--out", str(isolated_state.parent / "c")), 1, "is not a PEM certificate")
    assert cert.read_text() == "not a certificate\n" and not (isolated_state.parent / "c").exists()


@pytest.mark.parametrize("alias", ["organizations", "common"])
def test_multi_tenant_authorities_have_entras_documents(served, alias):
    """az builds a client on `/organizations` (az logout, az account clear): Entra's document names
    the alias's endpoints and a `{tenantid}` issuer; its keys are every tenant's."""
    status, doc = served.get(f"{served.https_url}/{alias}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert doc["issuer"] == "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert doc["token_endpoint"] == f"{served.https_url}/{alias}/oauth2/v2.0/token"
    published = {k["kid"] for k in served.json("jwks")["keys"]}  # (the tenant makes its keys on first need)
    status, keys = served.get(doc["jwks_uri"])
    assert status == 200 and published <= {k["kid"] for k in keys["keys"]}
    status, body = served.get(f"{served.https_url}/nosuchalias/v2.0/.well-known/openid-configuration")
    assert status == 400 and body["error_description"].startswith("AADSTS90002: ")
