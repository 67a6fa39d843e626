"""`msi log`: the activity log, every change with its simulated time."""

from typing import Annotated, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import command
from msi_cli.cli.options import StateArg


@command(
    app, "log",
    columns=[("Time", "time"), ("Operation", "operation"), ("Target", "target"), ("Outcome", "outcome"), ("Detail", "detail")],
    epilog="Example: msi log --last 20\n\nExample: msi log -o json --query \"[?operation=='Move resource']\"",
)
def log(
    last: Annotated[Optional[int], typer.Option("--last", "-n", min=1, help="Only the last N entries.")] = None,
    *, sf: StateArg,
) -> list[dict[str, str]]:
    """Show the activity log: time (simulated), operation, target, outcome, detail."""
    return sf.log_entries(last)
