"""msi's local certificate authority on disk, in `<state>.d/tls/` beside `keys/`:

    ca.pem            the CA certificate (public: clients trust it)
    ca-key.pem        its P-256 private key (0600, never printed)
    ca-bundle.pem     the usual public roots plus ca.pem, for REQUESTS_CA_BUNDLE and SSL_CERT_FILE
                      (both *replace* the roots a client trusts)
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
    serve_cert: Path
    serve_key: Path


def paths(private: Path) -> Paths:
    """Where the files are (no file is read or made): `msi env` needs only this."""
    folder = private / "tls"
    return Paths(folder, folder / "ca.pem", folder / "ca-key.pem", folder / "ca-bundle.pem",
                 folder / "serve-cert.pem", folder / "serve-key.pem")


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

    def write_bundle(self, ca_cert: bytes) -> tuple[Path, str]:
        """Write the trust bundle: the public roots (certifi's, else OpenSSL's default file) with
        the CA appended. Returns (bundle path, where the roots came from, or '' if none found)."""
        roots, source = public_roots()
        text = roots.decode("utf-8", "replace")
        if BUNDLE_MARK in text:  # roots read from an earlier bundle: drop its copy of a CA
            text = text[: text.index(BUNDLE_MARK)]
        ca_text = ca_cert.decode("ascii")
        text = text.replace(ca_text, "")
        if text and not text.endswith("\n"):
            text += "\n"
        files.write_atomic(self.paths.bundle, (text + BUNDLE_MARK + "\n" + ca_text).encode("utf-8"))
        return self.paths.bundle, source

    def write_server(self, key: bytes, cert: bytes) -> tuple[Path, Path]:
        files.write_atomic(self.paths.serve_key, key)
        files.write_atomic(self.paths.serve_cert, cert)
        return self.paths.serve_cert, self.paths.serve_key


def public_roots() -> tuple[bytes, str]:
    """(PEM roots, their path): certifi's when it is importable (what requests trusts by
    default), else the OpenSSL default file this Python was built with (not SSL_CERT_FILE, which
    may already point at msi's bundle), else nothing."""
    candidates = []
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:
        pass
    import ssl

    candidates.append(ssl.get_default_verify_paths().openssl_cafile)
    for path in candidates:
        if path:
            try:
                return Path(path).read_bytes(), str(path)
            except OSError:
                continue
    return b"", ""


def trust_variables(private: Path) -> dict[str, str]:
    """What makes clients trust msi's CA without touching a system store: requests (sync
    azure-identity, msal, az) reads REQUESTS_CA_BUNDLE and OpenSSL's default context (aiohttp,
    async azure-identity) SSL_CERT_FILE, both *replacing* the roots, so both get the bundle of
    public roots plus the CA; node *adds* NODE_EXTRA_CA_CERTS to its roots, so it gets the CA alone."""
    p = paths(private)
    return {"REQUESTS_CA_BUNDLE": str(p.bundle), "SSL_CERT_FILE": str(p.bundle), "NODE_EXTRA_CA_CERTS": str(p.cert)}
