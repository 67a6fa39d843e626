"""Projected token files: the AZURE_FEDERATED_TOKEN_FILE a workload reads, kept fresh.

A projection is a pair of owner-only files in `<state>.d/federation/`: `{id}.json` says which
issuer mints the token, for which subject and audience and for how long (and, for GitHub Actions
emulation, the job's request token); `{id}.jwt` holds the current token. `msi env` writes both;
`msi serve`'s periodic task re-mints each token once 80% of its lifetime has passed on the
simulated clock (as the kubelet rotates projected service-account tokens), so within a second of
`msi clock advance`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msi_cli.store import files

if TYPE_CHECKING:
    from msi_cli.core.context import KeyRing
    from msi_cli.core.model import State

FORMAT = 1
ROTATE_AT = 0.8  # of the token's lifetime


@dataclass(frozen=True)
class Projection:
    id: str
    issuer: str  # issuer name
    subject: str
    audience: str
    lifetime: int | None  # None: the issuer kind's default
    secret: str = ""  # the ACTIONS_ID_TOKEN_REQUEST_TOKEN of a GitHub Actions job, if any


def folder(private: Path) -> Path:
    return private / "federation"


def projection_id(issuer: str, subject: str, audience: str) -> str:
    return hashlib.sha256(f"{issuer.lower()}\n{subject}\n{audience}".encode()).hexdigest()[:16]


def token_path(private: Path, pid: str) -> Path:
    return folder(private) / f"{pid}.jwt"


def _spec_path(private: Path, pid: str) -> Path:
    return folder(private) / f"{pid}.json"


def read(private: Path, pid: str) -> Projection | None:
    if not pid.isalnum():
        return None
    try:
        data = json.loads(_spec_path(private, pid).read_bytes())
        life = data.get("lifetime")
        return Projection(pid, str(data["issuer"]), str(data["subject"]), str(data["audience"]),
                          int(life) if life is not None else None, str(data.get("secret", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(private: Path, issuer: str, subject: str, audience: str, lifetime: int | None, github: bool) -> Projection:
    """Create or keep the projection for (issuer, subject, audience); a GitHub job keeps the
    request token it was first given, so shells set up earlier still work."""
    pid = projection_id(issuer, subject, audience)
    old = read(private, pid)
    secret = (old.secret if old is not None and old.secret else secrets.token_urlsafe(32)) if github else ""
    proj = Projection(pid, issuer, subject, audience, lifetime, secret)
    files.private_dir(folder(private), tighten=True)
    data = {"format": FORMAT, "issuer": issuer, "subject": subject, "audience": audience, "lifetime": lifetime, "secret": secret}
    files.write_atomic(_spec_path(private, pid), (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    return proj


def all_ids(private: Path) -> list[str]:
    try:
        return sorted(p.stem for p in folder(private).glob("*.json"))
    except OSError:
        return []


def _claims_of(path: Path) -> dict[str, Any] | None:
    from msi_cli import crypto

    try:
        body = path.read_text("ascii").strip().split(".")[1]
        claims = json.loads(crypto.b64url_decode(body))
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def due(path: Path, now: int, iss: str) -> bool:
    """Whether the token file needs a new token: none yet, another issuer URL (the server moved),
    past 80% of its lifetime, or issued in the simulated future (the clock was moved back)."""
    claims = _claims_of(path)
    if claims is None or claims.get("iss") != iss:
        return True
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or now < iat:
        return True
    return now >= iat + (exp - iat) * ROTATE_AT


def refresh(private: Path, state: State, keys: KeyRing, base: str, now: int, only: str | None = None) -> list[str]:
    """Re-mint every projected token that is due (or just `only`); returns the ids refreshed.
    A projection whose issuer no longer exists is left alone."""
    from msi_cli.core import issuers

    done = []
    for pid in [only] if only else all_ids(private):
        proj = read(private, pid)
        if proj is None:
            continue
        issuer = state.issuers.get(proj.issuer.lower())
        if issuer is None:
            continue
        path = token_path(private, pid)
        if not due(path, now, issuers.url(base, issuer.name)):
            continue
        token = issuers.mint(keys, issuer, base, now, proj.subject, proj.audience, None, proj.lifetime)
        files.write_atomic(path, token.encode("ascii"), durable=False)
        done.append(pid)
    return done
