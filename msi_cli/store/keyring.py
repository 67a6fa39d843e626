"""The key ring: private keys and certificates as owner-only files in `<state>.d/keys/`.

One PEM file per key (private key then certificate), named by the certificate's thumbprint. Files
are created 0600; nothing here is ever printed or logged.

A key file is written before the state that names it commits, and no other process reads it before
that: so it is created in place under its (unique) name, with no temporary file. Before it exists, its name is
appended to the journal `.pending` (one file kept open by the ring), so that the next writer can
delete the files of a writer killed before it committed (`settle`), a half-written one included.
Each key file is durable before the state that names it is saved: the first few a transaction makes
are fsynced one by one (one new identity costs one fsync, as ever); a transaction that makes more
(an estate applied in bulk) writes the rest without, and `flush()`, called just before the state
file is written, makes them all durable at once.

A key file is trusted only after it proves its name: its certificate's SHA-1 thumbprint must be the
name (the `kid` of a signing key, the thumbprint of an identity certificate) and its private key
must be the certificate's. A file swapped by someone else, or damaged, is an error naming the file,
before anything is signed with it or published in a JWKS.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from msi_cli import hashing
from msi_cli.core.arm import new_guid, rx
from msi_cli.core.timefmt import iso
from msi_cli.core.model import KeyCredential, SigningKey
from msi_cli.errors import StateError
from msi_cli.store import files, journal

MAX_KEY_FILE = 64 * 1024
PENDING = ".pending"  # names of key files made by a transaction that has not committed yet
FSYNC_EACH = 4  # a transaction's first keys are fsynced one by one; the rest at once by flush()
_NAME = r"[A-Za-z0-9_-]{27}|[0-9A-F]{40}"  # a signing key's kid, a certificate's thumbprint


class FileKeyRing:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._new: list[Path] = []
        self._dir_checked = False
        self._dir_ready = False  # made and checked for writing (once per ring, not per key)
        self._journal = journal.Appender(directory / PENDING, "key journal")
        self._unsynced: list[Path] = []  # written without fsync: made durable by flush()
        self._verified: dict[str, bytes] = {}  # name -> certificate DER, for this ring's lifetime

    def _store(self, name: str, pem: bytes) -> None:
        if not self._dir_ready:
            files.private_dir(self.dir, tighten=True)
            self._dir_ready = self._dir_checked = True
        path = self.dir / f"{name}.pem"
        # journal first: if this writer is killed before it commits, the next one knows the file
        self._journal.append(f"{name}\n".encode("ascii"))
        durable = len(self._new) < FSYNC_EACH
        if not files.create_private(path, pem, durable):  # which removes what it wrote if it fails
            files.write_atomic(path, pem, durable)  # a file of that name already: replaced whole or not at all
        self._new.append(path)
        if not durable:
            self._unsynced.append(path)

    def flush(self) -> None:
        """Make the key files written without fsync durable: call before saving a state that names them."""
        journal.sync_files(self._unsynced)
        self._unsynced.clear()

    def __del__(self) -> None:
        # a ring that made keys outside a transaction (settle and discard_new close the journal)
        try:
            self._journal.close()
        except Exception:  # at interpreter exit the modules it uses may be gone (and the fd with them)
            pass

    def discard_new(self) -> None:
        """Forget keys made by a transaction that did not commit, and their journal entries."""
        self._journal.close()
        for path in self._new:
            with contextlib.suppress(OSError):
                path.unlink()
        if self._new:
            self._unjournal({p.name[: -len(".pem")] for p in self._new})
        self._new.clear()
        self._unsynced.clear()

    def _unjournal(self, names: set[str]) -> None:
        """Drop `names` from the journal (the journal goes when nothing is left in it)."""
        journal = self.dir / PENDING
        with contextlib.suppress(StateError, OSError):
            raw = files.read_private(journal, "key journal", MAX_KEY_FILE * 16)
            if raw is None:
                return
            rest = [n for n in raw.decode("ascii", "replace").split() if n not in names]
            if rest:
                files.write_atomic(journal, "".join(f"{n}\n" for n in rest).encode("ascii"), durable=False)
            else:
                os.unlink(journal)

    def settle(self, used: Callable[[], set[str]], used_by_changed: Callable[[], set[str]] | None = None) -> None:
        """Delete the key files that writers journalled but the committed state does not name
        (made by a writer killed before it committed), then the journal. Only files this key ring
        made are ever touched. Call with the state lock held, once the state is saved.
        `used_by_changed`: the key names of the objects this transaction changed or added. When
        the journal names only keys this ring made, nothing else can name them (a key is new and
        its name random), so that is all to look at, and no killed writer left files to remove."""
        self._journal.close()
        journal = self.dir / PENDING
        try:
            raw = files.read_private(journal, "key journal", MAX_KEY_FILE * 16)
        except StateError:
            return  # a journal msi did not write: leave the files alone
        if raw is None:
            return
        journalled = raw.decode("ascii", "replace").split()
        if used_by_changed is not None and set(journalled) <= {p.name[: -len(".pem")] for p in self._new}:
            names = used_by_changed()
        else:
            files.remove_leftovers(self.dir)  # a writer killed while writing a key file journalled it first
            names = used()  # only now: the state's every key name takes reading all its principals
        for name in journalled:
            if name not in names and rx(_NAME).fullmatch(name):
                with contextlib.suppress(OSError):
                    os.unlink(self.dir / f"{name}.pem")
        with contextlib.suppress(OSError):
            os.unlink(journal)

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

    def _checked(self, name: str, thumbprint: Callable[[bytes], str]) -> bytes:
        """The key file `name`, after it proved its name (see the module's docstring)."""
        from msi_cli import crypto

        pem = self._read(name)
        if self._verified.get(name) is None:
            path = self.dir / f"{name}.pem"
            try:
                der = crypto.check_key_file(pem)  # in plain Python for a file as msi writes it
            except ValueError as exc:  # a damaged curve or algorithm id included
                raise StateError(f"key file {path} cannot be used: {exc}", hint="it was damaged or replaced") from None
            if thumbprint(der) != name:
                raise StateError(
                    f"key file {path} holds a certificate whose thumbprint is not {name}",
                    hint="it was replaced or damaged; msi will not sign with it or publish it",
                )
            self._verified[name] = der
        return pem

    def new_signing_key(self, tenant_id: str, created: int, signs_until: int, published_until: int) -> SigningKey:
        from msi_cli import crypto

        pem, der = crypto.new_rsa_signing_certificate(f"sts.windows.net/{tenant_id}", created, published_until)
        kid = crypto.sha1_thumbprint_b64url(der)
        self._store(kid, pem)
        self._verified[kid] = der
        return SigningKey(kid, iso(created), iso(signs_until), iso(published_until))

    def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential:
        from msi_cli.store import quickcert

        pem, der = quickcert.new_ec_certificate(app_id, start, end)
        thumbprint = hashing.sha1_thumbprint_hex(der)
        self._store(thumbprint, pem)
        self._verified[thumbprint] = der
        return KeyCredential(new_guid(), thumbprint, iso(start), iso(end))

    def new_issuer_key(self, issuer_name: str, created: int, until: int) -> str:
        """An external OIDC issuer's RS256 key (msi plays the issuer); returns its kid."""
        from msi_cli import crypto

        pem, der = crypto.new_rsa_signing_certificate(f"issuer {issuer_name}", created, until)
        kid = crypto.sha1_thumbprint_b64url(der)
        self._store(kid, pem)
        return kid

    def signing_key_pem(self, kid: str) -> bytes:
        from msi_cli import crypto

        return self._checked(kid, crypto.sha1_thumbprint_b64url)

    def certificate_pem(self, thumbprint: str) -> bytes:
        from msi_cli import crypto

        return self._checked(thumbprint, crypto.sha1_thumbprint_hex)

    def public_certificate_der(self, kid: str) -> bytes:
        from msi_cli import crypto

        self._checked(kid, crypto.sha1_thumbprint_b64url)
        return self._verified[kid]


class ScratchKeyRing:
    """The key ring of a rehearsal that must check tokens (a move's --what-if): the certificates
    MSRP would issue first are really made, so the identities are checked with them as the real
    move would be, but only in memory, never written; what exists is read from the real ring.
    Signing and issuer keys are never made here (a rehearsal signs nothing new)."""

    def __init__(self, real: FileKeyRing) -> None:
        self._real = real
        self._made: dict[str, bytes] = {}  # thumbprint -> key file, in memory

    def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential:
        from msi_cli.store import quickcert

        pem, der = quickcert.new_ec_certificate(app_id, start, end)
        thumbprint = hashing.sha1_thumbprint_hex(der)
        self._made[thumbprint] = pem
        return KeyCredential(new_guid(), thumbprint, iso(start), iso(end))

    def new_signing_key(self, tenant_id: str, created: int, signs_until: int, published_until: int) -> SigningKey:
        raise AssertionError("a rehearsal makes no signing key")

    def new_issuer_key(self, issuer_name: str, created: int, until: int) -> str:
        raise AssertionError("a rehearsal makes no issuer key")

    def signing_key_pem(self, kid: str) -> bytes:
        return self._real.signing_key_pem(kid)

    def certificate_pem(self, thumbprint: str) -> bytes:
        made = self._made.get(thumbprint)
        return made if made is not None else self._real.certificate_pem(thumbprint)

    def public_certificate_der(self, kid: str) -> bytes:
        return self._real.public_certificate_der(kid)
