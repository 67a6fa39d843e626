"""Moving the simulated clock. Certificates due for a roll are rolled at once, as MSRP would have."""

from __future__ import annotations

from msi_cli.core import maintenance
from msi_cli.core.clock import iso
from msi_cli.core.context import Ctx


def set_offset(ctx: Ctx, offset: int) -> dict:
    state = ctx.state
    real = ctx.now - state.clock_offset
    state.clock_offset = offset
    ctx.now = real + offset
    ctx.log("Set clock", "clock", f"simulated time {iso(ctx.now)} (offset {offset:+d} s)")
    maintenance.maintain(ctx)
    return describe(real, offset)


def describe(real: int, offset: int) -> dict:
    sign = "-" if offset < 0 else "+"
    days, rest = divmod(abs(offset), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return {
        "now": iso(real + offset),
        "realTime": iso(real),
        "offsetSeconds": offset,
        "offset": f"{sign}{days}d{hours:02d}h{minutes:02d}m{seconds:02d}s",
        "simulated": offset != 0,
    }
