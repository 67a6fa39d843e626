"""Federated identity credentials on user-assigned identities, with Azure's rules:

- user-assigned identities only (a system-assigned identity cannot hold one);
- at most 20 per identity;
- name 3-120 characters, letters, digits, '-' and '_', starting with a letter or digit; the name
  is the credential's ARM name, so it is unique per identity (case-insensitively, as ARM names
  are) and cannot be changed: adding a credential under an existing name updates it, as `az
  identity federated-credential create` (a PUT) does;
- `issuer` and `subject` up to 600 characters, the pair unique per identity; exactly one audience
  (`put_all` changes several credentials of an identity as one, checking the end state: an
  estate's credentials may trade subjects);
- deleting the identity deletes its credentials.

A user-assigned identity cannot be moved. When its subscription is transferred to another
tenant, its service principal stays in the old directory: exchanges at the new tenant fail with
AADSTS700016 (the tenant does not know the client id), like the identity's other tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
    return put_all(ctx, identity, [(name, issuer, subject, audiences)])[0]


Wanted = tuple[str, str, str, list[str] | None]  # name, issuer, subject, audiences (None: the default one)


def put_all(ctx: Ctx, identity: Identity, wanted: Sequence[Wanted]) -> list[FederatedCredential]:
    """Create or update several credentials of one identity as one change (an estate's): the rules
    hold for the end state, so two credentials can trade subjects, which one PUT at a time cannot
    do. Each keeps its name and creation time and is logged as `add` logs it. A refusal changes
    nothing and names, in `credential`, the first wanted credential (in order) that breaks a rule."""
    _require_user(identity)
    state = ctx.state
    held = {key(identity.principal_id, c.name): c for c in of_identity(state, identity)}
    changing = {key(identity.principal_id, w[0]) for w in wanted}
    # the pairs of the credentials that stay as they are, then those of the wanted ones, in order
    pairs = {(c.issuer, c.subject): c.name for k, c in held.items() if k not in changing}
    count, added = len(held), 0
    made: list[tuple[FederatedCredential, FederatedCredential | None]] = []
    seen: set[str] = set()
    for name, issuer, subject, audiences in wanted:
        try:
            cred = FederatedCredential(identity.principal_id, name, issuer, subject,
                                       list(audiences) if audiences is not None else [DEFAULT_AUDIENCE], ctx.now_iso)
            validate(cred)
            k = key(identity.principal_id, name)
            if k in seen:
                raise Conflict(f"federated identity credential '{name}' of '{identity.name}' is given twice")
            seen.add(k)
            other = pairs.get((issuer, subject))
            if other is not None:
                verb = "already has" if key(identity.principal_id, other) not in changing else "would also have"
                raise Conflict(
                    f"federated identity credential '{other}' of '{identity.name}' {verb} issuer '{issuer}' and "
                    f"subject '{subject}'; the pair must be unique per identity"
                )
            existing = held.get(k)
            if existing is None and count >= MAX_PER_IDENTITY:
                raise MsiError(f"'{identity.name}' already has {MAX_PER_IDENTITY} federated identity credentials, the most an identity can hold"
                               if not added else
                               f"'{identity.name}' would have {count + 1} federated identity credentials; at most {MAX_PER_IDENTITY} are allowed")
        except MsiError as exc:
            exc.credential = name  # type: ignore[attr-defined]
            raise
        pairs[(issuer, subject)] = name
        if existing is None:
            count, added = count + 1, added + 1
        else:
            cred.name, cred.created = existing.name, existing.created
        made.append((cred, existing))
    for cred, existing in made:
        state.federated_credentials[key(identity.principal_id, cred.name)] = cred
        verb = "Update" if existing is not None else "Create"
        ctx.log(f"{verb} federated identity credential", resource_id(identity, cred.name), f"issuer {cred.issuer}, subject {cred.subject}")
    return [cred for cred, _ in made]


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
