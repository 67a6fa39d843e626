"""What `msi list` shows: each collection in az's shape, filtered."""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm, lookup, roles, shapes
from msi_cli.core.model import State
from msi_cli.errors import InvalidArgument, NotFound


# The kinds each filter applies to: any other kind refuses it rather than ignore it silently. Not
# -g and --subscription: scripts set them for every command (MSI_RESOURCE_GROUP, MSI_SUBSCRIPTION),
# and a kind without groups or subscriptions (tenants, principals) just has nothing to filter.
FILTERS: dict[str, tuple[str, ...]] = {
    "--tenant": ("resources", "identities", "principals", "subscriptions", "groups", "role-assignments"),
    "--type": ("resources",),
    "--principal": ("role-assignments",),
    "--scope": ("role-assignments",),
    "--deleted": ("principals",),
}


def collect(
    state: State,
    kind: str,
    resource_group: str | None = None,
    subscription: str | None = None,
    tenant: str | None = None,
    type_key: str | None = None,
    principal: str | None = None,
    scope: str | None = None,
    deleted: bool = False,
) -> list[dict[str, Any]]:
    given = {"--tenant": tenant, "--type": type_key, "--principal": principal, "--scope": scope, "--deleted": deleted or None}
    for option, value in given.items():
        if value is not None and kind not in FILTERS[option]:
            kinds = " or ".join(f"'list {k}'" for k in FILTERS[option])
            raise InvalidArgument(f"{option} goes with {kinds}", hint=f"'list {kind}' would ignore it")
    sub_id = lookup.subscription(state, subscription).id if subscription else None
    tenant_id = lookup.tenant(state, tenant).id if tenant else None
    if kind in ("tenants", "subscriptions", "principals"):
        resource_group = None  # nothing of these lies in a group: a -g scripts set for every command is left unused
    rg = resource_group.lower() if resource_group is not None else None
    if resource_group is not None and not any(g.name.lower() == rg and sub_id in (None, g.subscription_id) for g in state.resource_groups.values()):
        # as az's list commands answer for a group that does not exist (ResourceGroupNotFound), not an empty list
        arm.validate_resource_group(resource_group)  # -g '' is refused as the invalid name it is
        elsewhere = [g for g in state.resource_groups.values() if g.name.lower() == rg]
        if elsewhere:
            raise NotFound(f"resource group '{resource_group}' not found in subscription {sub_id}",
                           hint="found in subscription " + " and ".join(sorted(g.subscription_id for g in elsewhere)))
        names = [g.name for g in state.resource_groups.values()]
        raise NotFound(f"resource group '{resource_group}' not found", hint=lookup.did_you_mean(resource_group, names))
    if deleted:
        return [
            shapes.deleted_principal(d) for d in state.deleted_principals.values() if tenant_id is None or d.tenant_id == tenant_id
        ]

    def in_scope(sub: str, group: str | None) -> bool:
        if sub_id is not None and sub != sub_id:
            return False
        if rg is not None and (group or "").lower() != rg:
            return False
        return tenant_id is None or state.subscriptions[sub].tenant_id == tenant_id

    if kind == "resources":
        return [
            shapes.resource(state, r)
            for r in state.resources.values()
            if in_scope(r.subscription_id, r.resource_group) and (type_key is None or r.type == type_key)
        ]
    if kind == "identities":
        out = []
        for i in lookup.user_identities(state):
            shape = shapes.user_identity(i)
            if in_scope(shape["subscriptionId"], shape["resourceGroup"]):
                out.append(shape)
        return out
    if kind == "principals":
        return [shapes.principal(sp) for sp in state.principals.values() if tenant_id is None or sp.tenant_id == tenant_id]
    if kind == "tenants":
        return [shapes.tenant(t) for t in state.tenants.values()]
    if kind == "subscriptions":
        return [shapes.subscription(state, s) for s in state.subscriptions.values() if tenant_id is None or s.tenant_id == tenant_id]
    if kind == "groups":
        return [shapes.group(g) for g in state.resource_groups.values() if in_scope(g.subscription_id, g.name)]
    if kind == "role-assignments":
        principal_id = roles.resolve_principal(state, principal) if principal else None
        target = roles.resolve_scope(state, scope) if scope else None
        out = []
        for a in state.role_assignments.values():
            where = arm.parts(a.scope)
            if where.subscription in state.subscriptions and not in_scope(where.subscription, where.resource_group):
                continue
            if principal_id is not None and a.principal_id != principal_id:
                continue
            if target is not None and not roles.scope_covers(a.scope, target):
                continue
            out.append(shapes.assignment(state, a))
        return out
    raise ValueError(kind)

