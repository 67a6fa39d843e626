"""`msi import az`: the JSON az prints (samples in tests/data/az, in az's shapes and quirks)
recreates the estate: same names, ids, tenants, subscriptions and principal ids."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

from conftest import REPO, fails

AZ = REPO / "tests" / "data" / "az"
CONTOSO_SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
CONTOSO_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def test_import_recreates_the_estate_with_its_real_ids(cli, isolated_state: Path) -> None:
    result = cli.json("import", "az", str(AZ))
    kinds = sorted(f["kind"] for f in result["import"]["files"])
    assert kinds == ["az account list", "az group list", "az identity list", "az resource list", "az role assignment list",
                     "az vm list", "az webapp list"]
    subs = {s["name"]: s for s in cli.json("list", "subscriptions")}
    assert subs["Contoso Production"]["id"] == CONTOSO_SUB
    assert subs["Contoso Production"]["tenantId"] == CONTOSO_TENANT
    tenants = {t["displayName"]: t["tenantId"] for t in cli.json("list", "tenants")}
    assert tenants["Fabrikam"] == "a1b2c3d4-0000-4000-8000-0000000000fb"
    vm = cli.json("show", "orders-worker")
    vms = json.loads((AZ / "vms.json").read_text())
    assert vm["id"].lower() == vms[0]["id"].lower()
    assert vm["identity"]["principalId"] == vms[0]["identity"]["principalId"]
    uai_id = next(iter(vms[0]["identity"]["userAssignedIdentities"]))  # lower-case resourcegroups, as az prints it
    attached = {k.lower(): v for k, v in vm["identity"]["userAssignedIdentities"].items()}
    assert attached[uai_id.lower()] == vms[0]["identity"]["userAssignedIdentities"][uai_id]
    api = cli.json("show", "orders-api")
    assert api["kind"] == "app" and api["location"] == "westeurope"  # az webapp list printed "West Europe"
    assert cli.json("show", "orders-jobs")["kind"] == "functionapp"
    # role assignments: the managed identities' ones, with their ids, at the same scopes
    assignments = {a["name"]: a for a in cli.json("list", "role-assignments")}
    assert set(assignments) == {"2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091", "3c4d5e6f-7081-4923-8b4c-5d6e7f809102",
                                "92031425-3647-4f89-a102-132435465768"}
    # mixed case: the principal id in upper case still found its identity
    assert assignments["3c4d5e6f-7081-4923-8b4c-5d6e7f809102"]["principalId"] == "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    assert cli.json("check-access", "orders-api", "--scope", "orders-kv", "--role", "Key Vault Secrets User")["allowed"] is True
    token = cli.json("token", "orders-api", "--audience", "https://vault.azure.net")
    claims = cli.json("verify", token["access_token"], "--audience", "https://vault.azure.net")["claims"]
    assert claims["oid"] == "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a" and claims["tid"] == CONTOSO_TENANT
    report = result["import"]
    assert all(p["kept"] for p in report["principals"].values()) and len(report["principals"]) == 4
    # what msi does not model: kept plainly, or reported; never a crash
    assert {p["type"] for p in report["plainResources"]} == {"Microsoft.Sql/servers", "microsoft.insights/components"}
    assert cli.json("show", "orders-sql")["type"] == "Microsoft.Sql/servers"
    reasons = " | ".join(s["reason"] for s in report["skipped"])
    for fragment in ("principal type User", "principal type Group", "'Orders Deployer'", "managementGroups", "child resource"):
        assert fragment in reasons
    # importing again changes nothing
    before = isolated_state.read_bytes()
    again = cli.json("import", "az", str(AZ))
    assert again["changes"] == [] and isolated_state.read_bytes() == before


def test_files_are_recognised_by_content_whatever_their_names(cli, tmp_path: Path) -> None:
    for n, path in enumerate(sorted(AZ.glob("*.json"))):
        shutil.copy(path, tmp_path / f"dump{n}.json")
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    result = cli.json("import", "az", *sorted(str(p) for p in tmp_path.iterdir()), "--what-if")
    assert result["summary"]["create"] == 19
    assert any(s["item"].endswith("notes.json") for s in result["import"]["skipped"])


def test_the_imported_estate_rehearses_its_tenant_move(cli) -> None:
    cli.ok("import", "az", str(AZ))
    rehearsal = cli.json("move-subscription", "Contoso Production", "--tenant", "Fabrikam", "--what-if")
    assert len(rehearsal["deletedRoleAssignments"]) == 3
    assert {b["name"] for b in rehearsal["brokenIdentities"]} == {"orders-worker", "orders-api", "orders-worker-id"}
    worker_id = next(b for b in rehearsal["brokenIdentities"] if b["name"] == "orders-worker-id")
    assert len(worker_id["usedBy"]) == 2  # the VM and the function app


def test_invalid_json_names_its_file_and_line_and_changes_nothing(cli, tmp_path: Path, isolated_state: Path) -> None:
    cli.ok("create-resource", "web1", "--type", "webapp")
    before = isolated_state.read_bytes()
    bad = tmp_path / "roles.json"
    bad.write_text('[\n  {"id": "x",\n  "name": }\n]\n')
    fails(cli("import", "az", str(AZ / "accounts.json"), str(bad)), 2, f"{bad}, line 3", "not valid JSON")
    assert isolated_state.read_bytes() == before
    fails(cli("import", "az", str(tmp_path / "nothing.json")), 3, "no such file")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # as `msi apply` refuses it: one error line, not a crash
    fails(cli("import", "az", str(deep)), 2, f"{deep}: not valid JSON: nested too deeply")
    assert isolated_state.read_bytes() == before


def test_ids_taken_already_are_reported_with_the_ids_they_got(cli, tmp_path: Path) -> None:
    cli.ok("import", "az", str(AZ / "accounts.json"), str(AZ / "webapps.json"))
    # a second estate claims the same principal id for another app: it gets a new one, reported
    webapps = json.loads((AZ / "webapps.json").read_text())
    clash = dict(webapps[0], id=webapps[0]["id"].replace("orders-api", "orders-api2"), name="orders-api2")
    (tmp_path / "more.json").write_text(json.dumps([clash]))
    result = cli.json("import", "az", str(AZ / "accounts.json"), str(tmp_path / "more.json"))
    real = webapps[0]["identity"]["principalId"]
    new = cli.json("show", "orders-api2")["identity"]["principalId"]
    assert new != real and result["remapped"] == {real: new}
    assert result["import"]["principals"][real]["simulatedPrincipalId"] == new
    assert result["import"]["principals"][real]["kept"] is False


def test_a_later_import_refers_to_the_subscriptions_an_earlier_one_made(cli) -> None:
    """Files imported one at a time: a resource list without its `az account list` lands in the
    subscription (and tenant) imported before, by id, instead of a new one named by the id."""
    cli.ok("import", "az", str(AZ / "accounts.json"), "-o", "none")
    subs = {s["id"]: s["name"] for s in cli.json("list", "subscriptions")}
    tenants = len(cli.json("list", "tenants"))
    cli.ok("import", "az", str(AZ / "vms.json"), "-o", "none")
    assert {s["id"]: s["name"] for s in cli.json("list", "subscriptions")} == subs
    assert len(cli.json("list", "tenants")) == tenants
    vm = json.loads((AZ / "vms.json").read_text())[0]
    assert cli.json("show", vm["name"])["id"].lower() == vm["id"].lower()


# ---- files imported one at a time, in any order, agree with importing them together ---------------------


def _sample(folder: Path) -> Path:
    from msi_cli.cli.demo_estate import SAMPLE

    folder.mkdir(parents=True, exist_ok=True)
    for name, data in SAMPLE.items():
        (folder / name).write_text(json.dumps(data, indent=2))
    return folder


def _directory(cli) -> tuple[set, set]:
    """The subscriptions and tenants, but a fresh state's own (their ids are random)."""
    subs = {(s["id"], s["name"], s["tenantId"]) for s in cli.json("list", "subscriptions") if s["name"] != "default"}
    tenants = {(t["tenantId"], t["displayName"]) for t in cli.json("list", "tenants") if t["displayName"] != "Default Directory"}
    return subs, tenants


