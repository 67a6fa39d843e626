"""Guidance on mistakes: help that states the truth, suggestions for unknown names and commands,
ambiguity as a usage error naming the option to add, --scope by group name, --state typos,
az's -n/--ids, and how msi serve and confirmations end."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import fails, msi_executable

SUB2 = "sub2"


@pytest.fixture
def world(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
    cli.ok("create-identity", "shared-id", "-g", "rg1", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--user-assigned", "shared-id", "-o", "none")
    return cli


def plain_help(cli, *command: str) -> str:
    """--help as words: rich's box drawing and line wrapping taken out."""
    text = cli.ok(*command, "--help").stdout
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# ---- 7. option help states the truth; ambiguity is a usage error -------------------------------------


@pytest.mark.parametrize("command", [("show",), ("list",), ("delete",), ("env",), ("assign",), ("unassign",), ("token",), ("check-access",)])
def test_lookup_group_option_says_it_searches_every_group(cli, command):
    text = plain_help(cli, *command)
    assert "Resource group to look in (default: every group)." in text
    assert "(default: every subscription)" in text
    assert "'default'" not in text


def test_create_commands_still_default_to_the_default_group(cli):
    assert "(default: 'default')" in plain_help(cli, "create-resource")


def test_ambiguous_name_is_a_usage_error_with_the_option_to_add(world, isolated_state):
    world.ok("create-resource", "vm1", "--type", "vm", "-g", "rg2", "-o", "none")
    before = isolated_state.read_bytes()
    for args in (("show", "vm1"), ("token", "vm1", "--audience", "https://vault.azure.net"), ("delete", "vm1", "--yes")):
        line = fails(world(*args), 2, "'vm1' matches 2 resources", "add -g rg1 or -g rg2, or give the full id")
        assert line.count("/resourceGroups/rg") == 2
    assert isolated_state.read_bytes() == before
    assert world.json("show", "vm1", "-g", "rg2")["resourceGroup"] == "rg2"


def test_same_name_in_two_subscriptions_names_the_subscription_option(world):
    world.ok("create-subscription", SUB2, "-o", "none")
    world.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--subscription", SUB2, "-o", "none")
    ids = [s["id"] for s in world.json("list", "subscriptions")]
    line = fails(world("show", "vm1"), 2, "--subscription")
    assert all(f"--subscription {sub}" in line for sub in ids)


# ---- 8. unknown names suggest the closest ones -----------------------------------------------------


def test_unknown_resource_suggests_the_closest(world):
    fails(world("show", "wbe1"), 3, "'wbe1' not found", "did you mean 'web1'?")
    fails(world("token", "wbe1", "--audience", "https://vault.azure.net"), 3, "did you mean 'web1'?")


def test_a_name_outside_the_group_given_says_where_it_is(world):
    """Not "did you mean" the same name: where the name is, and how to name it."""
    shared = world.json("show", "shared-id")["id"]
    for args in (("show", "shared-id", "-g", "default"), ("delete", "shared-id", "-g", "default", "--yes")):
        fails(world(*args), 3, "'shared-id' not found in resource group 'default'", f"found outside it: {shared}", "-g")
    line = fails(world("show", "vm1", "-g", "default"), 3, "'vm1' not found in resource group 'default'")
    assert "did you mean" not in line


def test_listing_a_group_that_does_not_exist_is_not_an_empty_list(world):
    """As az resource list -g answers (ResourceGroupNotFound; Azure/azure-cli#2184)."""
    for kind in ("resources", "identities"):
        fails(world("list", kind, "-g", "rg2"), 3, "resource group 'rg2' not found", "did you mean 'rg1'?")
    assert [r["name"] for r in world.json("list", "resources", "-g", "RG1")] == ["vm1"]
    world.ok("create-subscription", SUB2, "-o", "none")
    line = fails(world("list", "resources", "-g", "rg1", "--subscription", SUB2), 3, "resource group 'rg1' not found in subscription")
    assert "found in subscription" in line and "did you mean" not in line
    fails(world("list", "resources", "-g", ""), 1, "invalid resource group name ''")


def test_unknown_identity_suggests_the_closest(world, isolated_state):
    before = isolated_state.read_bytes()
    fails(world("assign", "vm1", "--user-assigned", "shraed-id"), 3, "'shraed-id' not found", "did you mean 'shared-id'?")
    assert isolated_state.read_bytes() == before


