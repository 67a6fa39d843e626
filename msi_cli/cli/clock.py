"""`msi clock`: the simulated clock every timestamp comes from."""


from typing import TYPE_CHECKING, Annotated, Any

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import command
from msi_cli.cli.options import StateArg

if TYPE_CHECKING:
    from collections.abc import Callable

    from msi_cli.core.context import Ctx
    from msi_cli.store.statefile import StateFile

clock_app = typer.Typer(
    help="Show or move the simulated clock (certificates roll, tokens expire). It moves either way between "
    "1970-01-01 and 8999-01-01, and every identity keeps getting tokens that verify.",
    no_args_is_help=True,
    epilog="Example: msi clock advance 2h\n\nExample: msi clock show -o json",
)
app.add_typer(clock_app, name="clock")


def _change(sf: "StateFile", offset_of: "Callable[[Ctx], int]") -> dict[str, Any]:
    from msi_cli.core import timeline

    with sf.transaction() as ctx:
        return timeline.set_offset(ctx, offset_of(ctx))


@command(clock_app, "show", epilog="Example: msi clock show -o json")
def show(*, sf: StateArg) -> dict[str, Any]:
    """Show simulated time, real time and the offset between them."""
    from msi_cli.core import timeline
    from msi_cli.core.timefmt import real_now

    return timeline.describe(real_now(), sf.read().clock_offset)


@command(clock_app, "advance", epilog="Example: msi clock advance 45d\n\nExample: msi clock advance 1h30m\n\nExample: msi clock advance -- -2d   (back two days; '--' ends the options)")
def advance(
    duration: Annotated[str, typer.Argument(help="How far: a number and unit s, m, h, d or w (e.g. 45d, 1h30m); '-' in front goes back, after '--' (msi clock advance -- -2d).")],
    *, sf: StateArg,
) -> dict[str, Any]:
    """Move simulated time forward; certificates due for a roll are rolled."""
    from msi_cli.core.timefmt import parse_duration

    seconds = parse_duration(duration)  # bad input fails before the state is opened
    return _change(sf, lambda ctx: ctx.state.clock_offset + seconds)


@command(clock_app, "set", epilog="Example: msi clock set 2027-01-01T00:00:00Z")
def set_(
    time: Annotated[str, typer.Argument(help="An ISO 8601 time (UTC if no zone is given).")],
    *, sf: StateArg,
) -> dict[str, Any]:
    """Set simulated time; it then flows on like real time."""
    from msi_cli.core.timefmt import parse_instant

    return _change(sf, _offset_to(parse_instant(time)))


def _offset_to(target: int) -> "Callable[[Ctx], int]":
    """The offset that makes simulated time `target` now (ctx.now is simulated: minus the offset, real)."""
    return lambda ctx: target - (ctx.now - ctx.state.clock_offset)


@command(clock_app, "reset", epilog="Example: msi clock reset")
def reset(*, sf: StateArg) -> dict[str, Any]:
    """Go back to real time."""
    return _change(sf, lambda ctx: 0)
