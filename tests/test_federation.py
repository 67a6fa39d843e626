"""Workload identity federation as users touch it: `msi federation` (Azure's rules for federated
identity credentials), `msi issuer`, the state file's new tables, and the installed `msi`. The
server side is in test_federation_serve.py, the exchange's rules in test_exchange.py."""

from __future__ import annotations

import json
import os
import stat

import jwt
import pytest

from conftest import fails
from msi_cli.store.statefile import StateFile

SUBJECT = "repo:octo-org/app:ref:refs/heads/main"
AUD = "api://AzureADTokenExchange"
FIC_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# ---- federated identity credentials -----------------------------------------------------------------


@pytest.fixture
def ident(cli) -> dict:
    return cli.json("create-identity", "ci-id", "-g", "rg1")


def add(cli, *extra: str, name: str = "main", subject: str = SUBJECT, issuer: str = "https://token.actions.githubusercontent.com"):
    return cli("federation", "add", "ci-id", "--name", name, "--issuer", issuer, "--subject", subject, *extra, "-o", "json")


def test_add_prints_azs_shape_and_is_stored(cli, ident, isolated_state):
    result = add(cli)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == {
        "audiences": [AUD],
        "id": ident["id"] + "/federatedIdentityCredentials/main",
        "issuer": "https://token.actions.githubusercontent.com",
        "name": "main",
        "resourceGroup": "rg1",
        "subject": SUBJECT,
        "type": FIC_TYPE,
    }
    assert cli.json("federation", "show", "ci-id", "MAIN") == data  # names are case-insensitive
    assert cli.json("federation", "list", "ci-id") == [data]
    state = StateFile(isolated_state).read()
    [cred] = state.federated_credentials.values()
    assert (cred.identity_id, cred.name, cred.subject) == (ident["principalId"], "main", SUBJECT)
    assert any(e["operation"] == "Create federated identity credential" and e["target"] == data["id"]
               for e in StateFile(isolated_state).log_entries())


def test_adding_under_an_existing_name_updates_it(cli, ident):
    add(cli)
    result = add(cli, subject="repo:octo-org/app:environment:prod")
    assert result.exit_code == 0
    [cred] = cli.json("federation", "list", "ci-id")
    assert cred["subject"] == "repo:octo-org/app:environment:prod"


@pytest.mark.parametrize("name", ["ab", "-abc", "_abc", "a" * 121, "has space", "dot.name", "ümlaut"])
def test_name_rule(cli, ident, name, isolated_state):
    before = isolated_state.read_bytes()
    fails(add(cli, name=name), 1, "invalid federated identity credential name")
    assert isolated_state.read_bytes() == before


@pytest.mark.parametrize("name", ["abc", "a" * 120, "A-b_9", "0ab"])
def test_valid_names(cli, ident, name):
    assert add(cli, name=name).exit_code == 0


def test_issuer_and_subject_pair_is_unique_per_identity(cli, ident):
    add(cli)
    fails(add(cli, name="second"), 1, "already has issuer", "must be unique")
    assert add(cli, name="third", subject=SUBJECT + "x").exit_code == 0  # another subject is fine
    cli.ok("create-identity", "other-id", "-g", "rg1")
    result = cli("federation", "add", "other-id", "--name", "main", "--issuer", "https://token.actions.githubusercontent.com",
                 "--subject", SUBJECT)
    assert result.exit_code == 0  # the pair is unique per identity, not globally


def test_at_most_20_per_identity(cli, ident):
    for n in range(20):
        assert add(cli, name=f"cred{n:02d}", subject=f"s{n}").exit_code == 0
    fails(add(cli, name="cred20", subject="s20"), 1, "20 federated identity credentials")
    assert add(cli, name="cred00", subject="changed").exit_code == 0  # updating one is not adding


def test_fields_up_to_600_characters(cli, ident):
    assert add(cli, subject="s" * 600).exit_code == 0
    fails(add(cli, name="long", subject="s" * 601), 1, "subject is 601 characters long")
    fails(add(cli, name="longer", issuer="https://x/" + "i" * 600), 1, "issuer is")


def test_exactly_one_audience(cli, ident):
    fails(add(cli, "--audience", "a", "--audience", "b"), 1, "exactly one audience")
    data = json.loads(add(cli, "--audience", "api://custom").stdout)
    assert data["audiences"] == ["api://custom"]


def test_user_assigned_only(cli):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    result = cli("federation", "add", "vm1", "--name", "main", "--issuer", "https://x", "--subject", "s")
    fails(result, 1, "user-assigned identities only")
    fails(cli("federation", "list", "nobody"), 3, "not found")


