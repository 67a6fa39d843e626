"""Docs that cannot drift: the README's command reference is generated from --help, and every
command's help carries a copy-pasteable example."""

from __future__ import annotations

import re
import shlex
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import gen_docs

README = REPO / "README.md"


def leaf_commands():
    """(path, click command) for every command that runs something (not a group of commands)."""
    return [(path, cmd) for path, cmd, _ in gen_docs.walk() if not hasattr(cmd, "list_commands")]


def test_readme_command_reference_is_up_to_date():
    current = README.read_text(encoding="utf-8")
    assert gen_docs.render_readme(current) == current, "stale: run python scripts/gen_docs.py"


def test_reference_covers_every_registered_command():
    reference = gen_docs.reference()
    paths = [path for path, _, _ in gen_docs.walk()]
    assert {"msi", "msi create-resource", "msi delete", "msi show", "msi list"} <= set(paths)
    for path in paths:
        assert f"### `{path}`" in reference
        assert f"Usage: {path} " in reference


def test_reference_does_not_depend_on_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    first = gen_docs.reference()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert gen_docs.reference() == first
    assert "\x1b[" not in first


def test_render_readme_keeps_everything_outside_the_markers():
    text = f"# Title\n\nbefore\n\n{gen_docs.BEGIN}\nold stuff\n{gen_docs.END}\n\nafter\n"
    out = gen_docs.render_readme(text)
    assert out.startswith("# Title\n\nbefore\n\n" + gen_docs.BEGIN)
    assert out.endswith(gen_docs.END + "\n\nafter\n")
    assert "old stuff" not in out and "### `msi show`" in out
    with pytest.raises(ValueError):
        gen_docs.render_readme("no markers here")


def test_shell_completion_section_comes_just_before_the_reference():
    text = README.read_text(encoding="utf-8")
    section = text.index("## Shell completion")
    assert section < text.index(gen_docs.BEGIN)
    assert "## " not in text[section + 3:text.index(gen_docs.BEGIN)]
    for shell in ("# bash", "# zsh", "# fish", "# PowerShell"):
        assert shell in text[section:text.index(gen_docs.BEGIN)]


def _examples(command) -> list[str]:
    """Each example of a command's epilog on one line: a long one is continued with ` \\`."""
    joined = re.sub(r"\\\n\s*", "", command.epilog or "")
    return [m.strip() for m in re.findall(r"Example:\s*(.+)", joined)]


@pytest.mark.parametrize("path", [p for p, _ in leaf_commands()])
def test_every_command_has_an_example(path):
    command = dict(leaf_commands())[path]
    examples = _examples(command)
    assert examples, f"{path}: add epilog='Example: {path} ...'"
    assert any(path in example for example in examples), f"{path}: no example runs '{path}'"


@pytest.mark.parametrize("path", [p for p, _ in leaf_commands()])
def test_examples_use_only_options_the_command_has(path):
    command = dict(leaf_commands())[path]
    known = {opt for param in command.params for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])}
    known |= {"-h", "--help", "--state", "--version"}
    for example in _examples(command):
        if not example.startswith(path + " "):
            continue  # e.g. wrapped in $(...) or eval
        text = re.split(r"\s{2,}\(|\s#", example)[0]  # drop a trailing '(comment)' or '# comment'
        try:
            words = shlex.split(text)
        except ValueError:
            continue
        for word in words:
            if word == "--":
                break  # the end of options: what follows is an argument
            if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
                assert word.split("=", 1)[0] in known, f"{path}: example uses unknown option {word}: {example}"


@pytest.mark.parametrize("path", [p for p, _ in leaf_commands()])
def test_help_shows_the_example(cli, path):
    result = cli.ok(*path.split()[1:], "--help")
    assert "Example:" in result.stdout
    assert "Usage:" in result.stdout


def test_help_renders_the_same_twice(cli):
    first = cli.ok("create-resource", "--help").stdout
    assert cli.ok("create-resource", "--help").stdout == first
    assert "\x1b[" not in first  # NO_COLOR from the test harness


def test_the_references_examples_keep_their_lines_as_help_shows_them():
    """A re-wrapped example paragraph put each command on its comment's line: pasted, the
    comment swallowed the command."""
    reference = gen_docs.reference()
    assert "\n  # a web app with its own (system-assigned) identity\n  msi create-resource web1 --type webapp --system-assigned\n" in reference
    assert "identity msi create-resource" not in reference
