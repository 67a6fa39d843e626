"""Which state file a command line means: `--state`, else MSI_STATE, else the user's app dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from msi_cli.store.statefile import StateFile


def state_path(ctx: Any = None) -> Path:
    """`--state` as given on the command line of `ctx` (a click context: its root holds it), else
    MSI_STATE, else state.toml in the user's app dir; resolved on every call, never kept in a
    module global, so a nested run (`msi demo`'s steps) cannot leak into its caller."""
    given = ctx.find_root().params.get("state") if ctx is not None else None
    if given is not None:
        return Path(given)
    env = os.environ.get("MSI_STATE")
    if env:
        return Path(env).expanduser()
    return Path(typer.get_app_dir("msi-cli")) / "state.toml"


def state_file(ctx: Any = None) -> StateFile:
    """The StateFile of the command line being run (see state_path)."""
    from msi_cli.store.statefile import StateFile

    return StateFile(state_path(ctx))