def _account(sub: str, name: str, tenant: str, tenant_name: str) -> dict:
    return {"cloudName": "AzureCloud", "homeTenantId": tenant, "id": sub, "isDefault": False, "managedByTenants": [], "name": name,
            "state": "Enabled", "tenantDisplayName": tenant_name, "tenantId": tenant, "user": {"name": "me@example.com", "type": "user"}}


def test_an_account_entry_names_the_subscription_and_tenant_an_earlier_file_made_by_id(cli, tmp_path: Path, monkeypatch) -> None:
    """identity.json alone makes its subscription named by its id, in a tenant named by its id; the
    account entry imported next gives both their names (same ids: the same objects), and importing
    everything then agrees with an import of everything into a fresh state."""
    from msi_cli.cli.demo_estate import SUB, TENANT

    az = _sample(tmp_path / "az")
    cli.ok("import", "az", str(az / "identity.json"), "-o", "none")
    result = cli.json("import", "az", str(az / "account.json"))
    assert "remapped" not in result
    subs, tenants = _directory(cli)
    assert (SUB, "Shop Production", TENANT) in subs and len([s for s in subs if s[0] == SUB]) == 1
    assert (TENANT, "Contoso") in tenants and not any(name == "Contoso" and tid != TENANT for tid, name in tenants)
    everything = cli.json("import", "az", str(az))
    assert "remapped" not in everything
    one_at_a_time = _directory(cli), cli.json("show", "shop-worker-id")["id"]
    monkeypatch.setenv("MSI_STATE", str(tmp_path / "fresh.toml"))
    cli.ok("import", "az", str(az), "-o", "none")
    assert (_directory(cli), cli.json("show", "shop-worker-id")["id"]) == one_at_a_time
    assert cli.json("import", "az", str(az / "account.json"))["changes"] == []


