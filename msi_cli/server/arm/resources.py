"""Hosting resources (VM, VMSS, App Service and Functions sites, Container Apps, and the
resources without an identity endpoint): GET, list, and PATCH/PUT of their `identity` block,
applied through msi's lifecycle (`assign`/`unassign`), answered 200 as ARM does."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from msi_cli.core import arm, authz, groups, lifecycle, lookup
from msi_cli.core.model import Identity, Resource
from msi_cli.errors import MsiError
from msi_cli.server.arm import errors, shapes
from msi_cli.server.arm.call import Call, Reply

_TYPES = {t.arm_type.lower() for t in arm.RESOURCE_TYPES.values()}
ASSIGN = f"{arm.IDENTITY_ARM_TYPE}/assign/action"


def known_type(call: Call) -> bool:
    return call.route.arm_type.lower() in _TYPES


def _arm_type(call: Call) -> str:
    low = call.route.arm_type.lower()
    return next(t.arm_type for t in arm.RESOURCE_TYPES.values() if t.arm_type.lower() == low)


def list_resources(call: Call) -> Reply:
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    sub = call.subscription()
    arm_type = _arm_type(call)
    call.require(f"{arm_type}/read")
    prefix = f"/subscriptions/{sub.id}/".lower()
    if call.route.group is not None:
        group = groups.find(call.state, sub.id, call.route.group)
        if group is None:
            raise errors.group_not_found(call.route.group)
        prefix = group.id.lower() + "/"
    found = [r for k, r in call.state.resources.items() if k.startswith(prefix) and r.rtype.arm_type == arm_type]
    return Reply(200, {"value": [shapes.resource(call.state, r) for r in found]})


def generic_list(call: Call) -> Reply:
    """`GET .../resources` (az resource list): every resource and user-assigned identity in the
    subscription or group that the caller may read, in ARM's generic resource shape."""
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    sub = call.subscription()
    prefix = f"/subscriptions/{sub.id}/".lower()
    if call.route.group is not None:
        group = groups.find(call.state, sub.id, call.route.group)
        if group is None:
            raise errors.group_not_found(call.route.group)
        prefix = group.id.lower() + "/"
    wanted = _filter(call.query.get("$filter", ""))
    principal = call.caller.principal_id
    # (id, ARM type, group, name, its generic shape when listed)
    items: list[tuple[str, str, str, str, Callable[[], dict[str, Any]]]] = [
        (r.id, r.rtype.arm_type, r.resource_group, r.name, functools.partial(_generic, call, r))
        for r in call.state.resources.values()]
    for i in lookup.user_identities(call.state):
        parsed = arm.parse_id(i.resource_id)
        items.append((i.resource_id, arm.IDENTITY_ARM_TYPE, (parsed.resource_group or "") if parsed else "", i.name,
                      functools.partial(_generic_identity, i)))
    out = []
    for rid, arm_type, group_name, name, shape in items:
        values = {"resourcegroup": group_name, "resourcetype": arm_type, "name": name}
        if not rid.lower().startswith(prefix) or any(values[k].lower() != v.lower() for k, v in wanted.items()):
            continue
        if authz.permitted(call.state, principal, f"{arm_type}/read", rid):
            out.append(shape())
    return Reply(200, {"value": out})


_CLAUSE = re.compile(r"\s*(resourceGroup|resourceType|name)\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)


def _filter(text: str) -> dict[str, str]:
    """The `eq` clauses of `$filter` that az resource list sends (resourceGroup, resourceType, name)."""
    found = {}
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE) if text.strip() else []:
        m = _CLAUSE.fullmatch(part)
        if m is None:
            raise errors.ArmError(400, "InvalidFilterInQueryString", f"Invalid $filter '{text}' specified in the query string.")
        found[m[1].lower()] = m[2].replace("''", "'")
    return found


def _generic(call: Call, r: Resource) -> dict[str, Any]:
    item = shapes.resource(call.state, r)
    item.pop("properties", None)
    return item


