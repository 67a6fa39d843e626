"""The `msi` command line: parses, calls the core, renders.

Commands live in modules by topic and register themselves on import. Typer turns every registered
command into a click command at start-up, which costs time per command, so `main` imports only the
module of the command being run (all of them for `--help`, completion, or an unknown name).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

from msi_cli.cli.app import app
from msi_cli.errors import MsiError

COMMAND_MODULES: dict[str, str] = {
    "create-tenant": "lifecycle",
    "create-subscription": "lifecycle",
    "create-resource": "lifecycle",
    "create-identity": "lifecycle",
    "assign": "lifecycle",
    "unassign": "lifecycle",
    "delete": "lifecycle",
    "show": "listing",
    "list": "listing",
    "token": "tokens",
    "verify": "tokens",
    "jwks": "tokens",
    "tenant": "tokens",
    "clock": "clock",
    "grant": "access",
    "revoke": "access",
    "check-access": "access",
    "migrate": "moves",
    "move-subscription": "moves",
    "log": "log",
    "demo": "demo",
    "serve": "serve",
    "env": "serve",
    "tls": "tls",
    "federation": "federation",
    "issuer": "federation",
    "oidc-token": "federation",
    "state": "statecmd",
    "completion": "completion",
    "apply": "estate", "export": "estate", "import": "estate",
}


_parked: dict[str, list[Any]] = {"commands": [], "groups": []}


def load(names: list[str] | None = None) -> None:
    """Register the commands in `names` (every command when None)."""
    modules = sorted(set(COMMAND_MODULES.values())) if names is None else sorted({COMMAND_MODULES[n] for n in names})
    for module in modules:
        importlib.import_module(f"msi_cli.cli.{module}")
    if names is None:  # bring back what `focus` set aside
        app.registered_commands.extend(_parked["commands"])
        app.registered_groups.extend(_parked["groups"])
        _parked["commands"].clear()
        _parked["groups"].clear()


_built: list[tuple[tuple[int, ...], Any]] = []  # the click command and the registrations it was built from


def click_command() -> Any:
    """The click command of every registered command, built once per set of registrations: Typer
    builds the whole tree anew on every `app(...)` (0.1-0.2 s), which `msi demo` would pay per step."""
    import typer.main

    load()
    key = tuple(id(c) for c in (*app.registered_commands, *app.registered_groups))
    if not _built or _built[0][0] != key:
        _built[:] = [(key, typer.main.get_command(app))]
    return _built[0][1]


def focus(name: str | None) -> None:
    """Keep only command `name` (None: no command) on the app, so Typer builds one click command,
    not its module's whole set; `load()` restores the others."""
    load([] if name is None else [name])
    # Typer's CommandInfo and TyperInfo lists: both kinds have a name
    registries: tuple[tuple[str, list[Any]], ...] = (("commands", app.registered_commands), ("groups", app.registered_groups))
    for kind, registered in registries:
        _parked[kind].extend(c for c in registered if c.name != name)
        registered[:] = [c for c in registered if c.name == name]


