"""`msi clock`: the simulated clock every timestamp comes from."""

from typing import Annotated

import typer

from msi_cli.cli.app import app
from msi_cli.cli.options import OutputOpt, QueryOpt, state_file
from msi_cli.cli.render import Output, emit

clock_app = typer.Typer(
    help="Show or move the simulated clock (certificates roll, tokens expire). It moves either way between "
    "1970-01-01 and 8999-01-01, and every identity keeps getting tokens that verify.",
    no_args_is_help=True,
)
app.add_typer(clock_app, name="clock")


def _change(offset_of) -> dict:
    from msi_cli.core import timeline

    with state_file().transaction() as ctx:
        return timeline.set_offset(ctx, offset_of(ctx))


@clock_app.command("show", epilog="Example: msi clock show -o json")
def show(output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Show simulated time, real time and the offset between them."""
    from msi_cli.core import timeline
    from msi_cli.core.clock import real_now

    state = state_file().read()
    emit(timeline.describe(real_now(), state.clock_offset), output, query=query)


@clock_app.command("advance", epilog="Example: msi clock advance 45d\n\nExample: msi clock advance 1h30m\n\nExample: msi clock advance -- -2d   (back two days; '--' ends the options)")
def advance(
    duration: Annotated[str, typer.Argument(help="How far: a number and unit s, m, h, d or w (e.g. 45d, 1h30m); '-' in front goes back, after '--' (msi clock advance -- -2d).")],
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Move simulated time forward; certificates due for a roll are rolled."""
    from msi_cli.core.clock import parse_duration

    seconds = parse_duration(duration)
    emit(_change(lambda ctx: ctx.state.clock_offset + seconds), output, query=query)


@clock_app.command("set", epilog="Example: msi clock set 2027-01-01T00:00:00Z")
def set_(
    time: Annotated[str, typer.Argument(help="An ISO 8601 time (UTC if no zone is given).")],
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Set simulated time; it then flows on like real time."""
    from msi_cli.core.clock import parse_instant

    target = parse_instant(time)
    emit(_change(lambda ctx: target - (ctx.now - ctx.state.clock_offset)), output, query=query)


@clock_app.command("reset", epilog="Example: msi clock reset")
def reset(output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Go back to real time."""
    emit(_change(lambda ctx: 0), output, query=query)
