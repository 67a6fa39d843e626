"""The key ring: private keys and certificates as owner-only files in `<state>.d/keys/`.

One PEM file per key (private key then certificate), named by the certificate's thumbprint. Files
are created 0600 by the atomic writer; nothing here is ever printed or logged.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from msi_cli import crypto
from msi_cli.core.arm import new_guid
from msi_cli.core.clock import iso
from msi_cli.core.model import KeyCredential, SigningKey
from msi_cli.errors import StateError
from msi_cli.store import files


class FileKeyRing:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._new: list[Path] = []

    def _store(self, name: str, pem: bytes) -> None:
        files.private_dir(self.dir, tighten=True)
        path = self.dir / f"{name}.pem"
        files.write_atomic(path, pem)
        self._new.append(path)

    def discard_new(self) -> None:
        """Forget keys made by a transaction that did not commit."""
        for path in self._new:
            with contextlib.suppress(OSError):
                path.unlink()
        self._new.clear()

    def _read(self, name: str) -> bytes:
        try:
            return (self.dir / f"{name}.pem").read_bytes()
        except OSError:
            raise StateError(f"key {name} is missing from the key store {self.dir}") from None

    def new_signing_key(self, tenant_id: str, created: int, signs_until: int, published_until: int) -> SigningKey:
        pem, der = crypto.new_rsa_signing_certificate(f"sts.windows.net/{tenant_id}", created, published_until)
        kid = crypto.sha1_thumbprint_b64url(der)
        self._store(kid, pem)
        return SigningKey(kid, iso(created), iso(signs_until), iso(published_until))

    def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential:
        pem, der = crypto.new_ec_certificate(app_id, start, end)
        thumbprint = crypto.sha1_thumbprint_hex(der)
        self._store(thumbprint, pem)
        return KeyCredential(new_guid(), thumbprint, iso(start), iso(end))

    def new_issuer_key(self, issuer_name: str, created: int, until: int) -> str:
        """An external OIDC issuer's RS256 key (msi plays the issuer); returns its kid."""
        pem, der = crypto.new_rsa_signing_certificate(f"issuer {issuer_name}", created, until)
        kid = crypto.sha1_thumbprint_b64url(der)
        self._store(kid, pem)
        return kid

    def signing_key_pem(self, kid: str) -> bytes:
        return self._read(kid)

    def certificate_pem(self, thumbprint: str) -> bytes:
        return self._read(thumbprint)

    def public_certificate_der(self, kid: str) -> bytes:
        return crypto.certificate_der(self._read(kid))
