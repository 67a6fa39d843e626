"""`msi completion SHELL [--install]`: the shell completion script, printed or installed."""

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from msi_cli.cli.app import app
from msi_cli.cli.render import note


class CompletionShell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or _home() / ".local" / "share")


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or _home() / ".config")


def install_plan(shell: CompletionShell) -> tuple[Path, Path | None, str]:
    """(where the script goes, the start-up file that must load it or None, the line that loads it).
    fish loads ~/.config/fish/completions/msi.fish by itself; the others source a copy from their
    start-up file, as README's "Shell completion" does by hand."""
    if shell is CompletionShell.fish:
        return _config_home() / "fish" / "completions" / "msi.fish", None, ""
    if shell is CompletionShell.powershell:
        profile_dir = _config_home() / "powershell"
        script = profile_dir / "msi-completion.ps1"
        return script, profile_dir / "Microsoft.PowerShell_profile.ps1", f". '{script}'"
    script = _data_home() / "msi-cli" / f"msi.{shell.value}"
    rc = _home() / (".bashrc" if shell is CompletionShell.bash else ".zshrc")
    return script, rc, f"source '{script}'"


def _install(shell: CompletionShell, script_text: str) -> None:
    from msi_cli.errors import StateError

    script, rc, line = install_plan(shell)
    try:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(script_text, encoding="utf-8")
        note(f"msi: wrote {script}")
        if rc is not None:
            existing = rc.read_text(encoding="utf-8") if rc.is_file() else ""
            if not any(loaded.strip().startswith(line) for loaded in existing.splitlines()):
                rc.parent.mkdir(parents=True, exist_ok=True)
                with open(rc, "a", encoding="utf-8") as fh:
                    fh.write(("" if existing.endswith("\n") or not existing else "\n") + f"{line}  # msi completion\n")
                note(f"msi: added to {rc}: {line}")
            else:
                note(f"msi: {rc} already loads it")
    except OSError as exc:
        raise StateError(f"cannot install the {shell.value} completion: {exc.strerror or exc} ({exc.filename})") from None
    note("msi: open a new shell to use it")


@app.command(
    "completion",
    epilog="Example: msi completion bash > ~/.local/share/msi-cli/msi.bash\n\n"
    "Example: msi completion zsh --install   (and loads it from ~/.zshrc)",
)
def completion(
    ctx: typer.Context,
    shell: Annotated[CompletionShell, typer.Argument(metavar="SHELL", help="bash, zsh, fish or powershell.", case_sensitive=False)],
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="Write the script where the shell loads it: fish's completions folder; for bash, zsh and "
            "PowerShell a copy under the user's data/config folder, sourced from ~/.bashrc, ~/.zshrc or the "
            "PowerShell profile (the line is added once).",
        ),
    ] = False,
) -> None:
    """Print the completion script for SHELL (or install it with --install).

    The script asks `msi` for completions on every TAB (commands, options, and names from the
    current state: resources, identities, groups, tenants, subscriptions, scopes, roles,
    audiences), so `msi` must be on PATH. The zsh script works from a plain ~/.zshrc: it runs
    compinit itself when that has not been done."""
    from msi_cli.cli.shellscripts import completion_script

    text = completion_script(ctx.find_root().command, shell.value, prog_name="msi")
    if install:
        _install(shell, text)
    else:
        sys.stdout.write(text)
