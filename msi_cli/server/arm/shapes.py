"""The JSON ARM answers with, per resource family, built from msi's model."""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm, roledefs
from msi_cli.core import shapes as core_shapes
from msi_cli.core.model import Identity, Resource, ResourceGroup, RoleAssignment, State, Subscription, Tenant


def subscription(s: Subscription) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{s.id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.id,
        "tenantId": s.tenant_id,
        "displayName": s.name,
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                 "spendingLimit": "Off"},
    }


def tenant(t: Tenant) -> dict[str, Any]:
    return {"id": f"/tenants/{t.id}", "tenantId": t.id, "tenantCategory": "Home", "displayName": t.name,
            "tenantType": "AAD"}


def group(g: ResourceGroup) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "type": "Microsoft.Resources/resourceGroups", "location": g.location,
            "properties": {"provisioningState": "Succeeded"}}


def user_identity(i: Identity) -> dict[str, Any]:
    return {
        "id": as_identity_rp_writes(i.resource_id),
        "name": i.name,
        "type": arm.IDENTITY_ARM_TYPE,
        "location": i.location,
        "tags": {},
        "properties": {"tenantId": i.tenant_id, "principalId": i.principal_id, "clientId": i.client_id},
    }


def as_identity_rp_writes(resource_id: str) -> str:
    """A user-assigned identity's id as Microsoft.ManagedIdentity returns it: with `resourcegroups`
    in lower case (azure-behaviour.md, "ARM shapes"; Azure/azure-cli#27099, and
    pulumi/pulumi-azure-native#2152, closed by design). ARM ids are case-insensitive: every route
    here matches either spelling."""
    return resource_id.replace("/resourceGroups/", "/resourcegroups/", 1)


def system_identity(scope: str, i: Identity) -> dict[str, Any]:
    return {
        "id": f"{scope}/providers/Microsoft.ManagedIdentity/identities/default",
        "name": "default",
        "type": "Microsoft.ManagedIdentity/identities",
        "location": i.location,
        "tags": {},
        "properties": {"tenantId": i.tenant_id, "principalId": i.principal_id, "clientId": i.client_id},
    }


def identity_block(state: State, r: Resource) -> dict[str, Any] | None:
    """A resource's `identity` property as ARM returns it (msi's own shape: a deleted identity's
    entry keeps the ids it recorded); None when it has none."""
    block = core_shapes.identity_block(state, r)
    return None if block["type"] == "None" else block


def resource(state: State, r: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "name": r.name, "type": r.rtype.arm_type}
    if r.rtype.kind:
        out["kind"] = r.rtype.kind
    out["location"] = r.location
    out["tags"] = {}
    block = identity_block(state, r)
    if block is not None:
        out["identity"] = block
    out["properties"] = {"provisioningState": "Succeeded"}
    return out


def role_definition(scope_sub: str | None, d: roledefs.RoleDefinition) -> dict[str, Any]:
    prefix = f"/subscriptions/{scope_sub}" if scope_sub else ""
    return {
        "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{d.id}",
        "name": d.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": d.name,
            "type": "BuiltInRole",
            "description": "",
            "assignableScopes": ["/"],
            "permissions": [{"actions": list(d.actions), "notActions": list(d.not_actions),
                             "dataActions": list(d.data_actions), "notDataActions": list(d.not_data_actions)}],
        },
    }


def role_assignment(state: State, a: RoleAssignment) -> dict[str, Any]:
    return {
        "id": core_shapes.assignment_id(a),
        "name": a.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": roledefs.role_definition_id(a.scope, a.role_definition_id),
            "principalId": a.principal_id,
            "principalType": core_shapes.PRINCIPAL_TYPE,  # kept when the principal is gone (orphaned), as ARM keeps it
            "scope": a.scope,
            "condition": None,
            "conditionVersion": None,
            "createdOn": a.created,
            "updatedOn": a.created,
            "createdBy": None,
            "updatedBy": None,
            "delegatedManagedIdentityResourceId": None,
            "description": None,
        },
    }
