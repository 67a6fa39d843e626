"""`msi demo`: every scenario runs to completion on a throwaway state, leaves the user's state and
the temp folder alone, and names every principal id change it shows."""

from __future__ import annotations

import re
import shlex
import tempfile
import uuid
from pathlib import Path

import pytest

SCENARIOS = ("lifecycle", "migration", "shared-identity", "federation", "estate")
NO_PRINCIPAL_CHANGE = ("federation",)  # scenarios about something else than a principal's lifecycle
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CHANGE = re.compile(rf"principal id changed: ({GUID}) -> ({GUID})")
# where the demo shows a system-assigned principal: a created resource, or `msi assign`'s result
SHOWN_SYSTEM = re.compile(rf"identity SystemAssigned, principal ({GUID})|system-assigned principal: ({GUID})")
TITLE = re.compile(r"^─+ (\S+): ")


def is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def sections(output: str) -> dict[str, list[str]]:
    """The output's lines, by scenario (each starts with a rule titled 'NAME: ...')."""
    found: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        title = TITLE.match(line)
        if title:
            current = title.group(1)
            assert current not in found, f"scenario {current} shown twice"
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found


def joined(lines: list[str]) -> list[str]:
    """Lines with shell continuations (a trailing backslash) joined, as a shell reads them."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith(" \\"):
            out[-1] = out[-1][:-1] + line.strip()
        else:
            out.append(line)
    return out


def check_output(output: str, expected: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every expected scenario ran, in order, to the end; every system-assigned principal change it
    shows is named on one line as 'principal id changed: OLD -> NEW'. Returns the changes."""
    parts = sections(output)
    assert list(parts) == list(expected), output
    assert re.search(r"─ done ─", output), output[-500:]
    assert "Traceback" not in output and "eyJ" not in output  # no crash, and never a token
    assert "{'" not in output  # every result summarised in words, not dumped as a Python dict
    changes: list[tuple[str, str]] = []
    for name, lines in parts.items():
        text = " ".join("\n".join(lines).split())  # narration wraps between words at the width
        named = [m.groups() for m in CHANGE.finditer(text)]
        assert named or name in NO_PRINCIPAL_CHANGE, f"{name}: no principal id change named"
        for old, new in named:
            assert is_guid(old) and is_guid(new) and old != new
        # the system-assigned principals the scenario shows, in order: each change is named
        shown: list[str] = []
        for m in SHOWN_SYSTEM.finditer(text):
            pid = m.group(1) or m.group(2)
            if pid not in shown:
                shown.append(pid)
        assert list(zip(shown, shown[1:])) == named, f"{name}: shown {shown}, named {named}"
        changes += named
        # every step is a copyable command line
        commands = [line for line in joined(lines) if line.startswith("$ msi ")]
        assert commands, name
        for line in commands:
            assert shlex.split(line[2:])[0] == "msi"
            assert "'$(" not in line  # a command substitution shown single-quoted would not run as shown
    # narration wraps between words only: every GUID it prints is whole on one line
    words = set(output.split())
    for guid in re.findall(GUID, " ".join(output.split())):
        assert guid in words or any(guid in w for w in words), f"GUID split across lines: {guid}"
    return changes


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temp folder for everything the demo writes."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_demo_runs_every_scenario_in_process_without_touching_user_state(cli, isolated_state, temp_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("demo")
    assert result.exit_code == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == ""
    changes = check_output(result.stdout, SCENARIOS)
    assert len(changes) == 4
    assert len({pid for change in changes for pid in change}) == 8
    assert "Fabrikam" in result.stdout
    lifecycle_story(result.stdout)
    # nothing was created for the user, and the throwaway state is gone
    assert not isolated_state.exists()
    assert not isolated_state.parent.exists()
    assert list(temp_dir.iterdir()) == []


