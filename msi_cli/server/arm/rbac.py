"""Microsoft.Authorization: role definitions (built-in roles) and role assignments."""

from __future__ import annotations

import re

from msi_cli.core import arm, groups, roledefs, roles
from msi_cli.errors import MsiError, NotFound
from msi_cli.server.arm import errors, shapes
from msi_cli.server.arm.call import Call, Reply

RA = "Microsoft.Authorization/roleAssignments"
_ROLE_NAME = re.compile(r"\s*rolename\s+eq\s+'(?P<v>(?:[^']|'')*)'\s*", re.IGNORECASE)
_PRINCIPAL = re.compile(r"\s*principalid\s+eq\s+'(?P<v>[^']*)'\s*", re.IGNORECASE)
_AT_SCOPE = re.compile(r"\s*atscope\(\)\s*", re.IGNORECASE)
# for a service principal, its own assignments (ARM adds a user's groups'; msi has no groups)
_ASSIGNED_TO = re.compile(r"\s*assignedto\(\s*'(?P<v>[^']*)'\s*\)\s*", re.IGNORECASE)


def _check_scope(call: Call, action: str) -> str:
    """The scope before /providers/Microsoft.Authorization: '' (tenant root), a subscription, a
    resource group or a resource, which must exist, once the caller may perform `action` there
    (as ARM authorizes before it looks: a caller without the right learns nothing of what exists)."""
    scope = call.route.scope
    if scope == "":
        call.require(action)
        return scope
    parsed = arm.parse_id(scope)
    if parsed is None:
        raise errors.no_route(call.route.path)
    sub = call.subscription()
    call.require(action)
    if parsed.resource_group is not None and groups.find(call.state, sub.id, parsed.resource_group) is None:
        raise errors.group_not_found(parsed.resource_group)
    if parsed.name is not None and scope.lower() not in call.state.resources:
        from msi_cli.core import lookup

        if lookup.find_user_identity_by_id(call.state, scope) is None:
            raise errors.resource_not_found(parsed.arm_type or "", parsed.name, parsed.resource_group or "")
    return scope


def role_definitions(call: Call) -> Reply:
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    _check_scope(call, "Microsoft.Authorization/roleDefinitions/read")
    sub = call.route.subscription
    found = list(roledefs.BUILT_IN_ROLES)
    flt = call.query.get("$filter")
    if flt:
        m = _ROLE_NAME.fullmatch(flt)
        if m:
            wanted = m["v"].replace("''", "'").lower()
            found = [d for d in found if d.name.lower() == wanted]
    return Reply(200, {"value": [shapes.role_definition(sub, d) for d in found]})


def role_definition(call: Call) -> Reply:
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    _check_scope(call, "Microsoft.Authorization/roleDefinitions/read")
    definition = roledefs.ROLES_BY_ID.get((call.route.name or "").lower())
    if definition is None:
        raise _no_definition(call.route.name or "")
    return Reply(200, shapes.role_definition(call.route.subscription, definition))


def _no_definition(ref: str) -> errors.ArmError:
    return errors.ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{ref}' does not exist.")


def role_assignments(call: Call) -> Reply:
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    scope = _check_scope(call, f"{RA}/read")
    flt = call.query.get("$filter", "")
    principals: set[str] = set()  # every principal clause must hold
    at_scope = False
    for part in re.split(r"\s+and\s+", flt, flags=re.IGNORECASE) if flt else []:
        if _AT_SCOPE.fullmatch(part):
            at_scope = True
        elif (m := _PRINCIPAL.fullmatch(part) or _ASSIGNED_TO.fullmatch(part)) is not None:
            principals.add(m["v"].lower())
        else:
            raise errors.ArmError(400, "UnsupportedQuery",
                                  f"The filter '{flt}' is not supported. Supported filters are either 'atScope()' or "
                                  "'principalId eq '{value}' or assignedTo('{value}')'.")
    out = []
    for a in call.state.role_assignments.values():
        above = arm.covers(a.scope, scope) if scope else a.scope == ""
        below = scope == "" or arm.covers(scope, a.scope)
        if principals and principals != {a.principal_id}:
            continue
        if at_scope and not above:
            continue
        if not (above or below):
            continue
        out.append(shapes.role_assignment(call.state, a))
    return Reply(200, {"value": out})


_ACTIONS = {"GET": f"{RA}/read", "DELETE": f"{RA}/delete", "PUT": f"{RA}/write"}


def role_assignment(call: Call) -> Reply:
    if call.method not in _ACTIONS:
        raise errors.method_not_allowed(call.method)
    scope = _check_scope(call, _ACTIONS[call.method])
    guid = call.route.name or ""
    found = call.state.role_assignments.get(guid.lower())
    if call.method == "GET":
        if found is None or found.scope.lower() != scope.lower():
            raise errors.ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{guid}' is not found.")
        return Reply(200, shapes.role_assignment(call.state, found))
    if call.method == "DELETE":
        if found is None or found.scope.lower() != scope.lower():
            return Reply(204)
        body = shapes.role_assignment(call.state, found)
        roles.delete_assignment(call.changing(), found.id)
        return Reply(200, body)
    return _create(call, scope, guid)


def _create(call: Call, scope: str, guid: str) -> Reply:
    if not arm.is_guid(guid):
        raise errors.ArmError(400, "InvalidRoleAssignmentId",
                              f"The role assignment ID '{guid}' is not valid. The role assignment ID must be a GUID.")
    props = call.json_body().get("properties")
    if not isinstance(props, dict):
        raise errors.invalid_content("'properties' is required")
    role_ref, principal_id = props.get("roleDefinitionId"), props.get("principalId")
    if not isinstance(role_ref, str) or not isinstance(principal_id, str):
        raise errors.invalid_content("'properties.roleDefinitionId' and 'properties.principalId' are required")
    definition = roledefs.ROLES_BY_ID.get(role_ref.rstrip("/").rsplit("/", 1)[-1].lower())
    if definition is None:
        raise _no_definition(role_ref.rstrip("/").rsplit("/", 1)[-1])
    if not scope:  # msi models no tenant-root scope: nobody may assign there
        raise errors.authorization_failed(call.caller.app_id, call.caller.principal_id, f"{RA}/write", call.route.path)
    sub = call.subscription()
    tenant = call.tenant_of(sub)
    pid = principal_id.lower()
    sp = call.state.principals.get(pid)
    if sp is None or sp.tenant_id != tenant.id:
        raise errors.ArmError(
            400, "PrincipalNotFound",
            f"Principal {pid.replace('-', '')} does not exist in the directory {tenant.id}. Check that you have the correct "
            "principal ID. If you are creating this principal and then immediately assigning a role, this error might be "
            "related to a replication delay. In this case, set the role assignment principalType property to a value, "
            "such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
        )
    existing = call.state.role_assignments.get(guid.lower())
    if existing is not None:
        if existing.principal_id == pid and existing.role_definition_id == definition.id and existing.scope.lower() == scope.lower():
            raise errors.ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        raise errors.ArmError(400, "RoleAssignmentUpdateNotPermitted",
                              "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
    try:
        created = roles.grant(call.changing(), pid, definition.id, scope, assignment_id=guid)
    except NotFound as exc:
        raise errors.ArmError(404, "ResourceNotFound", exc.message) from None
    except MsiError as exc:
        if exc.message.startswith("RoleAssignmentExists"):
            raise errors.ArmError(409, "RoleAssignmentExists", "The role assignment already exists.") from None
        raise errors.ArmError(400, "BadRequest", exc.message) from None
    return Reply(201, shapes.role_assignment(call.state, created))
