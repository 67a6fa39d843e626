"""`msi apply` and `msi export`: declarative estates, idempotent, all or nothing, line-numbered errors."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, examples, fails

EXAMPLE = REPO / "examples" / "estate.toml"


def test_example_applies_and_reapplying_changes_nothing(cli, isolated_state: Path) -> None:
    plan = cli.json("apply", str(EXAMPLE), "--what-if")
    assert plan["whatIf"] is True and plan["summary"] == {"create": 11, "update": 0, "delete": 0}
    assert not isolated_state.exists() or "contoso-prod" not in isolated_state.read_text()  # what-if changed nothing
    applied = cli.json("apply", str(EXAMPLE))
    assert applied["summary"]["create"] == 11
    app = cli.json("show", "orders-app")
    assert applied["resources"]["orders-app"]["principalId"] == app["identity"]["principalId"]
    ident = cli.json("show", "deploy-id")
    assert applied["identities"]["deploy-id"] == {"id": ident["id"], "principalId": ident["principalId"], "clientId": ident["clientId"],
                                                 "tenantId": ident["tenantId"]}
    before = isolated_state.read_bytes()
    again = cli.json("apply", str(EXAMPLE))
    assert again["changes"] == [] and again["identities"] == applied["identities"]
    assert isolated_state.read_bytes() == before
    table = cli.ok("apply", str(EXAMPLE)).stdout
    assert "no changes" in table
    # the declared grants work
    check = cli.json("check-access", "orders-app", "--scope", "orders-kv", "--role", "Key Vault Secrets User")
    assert check["allowed"] is True
    fics = cli.json("federation", "list", "deploy-id")
    assert [f["subject"] for f in fics] == ["repo:octo-org/app:ref:refs/heads/main"]


def test_a_fresh_state_reuses_its_default_tenant_and_subscription(cli) -> None:
    cli.ok("apply", str(EXAMPLE))
    tenants = cli.json("list", "tenants")
    assert sorted(t["displayName"] for t in tenants) == ["Default Directory", "Fabrikam"]
    subs = cli.json("list", "subscriptions")
    assert sorted(s["name"] for s in subs) == ["contoso-prod", "default"]


def _write(tmp_path: Path, text: str, name: str = "estate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_changes_are_planned_with_tilde_and_prune_deletes_only_when_asked(cli, tmp_path: Path, isolated_state: Path) -> None:
    cli.ok("apply", str(EXAMPLE))
    text = EXAMPLE.read_text()
    reduced = text.replace('user_assigned = ["deploy-id"]', "system_assigned = true")
    reduced = reduced.split("[[role_assignments]]")[0]  # no role assignments any more
    path = _write(tmp_path, reduced)
    plan = cli.json("apply", str(path), "--what-if")
    assert {(c["action"], c["detail"]) for c in plan["changes"]} == {
        ("update", "enable the system-assigned identity"), ("update", "detach deploy-id")}
    assert plan["kept"] == 2  # two role assignments the file no longer names, kept without --prune
    pruned = cli.json("apply", str(path), "--what-if", "--prune")
    deletions = [c for c in pruned["changes"] if c["action"] == "delete"]
    assert [c["kind"] for c in deletions] == ["role assignment", "role assignment"]
    before = isolated_state.read_bytes()
    refused = cli("apply", str(path), "--prune")  # destructive, no terminal to ask on
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: Apply this plan (it deletes or detaches 3 object(s); --what-if lists them)")  # 2 deletions, 1 detachment
    assert isolated_state.read_bytes() == before
    done = cli.json("apply", str(path), "--prune", "--yes")
    assert done["summary"] == {"create": 0, "update": 2, "delete": 2}
    assert cli.json("list", "role-assignments") == []
    vm = cli.json("show", "batch-vm")
    assert vm["identity"]["type"] == "SystemAssigned"
    assert cli.json("apply", str(path), "--prune")["changes"] == []


def test_a_credentials_update_line_names_only_what_changes(cli, tmp_path: Path) -> None:
    cli.ok("apply", str(EXAMPLE))
    text = EXAMPLE.read_text()
    issuer = "https://token.actions.githubusercontent.com"
    assert issuer in text
    plan = cli.json("apply", str(_write(tmp_path, text.replace(issuer, "https://issuer.example.com"))), "--what-if")
    [change] = plan["changes"]
    assert change["detail"] == f"issuer {issuer} -> https://issuer.example.com"


def test_what_if_warns_as_the_apply_would(cli, tmp_path: Path, isolated_state: Path) -> None:
    long = "an-identity-name-of-thirty-chars"
    estate = _write(tmp_path, f'[[identities]]\nname = "{long}"\n\n[[resources]]\nname = "vm1"\ntype = "vm"\n'
                              f'user_assigned = ["{long}"]\n')
    cli.ok("list", "resources")  # the state exists
    before = isolated_state.read_bytes()
    rehearsal = cli("apply", str(estate), "--what-if")
    assert rehearsal.exit_code == 0 and isolated_state.read_bytes() == before
    real = cli("apply", str(estate))
    warning = f"warning: identity name '{long}' is longer than 24 characters"
    assert warning in rehearsal.stderr and warning in real.stderr


def test_prune_deletes_resources_and_identities_the_file_does_not_name(cli, tmp_path: Path) -> None:
    cli.ok("apply", str(EXAMPLE))
    cli.ok("create-resource", "stray", "--type", "vm", "-g", "other", "--system-assigned")
    path = _write(tmp_path, EXAMPLE.read_text())
    plan = cli.json("apply", str(path), "--prune", "--yes")
    gone = {(c["kind"], c["name"]) for c in plan["changes"] if c["action"] == "delete"}
    assert gone == {("resource", "default/other/stray"), ("resource group", "default/other")}
    fails(cli("show", "stray"), 3, "not found")


def test_an_invalid_entry_is_refused_with_its_file_and_line(cli, tmp_path: Path, isolated_state: Path) -> None:
    cli.ok("create-resource", "web1", "--type", "webapp")
    before = isolated_state.read_bytes()
    lines = EXAMPLE.read_text().splitlines()
    bad_at = lines.index('type = "vm"') + 1
    lines[bad_at - 1] = 'type = "mainframe"'
    path = _write(tmp_path, "\n".join(lines) + "\n")
    line = fails(cli("apply", str(path)), 2, f"{path}, line {bad_at}:", "unknown resource type 'mainframe'")
    assert "nothing was changed" in line
    assert isolated_state.read_bytes() == before
    # a reference to an identity the file does not declare: the line of the entry's key
    lines = EXAMPLE.read_text().splitlines()
    ref_at = lines.index('user_assigned = ["deploy-id"]') + 1
    lines[ref_at - 1] = 'user_assigned = ["nobody"]'
    path = _write(tmp_path, "\n".join(lines) + "\n")
    fails(cli("apply", str(path)), 2, f"line {ref_at}:", "user-assigned identity 'nobody' is not declared")
    # a later failure inside the core (the subscription exists, holding something, in another tenant) leaves the state untouched too
    cli.ok("create-tenant", "Other")
    cli.ok("create-subscription", "contoso-prod", "--tenant", "Other")
    cli.ok("create-identity", "held-id", "--subscription", "contoso-prod")
    before = isolated_state.read_bytes()
    sub_at = EXAMPLE.read_text().splitlines().index("[[subscriptions]]") + 1
    fails(cli("apply", str(EXAMPLE)), 1, f"line {sub_at}:", "move-subscription")
    assert isolated_state.read_bytes() == before


def test_unknown_keys_and_bad_toml_name_their_line(cli, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[resources]]\nname = "web1"\ntype = "webapp"\nsystem_asigned = true\n')
    fails(cli("apply", str(path)), 2, "line 4:", "unknown key 'system_asigned'")
    path = _write(tmp_path, '[[resources]]\nname = "web1"\ntype = webapp\n')
    fails(cli("apply", str(path)), 2, "not valid TOML", "line 3")
    fails(cli("apply", str(tmp_path / "missing.toml")), 3, "no such file")


def test_json_estates_apply_and_name_their_lines(cli, tmp_path: Path) -> None:
    doc = {"resources": [{"name": "web1", "type": "webapp", "system_assigned": True},
                         {"name": "vm1", "type": "vm", "user_assigned": ["ghost"]}]}
    text = json.dumps(doc, indent=2)
    path = _write(tmp_path, text, "estate.json")
    ghost_line = text.splitlines().index('        "ghost"') + 1
    line = fails(cli("apply", str(path)), 2, f"{path}, line")
    assert int(line.split("line ")[1].split(":")[0]) in (ghost_line, ghost_line - 1)
    doc["resources"][1]["user_assigned"] = []
    path.write_text(json.dumps(doc))
    assert cli.json("apply", str(path))["resources"]["web1"]["principalId"]
    fails(cli("apply", str(_write(tmp_path, '{"resources": [', "x.json"))), 2, "not valid JSON", "line 1")


def test_the_schema_is_shipped_and_describes_every_section(cli) -> None:
    schema = json.loads(cli.ok("apply", "--schema").stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {"$schema", "format", "tenants", "subscriptions", "resource_groups", "identities", "resources",
                                         "role_assignments"}
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"msi_cli.core.estate" = ["*.json"]' in pyproject


def test_export_writes_no_ids_and_json_on_request(cli) -> None:
    applied = cli.json("apply", str(EXAMPLE))
    text = cli.ok("export").stdout
    for ids in applied["identities"].values():
        assert ids["principalId"] not in text and ids["clientId"] not in text
    import re

    assert "-----BEGIN" not in text and not re.search(r"[0-9A-Fa-f]{40}", text)  # no key material, no thumbprints
    doc = json.loads(cli.ok("export", "--format", "json").stdout)
    assert doc["format"] == "msi-estate" and {r["name"] for r in doc["resources"]} == {"orders-kv", "orders-app", "batch-vm"}


def test_a_subscription_named_with_a_slash_exports_its_id_for_the_scopes_in_it(cli, tmp_path: Path) -> None:
    """Its name cannot stand in a scope, so the scope names it by id: export writes that id, and
    the file applies to an empty state, which then exports the same file."""
    cli.ok("create-subscription", "team/prod")
    cli.ok("create-resource", "app-x", "--type", "webapp", "--subscription", "team/prod", "--system-assigned")
    sub = next(s["id"] for s in cli.json("list", "subscriptions") if s["name"] == "team/prod")
    cli.ok("grant", "app-x", "--role", "Reader", "--scope", f"/subscriptions/{sub}")
    text = cli.ok("export").stdout
    estate = _write(tmp_path, text)
    other = str(tmp_path / "other" / "state.toml")
    cli.ok("--state", other, "--create", "apply", str(estate), "--yes")
    assert cli.ok("--state", other, "export").stdout == text
    assert [a["scope"] for a in cli.json("--state", other, "list", "role-assignments")] == [f"/subscriptions/{sub}"]


# ---- round trip, property-based ---------------------------------------------------------------------------

NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta"])
GROUPS = st.sampled_from(["rg-a", "rg-b"])
ROLES = st.sampled_from(["Reader", "Contributor", "Key Vault Secrets User", "Storage Blob Data Reader"])


@st.composite
def estates(draw: st.DrawFn) -> dict:
    subs = draw(st.lists(st.sampled_from(["default", "prod", "dev"]), min_size=1, max_size=2, unique=True))
    tenants = ["Default Directory"] + (["Fabrikam"] if draw(st.booleans()) else [])
    doc: dict = {"tenants": [{"name": t} for t in tenants],
                 "subscriptions": [{"name": s, "tenant": "Default Directory" if s == "default" else draw(st.sampled_from(tenants))} for s in subs]}
    idents = []
    for name in draw(st.lists(NAMES, max_size=3, unique=True)):
        rec = {"name": f"id-{name}", "subscription": draw(st.sampled_from(subs)), "resource_group": draw(GROUPS)}
        if draw(st.booleans()):
            rec["federated_credentials"] = [{"name": "gh-main", "issuer": "https://token.actions.githubusercontent.com",
                                             "subject": f"repo:o/{name}:ref:refs/heads/main"}]
        idents.append(rec)
    doc["identities"] = idents
    tenant_of = {s["name"]: s["tenant"] for s in doc["subscriptions"]}
    resources = []
    # few names, so that resources of different types often share one (Azure allows it in a group)
    kinds = st.sampled_from(["vm", "webapp", "keyvault", "storage", "Microsoft.Sql/servers"])
    for name, kind in draw(st.lists(st.tuples(st.sampled_from(["alpha", "beta"]), kinds), max_size=4, unique=True)):
        sub = draw(st.sampled_from(subs))
        rec = {"name": f"r{name}", "type": kind, "subscription": sub, "resource_group": draw(GROUPS)}
        if kind in ("vm", "webapp", "storage"):
            rec["system_assigned"] = draw(st.booleans())
            same_tenant = [f"{i['subscription']}/{i['resource_group']}/{i['name']}" for i in idents if tenant_of[i["subscription"]] == tenant_of[sub]]
            if same_tenant:
                rec["user_assigned"] = draw(st.lists(st.sampled_from(same_tenant), max_size=2, unique=True))
        resources.append(rec)
    with_system = [r for r in resources if r.get("system_assigned")]
    if with_system and draw(st.booleans()):  # often a twin: same subscription, group and name, another type
        twin = draw(st.sampled_from(with_system))
        where = (twin["subscription"], twin["resource_group"], twin["name"])
        taken = {r["type"] for r in resources if (r["subscription"], r["resource_group"], r["name"]) == where}
        free = [k for k in ("vm", "webapp", "storage") if k not in taken]
        if free:
            resources.append({**twin, "type": draw(st.sampled_from(free))})
    doc["resources"] = resources
    grants = []
    principals = [("identity", f"{i['subscription']}/{i['resource_group']}/{i['name']}", i["subscription"]) for i in idents]
    system = [r for r in resources if r.get("system_assigned")]
    for r in system:
        where = f"{r['subscription']}/{r['resource_group']}"
        shared = sum(f"{o['subscription']}/{o['resource_group']}/{o['name']}" == f"{where}/{r['name']}" for o in system) > 1
        # the type names it when the name is not enough, and may name it anyway
        ref = f"{where}/{r['type']}:{r['name']}" if shared or draw(st.booleans()) else f"{where}/{r['name']}"
        principals.append(("resource", ref, r["subscription"]))
    for kind, ref, sub in draw(st.lists(st.sampled_from(principals), max_size=4)) if principals else []:
        targets = [f"/subscriptions/{sub}", f"/subscriptions/{sub}/resourceGroups/rg-a"]
        targets += [f"/subscriptions/{sub}/resourceGroups/{r['resource_group']}/providers/{_arm(r['type'])}/{r['name']}"
                    for r in resources if r["subscription"] == sub]
        grants.append({"role": draw(ROLES), "scope": draw(st.sampled_from(targets)), kind: ref})
    unique = {json.dumps(g, sort_keys=True): g for g in grants}
    doc["role_assignments"] = list(unique.values())
    return doc


def _arm(kind: str) -> str:
    from msi_cli.core import arm

    return arm.RESOURCE_TYPES[kind].arm_type


def _apply_and_export(state_path: Path, doc: dict) -> tuple[dict, dict]:
    from msi_cli.core.estate import apply as applying
    from msi_cli.core.estate import plan as planning
    from msi_cli.core.estate.export import export
    from msi_cli.core.estate.schema import parse
    from msi_cli.store.statefile import StateFile

    sf = StateFile(state_path)
    estate = parse(json.dumps(doc), "estate.json")
    with sf.transaction() as ctx:
        plan = planning.make(estate, ctx.state)
        applying.apply(ctx, plan)
    return export(sf.read()), plan.counts()


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=estates())
def test_round_trip_export_apply_export_is_equal(doc: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first, _ = _apply_and_export(Path(tmp) / "a" / "state.toml", doc)
        second, _ = _apply_and_export(Path(tmp) / "b" / "state.toml", first)
        assert second == first
        again, counts = _apply_and_export(Path(tmp) / "b" / "state.toml", first)
        assert counts == {"create": 0, "update": 0, "delete": 0} and again == first
        assert len(first.get("role_assignments", [])) == len(doc["role_assignments"])
        assert len(first.get("resources", [])) == len(doc["resources"])


def test_the_schema_names_exactly_the_keys_the_reader_accepts(cli) -> None:
    from msi_cli.core.estate import schema as reader

    doc = json.loads(cli.ok("apply", "--schema").stdout)
    props = doc["properties"]
    pairs = {"tenants": reader.TENANT_KEYS, "subscriptions": reader.SUBSCRIPTION_KEYS, "resource_groups": reader.GROUP_KEYS,
             "identities": reader.IDENTITY_KEYS, "resources": reader.RESOURCE_KEYS, "role_assignments": reader.ASSIGNMENT_KEYS}
    for section, keys in pairs.items():
        assert set(props[section]["items"]["properties"]) == set(keys), section
    creds = props["identities"]["items"]["properties"]["federated_credentials"]["items"]["properties"]
    assert set(creds) == set(reader.CREDENTIAL_KEYS)
    assert set(props) == {*reader.TOP_KEYS, *reader.JSON_TOP_KEYS}


def test_a_nested_federated_credential_is_reported_at_its_own_line(cli, tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    at = lines.index('name = "app-main"') + 1
    lines[at - 1] = 'name = "x"'
    path = _write(tmp_path, "\n".join(lines) + "\n")
    fails(cli("apply", str(path)), 2, f"line {at}:", "invalid federated identity credential name 'x'")


def test_installed_msi_applies_exports_and_reapplies_the_example(msi_proc, tmp_path: Path) -> None:
    first = msi_proc("apply", str(EXAMPLE), "-o", "json")
    assert first.returncode == 0, first.stderr
    ids = json.loads(first.stdout)["identities"]["deploy-id"]
    exported = msi_proc("export")
    assert exported.returncode == 0 and ids["principalId"] not in exported.stdout
    fresh = {"MSI_STATE": str(tmp_path / "fresh" / "state.toml")}
    applied = msi_proc("apply", "-", "-o", "json", input=exported.stdout, env=fresh)
    assert applied.returncode == 0, applied.stderr
    assert msi_proc("export", env=fresh).stdout == exported.stdout
    assert json.loads(msi_proc("apply", "-", "-o", "json", input=exported.stdout, env=fresh).stdout)["changes"] == []
    schema = msi_proc("apply", "--schema")
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "msi estate"


def test_pruning_an_identity_a_kept_resource_drops_leaves_nothing_dangling(cli, tmp_path: Path) -> None:
    cli.ok("apply", str(EXAMPLE))
    text = EXAMPLE.read_text().split("[[role_assignments]]")[0]
    start = text.index("[[identities]]")
    text = text[:start] + text[text.index("[[resources]]"):]  # no identities any more
    text = text.replace('user_assigned = ["deploy-id"]', "")
    result = cli("apply", str(_write(tmp_path, text)), "--prune", "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr  # detached first, then deleted: no dangling entry
    vm = cli.json("show", "batch-vm")
    assert vm.get("identity", {}).get("type", "None") == "None"
    fails(cli("show", "deploy-id"), 3, "not found")


@pytest.mark.parametrize("case", ["grant across tenants", "21 federated credentials", "one issuer and subject twice"])
def test_what_if_refuses_what_the_apply_refuses_and_writes_nothing(cli, tmp_path: Path, isolated_state: Path, case: str) -> None:
    """--what-if runs the apply itself on a copy: a plan the apply would refuse is refused by its
    what-if with the same file and line, and neither writes anything (no key files either)."""
    text = ('format = "msi-estate"\n[[tenants]]\nname = "Fabrikam"\n[[subscriptions]]\nname = "fab-sub"\ntenant = "Fabrikam"\n'
            '[[identities]]\nname = "fab-id"\nsubscription = "fab-sub"\n')
    line = 10  # the entry that fails: the role assignment, or the last credential's table
    if case == "grant across tenants":
        text += '[[role_assignments]]\nrole = "Reader"\nscope = "/subscriptions/default"\nidentity = "fab-id"\n'
        message = "PrincipalNotFound"
    else:
        subjects = [f"repo:o/r:ref:refs/heads/b{n}" for n in range(21)] if case.startswith("21") else ["repo:o/r:env:prod"] * 2
        for n, subject in enumerate(subjects):
            text += (f'[[identities.federated_credentials]]\nname = "cred-{n}"\nissuer = "https://token.actions.githubusercontent.com"\n'
                     f'subject = "{subject}"\n')
        line += 4 * (len(subjects) - 1)
        message = "20" if case.startswith("21") else "subject"
    path = _write(tmp_path, text)
    cli.ok("list", "tenants", "-o", "none")
    before = isolated_state.read_bytes()
    rehearsed = fails(cli("apply", str(path), "--what-if"), 1, f"{path}, line {line}: ", message, "nothing was changed")
    applied = fails(cli("apply", str(path)), 1, f"{path}, line {line}: ", message, "nothing was changed")
    assert rehearsed.split(": ", 2)[:2] == applied.split(": ", 2)[:2]
    assert isolated_state.read_bytes() == before
    assert not list(isolated_state.parent.glob(f"{isolated_state.name}.d/keys/*.pem"))


def test_an_id_an_orphaned_assignment_names_is_never_given_again(cli, tmp_path: Path) -> None:
    """Past the soft-delete window the deleted principal is gone, but its orphaned role assignment
    still names its id: a file asking for that id gets a new one (remapped), and the new identity
    holds none of the old access, as Azure never gives an object id twice."""
    cli.ok("create-identity", "old-id", "-o", "none")
    cli.ok("create-resource", "kv1", "--type", "keyvault", "-o", "none")
    cli.ok("grant", "old-id", "--role", "Key Vault Secrets User", "--scope", "kv1", "-o", "none")
    old = cli.json("show", "old-id")["principalId"]
    cli.ok("delete", "old-id", "--yes", "-o", "none")
    cli.ok("clock", "advance", "31d", "-o", "none")
    assert cli.json("list", "principals", "--deleted") == []  # past the window
    path = _write(tmp_path, f'[[identities]]\nname = "new-id"\nprincipal_id = "{old}"\n'
                            '[[resources]]\nname = "vm1"\ntype = "vm"\nuser_assigned = ["new-id"]\n')
    done = cli.json("apply", str(path), "--yes")
    assert old in done["remapped"] and cli.json("show", "new-id")["principalId"] != old
    denied = cli("check-access", "vm1", "--scope", "kv1", "--role", "Key Vault Secrets User", "-o", "json")
    assert denied.exit_code == 1 and "orphaned" in denied.stderr


def test_an_export_after_a_subscription_move_applies_to_an_empty_state(cli, tmp_path: Path) -> None:
    """A subscription that holds nothing yet takes the tenant the file gives it (a move that breaks
    nothing, logged as the move is); one that holds anything still changes tenant only by
    `msi move-subscription`, which reports what breaks."""
    cli.ok("create-tenant", "Fabrikam", "-o", "none")
    cli.ok("move-subscription", "default", "--tenant", "Fabrikam", "--yes", "-o", "none")
    text = cli.ok("export").stdout
    estate = _write(tmp_path, text)
    fresh = str(tmp_path / "fresh" / "state.toml")
    plan = cli.json("--state", fresh, "--create", "apply", str(estate), "--what-if")
    assert {"action": "update", "kind": "subscription", "name": "default",
            "detail": "tenant Default Directory -> Fabrikam"} in plan["changes"]
    cli.ok("--state", fresh, "apply", str(estate), "--yes", "-o", "none")
    assert cli.ok("--state", fresh, "export").stdout == text
    assert cli.json("--state", fresh, "apply", str(estate))["changes"] == []
    log = cli.ok("--state", fresh, "log").stdout
    assert "Move subscription" in log and "Default Directory -> Fabrikam" in log
    # a subscription that holds something is refused, and the state is left as it was
    held = str(tmp_path / "held" / "state.toml")
    cli.ok("--state", held, "--create", "create-tenant", "Fabrikam", "-o", "none")
    cli.ok("--state", held, "create-identity", "id1", "-o", "none")
    before = Path(held).read_bytes()
    fails(cli("--state", held, "apply", str(estate), "--yes"), 1, "subscription 'default' is in tenant 'Default Directory'",
          "holds", "move-subscription", "nothing was changed")
    assert Path(held).read_bytes() == before


def _created(state: Path) -> dict[str, str]:
    from msi_cli.store.statefile import StateFile

    return {c.name: c.created for c in StateFile(state).read().federated_credentials.values()}


def test_two_credentials_can_swap_their_subjects(cli, tmp_path: Path, isolated_state: Path) -> None:
    """Each issuer/subject pair is unique in the end, so the swap applies: an identity's credential
    updates are checked as one change, each credential keeps its creation time and each update is logged."""
    issuer = "https://token.actions.githubusercontent.com"
    cli.ok("create-identity", "fid", "-o", "none")
    cli.ok("federation", "add", "fid", "--name", "cred1", "--issuer", issuer, "--subject", "repo:o/r:env:a", "-o", "none")
    cli.ok("clock", "advance", "1h", "-o", "none")
    cli.ok("federation", "add", "fid", "--name", "cred2", "--issuer", issuer, "--subject", "repo:o/r:env:b", "-o", "none")
    created = _created(isolated_state)
    assert len(set(created.values())) == 2
    text = '[[identities]]\nname = "fid"\n'
    for name, subject in (("cred1", "repo:o/r:env:b"), ("cred2", "repo:o/r:env:a")):
        text += f'[[identities.federated_credentials]]\nname = "{name}"\nissuer = "{issuer}"\nsubject = "{subject}"\n'
    path = _write(tmp_path, text)
    plan = cli.json("apply", str(path), "--what-if")
    assert plan["summary"] == {"create": 0, "update": 2, "delete": 0}
    cli.ok("apply", str(path), "-o", "none")
    after = {c["name"]: c for c in cli.json("federation", "list", "fid")}
    assert {n: c["subject"] for n, c in after.items()} == {"cred1": "repo:o/r:env:b", "cred2": "repo:o/r:env:a"}
    assert _created(isolated_state) == created
    updates = [(e["target"].rsplit("/", 1)[-1], e["detail"]) for e in cli.json("log") if e["operation"] == "Update federated identity credential"]
    assert updates == [("cred1", f"issuer {issuer}, subject repo:o/r:env:b"), ("cred2", f"issuer {issuer}, subject repo:o/r:env:a")]
    assert cli.json("apply", str(path))["changes"] == []
    # single changes keep federation.add's rule: a pair another credential holds is refused
    fails(cli("federation", "add", "fid", "--name", "cred1", "--issuer", issuer, "--subject", "repo:o/r:env:a"), 1,
          "already has issuer", "unique per identity")


def test_resources_of_one_name_and_different_types_are_told_apart_by_their_type(cli, tmp_path: Path) -> None:
    """Azure lets a VM and a web app share a name in a group: a reference names the type when the
    name is not enough (`vm:app1`), export writes that form only then, and -o json keys each by it."""
    cli.ok("create-resource", "app1", "--type", "webapp", "--system-assigned", "-o", "none")
    cli.ok("create-resource", "app1", "--type", "vm", "--system-assigned", "-o", "none")
    cli.ok("create-resource", "kv-z", "--type", "keyvault", "-o", "none")
    cli.ok("create-resource", "st1", "--type", "storage", "--system-assigned", "-o", "none")
    vm = next(r for r in cli.json("list", "resources") if r["type"] == "Microsoft.Compute/virtualMachines")
    cli.ok("grant", vm["identity"]["principalId"], "--role", "Reader", "--scope", "kv-z", "-o", "none")
    cli.ok("grant", "st1", "--role", "Reader", "--scope", "kv-z", "-o", "none")
    text = cli.ok("export").stdout
    assert 'resource = "vm:app1"' in text and 'resource = "st1"' in text  # the qualifier only where it is needed
    estate = _write(tmp_path, text)
    fresh = str(tmp_path / "fresh" / "state.toml")
    applied = cli.json("--state", fresh, "--create", "apply", str(estate), "--yes")
    assert set(applied["resources"]) == {"vm:app1", "webapp:app1", "st1"}
    shown = {r["type"]: r for r in cli.json("--state", fresh, "list", "resources")}
    for ref, arm_type in (("vm:app1", "Microsoft.Compute/virtualMachines"), ("webapp:app1", "Microsoft.Web/sites")):
        assert applied["resources"][ref]["principalId"] == shown[arm_type]["identity"]["principalId"]
        assert applied["resources"][ref]["id"] == shown[arm_type]["id"]
    readers = {a["principalId"] for a in cli.json("--state", fresh, "list", "role-assignments") if a["scope"].endswith("/kv-z")}
    assert readers == {shown[t]["identity"]["principalId"] for t in ("Microsoft.Compute/virtualMachines", "Microsoft.Storage/storageAccounts")}
    assert cli.ok("--state", fresh, "export").stdout == text
    assert cli.json("--state", fresh, "apply", str(estate))["changes"] == []
    # the bare name is ambiguous: the error lists the typed references to choose from
    path = _write(tmp_path, text.replace('resource = "vm:app1"', 'resource = "app1"'), "bare.toml")
    fails(cli("--state", fresh, "apply", str(path)), 2, "'app1' matches 2:", "default/default/vm:app1", "default/default/webapp:app1")
    path = _write(tmp_path, text.replace('resource = "vm:app1"', 'resource = "default/mainframe:app1"'), "bad.toml")
    fails(cli("--state", fresh, "apply", str(path)), 2, "unknown resource type 'mainframe'")
    path = _write(tmp_path, text.replace('resource = "vm:app1"', 'resource = "default/default/VM:app1"'), "full.toml")
    assert cli.json("--state", fresh, "apply", str(path))["changes"] == []


def test_a_name_matched_in_another_letter_case_is_not_a_rename(cli, tmp_path: Path, isolated_state: Path) -> None:
    """Tenants and subscriptions match their display name in any case; only one matched by its id
    is renamed (README: the same id is the same object, renamed if its display name differs)."""
    cli.ok("list", "tenants", "-o", "none")  # a fresh state: Default Directory, default
    by_name = _write(tmp_path, '[[tenants]]\nname = "DEFAULT DIRECTORY"\n\n[[subscriptions]]\nname = "DEFAULT"\ntenant = "default directory"\n')
    assert cli.json("apply", str(by_name), "--what-if")["changes"] == []
    assert cli.json("apply", str(by_name))["changes"] == []
    assert [t["displayName"] for t in cli.json("list", "tenants")] == ["Default Directory"]
    assert [s["name"] for s in cli.json("list", "subscriptions")] == ["default"]
    tenant, sub = cli.json("list", "tenants")[0]["tenantId"], cli.json("list", "subscriptions")[0]["id"]
    by_id = _write(tmp_path, f'[[tenants]]\nname = "DEFAULT DIRECTORY"\nid = "{tenant}"\n\n'
                             f'[[subscriptions]]\nname = "DEFAULT"\nid = "{sub}"\n', "by-id.toml")
    renamed = cli.json("apply", str(by_id))["changes"]
    assert {(c["kind"], c["detail"].split(" (")[0]) for c in renamed} == {
        ("tenant", "rename to DEFAULT DIRECTORY"), ("subscription", "rename to DEFAULT")}
    assert [t["displayName"] for t in cli.json("list", "tenants")] == ["DEFAULT DIRECTORY"]


def test_a_subscription_without_a_tenant_keeps_its_own_and_a_new_one_takes_the_default(cli, tmp_path: Path) -> None:
    """`tenant` left out: an existing subscription stays where it is (even one that holds nothing,
    which a `tenant` key would move); only a new one is made in the default subscription's tenant."""
    cli.ok("create-tenant", "T2", "-o", "none")
    cli.ok("create-subscription", "s2", "--tenant", "T2", "-o", "none")
    path = _write(tmp_path, '[[subscriptions]]\nname = "s2"\n\n[[subscriptions]]\nname = "s3"\n')
    planned = cli.json("apply", str(path), "--what-if")["changes"]
    assert planned == [{"action": "create", "kind": "subscription", "name": "s3", "detail": "in tenant Default Directory"}]
    assert cli.json("apply", str(path))["changes"] == planned
    tenants = {t["tenantId"]: t["displayName"] for t in cli.json("list", "tenants")}
    assert {s["name"]: tenants[s["tenantId"]] for s in cli.json("list", "subscriptions")} == {
        "default": "Default Directory", "s2": "T2", "s3": "Default Directory"}
    assert cli.json("apply", str(path))["changes"] == []


