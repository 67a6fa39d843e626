"""The identity lifecycle: tenants, subscriptions, resources, identities and their principals.

Azure's rules, as the functions below apply them:
- a resource has at most one system-assigned identity; disabling it deletes the identity and its
  service principal, and enabling it again creates a new one (new principalId and clientId);
- a user-assigned identity stands alone, may be attached to any number of resources in its tenant,
  and is deleted only explicitly, which detaches it everywhere and removes its principal;
- every identity has exactly one service principal, in the directory of its subscription, and MSRP
  issues it a certificate when it is created.
"""

from __future__ import annotations

from msi_cli.core import arm, credentials, groups, lookup
from msi_cli.core.context import Ctx
from msi_cli.core.clock import iso
from msi_cli.core.model import (
    SCHEMA_VERSION,
    SYSTEM,
    USER,
    DeletedPrincipal,
    Identity,
    Resource,
    ServicePrincipal,
    State,
    Subscription,
    Tenant,
)
from msi_cli.errors import Conflict, InvalidArgument, MsiError

DEFAULT_TENANT = "Default Directory"
DEFAULT_SUBSCRIPTION = "default"
DEFAULT_RESOURCE_GROUP = "default"
DEFAULT_LOCATION = "eastus"


def fresh_state(now_iso: str) -> State:
    tenant = Tenant(arm.new_guid(), DEFAULT_TENANT, now_iso)
    sub = Subscription(arm.new_guid(), DEFAULT_SUBSCRIPTION, tenant.id, now_iso)
    return State(
        schema=SCHEMA_VERSION,
        clock_offset=0,
        default_subscription_id=sub.id,
        tenants={tenant.id: tenant},
        subscriptions={sub.id: sub},
    )


# ---- directories and subscriptions ------------------------------------------------------------


def create_tenant(ctx: Ctx, name: str) -> Tenant:
    arm.validate_display_name("tenant", name, 256)
    if any(t.name.lower() == name.lower() for t in ctx.state.tenants.values()):
        raise Conflict(f"a tenant named '{name}' already exists")
    tenant = Tenant(arm.new_guid(), name, ctx.now_iso)
    ctx.state.tenants[tenant.id] = tenant
    ctx.log("Create tenant", name, tenant.id)
    return tenant


def create_subscription(ctx: Ctx, name: str, tenant_ref: str | None) -> Subscription:
    arm.validate_display_name("subscription", name, 64)
    if any(s.name.lower() == name.lower() for s in ctx.state.subscriptions.values()):
        raise Conflict(f"a subscription named '{name}' already exists")
    tenant = (
        lookup.tenant(ctx.state, tenant_ref)
        if tenant_ref
        else lookup.tenant_of(ctx.state, ctx.state.default_subscription_id)
    )
    sub = Subscription(arm.new_guid(), name, tenant.id, ctx.now_iso)
    ctx.state.subscriptions[sub.id] = sub
    ctx.log("Create subscription", name, f"{sub.id} in tenant {tenant.name}")
    return sub


# ---- identities and their principals ----------------------------------------------------------


def _new_identity(ctx: Ctx, kind: str, name: str, resource_id: str, location: str, tenant_id: str) -> Identity:
    identity = Identity(
        principal_id=arm.new_guid(),
        client_id=arm.new_guid(),
        tenant_id=tenant_id,
        kind=kind,
        name=name,
        resource_id=resource_id,
        location=location,
        created=ctx.now_iso,
    )
    explicit = "isExplicit=True" if kind == USER else "isExplicit=False"
    sp = ServicePrincipal(
        id=identity.principal_id,
        app_id=identity.client_id,
        tenant_id=tenant_id,
        display_name=name,
        alternative_names=[explicit, resource_id],
    )
    credentials.issue_certificate(ctx, sp, ctx.now)
    ctx.state.identities[identity.principal_id] = identity
    ctx.state.principals[sp.id] = sp
    return identity


SOFT_DELETE_DAYS = 30


def _remove_identity(ctx: Ctx, identity: Identity) -> None:
    """Delete an identity and the service principal behind it. The principal is soft-deleted:
    listed for 30 days, never restored. Role assignments stay, orphaned."""
    del ctx.state.identities[identity.principal_id]
    sp = ctx.state.principals.pop(identity.principal_id, None)
    if sp is not None:
        ctx.state.deleted_principals[sp.id] = DeletedPrincipal(
            sp.id, sp.app_id, sp.tenant_id, sp.display_name, list(sp.alternative_names), ctx.now_iso
        )


