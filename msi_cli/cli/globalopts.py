"""What every command has, set once on the click tree Typer builds (MsiGroup.__init__), not per
command: az's `--only-show-errors`, `--verbose` and `--debug`, and metavars that name what a value
is (`NAME`, `ID`, `SCOPE`, `DURATION`), never a Python type (`<str>`, `<int range>`, `TEXT`).

As in az: `--only-show-errors` hides warnings, `--verbose` adds INFO lines (how long the command
ran), `--debug` adds DEBUG lines (the state file, timings) and, on an unexpected error, the stack.
All of it goes to stderr; stdout carries the result only.
"""

from __future__ import annotations

import sys
import time
from contextvars import ContextVar
from typing import Any

from typer.core import TyperArgument, TyperOption

QUIET, NORMAL, VERBOSE, DEBUG = 0, 1, 2, 3
LEVEL: ContextVar[int] = ContextVar("LEVEL", default=NORMAL)
STARTED: ContextVar[float] = ContextVar("STARTED", default=0.0)
PANEL = "Global options"


def level() -> int:
    return LEVEL.get()


def info(message: str) -> None:
    if LEVEL.get() >= VERBOSE:
        sys.stderr.write(f"INFO: {message}\n")


def debug(message: str) -> None:
    if LEVEL.get() >= DEBUG:
        sys.stderr.write(f"DEBUG: {message}\n")


def _set(wanted: int) -> Any:
    def callback(ctx: Any, param: Any, value: bool) -> None:
        if not value or ctx.resilient_parsing:
            return
        # --debug wins over --only-show-errors, as in knack
        if wanted == QUIET and LEVEL.get() > NORMAL:
            return
        LEVEL.set(max(LEVEL.get(), wanted) if wanted != QUIET else QUIET)
        if wanted == DEBUG:
            from msi_cli.cli.statepath import state_path

            debug(f"state file: {state_path(ctx)}")
            debug(f"command: {ctx.command_path}")

    return callback


def _options() -> list[TyperOption]:
    made = []
    for flag, wanted, text in (
        ("--only-show-errors", QUIET, "Only show errors, suppressing warnings."),
        ("--verbose", VERBOSE, "Increase logging verbosity. Use --debug for full debug logs."),
        ("--debug", DEBUG, "Increase logging verbosity to show all debug logs (state file, timings, the stack of an unexpected error)."),
    ):
        option = TyperOption(
            param_decls=[flag], is_flag=True, default=False, expose_value=False, is_eager=True,
            callback=_set(wanted), help=text, rich_help_panel=PANEL,
        )
        made.append(option)
    return made


# What a value is, by parameter name: one vocabulary across commands.
METAVARS: dict[str, str] = {
    "resource_group": "NAME", "subscription": "NAME|ID", "tenant": "NAME|ID", "location": "REGION",
    "user_assigned": "NAME|ID", "audience": "URI", "client_id": "ID", "object_id": "ID", "msi_res_id": "ID",
    "scope": "SCOPE", "role": "ROLE", "principal": "NAME|ID", "duration": "DURATION", "last": "N",
    "type_": "TYPE", "output": "FORMAT", "state": "PATH", "host": "HOST", "port": "PORT", "shell": "SHELL",
    "issuer": "URI", "subject": "SUBJECT", "name": "NAME", "kind": "KIND", "out": "DIR", "time": "TIME",
}


def _metavar(param: Any) -> str:
    name = param.name or "value"
    return METAVARS.get(name, name.rstrip("_").replace("_", "-").upper())


def _choices_in_help(param: Any) -> None:
    """A choice's values in its help text (its metavar is a word, so the list is not folded)."""
    choices = [str(c) for c in getattr(param.type, "choices", [])]
    text = param.help or ""
    if choices and not all(c in text for c in choices):
        param.help = (text.rstrip(".") + ": " if text else "") + ", ".join(choices) + "."


def _quiet_type(param: Any) -> None:
    """Typer prints an argument's type (`<str>`) beside its name: say nothing instead."""
    param.type.get_metavar = lambda *args, **kwargs: ""


def _fix_params(command: Any) -> None:
    for param in command.params:
        if isinstance(param, (TyperOption, TyperArgument)) and not getattr(param, "is_flag", False) and param.name not in ("help",):
            if isinstance(param, TyperArgument):
                if param.metavar is None:
                    param.metavar = (param.name or "value").rstrip("_").upper()
                if getattr(param.type, "choices", None):
                    _choices_in_help(param)
                _quiet_type(param)
            elif param.metavar is None:
                param.metavar = _metavar(param)
                if getattr(param.type, "choices", None):
                    _choices_in_help(param)
    if not any(getattr(p, "rich_help_panel", None) == PANEL for p in command.params):
        command.params.extend(_options())


def prepare(group: Any) -> None:
    """Give every command of the tree (and the root) the global options and plain metavars."""
    _fix_params(group)
    for command in group.commands.values():
        if hasattr(command, "commands"):
            prepare(command)
        else:
            _fix_params(command)


def start() -> tuple[Any, Any]:
    return LEVEL.set(NORMAL), STARTED.set(time.perf_counter())


def finish(tokens: tuple[Any, Any]) -> None:
    elapsed = time.perf_counter() - STARTED.get()
    info(f"Command ran in {elapsed:.3f} seconds")
    debug(f"timings: command {elapsed * 1000:.1f} ms")
    LEVEL.reset(tokens[0])
    STARTED.reset(tokens[1])