@pytest.mark.parametrize("what_if", [True, False])
def test_a_tenant_the_file_renames_is_named_by_its_new_name_or_id(cli, tmp_path: Path, isolated_state: Path, what_if: bool) -> None:
    """The old name of a tenant the file renames would name nothing once applied (and the same file
    would then be refused): it is refused at its line before anything runs, by the what-if as by
    the apply; the new name and the id both work."""
    cli.ok("create-tenant", "Old", "-o", "none")
    tid = next(t["tenantId"] for t in cli.json("list", "tenants") if t["displayName"] == "Old")
    head = f'[[tenants]]\nname = "New"\nid = "{tid}"\n\n[[subscriptions]]\nname = "s9"\n'
    before = isolated_state.read_bytes()
    old = _write(tmp_path, head + 'tenant = "Old"\n')
    fails(cli("apply", str(old), *(["--what-if"] if what_if else [])), 2, "estate.toml, line 7", "tenant 'Old'", "'New'", tid)
    assert isolated_state.read_bytes() == before
    for n, ref in enumerate(("New", tid)):
        path = _write(tmp_path, head + f'tenant = "{ref}"\n', f"ok{n}.toml")
        assert cli.json("apply", str(path), "--what-if")["summary"] == {"create": 1, "update": 1, "delete": 0}
    cli.ok("apply", str(tmp_path / "ok0.toml"), "-o", "none")
    tenants = {t["tenantId"]: t["displayName"] for t in cli.json("list", "tenants")}
    assert tenants[tid] == "New"
    assert {s["name"]: tenants[s["tenantId"]] for s in cli.json("list", "subscriptions")}["s9"] == "New"
    assert cli.json("apply", str(tmp_path / "ok1.toml"))["changes"] == []


