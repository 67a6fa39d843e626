"""Unit tests for the pure core helpers: names, ids, time, roles, audiences, line location."""

from __future__ import annotations

import pytest

from msi_cli.core import arm, audiences, roles, timefmt, tokens
from msi_cli.errors import InvalidArgument, InvalidName, NotFound
from msi_cli.store import codec


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("vm", ["a", "vm_1", "web.01", "_x"], ["-a", "a-", "a.", "a b", "x" * 65]),
        ("webapp", ["ab", "my-app-1"], ["a", "-ab", "ab-", "a_b", "x" * 61]),
        ("containerapp", ["ab", "a1-b2"], ["Ab", "1ab", "a--b", "ab-", "x" * 33]),
        ("keyvault", ["kv1", "my-vault"], ["1kv", "kv", "k--v", "kv-", "x" * 25]),
        ("storage", ["abc", "acct123"], ["ab", "Abc", "a-b", "x" * 25]),
    ],
)
def test_resource_name_rules(kind, good, bad):
    for name in good:
        arm.validate_resource_name(kind, name)
    for name in bad:
        with pytest.raises(InvalidName):
            arm.validate_resource_name(kind, name)


def test_identity_and_group_names():
    arm.validate_identity_name("id_1-x")
    for name in ("ab", "-abc", "a" * 129, "a b c"):
        with pytest.raises(InvalidName):
            arm.validate_identity_name(name)
    arm.validate_resource_group("rg.(1)_-")
    for name in ("rg.", "", "a" * 91, "a/b"):
        with pytest.raises(InvalidName):
            arm.validate_resource_group(name)


def test_unknown_type_is_a_usage_error():
    with pytest.raises(InvalidArgument):
        arm.resource_type("mainframe")


def test_parse_id_levels():
    sub = "00000000-0000-0000-0000-000000000001"
    assert arm.parse_id(f"/subscriptions/{sub}") == arm.ParsedId(sub, None, None, None)
    assert arm.parse_id(f"/subscriptions/{sub}/resourceGroups/rg") == arm.ParsedId(sub, "rg", None, None)
    full = arm.parse_id(f"/subscriptions/{sub}/resourcegroups/rg/providers/Microsoft.Web/sites/w")
    assert full == arm.ParsedId(sub, "rg", "Microsoft.Web/sites", "w")
    assert arm.parse_id("not/an/id") is None


def test_durations_and_instants():
    assert timefmt.parse_duration("45d") == 45 * 86400
    assert timefmt.parse_duration("1h30m") == 5400
    assert timefmt.parse_duration("-2w") == -14 * 86400
    for text in ("", "45", "d", "1x", "1d 2h", "--1d"):
        with pytest.raises(InvalidArgument):
            timefmt.parse_duration(text)
    assert timefmt.parse_instant("2027-01-01T00:00:00Z") == 1798761600
    assert timefmt.parse_instant("2027-01-01") == 1798761600
    assert timefmt.iso(1798761600) == "2027-01-01T00:00:00Z"
    assert timefmt.epoch("2027-01-01T00:00:00Z") == 1798761600
    with pytest.raises(InvalidArgument):
        timefmt.parse_instant("next tuesday")


def test_roles_by_name_and_id():
    assert roles.role("key vault secrets user").id == "4633458b-17de-408a-b874-0445c86b69e6"
    assert roles.role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635").name == "Owner"
    assert roles.role("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7").name == "Reader"
    with pytest.raises(NotFound):
        roles.role("Janitor")


def test_permissions_decide_coverage():
    r = roles.role
    assert not roles.covers([r("Owner")], r("Key Vault Secrets User"))  # no data actions
    assert roles.covers([r("Key Vault Secrets Officer")], r("Key Vault Secrets User"))
    assert not roles.covers([r("Key Vault Secrets User")], r("Key Vault Secrets Officer"))
    assert not roles.covers([r("Contributor")], r("Owner"))  # Microsoft.Authorization writes excluded
    assert roles.covers([r("Owner")], r("Contributor"))
    assert roles.covers([r("Contributor")], r("Reader"))
    assert roles.covers([r("Storage Blob Data Contributor")], r("Storage Blob Data Reader"))
    assert not roles.covers([r("Storage Blob Data Reader")], r("Storage Blob Data Contributor"))
    assert roles.covers([r("Reader"), r("User Access Administrator")], r("Reader"))


def test_scope_hierarchy():
    sub = "/subscriptions/s"
    rg = f"{sub}/resourceGroups/rg"
    res = f"{rg}/providers/Microsoft.KeyVault/vaults/kv"
    assert roles.scope_covers(sub, res) and roles.scope_covers(rg, res) and roles.scope_covers(res, res)
    assert not roles.scope_covers(res, rg)
    assert not roles.scope_covers(f"{sub}/resourceGroups/r", res)  # a prefix of the name is not a parent


