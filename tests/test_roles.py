"""Role assignments and access checks through the CLI: grant, revoke, list role-assignments and
check-access, with Azure's built-in roles, hierarchical scopes, orphaned assignments and decisions
taken from the roles' permissions rather than their names."""

from __future__ import annotations

import json
import uuid

import pytest

from conftest import fails, is_guid

AUTH = "/providers/Microsoft.Authorization"

BUILT_IN = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
}
KV_USER = "Key Vault Secrets User"


# ---- helpers ---------------------------------------------------------------------------------------


def allowed(cli, resource: str, scope: str, role: str, *selector: str) -> dict:
    result = cli("check-access", resource, "--scope", scope, "--role", role, *selector, "-o", "json")
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["allowed"] is True
    assert data["grantedBy"], data
    return data


def denied(cli, resource: str, scope: str, role: str, *selector: str) -> dict:
    """Exit 1; the JSON verdict on stdout, and its reason as the one `error:` line on stderr."""
    result = cli("check-access", resource, "--scope", scope, "--role", role, *selector, "-o", "json")
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    data = json.loads(result.stdout)
    assert data["allowed"] is False
    assert data["grantedBy"] == []
    assert data["reason"]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == f"error: access denied: {' '.join(data['reason'].split())}"
    return data


def ids(cli) -> tuple[str, str]:
    """(default tenant id, default subscription id)"""
    sub = cli.json("list", "subscriptions")[0]
    return sub["tenantId"], sub["id"]


def assignments(cli, *filters: str) -> list[dict]:
    return cli.json("list", "role-assignments", *filters)


def arm_id(assignment: dict) -> str:
    return assignment["id"]


@pytest.fixture
def world(cli):
    """A VM with a system-assigned identity, a user-assigned identity, a vault and a storage account
    in resource group `app`, and a vault in `app2` (a name that `app` is a prefix of)."""
    _, sub = ids(cli)
    vm = cli.json("create-resource", "vm1", "--type", "vm", "-g", "app", "--system-assigned")
    uai = cli.json("create-identity", "uai1", "-g", "app")
    kv = cli.json("create-resource", "kv1", "--type", "keyvault", "-g", "app")
    st = cli.json("create-resource", "st1", "--type", "storage", "-g", "app")
    kv2 = cli.json("create-resource", "kv2", "--type", "keyvault", "-g", "app2")
    return {
        "sub": sub,
        "sub_scope": f"/subscriptions/{sub}",
        "rg_scope": f"/subscriptions/{sub}/resourceGroups/app",
        "rg2_scope": f"/subscriptions/{sub}/resourceGroups/app2",
        "vm": vm,
        "vm_pid": vm["identity"]["principalId"],
        "uai": uai,
        "kv": kv["id"],
        "st": st["id"],
        "kv2": kv2["id"],
    }


# ---- grant: roles, shape, principals, scopes ----------------------------------------------------------


@pytest.mark.parametrize("name,guid", list(BUILT_IN.items()))
def test_grant_each_built_in_role_by_name_and_by_guid(cli, world, name, guid):
    sub, kv, pid = world["sub"], world["kv"], world["vm_pid"]
    by_name = cli.json("grant", "vm1", "--role", name, "--scope", kv)
    assert by_name["roleDefinitionName"] == name
    assert by_name["roleDefinitionId"] == f"/subscriptions/{sub}{AUTH}/roleDefinitions/{guid}"
    assert by_name["principalId"] == pid
    assert by_name["principalType"] == "ServicePrincipal"
    assert by_name["scope"] == kv
    prefix = f"{kv}{AUTH}/roleAssignments/"
    assert by_name["id"].startswith(prefix)
    assert is_guid(by_name["id"][len(prefix):])
    assert by_name.get("name", by_name["id"][len(prefix):]) == by_name["id"][len(prefix):]
    # a role always covers itself, whatever its actions and exclusions
    assert allowed(cli, "vm1", kv, name)["grantedBy"] == [by_name["id"]]

    # the same role by its GUID, at another scope, is the same role definition
    by_guid = cli.json("grant", "vm1", "--role", guid, "--scope", world["rg_scope"])
    assert by_guid["roleDefinitionName"] == name
    assert by_guid["roleDefinitionId"] == by_name["roleDefinitionId"]
    assert by_guid["id"].startswith(f"{world['rg_scope']}{AUTH}/roleAssignments/")
    assert by_guid["id"] != by_name["id"]

    # and by its full role definition id, lower-cased name: a duplicate of the first
    fails(cli("grant", "vm1", "--role", by_name["roleDefinitionId"], "--scope", kv), 1, "RoleAssignmentExists")
    fails(cli("grant", "vm1", "--role", name.lower(), "--scope", kv), 1, "RoleAssignmentExists")

    listed = assignments(cli)
    assert sorted(a["id"] for a in listed) == sorted([by_name["id"], by_guid["id"]])
    assert [a for a in listed if a["id"] == by_name["id"]][0] == {k: v for k, v in by_name.items()}

    # revoke by GUID removes exactly that one
    removed = cli.json("revoke", "vm1", "--role", guid, "--scope", kv)
    assert [a["id"] for a in removed] == [by_name["id"]]
    assert [a["id"] for a in assignments(cli)] == [by_guid["id"]]


