"""Federated identity credentials on user-assigned identities, with Azure's rules:

- user-assigned identities only (a system-assigned identity cannot hold one);
- at most 20 per identity;
- name 3-120 characters, letters, digits, '-' and '_', starting with a letter or digit; the name
  is the credential's ARM name, so it is unique per identity (case-insensitively, as ARM names
  are) and cannot be changed: adding a credential under an existing name updates it, as `az
  identity federated-credential create` (a PUT) does;
- `issuer` and `subject` up to 600 characters, the pair unique per identity; exactly one audience;
- deleting the identity deletes its credentials.

A user-assigned identity cannot be moved. When its subscription is transferred to another
tenant, its service principal stays in the old directory: exchanges at the new tenant fail with
AADSTS700016 (the tenant does not know the client id), like the identity's other tokens.
"""

from __future__ import annotations

import re
from typing import Any

from msi_cli.core import arm
from msi_cli.core.context import Ctx
from msi_cli.core.model import USER, FederatedCredential, Identity, State
from msi_cli.errors import Conflict, InvalidName, MsiError, NotFound

ARM_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
MAX_PER_IDENTITY = 20
MAX_FIELD = 600
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{2,119}")


def key(identity_id: str, name: str) -> str:
    return f"{identity_id}/{name.lower()}"


def validate_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InvalidName(
            f"invalid federated identity credential name '{name}'",
            hint="3-120 characters: letters, digits, '-' or '_', starting with a letter or digit",
        )


def validate_field(what: str, value: str) -> None:
    if not value or not value.strip():
        raise MsiError(f"the federated identity credential's {what} must not be empty")
    if len(value) > MAX_FIELD:
        raise MsiError(f"the federated identity credential's {what} is {len(value)} characters long; at most {MAX_FIELD} are allowed")
    if any("\ud800" <= c <= "\udfff" for c in value):  # no UTF-8 holds one (the state file could not either)
        raise MsiError(f"the federated identity credential's {what} is not valid Unicode text (it holds a lone surrogate)")


def validate(cred: FederatedCredential) -> None:
    """Every per-credential rule (the store applies them to what it loads)."""
    validate_name(cred.name)
    validate_field("issuer", cred.issuer)
    validate_field("subject", cred.subject)
    if len(cred.audiences) != 1:
        raise MsiError(f"a federated identity credential takes exactly one audience, not {len(cred.audiences)}")
    validate_field("audience", cred.audiences[0])


def of_identity(state: State, identity: Identity) -> list[FederatedCredential]:
    return [c for c in state.federated_credentials.values() if c.identity_id == identity.principal_id]


def _require_user(identity: Identity) -> None:
    if identity.kind != USER:
        raise MsiError("federated identity credentials are supported on user-assigned identities only")


def add(ctx: Ctx, identity: Identity, name: str, issuer: str, subject: str, audiences: list[str] | None = None) -> FederatedCredential:
    """Create a credential, or update the one with this name (name and identity never change)."""
    _require_user(identity)
    cred = FederatedCredential(identity.principal_id, name, issuer, subject, list(audiences) if audiences is not None else [DEFAULT_AUDIENCE], ctx.now_iso)
    validate(cred)
    state = ctx.state
    k = key(identity.principal_id, name)
    existing = state.federated_credentials.get(k)
    held = of_identity(state, identity)
    for other in held:
        if other is not existing and other.issuer == issuer and other.subject == subject:
            raise Conflict(
                f"federated identity credential '{other.name}' of '{identity.name}' already has issuer '{issuer}' and "
                f"subject '{subject}'; the pair must be unique per identity"
            )
    if existing is None and len(held) >= MAX_PER_IDENTITY:
        raise MsiError(f"'{identity.name}' already has {MAX_PER_IDENTITY} federated identity credentials, the most an identity can hold")
    if existing is not None:
        cred.name, cred.created = existing.name, existing.created
    state.federated_credentials[k] = cred
    verb = "Update" if existing is not None else "Create"
    ctx.log(f"{verb} federated identity credential", resource_id(identity, cred.name), f"issuer {issuer}, subject {subject}")
    return cred


def find(state: State, identity: Identity, name: str) -> FederatedCredential:
    _require_user(identity)
    cred = state.federated_credentials.get(key(identity.principal_id, name))
    if cred is None:
        raise NotFound(f"federated identity credential '{name}' not found on '{identity.name}'")
    return cred


def remove(ctx: Ctx, identity: Identity, name: str) -> FederatedCredential:
    cred = find(ctx.state, identity, name)
    del ctx.state.federated_credentials[key(identity.principal_id, name)]
    ctx.log("Delete federated identity credential", resource_id(identity, cred.name))
    return cred


def drop_for(ctx: Ctx, identity: Identity) -> int:
    """Delete every credential of an identity (the identity itself is being deleted)."""
    gone = [k for k, c in ctx.state.federated_credentials.items() if c.identity_id == identity.principal_id]
    for k in gone:
        cred = ctx.state.federated_credentials.pop(k)
        ctx.log("Delete federated identity credential", resource_id(identity, cred.name), "its identity was deleted")
    return len(gone)


def resource_id(identity: Identity, name: str) -> str:
    return f"{identity.resource_id}/federatedIdentityCredentials/{name}"


def shape(identity: Identity, cred: FederatedCredential) -> dict[str, Any]:
    """What `az identity federated-credential show` prints."""
    parsed = arm.parse_id(identity.resource_id)
    return {
        "audiences": list(cred.audiences),
        "id": resource_id(identity, cred.name),
        "issuer": cred.issuer,
        "name": cred.name,
        "resourceGroup": parsed.resource_group if parsed else None,
        "subject": cred.subject,
        "type": ARM_TYPE,
    }
