"""`msi tls`: msi's local certificate authority, and server certificates for local emulators."""


import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import command
from msi_cli.cli.options import StateArg
from msi_cli.cli.render import note

if TYPE_CHECKING:
    from msi_cli.store.ca import LocalCA
    from msi_cli.store.statefile import StateFile

tls_app = typer.Typer(help="msi's local certificate authority: show it, issue server certificates for local emulators.",
                      no_args_is_help=True, epilog="Example: msi tls show")
app.add_typer(tls_app, name="tls")

CERT_FILE, KEY_FILE, CA_FILE = "cert.pem", "key.pem", "ca.pem"


def _authority(sf: "StateFile") -> "LocalCA":
    from msi_cli.store.ca import LocalCA

    return LocalCA(sf.private)


def _made(ca: "LocalCA", created: bool) -> None:
    if created:
        note(f"made a local certificate authority: {ca.paths.cert}")


@command(tls_app, "show", epilog="Example: msi tls show\n\nExample: msi tls show --query fingerprintSha256 -o tsv")
def show(*, sf: StateArg) -> dict[str, Any]:
    """Show msi's local CA: subject, SHA-256 fingerprint, validity and the path of its certificate
    (never its key). The CA is made on first need: P-256, valid 10 years, its key owner-only in
    the state's private folder. `msi serve` presents certificates it issued; `msi env` makes
    clients trust it."""
    from msi_cli.core.timefmt import real_now
    from msi_cli.tls import certs

    ca = _authority(sf)
    cert, created = ca.ensure(real_now())
    _made(ca, created)
    info = certs.describe(cert)
    return {"subject": info["subject"], "fingerprintSha256": info["fingerprintSha256"], "notBefore": info["notBefore"],
            "notAfter": info["notAfter"], "certificate": str(ca.paths.cert)}


@command(
    tls_app,
    "cert",
    epilog="Example: msi tls cert --host localhost --host 127.0.0.1 --out ./certs\n\n"
    "Example: azurite --oauth basic --cert ./certs/cert.pem \\\n"
    "             --key ./certs/key.pem --skipApiVersionCheck",
)
def cert(
    host: Annotated[list[str], typer.Option("--host", help="A DNS name or IP address the certificate is for (repeatable), e.g. localhost, 127.0.0.1.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write cert.pem, key.pem and ca.pem into (made if missing; existing files are replaced).")],
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Validity in days (cut to the CA's).")] = 365,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Issue a server certificate from msi's local CA for a local emulator or server (Azurite with
    `--oauth basic` is the model case): writes cert.pem (P-256, subjectAltName from --host,
    extended key usage serverAuth), key.pem (its key, owner-only) and ca.pem (the CA, for clients
    to trust) into the folder. Clients trust it through `msi env` (or ca.pem directly)."""
    from msi_cli.core.timefmt import real_now
    from msi_cli.errors import InvalidArgument, StateError
    from msi_cli.store import files
    from msi_cli.tls import certs

    certs.split_hosts(host)  # bad input fails before anything is made
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"--out {out} is a file, not a folder")
    ca = _authority(sf)
    now = real_now()
    _made(ca, ca.ensure(now)[1])
    key_pem, cert_pem, ca_pem = ca.issue(host, now, days)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create folder {out}: {exc.strerror}") from None
    written = {}
    for name, data, public in ((KEY_FILE, key_pem, False), (CERT_FILE, cert_pem, True), (CA_FILE, ca_pem, True)):
        path = out / name
        files.write_atomic(path, data)
        if public:  # certificates are public: a container user other than the owner may read them
            os.chmod(path, 0o644)
        written[name] = str(path.resolve())
    info = certs.describe(cert_pem)
    return {"certificate": written[CERT_FILE], "key": written[KEY_FILE], "ca": written[CA_FILE], **info}
