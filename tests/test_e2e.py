"""End to end: the installed `msi` in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import msi_executable

from msi_cli.core import lifecycle
from msi_cli.store.statefile import StateFile


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}: {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, f"{result.args}: {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, repr(result.stderr)
    assert result.stderr.startswith("error: ")
    return result.stderr.rstrip("\n")


def test_lifecycle_end_to_end(msi_proc, isolated_state):
    web = json.loads(ok(msi_proc("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "json")))
    assert web["identity"]["type"] == "SystemAssigned"
    shared = json.loads(ok(msi_proc("create-identity", "shared-id", "-o", "json")))
    for vm in ("vm1", "vm2"):
        ok(msi_proc("create-resource", vm, "--type", "vm", "--user-assigned", "shared-id", "-o", "none"))

    listed = json.loads(ok(msi_proc("list", "resources", "-o", "json")))
    assert [r["name"] for r in listed] == ["web1", "vm1", "vm2"]
    assert listed[0] == web
    for r in listed[1:]:
        assert r["identity"]["userAssignedIdentities"] == {
            shared["id"]: {"principalId": shared["principalId"], "clientId": shared["clientId"]}
        }
    assert json.loads(ok(msi_proc("show", "web1", "-o", "json"))) == web
    table = ok(msi_proc("show", "web1"))
    assert "web1" in table and web["identity"]["principalId"] in table

    principal = json.loads(ok(msi_proc("show", web["identity"]["principalId"], "-o", "json")))
    assert principal["servicePrincipalType"] == "ManagedIdentity"
    assert principal["alternativeNames"] == ["isExplicit=False", web["id"]]

    # deleting the user-assigned identity does not detach it (Azure keeps the references: a
    # warning says so); deleting the app removes its identity
    deleted = msi_proc("delete", "shared-id", "--yes", "-o", "json")
    assert deleted.returncode == 0 and deleted.stderr.startswith("warning: 'shared-id' is still assigned to 2 resource(s)")
    gone = json.loads(deleted.stdout)
    assert sorted(gone["stillReferencedBy"]) == sorted(r["id"] for r in listed[1:])
    dangling = {shared["id"]: {"principalId": shared["principalId"], "clientId": shared["clientId"]}}
    assert json.loads(ok(msi_proc("show", "vm1", "-o", "json")))["identity"] == {"type": "UserAssigned", "userAssignedIdentities": dangling}
    ok(msi_proc("delete", web["id"], "--yes", "-o", "none"))
    assert [r["name"] for r in json.loads(ok(msi_proc("list", "resources", "-o", "json")))] == ["vm1", "vm2"]
    assert json.loads(ok(msi_proc("list", "principals", "-o", "json"))) == []
    one_error_line(msi_proc("show", web["identity"]["principalId"]), 3)

    state = StateFile(isolated_state).read()
    assert sorted(r.name for r in state.resources.values()) == ["vm1", "vm2"]
    assert not state.identities and not state.principals


def test_system_assigned_reenable_end_to_end(msi_proc):
    ok(msi_proc("create-resource", "vm1", "--type", "vm"))
    first = json.loads(ok(msi_proc("assign", "vm1", "-o", "json")))["systemAssignedIdentity"]
    assert json.loads(ok(msi_proc("assign", "vm1", "-o", "json")))["systemAssignedIdentity"] == first
    ok(msi_proc("unassign", "vm1", "--system-assigned", "-o", "none"))
    second = json.loads(ok(msi_proc("assign", "vm1", "-o", "json")))["systemAssignedIdentity"]
    assert second and second != first


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("show", "nope"), 3, "not found"),
        (("delete", "nope", "--yes"), 3, "not found"),
        (("create-resource", "bad name", "--type", "vm"), 1, "invalid virtual machine name"),
        (("create-resource", "vm1", "--type", "vm"), 1, "already exists"),
        (("unassign", "vm1", "--system-assigned"), 1, "are not associated with 'vm1'"),
        (("assign", "kv-01"), 1, "does not support managed identities"),
        (("create-resource", "x1", "--type", "mainframe"), 2, "mainframe"),
        (("create-resource", "x1", "--type", "vm", "--bogus"), 2, "--bogus"),
        (("delete", "vm1"), 2, "--yes"),  # no terminal to confirm on
        (("no-such-command",), 2, "no-such-command"),
    ],
)
def test_errors_are_one_line_with_the_documented_exit_code(msi_proc, isolated_state, args, code, words):
    ok(msi_proc("create-resource", "vm1", "--type", "vm", "-o", "none"))
    ok(msi_proc("create-resource", "kv-01", "--type", "keyvault", "-o", "none"))
    before = isolated_state.read_bytes()
    line = one_error_line(msi_proc(*args, input=""), code)
    assert words in line
    assert isolated_state.read_bytes() == before


def test_ambiguous_name_end_to_end(msi_proc, isolated_state):
    one = json.loads(ok(msi_proc("create-resource", "vm1", "--type", "vm", "-g", "rg1", "-o", "json")))
    two = json.loads(ok(msi_proc("create-resource", "vm1", "--type", "vm", "-g", "rg2", "-o", "json")))
    line = one_error_line(msi_proc("delete", "vm1", "--yes"), 2)  # a usage error: which one?
    assert one["id"] in line and two["id"] in line and "-g rg1" in line
    ok(msi_proc("delete", two["id"], "--yes", "-o", "none"))
    assert [r["id"] for r in json.loads(ok(msi_proc("list", "resources", "-o", "json")))] == [one["id"]]


def test_broken_state_file_end_to_end(msi_proc, isolated_state):
    ok(msi_proc("create-resource", "vm1", "--type", "vm", "-o", "none"))
    broken = isolated_state.read_bytes().replace(b'type = "vm"', b'type = "vm')
    isolated_state.write_bytes(broken)
    for args in (("list", "resources"), ("create-resource", "vm2", "--type", "vm")):
        line = one_error_line(msi_proc(*args), 1)
        assert str(isolated_state) in line and "line " in line
    assert isolated_state.read_bytes() == broken


def test_python_m_and_version(msi_proc):
    version = ok(msi_proc("--version"))
    assert version.startswith("msi ")
    module = subprocess.run([sys.executable, "-m", "msi_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert module.returncode == 0 and module.stdout == version


def test_state_location_env_option_and_app_dir(msi_proc, isolated_state, tmp_path):
    config = tmp_path / "config"
    home = {"XDG_CONFIG_HOME": str(config), "HOME": str(tmp_path / "home")}
    # MSI_STATE (set by the fixture) is used, the app dir is not touched
    ok(msi_proc("create-identity", "id-env", "-o", "none", env=home))
    assert isolated_state.exists() and not config.exists()
    # --state beats MSI_STATE
    other = tmp_path / "other" / "state.toml"
    ok(msi_proc("--state", str(other), "--create", "create-identity", "id-opt", "-o", "none", env=home))  # a new folder: --create
    assert [i.name for i in StateFile(other).read().identities.values()] == ["id-opt"]
    assert [i.name for i in StateFile(isolated_state).read().identities.values()] == ["id-env"]
    # neither: state.toml in the user's app dir
    env = {k: v for k, v in os.environ.items() if k != "MSI_STATE"} | home
    result = subprocess.run(
        [*msi_executable(), "create-identity", "id-app", "-o", "none"], capture_output=True, text=True, env=env, timeout=60
    )
    ok(result)
    app_state = config / "msi-cli" / "state.toml"
    assert [i.name for i in StateFile(app_state).read().identities.values()] == ["id-app"]


def test_output_closed_early_is_not_a_traceback(msi_proc, isolated_state):
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        for n in range(300):
            lifecycle.create_resource(ctx, f"vm{n}", "vm", None, None, None)
    proc = subprocess.Popen(
        [*msi_executable(), "list", "resources", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ)
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().strip() == b"["
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err


@pytest.mark.parametrize("entry", ["console script", "python -m"])
def test_output_to_files_is_whole_and_the_exit_status_kept(isolated_state, tmp_path, entry):
    """msi leaves without the interpreter's teardown: what it wrote to a file (fully buffered,
    unlike a terminal) must still all be there, and the exit status be the command's."""
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        for n in range(300):
            lifecycle.create_resource(ctx, f"vm{n}", "vm", None, None, None)
    program = msi_executable() if entry == "console script" else [sys.executable, "-m", "msi_cli"]
    out, err = tmp_path / "out", tmp_path / "err"

    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}  # a file is block-buffered

    def run(*args: str) -> int:
        with out.open("wb") as stdout, err.open("wb") as stderr:
            return subprocess.run([*program, *args], stdout=stdout, stderr=stderr, env=env, timeout=60).returncode

    assert run("list", "resources", "-o", "json") == 0
    assert len(json.loads(out.read_text())) == 300  # some 100 KB: many buffers' worth
    assert err.read_text() == ""
    assert run("show", "nosuch") == 3
    assert out.read_text() == "" and err.read_text().startswith("error: ") and err.read_text().count("\n") == 1
    assert run("--version") == 0 and out.read_text().strip()
