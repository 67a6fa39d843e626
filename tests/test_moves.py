"""Moves through the CLI: `migrate` (a resource to another subscription of its tenant; another
tenant is refused, as in Azure),
`move-subscription` (a subscription to another directory), the recoveries Azure documents, proved
end to end with tokens, and the activity log that records it all on the simulated clock."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest

from conftest import fails, msi_executable

VAULT = "https://vault.azure.net"
KV_USER = "Key Vault Secrets User"


# ---- helpers ---------------------------------------------------------------------------------------


def claims(cli, resource: str, *selector: str) -> dict:
    """Get a token as the resource's host would, and return its claims once `msi verify` accepts it."""
    token = cli.ok("token", resource, "--audience", VAULT, *selector, "-o", "tsv").stdout.strip()
    verdict = cli.json("verify", token, "--audience", VAULT)
    assert verdict["valid"] is True, verdict
    return verdict["claims"]


def no_token(cli, resource: str, *selector: str) -> str:
    return fails(cli("token", resource, "--audience", VAULT, *selector), 1)


def access(cli, resource: str, scope: str, role: str = KV_USER, *selector: str) -> dict:
    result = cli("check-access", resource, "--scope", scope, "--role", role, *selector, "-o", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == (0 if data["allowed"] else 1), result.stderr
    if not data["allowed"]:
        assert result.stderr.startswith("error: access denied: "), result.stderr
    return data


def migrate(cli, *args: str) -> tuple[dict, list[str]]:
    """Run `msi migrate -o json`; its result and its warning lines (stderr)."""
    result = cli("migrate", *args, "-o", "json")
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    warnings = result.stderr.splitlines()
    assert all(line.startswith("warning: ") for line in warnings), result.stderr
    return json.loads(result.stdout), warnings


def mirid(resource_id: str) -> str:
    return resource_id.replace("/resourceGroups/", "/resourcegroups/")


def tenant_id(cli, name: str) -> str:
    return [t for t in cli.json("list", "tenants") if t["displayName"] == name][0]["tenantId"]


def log_path(state: Path) -> Path:
    return state.parent / (state.name + ".d") / "activity.jsonl"


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.fixture
def tenants(cli):
    """The default tenant with a second subscription `sub2`, and tenant Fabrikam with `fab`."""
    default = cli.json("list", "subscriptions")[0]
    sub2 = cli.json("create-subscription", "sub2")
    fab_tenant = cli.json("create-tenant", "Fabrikam")
    fab = cli.json("create-subscription", "fab", "--tenant", "Fabrikam")
    return {"default": default, "sub2": sub2, "fab": fab, "home_tid": default["tenantId"], "fab_tid": fab_tenant["tenantId"]}


# ---- migrate: App Service / Functions --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["webapp", "functionapp", "vm"])
def test_migrate_to_a_subscription_of_another_tenant_is_refused(cli, tenants, isolated_state, kind):
    """Azure: "Moving resources across Microsoft Entra tenants isn't supported"; a resource changes
    tenant only with its whole subscription."""
    app = cli.json("create-resource", "orders", "--type", kind, "-g", "app-rg", "--system-assigned")
    before = isolated_state.read_bytes()
    line = fails(cli("migrate", "orders", "--subscription", "fab"), 1, "orders", "another tenant", "msi move-subscription")
    assert "fab" in line
    assert isolated_state.read_bytes() == before
    assert cli.json("show", "orders") == app
    assert claims(cli, "orders")["oid"] == app["identity"]["principalId"]
    help_text = cli.ok("migrate", "--help").stdout
    assert "may be in another tenant" not in help_text and "move-subscription" in help_text


@pytest.mark.parametrize("kind", ["webapp", "functionapp"])
def test_app_tenant_change_with_its_subscription_breaks_until_reenabled_then_regranted(cli, tenants, kind):
    cli.ok("create-resource", "kv-home", "--type", "keyvault", "-g", "app-rg")
    kv_fab = cli.json("create-resource", "kv-fab", "--type", "keyvault", "-g", "app-rg", "--subscription", "fab")["id"]
    app = cli.json("create-resource", "orders", "--type", kind, "-g", "app-rg", "--system-assigned", "--subscription", "sub2")
    old = app["identity"]["principalId"]
    cli.ok("grant", "orders", "--role", KV_USER, "--scope", "kv-home")
    assert access(cli, "orders", "kv-home")["allowed"]
    assert claims(cli, "orders")["oid"] == old

    # the only way the app changes tenant: its whole subscription moves
    moved = cli("move-subscription", "sub2", "--tenant", "Fabrikam", "--yes", "-o", "json")
    assert moved.exit_code == 0, moved.stderr
    [health] = json.loads(moved.stdout)["brokenIdentities"]
    assert health["kind"] == "SystemAssigned" and health["principalId"] == old and health["reason"]
    assert old in moved.stderr

    # the identity stops working: no token, no access, though the app still shows it
    assert cli.json("show", "orders")["identity"]["principalId"] == old
    line = no_token(cli, "orders")
    assert "AADSTS700016" in line and tenants["fab_tid"] in line
    verdict = access(cli, "orders", "kv-home")
    assert not verdict["allowed"] and "cannot get a token" in verdict["reason"]
    assert not access(cli, "orders", kv_fab)["allowed"]

    # recovery: disable and re-enable -> a new principal in Fabrikam, with no access yet
    cli.ok("unassign", "orders", "--system-assigned")
    new = cli.json("assign", "orders")["principalId"]
    assert new != old
    shown = cli.json("show", "orders")["identity"]
    assert shown["principalId"] == new and shown["tenantId"] == tenants["fab_tid"]
    got = claims(cli, "orders")
    assert got["oid"] == new and got["tid"] == tenants["fab_tid"]
    assert got["xms_mirid"] == mirid(app["id"])
    verdict = access(cli, "orders", kv_fab)
    assert not verdict["allowed"] and "no role assignment grants" in verdict["reason"] and new in verdict["reason"]
    # the vault left behind in the old tenant cannot grant a principal of another directory
    fails(cli("grant", "orders", "--role", KV_USER, "--scope", "kv-home"), 1, "PrincipalNotFound")
    cli.ok("grant", "orders", "--role", KV_USER, "--scope", kv_fab)
    verdict = access(cli, "orders", kv_fab)
    assert verdict["allowed"] and verdict["principalId"] == new


@pytest.mark.parametrize("kind", ["webapp", "functionapp"])
def test_app_same_tenant_migration_also_breaks_until_reenabled(cli, tenants, kind):
    kv = cli.json("create-resource", "kv1", "--type", "keyvault", "-g", "shared")["id"]
    app = cli.json("create-resource", "orders", "--type", kind, "--system-assigned")
    old = app["identity"]["principalId"]
    cli.ok("grant", "orders", "--role", KV_USER, "--scope", kv)
    assert claims(cli, "orders")["oid"] == old

    result, warnings = migrate(cli, "orders", "--subscription", "sub2", "-g", "moved")
    assert result["id"] == f"/subscriptions/{tenants['sub2']['id']}/resourceGroups/moved/providers/Microsoft.Web/sites/orders"
    assert [h["works"] for h in result["identities"]] == [False]
    assert warnings
    no_token(cli, "orders")
    verdict = access(cli, "orders", kv)
    assert not verdict["allowed"] and "cannot get a token" in verdict["reason"] and app["id"] in verdict["reason"]

    cli.ok("unassign", "orders", "--system-assigned")
    new = cli.json("assign", "orders")["principalId"]
    assert new != old
    got = claims(cli, "orders")
    assert got["oid"] == new and got["tid"] == tenants["home_tid"]
    verdict = access(cli, "orders", kv)
    assert not verdict["allowed"] and verdict["principalId"] == new
    cli.ok("grant", "orders", "--role", KV_USER, "--scope", kv)
    assert access(cli, "orders", kv)["allowed"]


# ---- migrate: VMs and other hosts --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vm", "containerapp"])
def test_same_tenant_move_keeps_a_vm_identity_working(cli, tenants, kind):
    kv = cli.json("create-resource", "kv1", "--type", "keyvault", "-g", "shared")["id"]
    uai = cli.json("create-identity", "uai1", "-g", "shared")
    host = cli.json("create-resource", "host1", "--type", kind, "--system-assigned", "--user-assigned", "uai1")
    pid = host["identity"]["principalId"]
    cli.ok("grant", "host1", "--role", KV_USER, "--scope", kv)
    cli.ok("grant", "uai1", "--role", KV_USER, "--scope", kv)
    assert claims(cli, "host1")["xms_mirid"] == mirid(host["id"])  # cached by the platform from now on

    result, warnings = migrate(cli, "host1", "--subscription", "sub2", "-g", "moved")
    assert warnings == []
    assert {(h["kind"], h["principalId"], h["works"]) for h in result["identities"]} == {
        ("SystemAssigned", pid, True), ("UserAssigned", uai["principalId"], True)
    }
    shown = cli.json("show", "host1")
    assert shown["id"] == result["id"] != host["id"]
    assert shown["identity"]["principalId"] == pid  # the same identity: its binding followed the move
    got = claims(cli, "host1")
    assert got["oid"] == pid and got["xms_mirid"] == mirid(result["id"])
    got = claims(cli, "host1", "--client-id", uai["clientId"])
    assert got["oid"] == uai["principalId"] and got["xms_az_rid"] == mirid(result["id"])
    assert access(cli, "host1", kv)["allowed"]
    assert access(cli, "host1", kv, KV_USER, "--msi-res-id", uai["id"])["allowed"]
    sp = [p for p in cli.json("list", "principals") if p["id"] == pid][0]
    assert result["id"] in sp["alternativeNames"] and host["id"] not in sp["alternativeNames"]


def test_tenant_change_with_its_subscription_breaks_a_vm_identity(cli, tenants):
    cli.ok("create-identity", "uai1")
    vm = cli.json("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "uai1", "--subscription", "sub2")
    pid = vm["identity"]["principalId"]
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", f"/subscriptions/{tenants['sub2']['id']}")
    assert claims(cli, "vm1")["oid"] == pid

    moved = cli("move-subscription", "sub2", "--tenant", "Fabrikam", "--yes", "-o", "json")
    assert moved.exit_code == 0, moved.stderr
    assert [h["principalId"] for h in json.loads(moved.stdout)["brokenIdentities"]] == [pid, cli.json("show", "uai1")["principalId"]]
    assert len(moved.stderr.splitlines()) == 2
    line = no_token(cli, "vm1")
    assert "AADSTS700016" in line and tenants["fab_tid"] in line
    verdict = access(cli, "vm1", f"/subscriptions/{tenants['sub2']['id']}", "Reader")
    assert not verdict["allowed"] and "cannot get a token" in verdict["reason"]

    # the system-assigned identity recovers by disable/enable; the user-assigned one cannot be re-attached
    cli.ok("unassign", "vm1", "--system-assigned")
    new = cli.json("assign", "vm1")["systemAssignedIdentity"]  # a VM keeps az vm identity assign's shape
    assert new != pid
    got = claims(cli, "vm1")
    assert got["oid"] == new and got["tid"] == tenants["fab_tid"]
    cli.ok("unassign", "vm1", "--user-assigned", "uai1")
    fails(cli("assign", "vm1", "--user-assigned", "uai1"), 1, "tenant")


def test_user_assigned_identity_from_another_tenant_stops_working_for_the_moved_resource(cli, tenants):
    cli.ok("create-subscription", "away")
    uai = cli.json("create-identity", "shared-id", "-g", "ids")
    cli.ok("create-resource", "kv1", "--type", "keyvault", "-g", "ids")
    cli.ok("grant", "shared-id", "--role", KV_USER, "--scope", "kv1")
    for vm, sub in (("vm-stays", "default"), ("vm-same", "default"), ("vm-away", "away")):
        cli.ok("create-resource", vm, "--type", "vm", "--user-assigned", "shared-id", "--subscription", sub)
        assert claims(cli, vm)["oid"] == uai["principalId"]

    same, _ = migrate(cli, "vm-same", "--subscription", "sub2")
    assert same["identities"][0]["works"] is True
    moved = cli("move-subscription", "away", "--tenant", "Fabrikam", "--yes", "-o", "json")
    [entry] = json.loads(moved.stdout)["brokenIdentities"]
    assert entry == {**entry, "kind": "UserAssigned", "principalId": uai["principalId"], "works": False}
    assert "shared-id" in entry["fix"]
    assert len(moved.stderr.splitlines()) == 1

    line = no_token(cli, "vm-away", "--client-id", uai["clientId"])
    assert "AADSTS700016" in line and uai["clientId"] in line
    verdict = access(cli, "vm-away", "kv1")
    assert not verdict["allowed"] and "cannot get a token" in verdict["reason"]
    # the same identity still works for the resources that stayed in its tenant
    for vm in ("vm-stays", "vm-same"):
        assert claims(cli, vm, "--client-id", uai["clientId"])["oid"] == uai["principalId"]
        assert access(cli, vm, "kv1")["allowed"]


def test_role_assignments_at_the_old_resource_id_are_orphaned(cli, tenants):
    kv = cli.json("create-resource", "kv1", "--type", "keyvault", "-g", "data")
    cli.ok("create-resource", "kv10", "--type", "keyvault", "-g", "data")  # kv1 is a prefix of its name
    vm = cli.json("create-resource", "vm1", "--type", "vm", "--system-assigned")
    uai = cli.json("create-identity", "uai1")
    at_kv = [
        cli.json("grant", "vm1", "--role", KV_USER, "--scope", "kv1"),
        cli.json("grant", "uai1", "--role", "Reader", "--scope", "kv1"),
    ]
    elsewhere = [
        cli.json("grant", "vm1", "--role", KV_USER, "--scope", "kv10"),
        cli.json("grant", "uai1", "--role", "Reader", "--scope", f"/subscriptions/{tenants['default']['id']}/resourceGroups/data"),
    ]
    result, _ = migrate(cli, "kv1", "--subscription", "sub2", "-g", "data")
    assert sorted(result["orphanedRoleAssignments"]) == sorted(a["id"].rsplit("/", 1)[1] for a in at_kv)
    # still listed, at the scope that no longer exists; nothing grants access at the new id
    listed = {a["id"]: a for a in cli.json("list", "role-assignments")}
    assert set(listed) == {a["id"] for a in at_kv + elsewhere}
    for a in at_kv:
        assert listed[a["id"]]["scope"] == kv["id"]
    assert all(a["scope"] != result["id"] for a in listed.values())
    assert cli.json("list", "role-assignments", "--scope", "kv1") == []
    verdict = access(cli, "vm1", "kv1")
    assert not verdict["allowed"] and "no role assignment grants" in verdict["reason"] and result["id"] in verdict["reason"]
    assert access(cli, "vm1", "kv10")["allowed"]
    # they can be cleaned up by their old scope, then re-created at the new one
    cli.ok("revoke", vm["identity"]["principalId"], "--role", KV_USER, "--scope", kv["id"])
    cli.ok("revoke", "uai1", "--role", "Reader", "--scope", kv["id"])
    cli.ok("grant", "vm1", "--role", KV_USER, "--scope", "kv1")
    assert access(cli, "vm1", "kv1")["allowed"]
    assert access(cli, "vm1", result["id"])["allowed"]
    assert uai["principalId"] not in {a["principalId"] for a in cli.json("list", "role-assignments", "--scope", "kv1")}


def test_a_user_assigned_identity_cannot_be_moved(cli, tenants, isolated_state):
    uai = cli.json("create-identity", "uai1", "-g", "ids")
    before = isolated_state.read_bytes()
    for ref in ("uai1", uai["id"]):
        for dest in (["--subscription", "sub2"], ["--subscription", "fab"], ["--subscription", "default", "-g", "other"]):
            line = fails(cli("migrate", ref, *dest), 1, "uai1", "cannot be moved")
            assert "user-assigned" in line.lower()
            assert "resource group, subscription or region" in line
    assert isolated_state.read_bytes() == before
    assert cli.json("show", "uai1") == uai


def test_migrate_moves_the_resource_when_an_identity_shares_its_name(cli, tenants):
    """Identities cannot be moved, so `migrate NAME` means the resource of that name."""
    uai = cli.json("create-identity", "app1", "-g", "ids")
    cli.ok("create-resource", "app1", "--type", "vm", "-o", "none")
    moved = cli.json("migrate", "app1", "--subscription", "default", "-g", "other")
    assert moved["id"].endswith("/resourceGroups/other/providers/Microsoft.Compute/virtualMachines/app1")
    assert cli.json("show", uai["id"]) == uai


def test_move_subscription_to_its_own_tenant_is_refused_before_any_question(cli, isolated_state):
    cli.ok("create-subscription", "prod", "-o", "none")
    before = isolated_state.read_bytes()
    fails(cli("move-subscription", "prod", "--tenant", "Default Directory"), 1, "already in tenant 'Default Directory'")
    assert isolated_state.read_bytes() == before


def test_migrate_refusals(cli, tenants, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("create-resource", "vm1", "--type", "vm", "--subscription", "sub2")
    before = isolated_state.read_bytes()
    fails(cli("migrate", "vm1", "--subscription", "default"), 2, "matches 2")  # ambiguous: a usage error
    vm1 = cli.json("list", "resources", "--subscription", "default")[0]["id"]
    fails(cli("migrate", vm1, "--subscription", "default"), 1, "already")
    fails(cli("migrate", vm1, "--subscription", "sub2"), 1, "already exists")
    fails(cli("migrate", vm1, "--subscription", "nosuch"), 3)
    fails(cli("migrate", "nosuch", "--subscription", "sub2"), 3)
    assert cli("migrate", vm1).exit_code == 2
    assert isolated_state.read_bytes() == before


# ---- move-subscription ------------------------------------------------------------------------------


@pytest.fixture
def estate(cli, tenants):
    """In the default subscription: a VM with a system-assigned identity and a user-assigned one, a
    web app, a vault, with role assignments at every level; in sub2 (which stays): a vault with
    assignments for principals of both subscriptions."""
    sub, sub2 = tenants["default"]["id"], tenants["sub2"]["id"]
    uai = cli.json("create-identity", "uai1", "-g", "ids")
    vm = cli.json("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "uai1")
    web = cli.json("create-resource", "web1", "--type", "webapp", "--system-assigned")
    cli.ok("create-resource", "kv1", "--type", "keyvault", "-g", "data")
    cli.ok("create-resource", "kv2", "--type", "keyvault", "-g", "data", "--subscription", "sub2")
    vm2 = cli.json("create-resource", "vm2", "--type", "vm", "--system-assigned", "--subscription", "sub2")
    kv2 = cli.json("list", "resources", "--subscription", "sub2", "--type", "keyvault")[0]["id"]
    inside = [
        cli.json("grant", "vm1", "--role", "Reader", "--scope", f"/subscriptions/{sub}"),
        cli.json("grant", "uai1", "--role", "Reader", "--scope", f"/subscriptions/{sub}/resourceGroups/data"),
        cli.json("grant", "vm1", "--role", KV_USER, "--scope", "kv1"),
        cli.json("grant", "uai1", "--role", KV_USER, "--scope", "kv1"),
        cli.json("grant", "web1", "--role", KV_USER, "--scope", "kv1"),
        cli.json("grant", vm2["identity"]["principalId"], "--role", "Reader", "--scope", "kv1"),
    ]
    outside = [
        cli.json("grant", "uai1", "--role", KV_USER, "--scope", kv2),
        cli.json("grant", "vm2", "--role", KV_USER, "--scope", kv2),
        cli.json("grant", "vm2", "--role", "Reader", "--scope", f"/subscriptions/{sub2}"),
    ]
    return {"sub": sub, "sub2": sub2, "uai": uai, "vm": vm, "web": web, "vm2": vm2, "kv2": kv2, "inside": inside, "outside": outside, **tenants}


def test_move_subscription_deletes_every_assignment_in_it_and_only_those(cli, estate):
    for res in ("vm1", "web1"):
        assert access(cli, res, "kv1")["allowed"]
    result = cli.json("move-subscription", "default", "--tenant", "Fabrikam", "--yes")
    assert result["subscriptionId"] == estate["sub"]
    assert result["previousTenantId"] == estate["home_tid"] and result["tenantId"] == estate["fab_tid"]
    assert sorted(result["deletedRoleAssignments"]) == sorted(a["id"].rsplit("/", 1)[1] for a in estate["inside"])
    assert sorted(a["id"] for a in cli.json("list", "role-assignments")) == sorted(a["id"] for a in estate["outside"])
    sub = [s for s in cli.json("list", "subscriptions") if s["id"] == estate["sub"]][0]
    assert sub["tenantId"] == estate["fab_tid"]
    # the subscription that stayed is untouched: its VM still works and keeps its access
    assert claims(cli, "vm2")["oid"] == estate["vm2"]["identity"]["principalId"]
    assert access(cli, "vm2", estate["kv2"])["allowed"]


def test_move_subscription_breaks_its_identities(cli, estate):
    result = cli("move-subscription", "default", "--tenant", estate["fab_tid"], "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    broken = {(b["resource"], b["kind"], b["principalId"]) for b in data["brokenIdentities"]}
    assert broken == {
        (estate["vm"]["id"], "SystemAssigned", estate["vm"]["identity"]["principalId"]),
        (estate["vm"]["id"], "UserAssigned", estate["uai"]["principalId"]),
        (estate["web"]["id"], "SystemAssigned", estate["web"]["identity"]["principalId"]),
    }
    assert all(not b["works"] and b["reason"] and b["fix"] for b in data["brokenIdentities"])
    assert data["userAssignedIdentitiesToRecreate"] == [estate["uai"]["id"]]
    assert len([line for line in result.stderr.splitlines() if line.startswith("warning: ")]) == 3
    for res in ("vm1", "web1"):
        assert "AADSTS700016" in no_token(cli, res)
    assert "AADSTS700016" in no_token(cli, "vm1", "--client-id", estate["uai"]["clientId"])
    # nor anywhere else: a user-assigned identity must be re-created after its subscription moves,
    # even for vm2, which stays in the identity principal's tenant (as Entra's exchange refuses it)
    cli.ok("assign", "vm2", "--user-assigned", estate["uai"]["id"])
    assert "was transferred" in no_token(cli, "vm2", "--client-id", estate["uai"]["clientId"])


def test_move_subscription_recovery_reenable_system_assigned(cli, estate):
    cli.ok("move-subscription", "default", "--tenant", "Fabrikam", "--yes")
    for res in ("vm1", "web1"):
        old = cli.json("show", res)["identity"]["principalId"]
        verdict = access(cli, res, "kv1")
        assert not verdict["allowed"] and "cannot get a token" in verdict["reason"]
        cli.ok("unassign", res, "--system-assigned")
        assigned = cli.json("assign", res)
        new = assigned.get("systemAssignedIdentity") or assigned.get("principalId")  # az vm / az webapp shapes
        assert new != old
        assert cli.json("show", res)["identity"]["tenantId"] == estate["fab_tid"]
        got = claims(cli, res)
        assert got["oid"] == new and got["tid"] == estate["fab_tid"]
        verdict = access(cli, res, "kv1")
        assert not verdict["allowed"] and "no role assignment grants" in verdict["reason"]
        cli.ok("grant", res, "--role", KV_USER, "--scope", "kv1")
        assert access(cli, res, "kv1")["allowed"]


def test_move_subscription_recovery_recreate_user_assigned(cli, estate):
    old = estate["uai"]
    cli.ok("move-subscription", "default", "--tenant", "Fabrikam", "--yes")
    sel = ("--client-id", old["clientId"])
    assert not access(cli, "vm1", "kv1", KV_USER, *sel)["allowed"]
    # re-attaching the old identity does not help: it must be deleted and re-created
    cli.ok("delete", "uai1", "-g", "ids", "--yes")
    # the VM keeps a dangling entry for it (Azure does not remove references on delete)
    entries = cli.json("show", "vm1")["identity"]["userAssignedIdentities"]
    assert entries[old["id"]] == {"principalId": old["principalId"], "clientId": old["clientId"]}
    new = cli.json("create-identity", "uai1", "-g", "ids")
    assert new["id"] == old["id"]
    assert new["principalId"] != old["principalId"] and new["clientId"] != old["clientId"]
    assert new["tenantId"] == estate["fab_tid"]
    # the dangling entry does not pick up the new identity: remove it, then assign again
    assert cli.json("show", "vm1")["identity"]["userAssignedIdentities"][old["id"]]["principalId"] == old["principalId"]
    fails(cli("assign", "vm1", "--user-assigned", "uai1"), 1, "deleted identity", "msi unassign vm1 --user-assigned")
    cli.ok("unassign", "vm1", "--user-assigned", old["id"])
    cli.ok("assign", "vm1", "--user-assigned", "uai1")
    got = claims(cli, "vm1", "--client-id", new["clientId"])
    assert got["oid"] == new["principalId"] and got["tid"] == estate["fab_tid"]
    assert got["xms_mirid"] == mirid(new["id"]) and got["xms_az_rid"] == mirid(estate["vm"]["id"])
    new_sel = ("--client-id", new["clientId"])
    verdict = access(cli, "vm1", "kv1", KV_USER, *new_sel)
    assert not verdict["allowed"] and verdict["principalId"] == new["principalId"]
    cli.ok("grant", "uai1", "--role", KV_USER, "--scope", "kv1")
    assert access(cli, "vm1", "kv1", KV_USER, *new_sel)["allowed"]
    verdict = access(cli, "vm1", "kv1", KV_USER, *sel)
    assert not verdict["allowed"] and "no identity to act as" in verdict["reason"]
    # the old principal's assignment outside the moved subscription is now orphaned: az keeps its
    # principalType and shows an empty principalName
    kv2 = [a for a in cli.json("list", "role-assignments", "--scope", estate["kv2"]) if a["principalId"] == old["principalId"]]
    assert [(a["principalType"], a["principalName"]) for a in kv2] == [("ServicePrincipal", "")]


def test_move_subscription_refusals(cli, tenants):
    fails(cli("move-subscription", "default", "--tenant", "Default Directory", "--yes"), 1, "already")
    fails(cli("move-subscription", "nosuch", "--tenant", "Fabrikam", "--yes"), 3)
    fails(cli("move-subscription", "default", "--tenant", "nosuch", "--yes"), 3)


def test_move_subscription_without_yes_and_no_terminal_refuses(cli, estate, isolated_state, msi_proc):
    before = isolated_state.read_bytes()
    line = fails(cli("move-subscription", "default", "--tenant", "Fabrikam"), 2, "refused", "--yes")
    assert "default" in line and "Fabrikam" in line
    done = msi_proc("move-subscription", "default", "--tenant", "Fabrikam", input="y\n")
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.startswith("error: ") and "--yes" in done.stderr
    assert isolated_state.read_bytes() == before
    assert len(cli.json("list", "role-assignments")) == len(estate["inside"]) + len(estate["outside"])


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_move_subscription_asks_on_a_terminal(cli, estate, isolated_state):
    def on_terminal(answer: bytes) -> subprocess.CompletedProcess:
        main, child = os.openpty()
        try:
            os.write(main, answer)  # typed ahead: waits in the terminal's input queue
            return subprocess.run(
                [*msi_executable(), "move-subscription", "default", "--tenant", "Fabrikam", "-o", "json"],
                stdin=child, capture_output=True, text=True, env=dict(os.environ), timeout=60,
            )
        finally:
            os.close(child)
            os.close(main)

    before = isolated_state.read_bytes()
    declined = on_terminal(b"n\n")
    assert "Move subscription 'default' to tenant 'Fabrikam'" in declined.stderr
    assert declined.returncode == 1, declined.stderr
    assert declined.stdout == "" and "Traceback" not in declined.stderr
    assert isolated_state.read_bytes() == before

    accepted = on_terminal(b"y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["tenantId"] == estate["fab_tid"]
    assert [s["tenantId"] for s in cli.json("list", "subscriptions") if s["id"] == estate["sub"]] == [estate["fab_tid"]]


# ---- the activity log --------------------------------------------------------------------------------


def test_log_records_every_change_with_simulated_time(cli, isolated_state):
    assert cli.json("log") == []
    cli.ok("create-subscription", "sub2")
    cli.ok("create-tenant", "Fabrikam")
    cli.ok("create-subscription", "fab", "--tenant", "Fabrikam")
    cli.ok("create-resource", "kv1", "--type", "keyvault")
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    count = len(cli.json("log"))
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", "kv1")
    cli.ok("revoke", "vm1", "--role", "Reader", "--scope", "kv1")
    cli.ok("grant", "vm1", "--role", KV_USER, "--scope", "kv1")
    # refused or read-only commands change nothing and log nothing
    cli("grant", "vm1", "--role", KV_USER, "--scope", "kv1")
    cli("migrate", "nosuch", "--subscription", "fab")
    cli("check-access", "vm1", "--scope", "kv1", "--role", "Owner")
    cli.ok("list", "role-assignments")
    cli.ok("show", "vm1")
    entries = cli.json("log")
    assert [e["operation"] for e in entries[count:]] == ["Create role assignment", "Delete role assignment", "Create role assignment"]
    assert all("Reader" in e["detail"] for e in entries[count:count + 2]) and KV_USER in entries[-1]["detail"]

    real = datetime.now(UTC)
    for e in entries:
        assert set(e) == {"time", "operation", "target", "outcome", "detail"}
        assert e["outcome"] == "Succeeded"
        assert abs(parse_time(e["time"]) - real) < timedelta(minutes=5)

    cli.ok("clock", "advance", "30d")
    cli.ok("migrate", "vm1", "--subscription", "sub2")
    cli.ok("clock", "advance", "2h")
    cli.ok("move-subscription", "fab", "--tenant", "Default Directory", "--yes")
    now = parse_time(cli.json("clock", "show")["now"])
    tail = cli.json("log", "--last", "5")
    # the move into subscription 'fab' creates the resource group there first
    assert [e["operation"] for e in tail] == ["Set clock", "Create resource group", "Move resource", "Set clock", "Move subscription"]
    assert tail[1]["target"] == tail[2]["detail"].removeprefix("to ").split("/providers/")[0]
    del tail[1]
    moved, subbed = parse_time(tail[1]["time"]), parse_time(tail[3]["time"])
    assert abs(moved - (real + timedelta(days=30))) < timedelta(minutes=5)
    assert abs(subbed - now) < timedelta(minutes=1)
    assert timedelta(hours=2) <= subbed - moved < timedelta(hours=2, minutes=5)
    assert "vm1" in tail[1]["target"] and "fab" in tail[3]["target"]
    table = cli.ok("log", "-n", "1").stdout
    assert "Move subscription" in table and tail[3]["time"] in table
    assert "Move resource" not in table
    assert cli.json("log", "-n", "2") == tail[2:]
    assert cli("log", "--last", "0").exit_code == 2
    # the log lives beside the state, not in it
    assert "Move subscription" not in isolated_state.read_text()
    lines = log_path(isolated_state).read_text().splitlines()
    assert [json.loads(line) for line in lines] == cli.json("log")


def test_a_large_log_grows_and_stays_correct(cli, isolated_state):
    cli.ok("create-resource", "kv1", "--type", "keyvault")
    path = log_path(isolated_state)
    start = path.read_bytes()
    filler = [
        {"time": f"2020-01-{1 + i % 28:02d}T00:00:{i % 60:02d}Z", "operation": "Filler", "target": f"t{i}",
         "outcome": "Succeeded", "detail": ("é" * (i % 7)) + "x" * (i % 300)}
        for i in range(15_000)
    ]
    with open(path, "ab") as fh:
        fh.write("".join(json.dumps(e) + "\n" for e in filler).encode("utf-8"))
    size = path.stat().st_size
    assert size > 2_000_000  # many of the 64 KiB blocks `--last` reads backwards

    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    assert path.stat().st_size > size
    assert path.read_bytes().startswith(start)
    everything = cli.json("log")
    assert len(everything) == len(start.splitlines()) + 15_000 + 2
    assert everything[len(start.splitlines()):-2] == filler
    assert [e["operation"] for e in everything[-2:]] == ["Create resource", "Enable system-assigned identity"]
    for n in (1, 2, 3, 977, 5000, len(everything), len(everything) + 10):
        assert cli.json("log", "--last", str(n)) == everything[-n:], n

    # commands neither read nor parse the log; a damaged old line is skipped by a full `msi log`,
    # with a warning naming it, and every good entry is still shown
    with open(path, "r+b") as fh:
        fh.write(b"not json!")
    cli.ok("create-resource", "st1", "--type", "storage")
    assert cli.json("log", "--last", "1")[0]["target"].endswith("/st1")
    assert cli.json("log", "--last", "5000")[:-1] == everything[-4999:]
    result = cli("log", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("warning: ") and "activity.jsonl: line 1 is not a log entry" in result.stderr
    shown = json.loads(result.stdout)
    assert shown[: len(everything) - 1] == everything[1:]
    assert shown[-1]["target"].endswith("/st1")


def test_a_broken_identitys_fix_names_its_resource_by_id(cli):
    """Two web apps called web1 in two groups: each one's fix works as printed (a bare name would
    match both and be refused)."""
    import shlex

    cli("create-tenant", "Fabrikam")
    for group in ("rg1", "rg2"):
        assert cli("create-resource", "web1", "--type", "webapp", "-g", group, "--system-assigned").exit_code == 0
    result = cli("move-subscription", "default", "--tenant", "Fabrikam", "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    fixes = [b["fix"] for b in json.loads(result.stdout)["brokenIdentities"]]
    assert len(fixes) == 2
    for fix in fixes:
        for command in fix.split(" && "):
            words = shlex.split(command)
            assert words[0] == "msi"
            done = cli(*words[1:])
            assert done.exit_code == 0, done.stderr
    for group in ("rg1", "rg2"):
        token = cli("token", "web1", "-g", group, "--audience", "https://vault.azure.net", "-o", "json")
        assert token.exit_code == 0, token.stderr


def test_migrate_moves_into_its_own_groups_name_whatever_msi_resource_group_says(cli, monkeypatch):
    """MSI_RESOURCE_GROUP is what scripts set to find things by; a migrate's destination group has
    its own variable, so a move never lands in the group a script looks things up in."""
    cli.ok("create-subscription", "other")
    cli.ok("create-resource", "vmx", "--type", "vm", "-g", "rg1")
    monkeypatch.setenv("MSI_RESOURCE_GROUP", "zzz")
    moved = cli.json("migrate", "vmx", "--subscription", "other")
    assert moved["id"].split("/")[4] == "rg1"
    monkeypatch.delenv("MSI_RESOURCE_GROUP")
    monkeypatch.setenv("MSI_DESTINATION_GROUP", "rg9")
    back = cli.json("migrate", "vmx", "--subscription", "default")
    assert back["id"].split("/")[4] == "rg9"
