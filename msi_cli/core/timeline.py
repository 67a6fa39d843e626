"""Moving the simulated clock, in either direction, without ever stranding the model.

Certificates due for a roll are rolled at once, as MSRP would have. Going back, credentials the
platform had not issued yet at the new time are forgotten and every identity gets a certificate
valid now (credentials.realign); signing keys keep their timeline, so the JWKS of the new time is
the one that was (or will be) published then and every token valid at the new time verifies.
Simulated time stays within EARLIEST..LATEST: outside it dates do not fit the formats (certificates,
ISO 8601 with four-digit years).
"""

from __future__ import annotations

from typing import Any

from msi_cli.core import credentials, maintenance
from msi_cli.core.timefmt import EARLIEST, LATEST, epoch, iso
from msi_cli.core.context import Ctx
from msi_cli.errors import InvalidArgument



def set_offset(ctx: Ctx, offset: int) -> dict[str, Any]:
    state = ctx.state
    real = ctx.now - state.clock_offset
    target = real + offset
    if not epoch(EARLIEST) <= target < epoch(LATEST):
        raise InvalidArgument(
            f"simulated time must stay between {EARLIEST} and {LATEST}; this move would put it {_span(target - real)} from real time",
        )
    state.clock_offset = offset
    ctx.now = target
    ctx.log("Set clock", "clock", f"simulated time {iso(ctx.now)} (offset {offset:+d} s)")
    maintenance.maintain(ctx)
    credentials.realign(ctx)
    return describe(real, offset)


def _span(seconds: int) -> str:
    days = abs(seconds) // 86400
    return f"{'-' if seconds < 0 else '+'}{days}d"


def describe(real: int, offset: int) -> dict[str, Any]:
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
