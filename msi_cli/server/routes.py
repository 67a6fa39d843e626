"""The URL layout of the local endpoint. Every resource's endpoint sits under its ARM resource
id, so the layout needs no registry and a resource created while the server runs is served at
once:

    {base}{resource id}/metadata/identity/oauth2/token    IMDS (vm, vmss)
    {base}{resource id}/msi/token                         App Service (webapp, functionapp, containerapp)
    {base}/{tenant}/.well-known/openid-configuration      OpenID discovery (tenant id)
    {base}/{tenant}/discovery/keys                        the tenant's JWKS
    {base}/{tenant}/v2.0/.well-known/openid-configuration Entra's v2 discovery (msal reads it)
    {base}/{tenant}/discovery/v2.0/keys                   the same JWKS, where the v2 document points

azure-identity and msal append `/metadata/identity/oauth2/token` to AZURE_POD_IDENTITY_AUTHORITY_HOST,
so the IMDS "host" of a VM is `{base}{resource id}`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote, unquote

from msi_cli.core.model import Resource

IMDS = "imds"
APPSERVICE = "appservice"
OPENID = "openid"
OPENID_V2 = "openid-v2"
JWKS = "jwks"

IMDS_PATH = "/metadata/identity/oauth2/token"
APPSERVICE_PATH = "/msi/token"
OPENID_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/discovery/keys"
OPENID_V2_PATH = "/v2.0/.well-known/openid-configuration"
JWKS_V2_PATH = "/discovery/v2.0/keys"

_SAFE = "/()!$&'*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    target: str  # a lower-case resource id, or the tenant as written in the path


@functools.lru_cache(maxsize=1024)
def match(raw_path: str) -> Route | None:
    """Which endpoint a request path names; None for any other path (memoized: clients repeat
    the same few paths)."""
    path = unquote(raw_path)
    low = path.lower()
    if low.endswith("/"):
        low, path = low.rstrip("/"), path.rstrip("/")
    for kind, suffix in ((IMDS, IMDS_PATH), (APPSERVICE, APPSERVICE_PATH)):
        if low.endswith(suffix) and low.startswith("/subscriptions/"):
            return Route(kind, low[: -len(suffix)])
    for kind, suffix in ((OPENID_V2, OPENID_V2_PATH), (JWKS, JWKS_V2_PATH), (OPENID, OPENID_PATH), (JWKS, JWKS_PATH)):
        if low.endswith(suffix):
            tenant = path[: -len(suffix)]
            if tenant.count("/") == 1 and len(tenant) > 1:
                return Route(kind, tenant[1:])
    return None


def host_prefix(base: str, resource: Resource) -> str:
    return base + quote(resource.id, safe=_SAFE)


def token_endpoint(base: str, resource: Resource) -> str | None:
    """The URL a resource's code gets tokens from, or None if its type has no identity endpoint."""
    host = resource.rtype.host
    if host == IMDS:
        return host_prefix(base, resource) + IMDS_PATH
    if host == APPSERVICE:
        return host_prefix(base, resource) + APPSERVICE_PATH
    return None


def openid_configuration(base: str, tenant_id: str) -> str:
    return f"{base}/{tenant_id}{OPENID_PATH}"


def jwks_uri(base: str, tenant_id: str) -> str:
    return f"{base}/{tenant_id}{JWKS_PATH}"


def jwks_v2_uri(base: str, tenant_id: str) -> str:
    return f"{base}/{tenant_id}{JWKS_V2_PATH}"
