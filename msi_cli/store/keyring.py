"""The key ring: private keys and certificates as owner-only files in `<state>.d/keys/`.

One PEM file per key (private key then certificate), named by the certificate's thumbprint. Files
are created 0600 by the atomic writer; nothing here is ever printed or logged.

A key file is trusted only after it proves its name: its certificate's SHA-1 thumbprint must be the
name (the `kid` of a signing key, the thumbprint of an identity certificate) and its private key
must be the certificate's. A file swapped by someone else, or damaged, is an error naming the file,
before anything is signed with it or published in a JWKS.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from msi_cli import crypto
from msi_cli.core.arm import new_guid
from msi_cli.core.clock import iso
from msi_cli.core.model import KeyCredential, SigningKey
from msi_cli.errors import StateError
from msi_cli.store import files

MAX_KEY_FILE = 64 * 1024


class FileKeyRing:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._new: list[Path] = []
        self._dir_checked = False
        self._verified: dict[str, bytes] = {}  # name -> certificate DER, for this ring's lifetime

    def _store(self, name: str, pem: bytes) -> None:
        files.private_dir(self.dir, tighten=True)
        self._dir_checked = True
        path = self.dir / f"{name}.pem"
        files.write_atomic(path, pem)
        self._new.append(path)

    def discard_new(self) -> None:
        """Forget keys made by a transaction that did not commit."""
        for path in self._new:
            with contextlib.suppress(OSError):
                path.unlink()
        self._new.clear()

    def remove_unused(self, used: set[str]) -> None:
        """Delete key files the committed state no longer names: keys made by a writer that was
        killed before it committed, certificates that expired, keys no longer published. Call with
        the state lock held, after the state is saved."""
        if not files.check_private_dir(self.dir):
            return
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.dir):
                name, ext = os.path.splitext(entry.name)
                if ext == ".pem" and name not in used and not entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def _read(self, name: str) -> bytes:
        if not self._dir_checked:
            files.check_private_dir(self.dir.parent)
            files.check_private_dir(self.dir)
            self._dir_checked = True
        path = self.dir / f"{name}.pem"
        pem = files.read_private(path, "key file", MAX_KEY_FILE)
        if pem is None:
            raise StateError(f"key {name} is missing from the key store {self.dir}")
        return pem

    def _checked(self, name: str, thumbprint) -> bytes:
        """The key file `name`, after it proved its name (see the module's docstring)."""
        pem = self._read(name)
        if self._verified.get(name) is None:
            path = self.dir / f"{name}.pem"
            try:
                der = crypto.check_key_file(pem)
            except ValueError as exc:
                raise StateError(f"key file {path} cannot be used: {exc}", hint="it was damaged or replaced") from None
            if thumbprint(der) != name:
                raise StateError(
                    f"key file {path} holds a certificate whose thumbprint is not {name}",
                    hint="it was replaced or damaged; msi will not sign with it or publish it",
                )
            self._verified[name] = der
        return pem

    def new_signing_key(self, tenant_id: str, created: int, signs_until: int, published_until: int) -> SigningKey:
        pem, der = crypto.new_rsa_signing_certificate(f"sts.windows.net/{tenant_id}", created, published_until)
        kid = crypto.sha1_thumbprint_b64url(der)
        self._store(kid, pem)
        self._verified[kid] = der
        return SigningKey(kid, iso(created), iso(signs_until), iso(published_until))

    def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential:
        pem, der = crypto.new_ec_certificate(app_id, start, end)
        thumbprint = crypto.sha1_thumbprint_hex(der)
        self._store(thumbprint, pem)
        self._verified[thumbprint] = der
        return KeyCredential(new_guid(), thumbprint, iso(start), iso(end))

    def signing_key_pem(self, kid: str) -> bytes:
        return self._checked(kid, crypto.sha1_thumbprint_b64url)

    def certificate_pem(self, thumbprint: str) -> bytes:
        return self._checked(thumbprint, crypto.sha1_thumbprint_hex)

    def public_certificate_der(self, kid: str) -> bytes:
        self._checked(kid, crypto.sha1_thumbprint_b64url)
        return self._verified[kid]
