"""`--what-if` on msi move-subscription and msi migrate: the move rehearsed on a copy; what it
reports is what the real move then does, and its fix commands repair the estate."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from conftest import REPO

EXAMPLE = REPO / "examples" / "estate.toml"
VAULT = "https://vault.azure.net"


def _run_fixes(cli, commands: list[str]) -> None:
    for line in commands:
        args = shlex.split(line)
        assert args[0] == "msi"
        cli.ok(*args[1:])


def test_move_subscription_what_if_changes_nothing_and_equals_the_real_move(cli, isolated_state: Path) -> None:
    cli.ok("apply", str(EXAMPLE))
    before = isolated_state.read_bytes()
    rehearsal = cli.json("move-subscription", "contoso-prod", "--tenant", "Fabrikam", "--what-if")
    assert isolated_state.read_bytes() == before
    table = cli.ok("move-subscription", "contoso-prod", "--tenant", "Fabrikam", "--what-if").stdout
    assert "Fix, in order" in table and "msi create-identity deploy-id" in table
    assert {a["roleDefinitionName"] for a in rehearsal["deletedRoleAssignments"]} == {"Key Vault Secrets User", "Contributor"}
    assert {b["name"] for b in rehearsal["brokenIdentities"]} == {"orders-app", "deploy-id"}
    app_user = next(b for b in rehearsal["brokenIdentities"] if b["name"] == "orders-app")
    assert app_user["usedBy"] == [cli.json("show", "orders-app")["id"]]
    assert [i["name"] for i in rehearsal["userAssignedIdentitiesToRecreate"]] == ["deploy-id"]
    assert [c["name"] for c in rehearsal["brokenFederatedCredentials"]] == ["app-main"]
    real = cli.json("move-subscription", "contoso-prod", "--tenant", "Fabrikam", "--yes")
    assert real == rehearsal["result"]
    assert sorted(real["deletedRoleAssignments"]) == sorted(a["name"] for a in rehearsal["deletedRoleAssignments"])
    assert cli("token", "orders-app", "--audience", VAULT).exit_code == 1
    # the fix commands, run in order, repair it: tokens again, and the access re-granted
    _run_fixes(cli, rehearsal["fixCommands"])
    assert cli.json("token", "orders-app", "--audience", VAULT)["access_token"]
    assert cli.json("token", "batch-vm", "--audience", VAULT)["access_token"]
    assert cli.json("check-access", "orders-app", "--scope", "orders-kv", "--role", "Key Vault Secrets User")["allowed"] is True
    assert [f["name"] for f in cli.json("federation", "list", "deploy-id")] == ["app-main"]
    after = cli.json("move-subscription", "contoso-prod", "--tenant", "Default Directory", "--what-if")
    assert len(after["brokenIdentities"]) == 2  # and moving back would break the new ones again


def test_migrate_what_if_reports_orphans_and_the_app_service_identity(cli, isolated_state: Path) -> None:
    cli.ok("create-subscription", "other")
    cli.ok("create-resource", "kv1", "--type", "keyvault", "-g", "app")
    cli.ok("create-resource", "web1", "--type", "webapp", "-g", "app", "--system-assigned")
    cli.ok("grant", "web1", "--role", "Key Vault Secrets User", "--scope", "kv1")
    cli.ok("grant", "web1", "--role", "Reader", "--scope", "web1")
    before = isolated_state.read_bytes()
    rehearsal = cli.json("migrate", "web1", "--subscription", "other", "--what-if")
    assert isolated_state.read_bytes() == before
    assert [a["roleDefinitionName"] for a in rehearsal["orphanedRoleAssignments"]] == ["Reader"]
    assert [b["kind"] for b in rehearsal["brokenIdentities"]] == ["SystemAssigned"]
    assert rehearsal["deletedRoleAssignments"] == [] and rehearsal["userAssignedIdentitiesToRecreate"] == []
    real = cli.json("migrate", "web1", "--subscription", "other")
    assert real == rehearsal["result"]
    _run_fixes(cli, rehearsal["fixCommands"])
    assert cli.json("check-access", "web1", "--scope", "kv1", "--role", "Key Vault Secrets User")["allowed"] is True
    assert cli.json("check-access", "web1", "--scope", "web1", "--role", "Reader")["allowed"] is True
    scopes = {a["scope"] for a in cli.json("list", "role-assignments") if a["roleDefinitionName"] == "Reader"}
    assert scopes == {real["id"]}


def test_a_refused_move_is_refused_by_its_rehearsal_too(cli, isolated_state: Path) -> None:
    cli.ok("create-tenant", "Fabrikam")
    cli.ok("create-subscription", "fab", "--tenant", "Fabrikam")
    cli.ok("create-resource", "web1", "--type", "webapp")
    real = cli("migrate", "web1", "--subscription", "fab")
    rehearsal = cli("migrate", "web1", "--subscription", "fab", "--what-if")
    assert rehearsal.exit_code == real.exit_code == 1
    assert rehearsal.stderr == real.stderr
    json.loads(cli.ok("move-subscription", "default", "--tenant", "Fabrikam", "--what-if", "-o", "json").stdout)


def test_an_identity_shared_with_an_app_of_another_subscription_is_replaced_for_it(cli) -> None:
    """A user-assigned identity of the moved subscription also attached to a VM that stays in the
    old tenant: it breaks there too (a user-assigned identity must be re-created after its
    subscription moves, azure-behaviour.md), and the fixes give that VM an identity of its own
    tenant (one of another tenant cannot be attached) before the old identity is deleted."""
    cli.ok("create-tenant", "T2", "-o", "none")
    cli.ok("create-subscription", "sub2", "-o", "none")
    uid = cli.json("create-identity", "uid", "-g", "rg", "--subscription", "sub2")["id"]
    cli.ok("create-resource", "vmA", "--type", "vm", "-g", "rg", "--subscription", "sub2", "--user-assigned", "uid", "-o", "none")
    vm_b = cli.json("create-resource", "vmB", "--type", "vm", "-g", "rgb", "--user-assigned", uid)["id"]
    cli.ok("create-resource", "kvb", "--type", "keyvault", "-g", "rgb", "-o", "none")
    cli.ok("grant", uid, "--role", "Key Vault Secrets User", "--scope", "kvb", "-o", "none")
    rehearsal = cli.json("move-subscription", "sub2", "--tenant", "T2", "--what-if")
    broken = next(b for b in rehearsal["brokenIdentities"] if b["name"] == "uid")
    assert sorted(broken["usedBy"]) == sorted([cli.json("show", "vmA")["id"], vm_b])
    assert [u["usedBy"] for u in rehearsal["userAssignedIdentitiesToRecreate"]] == [[cli.json("show", "vmA")["id"], vm_b]]
    real = cli.json("move-subscription", "sub2", "--tenant", "T2", "--yes")
    assert real == rehearsal["result"]
    assert cli("token", "vmB", "--audience", VAULT).exit_code == 1  # as the rehearsal said
    assert cli("token", "vmA", "--audience", VAULT).exit_code == 1
    _run_fixes(cli, rehearsal["fixCommands"])
    assert cli.json("token", "vmA", "--audience", VAULT)["access_token"]
    assert cli.json("token", "vmB", "--audience", VAULT)["access_token"]
    mine = cli.json("show", "vmB")["identity"]["userAssignedIdentities"]
    assert [k.rsplit("/", 1)[-1] for k in mine] == ["uid"] and uid not in mine  # its own uid, in rgb
    assert cli.json("check-access", "vmB", "--scope", "kvb", "--role", "Key Vault Secrets User")["allowed"] is True


CROSS = """format = "msi-estate"
[[tenants]]
name = "Fabrikam"
[[subscriptions]]
name = "s1"
[[subscriptions]]
name = "s2"
[[identities]]
name = "xid"
subscription = "s1"
resource_group = "rg-a"
[[identities]]
name = "xid"
subscription = "s1"
resource_group = "rg-b"
[[identities]]
name = "{long}"
subscription = "s1"
resource_group = "rg-a"
[[identities]]
name = "s2id"
subscription = "s2"
resource_group = "rg5"
[[identities]]
name = "{long}"
subscription = "s2"
resource_group = "app-rg2"
[[resources]]
name = "app2"
type = "vm"
subscription = "s2"
resource_group = "app-rg2"
user_assigned = ["s1/rg-a/xid", "s1/rg-b/xid", "s1/rg-a/{long}"]
[[resources]]
name = "app6"
type = "webapp"
subscription = "s1"
resource_group = "rg1"
user_assigned = ["s2/rg5/s2id"]
[[resources]]
name = "kv1"
type = "keyvault"
subscription = "s1"
resource_group = "rg1"
[[resources]]
name = "kv2"
type = "keyvault"
subscription = "s2"
resource_group = "app-rg2"
[[role_assignments]]
role = "Reader"
scope = "/subscriptions/s2"
identity = "s1/rg-a/xid"
[[role_assignments]]
role = "Contributor"
scope = "/subscriptions/s2/resourceGroups/app-rg2"
identity = "s1/rg-b/xid"
[[role_assignments]]
role = "Key Vault Secrets User"
scope = "/subscriptions/s2/resourceGroups/app-rg2/providers/Microsoft.KeyVault/vaults/kv2"
identity = "s1/rg-a/xid"
[[role_assignments]]
role = "Key Vault Secrets User"
scope = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"
identity = "s2/rg5/s2id"
"""


def test_the_fixes_hold_for_identities_shared_every_way_across_the_tenants(cli, tmp_path: Path) -> None:
    """Two identities of one name shared with one app of the other tenant (two replacements: xid and
    xid-2); a 128-character name taken in the app's group (its replacement's name is cut to fit); an
    app that moves away from its identity's tenant (s2id); an access at a vault deleted before the
    move (not granted again). Every fix command succeeds, and every app then gets a token with each
    of its identities and keeps its access."""
    estate = tmp_path / "cross.toml"
    estate.write_text(CROSS.format(long="L" * 128))
    cli.ok("apply", str(estate), "-o", "none")
    cli.ok("create-resource", "kv3", "--type", "keyvault", "-g", "app-rg2", "--subscription", "s2", "-o", "none")
    cli.ok("grant", cli.json("show", "xid", "-g", "rg-a")["id"], "--role", "Reader", "--scope", "kv3", "-o", "none")
    cli.ok("delete", "kv3", "--yes", "-o", "none")  # that access is orphaned now
    rehearsal = cli.json("move-subscription", "s1", "--tenant", "Fabrikam", "--what-if")
    assert [b["usedBy"] for b in rehearsal["brokenIdentities"] if b["name"] == "s2id"] == [[cli.json("show", "app6")["id"]]]
    assert not any("kv3" in line for line in rehearsal["fixCommands"])
    cli.ok("move-subscription", "s1", "--tenant", "Fabrikam", "--yes", "-o", "none")
    _run_fixes(cli, rehearsal["fixCommands"])
    held = {app: cli.json("show", app)["identity"]["userAssignedIdentities"] for app in ("app2", "app6")}
    for app, uids in held.items():
        for uid in uids:
            assert cli.json("token", app, "--audience", VAULT, "--msi-res-id", uid)["access_token"], (app, uid)
    by_name = {k.rsplit("/", 1)[-1]: v["principalId"] for k, v in held["app2"].items()}
    assert sorted(by_name) == ["L" * 126 + "-2", "xid", "xid-2"]

    def roles_of(principal: str) -> set[tuple[str, str]]:
        return {(a["roleDefinitionName"], a["scope"].rsplit("/", 1)[-1]) for a in cli.json("list", "role-assignments", "--principal", principal)}

    s2 = next(s["id"] for s in cli.json("list", "subscriptions") if s["name"] == "s2")
    assert roles_of(by_name["xid"]) == {("Reader", s2), ("Key Vault Secrets User", "kv2")}  # rg-a/xid's access in s2
    assert roles_of(by_name["xid-2"]) == {("Contributor", "app-rg2")}  # rg-b/xid's
    (s2id,) = held["app6"].values()
    assert roles_of(s2id["principalId"]) == {("Key Vault Secrets User", "kv1")}  # granted again to app6's own s2id, in s1


def test_a_rehearsal_starts_from_the_state_the_real_move_maintains_first(cli, isolated_state: Path) -> None:
    """A state left alone for 100 days: the move's transaction first rolls the identity's expired
    certificate, so its rehearsal must too (in memory: no key file written), or it reports an
    identity broken that the real move keeps."""
    cli.ok("create-subscription", "other")
    cli.ok("create-resource", "vmq", "--type", "vm", "--system-assigned")
    text = isolated_state.read_text()
    isolated_state.write_text(text.replace("clock_offset = 0\n", "clock_offset = 8640000\n", 1))  # 100 days later
    keys = isolated_state.parent / (isolated_state.name + ".d") / "keys"
    files_before, state_before = sorted(p.name for p in keys.iterdir()), isolated_state.read_bytes()
    rehearsal = cli.json("migrate", "vmq", "--subscription", "other", "--what-if")
    assert sorted(p.name for p in keys.iterdir()) == files_before and isolated_state.read_bytes() == state_before
    assert [i["works"] for i in rehearsal["result"]["identities"]] == [True]
    real = cli.json("migrate", "vmq", "--subscription", "other")
    assert real == rehearsal["result"]


def test_an_identity_used_only_outside_the_moved_subscription_is_reported_broken(cli) -> None:
    cli.ok("create-tenant", "T2")
    cli.ok("create-subscription", "subB")
    uid = cli.json("create-identity", "uidb", "--subscription", "subB")["id"]
    vm = cli.json("create-resource", "vm1", "--type", "vm", "--user-assigned", uid)["id"]
    rehearsal = cli.json("move-subscription", "subB", "--tenant", "T2", "--what-if")
    assert [(b["name"], b["usedBy"]) for b in rehearsal["brokenIdentities"]] == [("uidb", [vm])]
    real = cli.json("move-subscription", "subB", "--tenant", "T2", "--yes")
    assert real == rehearsal["result"] and [b["resource"] for b in real["brokenIdentities"]] == [vm]
    assert cli("token", "vm1", "--audience", VAULT).exit_code == 1
    _run_fixes(cli, rehearsal["fixCommands"])
    assert cli.json("token", "vm1", "--audience", VAULT)["access_token"]


def test_a_move_reports_only_what_it_breaks_of_the_resources_outside_it(cli) -> None:
    """vm r2 holds an identity of subA and one of subC; subC moved away earlier (its identity is
    already broken). Moving subA reports r2's subA identity only, and warns naming r2."""
    cli.ok("create-tenant", "T2")
    cli.ok("create-tenant", "T3")
    uid_a = cli.json("create-identity", "uida", "--subscription", cli.json("create-subscription", "subA")["id"])["id"]
    uid_c = cli.json("create-identity", "uidc", "--subscription", cli.json("create-subscription", "subC")["id"])["id"]
    r2 = cli.json("create-resource", "r2", "--type", "vm", "--user-assigned", uid_a, "--user-assigned", uid_c)["id"]
    cli.ok("move-subscription", "subC", "--tenant", "T2", "--yes")
    rehearsal = cli.json("move-subscription", "subA", "--tenant", "T3", "--what-if")
    assert [b["name"] for b in rehearsal["brokenIdentities"]] == ["uida"]
    real = cli("move-subscription", "subA", "--tenant", "T3", "--yes", "-o", "json")
    assert json.loads(real.stdout) == rehearsal["result"]
    assert [b["principalId"] for b in rehearsal["result"]["brokenIdentities"]] == [cli.json("show", "uida")["principalId"]]
    [warning] = [line for line in real.stderr.splitlines() if line.startswith("warning:")]
    assert f"used by {r2}" in warning
