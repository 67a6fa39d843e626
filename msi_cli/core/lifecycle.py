"""The identity lifecycle: resources, identities and their principals (tenants and subscriptions:
`msi_cli.core.directory`).

Azure's rules, as the functions below apply them:
- a resource has at most one system-assigned identity; disabling it deletes the identity and its
  service principal, and enabling it again creates a new one (new principalId and clientId);
- a user-assigned identity stands alone, may be attached to any number of resources in its tenant,
  and is deleted only explicitly, which removes its principal but not the resources' references:
  each keeps a dangling entry (with the principalId and clientId it recorded) until it is removed
  from the resource itself;
- every identity has exactly one service principal, in the directory of its subscription, and MSRP
  issues it a certificate when it is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msi_cli.core import arm, credentials, groups, lookup, shapes
from msi_cli.core.context import Ctx
from msi_cli.core.directory import DEFAULT_LOCATION, DEFAULT_RESOURCE_GROUP
from msi_cli.core.timefmt import iso
from msi_cli.core.model import (
    SYSTEM,
    USER,
    DeletedPrincipal,
    Identity,
    Resource,
    ResourceGroup,
    ServicePrincipal,
    State,
    UserAssignment,
)
from msi_cli.errors import Conflict, InvalidArgument, MsiError, NotFound

# ---- identities and their principals ----------------------------------------------------------


def _new_identity(
    ctx: Ctx, kind: str, name: str, resource_id: str, location: str, tenant_id: str, ids: tuple[str, str] | None = None
) -> Identity:
    """`ids`: the (principalId, clientId) to keep (`msi import az`); new GUIDs otherwise."""
    if ids is not None and any(i in ctx.state.identities or i in ctx.state.principals or i in ctx.state.deleted_principals for i in ids):
        raise Conflict(f"a principal with the id {ids[0]} or {ids[1]} already exists")
    principal_id, client_id = ids or (arm.new_guid(), arm.new_guid())
    identity = Identity(
        principal_id=principal_id,
        client_id=client_id,
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
    from msi_cli.core import federation

    federation.drop_for(ctx, identity)  # its federated credentials go with it
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
    ctx: Ctx, name: str, resource_group: str | None, subscription_ref: str | None, location: str | None,
    ids: tuple[str, str] | None = None, location_guessed: bool = False,
) -> Identity:
    """`location_guessed`: the region is a guess (`msi import az` knew the identity only from a
    resource's identity block), which `locate_guessed_identity` may correct."""
    arm.validate_identity_name(name)
    rg = DEFAULT_RESOURCE_GROUP if resource_group is None else resource_group  # -g "" is refused, not the default
    arm.validate_resource_group(rg)
    loc = DEFAULT_LOCATION if location is None else arm.location(location)
    sub = lookup.subscription(ctx.state, subscription_ref)
    rid = arm.resource_id(sub.id, rg, arm.IDENTITY_ARM_TYPE, name)
    if lookup.find_user_identity_by_id(ctx.state, rid) is not None:
        raise Conflict(f"a user-assigned identity named '{name}' already exists in resource group '{rg}'")
    groups.ensure(ctx, sub.id, rg, loc)
    identity = _new_identity(ctx, USER, name, rid, loc, sub.tenant_id, ids)
    if location_guessed:
        identity.location_guessed = True
    ctx.log("Create user-assigned identity", rid, f"principalId {identity.principal_id}")
    return identity


def locate_guessed_identity(ctx: Ctx, identity: Identity, location: str) -> None:
    """Put a user-assigned identity whose region was a guess where it really is (the same region
    included: the guess is settled), once. An identity never moves region (Azure refuses it); this
    corrects what msi guessed, and only that."""
    if not identity.location_guessed:
        raise Conflict(f"identity '{identity.name}' is in {identity.location}; a user-assigned identity cannot move to another region")
    arm.validate_location(location)
    old = identity.location
    identity.location, identity.location_guessed = location, None
    ctx.log("Locate user-assigned identity", identity.resource_id, f"{location} (was guessed: {old})")


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
    rg = DEFAULT_RESOURCE_GROUP if resource_group is None else resource_group  # -g "" is refused, not the default
    arm.validate_resource_group(rg)
    loc = DEFAULT_LOCATION if location is None else arm.location(location)
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


def _resolve_user_identities(ctx: Ctx, refs: Sequence[str | Identity]) -> list[Identity]:
    found: list[Identity] = []
    for ref in refs:
        identity = ref if isinstance(ref, Identity) else lookup.user_identity(ctx.state, ref)
        if identity not in found:
            found.append(identity)
    return found


def assign(
    ctx: Ctx, resource: Resource, system_assigned: bool, user_refs: Sequence[str | Identity],
    system_ids: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Enable the system-assigned identity and/or attach user-assigned ones (idempotent), named
    as a user names them or given as found (an estate's apply, which found each one already).
    `system_ids`: the (principalId, clientId) a new system-assigned identity keeps (`msi import az`)."""
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
    for identity in to_attach:
        entry = _entry(resource, identity.resource_id)
        if entry is not None and entry.principal_id != identity.principal_id:
            raise Conflict(
                f"'{resource.name}' still holds the entry of a deleted identity with the id {entry.resource_id} "
                f"(principalId {entry.principal_id}); the identity re-created under that id is a new principal",
                hint=f"remove the old entry first: msi unassign {resource.name} --user-assigned {entry.resource_id}",
            )
    if system_assigned and resource.system_principal_id is None:
        identity = _new_identity(ctx, SYSTEM, resource.name, resource.id, resource.location, tenant_id, system_ids)
        resource.system_principal_id = identity.principal_id
        ctx.log("Enable system-assigned identity", resource.id, f"principalId {identity.principal_id}")
    for identity in to_attach:
        if _entry(resource, identity.resource_id) is None:
            resource.user_assigned.append(UserAssignment(identity.resource_id, identity.principal_id, identity.client_id))
            ctx.log("Assign user-assigned identity", resource.id, identity.resource_id)
            if resource.rtype.key in ("vm", "vmss") and len(identity.name) > LONG_NAME:
                ctx.warn(
                    f"identity name '{identity.name}' is longer than {LONG_NAME} characters: Azure documents that "
                    f"assigning it to a {resource.rtype.label} may fail or not work"
                )
    return shapes.assignment_summary(ctx.state, resource)


LONG_NAME = 24  # Azure: user-assigned identities with longer names may not work on VMs and scale sets


def _entry(resource: Resource, rid: str) -> UserAssignment | None:
    low = rid.lower().rstrip("/")
    return next((u for u in resource.user_assigned if u.resource_id.lower() == low), None)


def unassign(ctx: Ctx, resource: Resource, system_assigned: bool, user_refs: list[str]) -> dict[str, Any]:
    """Disable the system-assigned identity and/or remove user-assigned entries (dangling ones
    too: by full id, as a deleted identity's name resolves to nothing)."""
    if not system_assigned and not user_refs:
        raise InvalidArgument("say what to remove", hint="pass --system-assigned and/or --user-assigned ID")
    missing: list[str] = []
    detach: list[str] = []
    for ref in user_refs:
        rid = _unassign_target(ctx.state, resource, ref)
        attached = _entry(resource, rid) is not None
        bucket = detach if attached else missing
        if rid not in bucket:
            bucket.append(rid)
    if system_assigned and resource.system_principal_id is None:
        missing.insert(0, "[system]")
    if missing:
        raise MsiError(f"'{', '.join(missing)}' are not associated with '{resource.name}'")
    if system_assigned:
        assert resource.system_principal_id is not None  # else "[system]" is missing and raised above
        identity = ctx.state.identities[resource.system_principal_id]
        _remove_identity(ctx, identity)
        resource.system_principal_id = None
        ctx.log("Disable system-assigned identity", resource.id, f"principalId {identity.principal_id} deleted")
    for rid in detach:
        entry = _entry(resource, rid)
        assert entry is not None  # detach holds only attached ids
        resource.user_assigned.remove(entry)
        dangling = lookup.live_identity(ctx.state, entry) is None
        ctx.log("Remove user-assigned identity", resource.id, rid + (" (deleted identity)" if dangling else ""))
    return shapes.assignment_summary(ctx.state, resource)


def _unassign_target(state: State, resource: Resource, ref: str) -> str:
    """The identity id a --user-assigned value names. A full id is taken as it is (it may name a
    deleted identity); a bare name must resolve to a live identity."""
    if arm.looks_like_id(ref):
        return ref.rstrip("/")
    try:
        return lookup.user_identity(state, ref).resource_id
    except NotFound:
        dangling = [u.resource_id for u in resource.user_assigned
                    if u.resource_id.rsplit("/", 1)[-1].lower() == ref.lower() and lookup.live_identity(state, u) is None]
        if not dangling:
            return ref
        raise NotFound(
            f"user-assigned identity '{ref}' no longer exists, so its name cannot be resolved; '{resource.name}' still "
            f"holds its entry: remove it by full id: msi unassign {resource.name} --user-assigned {dangling[0]}"
        ) from None


def delete(ctx: Ctx, target: Resource | Identity) -> dict[str, Any]:
    """Delete a resource (and its system-assigned identity) or a user-assigned identity. Deleting a
    user-assigned identity leaves the resources it was assigned to with a dangling entry."""
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
    referenced = [r.id for r in lookup.mentioning(state.resources, target.principal_id)
                  if any(u.principal_id == target.principal_id for u in r.user_assigned)]
    _remove_identity(ctx, target)
    if referenced:
        ctx.warn(
            f"'{target.name}' is still assigned to {len(referenced)} resource(s); Azure does not remove those references: "
            "each keeps a dangling entry that gets no token until removed with msi unassign RESOURCE --user-assigned "
            + target.resource_id
        )
    ctx.log(
        "Delete user-assigned identity", target.resource_id,
        f"principalId {target.principal_id} deleted; still referenced by {len(referenced)} resource(s)",
    )
    return {"deleted": target.resource_id, "deletedPrincipals": [target.principal_id], "stillReferencedBy": referenced}


def guess_group_location(group: ResourceGroup) -> None:
    """Mark a group just made where its first member is (`msi import az` had no entry of its own)."""
    group.location_guessed = True


def locate_guessed_group(ctx: Ctx, group: ResourceGroup, location: str) -> ResourceGroup:
    """Put a group whose region was a guess where its own entry says (the same region included:
    the guess is settled), once. Only the group's metadata moves: its members keep their regions,
    as in Azure, where they need not match. The group is replaced, not changed, so a rehearsal's
    copy of the state never changes the state's own object."""
    if not group.location_guessed:
        raise Conflict(f"Invalid resource group location '{location}'. The Resource group already exists in location '{group.location}'")
    arm.validate_location(location)
    settled = ResourceGroup(group.name, group.subscription_id, location, group.created)
    ctx.state.resource_groups[group.id.lower()] = settled
    ctx.log("Locate resource group", group.id, f"{location} (was guessed: {group.location})")
    return settled


def delete_group(ctx: Ctx, group: ResourceGroup) -> dict[str, Any]:
    """Delete a group and everything in it (resources first, with their system-assigned identities,
    then user-assigned identities), each through the lifecycle's own delete."""
    resources, identities = groups.members(ctx.state, group)
    for resource in resources:
        delete(ctx, resource)
    for identity in identities:
        delete(ctx, identity)
    del ctx.state.resource_groups[group.id.lower()]
    ctx.log("Delete resource group", group.id, f"{len(resources)} resource(s), {len(identities)} identity(ies) deleted")
    return {"deleted": group.id, "resources": [r.id for r in resources], "identities": [i.resource_id for i in identities]}