def test_duplicate_display_names_are_imported_by_id_and_reported(cli, tmp_path: Path) -> None:
    """Azure does not make display names unique ("Pay-As-You-Go" in "Default Directory" are its
    defaults): each account keeps its real subscription and tenant ids, and tokens carry the real tid."""
    t1, t2 = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222"
    s1, s2 = "1111aaaa-0000-4000-8000-000000000001", "2222bbbb-0000-4000-8000-000000000002"
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([_account(s1, "Pay-As-You-Go", t1, "Default Directory"),
                                    _account(s2, "Pay-As-You-Go", t2, "Default Directory")], indent=2))
    app = {"id": f"/subscriptions/{s2}/resourceGroups/web/providers/Microsoft.Web/sites/site2", "kind": "app", "location": "eastus",
           "name": "site2", "type": "Microsoft.Web/sites",
           "identity": {"type": "SystemAssigned", "principalId": "3333cccc-0000-4000-8000-000000000003", "tenantId": t2}}
    (tmp_path / "webapps.json").write_text(json.dumps([app]))
    result = cli.json("import", "az", str(tmp_path))
    assert "remapped" not in result
    subs, tenants = _directory(cli)
    by_id = {sid: (name, tid) for sid, name, tid in subs}
    assert by_id[s1][1] == t1 and by_id[s2][1] == t2
    assert {t[0] for t in tenants} >= {t1, t2}
    names = {tid: name for tid, name in tenants}
    assert "Default Directory" in names[t1] + names[t2] and names[t1] != names[t2]
    assert "Pay-As-You-Go" in by_id[s1][0] and "Pay-As-You-Go" in by_id[s2][0]
    reported = {(d["kind"], d["id"]): d for d in result["import"]["disambiguated"]}
    assert ("tenant", t1) in reported and ("tenant", t2) in reported  # msi's own "Default Directory" holds the name
    assert reported[("tenant", t1)]["azName"] == "Default Directory"
    token = cli.json("token", "site2", "--audience", "https://vault.azure.net")
    assert cli.json("verify", token["access_token"], "--audience", "https://vault.azure.net")["claims"]["tid"] == t2
    assert cli.json("import", "az", str(tmp_path))["changes"] == []  # and again: nothing


def test_one_default_directory_account_keeps_its_real_tenant_id(cli, tmp_path: Path) -> None:
    tid, sid = "44444444-dddd-4ddd-8ddd-444444444444", "4444dddd-0000-4000-8000-000000000004"
    (tmp_path / "a.json").write_text(json.dumps([_account(sid, "Pay-As-You-Go", tid, "Default Directory")]))
    result = cli.json("import", "az", str(tmp_path))
    assert "remapped" not in result
    subs, tenants = _directory(cli)
    assert any(s[0] == sid and s[2] == tid for s in subs)
    assert any(t[0] == tid for t in tenants)


