"""`msi demo estate`: import a small estate from az JSON, rehearse its tenant move with
--what-if, then move it and run the fix commands the rehearsal printed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RG = f"/subscriptions/{SUB}/resourceGroups/shop-rg"
UAI = f"/subscriptions/{SUB}/resourcegroups/shop-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shop-worker-id"

# What az printed for a small shop, in az's shapes (trimmed to the fields msi reads, and a few more).
SAMPLE: dict[str, Any] = {
    "account.json": [
        {"cloudName": "AzureCloud", "homeTenantId": TENANT, "id": SUB, "isDefault": True, "managedByTenants": [], "name": "Shop Production",
         "state": "Enabled", "tenantDisplayName": "Contoso", "tenantId": TENANT, "user": {"name": "admin@contoso.com", "type": "user"}},
        {"cloudName": "AzureCloud", "homeTenantId": "a1b2c3d4-0000-4000-8000-0000000000fb", "id": "5c0a2b9e-7d4f-4c1a-9e3b-444455556666",
         "isDefault": False, "managedByTenants": [], "name": "Fabrikam Landing Zone", "state": "Enabled", "tenantDisplayName": "Fabrikam",
         "tenantId": "a1b2c3d4-0000-4000-8000-0000000000fb", "user": {"name": "admin@contoso.com", "type": "user"}},
    ],
    "identity.json": [
        {"clientId": "5e0d3a1c-8f6b-4b57-a3f1-0c1d2e3f4a5b", "id": UAI, "location": "westeurope", "name": "shop-worker-id",
         "principalId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "resourceGroup": "shop-rg", "tags": {}, "tenantId": TENANT,
         "type": "Microsoft.ManagedIdentity/userAssignedIdentities"},
    ],
    "resources.json": [
        {"id": f"{RG}/providers/Microsoft.KeyVault/vaults/shop-kv", "identity": None, "kind": None, "location": "westeurope",
         "name": "shop-kv", "resourceGroup": "shop-rg", "type": "Microsoft.KeyVault/vaults"},
        {"id": f"{RG}/providers/Microsoft.Sql/servers/shop-sql", "identity": None, "kind": "v12.0", "location": "westeurope",
         "name": "shop-sql", "resourceGroup": "shop-rg", "type": "Microsoft.Sql/servers"},
    ],
    "webapps.json": [
        {"defaultHostName": "shop-web.azurewebsites.net", "id": f"{RG}/providers/Microsoft.Web/sites/shop-web",
         "identity": {"principalId": "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a", "tenantId": TENANT, "type": "SystemAssigned",
                      "userAssignedIdentities": None},
         "kind": "app,linux", "location": "West Europe", "name": "shop-web", "resourceGroup": "shop-rg", "state": "Running",
         "type": "Microsoft.Web/sites"},
        {"defaultHostName": "shop-jobs.azurewebsites.net", "id": f"{RG}/providers/Microsoft.Web/sites/shop-jobs",
         "identity": {"principalId": None, "tenantId": None, "type": "UserAssigned", "userAssignedIdentities": {
             UAI: {"clientId": "5e0d3a1c-8f6b-4b57-a3f1-0c1d2e3f4a5b", "principalId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}}},
         "kind": "functionapp,linux", "location": "West Europe", "name": "shop-jobs", "resourceGroup": "shop-rg", "state": "Running",
         "type": "Microsoft.Web/sites"},
    ],
    "roles.json": [
        {"id": f"{RG}/providers/Microsoft.KeyVault/vaults/shop-kv/providers/Microsoft.Authorization/roleAssignments/2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091",
         "name": "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091", "principalId": "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a",
         "principalType": "ServicePrincipal", "roleDefinitionName": "Key Vault Secrets User",
         "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6",
         "scope": f"{RG}/providers/Microsoft.KeyVault/vaults/shop-kv", "type": "Microsoft.Authorization/roleAssignments"},
        {"id": f"{RG}/providers/Microsoft.Authorization/roleAssignments/3c4d5e6f-7081-4923-8b4c-5d6e7f809102",
         "name": "3c4d5e6f-7081-4923-8b4c-5d6e7f809102", "principalId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
         "principalType": "ServicePrincipal", "roleDefinitionName": "Contributor",
         "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
         "scope": RG, "type": "Microsoft.Authorization/roleAssignments"},
        {"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/4d5e6f70-8192-4a34-9c5d-6e7f80910213",
         "name": "4d5e6f70-8192-4a34-9c5d-6e7f80910213", "principalId": "0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e", "principalName": "admin@contoso.com",
         "principalType": "User", "roleDefinitionName": "Owner",
         "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
         "scope": f"/subscriptions/{SUB}", "type": "Microsoft.Authorization/roleAssignments"},
    ],
}


def estate(n: Any) -> None:
    """The scenario, told by `n` (msi_cli.cli.demo.Narrator)."""
    n.title("estate: import from az JSON, rehearse a move to another tenant")
    folder = Path(n.state).parent / "az"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in SAMPLE.items():
        try:
            (folder / name).write_text(json.dumps(data, indent=2))
        except OSError as exc:  # a full or limited temporary folder: its reason, not a bug report
            from msi_cli.errors import StateError

            raise StateError(f"cannot write the demo's sample file {folder / name}: {exc.strerror or exc}") from None
    n.say("What `az account list`, `az identity list`, `az resource list`, `az webapp list` and "
          "`az role assignment list --all` printed for a small shop, saved as JSON files:")
    created = n.run("import", "az", str(folder), "--query", "summary.create", shown=f"import az {folder}")
    n.fact(f"{created} objects created with their real names and ids; the SQL server is kept as a plain resource; "
           "the user's Owner grant is reported, not modelled")
    old = n.run("show", "shop-web")["identity"]["principalId"]
    n.run("token", "shop-web", "--audience", "https://vault.azure.net", "--query", "expires_in")
    n.say("The question before a tenant move: what breaks? Rehearse it; nothing is changed.")
    shown = "move-subscription 'Shop Production' --tenant Fabrikam --what-if"
    lost = n.run("move-subscription", "Shop Production", "--tenant", "Fabrikam", "--what-if",
                 "--query", "length(deletedRoleAssignments)", shown=shown + " --query 'length(deletedRoleAssignments)'")
    broken = n.run("move-subscription", "Shop Production", "--tenant", "Fabrikam", "--what-if",
                   "--query", "brokenIdentities[].name", shown=shown + " --query 'brokenIdentities[].name'")
    fixes = n.run("move-subscription", "Shop Production", "--tenant", "Fabrikam", "--what-if", "--query", "fixCommands",
                  shown=shown + " --query fixCommands")
    n.fact(f"{lost} role assignment(s) deleted; no more tokens for: {', '.join(broken)}; {len(fixes)} fix commands, in order")
    n.say("The move itself, then the fix the rehearsal printed, command by command:")
    n.run("move-subscription", "Shop Production", "--tenant", "Fabrikam", "--yes")
    n.run("token", "shop-web", "--audience", "https://vault.azure.net", ok=False)
    new = old
    for line in fixes:
        args = shlex.split(line)[1:]
        result = n.run(*args, shown=line.removeprefix("msi "))
        if args[0] == "assign" and isinstance(result, dict) and result.get("principalId"):
            new = result["principalId"]
    n.fact(f"principal id changed: {old} -> {new} (shop-web's system-assigned identity, re-enabled in Fabrikam)")
    n.run("check-access", "shop-web", "--scope", "shop-kv", "--role", "Key Vault Secrets User")
    uai = UAI.replace("/resourcegroups/", "/resourceGroups/")
    n.run("token", "shop-web", "--audience", "https://vault.azure.net", "--query", "expires_in")
    n.run("token", "shop-jobs", "--audience", "https://vault.azure.net", "--msi-res-id", uai, "--query", "expires_in")
    n.fact("after the fix, both apps get tokens from Fabrikam again, with their access re-granted")