def test_a_subscription_the_file_renames_is_not_named_by_its_old_name(cli, tmp_path: Path) -> None:
    sub = cli.json("list", "subscriptions")[0]["id"]
    path = _write(tmp_path, f'[[subscriptions]]\nname = "prod"\nid = "{sub}"\n\n[[identities]]\nname = "id1"\nsubscription = "default"\n')
    fails(cli("apply", str(path), "--what-if"), 2, "estate.toml, line 7", "subscription 'default' is renamed 'prod'", sub)


def test_an_entry_without_a_location_leaves_the_region_where_it_is(cli, tmp_path: Path) -> None:
    """`location` defaults to eastus for what the file creates; an identity, group or resource the
    state already holds elsewhere keeps its region (nothing to refuse, nothing to move or settle)."""
    cli.ok("create-identity", "wid", "-g", "rg-we", "--location", "westeurope")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg-we", "--location", "westeurope")
    estate = _write(tmp_path, '[[resource_groups]]\nname = "rg-we"\n\n[[identities]]\nname = "wid"\nresource_group = "rg-we"\n'
                              '\n[[resources]]\nname = "vm1"\ntype = "vm"\nresource_group = "rg-we"\n')
    assert cli.json("apply", str(estate), "--what-if")["changes"] == []
    assert cli.json("apply", str(estate))["changes"] == []
    assert cli.json("show", "wid")["location"] == "westeurope"
