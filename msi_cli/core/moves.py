"""Moving resources across subscriptions of a tenant, and subscriptions across tenants.

Nothing here marks anything as broken. A move changes ids and directories, as Azure's does, and
the consequences follow from the model: a token is signed by the resource's subscription's tenant,
which may not hold the identity's service principal any more; a system-assigned identity is bound
to the resource id MSRP recorded for it, which App Service does not update on a move; role
assignments stay at scopes that no longer exist.
"""

from __future__ import annotations

import shlex
from typing import Any

from msi_cli.core import arm, groups, lookup
from msi_cli.core.context import Ctx
from msi_cli.core.model import SYSTEM, Identity, Resource, State, Subscription, Tenant
from msi_cli.errors import Conflict, MsiError, NotFound
from msi_cli.errors import TokenError

WEB_SITES = "Microsoft.Web/sites"
PROBE_AUDIENCE = "https://management.azure.com/"


def identity_health(ctx: Ctx, resource: Resource) -> list[dict[str, Any]]:
    """For each identity the resource holds: can its host still get a token, and if not, why."""
    from msi_cli.core import tokens

    report = []
    for identity in lookup.resource_identities(ctx.state, resource):
        entry = {"kind": identity.kind, "principalId": identity.principal_id, "works": True, "reason": ""}
        try:
            tokens.check_chain(ctx, resource, identity, PROBE_AUDIENCE)
        except TokenError as exc:
            entry["works"] = False
            entry["reason"] = exc.reason
            entry["fix"] = (
                # by id, as the what-if's fix commands: a name can match resources in other groups
                f"msi unassign {shlex.quote(resource.id)} --system-assigned && msi assign {shlex.quote(resource.id)} --system-assigned"
                if identity.kind == SYSTEM
                else f"delete and re-create {identity.name} in the resource's tenant, then re-attach it"
            )
        report.append(entry)
    return report


def migrate(ctx: Ctx, target: Resource | Identity, subscription_ref: str, resource_group: str | None) -> dict[str, Any]:
    """Move a resource to another subscription of its tenant and/or resource group. Azure does not
    move resources across Microsoft Entra tenants: only a whole subscription changes tenant."""
    state = ctx.state
    if isinstance(target, Identity):
        raise MsiError(
            f"user-assigned identity '{target.name}' cannot be moved: Azure does not support moving user-assigned "
            "managed identities to another resource group, subscription or region",
            hint="create a new identity where it is needed and attach that",
        )
    resource = target
    sub = lookup.subscription(state, subscription_ref)
    rg = resource.resource_group if resource_group is None else resource_group
    arm.validate_resource_group(rg)
    old_id = resource.id
    old_sub = resource.subscription_id
    old_tenant = lookup.tenant_of(state, resource.subscription_id).id
    if sub.tenant_id != old_tenant:
        raise MsiError(
            f"cannot move '{resource.name}' to subscription '{sub.name}' of another tenant: Azure does not move resources "
            "across Microsoft Entra tenants; a resource changes tenant only with its whole subscription "
            "(msi move-subscription SUBSCRIPTION --tenant TENANT)"
        )
    new_id = arm.resource_id(sub.id, rg, resource.rtype.arm_type, resource.name)
    if new_id.lower() == old_id.lower():
        raise Conflict(f"'{resource.name}' is already in subscription '{sub.name}', resource group '{rg}'")
    if new_id.lower() in state.resources:
        raise Conflict(f"a resource with id {new_id} already exists")
    groups.ensure(ctx, sub.id, rg, resource.location)
    del state.resources[old_id.lower()]
    resource.subscription_id = sub.id
    resource.resource_group = rg
    state.resources[new_id.lower()] = resource
    if resource.system_principal_id is not None and (resource.rtype.arm_type != WEB_SITES or sub.id == old_sub):
        # ARM tells MSRP about the new id for most resource types; App Service does not after a
        # move across subscriptions (the documented limitation), so a web or function app's
        # identity stays bound to the old id. A move between resource groups of one subscription
        # is a metadata change for App Service: the identity follows.
        identity = state.identities[resource.system_principal_id]
        identity.resource_id = new_id
        state.principals[identity.principal_id].alternative_names[1:] = [new_id]
    orphaned = [a.id for a in state.role_assignments.values() if arm.covers(old_id, a.scope)]
    ctx.log("Move resource", old_id, f"to {new_id}")
    return {
        "id": new_id,
        "previousId": old_id,
        "orphanedRoleAssignments": orphaned,
        "identities": identity_health(ctx, resource),
    }


