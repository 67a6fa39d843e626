"""Directories (tenants) and subscriptions: the fresh state's defaults, creating new ones, renaming them."""

from __future__ import annotations

from msi_cli.core import arm, lookup
from msi_cli.core.context import Ctx
from msi_cli.core.model import SCHEMA_VERSION, State, Subscription, Tenant
from msi_cli.errors import Conflict

DEFAULT_TENANT = "Default Directory"
DEFAULT_SUBSCRIPTION = "default"
DEFAULT_RESOURCE_GROUP = "default"
DEFAULT_LOCATION = "eastus"


def fresh_state(now_iso: str) -> State:
    tenant = Tenant(arm.new_guid(), DEFAULT_TENANT, now_iso)
    sub = Subscription(arm.new_guid(), DEFAULT_SUBSCRIPTION, tenant.id, now_iso)
    return State(
        schema=SCHEMA_VERSION,
        clock_offset=0,
        default_subscription_id=sub.id,
        tenants={tenant.id: tenant},
        subscriptions={sub.id: sub},
    )


def create_tenant(ctx: Ctx, name: str, tenant_id: str | None = None) -> Tenant:
    """A new directory; `tenant_id` keeps a given id (`msi import az` recreates real tenants)."""
    arm.validate_display_name("tenant", name, 256)
    if any(t.name.lower() == name.lower() for t in ctx.state.tenants.values()):
        raise Conflict(f"a tenant named '{name}' already exists")
    if tenant_id is not None and tenant_id in ctx.state.tenants:
        raise Conflict(f"a tenant with the id {tenant_id} already exists")
    tenant = Tenant(tenant_id or arm.new_guid(), name, ctx.now_iso)
    ctx.state.tenants[tenant.id] = tenant
    ctx.log("Create tenant", name, tenant.id)
    return tenant


def create_subscription(ctx: Ctx, name: str, tenant_ref: str | None, subscription_id: str | None = None) -> Subscription:
    """A subscription in a tenant; `subscription_id` keeps a given id (`msi import az`)."""
    arm.validate_display_name("subscription", name, 64)
    if any(s.name.lower() == name.lower() for s in ctx.state.subscriptions.values()):
        raise Conflict(f"a subscription named '{name}' already exists")
    if subscription_id is not None and subscription_id in ctx.state.subscriptions:
        raise Conflict(f"a subscription with the id {subscription_id} already exists")
    tenant = (
        lookup.tenant(ctx.state, tenant_ref)
        if tenant_ref
        else lookup.tenant_of(ctx.state, ctx.state.default_subscription_id)
    )
    sub = Subscription(subscription_id or arm.new_guid(), name, tenant.id, ctx.now_iso)
    ctx.state.subscriptions[sub.id] = sub
    ctx.log("Create subscription", name, f"{sub.id} in tenant {tenant.name}")
    return sub


def rename(ctx: Ctx, kind: str, names: dict[str, str]) -> None:
    """Give tenants (`kind` "tenant") or subscriptions new display names, by id, all at once (so two
    may swap names). Azure lets both be renamed, their ids never change; msi keeps display names
    unique, since commands and estate files name them."""
    objects: dict[str, Tenant] | dict[str, Subscription] = ctx.state.tenants if kind == "tenant" else ctx.state.subscriptions
    limit = 256 if kind == "tenant" else 64
    final = {o.id: o.name for o in objects.values()}
    for obj_id, name in names.items():
        arm.validate_display_name(kind, name, limit)
        final[obj_id] = name
    seen: dict[str, str] = {}
    for obj_id, name in final.items():
        other = seen.setdefault(name.lower(), obj_id)
        if other != obj_id:
            raise Conflict(f"a {kind} named '{name}' already exists")
    for obj_id, name in names.items():
        obj = objects[obj_id]
        if obj.name != name:
            old, obj.name = obj.name, name
            ctx.log(f"Rename {kind}", name, f"{obj_id} (was {old})")
