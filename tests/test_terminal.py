"""What a person sees in a terminal (issue 13): at 80 and 160 columns no id, GUID, name or time is
split across lines; tables keep the columns that fit; help and the demo wrap between words."""

from __future__ import annotations

import inspect
import json
import os
import pty
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from msi_cli.cli.render import TERMINAL

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HEXISH = re.compile(r"[0-9a-fA-F-]")  # a character a GUID's token can go on with
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def estate(cli):
    """One of everything a table shows: every resource kind, identities (one deleted: a dangling
    entry), a role assignment and an orphaned one, a tenant, a subscription, an issuer, a credential."""
    cli.ok("create-tenant", "Contoso")
    cli.ok("create-subscription", "prod", "--tenant", "Contoso")
    cli.ok("create-identity", "shared-id", "-g", "workers")
    cli.ok("create-identity", "gone-id", "-g", "workers")
    for name, kind in (("vm1", "vm"), ("ss1", "vmss"), ("web1", "webapp"), ("fn1", "functionapp"), ("ca1", "containerapp")):
        cli.ok("create-resource", name, "--type", kind, "-g", "workers", "--system-assigned", "--user-assigned", "shared-id")
    cli.ok("create-resource", "kv1", "--type", "keyvault", "-g", "workers")
    cli.ok("create-resource", "st1", "--type", "storage", "-g", "workers")
    cli.ok("assign", "vm1", "--user-assigned", "gone-id")
    cli.ok("grant", "web1", "--role", "Key Vault Secrets User", "--scope", "kv1")
    cli.ok("grant", "gone-id", "--role", "Reader", "--scope", "st1")
    cli.ok("delete", "gone-id", "--yes")  # vm1 keeps a dangling entry; the Reader grant is orphaned
    cli.ok("issuer", "create", "gh", "--kind", "github")
    cli.ok("federation", "add", "shared-id", "--name", "main", "--issuer", "https://token.actions.githubusercontent.com",
           "--subject", "repo:octo/app:ref:refs/heads/main")
    return cli


COMMANDS = [
    *[("list", kind) for kind in ("resources", "identities", "principals", "role-assignments", "tenants", "subscriptions", "groups")],
    ("list", "principals", "--deleted"),
    ("show", "vm1"), ("show", "web1"), ("show", "shared-id"), ("show", "kv1"),
    ("log",), ("federation", "list", "shared-id"), ("issuer", "list"), ("clock", "show"), ("jwks", "-o", "table"),
    ("check-access", "web1", "--scope", "kv1", "--role", "Key Vault Secrets User"),
]
CHANGING = [
    ("create-identity", "new-id", "-g", "workers"), ("create-resource", "web2", "--type", "webapp", "--system-assigned"),
    ("assign", "web2", "--user-assigned", "new-id"), ("create-tenant", "Fabrikam"), ("create-subscription", "dev"),
    ("grant", "web2", "--role", "Reader", "--scope", "kv1"), ("revoke", "web2", "--role", "Reader", "--scope", "kv1"),
]


def in_terminal(cli, width: int, *args: str):
    token = TERMINAL.set((True, width))
    try:
        return cli(*args)
    finally:
        TERMINAL.reset(token)


def assert_whole(text: str, known: set[str]) -> None:
    """Every GUID printed is whole on its line: no line ends or starts with a piece of one. A piece
    is a token of its own: a line that ends in another GUID whose last characters happen to be
    this one's first (1 in 65,536 for four) is no split."""
    lines = text.splitlines()
    for guid in known:
        for line in lines:
            end, start = line.rstrip(), line.lstrip()
            for piece_len in range(4, len(guid)):
                head, tail = guid[:piece_len], guid[piece_len:]
                split_head = end.endswith(head) and not _HEXISH.match(end[-len(head) - 1:-len(head)])
                split_tail = len(tail) > 6 and start.startswith(tail) and not _HEXISH.match(start[len(tail):len(tail) + 1])
                assert not ((split_head or split_tail) and guid not in line), f"{guid} split: {line!r}"
    for line in lines:  # nothing that looks like a broken GUID
        for m in re.finditer(r"[0-9a-f]{8}-[0-9a-f-]{3,}", line):
            assert GUID.fullmatch(m.group(0)) or m.group(0) + "…" in line or m.end() == len(line.rstrip("…")), line


