"""Who is calling: the bearer token must be one msi issued (signed by the tenant's published key,
checked on the simulated clock) for one of ARM's audiences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from msi_cli.core import verify
from msi_cli.core.model import State
from msi_cli.server.arm import errors

if TYPE_CHECKING:
    from msi_cli.core.context import KeyRing


@dataclass(frozen=True, slots=True)
class Caller:
    principal_id: str
    tenant_id: str
    app_id: str


def authenticate(state: State, keys: KeyRing, now: int, authorization: str | None) -> Caller:
    if authorization is None:
        raise errors.missing_header()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.invalid_header()
    verdict = verify.verify(state, keys, now, token.strip())
    claims = verdict["claims"]
    if not verdict["valid"]:
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if verdict["reason"].startswith("expired") and isinstance(exp, int):
            raise errors.expired_token(exp, now)
        raise errors.invalid_token()
    aud = claims.get("aud")
    if aud not in errors.ALLOWED_AUDIENCES:
        raise errors.wrong_audience(aud)
    oid, tid = claims.get("oid"), claims.get("tid")
    if not isinstance(oid, str) or not isinstance(tid, str):
        raise errors.invalid_token()
    return Caller(oid, tid, str(claims.get("appid", "")))
