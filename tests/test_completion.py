"""Shell completion: the generated scripts, the values `msi` completes, and a real bash session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, msi_executable
from msi_cli.cli import click_command, complete, load, options, shellscripts

sys.path.insert(0, str(REPO / "scripts"))
import gen_completions

README = REPO / "README.md"


@pytest.fixture
def world(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
    cli.ok("create-identity", "shared-id", "-g", "rg1", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--user-assigned", "shared-id", "-o", "none")
    cli.ok("create-tenant", "Contoso Ltd", "-o", "none")
    cli.ok("create-subscription", "prod", "--tenant", "Contoso Ltd", "-o", "none")
    cli.ok("create-resource", "api1", "--type", "functionapp", "-g", "rg2", "--subscription", "prod", "-o", "none")
    return cli


def complete_words(*words: str) -> list[str]:
    """What `msi` offers for the last word, in-process, through the same machinery the shell
    scripts call (`_MSI_COMPLETE=complete_bash`)."""
    comp = shellscripts.shell_completer(click_command(), "bash")
    return [item.value for item in comp.get_completions(list(words[:-1]), words[-1])]


# ---- the scripts in completions/ ---------------------------------------------------------------


def test_checked_in_scripts_are_up_to_date():
    assert gen_completions.stale() == [], "run: python scripts/gen_completions.py"


def test_regenerating_writes_exactly_the_checked_in_scripts(tmp_path):
    written = gen_completions.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(gen_completions.FILES.values())
    for path in written:
        assert path.read_bytes() == (REPO / "completions" / path.name).read_bytes(), path.name


def _without_header(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(("# bash", "# zsh", "# fish", "# powershell", "# Install:")))


@pytest.mark.parametrize("shell", sorted(gen_completions.FILES))
def test_scripts_are_what_msi_itself_prints(shell, msi_proc):
    proc = msi_proc(env={"_MSI_COMPLETE": f"source_{shell}"})
    assert proc.returncode == 0, proc.stderr
    checked_in = (REPO / "completions" / gen_completions.FILES[shell]).read_text(encoding="utf-8")
    assert _without_header(checked_in) == proc.stdout.strip() + "\n"
    assert "_MSI_COMPLETE=complete_" in checked_in or '_MSI_COMPLETE = "complete_' in checked_in  # calls back into msi


@pytest.mark.parametrize(("shell", "check"), [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_scripts_parse_in_their_shell(shell, check):
    if shutil.which(check[0]) is None:
        pytest.skip(f"{check[0]} is not installed")
    path = REPO / "completions" / gen_completions.FILES[shell]
    proc = subprocess.run([*check, str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


# ---- the values ---------------------------------------------------------------------------------


def test_commands_and_options_complete(world):
    assert {"create-resource", "delete", "show", "list"} <= set(complete_words("cr")) | set(complete_words(""))
    assert "--resource-group" in complete_words("show", "--res")


def test_targets_are_resources_and_user_assigned_identities(world):
    assert set(complete_words("show", "")) == {"web1", "vm1", "shared-id", "api1"}
    assert complete_words("delete", "sh") == ["shared-id"]


def test_resource_arguments_offer_resources_only(world):
    assert set(complete_words("assign", "")) == {"web1", "vm1", "api1"}
    assert set(complete_words("unassign", "")) == {"web1", "vm1", "api1"}


def test_resource_group_and_subscription_on_the_line_narrow_the_names(world):
    assert set(complete_words("delete", "-g", "rg1", "")) == {"vm1", "shared-id"}
    assert complete_words("show", "--subscription", "prod", "") == ["api1"]


def test_full_ids_once_the_word_starts_with_a_slash(world):
    ids = complete_words("show", "/")
    assert any(i.endswith("/providers/Microsoft.Web/sites/web1") for i in ids)
    assert any(i.endswith("/userAssignedIdentities/shared-id") for i in ids)


def test_user_assigned_identities(world):
    assert complete_words("assign", "web1", "--user-assigned", "") == ["shared-id"]
    assert complete_words("create-resource", "x", "--type", "vm", "--user-assigned", "") == ["shared-id"]


def test_tenants_subscriptions_and_groups(world):
    assert set(complete_words("create-subscription", "x", "--tenant", "")) == {"Default Directory", "Contoso Ltd"}
    assert set(complete_words("list", "subscriptions", "--tenant", "Con")) == {"Contoso Ltd"}
    assert set(complete_words("create-identity", "x", "--subscription", "")) == {"default", "prod"}
    assert set(complete_words("create-identity", "x", "-g", "")) == {"default", "rg1", "rg2"}


def test_every_command_completes_the_shared_options(world):
    """GroupOpt (DestinationGroupOpt), SubscriptionOpt and UserAssignedOpt carry their completion wherever used."""
    load()
    root = click_command()
    shared = {
        options.SubscriptionOpt.__metadata__[0].help: ("--subscription", lambda got: "prod" in got),
        options.GroupOpt.__metadata__[0].help: ("-g", lambda got: "rg1" in got),
        options.DestinationGroupOpt.__metadata__[0].help: ("-g", lambda got: "rg1" in got),
        options.UserAssignedOpt.__metadata__[0].help: ("--user-assigned", lambda got: got == ["shared-id"]),
    }
    checked = 0

    def walk(command, path):
        nonlocal checked
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        first_args = ["x"] * sum(1 for p in command.params if p.param_type_name == "argument")
        for param in command.params:
            if getattr(param, "help", None) in shared:
                flag, ok = shared[param.help]
                got = complete_words(*path, *first_args, flag, "")
                assert ok(got), (path, flag, got)
                checked += 1

    walk(root, [])
    assert checked >= 8


def test_scopes_roles_and_types(world):
    scopes = complete_words("list", "role-assignments", "--scope", "/")
    assert any(s.endswith("/resourceGroups/rg1") for s in scopes)
    assert any(s.endswith("/virtualMachines/vm1") for s in scopes)
    assert set(complete_words("create-resource", "x", "--type", "")) == {
        "vm", "vmss", "webapp", "functionapp", "containerapp", "keyvault", "storage"
    }
    assert complete_words("list", "resources", "--type", "v") == ["vm", "vmss"]
    roles = complete.complete_roles(None, [], "Key Vault S")
    assert [r[0] for r in roles] == ["Key Vault Secrets Officer", "Key Vault Secrets User"]
    assert all(isinstance(r, tuple) and len(r[1]) == 36 for r in roles)  # role definition id as help


def test_list_kinds_and_output_formats(world):
    assert complete_words("list", "r") == ["resources", "role-assignments"]
    assert complete_words("show", "web1", "-o", "") == ["table", "json", "jsonc", "yaml", "tsv", "none"]


def test_state_on_the_command_line_is_used(world, isolated_state, tmp_path, monkeypatch):
    monkeypatch.setenv("MSI_STATE", str(tmp_path / "elsewhere" / "state.toml"))
    assert complete_words("show", "") == []
    assert set(complete_words("--state", str(isolated_state), "show", "")) == {"web1", "vm1", "shared-id", "api1"}


def test_no_state_file_completes_nothing_and_creates_nothing(isolated_state):
    assert not isolated_state.exists()
    assert complete_words("show", "") == []
    assert complete_words("create-subscription", "x", "--tenant", "") == []
    assert not isolated_state.exists()
    assert not isolated_state.parent.exists()


def test_a_broken_state_file_completes_nothing_quietly(isolated_state, capsys):
    isolated_state.parent.mkdir(parents=True)
    isolated_state.write_text("this is [not toml\n")
    assert complete_words("show", "") == []
    assert complete.complete_targets(None, [], "") == []
    assert capsys.readouterr().err == ""


def test_completion_functions_are_lazy_in_options():
    """Command modules wire options.complete_*; the completion module loads only when called."""
    for name in ("complete_targets", "complete_resources", "complete_identities", "complete_tenants",
                 "complete_subscriptions", "complete_groups", "complete_scopes", "complete_roles", "complete_types"):
        assert callable(getattr(options, name)) and callable(getattr(complete, name))
    assert [r[0] for r in options.complete_roles(None, [], "Own")] == ["Owner"]


# ---- the other shells' protocols, through the installed msi --------------------------------------


def test_zsh_fish_and_powershell_protocols(world, msi_proc):
    zsh = msi_proc(env={"_MSI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "msi delete -g rg1 "})
    assert zsh.returncode == 0 and zsh.stdout.startswith("_arguments"), zsh.stderr
    assert '"vm1"' in zsh.stdout and '"shared-id"' in zsh.stdout and "web1" not in zsh.stdout

    fish = msi_proc(env={"_MSI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                         "_TYPER_COMPLETE_ARGS": "msi create-subscription x --tenant Con"})
    assert fish.returncode == 0, fish.stderr
    assert fish.stdout.splitlines()[0].split("\t")[0] == "Contoso Ltd"

    ps = msi_proc(env={"_MSI_COMPLETE": "complete_powershell", "_TYPER_COMPLETE_ARGS": "msi show w",
                       "_TYPER_COMPLETE_WORD_TO_COMPLETE": "w"})
    assert ps.returncode == 0, ps.stderr
    assert [line.split(":::")[0] for line in ps.stdout.splitlines() if line] == ["web1"]


# ---- bash, installed as the README says, driven as bash drives it ---------------------------------


def _readme_block(shell_comment: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Shell completion"):text.index("<!-- BEGIN COMMAND REFERENCE -->")]
    for block in re.findall(r"```(?:sh|powershell)\n(.*?)```", section, re.S):
        if block.startswith(shell_comment):
            return block
    raise AssertionError(f"no '{shell_comment}' block in README's Shell completion section")


def _bin_with_msi(tmp_path: Path) -> Path:
    """A directory holding `msi`: the installed console script's, else a shim."""
    exe = msi_executable()
    if len(exe) == 1:
        return Path(exe[0]).parent
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "msi"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m msi_cli "$@"\n')
    shim.chmod(0o755)
    return shim_dir


