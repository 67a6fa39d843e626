"""Tenants, subscriptions and resource groups."""

from __future__ import annotations

from msi_cli.core import arm, authz, groups, lifecycle
from msi_cli.errors import Conflict, MsiError
from msi_cli.server.arm import errors, shapes
from msi_cli.server.arm.call import Call, Reply

GROUP_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
GROUP_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
GROUP_DELETE = "Microsoft.Resources/subscriptions/resourceGroups/delete"


def tenants(call: Call) -> Reply:
    tenant = call.state.tenants.get(call.caller.tenant_id)
    return Reply(200, {"value": [shapes.tenant(tenant)] if tenant else []})


def subscriptions(call: Call) -> Reply:
    """Only the subscriptions where the caller holds a role, as Azure lists them."""
    visible = authz.visible_subscriptions(call.state, call.caller.principal_id)
    subs = [call.state.subscriptions[s] for s in visible]
    return Reply(200, {"value": [shapes.subscription(s) for s in subs if s.tenant_id == call.caller.tenant_id]})


def subscription(call: Call) -> Reply:
    sub = call.subscription()
    if sub.id not in authz.visible_subscriptions(call.state, call.caller.principal_id):
        raise errors.subscription_not_found(call.route.subscription or "")
    return Reply(200, shapes.subscription(sub))


def list_groups(call: Call) -> Reply:
    sub = call.subscription()
    call.require(GROUP_READ)
    prefix = f"/subscriptions/{sub.id}/".lower()
    found = [g for k, g in call.state.resource_groups.items() if k.startswith(prefix)]
    return Reply(200, {"value": [shapes.group(g) for g in found]})


def group(call: Call) -> Reply:
    sub = call.subscription()
    name = call.route.group
    assert name is not None  # the route of a resource group names it
    if call.method in ("GET", "HEAD"):
        call.require(GROUP_READ)
        found = groups.find(call.state, sub.id, name)
        if call.method == "HEAD":
            return Reply(204 if found else 404)
        if found is None:
            raise errors.group_not_found(name)
        return Reply(200, shapes.group(found))
    if call.method == "PUT":
        call.require(GROUP_WRITE)
        location = call.json_body().get("location")
        if not isinstance(location, str) or not location.strip():
            raise errors.ArmError(400, "LocationRequired", "The location property is required for this definition.")
        try:
            created_group, created = groups.create_or_update(call.changing(), sub.id, name, arm.location_name(location))
        except Conflict as exc:
            raise errors.ArmError(409, "InvalidResourceGroupLocation", exc.message) from None
        except MsiError as exc:
            if exc.message.startswith("invalid location"):
                raise errors.ArmError(400, "LocationNotAvailableForResourceGroup",
                                      f"The provided location '{location}' is not available for resource group.") from None
            raise errors.ArmError(400, "InvalidResourceName", exc.message) from None
        return Reply(201 if created else 200, shapes.group(created_group))
    if call.method == "PATCH":
        call.require(GROUP_WRITE)
        found = groups.find(call.state, sub.id, name)
        if found is None:
            raise errors.group_not_found(name)
        return Reply(200, shapes.group(found))
    if call.method == "DELETE":
        call.require(GROUP_DELETE)
        found = groups.find(call.state, sub.id, name)
        if found is None:
            raise errors.group_not_found(name)
        lifecycle.delete_group(call.changing(), found)
        return Reply(200)
    raise errors.method_not_allowed(call.method)