@pytest.mark.parametrize("width", [80, 160])
def test_every_table_and_show_keeps_ids_whole(estate, width):
    known = set(GUID.findall(json.dumps([estate.json(*c[:3] if c[0] != "jwks" else ("jwks",)) for c in COMMANDS[:8]])))
    assert len(known) > 20
    for args in [*COMMANDS, *CHANGING]:
        result = in_terminal(estate, width, *args)
        assert result.exit_code == 0, (args, result.stderr)
        out = result.stdout
        assert out.strip(), args
        assert_whole(out, known | set(GUID.findall(out)))
        assert "│" not in out and "┃" not in out  # no boxes: a value's line is the row's line
        if args[0] in ("list", "federation", "issuer") and width == 160:
            assert all(len(line) <= width for line in out.splitlines()), (args, out)


def test_narrow_tables_drop_columns_not_values(estate):
    at80 = in_terminal(estate, 80, "list", "identities").stdout
    at160 = in_terminal(estate, 160, "list", "identities").stdout
    assert "Client id" in at80 and "Principal id" in at160 and "Location" in at160
    assert all(len(line) <= 80 for line in at80.splitlines())
    resources = in_terminal(estate, 80, "list", "resources").stdout
    assert "webapp" in resources and "Microsoft.Web/sites" not in resources  # short type names
    assert "gone-id (deleted: dangling)" in resources
    assignments = in_terminal(estate, 160, "list", "role-assignments").stdout
    assert "web1" in assignments and "(orphaned)" in assignments  # principal names, orphan marker


def test_narrow_resource_table_keeps_the_group_and_wide_keeps_its_header(estate):
    """At 80 columns the resource group stays (under the short header `Group` where the full one
    would not leave room); at 160 every column is there under its full header, as before."""
    for width in (80, 160):
        out = in_terminal(estate, width, "list", "resources").stdout
        rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["vm1"], ["kv1"], ["st1"])]
        assert len(rows) == 3 and all(row[2] == "workers" for row in rows), (width, out)
        assert all(len(line) <= width for line in out.splitlines()), (width, out)
    wide = in_terminal(estate, 160, "list", "resources").stdout.splitlines()[0].split("  ")
    assert [h.strip() for h in wide if h.strip()] == ["Name", "Type", "Resource group", "Location", "Identity", "Principal id", "User-assigned"]


def test_a_resource_with_two_user_assigned_identities_lists_both_names(estate):
    estate.ok("create-identity", "second-id", "-g", "workers")
    estate.ok("assign", "ss1", "--user-assigned", "second-id")
    piped = estate.ok("list", "resources").stdout
    assert "shared-id, second-id" in piped and "\\x0a" not in piped
    at160 = in_terminal(estate, 160, "list", "resources").stdout
    assert "\\x0a" not in at160
    lines = at160.splitlines()
    first = next(n for n, line in enumerate(lines) if "ss1" in line)
    assert "second-id" in lines[first + 1]  # one name a line in the terminal's table


def test_assign_shows_each_identity_with_its_status_and_ids(estate):
    """At a terminal, `assign` prints a row per identity the resource holds, `added` or `kept`,
    with its principal id and client id where they fit, whole; piped it keeps az's shape."""
    for resource in ("vm1", "web1"):
        principal = estate.json("show", resource)["identity"]["principalId"]
        app_id = estate.json("show", principal)["appId"]
        wide = in_terminal(estate, 160, "assign", resource).stdout
        row = next(line.split() for line in wide.splitlines() if "system-assigned" in line.split())
        assert row[row.index("system-assigned") + 1:] == ["kept", principal, app_id], wide
        narrow = in_terminal(estate, 80, "assign", resource).stdout
        assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
        assert_whole(narrow, {principal, app_id})
        assert app_id not in estate.ok("assign", resource).stdout  # piped: az's shape, unchanged