def test_a_subscription_renamed_in_azure_is_renamed_on_import(cli, tmp_path: Path) -> None:
    tid, sid = "55555555-eeee-4eee-8eee-555555555555", "11111111-1111-4111-8111-111111111111"
    account = tmp_path / "account.json"
    account.write_text(json.dumps([_account(sid, "Pay-As-You-Go", tid, "Contoso")]))
    cli.ok("import", "az", str(account), "-o", "none")
    before = _directory(cli)
    account.write_text(json.dumps([_account(sid, "Renamed PAYG", tid, "Contoso Ltd")]))
    result = cli.json("import", "az", str(account))
    assert "remapped" not in result
    assert {(c["action"], c["kind"]) for c in result["changes"]} == {("update", "subscription"), ("update", "tenant")}
    subs, tenants = _directory(cli)
    assert len(subs) == len(before[0]) and (sid, "Renamed PAYG", tid) in subs
    assert len(tenants) == len(before[1]) and (tid, "Contoso Ltd") in tenants
    assert cli.json("import", "az", str(account))["changes"] == []


def _worker_files(folder: Path, vm_file: str, identity_file: str, vm_location: str = "eastus") -> tuple[Path, Path]:
    from msi_cli.cli.demo_estate import SUB

    folder.mkdir(parents=True, exist_ok=True)
    uai = f"/subscriptions/{SUB}/resourcegroups/idrg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-id"
    ids = {"clientId": "6e1d3a1c-8f6b-4b57-a3f1-0c1d2e3f4a5b", "principalId": "6a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}
    vm = {"id": f"/subscriptions/{SUB}/resourceGroups/VM-RG/providers/Microsoft.Compute/virtualMachines/worker", "location": vm_location,
          "name": "worker", "type": "Microsoft.Compute/virtualMachines",
          "identity": {"type": "UserAssigned", "principalId": None, "tenantId": None, "userAssignedIdentities": {
              uai.replace("/resourcegroups/", "/resourceGroups/"): ids}}}
    identity = {"id": uai, "location": "westeurope", "name": "worker-id", "resourceGroup": "idrg", "tags": {},
                "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "type": "Microsoft.ManagedIdentity/userAssignedIdentities", **ids}
    (folder / vm_file).write_text(json.dumps([vm]))
    (folder / identity_file).write_text(json.dumps([identity]))
    return folder / vm_file, folder / identity_file


def test_an_identity_is_where_its_own_entry_says_whatever_the_file_order(cli, tmp_path: Path, monkeypatch) -> None:
    for n, (vm_name, id_name) in enumerate([("a-vms.json", "b-ids.json"), ("b-vms.json", "a-ids.json")]):
        monkeypatch.setenv("MSI_STATE", str(tmp_path / f"together{n}.toml"))
        vm_file, _ = _worker_files(tmp_path / f"together{n}", vm_name, id_name)
        cli.ok("import", "az", str(vm_file.parent), "-o", "none")
        assert cli.json("show", "worker-id")["location"] == "westeurope", vm_name
    # one at a time, the VM first: its block made the identity with a guess, which the identity's entry corrects
    monkeypatch.setenv("MSI_STATE", str(tmp_path / "sequential.toml"))
    vm_file, id_file = _worker_files(tmp_path / "sequential", "vms.json", "ids.json")
    cli.ok("import", "az", str(vm_file), "-o", "none")
    principal = cli.json("show", "worker-id")["principalId"]
    cli.ok("import", "az", str(id_file), "-o", "none")
    shown = cli.json("show", "worker-id")
    assert shown["location"] == "westeurope" and shown["principalId"] == principal
    assert cli.json("import", "az", str(vm_file.parent))["changes"] == []
    cli.ok("import", "az", str(vm_file), "-o", "none")  # the VM's guess never moves it back
    assert cli.json("show", "worker-id")["location"] == "westeurope"
    # the identity first, then the VM: no change of region either
    monkeypatch.setenv("MSI_STATE", str(tmp_path / "reversed.toml"))
    cli.ok("import", "az", str(id_file), "-o", "none")
    cli.ok("import", "az", str(vm_file), "-o", "none")
    assert cli.json("show", "worker-id")["location"] == "westeurope"
    assert any(u.lower().endswith("/worker-id") for u in cli.json("show", "worker")["identity"]["userAssignedIdentities"])


def _guessed(state: Path, collection: str) -> set[str]:
    """The names of the state file's records of `collection` whose location is marked as a guess."""
    return {rec["name"] for rec in tomllib.loads(state.read_text()).get(collection, []) if rec.get("location_guessed")}


def test_an_own_entry_that_confirms_a_guessed_region_settles_it(cli, tmp_path: Path, isolated_state: Path) -> None:
    """The VM's block guessed westeurope and the identity's own entry says westeurope too: the
    guess is settled all the same (a `~` that clears the mark), so the region is fixed from then on,
    as any identity's is."""
    from msi_cli.cli.demo_estate import SUB

    vm_file, id_file = _worker_files(tmp_path / "az", "vms.json", "ids.json", vm_location="westeurope")
    cli.ok("import", "az", str(vm_file), "-o", "none")
    assert _guessed(isolated_state, "identities") == {"worker-id"}
    settled = cli.json("import", "az", str(id_file))["changes"]
    assert [(c["action"], c["kind"]) for c in settled] == [("update", "identity")]
    assert "westeurope" in settled[0]["detail"] and "guess" in settled[0]["detail"]
    assert _guessed(isolated_state, "identities") == set()
    assert cli.json("show", "worker-id")["location"] == "westeurope"
    assert cli.json("import", "az", str(vm_file.parent))["changes"] == []  # importing again changes nothing
    moved = tmp_path / "estate.toml"  # a hand-written file can no longer move it: "A region cannot change"
    moved.write_text(f'[[identities]]\nname = "worker-id"\nsubscription = "{SUB}"\nresource_group = "idrg"\nlocation = "eastus"\n')
    before = isolated_state.read_bytes()
    fails(cli("apply", str(moved), "--what-if"), 1, "estate.toml, line 5", "cannot move to another region")
    fails(cli("apply", str(moved)), 1, "estate.toml, line 5", "cannot move to another region")
    assert isolated_state.read_bytes() == before


def test_a_vm_and_a_web_app_of_one_name_keep_their_own_role_assignments(cli, tmp_path: Path) -> None:
    """Azure lets a VM and a web app share a name in a group: the estate names each by its type."""
    webapp = json.loads((AZ / "webapps.json").read_text())[0]
    vm = json.loads((AZ / "vms.json").read_text())[0]
    vm = dict(vm, id=vm["id"].replace("APP-RG", "app-rg").replace("orders-worker", "orders-api"), name="orders-api",
              identity={"principalId": "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b", "tenantId": CONTOSO_TENANT, "type": "SystemAssigned"})
    roles = json.loads((AZ / "roles.json").read_text())
    by_app = next(r for r in roles if r["principalId"] == webapp["identity"]["principalId"])
    group = by_app["scope"].split("/providers/")[0]  # the group's scope: no other file is needed to hold it
    by_app = dict(by_app, scope=group, id=f"{group}/providers/Microsoft.Authorization/roleAssignments/{by_app['name']}")
    by_vm = dict(by_app, principalId=vm["identity"]["principalId"], roleDefinitionName="Reader",
                 roleDefinitionId=by_app["roleDefinitionId"].rsplit("/", 1)[0] + "/acdd72a7-3385-48ef-bd42-f606fba81ae7",
                 name="0f1e2d3c-4b5a-4968-8776-655443322110",
                 id=f"{group}/providers/Microsoft.Authorization/roleAssignments/0f1e2d3c-4b5a-4968-8776-655443322110")
    (tmp_path / "vm.json").write_text(json.dumps([vm]))
    (tmp_path / "roles.json").write_text(json.dumps([by_app, by_vm]))
    files = [str(AZ / "accounts.json"), str(AZ / "webapps.json"), str(tmp_path / "vm.json"), str(tmp_path / "roles.json")]
    result = cli.json("import", "az", *files)
    assert {p["resource"] for p in result["import"]["principals"].values() if p["kind"] == "SystemAssigned"} >= {
        "Contoso Production/app-rg/webapp:orders-api", "Contoso Production/app-rg/vm:orders-api"}
    held = {a["principalId"]: a["roleDefinitionName"] for a in cli.json("list", "role-assignments")}
    assert held == {webapp["identity"]["principalId"]: "Key Vault Secrets User", vm["identity"]["principalId"]: "Reader"}
    assert cli.json("import", "az", *files)["changes"] == []


def test_a_group_made_where_its_first_member_is_takes_the_region_of_its_own_entry_later(cli, tmp_path: Path, monkeypatch) -> None:
    """idrg holds worker-id (westeurope); only the VM's block (eastus) names it at first, so the
    group is made in eastus, a guess that its own az group list entry settles, once: the files
    imported one at a time agree with the files imported together."""
    from msi_cli.cli.demo_estate import SUB

    vm_file, id_file = _worker_files(tmp_path / "az", "vms.json", "ids.json")
    group_file = tmp_path / "az" / "groups.json"
    group_file.write_text(json.dumps([{"id": f"/subscriptions/{SUB}/resourceGroups/idrg", "location": "westeurope", "name": "idrg",
                                       "properties": {"provisioningState": "Succeeded"}, "tags": None,
                                       "type": "Microsoft.Resources/resourceGroups"}]))

    def group() -> dict:
        return next(g for g in cli.json("list", "groups") if g["name"] == "idrg")

    monkeypatch.setenv("MSI_STATE", str(tmp_path / "together.toml"))
    cli.ok("import", "az", str(group_file.parent), "-o", "none")
    assert group()["location"] == "westeurope"
    state = tmp_path / "sequential.toml"
    monkeypatch.setenv("MSI_STATE", str(state))
    cli.ok("import", "az", str(vm_file), "-o", "none")
    assert group()["location"] == "eastus" and _guessed(state, "resource_groups") == {"idrg", "VM-RG"}
    cli.ok("import", "az", str(id_file), "-o", "none")
    changes = cli.json("import", "az", str(group_file))["changes"]
    assert [(c["action"], c["kind"], c["detail"].split(" (")[0]) for c in changes] == [
        ("update", "resource group", "location eastus -> westeurope")]
    assert group()["location"] == "westeurope" and _guessed(state, "resource_groups") == {"VM-RG"}  # no entry of its own yet
    assert cli.json("import", "az", str(group_file.parent))["changes"] == []
    # settled: its region is fixed from now on, and Azure's refusal reads as one sentence
    moved = tmp_path / "estate.toml"
    moved.write_text(f'[[resource_groups]]\nname = "idrg"\nsubscription = "{SUB}"\nlocation = "eastus"\n')
    line = fails(cli("apply", str(moved)), 1, "estate.toml, line 4", "Invalid resource group location 'eastus'")
    assert line.endswith("already exists in location 'westeurope'; nothing was changed")


def test_an_export_keeps_the_guesses_so_reapplying_it_settles_nothing(cli, tmp_path: Path, isolated_state: Path) -> None:
    """export writes `location_guessed = true` where the state holds a guess: applying the export
    again changes nothing (a region it merely repeats is not settled), an empty state gets the
    marks too, and the identity's own az entry still corrects the guess afterwards."""
    vm_file, id_file = _worker_files(tmp_path / "az", "vms.json", "ids.json")
    cli.ok("import", "az", str(vm_file), "-o", "none")
    guessed = (_guessed(isolated_state, "identities"), _guessed(isolated_state, "resource_groups"))
    assert guessed[0] == {"worker-id"} and guessed[1]
    text = cli.ok("export").stdout
    assert "location_guessed = true" in text
    exported = tmp_path / "export.toml"
    exported.write_text(text)
    assert cli.json("apply", str(exported), "--what-if")["changes"] == []
    assert cli.json("apply", str(exported))["changes"] == []
    assert (_guessed(isolated_state, "identities"), _guessed(isolated_state, "resource_groups")) == guessed
    other = tmp_path / "other" / "state.toml"
    cli.ok("--state", str(other), "--create", "apply", str(exported), "--yes")
    assert (_guessed(other, "identities"), _guessed(other, "resource_groups")) == guessed
    assert cli.ok("--state", str(other), "export").stdout == text
    cli.ok("import", "az", str(id_file), "-o", "none")
    assert cli.json("show", "worker-id")["location"] == "westeurope" and not _guessed(isolated_state, "identities")
