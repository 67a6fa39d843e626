"""msi's local certificate authority on disk, in `<state>.d/tls/` beside `keys/`:

    ca.pem            the CA certificate (public: clients trust it)
    ca-key.pem        its P-256 private key (0600, never printed)
    ca-bundle.pem     certifi's roots plus ca.pem, for REQUESTS_CA_BUNDLE (requests trusts certifi's
                      roots by default; the variable *replaces* them)
    system-bundle.pem OpenSSL's default roots file plus ca.pem, for SSL_CERT_FILE (OpenSSL's default
                      contexts, as aiohttp and urllib use, trust that file by default; the variable
                      *replaces* it, while the default folder of roots still counts)
    serve-cert.pem    the certificate `msi serve` presents, issued again at every start
    serve-key.pem     its key (0600)

The CA is made on first need and lives 10 years; one that has expired (or is about to) is
replaced by a new one on the next need. Files are written atomically and owner-only from the
moment they exist (`files.write_atomic`); the folder is 0700. Making the CA holds a lock, so two
commands starting at once agree on one CA.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from msi_cli.errors import StateError
from msi_cli.store import files

CA_DAYS = 3650
RENEW_BEFORE = 86400  # a CA with less than a day left is replaced
BACKDATE = 300  # certificates start 5 minutes in the past, for clocks that differ slightly
DAY = 86400
# The CA is appended to the bundle under this line (and any earlier copy of it is dropped).
BUNDLE_MARK = "# msi-cli local CA"


@dataclass(frozen=True)
class Paths:
    folder: Path
    cert: Path
    key: Path
    bundle: Path
    system_bundle: Path
    serve_cert: Path
    serve_key: Path


def paths(private: Path) -> Paths:
    """Where the files are (no file is read or made): `msi env` needs only this."""
    folder = private / "tls"
    return Paths(folder, folder / "ca.pem", folder / "ca-key.pem", folder / "ca-bundle.pem",
                 folder / "system-bundle.pem", folder / "serve-cert.pem", folder / "serve-key.pem")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from None


class LocalCA:
    def __init__(self, private: Path) -> None:
        self.private = private
        self.paths = paths(private)

    def _usable(self, now: int) -> bytes | None:
        """The CA certificate if it and its key are on disk and it is not about to expire."""
        from msi_cli.tls import certs

        cert = _read(self.paths.cert)
        if cert is None or _read(self.paths.key) is None:
            return None
        try:
            expires = certs.not_after(cert)
        except ValueError:
            raise StateError(f"{self.paths.cert} is not a PEM certificate",
                             hint=f"remove the folder {self.paths.folder} to make a new CA") from None
        return cert if expires - now > RENEW_BEFORE else None

    def ensure(self, now: int) -> tuple[bytes, bool]:
        """(CA certificate PEM, whether it was made now). Makes the CA on first need."""
        cert = self._usable(now)
        if cert is not None:
            return cert, False
        files.private_dir(self.private, tighten=True)
        files.private_dir(self.paths.folder, tighten=True)
        with files.exclusive_lock(self.paths.folder / "lock"):
            cert = self._usable(now)  # another command may have made it meanwhile
            if cert is not None:
                return cert, False
            from msi_cli.tls import certs

            name = f"msi-cli local CA {secrets.token_hex(4)}"  # unique: CAs of two states never share a name
            key, cert = certs.new_ca(name, now - BACKDATE, now + CA_DAYS * DAY)
            files.write_atomic(self.paths.key, key)  # the key first: a certificate on disk means both are
            files.write_atomic(self.paths.cert, cert)
        return cert, True

    def issue(self, hosts: list[str], now: int, days: int) -> tuple[bytes, bytes, bytes]:
        """A server certificate for `hosts`: (key PEM, certificate PEM, CA certificate PEM)."""
        from msi_cli.tls import certs

        ca_cert, _ = self.ensure(now)
        ca_key = _read(self.paths.key)
        if ca_key is None:
            raise StateError(f"the CA key {self.paths.key} is missing",
                             hint=f"remove the folder {self.paths.folder} to make a new CA")
        try:
            key, cert = certs.new_leaf(ca_key, ca_cert, hosts, now - BACKDATE, now + days * DAY)
        except ValueError:
            raise StateError(f"the CA key {self.paths.key} cannot be read or does not match {self.paths.cert}",
                             hint=f"remove the folder {self.paths.folder} to make a new CA") from None
        return key, cert, ca_cert

    def write_bundles(self, ca_cert: bytes) -> str:
        """Write both trust bundles, each its readers' default roots with the CA appended. Returns
        where requests' roots came from ('' when none were found: the bundle is the CA alone)."""
        certifi_roots, source = _read_roots(_certifi_path() or _openssl_default_file())
        system_roots, _ = _read_roots(_openssl_default_file())
        files.write_atomic(self.paths.bundle, _bundle(certifi_roots, ca_cert))
        files.write_atomic(self.paths.system_bundle, _bundle(system_roots, ca_cert))
        return source

    def write_server(self, key: bytes, cert: bytes) -> tuple[Path, Path]:
        files.write_atomic(self.paths.serve_key, key)
        files.write_atomic(self.paths.serve_cert, cert)
        return self.paths.serve_cert, self.paths.serve_key


def _certifi_path() -> str:
    """certifi's roots, what requests trusts by default ('' when certifi is not installed)."""
    try:
        import certifi
    except ImportError:
        return ""
    return certifi.where()


def _openssl_default_file() -> str:
    """The roots file OpenSSL was built to trust: not SSL_CERT_FILE, which may already point at
    one of msi's bundles."""
    import ssl

    return ssl.get_default_verify_paths().openssl_cafile or ""


def _read_roots(path: str) -> tuple[bytes, str]:
    if path:
        try:
            return Path(path).read_bytes(), path
        except OSError:
            pass
    return b"", ""


def _bundle(roots: bytes, ca_cert: bytes) -> bytes:
    text = roots.decode("utf-8", "replace")
    if BUNDLE_MARK in text:  # roots read from an earlier bundle: drop its copy of a CA
        text = text[: text.index(BUNDLE_MARK)]
    ca_text = ca_cert.decode("ascii")
    text = text.replace(ca_text, "")
    if text and not text.endswith("\n"):
        text += "\n"
    return (text + BUNDLE_MARK + "\n" + ca_text).encode("utf-8")


def trust_variables(private: Path) -> dict[str, str]:
    """What makes clients trust msi's CA without touching a system store, each client keeping
    the roots it trusts by default: requests (sync azure-identity, msal, az) reads
    REQUESTS_CA_BUNDLE in place of certifi's roots; OpenSSL's default contexts (aiohttp, async
    azure-identity, urllib) read SSL_CERT_FILE in place of the system's roots file; node *adds*
    NODE_EXTRA_CA_CERTS to its roots, so it gets the CA alone; curl (a CI job's request for its
    GitHub OIDC token) reads CURL_CA_BUNDLE in place of the system's roots file."""
    p = paths(private)
    return {"REQUESTS_CA_BUNDLE": str(p.bundle), "SSL_CERT_FILE": str(p.system_bundle),
            "NODE_EXTRA_CA_CERTS": str(p.cert), "CURL_CA_BUNDLE": str(p.system_bundle)}
