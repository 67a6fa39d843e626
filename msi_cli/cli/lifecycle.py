"""Commands for the lifecycle: tenants, subscriptions, resources, identities (show and list are
in cli/listing.py)."""


from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.confirm import confirm_or_refuse
from msi_cli.cli.options import (
    DefaultTenantOpt,
    FindGroupOpt,
    FindSubscriptionOpt,
    GroupOpt,
    IdsOpt,
    NameOpt,
    LocationOpt,
    ResourceKind,
    StateArg,
    SubscriptionOpt,
    SystemAssignedOpt,
    UserAssignedOpt,
    YesOpt,
    complete_resources,
    complete_targets,
    complete_types,
    targets,
)
from msi_cli.cli.render import Col, Columns, for_people, warn

if TYPE_CHECKING:
    from msi_cli.core.model import Resource, State

ResourceArg = Annotated[
    Optional[str], typer.Argument(metavar="[NAME]", help="Resource name or id.", autocompletion=complete_resources, show_default=False)
]


@command(app, "create-tenant", epilog="Example: msi create-tenant Contoso")
def create_tenant(name: Annotated[str, typer.Argument(help="Display name of the new directory.")], *, sf: StateArg) -> dict[str, Any]:
    """Create a tenant (directory) with its own signing keys."""
    from msi_cli.core import directory, shapes

    with sf.transaction() as ctx:
        tenant = directory.create_tenant(ctx, name)
    return shapes.tenant(tenant)


