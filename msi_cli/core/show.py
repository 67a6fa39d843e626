"""`msi show`: one object by whatever names it (a resource or identity by name or id; a principal,
tenant, subscription or role assignment by id), in az's shape."""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm, lookup, shapes
from msi_cli.core.model import Resource, State
from msi_cli.errors import NotFound


def show_data(state: State, ref: str, resource_group: str | None, subscription: str | None) -> dict[str, Any]:
    if arm.is_guid(ref):
        return _by_guid(state, ref)
    if "/providers/Microsoft.Authorization/roleAssignments/" in ref:
        guid = ref.rstrip("/").rsplit("/", 1)[-1].lower()
        if guid in state.role_assignments:
            return shapes.assignment(state, state.role_assignments[guid])
        raise NotFound(f"role assignment '{ref}' not found")
    found = lookup.target(state, ref, resource_group, subscription)
    if isinstance(found, Resource):
        return shapes.resource(state, found)
    return shapes.user_identity(found)


def _by_guid(state: State, ref: str) -> dict[str, Any]:
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
        return shapes.assignment(state, state.role_assignments[low])
    raise NotFound(f"no object with id '{ref}'")
