"""Every lifecycle rule through the CLI: exit code, stdout and stderr checked separately, then the
state file reloaded and checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from msi_cli.store.statefile import StateFile

from conftest import fails, is_guid

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


# ---- helpers ---------------------------------------------------------------------------------------


def succeeds_json(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return json.loads(result.stdout)


def load(path: Path):
    assert path.exists()
    return StateFile(path).read()


def in_order(keys: list[str], expected: list[str]) -> bool:
    """`expected` are all among `keys`, in that relative order."""
    positions = [keys.index(k) for k in expected if k in keys]
    return len(positions) == len(expected) and positions == sorted(positions)


def default_ids(cli) -> tuple[str, str]:
    tenants = cli.json("list", "tenants")
    subs = cli.json("list", "subscriptions")
    return tenants[0]["tenantId"], subs[0]["id"]


# ---- fresh state, tenants and subscriptions --------------------------------------------------------


def test_fresh_state_has_default_tenant_and_subscription(cli, isolated_state):
    assert not isolated_state.exists()
    tenants = succeeds_json(cli("list", "tenants", "-o", "json"))
    subs = succeeds_json(cli("list", "subscriptions", "-o", "json"))
    assert [t["displayName"] for t in tenants] == ["Default Directory"]
    assert [s["name"] for s in subs] == ["default"]
    assert is_guid(tenants[0]["tenantId"]) and is_guid(subs[0]["id"])
    assert subs[0]["tenantId"] == tenants[0]["tenantId"]
    assert subs[0]["isDefault"] is True
    assert ISO.fullmatch(tenants[0]["createdDateTime"])
    state = load(isolated_state)
    assert state.default_subscription_id == subs[0]["id"]
    assert [t.name for t in state.tenants.values()] == ["Default Directory"]
    assert not state.resources and not state.identities and not state.principals


def test_resource_works_with_no_setup_and_uses_defaults(cli, isolated_state):
    data = succeeds_json(cli("create-resource", "web1", "--type", "webapp", "-o", "json"))
    _, sub_id = default_ids(cli)
    assert data["resourceGroup"] == "default"
    assert data["subscriptionId"] == sub_id
    assert data["location"] == "eastus"
    assert data["id"] == f"/subscriptions/{sub_id}/resourceGroups/default/providers/Microsoft.Web/sites/web1"
    state = load(isolated_state)
    assert data["id"].lower() in state.resources


def test_create_tenant(cli, isolated_state):
    data = succeeds_json(cli("create-tenant", "Contoso", "-o", "json"))
    assert data["displayName"] == "Contoso"
    assert is_guid(data["tenantId"])
    state = load(isolated_state)
    assert state.tenants[data["tenantId"]].name == "Contoso"
    assert len(state.tenants) == 2
    # a second tenant of the same name is refused and changes nothing
    before = isolated_state.read_bytes()
    fails(cli("create-tenant", "contoso"), 1, "already exists")
    assert isolated_state.read_bytes() == before


def test_create_subscription_in_a_tenant(cli, isolated_state):
    tenant = cli.json("create-tenant", "Contoso")
    default_tenant, _ = default_ids(cli)
    by_name = succeeds_json(cli("create-subscription", "prod", "--tenant", "Contoso", "-o", "json"))
    by_id = succeeds_json(cli("create-subscription", "test", "--tenant", tenant["tenantId"], "-o", "json"))
    plain = succeeds_json(cli("create-subscription", "dev", "-o", "json"))
    assert by_name["tenantId"] == tenant["tenantId"]
    assert by_id["tenantId"] == tenant["tenantId"]
    assert plain["tenantId"] == default_tenant  # the default subscription's tenant
    for sub in (by_name, by_id, plain):
        assert is_guid(sub["id"])
        assert sub["isDefault"] is False
    state = load(isolated_state)
    assert state.subscriptions[by_name["id"]].tenant_id == tenant["tenantId"]
    assert state.subscriptions[plain["id"]].tenant_id == default_tenant
    # resources go into the named subscription
    res = cli.json("create-resource", "vm1", "--type", "vm", "--subscription", "prod")
    assert res["subscriptionId"] == by_name["id"]


def test_create_subscription_unknown_tenant_is_not_found(cli, isolated_state):
    cli.ok("create-identity", "seed-id")
    before = isolated_state.read_bytes()
    fails(cli("create-subscription", "prod", "--tenant", "Nowhere"), 3, "Nowhere")
    assert isolated_state.read_bytes() == before


# ---- system-assigned identities --------------------------------------------------------------------


def test_system_assigned_on_create(cli, isolated_state):
    data = succeeds_json(cli("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "json"))
    tenant_id, _ = default_ids(cli)
    ident = data["identity"]
    assert ident["type"] == "SystemAssigned"
    assert is_guid(ident["principalId"])
    assert ident["tenantId"] == tenant_id
    assert "userAssignedIdentities" not in ident
    state = load(isolated_state)
    res = state.resources[data["id"].lower()]
    assert res.system_principal_id == ident["principalId"]
    identity = state.identities[ident["principalId"]]
    assert identity.kind == "SystemAssigned"
    assert identity.resource_id == data["id"]
    assert state.principals[ident["principalId"]].app_id == identity.client_id


def test_assign_without_flag_enables_system_assigned_and_is_idempotent(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm")
    first = succeeds_json(cli("assign", "vm1", "-o", "json"))
    assert is_guid(first["systemAssignedIdentity"])
    assert first["userAssignedIdentities"] == {}
    state_after_first = isolated_state.read_bytes()
    second = succeeds_json(cli("assign", "vm1", "-o", "json"))
    assert second == first
    # nothing changed: same principal, no new identity, the file untouched
    assert isolated_state.read_bytes() == state_after_first
    state = load(isolated_state)
    assert list(state.identities) == [first["systemAssignedIdentity"]]
    assert list(state.principals) == [first["systemAssignedIdentity"]]
    assert cli.json("show", "vm1")["identity"]["principalId"] == first["systemAssignedIdentity"]


def test_one_system_assigned_identity_per_resource(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("assign", "vm1", "--system-assigned")
    cli.ok("assign", "vm1")
    state = load(isolated_state)
    systems = [i for i in state.identities.values() if i.kind == "SystemAssigned"]
    assert len(systems) == 1
    assert next(iter(state.resources.values())).system_principal_id == systems[0].principal_id


def test_disable_deletes_identity_and_principal(cli, isolated_state):
    created = cli.json("create-resource", "vm1", "--type", "vm", "--system-assigned")
    pid = created["identity"]["principalId"]
    result = succeeds_json(cli("unassign", "vm1", "--system-assigned", "-o", "json"))
    assert result == {"systemAssignedIdentity": "", "userAssignedIdentities": {}}
    state = load(isolated_state)
    assert pid not in state.identities
    assert pid not in state.principals
    assert next(iter(state.resources.values())).system_principal_id is None
    assert cli.json("show", "vm1")["identity"] == {"type": "None"}
    fails(cli("show", pid), 3, pid)


def test_reenable_creates_new_identity(cli, isolated_state):
    cli.ok("create-resource", "web1", "--type", "webapp")
    first = cli.json("assign", "web1")["principalId"]  # az webapp identity assign's shape
    first_client = load(isolated_state).identities[first].client_id
    cli.ok("unassign", "web1", "--system-assigned")
    second = cli.json("assign", "web1")["principalId"]
    state = load(isolated_state)
    assert second != first
    assert state.identities[second].client_id != first_client
    assert first not in state.identities and first not in state.principals
    assert set(state.principals) == {second}
    assert cli.json("show", second)["appId"] == state.identities[second].client_id


def test_deleting_resource_deletes_its_system_identity(cli, isolated_state):
    created = cli.json("create-resource", "vm1", "--type", "vm", "--system-assigned")
    pid = created["identity"]["principalId"]
    cli.ok("create-resource", "vm2", "--type", "vm", "--system-assigned")
    result = succeeds_json(cli("delete", "vm1", "--yes", "-o", "json"))
    assert result["deleted"] == created["id"]
    assert result["deletedPrincipals"] == [pid]
    state = load(isolated_state)
    assert created["id"].lower() not in state.resources
    assert pid not in state.identities and pid not in state.principals
    assert len(state.resources) == 1 and len(state.identities) == 1  # vm2 untouched
    fails(cli("show", "vm1"), 3, "vm1")
    assert pid not in [p["id"] for p in cli.json("list", "principals")]


def test_delete_without_yes_and_no_terminal_is_refused(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm")
    before = isolated_state.read_bytes()
    fails(cli("delete", "vm1"), 2, "--yes")
    assert isolated_state.read_bytes() == before


# ---- user-assigned identities ----------------------------------------------------------------------


def test_create_identity_shape_and_principal(cli, isolated_state):
    data = succeeds_json(cli("create-identity", "shared-id", "-g", "rg1", "--location", "westeurope", "-o", "json"))
    tenant_id, sub_id = default_ids(cli)
    assert in_order(list(data), ["id", "name", "type", "resourceGroup", "subscriptionId", "location", "principalId", "clientId", "tenantId"])
    assert data["id"] == (
        f"/subscriptions/{sub_id}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shared-id"
    )
    assert data["name"] == "shared-id"
    assert data["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert data["resourceGroup"] == "rg1"
    assert data["subscriptionId"] == sub_id
    assert data["location"] == "westeurope"
    assert data["tenantId"] == tenant_id
    assert is_guid(data["principalId"]) and is_guid(data["clientId"])
    assert data["principalId"] != data["clientId"]
    state = load(isolated_state)
    identity = state.identities[data["principalId"]]
    assert identity.kind == "UserAssigned" and identity.client_id == data["clientId"]
    sp = state.principals[data["principalId"]]
    assert sp.app_id == data["clientId"]
    assert sp.alternative_names == ["isExplicit=True", data["id"]]
    assert cli.json("show", "shared-id") == data
    assert cli.json("show", data["id"]) == data


def test_user_assigned_shared_by_many_resources(cli, isolated_state):
    ident = cli.json("create-identity", "shared-id")
    vm1 = cli.json("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id")
    cli.ok("create-resource", "vm2", "--type", "vm")
    assigned = succeeds_json(cli("assign", "vm2", "--user-assigned", ident["id"], "-o", "json"))
    web = cli.json("create-resource", "web1", "--type", "webapp", "--system-assigned", "--user-assigned", "shared-id")
    expected = {ident["id"]: {"principalId": ident["principalId"], "clientId": ident["clientId"]}}
    assert vm1["identity"] == {"type": "UserAssigned", "userAssignedIdentities": expected}
    assert assigned == {"systemAssignedIdentity": "", "userAssignedIdentities": expected}
    assert web["identity"]["type"] == "SystemAssigned, UserAssigned"
    assert web["identity"]["userAssignedIdentities"] == expected
    assert web["identity"]["principalId"] != ident["principalId"]
    state = load(isolated_state)
    assert all(r.user_identity_ids == [ident["id"]] for r in state.resources.values())
    assert [i.principal_id for i in state.identities.values() if i.kind == "UserAssigned"] == [ident["principalId"]]


def test_assigning_the_same_user_identity_twice_is_idempotent(cli, isolated_state):
    ident = cli.json("create-identity", "shared-id")
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id")
    before = isolated_state.read_bytes()
    again = succeeds_json(cli("assign", "vm1", "--user-assigned", "shared-id", "--user-assigned", ident["id"], "-o", "json"))
    assert list(again["userAssignedIdentities"]) == [ident["id"]]
    assert again["systemAssignedIdentity"] == ""  # a --user-assigned flag alone does not enable system-assigned
    assert isolated_state.read_bytes() == before
    assert next(iter(load(isolated_state).resources.values())).user_identity_ids == [ident["id"]]


def test_resource_holds_many_user_identities(cli, isolated_state):
    a = cli.json("create-identity", "id-a")
    b = cli.json("create-identity", "id-b")
    res = cli.json("create-resource", "vm1", "--type", "vm", "--user-assigned", "id-a", "--user-assigned", "id-b")
    assert list(res["identity"]["userAssignedIdentities"]) == [a["id"], b["id"]]
    detached = succeeds_json(cli("unassign", "vm1", "--user-assigned", "id-a", "-o", "json"))
    assert list(detached["userAssignedIdentities"]) == [b["id"]]
    state = load(isolated_state)
    assert next(iter(state.resources.values())).user_identity_ids == [b["id"]]
    # detaching does not delete the identity
    assert a["principalId"] in state.identities and a["principalId"] in state.principals


def test_deleting_user_identity_leaves_dangling_entries(cli, isolated_state):
    """Azure: deleting a user-assigned identity does not remove the reference from the resources it
    was assigned to; each keeps its entry (with the ids it recorded) until removed from it."""
    ident = cli.json("create-identity", "shared-id")
    other = cli.json("create-identity", "other-id")
    vm1 = cli.json("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id")
    vm2 = cli.json(
        "create-resource", "vm2", "--type", "vm", "--system-assigned", "--user-assigned", "shared-id", "--user-assigned", "other-id"
    )
    deleted = cli("delete", "shared-id", "--yes", "-o", "json")
    assert deleted.exit_code == 0
    assert deleted.stderr.startswith("warning: 'shared-id' is still assigned to 2 resource(s)") and ident["id"] in deleted.stderr
    result = json.loads(deleted.stdout)
    assert result["deleted"] == ident["id"]
    assert result["deletedPrincipals"] == [ident["principalId"]]
    assert sorted(result["stillReferencedBy"]) == sorted([vm1["id"], vm2["id"]])
    state = load(isolated_state)
    assert len(state.resources) == 2  # the resources stay
    assert ident["principalId"] not in state.identities
    assert ident["principalId"] not in state.principals
    for res in state.resources.values():
        assert ident["id"] in res.user_identity_ids
    entry = {ident["id"]: {"principalId": ident["principalId"], "clientId": ident["clientId"]}}
    assert cli.json("show", "vm1")["identity"] == {"type": "UserAssigned", "userAssignedIdentities": entry}
    shown = cli.json("show", "vm2")["identity"]
    assert shown["type"] == "SystemAssigned, UserAssigned"
    assert list(shown["userAssignedIdentities"]) == [ident["id"], other["id"]]
    assert shown["principalId"] == vm2["identity"]["principalId"]
    fails(cli("show", "shared-id"), 3, "shared-id")
    # the table marks the dangling entries
    table = cli.ok("list", "resources").stdout
    assert table.count("shared-id (deleted: dangling)") == 2 and "other-id (deleted" not in table
    # removed by full id; the bare name no longer resolves, and the error gives the id to use
    by_name = fails(cli("unassign", "vm1", "--user-assigned", "shared-id"), 3, "no longer exists")
    assert ident["id"] in by_name
    removed = succeeds_json(cli("unassign", "vm1", "--user-assigned", ident["id"], "-o", "json"))
    assert removed == {"systemAssignedIdentity": "", "userAssignedIdentities": {}}
    assert cli.json("show", "vm1")["identity"] == {"type": "None"}


def test_deleting_resource_keeps_user_identity(cli, isolated_state):
    ident = cli.json("create-identity", "shared-id")
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id")
    cli.ok("delete", "vm1", "--yes")
    state = load(isolated_state)
    assert not state.resources
    assert ident["principalId"] in state.identities and ident["principalId"] in state.principals


# ---- detaching what is not attached ----------------------------------------------------------------


def test_unassign_user_identity_not_attached(cli, isolated_state):
    ident = cli.json("create-identity", "id1")
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    before = isolated_state.read_bytes()
    line = fails(cli("unassign", "vm1", "--user-assigned", "id1"), 1)
    assert line == f"error: '{ident['id']}' are not associated with 'vm1'"
    assert isolated_state.read_bytes() == before


def test_unassign_system_identity_not_enabled(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm")
    before = isolated_state.read_bytes()
    fails(cli("unassign", "vm1", "--system-assigned"), 1, "are not associated with 'vm1'")
    assert isolated_state.read_bytes() == before


def test_unassign_partly_attached_changes_nothing(cli, isolated_state):
    a = cli.json("create-identity", "id-a")
    b = cli.json("create-identity", "id-b")
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "id-a")
    before = isolated_state.read_bytes()
    line = fails(cli("unassign", "vm1", "--system-assigned", "--user-assigned", "id-a", "--user-assigned", "id-b"), 1)
    assert "are not associated with 'vm1'" in line
    assert b["id"] in line and a["id"] not in line
    assert isolated_state.read_bytes() == before


def test_unassign_with_nothing_to_remove_is_a_usage_error(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    before = isolated_state.read_bytes()
    fails(cli("unassign", "vm1"), 2)
    assert isolated_state.read_bytes() == before


# ---- names -----------------------------------------------------------------------------------------

VALID_AND_INVALID_NAMES = [
    # type, a valid name, an invalid name (each breaks Azure's rule for that type)
    ("vm", "vm-01.prod_x", "vm01-"),  # may not end with '-'
    ("vm", "a" * 64, "a" * 65),  # 1-64 characters
    ("vmss", "scale.set_1", "scale set"),  # no spaces
    ("webapp", "my-web-01", "-myweb"),  # may not start with '-'
    ("webapp", "a" * 60, "a" * 61),  # 2-60 characters
    ("functionapp", "func-01", "func_01"),  # no '_'
    ("containerapp", "app-01", "App-01"),  # lower case only
    ("containerapp", "ab", "a--b"),  # no '--'
    ("containerapp", "a" * 32, "1app"),  # must start with a letter
    ("keyvault", "kv-01", "kv"),  # 3-24 characters
    ("keyvault", "Vault01", "1vault"),  # must start with a letter
    ("keyvault", "my-vault", "my--vault"),  # no '--'
    ("storage", "storage01", "Storage01"),  # lower-case letters and digits only
    ("storage", "st1", "st-01"),  # no '-'
    ("storage", "a" * 24, "a" * 25),  # 3-24 characters
]


@pytest.mark.parametrize(("type_key", "good", "bad"), VALID_AND_INVALID_NAMES)
def test_resource_names_are_validated_per_type(cli, isolated_state, type_key, good, bad):
    cli.ok("create-identity", "seed-id")
    before = isolated_state.read_bytes()
    fails(cli("create-resource", "--type", type_key, "--", bad), 1, "invalid", bad)  # `--`: a name may start with '-'
    assert isolated_state.read_bytes() == before
    data = succeeds_json(cli("create-resource", good, "--type", type_key, "-o", "json"))
    assert data["name"] == good
    assert data["id"].lower() in load(isolated_state).resources


@pytest.mark.parametrize(
    ("good", "bad"),
    [("abc", "ab"), ("id_1-x", "_id1"), ("Id-1", "id.1"), ("a" * 128, "a" * 129), ("1ab", "id 1")],
)
def test_identity_names_are_validated(cli, isolated_state, good, bad):
    cli.ok("create-resource", "vm1", "--type", "vm")
    before = isolated_state.read_bytes()
    fails(cli("create-identity", bad), 1, "invalid user-assigned identity name")
    assert isolated_state.read_bytes() == before
    cli.ok("create-identity", good)
    assert any(i.name == good for i in load(isolated_state).identities.values())


@pytest.mark.parametrize(("good", "bad"), [("rg.prod-(1)_x", "rg."), ("r", "rg/1"), ("a" * 90, "a" * 91), ("my-rg", "my rg"), ("d", "")])
def test_resource_group_names_are_validated(cli, isolated_state, good, bad):
    cli.ok("create-identity", "seed-id")
    before = isolated_state.read_bytes()
    fails(cli("create-resource", "vm1", "--type", "vm", "-g", bad), 1, "invalid resource group name")
    fails(cli("create-identity", "id1", "-g", bad), 1, "invalid resource group name")
    assert isolated_state.read_bytes() == before
    assert cli.json("create-resource", "vm1", "--type", "vm", "-g", good)["resourceGroup"] == good


def test_a_name_refused_for_a_tab_or_newline_shows_it_escaped(cli):
    """Not as a space, which would make the refused name look valid."""
    fails(cli("create-tenant", "tab\there"), 1, "invalid tenant name 'tab\\x09here'")
    fails(cli("create-identity", "a\nb"), 1, "invalid user-assigned identity name 'a\\x0ab'")


def test_invalid_location_is_refused(cli, isolated_state):
    cli.ok("create-identity", "seed-id")
    before = isolated_state.read_bytes()
    fails(cli("create-resource", "vm1", "--type", "vm", "--location", "east-us"), 1, "invalid location 'east-us'")
    fails(cli("create-identity", "id1", "--location", ""), 1, "invalid location ''")  # not the default region
    assert isolated_state.read_bytes() == before


def test_a_location_is_taken_as_arm_takes_it_whatever_its_case_and_spaces(cli, tmp_path):
    """"West Europe", "WestEurope" and "westeurope" are one region (Azure/azure-sdk-for-net#1223),
    kept as "westeurope", from the command line and from an estate file alike."""
    assert cli.json("create-resource", "vm1", "--type", "vm", "--location", "West Europe")["location"] == "westeurope"
    assert cli.json("create-identity", "id1", "-g", "rg2", "--location", "WestEurope")["location"] == "westeurope"
    assert [g["location"] for g in cli.json("list", "groups") if g["name"] == "rg2"] == ["westeurope"]
    estate = tmp_path / "estate.toml"
    estate.write_text('[[identities]]\nname = "id1"\nresource_group = "rg2"\nlocation = "West Europe"\n')
    assert cli.json("apply", str(estate))["changes"] == []  # the same region: nothing to change


# ---- duplicates ------------------------------------------------------------------------------------


def test_duplicate_resource_in_same_group_and_type_is_refused(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    before = isolated_state.read_bytes()
    fails(cli("create-resource", "vm1", "--type", "vm"), 1, "already exists")
    fails(cli("create-resource", "VM1", "--type", "vm"), 1, "already exists")  # ARM names are case-insensitive
    assert isolated_state.read_bytes() == before
    # another type, or another group, is fine
    cli.ok("create-resource", "vm1", "--type", "vmss")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg2")
    assert len(load(isolated_state).resources) == 3


def test_webapp_and_functionapp_share_microsoft_web_sites(cli, isolated_state):
    cli.ok("create-resource", "site1", "--type", "webapp")
    before = isolated_state.read_bytes()
    fails(cli("create-resource", "site1", "--type", "functionapp"), 1, "Microsoft.Web/sites", "already exists")
    assert isolated_state.read_bytes() == before
    func = cli.json("create-resource", "site1", "--type", "functionapp", "-g", "rg2")
    assert func["type"] == "Microsoft.Web/sites" and func["kind"] == "functionapp"
    state = load(isolated_state)
    assert sorted(r.type for r in state.resources.values()) == ["functionapp", "webapp"]


def test_duplicate_identity_in_same_group_is_refused(cli, isolated_state):
    cli.ok("create-identity", "id1")
    before = isolated_state.read_bytes()
    fails(cli("create-identity", "id1"), 1, "already exists")
    fails(cli("create-identity", "ID1"), 1, "already exists")
    assert isolated_state.read_bytes() == before
    cli.ok("create-identity", "id1", "-g", "rg2")
    assert len(load(isolated_state).identities) == 2


# ---- finding targets -------------------------------------------------------------------------------


def test_same_name_in_two_groups_is_ambiguous(cli, isolated_state):
    one = cli.json("create-resource", "vm1", "--type", "vm", "-g", "rg1")
    two = cli.json("create-resource", "vm1", "--type", "vm", "-g", "rg2")
    before = isolated_state.read_bytes()
    for args in (("show", "vm1"), ("assign", "vm1"), ("delete", "vm1", "--yes"), ("unassign", "vm1", "--system-assigned")):
        line = fails(cli(*args), 2, "add -g rg1 or -g rg2")  # a usage error naming the option to add
        assert one["id"] in line and two["id"] in line, line
    assert isolated_state.read_bytes() == before
    # a full id, or the group, resolves it
    assert cli.json("show", one["id"])["resourceGroup"] == "rg1"
    assert cli.json("show", "vm1", "-g", "rg2")["id"] == two["id"]
    assigned = cli.json("assign", two["id"])
    state = load(isolated_state)
    assert state.resources[two["id"].lower()].system_principal_id == assigned["systemAssignedIdentity"]
    assert state.resources[one["id"].lower()].system_principal_id is None
    cli.ok("delete", one["id"], "--yes")
    assert list(load(isolated_state).resources) == [two["id"].lower()]


def test_ambiguous_user_identity_name(cli, isolated_state):
    a = cli.json("create-identity", "id1", "-g", "rg1")
    b = cli.json("create-identity", "id1", "-g", "rg2")
    cli.ok("create-resource", "vm1", "--type", "vm")
    before = isolated_state.read_bytes()
    line = fails(cli("assign", "vm1", "--user-assigned", "id1"), 2, "matches 2 user-assigned identities", "full id")
    assert a["id"] in line and b["id"] in line
    assert isolated_state.read_bytes() == before
    cli.ok("assign", "vm1", "--user-assigned", b["id"])
    assert next(iter(load(isolated_state).resources.values())).user_identity_ids == [b["id"]]


def test_resource_and_identity_with_same_name_are_ambiguous_for_delete(cli, isolated_state):
    res = cli.json("create-resource", "thing1", "--type", "vm")
    ident = cli.json("create-identity", "thing1")
    before = isolated_state.read_bytes()
    line = fails(cli("delete", "thing1", "--yes"), 2)
    assert res["id"] in line and ident["id"] in line
    assert isolated_state.read_bytes() == before


MISSING_ID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/x/providers/Microsoft.Compute/virtualMachines/nope"
MISSING_GUID = "11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("show", "nope"), "'nope'"),
        (("show", MISSING_ID), MISSING_ID),
        (("show", MISSING_GUID), MISSING_GUID),
        (("delete", "nope", "--yes"), "'nope'"),
        (("assign", "nope"), "'nope'"),
        (("unassign", "nope", "--system-assigned"), "'nope'"),
        (("assign", "vm1", "--user-assigned", "nope"), "'nope'"),
        (("create-resource", "vm2", "--type", "vm", "--user-assigned", "nope"), "'nope'"),
        (("create-resource", "vm2", "--type", "vm", "--subscription", "nope"), "'nope'"),
        (("create-identity", "id2", "--subscription", "nope"), "'nope'"),
    ],
)
def test_unknown_targets_exit_3(cli, isolated_state, args, named):
    cli.ok("create-resource", "vm1", "--type", "vm")
    before = isolated_state.read_bytes()
    fails(cli(*args), 3, named)
    assert isolated_state.read_bytes() == before
    assert len(load(isolated_state).resources) == 1


# ---- tenants ---------------------------------------------------------------------------------------


def test_user_identity_from_another_tenant_cannot_be_assigned(cli, isolated_state):
    cli.ok("create-tenant", "Contoso")
    cli.ok("create-subscription", "contoso-sub", "--tenant", "Contoso")
    foreign = cli.json("create-identity", "foreign-id", "--subscription", "contoso-sub")
    cli.ok("create-resource", "vm1", "--type", "vm")
    before = isolated_state.read_bytes()
    fails(cli("assign", "vm1", "--user-assigned", foreign["id"]), 1, "across tenants")
    fails(cli("create-resource", "vm2", "--type", "vm", "--user-assigned", "foreign-id"), 1, "across tenants")
    assert isolated_state.read_bytes() == before
    state = load(isolated_state)
    assert len(state.resources) == 1
    assert next(iter(state.resources.values())).user_identity_ids == []
    # within its own tenant the identity can be assigned
    res = cli.json("create-resource", "vm3", "--type", "vm", "--subscription", "contoso-sub", "--user-assigned", "foreign-id")
    assert list(res["identity"]["userAssignedIdentities"]) == [foreign["id"]]


def test_system_identity_lives_in_the_subscriptions_tenant(cli, isolated_state):
    tenant = cli.json("create-tenant", "Contoso")
    cli.ok("create-subscription", "contoso-sub", "--tenant", "Contoso")
    res = cli.json("create-resource", "vm1", "--type", "vm", "--subscription", "contoso-sub", "--system-assigned")
    assert res["identity"]["tenantId"] == tenant["tenantId"]
    pid = res["identity"]["principalId"]
    state = load(isolated_state)
    assert state.principals[pid].tenant_id == tenant["tenantId"]


# ---- resource types without identity support -------------------------------------------------------


def test_keyvault_has_no_identity_support(cli, isolated_state):
    kv = succeeds_json(cli("create-resource", "kv-01", "--type", "keyvault", "-o", "json"))
    assert kv["type"] == "Microsoft.KeyVault/vaults"
    assert "identity" not in kv or kv["identity"] == {"type": "None"}
    before = isolated_state.read_bytes()
    fails(cli("assign", "kv-01"), 1, "does not support managed identities")
    cli.ok("create-identity", "id1")
    after_identity = isolated_state.read_bytes()
    fails(cli("assign", "kv-01", "--user-assigned", "id1"), 1, "does not support managed identities")
    fails(cli("create-resource", "kv-02", "--type", "keyvault", "--system-assigned"), 1, "does not support managed identities")
    assert isolated_state.read_bytes() == after_identity != before
    state = load(isolated_state)
    assert len(state.resources) == 1
    assert all(i.kind == "UserAssigned" for i in state.identities.values())


# ---- JSON shapes -----------------------------------------------------------------------------------

RESOURCE_TYPES = {
    "vm": ("Microsoft.Compute/virtualMachines", None),
    "vmss": ("Microsoft.Compute/virtualMachineScaleSets", None),
    "webapp": ("Microsoft.Web/sites", "app"),
    "functionapp": ("Microsoft.Web/sites", "functionapp"),
    "containerapp": ("Microsoft.App/containerApps", None),
    "storage": ("Microsoft.Storage/storageAccounts", None),
    "keyvault": ("Microsoft.KeyVault/vaults", None),
}


@pytest.mark.parametrize("type_key", sorted(RESOURCE_TYPES))
def test_resource_shape_per_type(cli, isolated_state, type_key):
    arm_type, kind = RESOURCE_TYPES[type_key]
    data = cli.json("create-resource", "res01", "--type", type_key, "-g", "rg1", "--location", "westeurope")
    _, sub_id = default_ids(cli)
    assert data["id"] == f"/subscriptions/{sub_id}/resourceGroups/rg1/providers/{arm_type}/res01"
    assert data["name"] == "res01"
    assert data["type"] == arm_type
    if kind is None:
        assert "kind" not in data
    else:
        assert data["kind"] == kind
    assert data["resourceGroup"] == "rg1"
    assert data["subscriptionId"] == sub_id
    assert data["location"] == "westeurope"
    assert data.get("identity", {"type": "None"}) == {"type": "None"}
    expected_order = ["id", "name", "type"] + (["kind"] if kind else []) + ["resourceGroup", "subscriptionId", "location"]
    assert in_order(list(data), expected_order)
    assert cli.json("show", "res01") == data
    assert cli.json("list", "resources") == [data]


def test_resource_identity_block_shapes(cli, isolated_state):
    ident = cli.json("create-identity", "id1")
    tenant_id, _ = default_ids(cli)
    both = cli.json("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "id1")
    block = both["identity"]
    assert list(block) == ["type", "principalId", "tenantId", "userAssignedIdentities"]
    assert block["type"] == "SystemAssigned, UserAssigned"
    assert block["tenantId"] == tenant_id
    assert block["userAssignedIdentities"] == {ident["id"]: {"principalId": ident["principalId"], "clientId": ident["clientId"]}}
    assert in_order(list(both), ["id", "name", "type", "resourceGroup", "subscriptionId", "location", "identity"])
    user_only = cli.json("create-resource", "vm2", "--type", "vm", "--user-assigned", "id1")["identity"]
    assert user_only["type"] == "UserAssigned"
    assert "principalId" not in user_only and "tenantId" not in user_only
    system_only = cli.json("create-resource", "vm3", "--type", "vm", "--system-assigned")["identity"]
    assert list(system_only) == ["type", "principalId", "tenantId"]


def test_principal_shape(cli, isolated_state):
    res = cli.json("create-resource", "web1", "--type", "webapp", "--system-assigned")
    pid = res["identity"]["principalId"]
    state = load(isolated_state)
    client_id = state.identities[pid].client_id
    result = cli("show", pid, "-o", "json")
    data = succeeds_json(result)
    assert data["id"] == pid
    assert data["appId"] == client_id
    assert data["displayName"] == "web1"
    assert data["servicePrincipalType"] == "ManagedIdentity"
    assert data["alternativeNames"] == ["isExplicit=False", res["id"]]
    assert len(data["keyCredentials"]) == 1
    cred = data["keyCredentials"][0]
    assert cred["type"] == "AsymmetricX509Cert"
    assert cred["usage"] == "Verify"
    assert re.fullmatch(r"[0-9A-F]{40}", cred["customKeyIdentifier"])
    assert ISO.fullmatch(cred["startDateTime"]) and ISO.fullmatch(cred["endDateTime"])
    assert cred["startDateTime"] < cred["endDateTime"]
    # never key material: no key, no certificate body, in any field
    assert not {"key", "value", "privateKey", "certificate"} & set(cred)
    assert "BEGIN" not in result.stdout and "PRIVATE" not in result.stdout
    for value in cred.values():
        assert len(str(value)) < 100
    # the same principal by its app id, and in the listing
    assert cli.json("show", client_id) == data
    assert cli.json("list", "principals") == [data]
    # the thumbprint names the certificate in the key store
    keys = isolated_state.parent / (isolated_state.name + ".d") / "keys"
    assert (keys / f"{cred['customKeyIdentifier']}.pem").exists()


def test_tenant_and_subscription_shapes(cli, isolated_state):
    tenant = cli.json("create-tenant", "Contoso")
    assert in_order(list(tenant), ["tenantId", "displayName"])
    assert is_guid(tenant["tenantId"]) and tenant["displayName"] == "Contoso"
    sub = cli.json("create-subscription", "prod", "--tenant", "Contoso")
    assert in_order(list(sub), ["id", "name", "tenantId", "isDefault"])
    assert is_guid(sub["id"]) and sub["name"] == "prod" and sub["tenantId"] == tenant["tenantId"]
    assert cli.json("show", tenant["tenantId"]) == tenant
    assert cli.json("show", sub["id"]) == sub


def test_guids_everywhere(cli, isolated_state):
    cli.ok("create-tenant", "Contoso")
    cli.ok("create-subscription", "prod", "--tenant", "Contoso")
    cli.ok("create-identity", "id1")
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "id1")
    state = load(isolated_state)
    for t in state.tenants.values():
        assert is_guid(t.id)
    for s in state.subscriptions.values():
        assert is_guid(s.id) and is_guid(s.tenant_id)
    for i in state.identities.values():
        assert is_guid(i.principal_id) and is_guid(i.client_id) and is_guid(i.tenant_id)
    for sp in state.principals.values():
        assert is_guid(sp.id) and is_guid(sp.app_id)
        assert all(is_guid(c.key_id) for c in sp.key_credentials)
    for r in cli.json("list", "resources"):
        assert is_guid(r["subscriptionId"])
        assert is_guid(r["identity"]["principalId"]) and is_guid(r["identity"]["tenantId"])
        for user in r["identity"]["userAssignedIdentities"].values():
            assert is_guid(user["principalId"]) and is_guid(user["clientId"])
    ids = [i.principal_id for i in state.identities.values()] + [i.client_id for i in state.identities.values()]
    ids += list(state.tenants) + list(state.subscriptions)
    assert len(ids) == len(set(ids))


# ---- output formats --------------------------------------------------------------------------------


def test_output_tsv(cli, isolated_state):
    ident = cli.json("create-identity", "id1")
    result = cli("show", "id1", "-o", "tsv")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1  # one row, no header
    cells = result.stdout.rstrip("\n").split("\t")
    assert sorted(cells) == sorted(ident.values())  # every value, no keys
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "id1")
    cli.ok("create-resource", "vm2", "--type", "vm")
    resources = cli.json("list", "resources")
    listing = cli("list", "resources", "-o", "tsv")
    assert listing.exit_code == 0 and listing.stderr == ""
    rows = listing.stdout.splitlines()
    assert len(rows) == 2
    for row, res in zip(rows, resources):
        cells = row.split("\t")
        scalars = [v for v in res.values() if not isinstance(v, (dict, list))]
        assert all(str(v) in cells for v in scalars), (row, scalars)
        assert "{" not in row and "principalId" not in row  # nested values are not expanded, as in az
    assert len(set(len(r.split("\t")) for r in rows)) == 1  # the columns line up


def test_output_none_prints_nothing_but_acts(cli, isolated_state):
    result = cli("create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    state = load(isolated_state)
    assert len(state.resources) == 1 and len(state.identities) == 1


def test_output_table_is_the_default(cli, isolated_state):
    result = cli("create-resource", "vm1", "--type", "vm")
    assert result.exit_code == 0 and result.stderr == ""
    assert "vm1" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_msi_output_env_var(cli, isolated_state, monkeypatch):
    monkeypatch.setenv("MSI_OUTPUT", "json")
    result = cli("create-resource", "vm1", "--type", "vm")
    data = succeeds_json(result)
    assert data["name"] == "vm1"
    # an explicit option wins over the variable
    tsv = cli("show", "vm1", "-o", "tsv")
    assert tsv.exit_code == 0 and "vm1" in tsv.stdout.rstrip("\n").split("\t")
    with pytest.raises(json.JSONDecodeError):
        json.loads(tsv.stdout)
    monkeypatch.setenv("MSI_OUTPUT", "none")
    quiet = cli("create-resource", "vm2", "--type", "vm")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert len(load(isolated_state).resources) == 2


def test_state_option_beats_msi_state(cli, isolated_state, tmp_path):
    other = tmp_path / "elsewhere" / "other.toml"
    result = cli("--state", str(other), "--create", "create-resource", "vm1", "--type", "vm", "-o", "none")  # a new folder: --create
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert other.exists()
    assert not isolated_state.exists()
    assert len(StateFile(other).read().resources) == 1
    # without the option, MSI_STATE is used again
    assert cli.json("list", "resources") == []
    assert isolated_state.exists()
    shown = succeeds_json(cli("--state", str(other), "show", "vm1", "-o", "json"))
    assert shown["name"] == "vm1"


# ---- usage errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("create-resource", "vm1", "--type", "vm", "--bogus"),
        ("create-resource", "vm1", "--type", "mainframe"),
        ("create-resource", "vm1"),
        ("show", "vm1", "-o", "xml"),
        ("no-such-command",),
    ],
)
def test_usage_errors_exit_2_with_one_line(cli, isolated_state, args):
    cli.ok("create-identity", "seed-id")
    before = isolated_state.read_bytes()
    fails(cli(*args), 2)
    assert isolated_state.read_bytes() == before