def test_unknown_role_suggests_the_closest(world):
    fails(world("grant", "web1", "--role", "Reder", "--scope", "web1"), 3, "role 'Reder' not found", "did you mean 'Reader'?")


def test_unknown_tenant_and_subscription_suggest_the_closest(world):
    world.ok("create-tenant", "Contoso", "-o", "none")
    fails(world("list", "resources", "--tenant", "Contosso"), 3, "tenant 'Contosso' not found", "did you mean 'Contoso'?")
    fails(world("list", "resources", "--subscription", "defualt"), 3, "did you mean 'default'?")


def test_unknown_audience_suggests_the_known_one(world):
    line = fails(world("token", "web1", "--audience", "vault"), 1, "did you mean 'https://vault.azure.net'?")
    assert "AADSTS500011" not in line or "did you mean" in line


def test_nothing_close_suggests_nothing(world):
    line = fails(world("show", "zzzzzz"), 3)
    assert "did you mean" not in line


@pytest.mark.parametrize(
    ("argv", "meant"),
    [(["version"], "Did you mean 'msi --version'?"), (["create", "web1"], "'create-resource'"), (["shwo", "web1"], "'show'")],
)
def test_unknown_command_names_the_meant_one(cli, argv, meant):
    fails(cli(*argv), 2, f"No such command '{argv[0]}'", meant)


def test_help_command_is_the_help_option(cli):
    assert cli.ok("help").stdout == cli.ok("--help").stdout
    assert cli.ok("help", "token").stdout == cli.ok("token", "--help").stdout
    assert cli.ok("help", "clock", "advance").stdout == cli.ok("clock", "advance", "--help").stdout
    fails(cli("help", "nosuch"), 2, "No such command 'nosuch'")


# ---- 9. --scope by resource group name -----------------------------------------------------------------


def test_scope_takes_a_resource_group_name(world):
    sub = world.json("list", "subscriptions")[0]["id"]
    assignment = world.json("grant", "web1", "--role", "Reader", "--scope", "rg1")
    assert assignment["scope"] == f"/subscriptions/{sub}/resourceGroups/rg1"
    fails_denied = world("check-access", "vm1", "--role", "Reader", "--scope", "rg1")  # vm1's identity was not granted
    assert fails_denied.exit_code == 1 and "resourceGroups/rg1 or above" in fails_denied.stderr
    assert world.ok("check-access", "web1", "--role", "Reader", "--scope", "rg1", "-o", "none").exit_code == 0
    assert world.json("list", "role-assignments", "--scope", "rg1")[0]["scope"] == assignment["scope"]


def test_scope_errors_explain_the_forms(world):
    fails(world("grant", "web1", "--role", "Reader", "--scope", "rgg1"), 3, "scope 'rgg1' not found", "did you mean 'rg1'?",
          "a resource group name", "/subscriptions/ID")
    fails(world("grant", "web1", "--role", "Reader", "--scope", "/nonsense"), 2, "invalid scope", "a resource group name")


def test_scope_name_of_two_objects_is_ambiguous(world):
    world.ok("create-subscription", SUB2, "-o", "none")
    world.ok("create-identity", "other-id", "-g", "rg1", "--subscription", SUB2, "-o", "none")
    fails(world("grant", "web1", "--role", "Reader", "--scope", "rg1"), 2, "scope 'rg1' matches 2", "full id")


# ---- 10. --state typos -------------------------------------------------------------------------------------


def test_state_in_a_missing_folder_is_refused_without_create(cli, tmp_path):
    typo = tmp_path / "no-such-folder" / "state.toml"
    fails(cli("--state", str(typo), "list", "resources"), 2, "no-such-folder", "--create")
    assert not typo.parent.exists()
    cli.ok("--state", str(typo), "--create", "list", "resources")
    assert typo.is_file()
    cli.ok("--state", str(typo), "list", "resources")  # it exists now


def test_state_beside_an_existing_folder_needs_no_create(cli, tmp_path):
    cli.ok("--state", str(tmp_path / "new.toml"), "list", "resources")
    assert (tmp_path / "new.toml").is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