def test_unknown_role_is_not_found_and_lists_the_built_ins(cli, world):
    line = fails(cli("grant", "vm1", "--role", "Superuser", "--scope", world["kv"]), 3, "Superuser")
    for name in BUILT_IN:
        assert name in line
    fails(cli("grant", "vm1", "--role", str(uuid.uuid4()), "--scope", world["kv"]), 3)
    assert assignments(cli) == []


def test_principal_as_resource_identity_principal_id_or_client_id(cli, world):
    kv, uai = world["kv"], world["uai"]
    by_resource = cli.json("grant", "vm1", "--role", "Reader", "--scope", kv)
    assert by_resource["principalId"] == world["vm_pid"]
    by_identity_name = cli.json("grant", "uai1", "--role", "Reader", "--scope", kv)
    assert by_identity_name["principalId"] == uai["principalId"]
    by_identity_id = cli("grant", uai["id"], "--role", "Reader", "--scope", kv)
    fails(by_identity_id, 1, "RoleAssignmentExists")  # the same principal: a duplicate
    by_principal_id = cli.json("grant", uai["principalId"], "--role", KV_USER, "--scope", kv)
    assert by_principal_id["principalId"] == uai["principalId"]
    by_client_id = cli("grant", uai["clientId"], "--role", KV_USER, "--scope", kv)
    fails(by_client_id, 1, "RoleAssignmentExists")  # a client id names the same service principal
    by_vm_id = cli.json("grant", world["vm"]["id"], "--role", KV_USER, "--scope", kv)
    assert by_vm_id["principalId"] == world["vm_pid"]
    assert len(assignments(cli)) == 4
    assert {a["principalId"] for a in assignments(cli, "--principal", "uai1")} == {uai["principalId"]}
    assert len(assignments(cli, "--principal", uai["clientId"])) == 2


def test_principal_that_cannot_be_granted(cli, world):
    cli.ok("create-resource", "kv-noid", "--type", "keyvault", "-g", "app")
    fails(cli("grant", "kv-noid", "--role", "Reader", "--scope", world["kv"]), 1, "no system-assigned identity")
    unknown = str(uuid.uuid4())
    fails(cli("grant", unknown, "--role", "Reader", "--scope", world["kv"]), 1, "PrincipalNotFound", unknown)
    fails(cli("grant", "nosuch", "--role", "Reader", "--scope", world["kv"]), 3)
    assert assignments(cli) == []


def test_principal_from_another_tenant_cannot_be_granted(cli, world):
    cli.ok("create-tenant", "Fabrikam")
    fab = cli.json("create-subscription", "fab", "--tenant", "Fabrikam")
    kvf = cli.json("create-resource", "kvf", "--type", "keyvault", "--subscription", "fab")
    line = fails(cli("grant", "vm1", "--role", "Reader", "--scope", kvf["id"]), 1, "PrincipalNotFound", world["vm_pid"])
    assert fab["tenantId"] in line
    fails(cli("grant", "uai1", "--role", "Reader", "--scope", f"/subscriptions/{fab['id']}"), 1, "PrincipalNotFound")
    assert assignments(cli) == []


