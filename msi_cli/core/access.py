"""`check-access`: can a resource's identity act with a role at a scope, and why (not)."""

from __future__ import annotations

from typing import Any

from msi_cli.core import roledefs, roles, shapes, tokens
from msi_cli.core.context import Ctx
from msi_cli.core.model import Resource
from msi_cli.errors import TokenError


def check_access(ctx: Ctx, resource: Resource, scope_ref: str, role_ref: str, selector: tokens.Selector) -> dict[str, Any]:
    state = ctx.state
    wanted = roles.role(role_ref)
    scope = roles.resolve_scope(state, scope_ref)
    result: dict[str, Any] = {
        "allowed": False,
        "resource": resource.id,
        "principalId": None,
        "identityType": None,
        "role": wanted.name,
        "scope": scope,
        "grantedBy": [],
        "reason": "",
    }
    try:
        identity = tokens.select(state, resource, selector)
    except TokenError as exc:
        result["reason"] = f"no identity to act as: {exc.reason}"
        return result
    result["principalId"] = identity.principal_id
    result["identityType"] = identity.kind
    try:
        tokens.check_chain(ctx, resource, identity, "https://management.azure.com/")
    except TokenError as exc:
        result["reason"] = f"the identity cannot get a token: {exc.reason}"
        return result
    held = roles.assignments_for(state, identity.principal_id, scope)
    known = [a for a in held if a.role_definition_id in roledefs.ROLES_BY_ID]  # a hand-edited state may name other roles: they grant nothing here
    definitions = [roledefs.ROLES_BY_ID[a.role_definition_id] for a in known]
    if known and roles.covers(definitions, wanted):
        granting = [a for a in known if roles.covers([roledefs.ROLES_BY_ID[a.role_definition_id]], wanted)] or known
        result["allowed"] = True
        result["grantedBy"] = [shapes.assignment_id(a) for a in granting]
        first = granting[0]
        result["reason"] = f"'{roledefs.ROLES_BY_ID[first.role_definition_id].name}' is assigned to {identity.principal_id} at {first.scope}"
        return result
    if held:
        names = ", ".join(sorted({d.name for d in definitions} | {f"role {a.role_definition_id} (not a built-in role msi knows)" for a in held if a not in known}))
        result["reason"] = f"{identity.principal_id} holds {names} at or above {scope}, which does not include '{wanted.name}'"
        return result
    orphans = [
        a for a in state.role_assignments.values()
        if a.principal_id not in state.principals and roles.scope_covers(a.scope, scope)
        and a.role_definition_id in roledefs.ROLES_BY_ID and roles.covers([roledefs.ROLES_BY_ID[a.role_definition_id]], wanted)
    ]
    if orphans:
        gone = state.deleted_principals.get(orphans[0].principal_id)
        when = f", deleted {gone.deleted}" if gone is not None else ""
        result["reason"] = (
            f"no role assignment grants {identity.principal_id} '{wanted.name}' at {scope}; a matching assignment exists "
            f"for principal {orphans[0].principal_id}, which no longer exists (orphaned: az shows its principalName empty{when})"
        )
        return result
    result["reason"] = f"no role assignment grants {identity.principal_id} '{wanted.name}' at {scope} or above"
    return result
