"""What the platform does on its own as simulated time passes; run at the start of every
transaction and whenever the clock moves."""

from __future__ import annotations

from msi_cli.core import credentials, lifecycle
from msi_cli.core.context import Ctx


def maintain(ctx: Ctx) -> None:
    credentials.roll_due(ctx)  # MSRP rolls identity certificates after 45 days
    lifecycle.purge_deleted(ctx)  # soft-deleted principals go after 30 days