def test_scope_forms(cli, world):
    sub, kv = world["sub"], world["kv"]
    at_sub = cli.json("grant", "vm1", "--role", "Reader", "--scope", f"/subscriptions/{sub}")
    assert at_sub["scope"] == f"/subscriptions/{sub}"
    assert at_sub["id"] == f"/subscriptions/{sub}{AUTH}/roleAssignments/{at_sub['id'].rsplit('/', 1)[1]}"
    at_rg = cli.json("grant", "vm1", "--role", "Reader", "--scope", f"/subscriptions/{sub}/resourcegroups/app/")
    assert at_rg["scope"] == world["rg_scope"]  # normalised: resourceGroups, no trailing slash
    by_name = cli.json("grant", "vm1", "--role", "Reader", "--scope", "kv1")
    assert by_name["scope"] == kv
    fails(cli("grant", "vm1", "--role", "Reader", "--scope", kv.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")), 1, "RoleAssignmentExists")
    fails(cli("grant", "vm1", "--role", "Reader", "--scope", "/not/a/scope"), 2, "scope")
    fails(cli("grant", "vm1", "--role", "Reader", "--scope", f"/subscriptions/{uuid.uuid4()}"), 3, "subscription")
    fails(cli("grant", "vm1", "--role", "Reader", "--scope", f"{world['rg_scope']}/providers/Microsoft.KeyVault/vaults/nosuch"), 3)
    assert len(assignments(cli)) == 3


def test_duplicate_grant_is_refused_and_changes_nothing(cli, world, isolated_state):
    first = cli.json("grant", "vm1", "--role", KV_USER, "--scope", "kv1")
    before = isolated_state.read_bytes()
    line = fails(cli("grant", "vm1", "--role", KV_USER, "--scope", world["kv"]), 1, "RoleAssignmentExists")
    assert first["id"] in line  # the hint names the existing assignment
    assert isolated_state.read_bytes() == before
    # the same role elsewhere, or another role here, is a different assignment
    cli.ok("grant", "vm1", "--role", KV_USER, "--scope", world["rg_scope"])
    cli.ok("grant", "vm1", "--role", "Key Vault Secrets Officer", "--scope", "kv1")
    cli.ok("grant", "uai1", "--role", KV_USER, "--scope", "kv1")
    assert len(assignments(cli)) == 4


def test_revoke(cli, world):
    kv = world["kv"]
    keep = cli.json("grant", "vm1", "--role", "Reader", "--scope", world["rg_scope"])
    gone = cli.json("grant", "vm1", "--role", KV_USER, "--scope", kv)
    allowed(cli, "vm1", kv, KV_USER)
    # a parent scope, another role or another principal removes nothing
    fails(cli("revoke", "vm1", "--role", KV_USER, "--scope", world["rg_scope"]), 3)
    fails(cli("revoke", "vm1", "--role", "Reader", "--scope", kv), 3)
    fails(cli("revoke", "uai1", "--role", KV_USER, "--scope", kv), 3)
    assert len(assignments(cli)) == 2
    removed = cli.json("revoke", "vm1", "--role", KV_USER, "--scope", "kv1")
    assert [a["id"] for a in removed] == [gone["id"]]
    assert [a["id"] for a in assignments(cli)] == [keep["id"]]
    verdict = denied(cli, "vm1", kv, KV_USER)
    assert "does not include" in verdict["reason"]  # it still holds Reader above
    fails(cli("revoke", "vm1", "--role", KV_USER, "--scope", kv), 3)
    cli.ok("revoke", "vm1", "--role", "Reader", "--scope", world["rg_scope"] + "/")
    assert assignments(cli) == []
    verdict = denied(cli, "vm1", kv, KV_USER)
    assert "no role assignment grants" in verdict["reason"]


def test_list_role_assignments_filters(cli, world):
    a_sub = cli.json("grant", "vm1", "--role", "Reader", "--scope", world["sub_scope"])
    a_rg = cli.json("grant", "uai1", "--role", "Reader", "--scope", world["rg_scope"])
    a_kv = cli.json("grant", "uai1", "--role", KV_USER, "--scope", "kv1")
    a_kv2 = cli.json("grant", "vm1", "--role", KV_USER, "--scope", "kv2")
    everything = assignments(cli)
    assert sorted(a["id"] for a in everything) == sorted(x["id"] for x in (a_sub, a_rg, a_kv, a_kv2))
    assert sorted(a["id"] for a in assignments(cli, "--principal", "uai1")) == sorted([a_rg["id"], a_kv["id"]])
    # --scope: at that scope or above it
    assert sorted(a["id"] for a in assignments(cli, "--scope", "kv1")) == sorted([a_sub["id"], a_rg["id"], a_kv["id"]])
    assert sorted(a["id"] for a in assignments(cli, "--scope", "kv2")) == sorted([a_sub["id"], a_kv2["id"]])
    table = cli.ok("list", "role-assignments").stdout
    for column in ("Principal", "Role", "Scope"):
        assert column in table
    assert "Key Vault Secrets User" in table


# ---- hierarchical scopes ---------------------------------------------------------------------------


def test_resource_group_assignment_covers_its_resources_only(cli, world):
    grant = cli.json("grant", "vm1", "--role", KV_USER, "--scope", world["rg_scope"])
    verdict = allowed(cli, "vm1", world["kv"], KV_USER)
    assert verdict["grantedBy"] == [grant["id"]]
    assert verdict["principalId"] == world["vm_pid"]
    assert verdict["identityType"] == "SystemAssigned"
    assert verdict["scope"] == world["kv"]
    assert world["rg_scope"] in verdict["reason"]
    allowed(cli, "vm1", world["rg_scope"], KV_USER)
    # not the resource group whose name merely starts with 'app', nor the subscription above
    denied(cli, "vm1", world["kv2"], KV_USER)
    denied(cli, "vm1", world["rg2_scope"], KV_USER)
    denied(cli, "vm1", world["sub_scope"], KV_USER)


def test_resource_assignment_does_not_cover_its_parents_or_siblings(cli, world):
    cli.ok("grant", "vm1", "--role", "Storage Blob Data Reader", "--scope", "st1")
    allowed(cli, "vm1", "st1", "Storage Blob Data Reader")
    allowed(cli, "vm1", world["st"], "Storage Blob Data Reader")
    denied(cli, "vm1", world["rg_scope"], "Storage Blob Data Reader")
    denied(cli, "vm1", world["sub_scope"], "Storage Blob Data Reader")
    cli.ok("create-resource", "st10", "--type", "storage", "-g", "app")
    denied(cli, "vm1", "st10", "Storage Blob Data Reader")  # st1 is a prefix of st10, not its parent


def test_subscription_assignment_covers_everything_in_it_and_nothing_outside(cli, world):
    grant = cli.json("grant", "vm1", "--role", "Reader", "--scope", world["sub_scope"])
    for scope in (world["sub_scope"], world["rg_scope"], world["rg2_scope"], world["kv"], world["kv2"], world["st"], world["uai"]["id"]):
        assert allowed(cli, "vm1", scope, "Reader")["grantedBy"] == [grant["id"]]
    other = cli.json("create-subscription", "other")
    cli.ok("create-resource", "kv3", "--type", "keyvault", "--subscription", "other")
    denied(cli, "vm1", f"/subscriptions/{other['id']}", "Reader")
    denied(cli, "vm1", "kv3", "Reader")


# ---- permissions, not names --------------------------------------------------------------------------


def test_owner_does_not_include_key_vault_data_roles(cli, world):
    cli.ok("grant", "vm1", "--role", "Owner", "--scope", world["sub_scope"])
    for role in ("Owner", "Contributor", "Reader"):
        allowed(cli, "vm1", world["kv"], role)
    verdict = denied(cli, "vm1", world["kv"], KV_USER)
    assert "Owner" in verdict["reason"] and "does not include" in verdict["reason"]
    denied(cli, "vm1", world["st"], "Storage Blob Data Reader")


def test_secrets_officer_covers_secrets_user_not_the_reverse(cli, world):
    officer = cli.json("grant", "vm1", "--role", "Key Vault Secrets Officer", "--scope", "kv1")
    verdict = allowed(cli, "vm1", "kv1", KV_USER)
    assert verdict["grantedBy"] == [officer["id"]]
    assert "Key Vault Secrets Officer" in verdict["reason"]
    cli.ok("grant", "uai1", "--role", KV_USER, "--scope", "kv1")
    cli.ok("create-resource", "vm2", "--type", "vm", "-g", "app", "--user-assigned", "uai1")
    allowed(cli, "vm2", "kv1", KV_USER)
    denied(cli, "vm2", "kv1", "Key Vault Secrets Officer")
    denied(cli, "vm2", "kv1", "Reader")  # a data role grants no control-plane read


def test_contributor_does_not_cover_owner(cli, world):
    cli.ok("grant", "vm1", "--role", "Contributor", "--scope", world["rg_scope"])
    allowed(cli, "vm1", "kv1", "Contributor")
    allowed(cli, "vm1", "kv1", "Reader")
    verdict = denied(cli, "vm1", "kv1", "Owner")
    assert "Contributor" in verdict["reason"]
    cli.ok("grant", "vm1", "--role", "Owner", "--scope", "kv1")
    verdict = allowed(cli, "vm1", "kv1", "Contributor")
    assert len(verdict["grantedBy"]) == 2  # both Contributor and Owner allow it
    allowed(cli, "vm1", "kv1", "Owner")


def test_reader_at_subscription_covers_reader_on_a_resource(cli, world):
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", world["sub_scope"])
    allowed(cli, "vm1", "kv1", "Reader")
    allowed(cli, "vm1", world["kv"], "acdd72a7-3385-48ef-bd42-f606fba81ae7")
    denied(cli, "vm1", "kv1", "Contributor")


def test_storage_blob_contributor_covers_blob_reader(cli, world):
    cli.ok("grant", "vm1", "--role", "Storage Blob Data Contributor", "--scope", "st1")
    allowed(cli, "vm1", "st1", "Storage Blob Data Reader")
    cli.ok("grant", "uai1", "--role", "Storage Blob Data Reader", "--scope", "st1")
    cli.ok("create-resource", "vm2", "--type", "vm", "-g", "app", "--user-assigned", "uai1")
    denied(cli, "vm2", "st1", "Storage Blob Data Contributor")


# ---- orphaned assignments, new identities ----------------------------------------------------------


def test_deleted_identity_leaves_its_assignments_orphaned(cli, world):
    uai = world["uai"]
    grant = cli.json("grant", "uai1", "--role", KV_USER, "--scope", "kv1")
    cli.ok("create-resource", "vm2", "--type", "vm", "-g", "app", "--user-assigned", "uai1")
    allowed(cli, "vm2", "kv1", KV_USER)
    cli.ok("delete", "uai1", "-g", "app", "--yes")
    listed = assignments(cli)
    assert [a["id"] for a in listed] == [grant["id"]]
    orphan = listed[0]
    # az keeps an orphaned assignment's principalType and shows its principalName empty
    assert orphan["principalType"] == "ServicePrincipal" and orphan["principalName"] == ""
    assert orphan["principalId"] == uai["principalId"]
    assert orphan["roleDefinitionName"] == KV_USER and orphan["scope"] == world["kv"]
    assert [a["id"] for a in assignments(cli, "--principal", uai["principalId"])] == [grant["id"]]
    # a new identity of the same name is a new principal, with none of the old access
    again = cli.json("create-identity", "uai1", "-g", "app")
    assert again["principalId"] != uai["principalId"]
    cli.ok("unassign", "vm2", "--user-assigned", uai["id"])  # the deleted identity's dangling entry
    cli.ok("assign", "vm2", "--user-assigned", "uai1")
    verdict = denied(cli, "vm2", "kv1", KV_USER)
    assert verdict["principalId"] == again["principalId"]
    assert "orphaned" in verdict["reason"] and uai["principalId"] in verdict["reason"]
    assert assignments(cli, "--principal", "uai1") == []
    # the orphan cannot be granted again, but can be revoked by its principal id
    fails(cli("grant", uai["principalId"], "--role", "Reader", "--scope", "kv1"), 1, "PrincipalNotFound")
    cli.ok("revoke", uai["principalId"], "--role", KV_USER, "--scope", world["kv"])
    assert assignments(cli) == []
    verdict = denied(cli, "vm2", "kv1", KV_USER)
    assert "orphaned" not in verdict["reason"]


def test_disable_enable_yields_a_principal_with_none_of_the_old_assignments(cli, world):
    old = world["vm_pid"]
    grants = [
        cli.json("grant", "vm1", "--role", KV_USER, "--scope", "kv1"),
        cli.json("grant", "vm1", "--role", "Reader", "--scope", world["sub_scope"]),
    ]
    allowed(cli, "vm1", "kv1", KV_USER)
    cli.ok("unassign", "vm1", "--system-assigned")
    assert {(a["principalType"], a["principalName"]) for a in assignments(cli)} == {("ServicePrincipal", "")}
    new = cli.json("assign", "vm1")["systemAssignedIdentity"]
    assert is_guid(new) and new != old
    assert assignments(cli, "--principal", "vm1") == []
    listed = assignments(cli)
    assert sorted(a["id"] for a in listed) == sorted(g["id"] for g in grants)
    assert all(a["principalId"] == old and a["principalName"] == "" for a in listed)
    verdict = denied(cli, "vm1", "kv1", KV_USER)
    assert verdict["principalId"] == new
    assert "orphaned" in verdict["reason"] and old in verdict["reason"]
    assert "Principal name" in cli.ok("list", "role-assignments").stdout


def test_deleting_the_resource_orphans_its_system_assigned_assignments(cli, world):
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", "kv1")
    cli.ok("delete", "vm1", "-g", "app", "--yes")
    [orphan] = assignments(cli)
    assert orphan["principalId"] == world["vm_pid"] and orphan["principalName"] == ""


# ---- check-access: verdicts, reasons, selectors --------------------------------------------------------


def test_check_access_table_output_and_exit_codes(cli, world):
    cli.ok("grant", "vm1", "--role", KV_USER, "--scope", "kv1")
    ok = cli("check-access", "vm1", "--scope", "kv1", "--role", KV_USER)
    assert ok.exit_code == 0 and ok.stderr == ""
    assert world["vm_pid"] in " ".join(ok.stdout.split())
    no = cli("check-access", "vm1", "--scope", "st1", "--role", "Storage Blob Data Reader")
    assert no.exit_code == 1
    # the reason is printed once: the error line, without a verdict table besides it (issue 13)
    assert no.stdout == "" and no.stderr.startswith("error: access denied: no role assignment grants")
    assert len(no.stderr.splitlines()) == 1
    quiet = cli("check-access", "vm1", "--scope", "st1", "--role", "Storage Blob Data Reader", "-o", "none")
    assert quiet.exit_code == 1 and quiet.stderr.startswith("error: access denied: no role assignment grants")
    # usage and not-found errors keep their own exit codes
    fails(cli("check-access", "nosuch", "--scope", "kv1", "--role", KV_USER), 3)
    fails(cli("check-access", "vm1", "--scope", "kv1", "--role", "Nope"), 3)
    fails(cli("check-access", "vm1", "--scope", "nosuch", "--role", KV_USER), 3)
    assert cli("check-access", "vm1", "--role", KV_USER).exit_code == 2


def test_check_access_reason_no_identity(cli, world):
    cli.ok("create-resource", "vm-bare", "--type", "vm", "-g", "app")
    verdict = denied(cli, "vm-bare", "kv1", "Reader")
    assert verdict["principalId"] is None
    assert "no identity to act as" in verdict["reason"]


def test_check_access_reason_cannot_get_a_token(cli, world):
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", world["sub_scope"])
    allowed(cli, "vm1", "kv1", "Reader")
    cli.ok("create-tenant", "Fabrikam")
    cli.ok("move-subscription", world["sub_scope"].rsplit("/", 1)[-1], "--tenant", "Fabrikam", "--yes")
    verdict = denied(cli, "vm1", "kv1", "Reader")
    assert verdict["principalId"] == world["vm_pid"]
    assert "cannot get a token" in verdict["reason"]
    assert "Fabrikam" in verdict["reason"]


def test_check_access_selectors(cli, world):
    u2 = cli.json("create-identity", "uai2", "-g", "app")
    u1 = world["uai"]
    cli.ok("assign", "vm1", "--user-assigned", "uai1", "--user-assigned", "uai2")
    cli.ok("grant", "uai1", "--role", KV_USER, "--scope", "kv1")
    cli.ok("grant", "uai2", "--role", "Storage Blob Data Reader", "--scope", "st1")
    # no selector: the system-assigned identity, which holds nothing
    assert denied(cli, "vm1", "kv1", KV_USER)["principalId"] == world["vm_pid"]
    v = allowed(cli, "vm1", "kv1", KV_USER, "--client-id", u1["clientId"])
    assert v["principalId"] == u1["principalId"] and v["identityType"] == "UserAssigned"
    assert allowed(cli, "vm1", "kv1", KV_USER, "--object-id", u1["principalId"])["principalId"] == u1["principalId"]
    assert allowed(cli, "vm1", "kv1", KV_USER, "--msi-res-id", u1["id"])["principalId"] == u1["principalId"]
    assert denied(cli, "vm1", "kv1", KV_USER, "--client-id", u2["clientId"])["principalId"] == u2["principalId"]
    allowed(cli, "vm1", "st1", "Storage Blob Data Reader", "--object-id", u2["principalId"])
    denied(cli, "vm1", "st1", "Storage Blob Data Reader", "--msi-res-id", u1["id"])
    # a selector that matches none of the VM's identities
    stranger = cli.json("create-identity", "uai3", "-g", "app")
    verdict = denied(cli, "vm1", "kv1", KV_USER, "--client-id", stranger["clientId"])
    assert "no identity to act as" in verdict["reason"] and verdict["principalId"] is None
    both = cli("check-access", "vm1", "--scope", "kv1", "--role", KV_USER, "--client-id", u1["clientId"], "--object-id", u1["principalId"])
    assert both.exit_code == 2 and both.stderr.startswith("error: give at most one of")  # a usage error
    # without the system-assigned identity and with two user-assigned ones, a selector is needed
    cli.ok("unassign", "vm1", "--system-assigned")
    verdict = denied(cli, "vm1", "kv1", KV_USER)
    assert "2 user-assigned" in verdict["reason"] and verdict["principalId"] is None
    allowed(cli, "vm1", "kv1", KV_USER, "--client-id", u1["clientId"])
    cli.ok("unassign", "vm1", "--user-assigned", "uai2")
    assert allowed(cli, "vm1", "kv1", KV_USER)["principalId"] == u1["principalId"]  # the only one


def test_a_role_msi_does_not_know_in_a_hand_edited_state_grants_nothing(cli, world, isolated_state):
    """A state edited by hand may name a role definition that is not one of Azure's built-in
    roles msi models: check-access answers (that role grants nothing) instead of failing."""
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", "kv1")
    cli.ok("grant", "vm1", "--role", "Contributor", "--scope", "st1")
    unknown = "11111111-1111-1111-1111-111111111111"
    text = isolated_state.read_text()
    assert text.count(BUILT_IN["Reader"]) == 1
    isolated_state.write_text(text.replace(BUILT_IN["Reader"], unknown))
    denied = cli("check-access", "vm1", "--scope", "kv1", "--role", "Reader", "-o", "json")
    assert denied.exit_code == 1 and len(denied.stderr.splitlines()) == 1, denied.stderr
    assert f"role {unknown} (not a built-in role msi knows)" in denied.stderr
    assert allowed(cli, "vm1", "st1", "Reader")["grantedBy"]  # the known role still decides


def test_an_ambiguous_principal_is_told_apart_the_way_grant_and_revoke_can(cli):
    """grant, revoke and list --principal have no -g: their hint is the full id, which works."""
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
    web2 = cli.json("create-resource", "web1", "--type", "webapp", "-g", "rg2", "--system-assigned")["id"]
    cli.ok("create-resource", "kv1", "--type", "keyvault")
    for args in (("grant", "web1", "--role", "Reader", "--scope", "kv1"), ("revoke", "web1", "--role", "Reader", "--scope", "kv1"),
                 ("list", "role-assignments", "--principal", "web1")):
        refused = cli(*args)
        assert refused.exit_code == 2 and "give the full id" in refused.stderr and "-g " not in refused.stderr, refused.stderr
    assert cli.json("grant", web2, "--role", "Reader", "--scope", "kv1")["scope"].endswith("/kv1")


@pytest.mark.parametrize(("args", "option"), [
    (("list", "identities", "--type", "vm"), "--type"), (("list", "principals", "--type", "vm"), "--type"),
    (("list", "tenants", "--tenant", "Default Directory"), "--tenant"), (("list", "resources", "--principal", "x"), "--principal"),
    (("list", "identities", "--scope", "x"), "--scope"), (("list", "resources", "--deleted"), "--deleted"),
])
def test_a_list_filter_the_kind_does_not_take_is_refused_not_ignored(cli, args, option):
    refused = cli(*args)
    assert refused.exit_code == 2 and refused.stderr.startswith(f"error: {option} goes with"), refused.stderr


def test_list_of_a_kind_without_groups_leaves_msi_resource_group_unused(cli, monkeypatch):
    monkeypatch.setenv("MSI_RESOURCE_GROUP", "nowhere")
    for kind in ("tenants", "subscriptions", "principals"):
        assert cli("list", kind).exit_code == 0, kind
    assert cli("list", "resources").exit_code == 3  # a kind in groups: the group must exist