def _generic_identity(i: Identity) -> dict[str, Any]:
    return {"id": i.resource_id, "name": i.name, "type": arm.IDENTITY_ARM_TYPE, "location": i.location, "tags": {}}


def resource(call: Call) -> Reply:
    sub = call.subscription()
    arm_type = _arm_type(call)
    group, name = call.resource_names()
    rid = arm.resource_id(sub.id, group, arm_type, name)
    if call.method == "GET":
        call.require(f"{arm_type}/read")
        return Reply(200, shapes.resource(call.state, _existing(call, rid, arm_type)))
    if call.method in ("PATCH", "PUT"):
        call.require(f"{arm_type}/write")
        found = _existing(call, rid, arm_type)
        block = call.json_body().get("identity")
        if block is not None:
            _apply(call, found, block, merge=call.method == "PATCH")
        return Reply(200, shapes.resource(call.state, found))
    raise errors.method_not_allowed(call.method)


def _existing(call: Call, rid: str, arm_type: str) -> Resource:
    found = call.state.resources.get(rid.lower())
    if found is None:
        group, name = call.resource_names()
        if groups.find(call.state, call.route.subscription or "", group) is None:
            raise errors.group_not_found(group)
        raise errors.resource_not_found(arm_type, name, group)
    return found


def _apply(call: Call, resource: Resource, block: object, merge: bool) -> None:
    """The wanted identities from an `identity` block: `type` (required) says which kinds stay; in a PATCH
    `userAssignedIdentities` adds ids (value `{}`) and removes them (value null), in a PUT it is
    the whole set."""
    if not isinstance(block, dict):
        raise errors.invalid_content("'identity' must be an object")
    if block.get("type") is None:  # not "None": a block without a type asks for no change we could read
        raise errors.ArmError(400, "BadRequest", "The identity type must be specified.")
    kinds = {k.strip().lower() for k in str(block["type"]).split(",")}
    if not kinds <= {"none", "systemassigned", "userassigned"}:
        raise errors.ArmError(400, "BadRequest", f"The identity type '{block.get('type')}' is not valid.")
    system = "systemassigned" in kinds
    users = block.get("userAssignedIdentities") or {}
    if not isinstance(users, dict):
        raise errors.invalid_content("'userAssignedIdentities' must be an object")
    current = {i.lower(): i for i in resource.user_identity_ids}
    wanted: dict[str, str] = dict(current) if merge else {}
    for rid, value in users.items():
        if value is None:
            wanted.pop(rid.lower(), None)
        else:
            wanted[rid.lower()] = rid
    if "userassigned" not in kinds:
        wanted = {}
    attach = [rid for low, rid in wanted.items() if low not in current]
    detach = [rid for low, rid in current.items() if low not in wanted]
    _check_linked(call, attach)
    ctx = call.changing()
    try:
        if detach or (not system and resource.system_principal_id is not None):
            lifecycle.unassign(ctx, resource, not system and resource.system_principal_id is not None, detach)
        if attach or (system and resource.system_principal_id is None):
            lifecycle.assign(ctx, resource, system and resource.system_principal_id is None, attach)
    except MsiError as exc:
        raise errors.identity_operation_failed(resource.id, exc.message) from None


def _check_linked(call: Call, attach: list[str]) -> None:
    """Attaching a user-assigned identity needs its assign action on the identity itself."""
    denied = [rid for rid in attach
              if not authz.permitted(call.state, call.caller.principal_id, ASSIGN, rid)]
    if denied:
        raise errors.linked_authorization_failed(call.caller.app_id, call.caller.principal_id, f"{_arm_type(call)}/write",
                                                 call.route.path, ASSIGN, ",".join(denied))
    for rid in attach:
        if lookup.find_user_identity_by_id(call.state, rid) is None:
            raise errors.identity_operation_failed(call.route.path, f"user-assigned identity '{rid}' not found")
