"""Microsoft.ManagedIdentity: user-assigned identities and a resource's system-assigned one."""

from __future__ import annotations

from msi_cli.core import arm, groups, lifecycle, lookup
from msi_cli.core.model import Identity, Resource
from msi_cli.errors import InvalidName, MsiError
from msi_cli.server.arm import errors, shapes
from msi_cli.server.arm.call import Call, Reply

UAI = arm.IDENTITY_ARM_TYPE
READ, WRITE, DELETE = f"{UAI}/read", f"{UAI}/write", f"{UAI}/delete"


def is_identity_type(call: Call) -> bool:
    return call.route.arm_type.lower() == UAI.lower()


def list_identities(call: Call) -> Reply:
    sub = call.subscription()
    call.require(READ)
    if call.route.group is not None:
        group = groups.find(call.state, sub.id, call.route.group)
        if group is None:
            raise errors.group_not_found(call.route.group)
        prefix = group.id.lower() + "/"
    else:
        prefix = f"/subscriptions/{sub.id}/".lower()
    found = [i for i in lookup.user_identities(call.state) if i.resource_id.lower().startswith(prefix)]
    return Reply(200, {"value": [shapes.user_identity(i) for i in found]})


def identity(call: Call) -> Reply:
    sub = call.subscription()
    group, name = call.resource_names()
    rid = arm.resource_id(sub.id, group, UAI, name)
    if call.method == "GET":
        call.require(READ)
        return Reply(200, shapes.user_identity(existing(call, rid)))
    if call.method == "PATCH":
        call.require(WRITE)
        return Reply(200, shapes.user_identity(existing(call, rid)))
    if call.method == "DELETE":
        call.require(DELETE)
        found = lookup.find_user_identity_by_id(call.state, rid)
        if found is None:
            return Reply(204)
        lifecycle.delete(call.changing(), found)
        return Reply(200)
    if call.method == "PUT":
        call.require(WRITE)
        return _put(call, sub.id, rid)
    raise errors.method_not_allowed(call.method)


def existing(call: Call, rid: str) -> Identity:
    found = lookup.find_user_identity_by_id(call.state, rid)
    if found is None:
        group_name, name = call.resource_names()
        if groups.find(call.state, call.route.subscription or "", group_name) is None:
            raise errors.group_not_found(group_name)
        raise errors.resource_not_found(UAI, name, group_name)
    return found


def _put(call: Call, sub_id: str, rid: str) -> Reply:
    group_name, name = call.resource_names()
    body = call.json_body()
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise errors.ArmError(400, "LocationRequired", "The location property is required for this definition.")
    location = arm.location_name(location)
    group = groups.find(call.state, sub_id, group_name)
    if group is None:
        raise errors.group_not_found(group_name)
    found = lookup.find_user_identity_by_id(call.state, rid)
    if found is not None:
        if found.location != location:
            raise errors.ArmError(
                409, "InvalidResourceLocation",
                f"The resource '{name}' already exists in location '{found.location}' in resource group "
                f"'{group.name}'. A resource with the same name cannot be created in location '{location}'. "
                "Please select a new resource name.",
            )
        return Reply(200, shapes.user_identity(found))
    try:
        created = lifecycle.create_identity(call.changing(), name, group.name, sub_id, location)
    except InvalidName as exc:
        if exc.message.startswith("invalid location"):
            raise errors.ArmError(400, "LocationNotAvailableForResourceType",
                                  f"The provided location '{location}' is not available for resource type '{UAI}'.") from None
        raise errors.ArmError(400, "InvalidResourceName", exc.message) from None
    except MsiError as exc:
        raise errors.ArmError(400, "BadRequest", exc.message) from None
    return Reply(201, shapes.user_identity(created))


def system_identity(call: Call) -> Reply:
    """GET {resource id}/providers/Microsoft.ManagedIdentity/identities/default."""
    call.subscription()
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    call.require("Microsoft.ManagedIdentity/identities/read")
    scope = call.route.scope
    resource = call.state.resources.get(scope.lower())
    if not isinstance(resource, Resource) or resource.system_principal_id is None:
        parsed = arm.parse_id(scope)
        raise errors.resource_not_found("Microsoft.ManagedIdentity/identities", "default",
                                        parsed.resource_group if parsed and parsed.resource_group else "")
    return Reply(200, shapes.system_identity(resource.id, call.state.identities[resource.system_principal_id]))
