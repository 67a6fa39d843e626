"""The JSON shapes `az` prints (ARM and Microsoft Graph), built from the model. Key order is fixed."""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm
from msi_cli.core.model import (
    DeletedPrincipal,
    Identity,
    Resource,
    ResourceGroup,
    RoleAssignment,
    ServicePrincipal,
    State,
    Subscription,
    Tenant,
)


def resource(state: State, r: Resource) -> dict[str, Any]:
    rtype = r.rtype
    out: dict[str, Any] = {"id": r.id, "name": r.name, "type": rtype.arm_type}
    if rtype.kind:
        out["kind"] = rtype.kind
    out["resourceGroup"] = r.resource_group
    out["subscriptionId"] = r.subscription_id
    out["location"] = r.location
    if r.system_principal_id is None and not r.user_assigned:
        if rtype.supports_identity:
            out["identity"] = {"type": "None"}
        return out
    out["identity"] = identity_block(state, r)
    return out


def identity_block(state: State, r: Resource) -> dict[str, Any]:
    """A resource's `identity` as ARM shows it: type, principalId/tenantId when system-assigned is
    on, and each user-assigned entry with the ids it recorded when attached (a deleted identity's
    entry stays, dangling, as in Azure)."""
    kinds = []
    block: dict[str, Any] = {}
    if r.system_principal_id is not None:
        kinds.append("SystemAssigned")
        system = state.identities[r.system_principal_id]
        block["principalId"] = system.principal_id
        block["tenantId"] = system.tenant_id
    if r.user_assigned:
        kinds.append("UserAssigned")
        block["userAssignedIdentities"] = {
            u.resource_id: {"principalId": u.principal_id, "clientId": u.client_id} for u in r.user_assigned
        }
    return {"type": ", ".join(kinds) or "None", **block}


def user_identity(i: Identity) -> dict[str, Any]:
    parsed = arm.parse_id(i.resource_id)
    assert parsed is not None
    return {
        "id": i.resource_id,
        "name": i.name,
        "type": arm.IDENTITY_ARM_TYPE,
        "resourceGroup": parsed.resource_group,
        "subscriptionId": parsed.subscription_id,
        "location": i.location,
        "principalId": i.principal_id,
        "clientId": i.client_id,
        "tenantId": i.tenant_id,
    }


def principal(sp: ServicePrincipal) -> dict[str, Any]:
    return {
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "servicePrincipalType": "ManagedIdentity",
        "accountEnabled": True,
        "alternativeNames": list(sp.alternative_names),
        "keyCredentials": [
            {
                "customKeyIdentifier": c.thumbprint,
                "displayName": f"CN={sp.app_id}",
                "endDateTime": c.end,
                "keyId": c.key_id,
                "startDateTime": c.start,
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            }
            for c in sp.key_credentials
        ],
    }


def deleted_principal(d: DeletedPrincipal) -> dict[str, Any]:
    """A soft-deleted service principal, as Microsoft Graph lists deleted items."""
    return {
        "id": d.id,
        "appId": d.app_id,
        "displayName": d.display_name,
        "servicePrincipalType": "ManagedIdentity",
        "alternativeNames": list(d.alternative_names),
        "deletedDateTime": d.deleted,
    }


def tenant(t: Tenant) -> dict[str, Any]:
    return {"tenantId": t.id, "displayName": t.name, "createdDateTime": t.created}


def subscription(state: State, s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "tenantId": s.tenant_id,
        "isDefault": s.id == state.default_subscription_id,
        "state": "Enabled",
    }


# ---- role assignments (az role assignment) ---------------------------------------------------------

PRINCIPAL_TYPE = "ServicePrincipal"  # every principal here is a managed identity's service principal


def assignment_id(a: RoleAssignment) -> str:
    return f"{a.scope}/providers/Microsoft.Authorization/roleAssignments/{a.id}"


def principal_name(state: State, principal_id: str) -> str:
    """What `az role assignment list` shows as principalName: a service principal's first
    servicePrincipalName (for a managed identity, its appId); "" once the principal is gone
    (orphaned). The assignment keeps its principalType either way."""
    sp = state.principals.get(principal_id)
    return sp.app_id if sp is not None else ""


def assignment(state: State, a: RoleAssignment) -> dict[str, Any]:
    from msi_cli.core.roledefs import ROLES_BY_ID, role_definition_id

    definition = ROLES_BY_ID.get(a.role_definition_id)
    return {
        "id": assignment_id(a),
        "name": a.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "principalId": a.principal_id,
        "principalName": principal_name(state, a.principal_id),
        "principalType": PRINCIPAL_TYPE,
        "roleDefinitionName": definition.name if definition else "",
        "roleDefinitionId": role_definition_id(a.scope, a.role_definition_id),
        "scope": a.scope,
        "createdOn": a.created,
    }


def group(g: ResourceGroup) -> dict[str, Any]:
    """As `az group show` prints it."""
    return {
        "id": g.id,
        "location": g.location,
        "managedBy": None,
        "name": g.name,
        "properties": {"provisioningState": "Succeeded"},
        "subscriptionId": g.subscription_id,
        "tags": None,
        "type": "Microsoft.Resources/resourceGroups",
    }


def assignment_summary(state: State, resource: Resource) -> dict[str, Any]:
    """What az prints after `identity assign`/`remove`: `az vm identity assign` (and vmss) returns
    {systemAssignedIdentity, userAssignedIdentities}; `az webapp`/`functionapp`/`containerapp
    identity assign` return the identity block."""
    if resource.rtype.key not in ("vm", "vmss"):
        block = identity_block(state, resource)
        return {
            "principalId": block.get("principalId"),
            "tenantId": block.get("tenantId"),
            "type": block["type"],
            "userAssignedIdentities": block.get("userAssignedIdentities"),
        }
    users = {u.resource_id: {"principalId": u.principal_id, "clientId": u.client_id} for u in resource.user_assigned}
    return {"systemAssignedIdentity": resource.system_principal_id or "", "userAssignedIdentities": users}
