"""Entra's token endpoint for workload identity federation: a client-credentials request whose
client assertion is an external OIDC token, traded for the managed identity's access token.

`exchange(ctx, tenant_ref, form, issuer_base)` is the whole rule set, with no I/O of its own: the
state, the simulated time and the key ring come in the context, and the answer goes out as
(HTTP status, JSON body). Checks run in this order, each with Entra's code and status:

1. the tenant in the path exists: AADSTS90002 (400 invalid_tenant);
2. every parameter is present (grant_type, client_id, scope, client_assertion_type,
   client_assertion): AADSTS900144 (400 invalid_request); grant_type is client_credentials:
   AADSTS70003 (400 unsupported_grant_type); scope is `{resource}/.default`: AADSTS1002012
   (400 invalid_scope);
3. client_id names a user-assigned identity of this tenant whose service principal is in it:
   AADSTS700016 (400 unauthorized_client);
4. the assertion is a JWT: AADSTS50027 (400 invalid_request);
5. a federated credential of the identity trusts its `iss`: AADSTS700211 (401 invalid_client);
6. its signature verifies with the issuer's published keys (only issuers msi plays publish any
   here): AADSTS700027 (401 invalid_client);
7. `nbf <= now < exp` on the simulated clock: AADSTS700024 (401 invalid_client, with the times);
8. a credential with that issuer has the assertion's `sub`: AADSTS700213, or AADSTS7002138 when
   only the letter case differs (401 invalid_client);
9. ... and its audience is among the assertion's `aud`: AADSTS70021 (400 invalid_request), the
   general "no matching federated identity record" (the audience-specific code is unverified);
10. the resource is one the tenant knows: AADSTS500011 (400 invalid_resource).
Issuer, subject and audience are compared exactly and case-sensitively.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from msi_cli.core import audiences, federation, issuers, lookup, tokens
from msi_cli.core.timefmt import iso
from msi_cli.core.context import Ctx
from msi_cli.core.model import USER, Identity, State, Tenant

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from msi_cli.core.model import FederatedCredential

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PARAMETERS = ("grant_type", "client_id", "scope", "client_assertion_type", "client_assertion")
PARAMETERS_V1 = ("grant_type", "client_id", "resource", "client_assertion_type", "client_assertion")  # /oauth2/token
DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
CHECK_FIC = "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."


class Refused(Exception):
    """Entra's answer to a request it refuses."""

    def __init__(self, status: int, error: str, code: int, description: str, reason: str = "") -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description
        self.reason = reason or description

    def body(self, now: int, trace_id: str | None = None, correlation_id: str | None = None) -> dict[str, Any]:
        stamp = iso(now).replace("T", " ")
        trace = trace_id or str(uuid.uuid4())
        corr = correlation_id or str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def _tenant(state: State, ref: str) -> Tenant:
    found = lookup.tenant_by_id(state, ref)
    if found is not None:
        return found
    raise Refused(400, "invalid_tenant", 90002,
                  f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and are signing into the correct "
                  "cloud. Check with your subscription administrator, this may happen if there are no active subscriptions "
                  "for the tenant.", reason=f"no simulated tenant '{ref}'")


