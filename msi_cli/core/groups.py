"""Resource groups: containers in a subscription, each with the location its metadata lives in.

msi's own commands create the group a resource or identity names when it does not exist yet (so
`msi create-identity -g ci` keeps working as before); the ARM endpoint is stricter, as Azure is:
a PUT into a group that does not exist is ResourceGroupNotFound.
"""

from __future__ import annotations


from msi_cli.core import arm, lookup
from msi_cli.core.context import Ctx
from msi_cli.core.model import Identity, Resource, ResourceGroup, State
from msi_cli.errors import Conflict, NotFound


def key(subscription_id: str, name: str) -> str:
    return arm.resource_group_scope(subscription_id, name).lower()


def find(state: State, subscription_id: str, name: str) -> ResourceGroup | None:
    return state.resource_groups.get(key(subscription_id, name))


def get(state: State, subscription_id: str, name: str) -> ResourceGroup:
    group = find(state, subscription_id, name)
    if group is None:
        raise NotFound(f"Resource group '{name}' could not be found.")
    return group


def ensure(ctx: Ctx, subscription_id: str, name: str, location: str) -> ResourceGroup:
    """The group, created in `location` if it does not exist (what msi's own commands do)."""
    group = find(ctx.state, subscription_id, name)
    if group is None:
        group = _create(ctx, subscription_id, name, location)
    return group


def _create(ctx: Ctx, subscription_id: str, name: str, location: str) -> ResourceGroup:
    arm.validate_resource_group(name)
    arm.validate_location(location)
    group = ResourceGroup(name, subscription_id, location, ctx.now_iso)
    ctx.state.resource_groups[group.id.lower()] = group
    ctx.log("Create resource group", group.id, location)
    return group


def create_or_update(ctx: Ctx, subscription_ref: str, name: str, location: str) -> tuple[ResourceGroup, bool]:
    """Azure's PUT of a group: create it, or accept it unchanged; a group cannot change location.
    Returns the group and whether it was created."""
    sub = lookup.subscription(ctx.state, subscription_ref)
    existing = find(ctx.state, sub.id, name)
    if existing is not None:
        if existing.location != arm.location_name(location):
            raise Conflict(
                f"Invalid resource group location '{location}'. The Resource group already exists in location "
                f"'{existing.location}'."
            )
        return existing, False
    return _create(ctx, sub.id, name, arm.location(location)), True


def members(state: State, group: ResourceGroup) -> tuple[list[Resource], list[Identity]]:
    """The resources and user-assigned identities in a group."""
    prefix = group.id.lower() + "/"
    resources = [r for k, r in state.resources.items() if k.startswith(prefix)]
    identities = [i for i in lookup.user_identities(state) if i.resource_id.lower().startswith(prefix)]
    return resources, identities
