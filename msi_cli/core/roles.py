"""Azure RBAC: built-in role definitions, role assignments at hierarchical scopes, access checks.

Access is decided by permissions, as Azure does, not by role names: a role is granted at a scope
when the assignments on that scope or above it allow every action and data action the role holds.
So Owner does not include Key Vault Secrets User (Owner has no data actions), while Key Vault
Secrets Officer does.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from msi_cli.core import arm, lookup, shapes
from msi_cli.core.roledefs import BUILT_IN_ROLES, ROLES_BY_ID, RoleDefinition
from msi_cli.core.context import Ctx
from msi_cli.core.model import Identity, Resource, RoleAssignment, State
from msi_cli.errors import Conflict, InvalidArgument, MsiError, NotFound




def role(ref: str) -> RoleDefinition:
    """A built-in role by name (any case), GUID, or role definition resource id."""
    low = ref.strip().lower().rstrip("/").rsplit("/", 1)[-1]
    for r in BUILT_IN_ROLES:
        if r.id == low or r.name.lower() == ref.strip().lower():
            return r
    close = lookup.did_you_mean(ref, [r.name for r in BUILT_IN_ROLES])
    raise NotFound(f"role '{ref}' not found", hint=close or "built-in roles: " + ", ".join(r.name for r in BUILT_IN_ROLES))


# ---- scopes ----------------------------------------------------------------------------------------


def scope_exists(state: State, scope: str) -> bool:
    parsed = arm.parse_id(scope)
    if parsed is None or parsed.subscription_id.lower() not in state.subscriptions:
        return False
    if parsed.name is None:
        return True  # subscriptions exist; resource groups exist implicitly
    return scope.lower().rstrip("/") in state.resources or lookup.find_user_identity_by_id(state, scope) is not None


def resolve_scope(state: State, ref: str) -> str:
    """A scope given as an ARM id (subscription, resource group, resource) or a resource's name."""
    if not arm.looks_like_id(ref):
        return lookup.scope_by_name(state, ref)
    parsed = arm.parse_id(ref)
    if parsed is None:
        raise InvalidArgument(f"invalid scope '{ref}'", hint=lookup.SCOPE_FORMS)
    sub = state.subscriptions.get(parsed.subscription_id.lower())
    if sub is None:
        raise NotFound(f"subscription '{parsed.subscription_id}' in scope '{ref}' not found")
    if parsed.name is not None:
        found = lookup.target(state, ref)
        return found.id if isinstance(found, Resource) else found.resource_id
    if parsed.resource_group is not None:
        arm.validate_resource_group(parsed.resource_group)
        return arm.resource_group_scope(sub.id, parsed.resource_group)
    return arm.subscription_scope(sub.id)


scope_covers = arm.covers  # an assignment at the first scope applies at the second


# ---- principals --------------------------------------------------------------------------------------


def resolve_principal(state: State, ref: str) -> str:
    """A principal id from a principal/client id, a resource (its system-assigned identity) or a
    user-assigned identity. A GUID that no longer resolves is returned as it is."""
    if arm.is_guid(ref):
        low = ref.lower()
        if low in state.principals:
            return low  # an object id (the common case, answered without a scan)
        for sp in state.principals.values():
            if sp.app_id == low:
                return sp.id
        return low
    found = lookup.target(state, ref, by_option=False)  # grant, revoke and --principal take no -g
    if isinstance(found, Identity):
        return found.principal_id
    if found.system_principal_id is None:
        raise MsiError(f"resource '{found.name}' has no system-assigned identity", hint="enable it with 'msi assign'")
    return found.system_principal_id


