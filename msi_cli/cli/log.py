"""`msi log`: the activity log, every change with its simulated time."""

from typing import Annotated, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.options import OutputOpt, QueryOpt, state_file
from msi_cli.cli.render import Output, emit


@app.command("log", epilog="Example: msi log --last 20\n\nExample: msi log -o json --query \"[?operation=='Move resource']\"")
def log(
    last: Annotated[Optional[int], typer.Option("--last", "-n", min=1, help="Only the last N entries.")] = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Show the activity log: time (simulated), operation, target, outcome, detail."""
    sf = state_file()
    entries = sf.log_entries(last)
    emit(
        entries, output, query=query,
        columns=[("Time", "time"), ("Operation", "operation"), ("Target", "target"), ("Outcome", "outcome"), ("Detail", "detail")],
    )