def test_a_brand_new_state_is_announced_once_on_a_terminal(tmp_path):
    import pty

    state = tmp_path / "s.toml"

    def stderr_on_a_terminal(*args: str) -> str:
        master, slave = pty.openpty()
        proc = subprocess.Popen([*msi_executable(), "--state", str(state), *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(30)
        os.close(master)
        return b"".join(chunks).decode()

    first = stderr_on_a_terminal("list", "resources", "-o", "none")
    assert first.count("created a new state at") == 1 and str(state) in first
    assert "created a new state" not in stderr_on_a_terminal("list", "resources", "-o", "none")


def test_no_announcement_when_stderr_is_not_a_terminal(cli, tmp_path):
    result = cli.ok("--state", str(tmp_path / "quiet.toml"), "list", "resources", "-o", "none")
    assert result.stderr == ""


# ---- 11. -n/--name and --ids --------------------------------------------------------------------------------


def test_name_option_is_the_positional_name(world):
    assert world.json("show", "-n", "web1") == world.json("show", "web1")
    assert world.json("show", "--name", "vm1")["name"] == "vm1"
    fails(world("show", "web1", "-n", "web1"), 2, "give the name once")
    fails(world("show"), 2, "missing a name", "--ids ID")
    fails(world("env"), 2, "missing a name", "give NAME or -n NAME")


def test_ids_take_full_ids_space_delimited(world):
    ids = [r["id"] for r in world.json("list", "resources")]
    assert world.json("show", "--ids", ids[0])["id"] == ids[0]
    both = world.json("show", "--ids", *ids)  # az's --ids A B
    assert [r["id"] for r in both] == ids
    assert [r["id"] for r in world.json("show", "--ids", " ".join(ids))] == ids  # --ids "$(... -o tsv)"
    fails(world("show", "--ids", "web1"), 2, "full resource ids", "-n web1")
    fails(world("show", "web1", "--ids", ids[0]), 2, "either --ids or a name")


def test_ids_on_assign_unassign_token_and_delete(world, isolated_state):
    vm1 = world.json("show", "vm1")["id"]
    web1 = world.json("show", "web1")["id"]
    assigned = world.json("assign", "--ids", vm1)
    assert assigned["systemAssignedIdentity"]
    token = world.json("token", "--ids", vm1, "--audience", "https://vault.azure.net")
    assert token["token_type"] == "Bearer"
    fails(world("token", "--ids", vm1, web1, "--audience", "https://vault.azure.net"), 2, "one target")
    world.ok("unassign", "--ids", vm1, "--system-assigned", "-o", "none")
    assert world.json("show", vm1)["identity"]["type"] == "UserAssigned"
    deleted = world.json("delete", "--ids", vm1, web1, "--yes")
    assert len(deleted) == 2
    assert world.json("list", "resources") == []


# ---- 12. msi serve's faults and Ctrl-C; a declined confirmation ---------------------------------------


def test_serve_refuses_a_fault_on_a_missing_resource(msi_proc, isolated_state):
    assert msi_proc("create-resource", "vm1", "--type", "vm", "--system-assigned", "-o", "none").returncode == 0
    proc = msi_proc("serve", "--fault", "vm2:410", timeout=60)
    assert proc.returncode == 3 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --fault 'vm2:410': resource 'vm2' not found"), proc.stderr
    assert "did you mean 'vm1'?" in lines[0]


def test_ctrl_c_on_serve_exits_130(isolated_state):
    proc = subprocess.Popen([*msi_executable(), "serve", "--fault", "*:410"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, MSI_STATE=str(isolated_state)))
    try:
        assert proc.stdout.readline().startswith(b"http://")  # it listens
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        assert b"stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
def test_declining_a_confirmation_ends_with_cancelled_on_its_own_line(world, isolated_state):
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([*msi_executable(), "delete", "web1"], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, MSI_STATE=str(isolated_state)))
    os.close(slave)
    err = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b"[y/N]" not in err:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        if ready:
            err += os.read(proc.stderr.fileno(), 4096)
    os.write(master, b"n\n")
    out, rest = proc.communicate(timeout=60)
    os.close(master)
    lines = (err + rest).decode().splitlines()
    assert proc.returncode == 1 and out == b""
    assert lines[-1] == "error: cancelled: nothing was changed"
    assert lines[-2].endswith("[y/N]: ")
    assert [r["name"] for r in world.json("list", "resources")] == ["web1", "vm1"]
