"""Commands that read: show (one object in az's shape) and list."""


from enum import Enum
from typing import Annotated, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.options import (
    ASSIGNMENT_COLUMNS,
    FindGroupOpt,
    FindSubscriptionOpt,
    IdsOpt,
    NameOpt,
    ResourceKind,
    targets,
    complete_scopes,
    complete_targets,
    complete_tenants,
    complete_types,
)
from msi_cli.cli.render import Columns

RESOURCE_COLUMNS: Columns = [
    ("Name", "name"),
    ("Type", "type"),
    ("Resource group", "resourceGroup"),
    ("Location", "location"),
    ("Identity", "identity.type"),
    ("Principal id", "identity.principalId"),
]
USER_CELL = "_userAssigned"  # a table-only column, never in the JSON


class ListKind(str, Enum):
    resources = "resources"
    identities = "identities"
    principals = "principals"
    role_assignments = "role-assignments"
    tenants = "tenants"
    subscriptions = "subscriptions"
    groups = "groups"


COLUMNS: dict[ListKind, Columns] = {
    ListKind.resources: [*RESOURCE_COLUMNS, ("User-assigned", USER_CELL)],
    ListKind.identities: [
        ("Name", "name"),
        ("Resource group", "resourceGroup"),
        ("Location", "location"),
        ("Principal id", "principalId"),
        ("Client id", "clientId"),
    ],
    ListKind.principals: [("Display name", "displayName"), ("Object id", "id"), ("App id", "appId"), ("Type", "servicePrincipalType")],
    ListKind.tenants: [("Name", "displayName"), ("Tenant id", "tenantId"), ("Created", "createdDateTime")],
    ListKind.subscriptions: [("Name", "name"), ("Subscription id", "id"), ("Tenant id", "tenantId"), ("Default", "isDefault")],
    ListKind.groups: [("Name", "name"), ("Location", "location"), ("Subscription", "subscriptionId")],
    ListKind.role_assignments: ASSIGNMENT_COLUMNS,
}
DELETED_COLUMNS: Columns = [("Display name", "displayName"), ("Object id", "id"), ("App id", "appId"), ("Deleted", "deletedDateTime")]


@command(
    app,
    "show",
    epilog="Example: msi show web1 -o json\n\nExample: msi show 00000000-0000-0000-0000-000000000000   (a principal, tenant or subscription id)",
)
def show(
    target: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[NAME]",
            help="A resource or identity (name or id), or a principal, tenant, subscription or role assignment id.",
            autocompletion=complete_targets, show_default=False,
        ),
    ] = None,
    name: NameOpt = None,
    ids: IdsOpt = None,
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
    sf=None,
) -> dict | list:
    """Show one object in az's shape (several, as a list, with --ids A B ...)."""
    from msi_cli.core.show import show_data

    refs = targets(target, name, ids)
    state = sf.read()
    if ids is not None:
        found = [show_data(state, ref, None, None) for ref in refs]
        return found[0] if len(found) == 1 else found
    return show_data(state, refs[0], resource_group, subscription)


@command(
    app,
    "list",
    columns=lambda options: DELETED_COLUMNS if options["deleted"] else COLUMNS[options["kind"]],
    epilog="Example: msi list resources --type vm -o table\n\n"
    "Example: msi list resources --query \"[?identity.type=='SystemAssigned'].name\" -o tsv",
)
def list_(
    kind: Annotated[ListKind, typer.Argument(help="What to list.", case_sensitive=False)],
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
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
    sf=None,
) -> Result:
    """List resources, identities, principals, role assignments, tenants, subscriptions or resource groups."""
    from msi_cli.core import listing

    state = sf.read()
    data = listing.collect(
        state, kind.value, resource_group=resource_group, subscription=subscription, tenant=tenant,
        type_key=type_.value if type_ else None, principal=principal, scope=scope, deleted=deleted,
    )
    if kind is not ListKind.resources:
        return Result(data)
    return Result(data, table=lambda: [{**item, USER_CELL: _user_cell(state, item)} for item in data])


def _user_cell(state, item: dict) -> str:
    """The user-assigned identities of a resource, by name; a deleted identity's entry (dangling)
    is marked, as it gets no token until removed."""
    entries = (item.get("identity") or {}).get("userAssignedIdentities") or {}
    return "\n".join(
        rid.rsplit("/", 1)[-1] + ("" if e.get("principalId") in state.identities else " (deleted: dangling)")
        for rid, e in entries.items()
    )