def command_name(argv: list[str]) -> str | None:
    """The subcommand in argv, skipping the global options that come before it."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--state":
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def _asks_version(argv: list[str]) -> bool:
    """`--version` among the options (not as the value of --state), and no help asked for."""
    options = [arg for i, arg in enumerate(argv) if not (i and argv[i - 1] == "--state")]
    return "--version" in options and not {"--help", "-h"} & set(options)


def completed_words() -> list[str] | None:
    """While a shell asks for completions: the words before the one being completed (program
    name excluded), from the variables the shell scripts set; else None. A line shlex cannot
    split (an open quote) gives the one word "" (no command is known from it)."""
    if not any(key.startswith("_MSI_COMPLETE") for key in os.environ):
        return None
    import shlex

    if "_MSI_COMP_LINE" in os.environ:  # bash: the line up to the cursor
        from msi_cli.cli import shellwords

        return shellwords.split(os.environ["_MSI_COMP_LINE"]).args
    if "COMP_WORDS" in os.environ:  # bash, the script of an earlier msi
        try:
            words = shlex.split(os.environ["COMP_WORDS"])
            return words[1 : int(os.environ.get("COMP_CWORD", "0"))]
        except ValueError:
            return [""]
    line = os.environ.get("_TYPER_COMPLETE_ARGS", "")  # zsh, fish, PowerShell: the line up to the cursor
    try:
        words = shlex.split(line)
    except ValueError:
        return [""]
    return words[1:] if line.endswith(" ") else words[1:-1]


def root_for_completion() -> Any:
    """The root command as a TAB on the command name needs it: the global options, and each
    command as a name with its help (what the shells show), without building any command's
    parameters (Typer's whole tree costs about 100 ms at every TAB)."""
    import inspect

    import typer.main
    from typer.core import TyperCommand
    from typer.models import DefaultPlaceholder

    def given(value: Any) -> Any:
        return None if isinstance(value, DefaultPlaceholder) else value

    load()
    infos: list[Any] = [*app.registered_commands, *app.registered_groups]
    app.registered_commands[:], app.registered_groups[:] = [], []
    try:
        root = typer.main.get_command(app)
    finally:
        app.registered_commands[:] = [i for i in infos if not hasattr(i, "typer_instance")]
        app.registered_groups[:] = [i for i in infos if hasattr(i, "typer_instance")]
    for info in infos:
        instance = getattr(info, "typer_instance", None)
        text = given(info.help) or (given(instance.info.help) if instance is not None else None)
        if not text and info.callback is not None:
            text = inspect.getdoc(info.callback)
        name = info.name or (given(instance.info.name) if instance is not None else None)
        if name:
            stub = TyperCommand(name, help=text, short_help=given(info.short_help), hidden=bool(given(info.hidden)))
            root.add_command(stub)  # type: ignore[attr-defined]  # the root is a TyperGroup (MsiGroup)
    return root


def _completing_without_a_shell() -> bool:
    """A completion request (`_MSI_COMPLETE=complete_*`) without the words the shell scripts pass:
    nothing to complete (Typer would fail on the missing variable)."""
    mode = os.environ.get("_MSI_COMPLETE", "")
    if not mode.startswith("complete_"):
        return False
    if mode == "complete_bash":
        return "_MSI_COMP_LINE" not in os.environ and "COMP_WORDS" not in os.environ
    return "_TYPER_COMPLETE_ARGS" not in os.environ


def main() -> None:
    if _completing_without_a_shell():
        return  # no candidates, as for a word nothing completes
    before = completed_words()
    name = command_name(before if before is not None else sys.argv[1:])
    if name in COMMAND_MODULES:  # build only that command: for a run, and for a TAB in its arguments
        focus(name)
    elif before is not None and all(word.startswith("-") for word in before):  # a TAB on the command's name
        root_for_completion().main(prog_name="msi")
        return
    elif before is None and name is None and _asks_version(sys.argv[1:]):
        focus(None)  # an eager option that prints and exits: no command is built (or needed)
    else:
        load()
    app(prog_name="msi")


def run() -> None:
    """The `msi` program: `main()`, then leave without the interpreter's teardown, as mypy's
    `hard_exit` does. Freeing every module and the parsed state object by object costs 10-25 ms
    of a 100 ms command; the kernel takes the memory back at once. Every file msi writes is
    closed (and synced) by then, so only the standard streams are left to flush.

    Nor does it look for reference cycles while it runs (2-5 ms of a command at 1,000 resources,
    9% of an apply of 10,000, whose peak memory is 3% higher without the collector): a command
    lasts a fraction of a second and makes few cycles. `msi serve`, which runs for hours, turns
    the collector back on."""
    from msi_cli.cli.app import standard_streams

    gc.disable()
    standard_streams()
    code: str | int | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    threads = sys.modules.get("threading")
    if not (code is None or isinstance(code, int)) or (threads is not None and threads.active_count() > 1):
        sys.exit(code)  # a message to print, or a thread still at work: the ordinary exit
    status = code if isinstance(code, int) else 0
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()  # the boundary flushed stdout already: normally nothing is left
        except (OSError, ValueError, MsiError):  # a closed pipe (`msi ... | head -1`) or stream
            status = status or 1
    os._exit(status)


__all__ = ["app", "focus", "load", "main", "run"]
