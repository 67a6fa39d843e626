"""`msi log`: the activity log, every change with its simulated time."""

from typing import Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import command
from msi_cli.cli.options import StateArg
from msi_cli.cli.render import Output, for_people, plain

COLUMNS = [("Time", "time"), ("Operation", "operation"), ("Target", "target"), ("Outcome", "outcome"), ("Detail", "detail")]


def _table(entries: list[Any], **options: object) -> str:
    """A terminal gets two lines per event (ids as names); a pipe gets az's plain table, whole."""
    if not for_people():
        return plain(entries, COLUMNS)
    from msi_cli.cli.terminal import log_lines

    return log_lines(entries)


@command(
    app, "log",
    columns=COLUMNS,
    formats={Output.table: _table},
    epilog="Example: msi log --last 20\n\nExample: msi log -o json --query \"[?operation=='Move resource']\"",
)
def log(
    last: Annotated[Optional[int], typer.Option("--last", "-n", min=1, help="Only the last N entries.")] = None,
    *, sf: StateArg,
) -> list[dict[str, str]]:
    """Show the activity log: time (simulated), operation, target, outcome, detail."""
    return sf.log_entries(last)
