"""`msi completion SHELL [--install]`, the zsh script on a plain .zshrc, apostrophes in
descriptions, and `--audience` values."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main

from conftest import msi_executable
from msi_cli.cli import app, load, shellscripts

SHELLS = ("bash", "zsh", "fish", "powershell")


@pytest.fixture
def world(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "-o", "none")
    return cli


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_prints_the_script(cli, shell):
    load()
    expected = shellscripts.completion_script(typer.main.get_command(app), shell)
    result = cli.ok("completion", shell)
    assert result.stdout == expected and result.stderr == ""
    assert "_MSI_COMPLETE" in result.stdout


def test_completion_refuses_an_unknown_shell(cli):
    result = cli("completion", "tcsh")
    assert result.exit_code == 2 and "tcsh" in result.stderr


@pytest.mark.parametrize(
    ("shell", "script", "rc"),
    [
        ("bash", ".local/share/msi-cli/msi.bash", ".bashrc"),
        ("zsh", ".local/share/msi-cli/msi.zsh", ".zshrc"),
        ("fish", ".config/fish/completions/msi.fish", None),
        ("powershell", ".config/powershell/msi-completion.ps1", ".config/powershell/Microsoft.PowerShell_profile.ps1"),
    ],
)
def test_install_writes_where_the_shell_looks_once(cli, tmp_path, monkeypatch, shell, script, rc):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    if rc == ".bashrc":
        (home / ".bashrc").write_text("alias ll='ls -l'")  # no newline at the end
    for _ in range(2):
        result = cli.ok("completion", shell, "--install")
        assert result.stdout == ""
    assert (home / script).read_text() == cli.ok("completion", shell).stdout
    if rc is not None:
        lines = (home / rc).read_text().splitlines()
        loading = [line for line in lines if str(home / script) in line]
        assert len(loading) == 1, lines  # added once, on a line of its own
        if rc == ".bashrc":
            assert lines[0] == "alias ll='ls -l'"


def complete_words(*words: str) -> list[str]:
    load()
    comp = shellscripts.shell_completer(typer.main.get_command(app), "bash")
    return [item.value for item in comp.get_completions(list(words[:-1]), words[-1])]


def test_audience_completes_known_audiences(world):
    assert complete_words("token", "vm1", "--audience", "https://va") == ["https://vault.azure.net"]
    offered = complete_words("token", "vm1", "--audience", "")
    assert "https://management.azure.com" in offered and "https://storage.azure.com" in offered


def test_zsh_descriptions_keep_apostrophes(world, msi_proc):
    proc = msi_proc(env={"_MSI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "msi "})
    assert proc.returncode == 0, proc.stderr
    assert "resource'\\''s host" in proc.stdout  # quoted for eval; it reads as an apostrophe
    if shutil.which("zsh"):
        shown = subprocess.run(["zsh", "-f", "-c", '_arguments() { print -r -- "$@" }; eval "$(cat)"'], input=proc.stdout,
                               capture_output=True, text=True, timeout=30)
        assert "as the resource's host" in shown.stdout, shown.stdout + shown.stderr


def test_a_tab_builds_only_the_command_being_completed(world, msi_proc):
    """Completing a value of `msi show` loads only show's module (the benchmark's fast path)."""
    code = ("import sys; from msi_cli.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(' '.join(sorted(m for m in sys.modules if m.startswith('msi_cli.cli.'))))")
    env = dict(os.environ, _MSI_COMPLETE="complete_bash", _MSI_COMP_LINE="msi show w", _MSI_COMP_WORD="w")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["web1"]
    loaded = proc.stderr.split()
    assert "msi_cli.cli.listing" in loaded and "msi_cli.cli.federation" not in loaded and "msi_cli.cli.serve" not in loaded


@pytest.mark.skipif(shutil.which("zsh") is None or not sys.platform.startswith("linux"), reason="needs zsh and a pseudo-terminal")
def test_zsh_script_works_from_a_plain_zshrc(world, isolated_state, tmp_path):
    """A .zshrc with nothing but the line `msi completion zsh --install` adds: TAB completes."""
    import pty

    home = tmp_path / "home"
    home.mkdir()
    exe = msi_executable()
    bin_dir = Path(exe[0]).parent if len(exe) == 1 else Path(sys.executable).parent
    env = {"HOME": str(home), "ZDOTDIR": str(home), "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "TERM": "xterm",
           "MSI_STATE": str(isolated_state), "COLUMNS": "200",
           "PS1": "msi-test-prompt> "}  # zsh's own prompt ends in `#` for root and `%` otherwise
    install = subprocess.run([*exe, "completion", "zsh", "--install"], env=env, capture_output=True, text=True, timeout=60)
    assert install.returncode == 0, install.stderr
    assert "compinit" not in (home / ".zshrc").read_text()  # a plain .zshrc: the script runs compinit itself

    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive zsh reading that .zshrc
        os.execvpe("zsh", ["zsh", "-i"], env)

    def read_until(marker: bytes, limit: float = 30) -> bytes:
        out = b""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and marker not in out:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        return out

    try:
        read_until(b"msi-test-prompt> ", 30)  # the prompt, once .zshrc has run
        os.write(fd, b"msi show w\t")
        line = read_until(b"web1", 30)
        assert b"web1" in line, line
        assert b"command not found: compdef" not in line
    finally:
        os.write(fd, b"\x03exit\n")
        os.close(fd)
        os.waitpid(pid, 0)
