"""`msi state path|reset|export|import`: where the state is, start over, and a whole state (keys
included) copied between machines or CI jobs."""

from __future__ import annotations

import json
import stat
import os
from pathlib import Path

import pytest

from conftest import fails
from msi_cli.store.statefile import StateFile


@pytest.fixture
def world(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
    cli.ok("create-identity", "shared-id", "-g", "rg1", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--user-assigned", "shared-id", "-o", "none")
    cli.ok("grant", "web1", "--role", "Reader", "--scope", "rg1", "-o", "none")
    return cli


def private(state: Path) -> Path:
    return state.parent / (state.name + ".d")


def key_files(state: Path) -> set[str]:
    return {p.name for p in (private(state) / "keys").glob("*.pem")}


# ---- path --------------------------------------------------------------------------------------------


def test_path_prints_the_state_path(cli, isolated_state, tmp_path):
    assert cli.ok("state", "path").stdout == f"{isolated_state}\n"
    assert cli.json("state", "path") == {"path": str(isolated_state), "exists": False}
    assert not isolated_state.exists()  # asking where it is creates nothing
    other = tmp_path / "other.toml"
    assert cli.ok("--state", str(other), "state", "path", "-o", "tsv").stdout == f"{other}\n"


# ---- reset -------------------------------------------------------------------------------------------


def test_reset_starts_over(world, isolated_state):
    tenant = world.json("list", "tenants")[0]["tenantId"]
    assert key_files(isolated_state)
    result = world.ok("state", "reset", "--yes")
    assert result.stdout == "" and "deleted the state" in result.stderr
    assert not isolated_state.exists()
    assert key_files(isolated_state) == set()
    assert world.json("list", "resources") == []
    assert world.json("list", "tenants")[0]["tenantId"] != tenant  # a fresh state, new keys


def test_reset_without_yes_and_no_terminal_changes_nothing(world, isolated_state):
    before = isolated_state.read_bytes()
    fails(world("state", "reset"), 2, "refused without confirmation", "--yes")
    assert isolated_state.read_bytes() == before


def test_reset_of_a_missing_state_says_so(cli, isolated_state):
    result = cli.ok("state", "reset", "--yes")
    assert "nothing to reset" in result.stderr and not isolated_state.exists()


# ---- export / import -----------------------------------------------------------------------------------


def test_export_then_import_restores_the_whole_state(world, isolated_state, tmp_path):
    token = world.json("token", "web1", "--audience", "https://vault.azure.net")["access_token"]  # signing keys exist now
    fixture = tmp_path / "fixture.json"
    summary = world.json("state", "export", str(fixture))
    assert summary["resources"] == 2 and summary["identities"] == 2 and summary["roleAssignments"] == 1
    assert stat.S_IMODE(fixture.stat().st_mode) == 0o600  # it holds private keys
    doc = json.loads(fixture.read_text())
    assert set(doc["keys"]) == {name[: -len(".pem")] for name in key_files(isolated_state)}
    shown = world.json("show", "web1")

    world.ok("state", "reset", "--yes")
    assert world.json("list", "resources") == []
    world.ok("state", "import", str(fixture), "-o", "none")
    assert world.json("show", "web1") == shown
    # the signing keys came along: a token minted before the export still verifies
    verified = world("verify", token, "-o", "none")
    assert verified.exit_code == 0, verified.stderr
    assert world.json("token", "vm1", "--audience", "https://vault.azure.net")["token_type"] == "Bearer"
    assert any(e["operation"] == "Create resource" for e in world.json("log"))


def test_import_into_another_state_path_shares_a_fixture(world, isolated_state, tmp_path):
    fixture = tmp_path / "fixture.json"
    world.ok("state", "export", str(fixture), "-o", "none")
    job2 = tmp_path / "job2" / "state.toml"
    world.ok("--state", str(job2), "--create", "state", "import", str(fixture), "-o", "none")
    assert StateFile(job2).read().resources.keys() == StateFile(isolated_state).read().resources.keys()
    assert key_files(job2) == key_files(isolated_state)
    assert stat.S_IMODE((private(job2) / "keys").stat().st_mode) == 0o700


def test_import_replaces_keys_of_the_old_state(world, isolated_state, tmp_path, cli):
    fixture = tmp_path / "fixture.json"
    world.ok("state", "export", str(fixture), "-o", "none")
    exported = key_files(isolated_state)
    world.ok("create-resource", "vm9", "--type", "vm", "--system-assigned", "-o", "none")  # one more certificate, not in the fixture
    assert key_files(isolated_state) > exported
    world.ok("state", "import", str(fixture), "-o", "none")
    assert key_files(isolated_state) == exported


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda doc: "not json", "not JSON"),
        (lambda doc: json.dumps({"format": "something else"}), "not a file written by 'msi state export'"),
        (lambda doc: json.dumps({**doc, "version": 99}), "version 99"),
        (lambda doc: json.dumps({**doc, "state": doc["state"].replace("[[resources]]", "[[resources]", 1)}), "not valid TOML"),
        (lambda doc: json.dumps({**doc, "keys": dict(list(doc["keys"].items())[1:])}), "does not hold"),
        (lambda doc: json.dumps({**doc, "keys": {k: list(doc["keys"].values())[0] for k in doc["keys"]}}), "thumbprint is not its name"),
    ],
)
def test_import_validates_before_replacing_anything(world, isolated_state, tmp_path, damage, fragment):
    fixture = tmp_path / "fixture.json"
    world.ok("state", "export", str(fixture), "-o", "none")
    doc = json.loads(fixture.read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(damage(doc))
    world.ok("create-resource", "later1", "--type", "vm", "-o", "none")
    before, keys = isolated_state.read_bytes(), key_files(isolated_state)
    fails(world("state", "import", str(bad)), 1, fragment, "nothing was changed")
    assert isolated_state.read_bytes() == before and key_files(isolated_state) == keys


def test_import_of_a_missing_file(cli, tmp_path):
    fails(cli("state", "import", str(tmp_path / "nope.json")), 3, "no such file")  # not found, as for msi apply


def test_export_help_warns_about_private_keys(cli):
    text = " ".join(cli.ok("state", "export", "--help").stdout.replace("│", " ").split())
    assert "PRIVATE KEYS" in text and "0600" in text


def test_state_commands_installed(msi_proc, isolated_state, tmp_path):
    assert msi_proc("create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none").returncode == 0
    fixture = tmp_path / "f.json"
    proc = msi_proc("state", "export", str(fixture), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["resources"] == 1
    assert "PRIVATE" not in proc.stdout and "BEGIN" not in proc.stdout  # never printed
    assert msi_proc("state", "path").stdout == f"{isolated_state}\n"


# ---- what export, import and reset refuse to touch ------------------------------------------------------


def _everything(state: Path) -> dict[str, bytes]:
    """The state and every file of its private folder, by path."""
    found = {str(state): state.read_bytes()}
    found.update({str(p): p.read_bytes() for p in private(state).rglob("*") if p.is_file() and not p.is_symlink()})
    return found


def test_export_never_overwrites_the_state_its_private_files_or_a_device(world, isolated_state, tmp_path):
    import os

    world.ok("list", "resources", "-o", "none")
    before = _everything(isolated_state)
    for dest in (isolated_state, private(isolated_state) / "activity.jsonl", private(isolated_state) / "lock",
                 private(isolated_state) / "keys" / sorted(key_files(isolated_state))[0]):
        fails(world("state", "export", str(dest)), 1, "it is the state itself or one of its private files")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    fails(world("state", "export", str(pipe)), 1, "not a regular file")
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    link = tmp_path / "link.json"
    link.symlink_to(isolated_state)  # a link to the state: its target is the state
    fails(world("state", "export", str(link)), 1, "it is the state itself")
    assert _everything(isolated_state) == before
    world.ok("state", "export", str(tmp_path / "fixture.json"))


@pytest.mark.parametrize("which", ["activity.jsonl", "tokens.json"])
def test_import_and_reset_change_nothing_when_a_file_they_replace_is_a_folder(world, isolated_state, tmp_path, which):
    world.ok("state", "export", str(tmp_path / "fixture.json"))
    world.ok("create-identity", "later-id", "-o", "none")
    (private(isolated_state) / which).unlink(missing_ok=True)
    (private(isolated_state) / which).mkdir()
    before = _everything(isolated_state)
    fails(world("state", "import", str(tmp_path / "fixture.json")), 1, f"{which} is not a regular file", "nothing was changed")
    assert _everything(isolated_state) == before
    fails(world("state", "reset", "--yes"), 1, f"{which} is not a regular file")
    assert _everything(isolated_state) == before


def test_reset_does_not_follow_a_linked_key_folder(world, isolated_state, tmp_path):
    keys = private(isolated_state) / "keys"
    elsewhere = tmp_path / "elsewhere"
    keys.rename(elsewhere)
    (elsewhere / "other.pem").write_text("not msi's")
    keys.symlink_to(elsewhere)
    held = sorted(p.name for p in elsewhere.iterdir())
    fails(world("state", "reset", "--yes"), 1, "symbolic link")
    assert sorted(p.name for p in elsewhere.iterdir()) == held and isolated_state.exists()


def test_export_refuses_a_link_to_a_device_pipe_or_terminal(cli, tmp_path):
    """A link to /proc/self/fd/1 (as /dev/stdout is) would be replaced by a file of private keys
    (as root, /dev/stdout for the whole machine): refused, nothing written."""
    cli.ok("list", "tenants")
    link = tmp_path / "out"
    link.symlink_to("/proc/self/fd/1")
    refused = cli("state", "export", str(link))  # (/dev/stdout itself is refused the same way; not tried here)
    assert refused.exit_code == 1 and "is a link to a device, pipe or terminal" in refused.stderr, refused.stderr
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_reset_after_the_file_was_deleted_by_hand_removes_what_was_left(cli, isolated_state):
    cli.ok("create-identity", "id1")
    private = isolated_state.parent / (isolated_state.name + ".d")
    assert any((private / "keys").iterdir()) and (private / "activity.jsonl").exists()
    isolated_state.unlink()
    result = cli("state", "reset", "--yes")
    assert result.exit_code == 0 and "left beside" in result.stderr, result.stderr
    assert not any((private / "keys").iterdir()) and not (private / "activity.jsonl").exists()
    cli.ok("list", "tenants")
    assert cli.json("log") == []  # the fresh state does not inherit the old log
    cli.ok("state", "reset", "--yes")
    assert "nothing to reset" in cli("state", "reset", "--yes").stderr


def test_export_to_dash_is_refused_not_a_file_named_dash(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.ok("list", "tenants")
    refused = cli("state", "export", "-")
    assert refused.exit_code == 2 and "not standard output" in refused.stderr
    assert not (tmp_path / "-").exists()