def test_known_audiences():
    for aud in ("https://vault.azure.net", "https://management.azure.com/", "https://storage.azure.com",
                "https://kv1.vault.azure.net", "https://acct.blob.core.windows.net/", "api://AzureADTokenExchange"):
        assert audiences.audience_known(aud), aud
    # a v2 scope is not a resource: IMDS and App Service are asked for the resource itself
    for aud in ("https://example.com", "https://.vault.azure.net", "vault.azure.net", "https://evil.net/?x=.vault.azure.net",
                "https://storage.azure.com/.default", "api://AzureADTokenExchange/.default"):
        assert not audiences.audience_known(aud), aud


def test_from_cache_counts_down_and_expires():
    entry = {"access_token": "t", "expires_on": "1000", "not_before": "0", "expires_in": "900"}
    assert tokens.from_cache(entry, 100)["expires_in"] == "900"
    assert tokens.from_cache(entry, 600)["expires_in"] == "400"
    assert tokens.from_cache(entry, 701) is None  # less than the 5-minute margin left
    assert tokens.from_cache({"expires_on": "x"}, 0) is None


def test_locate_finds_record_and_key_lines():
    text = 'schema = 1\n\n[[resources]]\nname = "a"\ntype = "vm"\n\n[[resources]]\nname = "b"\ntype = "vmx"\n'
    assert codec.locate(text, ("schema",)) == 1
    assert codec.locate(text, ("resources", 1)) == 7
    assert codec.locate(text, ("resources", 1, "type")) == 9
    assert codec.locate(text, ("resources", 5, "type")) is None


def test_create_resource_is_all_or_nothing_in_the_core(isolated_state):
    from msi_cli.core import directory, lifecycle
    from msi_cli.errors import MsiError
    from msi_cli.store.statefile import StateFile

    with StateFile(isolated_state).transaction() as ctx:
        other = directory.create_tenant(ctx, "Other")
        sub = directory.create_subscription(ctx, "other-sub", other.id)
        foreign = lifecycle.create_identity(ctx, "foreign-id", None, sub.id, None)
        before = len(ctx.events)
        with pytest.raises(MsiError, match="across tenants"):
            lifecycle.create_resource(ctx, "vm1", "vm", None, None, None, True, [foreign.resource_id])
        assert not any(r.name == "vm1" for r in ctx.state.resources.values())
        assert len(ctx.events) == before  # neither the resource nor an identity was logged
        assert all(i.name != "vm1" for i in ctx.state.identities.values())


def test_ambiguity_between_a_resource_and_an_identity_names_both_kinds(cli):
    cli.ok("create-resource", "same1", "--type", "vm")
    cli.ok("create-identity", "same1")
    result = cli("show", "same1")
    assert result.exit_code == 2  # a usage error: the command line must say which
    assert result.stderr.startswith("error: 'same1' matches 2 resources or identities: /subscriptions/")


def test_unassign_names_each_missing_identity_once(cli):
    cli.ok("create-resource", "vm1", "--type", "vm")
    cli.ok("create-identity", "id-x")
    result = cli("unassign", "vm1", "--user-assigned", "id-x", "--user-assigned", "id-x")
    assert result.exit_code == 1
    assert result.stderr.count("id-x") == 1 and "are not associated with 'vm1'" in result.stderr


def test_private_folder_is_tightened_when_it_exists_wider(cli, isolated_state):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    private = isolated_state.parent / (isolated_state.name + ".d")
    private.chmod(0o755)
    (private / "keys").chmod(0o755)
    cli.ok("assign", "vm1")  # any transaction
    cli.ok("create-identity", "id-y")  # writes a key
    assert private.stat().st_mode & 0o777 == 0o700
    assert (private / "keys").stat().st_mode & 0o777 == 0o700


def test_resource_group_from_the_environment(cli, monkeypatch):
    monkeypatch.setenv("MSI_RESOURCE_GROUP", "team-a")
    assert cli.json("create-resource", "vm1", "--type", "vm")["resourceGroup"] == "team-a"
    assert cli.json("create-resource", "vm2", "--type", "vm", "-g", "team-b")["resourceGroup"] == "team-b"  # the option wins
    assert [r["name"] for r in cli.json("list", "resources")] == ["vm1"]


def test_durations_take_ascii_digits_only():
    from msi_cli.core import timefmt
    from msi_cli.errors import InvalidArgument

    assert timefmt.parse_duration("1h30m") == 5400
    with pytest.raises(InvalidArgument):
        timefmt.parse_duration("\u0661\u0662m")  # Arabic-Indic digits, which \d and int() take
