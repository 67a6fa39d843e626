"""Checking an access token as a resource server does: the signature against the issuing
tenant's published keys (core/tokens.published_keys), exp/nbf against the simulated clock, and the
audience if asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msi_cli.core.model import State
from msi_cli.core.tokens import published_keys

if TYPE_CHECKING:
    from msi_cli.core.context import KeyRing


def verify(state: State, keys: KeyRing, now: int, token: str, audience: str | None = None) -> dict[str, Any]:
    """Check a token the way a resource server does, against the issuing tenant's published keys
    and the simulated clock. Returns the verdict, the reason when invalid, header and claims."""
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    from msi_cli.core.timefmt import iso

    result: dict[str, Any] = {"valid": False, "reason": "", "issuer": None, "principalExists": None, "header": {}, "claims": {}}
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        result["reason"] = "malformed: not a signed JWT"
        return result
    result["header"], result["claims"] = header, claims
    oid = claims.get("oid")
    result["principalExists"] = isinstance(oid, str) and oid in state.principals
    tid = claims.get("tid")
    tenant = state.tenants.get(tid) if isinstance(tid, str) else None
    if tenant is None or claims.get("iss") != f"https://sts.windows.net/{tenant.id}/":
        result["reason"] = f"unknown issuer: {claims.get('iss')!r} is not a simulated tenant"
        return result
    result["issuer"] = tenant.name
    kid = header.get("kid")
    key = next((k for k in published_keys(tenant, iso(now)) if k.kid == kid), None)
    if key is None:
        result["reason"] = f"unknown key: kid {kid!r} is not published by tenant '{tenant.name}'"
        return result
    public = x509.load_der_x509_certificate(keys.public_certificate_der(key.kid)).public_key()
    if not isinstance(public, rsa.RSAPublicKey):  # PyJWT raises TypeError for a key RS256 cannot use
        result["reason"] = "bad signature"
        return result
    try:
        jwt.decode(token, public, algorithms=["RS256"],
                   options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False})
    except jwt.InvalidSignatureError:
        result["reason"] = "bad signature"
        return result
    except jwt.PyJWTError as exc:
        result["reason"] = f"bad token: {exc}"
        return result
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int) or exp <= now:
        result["reason"] = f"expired at {iso(exp) if isinstance(exp, int) else exp} (now {iso(now)})"
        return result
    if isinstance(nbf, int) and nbf > now:
        result["reason"] = f"not valid before {iso(nbf)} (now {iso(now)})"
        return result
    if audience is not None and str(claims.get("aud", "")).rstrip("/").lower() != audience.rstrip("/").lower():
        result["reason"] = f"wrong audience: the token is for {claims.get('aud')!r}, not {audience!r}"
        return result
    result["valid"] = True
    return result
