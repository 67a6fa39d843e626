"""OpenID discovery per tenant, as login.microsoftonline.com publishes it for v1 tokens: the
configuration document (issuer `https://sts.windows.net/{tid}/`) and the JWKS at its jwks_uri,
here both on the local server so a resource server can verify tokens with no project code.

The v2 document (`/{tenant}/v2.0/.well-known/openid-configuration`) is the one msal reads before
its first token request (it needs `authorization_endpoint` and `token_endpoint`); its fields and
their order follow Entra's (issuer `https://login.microsoftonline.com/{tid}/v2.0`), with every
Entra endpoint of the tenant (token, authorize...) at the server's HTTPS address, the only one
that serves them, and its JWKS at `/{tenant}/discovery/v2.0/keys` on the listener that was asked
(`base`, plain HTTP too, for resource servers): the same keys as v1, as `msi jwks` prints them."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from msi_cli.core import lookup, tokens
from msi_cli.core.model import State, Tenant
from msi_cli.server import routes
from msi_cli.server.messages import Request, Response, json_response

if TYPE_CHECKING:
    from msi_cli.core.context import KeyRing

TENANT_NOT_FOUND = (
    "AADSTS90002: Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into "
    "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
    "subscriptions for the tenant."
)


def find_tenant(state: State, ref: str) -> Tenant | None:
    """The tenant an Entra path names: by its id, never its display name (AADSTS90002 then)."""
    return lookup.tenant_by_id(state, ref)


def unknown_tenant(name: str) -> Response:
    return json_response(400, {"error": "invalid_tenant", "error_description": TENANT_NOT_FOUND.format(name=name)},
                         log=f"no simulated tenant '{name}'")


def method_not_allowed() -> Response:
    return json_response(405, {"error": "invalid_request", "error_description": "Only GET is supported."},
                         headers=[("Allow", "GET")])


def configuration(base: str, tenant: Tenant, authority: str = "") -> Response:
    """`base`: the listener asked (its keys); `authority`: where Entra's endpoints are served."""
    tid = tenant.id
    local = f"{authority or base}/{tid}"
    doc = {
        "token_endpoint": f"{local}/oauth2/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": routes.jwks_uri(base, tid),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": f"https://sts.windows.net/{tid}/",
        "microsoft_multi_refresh_token": True,
        "authorization_endpoint": f"{local}/oauth2/authorize",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "ver"],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }
    return json_response(200, doc)


class KeySet:
    """JWKS documents; each key's JWK is built once (a key never changes under its kid)."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys  # the key ring (public certificates by kid)
        self._jwk: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def response(self, tenant: Tenant, now_iso: str) -> Response:
        return self.union([tenant], now_iso)

    def union(self, tenants: Iterable[Tenant], now_iso: str) -> Response:
        """One JWKS of the keys `tenants` publish at `now_iso`."""
        from msi_cli import crypto

        published = [key for tenant in tenants for key in tokens.published_keys(tenant, now_iso)]
        out = []
        for key in published:
            jwk = self._jwk.get(key.kid)
            if jwk is None:
                with self._lock:
                    jwk = crypto.jwk_from_certificate(self.keys.public_certificate_der(key.kid), key.kid)
                    self._jwk[key.kid] = jwk
            out.append(jwk)
        return json_response(200, {"keys": out})


# Entra's multi-tenant authorities: their v2 document names each endpoint under the alias and the
# issuer with a `{tenantid}` placeholder, as Entra's does (az builds one for `az logout`).
TENANT_ALIASES = ("common", "organizations", "consumers")


def configuration_v2(base: str, tenant: Tenant | None, alias: str = "", authority: str = "") -> Response:
    """The v2 OpenID document of `tenant`, or (tenant None) of the multi-tenant `alias`; its keys
    at `base` (the listener asked), Entra's endpoints at `authority` (HTTPS, where they are served)."""
    tid = tenant.id if tenant is not None else "{tenantid}"
    segment = tenant.id if tenant is not None else alias
    local = f"{authority or base}/{segment}"
    doc = {
        "token_endpoint": f"{local}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": routes.jwks_v2_uri(base, segment),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"https://login.microsoftonline.com/{tid}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{local}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{local}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{local}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                             "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                             "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{local}/kerberos",
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return json_response(200, doc)


def handle(req: Request, kind: str, tenant_ref: str, base: str, state: State, keyset: KeySet, now_iso: str,
           authority: str = "") -> Response:
    if req.method != "GET":
        return method_not_allowed()
    tenant = find_tenant(state, tenant_ref)
    if tenant is None and tenant_ref.lower() in TENANT_ALIASES:
        if kind == routes.OPENID_V2:
            return configuration_v2(base, None, tenant_ref.lower(), authority)
        if kind == routes.JWKS:  # every tenant's published keys, as Entra's common keys serve them all
            return keyset.union(state.tenants.values(), now_iso)
    if tenant is None:
        return unknown_tenant(tenant_ref)
    if kind == routes.OPENID:
        return configuration(base, tenant, authority)
    if kind == routes.OPENID_V2:
        return configuration_v2(base, tenant, authority=authority)
    return keyset.response(tenant, now_iso)