def movable(state: State, ref: str) -> Resource | Identity:
    """What `migrate REF` moves: the resource of that name, even where a user-assigned identity
    shares it (identities cannot be moved); an identity only when no resource has the name."""
    try:
        return lookup.resource(state, ref)
    except NotFound:
        return lookup.target(state, ref)


def destination(state: State, sub: Subscription, tenant_ref: str) -> Tenant:
    """The tenant a subscription moves to; refused when it is there already."""
    tenant = lookup.tenant(state, tenant_ref)
    if sub.tenant_id == tenant.id:
        raise Conflict(f"subscription '{sub.name}' is already in tenant '{tenant.name}'")
    return tenant


def holdings(state: State, subscription_id: str) -> list[str]:
    """What a subscription holds that a move to another tenant can break ("2 resources", ...):
    nothing for one just created, whose move changes only its tenant."""
    scope = arm.subscription_scope(subscription_id)
    counts = {
        ("resource group", "resource groups"): sum(g.subscription_id == subscription_id for g in state.resource_groups.values()),
        ("resource", "resources"): sum(r.subscription_id == subscription_id for r in state.resources.values()),
        ("user-assigned identity", "user-assigned identities"):
            sum(arm.parts(i.resource_id).subscription_id == subscription_id for i in lookup.user_identities(state)),
        ("role assignment", "role assignments"): sum(arm.covers(scope, a.scope) for a in state.role_assignments.values()),
    }
    return [f"{n} {one if n == 1 else many}" for (one, many), n in counts.items() if n]


def move_subscription(ctx: Ctx, subscription_ref: str, tenant_ref: str) -> dict[str, Any]:
    """Transfer a subscription to another directory. Azure deletes every role assignment in it;
    the identities' service principals stay behind in the old directory."""
    state = ctx.state
    sub = lookup.subscription(state, subscription_ref)
    tenant = destination(state, sub, tenant_ref)
    old = state.tenants[sub.tenant_id]
    sub.tenant_id = tenant.id
    deleted = [a.id for a in state.role_assignments.values() if arm.covers(arm.subscription_scope(sub.id), a.scope)]
    for aid in deleted:
        del state.role_assignments[aid]
    ctx.log("Move subscription", sub.name, f"tenant {old.name} -> {tenant.name}; {len(deleted)} role assignment(s) deleted")
    moved = {i.resource_id.lower(): i.principal_id for i in lookup.user_identities(state)
             if arm.parts(i.resource_id).subscription_id == sub.id}
    broken = []
    for resource in state.resources.values():
        # its own resources, and those elsewhere that hold one of its user-assigned identities (for
        # those, only that identity: what else they hold was not touched by this move)
        inside = resource.subscription_id == sub.id
        if inside or any(u.resource_id.lower() in moved for u in resource.user_assigned):
            for entry in identity_health(ctx, resource):
                if not entry["works"] and (inside or entry["principalId"] in moved.values()):
                    broken.append({"resource": resource.id, **entry})
    stranded = [
        i.resource_id for i in lookup.user_identities(state)
        if arm.parts(i.resource_id).subscription_id == sub.id and i.tenant_id != tenant.id
    ]
    return {
        "subscriptionId": sub.id,
        "previousTenantId": old.id,
        "tenantId": tenant.id,
        "deletedRoleAssignments": deleted,
        "brokenIdentities": broken,
        "userAssignedIdentitiesToRecreate": stranded,
    }