def test_log_is_two_lines_per_event_at_80(estate):
    entries = estate.json("log")
    lines = in_terminal(estate, 80, "log").stdout.splitlines()
    heads = [line for line in lines if not line.startswith("    ")]
    assert [h.split()[0] for h in heads] == [e["time"] for e in entries]  # a line per event, then its detail
    assert len(entries) <= len(lines) <= 2 * len(entries)
    assert all(len(h) <= 80 for h in heads), heads
    assert "/subscriptions/" not in "\n".join(lines)  # ids as names: -o json has them whole


def test_jsonc_at_a_terminal_is_the_same_json(estate):
    assert in_terminal(estate, 80, "show", "vm1", "-o", "jsonc").stdout == estate.ok("show", "vm1", "-o", "json").stdout


def test_piped_output_is_unchanged_by_the_terminal_rules(estate):
    piped = estate.ok("list", "resources").stdout.splitlines()
    assert piped[0].split()[:2] == ["Name", "Type"] and "Microsoft.Compute/virtualMachines" in "\n".join(piped)


def help_paths() -> list[list[str]]:
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_docs

    return [path.split()[1:] for path, _, _ in gen_docs.walk()]


def words(text: str) -> set[str]:
    return set(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_help_has_no_python_types_and_no_broken_words(cli, monkeypatch):
    for path in help_paths():
        monkeypatch.setenv("COLUMNS", "80")
        narrow = cli.ok(*path, "--help").stdout
        monkeypatch.setenv("COLUMNS", "250")
        wide = cli.ok(*path, "--help").stdout
        for bad in ("<str>", "<int", "<path>", "<float", " TEXT ", "INTEGER"):
            assert bad not in narrow, (path, bad, narrow)
        broken = words(narrow) - words(wide)
        assert not broken, (path, broken)  # every word at 80 columns is a word at 250: none broken
        assert "Example" in narrow, path


def help_commands() -> dict[str, object]:
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_docs

    return {path: command for path, command, _ in gen_docs.walk()}


def expected_examples(command) -> list[str]:
    """A command's epilog lines as written (indentation kept as typer keeps it), blank lines dropped."""
    return [line.rstrip() for line in inspect.cleandoc(command.epilog or "").splitlines() if line.strip()]


def printed_examples(help_text: str) -> list[str]:
    """The lines `--help` prints after its last box (the epilog), without rich's one-column pad."""
    lines = help_text.splitlines()
    last_box = max(n for n, line in enumerate(lines) if line.lstrip().startswith("╰"))
    return [line.rstrip()[1:] for line in lines[last_box + 1:] if line.strip()]


def assert_examples_whole(path: str, command, help_text: str, width: int) -> None:
    """Every example line of `path --help` is printed as written: none folded by rich in the middle
    of a command; one too long for 80 columns is broken by a trailing ` \\` (a shell continuation,
    its next line indented), so what is copied still runs."""
    expected = expected_examples(command)
    assert printed_examples(help_text) == expected, (path, width, help_text)
    for before, line in zip(expected, expected[1:]):
        if before.endswith(" \\"):
            assert line.startswith("    "), (path, line)
    assert all(len(line) + 2 <= 80 for line in expected), (path, expected)  # one column of pad each side


def test_help_examples_are_never_folded(cli, monkeypatch):
    for path, command in help_commands().items():
        if not command.epilog:
            continue
        for width in (80, 160):
            monkeypatch.setenv("COLUMNS", str(width))
            assert_examples_whole(path, command, cli.ok(*path.split()[1:], "--help").stdout, width)


@pytest.mark.e2e
def test_pty_help_examples_are_whole_at_80_and_160(isolated_state):
    """The installed msi's --help in a pseudo-terminal, for commands with the longest examples."""
    commands = help_commands()
    for path in ("msi list", "msi token", "msi verify", "msi federation add", "msi oidc-token", "msi import az"):
        for width in (80, 160):
            text = run_in_pty([*msi_command(), *path.split()[1:], "--help"], {"MSI_STATE": str(isolated_state)}, width)
            assert_examples_whole(path, commands[path], text, width)


@pytest.mark.e2e
def test_pty_run_keeps_every_id_whole(msi_proc, isolated_state, tmp_path):
    """The installed msi in a real pseudo-terminal of 80x24: ids are whole on their lines."""
    for args in (("create-identity", "shared-id"), ("create-resource", "vm1", "--type", "vm", "--system-assigned",
                 "--user-assigned", "shared-id"), ("grant", "vm1", "--role", "Reader", "--scope", "vm1")):
        assert msi_proc(*args, "-o", "none").returncode == 0
    vm_id = json.loads(msi_proc("show", "vm1", "-o", "json").stdout)["id"]
    known = set(GUID.findall(msi_proc("list", "resources", "-o", "json").stdout + msi_proc("list", "identities", "-o", "json").stdout))
    for args in (("list", "resources"), ("list", "identities"), ("show", "vm1"), ("list", "role-assignments"), ("log",)):
        text = run_in_pty([*msi_command(), *args], {"MSI_STATE": str(isolated_state)}, 80)
        assert "error" not in text, text
        assert_whole(text, known)
        assert known & set(GUID.findall(text)) or args[0] == "log", (args, text)
        if args[0] == "show":  # a long value is printed whole: no newline or padding inserted in it
            assert vm_id in text.splitlines()[0], text
        if args[0] == "list":
            assert all(len(line) <= 80 for line in text.splitlines()), text


@pytest.mark.e2e
def test_pty_list_resources_tells_same_named_resources_apart(msi_proc, isolated_state):
    """Two VMs named vm1, in rg1 and rg2: the installed msi in a pseudo-terminal shows each one's
    resource group at 80 columns as at 160, every line fits, and the ids it shows are whole."""
    for args in (("create-identity", "shared-id", "-g", "rg1"),
                 ("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--system-assigned", "--user-assigned", "shared-id"),
                 ("create-resource", "vm1", "--type", "vm", "-g", "rg2", "--system-assigned", "--user-assigned", "shared-id")):
        assert msi_proc(*args, "-o", "none").returncode == 0
    principals = {r["resourceGroup"]: r["identity"]["principalId"] for r in json.loads(msi_proc("list", "resources", "-o", "json").stdout)}
    for width in (80, 160):
        text = run_in_pty([*msi_command(), "list", "resources"], {"MSI_STATE": str(isolated_state)}, width)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines), (width, text)
        rows = [line.split() for line in lines if line.startswith("vm1 ")]
        assert sorted(row[2] for row in rows) == ["rg1", "rg2"], (width, text)  # Name, Type, then the group
        assert_whole(text, set(principals.values()))
        for group, principal in principals.items():  # this one fits at 80 too: on its own row, whole
            assert [row for row in rows if row[2] == group and principal in row], (width, group, text)
        if width == 160:
            assert "Resource group" in lines[0] and "Identity" in lines[0] and "Location" in lines[0], text


