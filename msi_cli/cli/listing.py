"""Commands that read: show (one object in az's shape) and list."""


from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.options import (
    ASSIGNMENT_COLUMNS,
    PRINCIPAL_CELL,
    FindGroupOpt,
    FindSubscriptionOpt,
    IdsOpt,
    NameOpt,
    ResourceKind,
    StateArg,
    targets,
    complete_scopes,
    complete_targets,
    complete_tenants,
    complete_types,
)
from msi_cli.cli.render import Col, Columns



def short_type(item: dict[str, Any]) -> str:
    """A resource's type as `--type` spells it (vm, webapp, ...): what a terminal's table shows."""
    from msi_cli.core.arm import RESOURCE_TYPES

    arm, kind = str(item.get("type") or ""), item.get("kind")
    for t in RESOURCE_TYPES.values():
        if t.arm_type.lower() == arm.lower() and (t.kind is None or t.kind == kind):
            return t.key
    return arm


def short_identity(item: dict[str, Any]) -> str:
    kinds = str((item.get("identity") or {}).get("type") or "")
    return ", ".join(k.strip().removesuffix("Assigned").lower() for k in kinds.split(",") if k.strip() not in ("", "None"))


if TYPE_CHECKING:
    from msi_cli.core.model import State

# Narrowed, a table keeps the resource group ahead of ids: two resources of one name in two
# groups are told apart by it (`Group` where `Resource group` would not fit). The Identity column
# is dropped before the principal id, which (with the user-assigned names) says the same.
RESOURCE_COLUMNS: Columns = [
    Col("Name", "name"),
    Col("Type", "type", tty=short_type),
    Col("Resource group", "resourceGroup", rank=2, short="Group"),
    Col("Location", "location", rank=5),
    Col("Identity", "identity.type", rank=4, tty=short_identity),
    Col("Principal id", "identity.principalId", rank=3),
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
    ListKind.resources: [*RESOURCE_COLUMNS, Col("User-assigned", USER_CELL, rank=1)],
    ListKind.identities: [
        Col("Name", "name"),
        Col("Resource group", "resourceGroup", rank=3, short="Group"),
        Col("Location", "location", rank=4),
        Col("Principal id", "principalId", rank=2),
        Col("Client id", "clientId", rank=1),
    ],
    ListKind.principals: [
        Col("Display name", "displayName"), Col("Object id", "id", rank=1), Col("App id", "appId", rank=2),
        Col("Type", "servicePrincipalType", rank=3),
    ],
    ListKind.tenants: [Col("Name", "displayName"), Col("Tenant id", "tenantId"), Col("Created", "createdDateTime", rank=1)],
    ListKind.subscriptions: [
        Col("Name", "name"), Col("Subscription id", "id"), Col("Tenant id", "tenantId", rank=2), Col("Default", "isDefault", rank=1),
    ],
    ListKind.groups: [Col("Name", "name"), Col("Location", "location", rank=2), Col("Subscription", "subscriptionId", rank=1)],
    ListKind.role_assignments: ASSIGNMENT_COLUMNS,
}
DELETED_COLUMNS: Columns = [
    Col("Display name", "displayName"), Col("Object id", "id", rank=1), Col("App id", "appId", rank=3),
    Col("Deleted", "deletedDateTime", rank=2),
]


@command(
    app,
    "show",
    epilog="Example: msi show web1 -o json\n\nExample: msi show 00000000-0000-0000-0000-000000000000   (a principal, by id)",
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
    *, sf: StateArg,
) -> dict[str, Any] | list[dict[str, Any]]:
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
    "Example: msi list resources -o tsv \\\n"
    "             --query \"[?identity.type=='SystemAssigned'].name\"",
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
    *, sf: StateArg,
) -> Result:
    """List resources, identities, principals, role assignments, tenants, subscriptions or resource groups."""
    from msi_cli.core import listing

    state = sf.read()
    data = listing.collect(
        state, kind.value, resource_group=resource_group, subscription=subscription, tenant=tenant,
        type_key=type_.value if type_ else None, principal=principal, scope=scope, deleted=deleted,
    )
    if kind is ListKind.role_assignments:
        return Result(data, table=lambda: [{**a, PRINCIPAL_CELL: _principal_name(state, a)} for a in data])
    if kind is not ListKind.resources:
        return Result(data)
    return Result(data, table=lambda: [{**item, USER_CELL: _user_cell(state, item)} for item in data])


def _principal_name(state: "State", assignment: dict[str, Any]) -> str:
    """A role assignment's principal by its display name (the identity's name); "" once gone."""
    sp = state.principals.get(str(assignment.get("principalId") or ""))
    return sp.display_name if sp is not None else ""


def _user_cell(state: "State", item: dict[str, Any]) -> list[str]:
    """The user-assigned identities of a resource, by name (a list: the renderer writes one a line,
    or joined with commas in a pipe); a deleted identity's entry (dangling) is marked, as it gets
    no token until removed."""
    entries = (item.get("identity") or {}).get("userAssignedIdentities") or {}
    return [rid.rsplit("/", 1)[-1] + ("" if e.get("principalId") in state.identities else " (deleted: dangling)")
            for rid, e in entries.items()]