def lifecycle_story(output: str) -> None:
    """Deleting a user-assigned identity leaves a dangling entry that gets no token until removed
    by its full id; re-creating the identity is a new principal."""
    text = " ".join(output.split())
    assert "does NOT remove it from the resources it is assigned to" in text
    assert "still referenced by 1 resource(s)" in text
    assert "a dangling entry, and no token" in text
    assert text.count("error: invalid_request: Identity not found") == 2  # before and after re-creating it
    assert "$ msi unassign vm2 -g workers --user-assigned /subscriptions/" in "\n".join(joined(output.splitlines()))
    assert "vm2 gets tokens again, as the new principal" in text


def migration_story(output: str) -> None:
    [(old, new)] = check_output(output, ("migration",))
    text = " ".join(output.split())
    assert "$ msi migrate orders-app --subscription fabrikam-prod" in "\n".join(joined(output.splitlines()))
    # Azure refuses a move to another tenant's subscription; the app moves within its tenant, and
    # the tenant changes only with the whole subscription
    assert "error: cannot move 'orders-app' to subscription 'fabrikam-prod' of another tenant" in text
    assert "$ msi migrate orders-app --subscription prod-2" in "\n".join(joined(output.splitlines()))
    assert "$ msi move-subscription prod-2 --tenant Fabrikam --yes" in "\n".join(joined(output.splitlines()))
    assert "AADSTS700016" in text
    assert "$ msi unassign orders-app --system-assigned" in "\n".join(joined(output.splitlines()))
    # the old principal cannot get a token after the move; the new one has no access until
    # granted, then works: its token carries the new oid
    assert f"denied: the identity cannot get a token: the system-assigned identity {old}" in text
    assert f"denied: no role assignment grants {new}" in text
    assert f"allowed: 'Key Vault Secrets User' is assigned to {new}" in text
    assert f"oid {new}" in text


def shared_identity_story(output: str) -> None:
    [(old, new)] = check_output(output, ("shared-identity",))
    text = " ".join(output.split())
    assert "$ msi check-access batch-vm2 --scope reports --role 'Storage Blob Data Reader'" in "\n".join(joined(output.splitlines()))
    assert text.count("allowed: 'Storage Blob Data Reader'") == 3  # batch-vm1, batch-vm2, sys-vm1
    assert f"denied: no role assignment grants {new}" in text
    assert f'{old} (ServicePrincipal, principalName "": orphaned)' in text  # az's orphan shape


def test_demo_scenarios_alone_leave_an_existing_state_as_it_was(cli, isolated_state, temp_dir):
    mine = cli.json("create-resource", "web1", "--type", "webapp", "--system-assigned")
    cli.ok("token", "web1", "--audience", "https://vault.azure.net")
    private = isolated_state.parent / (isolated_state.name + ".d")

    def snapshot() -> dict[str, tuple[bytes, int]]:
        files = [isolated_state, *sorted(p for p in private.rglob("*") if p.is_file())]
        return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}

    before = snapshot()
    log = cli.json("log")
    for scenario, story in (("migration", migration_story), ("shared-identity", shared_identity_story)):
        result = cli("demo", scenario)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        story(result.stdout)
    assert snapshot() == before
    assert cli.json("log") == log
    assert cli.json("list", "resources") == [mine]
    assert [t["displayName"] for t in cli.json("list", "tenants")] == ["Default Directory"]
    assert list(temp_dir.iterdir()) == []


def test_demo_unknown_scenario_is_a_usage_error(cli, isolated_state, temp_dir):
    result = cli("demo", "nosuch")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "nosuch" in result.stderr
    assert not isolated_state.parent.exists()
    assert list(temp_dir.iterdir()) == []


def test_installed_msi_demo(msi_proc, tmp_path, monkeypatch):
    """As a user runs it: no MSI_STATE, a home of its own; nothing is written there or in TMPDIR."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.delenv("MSI_STATE", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    done = msi_proc("demo", env={"HOME": str(home), "TMPDIR": str(tmp), "COLUMNS": "80"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(check_output(done.stdout, SCENARIOS)) == 4  # one principal change per scenario but federation
    assert list(home.iterdir()) == []
    assert list(tmp.iterdir()) == []