def _made(msi_proc, state: Path, *resources: tuple[str, ...]) -> tuple[dict[str, str], dict[str, dict], str]:
    """User-assigned identities shared-id and other-id in rg1, then `resources`, made by the
    installed msi: the environment to run it in, the identities by name, and vm1's principal id."""
    for args in (("create-identity", "shared-id", "-g", "rg1"), ("create-identity", "other-id", "-g", "rg1"), *resources):
        assert msi_proc(*args, "-o", "none").returncode == 0
    ids = {i["name"]: i for i in json.loads(msi_proc("list", "identities", "-o", "json").stdout)}
    vm1 = json.loads(msi_proc("show", "vm1", "-o", "json").stdout)["identity"]["principalId"]
    return {"MSI_STATE": str(state)}, ids, vm1


@pytest.mark.e2e
def test_pty_unassign_says_what_was_removed_from_which_resource_and_what_remains(msi_proc, isolated_state):
    """The installed msi in a pseudo-terminal: `unassign` prints a row per identity the resource
    held, removed or kept, with the resource and its group, at 80 columns as at 160 (ids where they
    fit, whole); a resource left with none says so. A pipe and -o json keep az's shape."""
    env, ids, vm1 = _made(msi_proc, isolated_state,
                          ("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--system-assigned",
                           "--user-assigned", "shared-id", "--user-assigned", "other-id"),
                          ("create-resource", "web1", "--type", "webapp", "-g", "rg2", "--system-assigned"))
    for width in (80, 160):
        text = run_in_pty([*msi_command(), "unassign", "vm1", "--user-assigned", "shared-id"], env, width)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines), (width, text)
        assert lines[0].split()[:2] == ["Resource", "Resource"] and "Identity" in lines[0] and "Status" in lines[0], text
        rows = [line.split()[:4] for line in lines if line.startswith("vm1 ")]
        assert rows[0] == ["vm1", "rg1", "shared-id", "removed"], text  # what was removed comes first
        assert sorted(rows[1:]) == [["vm1", "rg1", "other-id", "kept"], ["vm1", "rg1", "system-assigned", "kept"]], text
        assert_whole(text, {vm1, *(i["principalId"] for i in ids.values()), *(i["clientId"] for i in ids.values())})
        if width == 160:  # room for the ids: the removed identity's, and those that remain
            assert ids["shared-id"]["principalId"] in lines[2] and ids["shared-id"]["clientId"] in lines[2], text
            assert any(vm1 in line for line in lines[3:]), text
        assert msi_proc("assign", "vm1", "--user-assigned", "shared-id", "-o", "none").returncode == 0
    web1 = json.loads(msi_proc("show", "web1", "-o", "json").stdout)["identity"]["principalId"]
    text = run_in_pty([*msi_command(), "unassign", "web1", "--system-assigned"], env, 160)
    rows = [line.split() for line in text.splitlines() if line.startswith("web1 ")]
    assert rows[0][:4] == ["web1", "rg2", "system-assigned", "removed"] and rows[0][4] == web1, text
    assert rows[1] == ["web1", "rg2", "(no", "identity", "left)"], text
    piped = msi_proc("unassign", "vm1", "--user-assigned", "other-id")  # a pipe's table: az's shape, as before
    assert piped.returncode == 0 and piped.stdout.startswith("systemAssignedIdentity  " + vm1), piped.stdout
    assert json.loads(msi_proc("unassign", "vm1", "--system-assigned", "-o", "json").stdout) == {
        "systemAssignedIdentity": "", "userAssignedIdentities": {ids["shared-id"]["id"]: {
            "principalId": ids["shared-id"]["principalId"], "clientId": ids["shared-id"]["clientId"]}}}


