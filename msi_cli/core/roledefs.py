"""Azure's built-in role definitions that msi knows (names, GUIDs, actions and data actions, as
`az role definition list` shows them), and the id a definition has in a subscription. Pure data:
assignments and access checks are in core/roles.py and core/access.py."""

from __future__ import annotations

from msi_cli.core import arm
from msi_cli.core.datatype import record


@record(frozen=True)
class RoleDefinition:
    name: str
    id: str  # GUID, the same in every subscription
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


_KV_SECRETS = "Microsoft.KeyVault/vaults/secrets"
_BLOB = "Microsoft.Storage/storageAccounts/blobServices"

_MI = "Microsoft.ManagedIdentity/userAssignedIdentities"
# Shared tail of the two managed-identity roles, as Azure defines them.
_MI_COMMON = (
    "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/deployments/*", "Microsoft.Support/*",
)

# Action lists as Azure's built-in role definitions list them (learn.microsoft.com, built-in roles:
# General and Identity).
BUILT_IN_ROLES: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", actions=("*",)
    ),
    RoleDefinition(
        "Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c", actions=("*",),
        not_actions=(
            "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write", "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
        ),
    ),
    RoleDefinition("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", actions=("*/read",)),
    RoleDefinition(
        "User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        actions=("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
    ),
    RoleDefinition(
        "Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        actions=("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete", "*/read",
                 "Microsoft.Support/*"),
    ),
    RoleDefinition(
        "Managed Identity Contributor", "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        actions=(
            f"{_MI}/read", f"{_MI}/write", f"{_MI}/delete", f"{_MI}/federatedIdentityCredentials/read",
            f"{_MI}/federatedIdentityCredentials/write", f"{_MI}/federatedIdentityCredentials/delete",
            f"{_MI}/revokeTokens/action", *_MI_COMMON,
        ),
    ),
    RoleDefinition(
        "Managed Identity Operator", "f1a07417-d97a-45cb-824c-7a7467783830",
        actions=(f"{_MI}/*/read", f"{_MI}/*/assign/action", *_MI_COMMON),
    ),
    RoleDefinition(
        "Key Vault Administrator", "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        actions=("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"),
        data_actions=("Microsoft.KeyVault/vaults/*",),
    ),
    RoleDefinition(
        "Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        actions=("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"),
        data_actions=(f"{_KV_SECRETS}/*",),
    ),
    RoleDefinition(
        "Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6",
        data_actions=(f"{_KV_SECRETS}/getSecret/action", f"{_KV_SECRETS}/readMetadata/action"),
    ),
    RoleDefinition(
        "Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        actions=(f"{_BLOB}/containers/*", f"{_BLOB}/generateUserDelegationKey/action"),
        data_actions=(f"{_BLOB}/containers/blobs/*",),
    ),
    RoleDefinition(
        "Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        actions=(f"{_BLOB}/containers/delete", f"{_BLOB}/containers/read", f"{_BLOB}/containers/write", f"{_BLOB}/generateUserDelegationKey/action"),
        data_actions=(
            f"{_BLOB}/containers/blobs/delete", f"{_BLOB}/containers/blobs/read", f"{_BLOB}/containers/blobs/write",
            f"{_BLOB}/containers/blobs/move/action", f"{_BLOB}/containers/blobs/add/action",
        ),
    ),
    RoleDefinition(
        "Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        actions=(f"{_BLOB}/containers/read", f"{_BLOB}/generateUserDelegationKey/action"),
        data_actions=(f"{_BLOB}/containers/blobs/read",),
    ),
)
ROLES_BY_ID = {r.id: r for r in BUILT_IN_ROLES}


def role_definition_id(scope: str, role_id: str) -> str:
    return f"/subscriptions/{arm.parts(scope).subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
