"""Commands that move things: migrate (a resource) and move-subscription (to another tenant)."""

from typing import Annotated, Any

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import command
from msi_cli.cli.confirm import confirm_or_refuse
from msi_cli.cli.options import DestinationGroupOpt, StateArg, YesOpt, complete_subscriptions, complete_targets, complete_tenants
from msi_cli.cli.render import Output, note
from msi_cli.cli.whatif import report_text

WhatIfOpt = Annotated[bool, typer.Option("--what-if", help="Rehearse: print what the move would break and the fix commands; change nothing.")]


def _warn_broken(identities: list[dict[str, Any]], where: str | None = None) -> None:
    """One warning per identity that no longer gets tokens, naming the resource that uses it (each
    entry's own, as move-subscription lists them; else `where`, the moved resource)."""
    for entry in identities:
        if not entry["works"]:
            user = entry.get("resource", where)
            note(f"warning: {entry['kind']} identity {entry['principalId']} used by {user} no longer gets tokens: {entry['reason']}")


@command(app, "migrate", formats={Output.table: report_text},
         epilog="Example: msi migrate web1 --subscription other-sub --what-if\n\nExample: msi migrate vm1 --subscription prod -g rg2")
def migrate(
    target: Annotated[str, typer.Argument(help="The resource to move (name or id).", autocompletion=complete_targets)],
    to_subscription: Annotated[
        str,
        typer.Option("--subscription", help="Destination subscription (name or id), in the resource's tenant.", autocompletion=complete_subscriptions),
    ],
    resource_group: DestinationGroupOpt = None,
    what_if: WhatIfOpt = False,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Move a resource to another subscription of its tenant (and/or resource group); it gets a new id.

    An App Service or Function app's system-assigned identity stops working after a move across
    subscriptions until it is disabled and re-enabled; role assignments at the old id are orphaned.
    A subscription of another tenant is refused: Azure does not move resources across tenants (a
    resource changes tenant only with its whole subscription: msi move-subscription).
    User-assigned identities themselves cannot be moved."""
    from msi_cli.core import moves

    if what_if:
        from msi_cli.cli.whatif import rehearse

        return rehearse(sf, "migrate", lambda c: moves.migrate(c, moves.movable(c.state, target), to_subscription, resource_group))
    with sf.transaction() as ctx:
        result = moves.migrate(ctx, moves.movable(ctx.state, target), to_subscription, resource_group)
    _warn_broken(result["identities"], result["id"])
    return result


@command(app, "move-subscription", formats={Output.table: report_text},
         epilog="Example: msi move-subscription prod --tenant Fabrikam --what-if\n\nExample: msi move-subscription prod --tenant Fabrikam --yes")
def move_subscription(
    subscription: Annotated[str, typer.Argument(help="The subscription to move (name or id).", autocompletion=complete_subscriptions)],
    tenant: Annotated[str, typer.Option("--tenant", help="Destination tenant (name or id).", autocompletion=complete_tenants)],
    yes: YesOpt = False,
    what_if: WhatIfOpt = False,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Move a subscription to another directory: every role assignment in it is deleted, its
    system-assigned identities must be disabled and re-enabled, its user-assigned ones re-created."""
    from msi_cli.core import lookup, moves

    if what_if:
        from msi_cli.cli.whatif import rehearse

        return rehearse(sf, "move-subscription", lambda c: moves.move_subscription(c, lookup.subscription(c.state, subscription).id, tenant))
    state = sf.read()
    sub = lookup.subscription(state, subscription)
    confirm_or_refuse(f"Move subscription '{sub.name}' to tenant '{moves.destination(state, sub, tenant).name}' (deletes its role assignments)?", yes)
    with sf.transaction() as ctx:
        result = moves.move_subscription(ctx, sub.id, tenant)
    _warn_broken(result["brokenIdentities"])
    return result