@command(app, "create-subscription", epilog="Example: msi create-subscription prod --tenant Contoso")
def create_subscription(
    name: Annotated[str, typer.Argument(help="Name of the new subscription.")],
    tenant: DefaultTenantOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Create a subscription in a tenant."""
    from msi_cli.core import directory, shapes

    with sf.transaction() as ctx:
        sub = directory.create_subscription(ctx, name, tenant)
        return shapes.subscription(ctx.state, sub)


@command(
    app,
    "create-resource",
    epilog="Example: msi create-resource web1 --type webapp --system-assigned\n\n"
    "Example: msi create-resource vm1 --type vm -g rg1 --user-assigned shared-id",
)
def create_resource(
    name: Annotated[str, typer.Argument(help="Resource name, valid for its type as in Azure.")],
    type_: Annotated[ResourceKind, typer.Option("--type", "-t", help="Resource type.", case_sensitive=False, autocompletion=complete_types)],
    resource_group: GroupOpt = None, subscription: SubscriptionOpt = None, location: LocationOpt = None,
    system_assigned: SystemAssignedOpt = False,
    user_assigned: UserAssignedOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Create a resource, optionally with a system-assigned and/or user-assigned identities."""
    from msi_cli.core import lifecycle, shapes

    with sf.transaction() as ctx:
        res = lifecycle.create_resource(
            ctx, name, type_.value, resource_group, subscription, location, system_assigned, user_assigned or []
        )
        data = shapes.resource(ctx.state, res)
    warn(ctx.warnings)
    return data


@command(app, "create-identity", epilog="Example: msi create-identity shared-id -g rg1 --location westeurope")
def create_identity(
    name: Annotated[str, typer.Argument(help="Identity name: 3-128 letters, digits, '-' or '_'.")],
    resource_group: GroupOpt = None, subscription: SubscriptionOpt = None, location: LocationOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Create a user-assigned identity (and its service principal)."""
    from msi_cli.core import lifecycle, shapes

    with sf.transaction() as ctx:
        identity = lifecycle.create_identity(ctx, name, resource_group, subscription, location)
    return shapes.user_identity(identity)


# What `assign` and `unassign` show a person at a terminal: a row per identity the resource holds
# or lost, `added`, `removed` or `kept` (az's shape after the change says only what is left, with
# user-assigned identities by their full ids, and not on which resource). unassign keeps the
# resource group ahead of the ids when narrowed (`--ids` may name two resources of one name);
# assign keeps the identities' principal id and client id ahead of it (what a role assignment and
# an SDK's client_id need next), and of the resource itself when it names only one.
UNASSIGN_COLUMNS: Columns = [
    Col("Resource", "resource"),
    Col("Resource group", "resourceGroup", rank=1, short="Group"),
    Col("Identity", "identity"),
    Col("Status", "status"),
    Col("Principal id", "principalId", rank=2),
    Col("Client id", "clientId", rank=3),
]
ASSIGN_COLUMNS: Columns = [
    Col("Resource", "resource", rank=3),
    Col("Resource group", "resourceGroup", rank=4, short="Group"),
    Col("Identity", "identity"),
    Col("Status", "status"),
    Col("Principal id", "principalId", rank=1),
    Col("Client id", "clientId", rank=2),
]


NONE_LEFT = "(no identity left)"


def _held(state: "State", resource: "Resource") -> dict[str, dict[str, Any]]:
    """The identities `resource` holds, as rows of UNASSIGN_COLUMNS, by a key that stays the same
    through a change: `[system]` for the system-assigned one, a user-assigned entry's id (lower
    case). A deleted identity's entry (dangling) is marked as `list resources` marks it."""
    from msi_cli.core import lookup

    where = {"resource": resource.name, "resourceGroup": resource.resource_group}
    rows: dict[str, dict[str, Any]] = {}
    if resource.system_principal_id is not None:
        identity = state.identities[resource.system_principal_id]
        rows["[system]"] = {**where, "identity": "system-assigned", "principalId": identity.principal_id, "clientId": identity.client_id}
    for entry in resource.user_assigned:
        name = entry.resource_id.rsplit("/", 1)[-1] + ("" if lookup.live_identity(state, entry) else " (deleted: dangling)")
        rows[entry.resource_id.lower()] = {**where, "identity": name, "principalId": entry.principal_id, "clientId": entry.client_id}
    return rows


def _changes(resource: "Resource", before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one resource: what was added or removed, then what it keeps (a row that says
    so when it is left with none)."""
    added = [{**row, "status": "added"} for key, row in after.items() if key not in before]
    removed = [{**row, "status": "removed"} for key, row in before.items() if key not in after]
    kept = [{**row, "status": "kept"} for key, row in after.items() if key in before]
    if not after:
        kept = [{"resource": resource.name, "resourceGroup": resource.resource_group, "identity": NONE_LEFT}]
    return added + removed + kept


def _identity_command(name: str, change: str, epilog: str, doc: str) -> None:
    """Register `assign` or `unassign`: the same options, core function lifecycle.<change>."""

    def run(
        resource: ResourceArg = None,
        name: NameOpt = None,
        ids: IdsOpt = None,
        system_assigned: SystemAssignedOpt = False,
        user_assigned: UserAssignedOpt = None,
        resource_group: FindGroupOpt = None,
        subscription: FindSubscriptionOpt = None,
        *, sf: StateArg,
    ) -> Result:
        from msi_cli.core import lifecycle, lookup
        from msi_cli.core.datatype import replace

        refs = targets(resource, name, ids)
        if ids is not None:
            resource_group = subscription = None
        results: list[dict[str, Any]] = []
        # the table for a person: what was added or removed where (a pipe's table stays az's
        # shape, as json does)
        rows: list[dict[str, Any]] | None = [] if for_people() else None
        with sf.transaction() as ctx:
            for ref in refs:
                res = lookup.resource(ctx.state, ref, resource_group, subscription)
                before = _held(ctx.state, res) if rows is not None else {}
                results.append(getattr(lifecycle, change)(ctx, res, system_assigned, user_assigned or []))
                if rows is not None:
                    rows.extend(_changes(res, before, _held(ctx.state, res)))
        warn(ctx.warnings)
        data: Any = results[0] if len(results) == 1 else results
        if rows is None:
            return Result(data)
        columns = UNASSIGN_COLUMNS if change == "unassign" else ASSIGN_COLUMNS
        if len(refs) > 1:  # rows of several resources: each says whose it is
            columns = [replace(col, rank=0) if col.path == "resource" else col for col in columns]
        return Result(data, table=lambda: rows, columns=columns)

    run.__name__ = run.__qualname__ = change
    run.__doc__ = doc
    command(app, name, epilog=epilog)(run)


_identity_command(
    "assign", "assign",
    "Example: msi assign web1   (enables the system-assigned identity)\n\nExample: msi assign vm1 --user-assigned shared-id",
    """Enable the system-assigned identity (the default) and/or attach user-assigned identities.""",
)
_identity_command(
    "unassign", "unassign",
    "Example: msi unassign web1 --system-assigned\n\nExample: msi unassign vm1 --user-assigned shared-id",
    """Disable the system-assigned identity (deleting it) and/or remove user-assigned identities.

    The entry of a deleted user-assigned identity stays on the resource until removed here, by the
    identity's full id (its name no longer resolves).""",
)


@command(app, "delete", epilog="Example: msi delete web1 --yes\n\nExample: msi delete shared-id --yes")
def delete(
    target: Annotated[
        Optional[str],
        typer.Argument(metavar="[NAME]", help="Resource or user-assigned identity, by name or id.", autocompletion=complete_targets, show_default=False),
    ] = None,
    name: NameOpt = None,
    ids: IdsOpt = None,
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
    yes: YesOpt = False,
    *, sf: StateArg,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Delete a resource (with its system-assigned identity) or a user-assigned identity.

    As in Azure, deleting a user-assigned identity does not remove it from the resources it is
    assigned to: they keep a dangling entry (listed as stillReferencedBy, with a warning) that gets
    no token until removed with `msi unassign RESOURCE --user-assigned ID`."""
    from msi_cli.core import lifecycle, lookup
    from msi_cli.core.model import Resource

    refs = targets(target, name, ids)
    if ids is not None:
        resource_group = subscription = None
    state = sf.read()
    found = [lookup.target(state, ref, resource_group, subscription) for ref in refs]
    what = [f.id if isinstance(f, Resource) else f.resource_id for f in found]
    confirm_or_refuse(f"Delete {', '.join(what)}?", yes)
    results: list[dict[str, Any]] = []
    with sf.transaction() as ctx:
        for ident in what:
            results.append(lifecycle.delete(ctx, lookup.target(ctx.state, ident)))
    warn(ctx.warnings)
    return results[0] if len(results) == 1 else results