DRIVE_BASH = r"""
spec=$(complete -p msi) || { echo "NO COMPLETION FOR msi"; exit 1; }
func=${spec##*-F }; func=${func%% *}
ask() {  # as bash calls the function: the word being completed is passed without an opening quote
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    local word=${COMP_WORDS[COMP_CWORD]}
    "$func" "${COMP_WORDS[0]}" "${word#[\'\"]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "${COMPREPLY[@]}"; echo "@@"
}
ask msi show ''
ask msi delete -g rg1 ''
ask msi assign w
ask msi create-subscription x --tenant Con
ask msi create-subscription x --tenant "'Con"
ask msi list res
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_installed_as_the_readme_says(world, isolated_state, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASH_", "_MSI"))}
    env.update(HOME=str(home), MSI_STATE=str(isolated_state), PATH=f"{_bin_with_msi(tmp_path)}{os.pathsep}{env.get('PATH', '')}")

    install = subprocess.run(["bash", "-e", "-c", _readme_block("# bash")], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert install.returncode == 0, install.stderr
    assert (home / ".bashrc").is_file()

    # an interactive bash reads ~/.bashrc, as a new terminal would
    proc = subprocess.run(["bash", "-i", "-c", DRIVE_BASH], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers = [block.split("\n") for block in proc.stdout.split("@@\n")[:-1]]
    answers = [[line for line in block if line] for block in answers]
    assert set(answers[0]) == {"web1", "vm1", "shared-id", "api1"}
    assert set(answers[1]) == {"vm1", "shared-id"}
    assert answers[2] == ["web1"]
    assert answers[3] == [r"Contoso\ Ltd"]  # escaped, so it stays one argument
    assert answers[4] == ["Contoso Ltd"]  # inside quotes, bash needs no escaping
    assert answers[5] == ["resources"]


def test_bash_protocol_the_line_up_to_the_cursor_and_the_text_bash_replaces(world, msi_proc):
    """The script passes the line and the function's `$2` (bash's word: after the last `=` or `:`,
    or after an open quote); msi answers with what bash must insert there, quoted."""
    def ask(line, word):
        proc = msi_proc(env={"_MSI_COMPLETE": "complete_bash", "_MSI_COMP_LINE": line, "_MSI_COMP_WORD": word})
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return proc.stdout.splitlines()

    assert ask("msi token vm1 --audience=https://management.az", "//management.az") == ["//management.azure.com"]
    assert ask("msi create-subscription x --tenant=Con", "Con") == ["Contoso\\ Ltd"]
    assert ask("msi create-subscription x --tenant 'Con", "Con") == ["Contoso Ltd"]
    assert ask("msi delete --resource-group=rg1 ", "") == ["vm1", "shared-id"]


def test_a_bash_script_installed_by_an_earlier_msi_still_completes(world, msi_proc):
    """That script passes COMP_WORDS (split at `=` and `:`) and quotes the values itself."""
    proc = msi_proc(env={"_MSI_COMPLETE": "complete_bash", "COMP_WORDS": "msi\ncreate-subscription\nx\n--tenant\nCon",
                         "COMP_CWORD": "4"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Contoso Ltd"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_tab_on_the_command_name_offers_what_the_whole_tree_does(shell):
    """A TAB before any command is answered from names and help alone (no command's parameters
    are built); it offers exactly what the full command tree offers, descriptions included."""
    from msi_cli.cli import root_for_completion
    from msi_cli.cli.shellscripts import shell_completer

    for words, incomplete in (([], ""), ([], "cr"), ([], "--"), (["--state", "x"], "")):
        full = [(i.value, i.help, i.type) for i in shell_completer(click_command(), shell).get_completions(words, incomplete)]
        light = [(i.value, i.help, i.type) for i in shell_completer(root_for_completion(), shell).get_completions(words, incomplete)]
        assert light == full and full
    assert len(click_command().commands) > 20  # the registrations are whole again afterwards


def test_a_completion_request_without_the_shells_words_completes_nothing(msi_proc):
    for mode in ("complete_bash", "complete_zsh"):
        out = msi_proc(env={"_MSI_COMPLETE": mode})
        assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stderr
