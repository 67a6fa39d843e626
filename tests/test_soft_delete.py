"""Deleted identities: their service principals are soft-deleted for 30 days, visible, never restored."""

from __future__ import annotations

from conftest import fails, is_guid


def principal_of(cli, name: str) -> str:
    return cli.json("show", name)["identity"]["principalId"]


def test_deleted_principals_are_listed_for_30_days(cli):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    ident = cli.json("create-identity", "id1")
    system = principal_of(cli, "vm1")
    assert cli.json("list", "principals", "--deleted") == []
    cli.ok("delete", "vm1", "--yes")
    cli.ok("delete", "id1", "--yes")
    deleted = {d["id"]: d for d in cli.json("list", "principals", "--deleted")}
    assert set(deleted) == {system, ident["principalId"]}
    gone = deleted[ident["principalId"]]
    assert gone["appId"] == ident["clientId"] and gone["displayName"] == "id1"
    assert gone["servicePrincipalType"] == "ManagedIdentity" and gone["alternativeNames"][0] == "isExplicit=True"
    assert deleted[system]["alternativeNames"][0] == "isExplicit=False"
    assert all(d["deletedDateTime"].endswith("Z") for d in deleted.values())
    fails(cli("show", system), 3, f"was deleted at {deleted[system]['deletedDateTime']}", "msi list principals --deleted")
    assert system not in {p["id"] for p in cli.json("list", "principals")}  # no longer a live principal
    cli.ok("clock", "advance", "29d")
    assert len(cli.json("list", "principals", "--deleted")) == 2
    cli.ok("clock", "advance", "1d")
    assert cli.json("list", "principals", "--deleted") == []
    fails(cli("show", system), 3, "no object with id")


def test_disable_soft_deletes_and_re_enable_does_not_restore(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
    first = principal_of(cli, "web1")
    cli.ok("unassign", "web1", "--system-assigned")
    assert [d["id"] for d in cli.json("list", "principals", "--deleted")] == [first]
    second = cli.json("assign", "web1")["principalId"]
    assert is_guid(second) and second != first  # a new identity, not the deleted one back
    assert [d["id"] for d in cli.json("list", "principals", "--deleted")] == [first]


def test_orphaned_assignment_reason_names_the_deletion(cli):
    cli.ok("create-resource", "kv1", "--type", "keyvault")
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    old = principal_of(cli, "vm1")
    cli.ok("grant", "vm1", "--role", "Key Vault Secrets User", "--scope", "kv1")
    cli.ok("unassign", "vm1", "--system-assigned")
    cli.ok("assign", "vm1")
    result = cli("check-access", "vm1", "--scope", "kv1", "--role", "Key Vault Secrets User")
    assert result.exit_code == 1
    assert f"principal {old}, which no longer exists (orphaned: az shows its principalName empty, deleted 20" in result.stderr


def test_deleted_only_goes_with_principals(cli):
    fails(cli("list", "resources", "--deleted"), 2, "--deleted goes with 'list principals'")


def test_deleted_principals_survive_a_hand_readable_round_trip(cli, isolated_state):
    cli.ok("create-identity", "id1")
    cli.ok("delete", "id1", "--yes")
    text = isolated_state.read_text()
    assert "[[deleted_principals]]" in text and 'deleted = "20' in text
    (isolated_state.parent / (isolated_state.name + ".d") / "cache").unlink()  # force a parse of the TOML
    assert len(cli.json("list", "principals", "--deleted")) == 1
