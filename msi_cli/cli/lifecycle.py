"""Commands for the lifecycle: tenants, subscriptions, resources, identities; show and list."""


from enum import Enum
from typing import Annotated, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.confirm import confirm_or_refuse
from msi_cli.cli.options import (
    GroupOpt,
    LocationOpt,
    OutputOpt,
    QueryOpt,
    SubscriptionOpt,
    SystemAssignedOpt,
    UserAssignedOpt,
    YesOpt,
    complete_resources,
    complete_scopes,
    complete_targets,
    complete_tenants,
    complete_types,
    state_file,
)
from msi_cli.cli.render import Columns, Output, emit, warn
from msi_cli.core import arm


class ResourceKind(str, Enum):
    vm = "vm"
    vmss = "vmss"
    webapp = "webapp"
    functionapp = "functionapp"
    containerapp = "containerapp"
    keyvault = "keyvault"
    storage = "storage"


RESOURCE_COLUMNS: Columns = [
    ("Name", "name"),
    ("Type", "type"),
    ("Resource group", "resourceGroup"),
    ("Location", "location"),
    ("Identity", "identity.type"),
    ("Principal id", "identity.principalId"),
]
LIST_RESOURCE_COLUMNS: Columns = [*RESOURCE_COLUMNS, ("User-assigned", "_userAssigned")]
IDENTITY_COLUMNS: Columns = [
    ("Name", "name"),
    ("Resource group", "resourceGroup"),
    ("Location", "location"),
    ("Principal id", "principalId"),
    ("Client id", "clientId"),
]
PRINCIPAL_COLUMNS: Columns = [
    ("Display name", "displayName"),
    ("Object id", "id"),
    ("App id", "appId"),
    ("Type", "servicePrincipalType"),
]
DELETED_COLUMNS: Columns = [("Display name", "displayName"), ("Object id", "id"), ("App id", "appId"), ("Deleted", "deletedDateTime")]
TENANT_COLUMNS: Columns = [("Name", "displayName"), ("Tenant id", "tenantId"), ("Created", "createdDateTime")]
SUBSCRIPTION_COLUMNS: Columns = [("Name", "name"), ("Subscription id", "id"), ("Tenant id", "tenantId"), ("Default", "isDefault")]


