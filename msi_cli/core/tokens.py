"""Access tokens: which identity a host picks, whether the platform can get it a token, and the
token itself, a v1 JWT signed RS256 by the tenant of the resource's subscription.

The chain of trust, each link from the model:
1. the host finds the identity: a system-assigned identity is bound to the resource id it was
   enabled on (its `xms_mirid`); user-assigned ones are listed on the resource;
2. the tenant that signs (the resource's subscription's directory) must hold the identity's
   service principal;
3. MSRP would sign a client assertion with the identity's current certificate, for the tenant
   to check against the certificates listed on the service principal: the certificate must be
   valid at the simulated time, and its key file prove itself (see _check_client_credential);
4. the audience must be a resource the tenant knows.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from msi_cli.core import arm, credentials, lookup
from msi_cli.core.audiences import KNOWN_AUDIENCES, audience_known
from msi_cli.core.context import Ctx
from msi_cli.core.model import SYSTEM, Identity, Resource, State
from msi_cli.core.datatype import record
from msi_cli.errors import MsiError, TokenError

if TYPE_CHECKING:
    from msi_cli.core.context import KeyRing
    from msi_cli.crypto import SigningKeyTypes
    from msi_cli.core.model import KeyCredential, ServicePrincipal, SigningKey, Tenant

LIFETIME = 86400  # what IMDS reports as expires_in for a fresh token
BACKDATE = 300  # iat and nbf sit five minutes before issue
CACHE_MARGIN = 300  # the platform hands out a fresh token when the cached one has less left

@record(frozen=True)
class Selector:
    """At most one of client id, object (principal) id or user-assigned identity resource id."""

    client_id: str | None = None
    object_id: str | None = None
    msi_res_id: str | None = None

    def given(self) -> int:
        return sum(v is not None for v in (self.client_id, self.object_id, self.msi_res_id))


IDENTITY_NOT_FOUND = "Identity not found"
MULTIPLE_USER_ASSIGNED = (
    "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"
)


NO_USER_ASSIGNED = "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
APPSERVICE_UNEXPECTED = "An unexpected error occured while fetching the AAD Token."  # sic: App Service's spelling
APPSERVICE_UNABLE = "Unable to load the proper Managed Identity."


def require_endpoint(resource: Resource) -> None:
    """Code running on the resource can ask its host for a token: VMs and scale sets (IMDS), web,
    function and container apps (the App Service protocol). A Key Vault or a storage account has
    none: its identity is the service's own (customer-managed keys), never handed to code."""
    if resource.rtype.host is None:
        raise MsiError(f"'{resource.name}' is a {resource.rtype.label}, which has no managed identity token endpoint",
                       hint="use a vm, vmss, containerapp, webapp or functionapp")


def not_in_directory(client_id: str, tenant_id: str) -> str:
    """Entra's AADSTS700016 description: no application of this client id in the tenant."""
    return (f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the "
            "application has not been installed by the administrator of the tenant or consented to by any user in the "
            "tenant. You may have sent your authentication request to the wrong tenant.")


def transferred(state: State, identity: Identity) -> str | None:
    """Why a user-assigned identity gets no token after its subscription moved to another tenant
    (its service principal stayed in the old one: azure-behaviour.md, it must be deleted,
    re-created and re-attached), for every way in: IMDS, App Service and Entra's exchange; None
    when its subscription's tenant still holds its principal."""
    if identity.kind == SYSTEM:
        return None
    home = lookup.tenant_of(state, arm.parts(identity.resource_id).subscription)
    sp = state.principals.get(identity.principal_id)
    if sp is None or home.id == sp.tenant_id:
        return None
    return (f"the subscription of '{identity.name}' was transferred to tenant {home.id}; its service principal stayed in "
            f"{sp.tenant_id}: a user-assigned identity must be deleted, re-created and re-attached after its subscription moves")