@pytest.mark.e2e
def test_pty_assign_says_what_was_added_and_shows_the_ids(msi_proc, isolated_state):
    """The installed msi in a pseudo-terminal: `assign` prints a row per identity the resource
    holds, what was added first, with the principal id at 80 columns and the client id too at 160;
    rows of several resources name theirs. A pipe and -o json keep az's shape."""
    env, ids, vm1 = _made(msi_proc, isolated_state,
                          ("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--system-assigned", "--user-assigned", "shared-id"),
                          ("create-resource", "vm2", "--type", "vm", "-g", "rg2"))
    for width in (80, 160):
        text = run_in_pty([*msi_command(), "assign", "vm1", "--user-assigned", "other-id"], env, width)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines), (width, text)
        assert lines[0].split()[:4] == ["Resource", "Identity", "Status", "Principal"] or width == 160, text
        rows = [line.split() for line in lines if line.startswith("vm1 ")]
        status = [(row[-3 if width == 160 else -2], row[-2 if width == 160 else -1]) for row in rows]
        assert status[0] == ("added", ids["other-id"]["principalId"]), text  # what was added comes first
        assert sorted(status[1:]) == sorted([("kept", vm1), ("kept", ids["shared-id"]["principalId"])]), text
        if width == 160:  # room for the client ids, and the group
            assert rows[0][-1] == ids["other-id"]["clientId"] and rows[0][1] == "rg1", text
        assert_whole(text, {vm1, *(i["principalId"] for i in ids.values()), *(i["clientId"] for i in ids.values())})
        assert msi_proc("unassign", "vm1", "--user-assigned", "other-id", "-o", "none").returncode == 0
    both = [json.loads(msi_proc("show", name, "-o", "json").stdout)["id"] for name in ("vm1", "vm2")]
    text = run_in_pty([*msi_command(), "assign", "--ids", *both], env, 80)
    rows = [line.split()[:3] for line in text.splitlines() if line.startswith(("vm1 ", "vm2 "))]
    assert sorted(rows) == [["vm1", "shared-id", "kept"], ["vm1", "system-assigned", "kept"],
                            ["vm2", "system-assigned", "added"]], text
    piped = msi_proc("assign", "vm1", "--user-assigned", "other-id")  # a pipe's table: az's shape, as before
    assert piped.returncode == 0 and piped.stdout.startswith("systemAssignedIdentity  " + vm1), piped.stdout
    assert set(json.loads(msi_proc("assign", "vm1", "-o", "json").stdout)["userAssignedIdentities"]) == {
        ids["shared-id"]["id"], ids["other-id"]["id"]}


