"""`msi demo`: narrated scenarios that run the real commands on a throwaway state.

Every step prints the command (copyable) and what came back; the user's own state file is never
touched. Scenarios are registered in SCENARIOS (one line each); `msi demo --list` names them.
"""

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.narrator import Narrator, command_lines


def _principal(result: dict[str, Any]) -> str:
    principal: str = result["identity"]["principalId"]
    return principal


def _reenable(n: Narrator, resource: str, before: str, why: str = "") -> str:
    """Disable and re-enable a resource's system-assigned identity: a new principal."""
    n.run("unassign", resource, "--system-assigned")
    after: str = n.run("assign", resource)["principalId"]
    n.fact(f"principal id changed: {before} -> {after}{why}")
    return after


def lifecycle(n: Narrator) -> None:
    n.title("lifecycle: system-assigned vs user-assigned identities")
    n.say("A web app gets a system-assigned identity: it lives and dies with the app.")
    web = n.run("create-resource", "web1", "--type", "webapp", "--system-assigned")
    first = _principal(web)
    n.fact(f"web1's identity: principal {first}")
    n.say("Disabling it deletes the identity and its service principal; enabling it again makes a new one.")
    again = _reenable(n, "web1", first, " (the old principal is gone for good)")
    n.say("A user-assigned identity stands alone, and two VMs share it.")
    shared = n.run("create-identity", "shared-id", "-g", "workers")
    n.fact(f"shared-id: principal {shared['principalId']}, client {shared['clientId']}")
    for vm in ("vm1", "vm2"):
        n.run("create-resource", vm, "--type", "vm", "-g", "workers", "--user-assigned", "shared-id")
    n.say("Deleting a VM leaves the shared identity alone...")
    n.run("delete", "vm1", "-g", "workers", "--yes")
    n.fact(f"shared-id still exists: principal {n.run('show', 'shared-id')['principalId']}")
    n.say("...deleting the web app deletes its system-assigned identity with it...")
    gone = n.run("delete", "web1", "--yes")
    n.fact(f"principal {again} deleted with web1: {', '.join(gone['deletedPrincipals'])}")
    n.say("...but deleting the user-assigned identity does NOT remove it from the resources it is assigned to.")
    n.run("delete", "shared-id", "-g", "workers", "--yes")
    vm2 = n.run("show", "vm2", "-g", "workers")
    rid = next(iter(vm2["identity"]["userAssignedIdentities"]))
    n.fact(f"vm2 still lists {rid.rsplit('/', 1)[-1]} (principal {shared['principalId']}): a dangling entry, and no token")
    n.run("token", "vm2", "-g", "workers", "--audience", "https://vault.azure.net", ok=False)
    n.say("Re-creating an identity with the same name makes a new principal; the old entry does not pick it up.")
    again_id = n.run("create-identity", "shared-id", "-g", "workers")
    n.run("token", "vm2", "-g", "workers", "--audience", "https://vault.azure.net", ok=False)
    n.say("Remove the dangling entry by its full id (the name no longer resolves), then assign the new identity.")
    n.run("unassign", "vm2", "-g", "workers", "--user-assigned", rid)
    n.run("assign", "vm2", "-g", "workers", "--user-assigned", "shared-id")
    claims = n.run("token", "vm2", "-g", "workers", "--audience", "https://vault.azure.net", "--query", "client_id")
    n.fact(f"vm2 gets tokens again, as the new principal {again_id['principalId']} (client {claims})")