def select(state: State, resource: Resource, selector: Selector) -> Identity:
    """Azure's selection rules: a selector must match one of the resource's identities. Without
    one, IMDS hosts take the system-assigned identity if enabled, else the only user-assigned one;
    App Service, Functions and Container Apps take the system-assigned identity only. An entry
    left by a deleted user-assigned identity (dangling) still counts, but gets no token."""
    if selector.given() > 1:
        raise TokenError("invalid_request", "Only one of client_id, object_id or msi_res_id may be given", reason="give at most one selector")
    system = state.identities[resource.system_principal_id] if resource.system_principal_id is not None else None
    entries = [(u, lookup.live_identity(state, u)) for u in resource.user_assigned]
    if selector.client_id is not None:
        want = selector.client_id.strip().lower()
        hit = system if system is not None and system.client_id == want else None
        matches = [e for e in entries if e[0].client_id == want]
    elif selector.object_id is not None:
        want = selector.object_id.strip().lower()
        hit = system if system is not None and system.principal_id == want else None
        matches = [e for e in entries if e[0].principal_id == want]
    elif selector.msi_res_id is not None:
        want = selector.msi_res_id.strip().lower().rstrip("/")
        hit, matches = None, [e for e in entries if e[0].resource_id.lower() == want]
    else:
        if system is not None:
            return system
        if entries and resource.rtype.host == "appservice":
            raise TokenError(
                "invalid_request", IDENTITY_NOT_FOUND, code="no_identity",
                reason=f"{resource.rtype.label}s use the system-assigned identity when no identity is specified, and "
                f"'{resource.name}' has none; select a user-assigned identity with client_id, principal_id or mi_res_id",
            )
        if len(entries) > 1:
            raise TokenError("invalid_request", MULTIPLE_USER_ASSIGNED, code="multiple",
                             reason=f"'{resource.name}' holds {len(entries)} user-assigned identities and no system-assigned one")
        if not entries:
            raise TokenError("invalid_request", IDENTITY_NOT_FOUND, code="no_identity", reason=f"'{resource.name}' has no managed identity")
        hit, matches = None, entries
    if hit is not None:
        return hit
    if matches and matches[0][1] is not None:
        return matches[0][1]
    if matches:
        entry = matches[0][0]
        raise TokenError(
            "invalid_request", IDENTITY_NOT_FOUND, code="selector_miss",
            reason=f"user-assigned identity {entry.resource_id} (principalId {entry.principal_id}) was deleted; "
            f"'{resource.name}' keeps its entry until removed: msi unassign {resource.name} --user-assigned {entry.resource_id}",
        )
    why = f"'{resource.name}' has no managed identity" if system is None and not entries else f"no identity of '{resource.name}' matches the selector"
    raise TokenError("invalid_request", IDENTITY_NOT_FOUND, code="selector_miss", reason=why)


def appservice_answer(exc: TokenError) -> tuple[int, str]:
    """The status and message the App Service / Container Apps endpoint answers a refusal with:
    an unknown user-assigned selector is a 400 naming the selectors, an unknown audience a 500
    (which clients retry), no identity without a selector App Service's 'Unable to load'."""
    if exc.code == "selector_miss":
        return 400, NO_USER_ASSIGNED
    if exc.code in ("no_identity", "multiple"):
        return 400, APPSERVICE_UNABLE
    if exc.code == "unknown_audience":
        return 500, APPSERVICE_UNEXPECTED
    return exc.status, exc.description


def _unknown_audience_reason(audience: str) -> str:
    reason = f"'{audience}' is not a resource the simulated tenants know"
    close = lookup.did_you_mean(audience, KNOWN_AUDIENCES)
    return f"{reason}; {close}" if close else reason


def cache_key(state: State, resource: Resource, identity: Identity, audience: str) -> str:
    tenant = lookup.tenant_of(state, resource.subscription_id)
    return f"{identity.principal_id}|{tenant.id}|{resource.id.lower()}|{audience}"


def _mirid(resource_id: str) -> str:
    return resource_id.replace("/resourceGroups/", "/resourcegroups/")


def check_chain(ctx: Ctx, resource: Resource, identity: Identity, audience: str) -> tuple[Tenant, ServicePrincipal, KeyCredential]:
    """Walk the chain of trust; returns (tenant, service principal, current certificate) or raises."""
    state = ctx.state
    tenant = lookup.tenant_of(state, resource.subscription_id)
    if identity.kind == SYSTEM and identity.resource_id.lower() != resource.id.lower():
        raise TokenError(
            "invalid_request", IDENTITY_NOT_FOUND, code="no_identity",
            reason=f"the system-assigned identity {identity.principal_id} was issued for {identity.resource_id}, "
            f"not for the resource's current id {resource.id}; disable and re-enable it to get a new identity",
        )
    sp = state.principals.get(identity.principal_id)
    if sp is None or sp.tenant_id != tenant.id:
        raise TokenError(
            "unauthorized_client", f"AADSTS700016: {not_in_directory(identity.client_id, tenant.id)}",
            reason=f"tenant '{tenant.name}' ({tenant.id}), which signs tokens for '{resource.name}', does not hold the "
            f"service principal of identity {identity.principal_id}"
            + (f" (it lives in tenant {sp.tenant_id})" if sp is not None else ""),
        )
    stranded = transferred(state, identity)
    if stranded is not None:
        raise TokenError("unauthorized_client", f"AADSTS700016: {not_in_directory(identity.client_id, tenant.id)}", reason=stranded)
    cert = credentials.current_certificate(sp, ctx.now)
    if cert is None:
        raise TokenError(
            "invalid_client",
            "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key used is expired., "
            f"Thumbprint of key used by client: '{sp.key_credentials[-1].thumbprint if sp.key_credentials else ''}']",
            reason=f"identity {identity.principal_id} has no certificate valid at {ctx.now_iso}",
        )
    _check_client_credential(ctx, cert)
    if not audience_known(audience):
        raise TokenError(
            "invalid_resource",
            f"AADSTS500011: The resource principal named {audience} was not found in the tenant named {tenant.name}. "
            "This can happen if the application has not been installed by the administrator of the tenant or consented "
            "to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
            reason=_unknown_audience_reason(audience),
            code="unknown_audience",
        )
    return tenant, sp, cert