def test_show_and_remove(cli, ident, isolated_state):
    add(cli)
    fails(cli("federation", "show", "ci-id", "nope"), 3, "not found")
    fails(cli("federation", "remove", "ci-id", "main"), 2, "--yes")  # no terminal to confirm on
    assert cli.json("federation", "remove", "ci-id", "main", "--yes") == {"deleted": ident["id"] + "/federatedIdentityCredentials/main"}
    assert cli.json("federation", "list", "ci-id") == []
    assert any(e["operation"] == "Delete federated identity credential" for e in StateFile(isolated_state).log_entries())


def test_deleting_the_identity_deletes_its_credentials(cli, ident, isolated_state):
    add(cli)
    cli.ok("delete", "ci-id", "--yes")
    assert StateFile(isolated_state).read().federated_credentials == {}
    last = StateFile(isolated_state).log_entries(last=2)
    assert last[0]["operation"] == "Delete federated identity credential" and last[0]["target"].endswith("/federatedIdentityCredentials/main")
    assert last[1]["operation"] == "Delete user-assigned identity"
    cli.ok("create-identity", "ci-id", "-g", "rg1")
    assert cli.json("federation", "list", "ci-id") == []  # a new identity starts with none


def test_a_user_assigned_identity_cannot_move(cli, ident):
    cli.ok("create-subscription", "other")
    fails(cli("migrate", "ci-id", "--subscription", "other"), 1, "cannot be moved")


# ---- the state file --------------------------------------------------------------------------------


def test_older_state_files_without_the_tables_still_load(cli, ident, isolated_state):
    text = isolated_state.read_text()
    assert "federated_credentials" not in text and "issuers" not in text
    assert StateFile(isolated_state).read().federated_credentials == {}


def test_round_trip_and_validation_of_the_new_tables(cli, ident, isolated_state):
    add(cli)
    cli.ok("issuer", "create", "gh", "--kind", "github")
    sf = StateFile(isolated_state)
    from msi_cli.store import codec

    state = sf.read()
    assert codec.load(codec.dump(state)) == state
    text = isolated_state.read_text()
    isolated_state.write_text(text.replace('kind = "github"', 'kind = "gitlab"'))
    fails(cli("federation", "list", "ci-id"), 1, "'kind' must be one of")
    isolated_state.write_text(text.replace('name = "main"', 'name = "x"'))
    fails(cli("federation", "list", "ci-id"), 1, "line", "invalid federated identity credential name")


# ---- issuers and their tokens -----------------------------------------------------------------------


def test_issuer_create_list_show(cli, isolated_state):
    created = cli.json("issuer", "create", "gh", "--kind", "github")
    assert created["name"] == "gh" and created["kind"] == "github" and created["issuer"] is None  # no server yet
    key = isolated_state.parent / "state.toml.d" / "keys" / f"{created['kid']}.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [i["name"] for i in cli.json("issuer", "list")] == ["gh"]
    fails(cli("issuer", "create", "GH"), 1, "already exists")
    fails(cli("issuer", "create", "bad/name"), 1, "invalid issuer name")
    fails(cli("issuer", "show", "nope"), 3, "not found")
    fails(cli("oidc-token", "gh", "--subject", SUBJECT), 1, "no 'msi serve' is running")


def test_a_hand_edited_file_breaking_the_rules_is_refused(cli, ident, isolated_state):
    add(cli)
    text = isolated_state.read_text()
    block = text[text.index("[[federated_credentials]]"):].split("\n\n")[0]
    isolated_state.write_text(text + "\n" + block.replace('name = "main"', 'name = "copy"') + "\n")
    fails(cli("federation", "list", "ci-id"), 1, "two federated identity credentials with issuer")
    isolated_state.write_text(text.replace(f'identity = "{ident["principalId"]}"', 'identity = "00000000-0000-0000-0000-000000000000"'))
    fails(cli("federation", "list", "ci-id"), 1, "names no user-assigned identity")


def test_cli_through_the_installed_msi(msi_proc, tmp_path):
    state = tmp_path / "p" / "state.toml"
    env = {"MSI_STATE": str(state)}
    assert msi_proc("create-identity", "ci-id", env=env).returncode == 0
    done = msi_proc("federation", "add", "ci-id", "--name", "main", "--issuer", "https://x.example", "--subject", "s", "-o", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["type"] == FIC_TYPE
    bad = msi_proc("federation", "add", "ci-id", "--name", "x", "--issuer", "https://x.example", "--subject", "t", env=env)
    assert bad.returncode == 1 and bad.stdout == "" and bad.stderr.startswith("error: invalid federated identity credential name")
    assert msi_proc("issuer", "create", "gh", "--kind", "github", env=env).returncode == 0
    assert os.path.exists(state)