def _parameters(form: dict[str, str], v1: bool = False) -> tuple[str, str, str]:
    for name in PARAMETERS_V1 if v1 else PARAMETERS:
        value = form.get(name, "")
        if not value or (name == "client_assertion_type" and value != ASSERTION_TYPE):
            raise Refused(400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.",
                          reason=f"'{name}' is missing" + (f" or not {ASSERTION_TYPE}" if name == "client_assertion_type" else ""))
    if form["grant_type"] != GRANT_TYPE:
        raise Refused(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{form['grant_type']}'.")
    if v1:  # the v1 endpoint names the resource itself
        return form["client_id"], form["resource"], form["client_assertion"]
    scope = form["scope"]
    resource = scope[: -len("/.default")] if scope.endswith("/.default") else None
    if not resource or " " in scope:
        raise Refused(400, "invalid_scope", 1002012,
                      f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
                      "/.default suffixed to the resource identifier (application ID URI).")
    return form["client_id"], resource, form["client_assertion"]


def _identity(state: State, tenant: Tenant, client_id: str) -> Identity:
    low = client_id.strip().lower()
    identity = next((i for i in state.identities.values() if i.client_id == low), None)
    sp = state.principals.get(identity.principal_id) if identity is not None else None
    why = None
    if identity is None or sp is None:
        why = f"no identity has client id '{client_id}'"
    elif sp.tenant_id != tenant.id:
        why = f"the service principal of identity {identity.principal_id} is in tenant {sp.tenant_id}, not '{tenant.name}'"
    else:
        why = tokens.transferred(state, identity)
    if why is not None:
        raise Refused(400, "unauthorized_client", 700016, tokens.not_in_directory(client_id, tenant.id), reason=why)
    assert identity is not None  # else `why` is set and Refused raised above
    return identity


def _decode(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    from msi_cli import crypto

    try:
        head, body, _ = assertion.split(".")
        header, claims = json.loads(crypto.b64url_decode(head)), json.loads(crypto.b64url_decode(body))
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deeply: as malformed as any other
        header = claims = None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Refused(400, "invalid_request", 50027, "JWT token is invalid or malformed.", reason="the client assertion is not a JWT")
    return header, claims


_PUBLIC: dict[str, PublicKeyTypes] = {}  # issuers' public keys by kid


def _verify_signature(ctx: Ctx, base: str, assertion: str, header: dict[str, Any], iss: str) -> None:
    issuer = issuers.at_url(ctx.state, base, iss)
    kid = header.get("kid")
    if issuer is None or kid != issuer.kid or header.get("alg") != "RS256":
        where = "msi plays no issuer at that URL" if issuer is None else f"kid {kid!r} is not in the issuer's JWKS"
        raise Refused(401, "invalid_client", 700027,
                      f"Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used "
                      f"by client: '{kid or ''}']", reason=f"no published key of '{iss}' verifies the assertion: {where}")
    public = _PUBLIC.get(issuer.kid)
    if public is None:  # a kid is the certificate's thumbprint: its key never changes
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        from msi_cli import crypto

        public = _PUBLIC[issuer.kid] = load_der_public_key(crypto.certificate_spki(ctx.keys.public_certificate_der(issuer.kid)))
    if not _rs256_verifies(public, assertion):
        raise Refused(401, "invalid_client", 700027, "Client assertion contains an invalid signature.",
                      reason=f"the assertion does not verify with the key of issuer '{issuer.name}'")


def _rs256_verifies(public: PublicKeyTypes, assertion: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from msi_cli import crypto

    if not isinstance(public, rsa.RSAPublicKey):  # an issuer's key is RSA; another kind cannot verify RS256
        return False
    head_body, _, sig = assertion.rpartition(".")
    try:
        public.verify(crypto.b64url_decode(sig), head_body.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        return False
    return True


def _stamp(epoch: object) -> str:
    value = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0
    try:
        return iso(value).replace("Z", ".0000000Z")
    except (OverflowError, OSError, ValueError):  # a time no calendar date holds (another issuer's token may carry one)
        return str(value)


def _check_time(now: int, claims: dict[str, Any]) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    ok_exp = isinstance(exp, int) and not isinstance(exp, bool) and now < exp
    ok_nbf = isinstance(nbf, int) and not isinstance(nbf, bool) and nbf <= now
    if not (ok_exp and ok_nbf):
        raise Refused(401, "invalid_client", 700024,
                      f"Client assertion is not within its valid time range. Current time: {_stamp(now)}, assertion valid from "
                      f"{_stamp(nbf)}, expiry time of assertion {_stamp(exp)}. Review the documentation at "
                      "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                      reason="the assertion has expired" if ok_nbf else "the assertion is not valid yet")


def _match(creds: list[FederatedCredential], claims: dict[str, Any]) -> None:
    iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    same_sub = [c for c in creds if c.subject == sub]
    if not same_sub:
        folded = isinstance(sub, str) and any(c.subject.lower() == sub.lower() for c in creds)
        code = 7002138 if folded else 700213
        raise Refused(401, "invalid_client", code,
                      f"No matching federated identity record found for presented assertion subject '{sub}'. "
                      + ("Please note that the matching is done using a case-sensitive comparison. " if folded else "")
                      + f"{CHECK_FIC} {DOCS}",
                      reason=f"no credential with issuer '{iss}' has subject '{sub}'" + (" (only the letter case differs)" if folded else ""))
    if not any(c.audiences[0] in auds for c in same_sub):
        shown = aud if isinstance(aud, str) else ",".join(str(a) for a in auds)
        raise Refused(400, "invalid_request", 70021,
                      f"No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. "
                      f"Assertion Subject: '{sub}'. Assertion Audience: '{shown}'. {DOCS}",
                      reason=f"the credential for issuer '{iss}' and subject '{sub}' expects audience '{same_sub[0].audiences[0]}'")


def check(ctx: Ctx, tenant_ref: str, form: dict[str, str], issuer_base: str, v1: bool = False) -> tuple[Tenant, Identity, str]:
    """Validate a request in Entra's order; returns (tenant, identity, resource) or raises Refused.
    `v1`: the request came to the v1 endpoint (`/oauth2/token`), which takes `resource`, not `scope`."""
    state = ctx.state
    tenant = _tenant(state, tenant_ref)
    client_id, resource, assertion = _parameters(form, v1)
    identity = _identity(state, tenant, client_id)
    header, claims = _decode(assertion)
    iss = claims.get("iss")
    creds = [c for c in federation.of_identity(state, identity) if c.issuer == iss] if identity.kind == USER else []
    if not creds:
        raise Refused(401, "invalid_client", 700211,
                      f"No matching federated identity record found for presented assertion issuer '{iss}'. {CHECK_FIC} {DOCS}",
                      reason=f"no federated credential of '{identity.name}' trusts issuer '{iss}'")
    assert isinstance(iss, str)  # it equals a credential's issuer
    _verify_signature(ctx, issuer_base, assertion, header, iss)
    _check_time(ctx.now, claims)
    _match(creds, claims)
    if not audiences.audience_known(resource):
        raise Refused(400, "invalid_resource", 500011,
                      f"The resource principal named {resource} was not found in the tenant named {tenant.name}. This can happen if "
                      "the application has not been installed by the administrator of the tenant or consented to by any user in "
                      "the tenant. You might have sent your authentication request to the wrong tenant.",
                      reason=f"'{resource}' is not a resource the simulated tenants know")
    return tenant, identity, resource


def exchange(ctx: Ctx, tenant_ref: str, form: dict[str, str], issuer_base: str,
             correlation_id: str | None = None, v1: bool = False) -> tuple[int, dict[str, Any]]:
    """Entra's answer to `POST /{tenant}/oauth2/v2.0/token` (or, `v1`, `/oauth2/token`) with a
    federated client assertion: (HTTP status, JSON body). `issuer_base` is where the issuers msi
    plays are served."""
    try:
        tenant, identity, resource = check(ctx, tenant_ref, form, issuer_base, v1)
    except Refused as refused:
        return refused.status, refused.body(ctx.now, correlation_id=correlation_id)
    return issue(ctx, tenant, identity, resource, v1)


def issue(ctx: Ctx, tenant: Tenant, identity: Identity, resource: str, v1: bool = False) -> tuple[int, dict[str, Any]]:
    """The token for a request that `check` accepted, in the endpoint's shape."""
    token, iat, exp = tokens.sign(ctx, tenant, identity, resource)
    ctx.log("Issue token", identity.resource_id, f"federated credential exchange for {resource}")
    if v1:  # the v1 endpoint's body: every value a string, with the times and the resource
        return 200, {"token_type": "Bearer", "expires_in": str(exp - ctx.now), "ext_expires_in": str(exp - ctx.now),
                     "expires_on": str(exp), "not_before": str(iat), "resource": resource, "access_token": token}
    return 200, {"token_type": "Bearer", "expires_in": exp - ctx.now, "ext_expires_in": exp - ctx.now, "access_token": token}


def refusal(ctx: Ctx, tenant_ref: str, form: dict[str, str], issuer_base: str, v1: bool = False) -> Refused | None:
    """The refusal a request gets, or None when it would be answered with a token (for logs and tests)."""
    try:
        check(ctx, tenant_ref, form, issuer_base, v1)
    except Refused as refused:
        return refused
    return None
