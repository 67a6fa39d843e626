"""`msi demo`: narrated scenarios that run the real commands on a throwaway state.

Every step prints the command (copyable) and what came back; the user's own state file is never
touched. Scenarios: lifecycle, migration, shared-identity, federation.
"""

import contextlib
import io
import json
import shlex
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from msi_cli.cli.app import app


class Scenario(str, Enum):
    lifecycle = "lifecycle"
    migration = "migration"
    shared_identity = "shared-identity"
    federation = "federation"
    estate = "estate"


class Narrator:
    """Runs `msi` commands in-process against one throwaway state and tells what happened."""

    def __init__(self, state: Path) -> None:
        from rich.console import Console

        self.state = state
        # soft_wrap: never break a line (a command, an id) with a newline; the terminal wraps it
        # visually, so what is shown can be copied and pasted, even from a pipe or a log.
        self.console = Console(highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text), style="italic")

    def title(self, text: str) -> None:
        self.console.rule(text)

    def fact(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text("  → " + text), style="bold")

    def run(self, *args: str, ok: bool = True, shown: str | None = None) -> object:
        """Run one command; print it and its outcome; return its JSON result (or the error line)."""
        from rich.text import Text

        from msi_cli.cli import load

        load()
        shown = "$ msi " + (shown or " ".join(shlex.quote(a) for a in args))
        self.console.print(Text(shown), style="cyan")
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = app(args=["--state", str(self.state), *args, "-o", "json"], prog_name="msi", standalone_mode=False) or 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        if (code == 0) != ok:
            raise RuntimeError(f"demo step '{shown}' exited {code}: {err.getvalue().strip() or out.getvalue().strip()}")
        for line in err.getvalue().splitlines():
            self.console.print(Text("  " + line), style="red" if line.startswith("error") else "yellow")
        text = out.getvalue().strip()
        result = json.loads(text) if text else err.getvalue().strip()
        if code == 0 and text:
            self.console.print(Text("  " + summary(result)), style="green")
        return result


def _identity_block(r: dict) -> str:
    identity = r["identity"]
    return f"{r['name']}: identity {identity.get('type')}" + (f", principal {identity['principalId']}" if "principalId" in identity else "")


# How to say a result in one line, by the keys that tell its kind apart: the first match wins.
_SUMMARIES: list[tuple[tuple[str, ...], Callable[[dict], str]]] = [
    (("allowed",), lambda r: ("allowed: " if r["allowed"] else "denied: ") + r["reason"]),
    (("access_token",), lambda r: f"a token for {r['resource']}, expires_in {r['expires_in']} s"),
    (("valid",), lambda r: "valid" if r["valid"] else f"invalid: {r['reason']}"),
    (("previousId",), lambda r: f"moved to {r['id']}"),
    (("systemAssignedIdentity",), lambda r: f"system-assigned principal: {r['systemAssignedIdentity'] or 'none'}"),
    (("stillReferencedBy",), lambda r: f"deleted {r['deleted']}; still referenced by {len(r['stillReferencedBy'])} resource(s)"),
    (("userAssignedIdentities", "type"),  # az webapp identity assign
     lambda r: f"identity {r['type']}" + (f", principal {r['principalId']}" if r.get("principalId") else "")),
    (("signingKid",), lambda r: f"kid {r['signingKid']} signs now; published: {', '.join(r['publishedKids'])}"),
    (("deletedRoleAssignments",),
     lambda r: f"subscription now in tenant {r['tenantId']}; {len(r['deletedRoleAssignments'])} role assignment(s) deleted"),
    (("deleted",), lambda r: f"deleted {r['deleted']}"),
    (("kid", "kind"), lambda r: f"issuer {r['name']} ({r['kind']}), its own RS256 key {r['kid']}"),
    (("roleDefinitionName",), lambda r: f"{r['roleDefinitionName']} for {r['principalId']} at {r['scope']}"),
    (("principalId", "clientId"), lambda r: f"{r['name']}: principal {r['principalId']}"),
    (("identity",), _identity_block),
    (("tenantId", "displayName"), lambda r: f"tenant {r['displayName']}: {r['tenantId']}"),
    (("tenantId", "name"), lambda r: f"subscription {r['name']}: {r['id']}"),
    (("oid",), lambda r: f"oid {r['oid']}, tid {r.get('tid')}"),
    (("id", "name"), lambda r: f"{r['name']}: {r['id']}"),  # a resource with no identity block (a vault)
]