def purge_deleted(ctx: Ctx) -> int:
    """Drop soft-deleted principals once their 30 days are over."""
    cutoff = iso(ctx.now - SOFT_DELETE_DAYS * 86400)
    gone = [pid for pid, d in ctx.state.deleted_principals.items() if d.deleted <= cutoff]
    for pid in gone:
        del ctx.state.deleted_principals[pid]
    return len(gone)


def create_identity(
    ctx: Ctx, name: str, resource_group: str | None, subscription_ref: str | None, location: str | None
) -> Identity:
    arm.validate_identity_name(name)
    rg = resource_group or DEFAULT_RESOURCE_GROUP
    arm.validate_resource_group(rg)
    loc = location or DEFAULT_LOCATION
    arm.validate_location(loc)
    sub = lookup.subscription(ctx.state, subscription_ref)
    rid = arm.resource_id(sub.id, rg, arm.IDENTITY_ARM_TYPE, name)
    if lookup.find_user_identity_by_id(ctx.state, rid) is not None:
        raise Conflict(f"a user-assigned identity named '{name}' already exists in resource group '{rg}'")
    groups.ensure(ctx, sub.id, rg, loc)
    identity = _new_identity(ctx, USER, name, rid, loc, sub.tenant_id)
    ctx.log("Create user-assigned identity", rid, f"principalId {identity.principal_id}")
    return identity


# ---- resources ----------------------------------------------------------------------------------


def create_resource(
    ctx: Ctx,
    name: str,
    type_key: str,
    resource_group: str | None,
    subscription_ref: str | None,
    location: str | None,
    system_assigned: bool = False,
    user_assigned: list[str] | None = None,
) -> Resource:
    rtype = arm.resource_type(type_key)
    arm.validate_resource_name(type_key, name)
    rg = resource_group or DEFAULT_RESOURCE_GROUP
    arm.validate_resource_group(rg)
    loc = location or DEFAULT_LOCATION
    arm.validate_location(loc)
    sub = lookup.subscription(ctx.state, subscription_ref)
    rid = arm.resource_id(sub.id, rg, rtype.arm_type, name)
    existing = ctx.state.resources.get(rid.lower())
    if existing is not None:
        raise Conflict(
            f"a resource of type {rtype.arm_type} named '{name}' already exists in resource group '{rg}'"
            + (f" (a {existing.type})" if existing.type != type_key else "")
        )
    resource = Resource(name, type_key, sub.id, rg, loc, ctx.now_iso)
    if (system_assigned or user_assigned) and not rtype.supports_identity:
        raise MsiError(f"resource type {rtype.arm_type} does not support managed identities")
    logged = len(ctx.events)
    new_group = groups.find(ctx.state, sub.id, rg) is None
    groups.ensure(ctx, sub.id, rg, loc)
    ctx.state.resources[rid.lower()] = resource
    ctx.log("Create resource", rid, type_key)
    if system_assigned or user_assigned:
        try:
            assign(ctx, resource, system_assigned, user_assigned or [])
        except Exception:  # all or nothing, even for callers that go on using the context
            del ctx.state.resources[rid.lower()]
            if new_group:
                del ctx.state.resource_groups[groups.key(sub.id, rg)]
            del ctx.events[logged:]
            raise
    return resource


def _resolve_user_identities(ctx: Ctx, refs: list[str]) -> list[Identity]:
    found: list[Identity] = []
    for ref in refs:
        identity = lookup.user_identity(ctx.state, ref)
        if identity not in found:
            found.append(identity)
    return found