def _check_client_credential(ctx: Ctx, cert: KeyCredential) -> None:
    """MSRP asks for the token with an assertion signed by the identity's private key, and the
    tenant verifies it with the certificate listed on the service principal (found by thumbprint).
    The key ring proves just that before it hands out a key file: the file's certificate has the
    listed thumbprint (its name) and its private key is that certificate's (the same public key;
    for P-256, d*G is the certificate's point). So the assertion would verify, and is not made:
    signing it and verifying it cost about 4 ms of a fresh token and could not fail. A missing,
    damaged or swapped key file is a StateError naming the file, as the platform would refuse it."""
    ctx.keys.certificate_pem(cert.thumbprint)


def mint(ctx: Ctx, resource: Resource, identity: Identity, audience: str) -> dict[str, str]:
    """A fresh token response in the IMDS shape (every value a string)."""
    tenant, sp, _ = check_chain(ctx, resource, identity, audience)
    token, iat, exp = sign(ctx, tenant, identity, audience, az_rid=_mirid(resource.id) if identity.kind != SYSTEM else None)
    ctx.log("Issue token", resource.id, f"{identity.kind} identity {identity.principal_id} for {audience}")
    # IMDS's body: every value a string; no refresh_token (managed identities have none), and
    # ext_expires_in as issued (it does not count down with expires_in on cache hits).
    return {
        "access_token": token,
        "expires_in": str(exp - ctx.now),
        "expires_on": str(exp),
        "ext_expires_in": str(exp - ctx.now),
        "not_before": str(iat),
        "resource": audience,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }


# Loaded signing keys, by key store and kid, for the life of the process: `msi serve` signs many
# tokens with one key. A key is loaded only after its file proved its name (the key ring checks
# that); a file replaced later is never read again, so it can only stop being used, never forge.
_PRIVATE_KEYS: dict[tuple[str, str], SigningKeyTypes] = {}


def _private_key(keys: KeyRing, kid: str) -> SigningKeyTypes:
    from msi_cli import crypto

    slot = (str(getattr(keys, "dir", "")), kid)
    private = _PRIVATE_KEYS.get(slot)
    if private is None:
        private = crypto.private_key(keys.signing_key_pem(kid))
        if len(_PRIVATE_KEYS) >= 64:
            _PRIVATE_KEYS.clear()
        _PRIVATE_KEYS[slot] = private
    return private


def sign(ctx: Ctx, tenant: Tenant, identity: Identity, audience: str, az_rid: str | None = None) -> tuple[str, int, int]:
    """The v1 access token the tenant issues to a managed identity: (token, iat, exp). `az_rid`
    is the host resource of a user-assigned identity's token (absent when there is none, as for
    a token obtained through a federated credential)."""
    import base64

    from msi_cli import crypto

    key = credentials.signing_key(ctx, tenant)
    issuer = f"https://sts.windows.net/{tenant.id}/"
    iat = ctx.now - BACKDATE
    exp = ctx.now + LIFETIME
    claims = {
        "aud": audience,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "aio": base64.b64encode(os.urandom(42)).decode("ascii"),
        "appid": identity.client_id,
        "appidacr": "2",
        "idp": issuer,
        "idtyp": "app",
        "oid": identity.principal_id,
        "rh": "0.A" + base64.urlsafe_b64encode(os.urandom(54)).decode("ascii").rstrip("=") + ".",
        "sub": identity.principal_id,
        "tid": tenant.id,
        "uti": base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("="),
        "ver": "1.0",
    }
    if az_rid is not None:
        claims["xms_az_rid"] = az_rid
    claims["xms_mirid"] = _mirid(identity.resource_id)
    private = _private_key(ctx.keys, key.kid)
    token = crypto.jws_sign({"typ": "JWT", "alg": "RS256", "x5t": key.kid, "kid": key.kid}, claims, private)
    return token, iat, exp


def from_cache(entry: dict[str, Any], now: int) -> dict[str, Any] | None:
    """A cached response, with `expires_in` counted down (`ext_expires_in` is not), while it has
    more than the margin left."""
    try:
        expires_on = int(entry["expires_on"])
    except (KeyError, TypeError, ValueError):
        return None
    if expires_on - now <= CACHE_MARGIN or int(entry.get("not_before", 0)) > now:
        return None
    out = {**entry, "expires_in": str(expires_on - now)}
    out.pop("refresh_token", None)  # written by an older msi-cli
    return out


# ---- published keys (core/verify.py checks tokens against them) ----------------------------------


def published_keys(tenant: Tenant, now_iso: str) -> list[SigningKey]:
    from msi_cli.core.timefmt import epoch

    return credentials.published(tenant, epoch(now_iso))


def jwks(keys: KeyRing, tenant: Tenant, now_iso: str) -> dict[str, Any]:
    """The tenant's public signing keys, as Azure publishes them at its jwks_uri."""
    from msi_cli import crypto

    return {"keys": [crypto.jwk_from_certificate(keys.public_certificate_der(k.kid), k.kid) for k in published_keys(tenant, now_iso)]}