def summary(result: object) -> str:
    """One line about a command's result; never a token."""
    if isinstance(result, dict):
        for keys, say in _SUMMARIES:
            if all(key in result for key in keys):
                return say(result)
    if isinstance(result, list):
        if result and isinstance(result[0], dict) and "principalType" in result[0]:
            return "; ".join(
                f"{a['roleDefinitionName']} for {a['principalId']} ({a['principalType']}, principalName "
                + (repr(a['principalName']) if a['principalName'] else '"": orphaned') + ")"
                for a in result
            )
        return f"{len(result)} item(s)"
    if isinstance(result, str) and result.startswith("eyJ"):
        return "(an access token)"
    return str(result)


def _principal(result: dict) -> str:
    return result["identity"]["principalId"]


def _reenable(n: Narrator, resource: str, before: str, why: str = "") -> str:
    """Disable and re-enable a resource's system-assigned identity: a new principal."""
    n.run("unassign", resource, "--system-assigned")
    after = n.run("assign", resource)["principalId"]
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
    n.fact(f"principal {again} deleted with web1: {gone['deletedPrincipals']}")
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
    n.say("Contoso runs an app that reads a Key Vault secret with its system-assigned identity.")
    n.run("create-tenant", "Fabrikam")
    n.run("create-subscription", "fabrikam-prod", "--tenant", "Fabrikam")
    n.run("create-subscription", "contoso-prod")
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
    n.run("migrate", "kv1", "--subscription", "contoso-prod")
    n.run("migrate", "orders-app", "--subscription", "contoso-prod")
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
    n.say("A resource changes tenant only with its whole subscription. Moving contoso-prod to Fabrikam")
    n.say("deletes its role assignments, and the identity's principal stays behind in Contoso:")
    n.run("move-subscription", "contoso-prod", "--tenant", "Fabrikam", "--yes")
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


def _exchange(n: Narrator, subject: str) -> tuple[int, dict]:
    """A GitHub job's token traded at Entra's token endpoint, through the core (no server)."""
    from msi_cli.core import exchange, issuers
    from msi_cli.store.statefile import StateFile

    sf = StateFile(n.state)
    with sf.transaction() as ctx:
        ident = next(i for i in ctx.state.identities.values() if i.name == "deploy-id")
        assertion = issuers.mint(ctx.keys, issuers.find(ctx.state, "gh"), DEMO_BASE, ctx.now, subject, "api://AzureADTokenExchange")
        form = {"grant_type": "client_credentials", "client_id": ident.client_id, "scope": "https://management.azure.com/.default",
                "client_assertion_type": exchange.ASSERTION_TYPE, "client_assertion": assertion}
        n.console.print(f"$ curl -X POST {DEMO_BASE}/{ident.tenant_id}/oauth2/v2.0/token -d grant_type=client_credentials "
                        f"-d client_id={ident.client_id} -d scope=https://management.azure.com/.default -d client_assertion=<{subject}>",
                        style="cyan", markup=False)
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


def estate(n: Narrator) -> None:
    from msi_cli.cli.demo_estate import estate as scenario  # the scenario lives in its own module

    scenario(n)


SCENARIOS = {Scenario.lifecycle: lifecycle, Scenario.migration: migration, Scenario.shared_identity: shared_identity,
             Scenario.federation: federation, Scenario.estate: estate}


@app.command("demo", epilog="Example: msi demo\n\nExample: msi demo migration")
def demo(
    scenario: Annotated[Optional[Scenario], typer.Argument(help="lifecycle, migration, shared-identity, federation or estate (default: all).", case_sensitive=False)] = None,
) -> None:
    """Narrated walkthroughs on a throwaway state (your state file is never touched)."""
    chosen = [scenario] if scenario else list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="msi-demo-") as tmp:
        for n, name in enumerate(chosen):
            narrator = Narrator(Path(tmp) / f"demo{n}" / "state.toml")
            SCENARIOS[name](narrator)
        narrator.console.rule("done")