def assign(ctx: Ctx, resource: Resource, system_assigned: bool, user_refs: list[str]) -> dict:
    """Enable the system-assigned identity and/or attach user-assigned ones (idempotent)."""
    if not resource.rtype.supports_identity:
        raise MsiError(f"resource type {resource.rtype.arm_type} does not support managed identities")
    if not system_assigned and not user_refs:
        system_assigned = True
    to_attach = _resolve_user_identities(ctx, user_refs)
    tenant_id = lookup.tenant_of(ctx.state, resource.subscription_id).id
    for identity in to_attach:
        if identity.tenant_id != tenant_id:
            raise MsiError(
                f"user-assigned identity '{identity.resource_id}' belongs to tenant {identity.tenant_id}, "
                f"but '{resource.name}' is in tenant {tenant_id}: an identity cannot be assigned across tenants"
            )
    if system_assigned and resource.system_principal_id is None:
        identity = _new_identity(ctx, SYSTEM, resource.name, resource.id, resource.location, tenant_id)
        resource.system_principal_id = identity.principal_id
        ctx.log("Enable system-assigned identity", resource.id, f"principalId {identity.principal_id}")
    for identity in to_attach:
        if not any(i.lower() == identity.resource_id.lower() for i in resource.user_identity_ids):
            resource.user_identity_ids.append(identity.resource_id)
            ctx.log("Assign user-assigned identity", resource.id, identity.resource_id)
    return assignment_summary(ctx.state, resource)


def unassign(ctx: Ctx, resource: Resource, system_assigned: bool, user_refs: list[str]) -> dict:
    """Disable the system-assigned identity and/or detach user-assigned ones."""
    if not system_assigned and not user_refs:
        raise InvalidArgument("say what to remove", hint="pass --system-assigned and/or --user-assigned ID")
    missing: list[str] = []
    detach: list[str] = []
    for ref in user_refs:
        try:
            identity = lookup.user_identity(ctx.state, ref)
            rid = identity.resource_id
        except MsiError:
            identity, rid = None, ref
        attached = identity is not None and any(i.lower() == rid.lower() for i in resource.user_identity_ids)
        bucket = detach if attached else missing
        if rid not in bucket:
            bucket.append(rid)
    if system_assigned and resource.system_principal_id is None:
        missing.insert(0, "[system]")
    if missing:
        raise MsiError(f"'{', '.join(missing)}' are not associated with '{resource.name}'")
    if system_assigned:
        identity = ctx.state.identities[resource.system_principal_id]  # type: ignore[index]
        _remove_identity(ctx, identity)
        resource.system_principal_id = None
        ctx.log("Disable system-assigned identity", resource.id, f"principalId {identity.principal_id} deleted")
    for rid in detach:
        resource.user_identity_ids[:] = [i for i in resource.user_identity_ids if i.lower() != rid.lower()]
        ctx.log("Remove user-assigned identity", resource.id, rid)
    return assignment_summary(ctx.state, resource)


def assignment_summary(state: State, resource: Resource) -> dict:
    """What `az vm identity assign` returns."""
    users = {}
    for rid in resource.user_identity_ids:
        identity = lookup.find_user_identity_by_id(state, rid)
        if identity is not None:
            users[rid] = {"principalId": identity.principal_id, "clientId": identity.client_id}
    return {"systemAssignedIdentity": resource.system_principal_id or "", "userAssignedIdentities": users}


def delete(ctx: Ctx, target: Resource | Identity) -> dict:
    """Delete a resource (and its system-assigned identity) or a user-assigned identity."""
    state = ctx.state
    if isinstance(target, Resource):
        removed = []
        if target.system_principal_id is not None:
            identity = state.identities[target.system_principal_id]
            _remove_identity(ctx, identity)
            removed.append(identity.principal_id)
        del state.resources[target.id.lower()]
        ctx.log("Delete resource", target.id, f"system-assigned identity {removed[0]} deleted" if removed else "")
        return {"deleted": target.id, "deletedPrincipals": removed}
    low = target.resource_id.lower()
    detached = []
    for resource in state.resources.values():
        before = len(resource.user_identity_ids)
        resource.user_identity_ids[:] = [i for i in resource.user_identity_ids if i.lower() != low]
        if len(resource.user_identity_ids) != before:
            detached.append(resource.id)
    _remove_identity(ctx, target)
    ctx.log(
        "Delete user-assigned identity", target.resource_id,
        f"principalId {target.principal_id} deleted; detached from {len(detached)} resource(s)",
    )
    return {"deleted": target.resource_id, "deletedPrincipals": [target.principal_id], "detachedFrom": detached}


def resource_identities(state: State, resource: Resource) -> list[Identity]:
    """The identities a resource holds: system-assigned first, then user-assigned in order."""
    found = []
    if resource.system_principal_id is not None:
        found.append(state.identities[resource.system_principal_id])
    for rid in resource.user_identity_ids:
        identity = lookup.find_user_identity_by_id(state, rid)
        if identity is not None:
            found.append(identity)
    return found