def grant(
    ctx: Ctx, principal_ref: str, role_ref: str, scope_ref: str, assignment_id: str | None = None,
    index: set[tuple[str, str, str]] | None = None,
) -> RoleAssignment:
    """Assign a role. `assignment_id` is the GUID an ARM client chose (a new one otherwise).
    `index`: the (principalId, role id, lower-case scope) of every assignment in the state, kept by a
    caller that grants many at once (`msi apply`), so the duplicate check needs no scan."""
    state = ctx.state
    definition = role(role_ref)
    scope = resolve_scope(state, scope_ref)
    principal_id = resolve_principal(state, principal_ref)
    tenant = lookup.tenant_of(state, arm.parts(scope).subscription)
    sp = state.principals.get(principal_id)
    if sp is None or sp.tenant_id != tenant.id:
        raise MsiError(f"PrincipalNotFound: Principal {principal_id} does not exist in the directory {tenant.id}.")
    if index is None or (principal_id, definition.id, scope.lower()) in index:
        for a in state.role_assignments.values():
            if a.principal_id == principal_id and a.role_definition_id == definition.id and a.scope.lower() == scope.lower():
                raise Conflict("RoleAssignmentExists: The role assignment already exists.", hint=shapes.assignment_id(a))
    assignment = RoleAssignment((assignment_id or arm.new_guid()).lower(), principal_id, definition.id, scope, ctx.now_iso)
    state.role_assignments[assignment.id] = assignment
    if index is not None:
        index.add((principal_id, definition.id, scope.lower()))
    ctx.log("Create role assignment", scope, f"{definition.name} for {principal_id}")
    return assignment


def revoke(ctx: Ctx, principal_ref: str, role_ref: str, scope_ref: str) -> list[RoleAssignment]:
    state = ctx.state
    definition = role(role_ref)
    scope = scope_ref if arm.looks_like_id(scope_ref) else resolve_scope(state, scope_ref)
    principal_id = resolve_principal(state, principal_ref)
    removed = [
        a for a in state.role_assignments.values()
        if a.principal_id == principal_id and a.role_definition_id == definition.id and a.scope.lower() == scope.lower().rstrip("/")
    ]
    if not removed:
        raise NotFound(f"no '{definition.name}' assignment for principal {principal_id} at scope '{scope}'")
    for a in removed:
        del state.role_assignments[a.id]
        ctx.log("Delete role assignment", a.scope, f"{definition.name} for {principal_id}")
    return removed


def delete_assignment(ctx: Ctx, assignment_id: str) -> RoleAssignment:
    """Remove one role assignment by its GUID."""
    a = ctx.state.role_assignments.pop(assignment_id.lower(), None)
    if a is None:
        raise NotFound(f"role assignment '{assignment_id}' not found")
    definition = ROLES_BY_ID.get(a.role_definition_id)
    ctx.log("Delete role assignment", a.scope, f"{definition.name if definition else a.role_definition_id} for {a.principal_id}")
    return a


# ---- access checks --------------------------------------------------------------------------------------


def _granted(wanted: str, allow: tuple[str, ...], deny: tuple[str, ...], wanted_deny: tuple[str, ...] = ()) -> bool:
    """Is every operation matching `wanted` (less those the wanted role itself excludes) allowed?"""
    w = wanted.lower()
    if not any(fnmatchcase(w, a.lower()) for a in allow):
        return False
    return not any(
        (fnmatchcase(w, d.lower()) or fnmatchcase(d.lower(), w)) and not any(fnmatchcase(d.lower(), x.lower()) for x in wanted_deny)
        for d in deny
    )


def covers(held: list[RoleDefinition], wanted: RoleDefinition) -> bool:
    """Do the held roles together allow every action and data action of the wanted role?"""
    for action in wanted.actions:
        if not any(_granted(action, r.actions, r.not_actions, wanted.not_actions) for r in held):
            return False
    for action in wanted.data_actions:
        if not any(_granted(action, r.data_actions, r.not_data_actions, wanted.not_data_actions) for r in held):
            return False
    return True


def assignments_for(state: State, principal_id: str, scope: str) -> list[RoleAssignment]:
    return [a for a in state.role_assignments.values() if a.principal_id == principal_id and scope_covers(a.scope, scope)]