@app.command("create-tenant", epilog="Example: msi create-tenant Contoso")
def create_tenant(
    name: Annotated[str, typer.Argument(help="Display name of the new directory.")],
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Create a tenant (directory) with its own signing keys."""
    from msi_cli.core import lifecycle, shapes

    with state_file().transaction() as ctx:
        tenant = lifecycle.create_tenant(ctx, name)
    emit(shapes.tenant(tenant), output, query=query)


@app.command("create-subscription", epilog="Example: msi create-subscription prod --tenant Contoso")
def create_subscription(
    name: Annotated[str, typer.Argument(help="Name of the new subscription.")],
    tenant: Annotated[
        Optional[str],
        typer.Option("--tenant", help="Tenant name or id (default: the default subscription's tenant).", autocompletion=complete_tenants),
    ] = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Create a subscription in a tenant."""
    from msi_cli.core import lifecycle, shapes

    with state_file().transaction() as ctx:
        sub = lifecycle.create_subscription(ctx, name, tenant)
        data = shapes.subscription(ctx.state, sub)
    emit(data, output, query=query)


@app.command(
    "create-resource",
    epilog="Example: msi create-resource web1 --type webapp --system-assigned\n\n"
    "Example: msi create-resource vm1 --type vm -g rg1 --user-assigned shared-id",
)
def create_resource(
    name: Annotated[str, typer.Argument(help="Resource name, valid for its type as in Azure.")],
    type_: Annotated[ResourceKind, typer.Option("--type", "-t", help="Resource type.", case_sensitive=False, autocompletion=complete_types)],
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    location: LocationOpt = None,
    system_assigned: SystemAssignedOpt = False,
    user_assigned: UserAssignedOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Create a resource, optionally with a system-assigned and/or user-assigned identities."""
    from msi_cli.core import lifecycle, shapes

    with state_file().transaction() as ctx:
        res = lifecycle.create_resource(
            ctx, name, type_.value, resource_group, subscription, location, system_assigned, user_assigned or []
        )
        data = shapes.resource(ctx.state, res)
    warn(ctx.warnings)
    emit(data, output, query=query)


@app.command("create-identity", epilog="Example: msi create-identity shared-id -g rg1 --location westeurope")
def create_identity(
    name: Annotated[str, typer.Argument(help="Identity name: 3-128 letters, digits, '-' or '_'.")],
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    location: LocationOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Create a user-assigned identity (and its service principal)."""
    from msi_cli.core import lifecycle, shapes

    with state_file().transaction() as ctx:
        identity = lifecycle.create_identity(ctx, name, resource_group, subscription, location)
    emit(shapes.user_identity(identity), output, query=query)


@app.command(
    "assign",
    epilog="Example: msi assign web1   (enables the system-assigned identity)\n\n"
    "Example: msi assign vm1 --user-assigned shared-id",
)
def assign(
    resource: Annotated[str, typer.Argument(help="Resource name or id.", autocompletion=complete_resources)],
    system_assigned: SystemAssignedOpt = False,
    user_assigned: UserAssignedOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Enable the system-assigned identity (the default) and/or attach user-assigned identities."""
    from msi_cli.core import lifecycle, lookup

    with state_file().transaction() as ctx:
        sub_id = lookup.subscription(ctx.state, subscription).id if subscription else None
        res = lookup.resource(ctx.state, resource, resource_group, sub_id)
        data = lifecycle.assign(ctx, res, system_assigned, user_assigned or [])
    warn(ctx.warnings)
    emit(data, output, query=query)


@app.command(
    "unassign",
    epilog="Example: msi unassign web1 --system-assigned\n\nExample: msi unassign vm1 --user-assigned shared-id",
)
def unassign(
    resource: Annotated[str, typer.Argument(help="Resource name or id.", autocompletion=complete_resources)],
    system_assigned: SystemAssignedOpt = False,
    user_assigned: UserAssignedOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Disable the system-assigned identity (deleting it) and/or remove user-assigned identities.

    The entry of a deleted user-assigned identity stays on the resource until removed here, by the
    identity's full id (its name no longer resolves)."""
    from msi_cli.core import lifecycle, lookup

    with state_file().transaction() as ctx:
        sub_id = lookup.subscription(ctx.state, subscription).id if subscription else None
        res = lookup.resource(ctx.state, resource, resource_group, sub_id)
        data = lifecycle.unassign(ctx, res, system_assigned, user_assigned or [])
    emit(data, output, query=query)


@app.command("delete", epilog="Example: msi delete web1 --yes\n\nExample: msi delete shared-id --yes")
def delete(
    target: Annotated[str, typer.Argument(help="Resource or user-assigned identity, by name or id.", autocompletion=complete_targets)],
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    yes: YesOpt = False,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Delete a resource (with its system-assigned identity) or a user-assigned identity.

    As in Azure, deleting a user-assigned identity does not remove it from the resources it is
    assigned to: they keep a dangling entry (listed as stillReferencedBy, with a warning) that gets
    no token until removed with `msi unassign RESOURCE --user-assigned ID`."""
    from msi_cli.core import lifecycle, lookup

    sf = state_file()
    state = sf.read()
    sub_id = lookup.subscription(state, subscription).id if subscription else None
    found = lookup.target(state, target, resource_group, sub_id)
    what = found.id if isinstance(found, lifecycle.Resource) else found.resource_id
    confirm_or_refuse(f"Delete {what}?", yes)
    with sf.transaction() as ctx:
        data = lifecycle.delete(ctx, lookup.target(ctx.state, what))
    warn(ctx.warnings)
    emit(data, output, query=query)


def show_data(state, ref: str, resource_group: str | None, subscription: str | None) -> dict:
    from msi_cli.core import lookup, roles, shapes
    from msi_cli.core.model import Resource
    from msi_cli.errors import NotFound

    if arm.is_guid(ref):
        low = ref.lower()
        if low in state.principals or any(sp.app_id == low for sp in state.principals.values()):
            return shapes.principal(lookup.principal(state, low))
        if low in state.deleted_principals:  # as in Graph: gone from the live directory
            gone = state.deleted_principals[low]
            raise NotFound(
                f"service principal '{ref}' was deleted at {gone.deleted}",
                hint="soft-deleted principals are listed for 30 days by 'msi list principals --deleted'",
            )
        if low in state.tenants:
            return shapes.tenant(state.tenants[low])
        if low in state.subscriptions:
            return shapes.subscription(state, state.subscriptions[low])
        if low in state.role_assignments:
            return roles.assignment_shape(state, state.role_assignments[low])
        raise NotFound(f"no object with id '{ref}'")
    if "/providers/Microsoft.Authorization/roleAssignments/" in ref:
        guid = ref.rstrip("/").rsplit("/", 1)[-1].lower()
        if guid in state.role_assignments:
            return roles.assignment_shape(state, state.role_assignments[guid])
        raise NotFound(f"role assignment '{ref}' not found")
    sub_id = lookup.subscription(state, subscription).id if subscription else None
    found = lookup.target(state, ref, resource_group, sub_id)
    if isinstance(found, Resource):
        return shapes.resource(state, found)
    return shapes.user_identity(found)


@app.command(
    "show",
    epilog="Example: msi show web1 -o json\n\nExample: msi show 00000000-0000-0000-0000-000000000000   (a principal, tenant or subscription id)",
)
def show(
    target: Annotated[
        str,
        typer.Argument(
            help="A resource or identity (name or id), or a principal, tenant, subscription or role assignment id.",
            autocompletion=complete_targets,
        ),
    ],
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Show one object in az's shape."""
    sf = state_file()
    state = sf.read()
    emit(show_data(state, target, resource_group, subscription), output, query=query)


class ListKind(str, Enum):
    resources = "resources"
    identities = "identities"
    principals = "principals"
    role_assignments = "role-assignments"
    tenants = "tenants"
    subscriptions = "subscriptions"
    groups = "groups"


@app.command(
    "list",
    epilog="Example: msi list resources --type vm -o table\n\n"
    "Example: msi list resources --query \"[?identity.type=='SystemAssigned'].name\" -o tsv",
)
def list_(
    kind: Annotated[ListKind, typer.Argument(help="What to list.", case_sensitive=False)],
    resource_group: GroupOpt = None,
    subscription: SubscriptionOpt = None,
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only objects in this tenant.", autocompletion=complete_tenants)] = None,
    type_: Annotated[
        Optional[ResourceKind],
        typer.Option("--type", "-t", help="Only resources of this type.", case_sensitive=False, autocompletion=complete_types),
    ] = None,
    principal: Annotated[
        Optional[str],
        typer.Option(
            "--principal", help="Role assignments of this principal (resource, identity or principal id).",
            autocompletion=complete_targets,
        ),
    ] = None,
    scope: Annotated[
        Optional[str], typer.Option("--scope", help="Role assignments at or above this scope.", autocompletion=complete_scopes)
    ] = None,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Principals of deleted identities, kept 30 days (soft-deleted, not restorable).")
    ] = False,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """List resources, identities, principals, role assignments, tenants, subscriptions or resource groups."""
    from msi_cli.core import listing

    state = state_file().read()
    data = listing.collect(
        state, kind.value, resource_group=resource_group, subscription=subscription, tenant=tenant,
        type_key=type_.value if type_ else None, principal=principal, scope=scope, deleted=deleted,
    )
    if kind is ListKind.resources and output is Output.table and not query:
        data = [{**item, USER_CELL: _user_cell(state, item)} for item in data]
    emit(data, output, columns=DELETED_COLUMNS if deleted else COLUMNS[kind], query=query)


USER_CELL = "_userAssigned"  # a table-only column, never in the JSON


def _user_cell(state, item: dict) -> str:
    """The user-assigned identities of a resource, by name; a deleted identity's entry (dangling)
    is marked, as it gets no token until removed."""
    entries = (item.get("identity") or {}).get("userAssignedIdentities") or {}
    return "\n".join(
        rid.rsplit("/", 1)[-1] + ("" if e.get("principalId") in state.identities else " (deleted: dangling)")
        for rid, e in entries.items()
    )


COLUMNS: dict[ListKind, Columns] = {
    ListKind.resources: LIST_RESOURCE_COLUMNS,
    ListKind.identities: IDENTITY_COLUMNS,
    ListKind.principals: PRINCIPAL_COLUMNS,
    ListKind.tenants: TENANT_COLUMNS,
    ListKind.subscriptions: SUBSCRIPTION_COLUMNS,
    ListKind.groups: [("Name", "name"), ("Location", "location"), ("Subscription", "subscriptionId")],
    ListKind.role_assignments: [
        ("Principal id", "principalId"),
        ("Principal name", "principalName"),
        ("Principal type", "principalType"),
        ("Role", "roleDefinitionName"),
        ("Scope", "scope"),
    ],
}