def migration(n: Narrator) -> None:
    n.title("migration: moves across subscriptions and tenants")
    n.say("An app in the default directory reads a Key Vault secret with its system-assigned identity;")
    n.say("a second directory, Fabrikam, has a subscription of its own.")
    n.run("create-tenant", "Fabrikam")
    n.run("create-subscription", "fabrikam-prod", "--tenant", "Fabrikam")
    n.run("create-subscription", "prod-2")
    n.run("create-resource", "kv1", "--type", "keyvault", "-g", "app-rg")
    web = n.run("create-resource", "orders-app", "--type", "webapp", "-g", "app-rg", "--system-assigned")
    old = _principal(web)
    n.fact(f"orders-app's principal: {old} in tenant {web['identity']['tenantId']}")
    n.run("grant", "orders-app", "--role", "Key Vault Secrets User", "--scope", "kv1")
    n.run("check-access", "orders-app", "--scope", "kv1", "--role", "Key Vault Secrets User")
    n.run("token", "orders-app", "--audience", "https://vault.azure.net", "--query", "expires_in")
    n.fact("allowed, and it gets a token for https://vault.azure.net")
    n.say("Azure does not move a resource to a subscription of another tenant:")
    n.run("migrate", "orders-app", "--subscription", "fabrikam-prod", ok=False)
    n.say("The app and its vault move to another subscription of the same tenant instead.")
    n.run("migrate", "kv1", "--subscription", "prod-2")
    n.run("migrate", "orders-app", "--subscription", "prod-2")
    n.say("App Service does not tell the identity about the app's new id: it stops working.")
    n.run("token", "orders-app", "--audience", "https://vault.azure.net", ok=False)
    n.run("check-access", "orders-app", "--scope", "kv1", "--role", "Key Vault Secrets User", ok=False)
    orphans = n.run("list", "role-assignments", "--principal", old)
    n.fact(f"the old assignment stays behind at the vault's old id: {orphans[0]['scope'] if orphans else 'none'}")
    n.say("The fix Azure documents: disable and re-enable the system-assigned identity.")
    _reenable(n, "orders-app", old)
    n.say("The new identity has no access yet...")
    n.run("check-access", "orders-app", "--scope", "kv1", "--role", "Key Vault Secrets User", ok=False)
    n.say("...until it is granted again, downstream.")
    n.run("grant", "orders-app", "--role", "Key Vault Secrets User", "--scope", "kv1")
    n.run("check-access", "orders-app", "--scope", "kv1", "--role", "Key Vault Secrets User")
    token = n.run("token", "orders-app", "--audience", "https://vault.azure.net", "--query", "access_token")
    claims = n.run(
        "verify", str(token), "--audience", "https://vault.azure.net", "--query", "claims.{oid: oid, tid: tid}",
        shown="verify \"$(msi token orders-app --audience https://vault.azure.net -o tsv)\" --audience https://vault.azure.net",
    )
    n.fact(f"works again: the token's oid is {claims['oid']}, tid {claims['tid']}")
    n.say("A resource changes tenant only with its whole subscription. Moving prod-2 to Fabrikam")
    n.say("deletes its role assignments, and the identity's principal stays behind in the default directory:")
    n.run("move-subscription", "prod-2", "--tenant", "Fabrikam", "--yes")
    n.run("token", "orders-app", "--audience", "https://vault.azure.net", ok=False)
    n.fact("in Fabrikam, orders-app needs its identity disabled and re-enabled, and its access granted again, as above")


def shared_identity(n: Narrator) -> None:
    n.title("shared-identity: recycled VMs keep access with a user-assigned identity")
    n.run("create-resource", "reports", "--type", "storage", "-g", "data")
    ident = n.run("create-identity", "batch-id", "-g", "workers")
    n.run("grant", "batch-id", "--role", "Storage Blob Data Reader", "--scope", "reports")
    n.run("create-resource", "batch-vm1", "--type", "vm", "-g", "workers", "--user-assigned", "batch-id")
    n.run("check-access", "batch-vm1", "--scope", "reports", "--role", "Storage Blob Data Reader")
    n.say("The VM is recycled: deleted and replaced by a new one with the same identity attached.")
    n.run("delete", "batch-vm1", "-g", "workers", "--yes")
    n.run("create-resource", "batch-vm2", "--type", "vm", "-g", "workers", "--user-assigned", "batch-id")
    n.run("check-access", "batch-vm2", "--scope", "reports", "--role", "Storage Blob Data Reader")
    n.fact(f"the new VM acts as the same principal {ident['principalId']}: access kept, nothing re-granted")
    n.say("The same with a system-assigned identity:")
    first = _principal(n.run("create-resource", "sys-vm1", "--type", "vm", "-g", "workers", "--system-assigned"))
    n.run("grant", "sys-vm1", "--role", "Storage Blob Data Reader", "--scope", "reports")
    n.run("check-access", "sys-vm1", "--scope", "reports", "--role", "Storage Blob Data Reader")
    n.run("delete", "sys-vm1", "-g", "workers", "--yes")
    second = _principal(n.run("create-resource", "sys-vm2", "--type", "vm", "-g", "workers", "--system-assigned"))
    n.fact(f"principal id changed: {first} -> {second} (a new VM, a new identity)")
    n.run("check-access", "sys-vm2", "--scope", "reports", "--role", "Storage Blob Data Reader", ok=False)
    n.run("list", "role-assignments", "--scope", "reports")
    n.fact("the old grant is orphaned (az shows principalName \"\") and the new VM has no access")


DEMO_BASE = "https://127.0.0.1:8443"  # where `msi serve` would publish the issuer (the demo runs no server)