def msi_command() -> list[str]:
    exe = Path(sys.executable).with_name("msi")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "msi_cli"]


def run_in_pty(argv: list[str], env: dict[str, str], columns: int) -> str:
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    full = {**os.environ, **env, "COLUMNS": str(columns), "LINES": "24", "TERM": "xterm"}
    full.pop("FORCE_COLOR", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")


@pytest.mark.e2e
def test_readme_demo_recording_is_current():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "record_demo.py"), "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_debug_shows_the_stack_of_an_unexpected_error(cli, monkeypatch):
    from msi_cli.core import show

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(show, "show_data", broken)
    quiet = cli("show", "web1")
    assert quiet.exit_code == 1 and "Traceback" not in quiet.stderr and "internal error (RuntimeError: boom)" in quiet.stderr
    loud = cli("show", "web1", "--debug")
    assert loud.exit_code == 1 and "Traceback (most recent call last)" in loud.stderr and "RuntimeError: boom" in loud.stderr
    assert [line for line in loud.stderr.splitlines() if line.startswith("error:")][0].startswith("error: internal error")


@pytest.mark.e2e
def test_demo_does_not_pace_when_piped(msi_proc):
    """--pace applies at a terminal only: piped, 30 s a step would time this out."""
    done = msi_proc("demo", "federation", "--pace", "30", env={"COLUMNS": "80"}, timeout=120)
    assert done.returncode == 0, done.stderr
    listing = msi_proc("demo", "--list").stdout.split()
    assert {"lifecycle", "migration", "shared-identity", "federation"} <= set(listing)


def test_demo_at_80_columns_wraps_between_words(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = cli.ok("demo", "shared-identity").stdout
    assert "['" not in out and "None," not in out
    for line in out.splitlines():
        # a line runs over only to keep an unbreakable word (a full resource id) whole
        assert len(line) <= 80 or len(max(line.split(), key=len)) > 70, line


def test_keys_a_query_writes_are_escaped_and_never_markup_in_the_terminal(estate):
    for query in (r'[{"\u001b[31mred": name, "[bold]b": name}]', r'{"\u001b]0;x\u0007k": name}'):
        out = in_terminal(estate, 160, "show", "vm1", "--query", query).stdout
        assert "\x1b]0" not in out and "\x07" not in out and "\\x1b" in out, out
    out = in_terminal(estate, 160, "show", "vm1", "--query", r'[{"[bold]b": name}]').stdout
    assert "[bold]b" in out