def _exchange(n: Narrator, subject: str) -> tuple[int, dict[str, Any]]:
    """A GitHub job's token traded at Entra's token endpoint, through the core (no server)."""
    from msi_cli.core import exchange, issuers
    from msi_cli.store.statefile import StateFile

    sf = StateFile(n.state)
    with sf.transaction() as ctx:
        ident = next(i for i in ctx.state.identities.values() if i.name == "deploy-id")
        assertion = issuers.mint(ctx.keys, issuers.find(ctx.state, "gh"), DEMO_BASE, ctx.now, subject, "api://AzureADTokenExchange")
        form = {"grant_type": "client_credentials", "client_id": ident.client_id, "scope": "https://management.azure.com/.default",
                "client_assertion_type": exchange.ASSERTION_TYPE, "client_assertion": assertion}
        n._show(command_lines([
            "-X", "POST", f"{DEMO_BASE}/{ident.tenant_id}/oauth2/v2.0/token", "-d", "grant_type=client_credentials",
            "-d", f"client_id={ident.client_id}", "-d", "scope=https://management.azure.com/.default",
            "-d", f"client_assertion=<{subject}>"], n.width, "curl"), "cyan")
        return exchange.exchange(ctx, ident.tenant_id, form, DEMO_BASE)


def federation(n: Narrator) -> None:
    n.title("federation: a GitHub Actions job gets the identity's token without a secret")
    n.say(f"msi plays GitHub's OIDC issuer; msi serve would publish it at {DEMO_BASE}/issuers/gh.")
    n.run("issuer", "create", "gh", "--kind", "github")
    n.run("create-identity", "deploy-id", "-g", "ci")
    n.say("The identity trusts the workflow runs of octo-org/app on main, and nothing else:")
    n.run("federation", "add", "deploy-id", "-g", "ci", "--name", "app-main", "--issuer", f"{DEMO_BASE}/issuers/gh",
          "--subject", "repo:octo-org/app:ref:refs/heads/main")
    status, body = _exchange(n, "repo:octo-org/app:ref:refs/heads/main")
    n.fact(f"{status}: a {body.get('token_type')} token for ARM, expires_in {body.get('expires_in')} s" if status == 200 else str(body))
    n.say("A job on another branch presents a different subject:")
    status, body = _exchange(n, "repo:octo-org/app:ref:refs/heads/feature")
    n.fact(f"{status} {body.get('error')}: {body.get('error_description', '').split(' Trace ID')[0]}")
    n.say("The fix: trust that branch too, with a second credential (the issuer/subject pair must be unique).")
    n.run("federation", "add", "deploy-id", "-g", "ci", "--name", "app-feature", "--issuer", f"{DEMO_BASE}/issuers/gh",
          "--subject", "repo:octo-org/app:ref:refs/heads/feature")
    status, body = _exchange(n, "repo:octo-org/app:ref:refs/heads/feature")
    n.fact(f"{status}: a {body.get('token_type')} token, expires_in {body.get('expires_in')} s" if status == 200 else str(body))
    n.run("federation", "list", "deploy-id", "-g", "ci")


# The scenarios, in the order `msi demo` runs them: name -> ("module:function", what it shows).
# Add one with one line; its function takes a Narrator.
SCENARIOS: dict[str, tuple[str, str]] = {
    "lifecycle": ("msi_cli.cli.demo:lifecycle", "system-assigned vs user-assigned identities, dangling entries"),
    "migration": ("msi_cli.cli.demo:migration", "moving an app across subscriptions and tenants, and fixing it"),
    "shared-identity": ("msi_cli.cli.demo:shared_identity", "recycled VMs keep access with a user-assigned identity"),
    "federation": ("msi_cli.cli.demo:federation", "a GitHub Actions job gets a token without a secret"),
    "estate": ("msi_cli.cli.demo_estate:estate", "import an estate from az JSON, rehearse its tenant move, fix it"),
}


def _scenario(name: str) -> Callable[[Narrator], None]:
    import importlib

    module, function = SCENARIOS[name][0].split(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def _check_scenario(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in SCENARIOS:
        raise typer.BadParameter(f"no scenario '{value}'; choose one of: {', '.join(SCENARIOS)} (msi demo --list)")
    return value


@app.command("demo", epilog="Example: msi demo\n\nExample: msi demo --list\n\nExample: msi demo migration --pace 0")
def demo(
    scenario: Annotated[
        Optional[str],
        typer.Argument(help="The scenario to run (default: all, in order); msi demo --list names them.", callback=_check_scenario),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="Name the scenarios and what each shows, then exit.")] = False,
    pace: Annotated[
        Optional[float],
        typer.Option("--pace", min=0, help="Seconds to pause before each command at a terminal (default 0.8; never when piped)."),
    ] = None,
) -> None:
    """Narrated walkthroughs on a throwaway state (your state file is never touched)."""
    import sys

    if list_:
        width = max(len(name) for name in SCENARIOS)
        sys.stdout.write("".join(f"{name.ljust(width)}  {about}\n" for name, (_, about) in SCENARIOS.items()))
        return
    pause = (0.8 if pace is None else pace) if sys.stdout.isatty() else 0.0
    chosen = [scenario] if scenario else list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="msi-demo-") as tmp:
        for n, name in enumerate(chosen):
            narrator = Narrator(Path(tmp) / f"demo{n}" / "state.toml", pause)
            _scenario(name)(narrator)
        narrator.console.rule("done")
