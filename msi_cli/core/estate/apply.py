"""Carry out a plan through the lifecycle, groups, federation and roles operations, in one
context: the caller's transaction saves all of it or none of it.

Order: tenants and subscriptions (renamed, tenants created, subscriptions that hold nothing moved
to the tenant the file gives them, subscriptions created), then (with --prune) the deletions of
role assignments, federated credentials and resources, then groups, identities and their
credentials, resources and their identities (detaching what the file no longer names), the
pruned identities, role assignments, and last the groups --prune empties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from msi_cli.core import arm, directory, federation, groups, lifecycle, moves, roles
from msi_cli.core.context import Ctx
from msi_cli.core.estate.changes import ObjKey, Plan, ResKey, low
from msi_cli.core.estate.schema import CredentialSpec, Estate, Path_
from msi_cli.core.model import Identity, Resource, State
from msi_cli.errors import MsiError


@contextmanager
def at(estate: Estate, path: Path_) -> Iterator[None]:
    """Name the file and line of the entry whose operation failed."""
    try:
        yield
    except MsiError as exc:
        raise located(estate, path, exc) from None


def located(estate: Estate, path: Path_, exc: MsiError) -> MsiError:
    err = MsiError(f"{estate.where(path)}: {exc.message}; nothing was changed", hint=exc.hint)
    err.exit_code = exc.exit_code
    return err


def _note(plan: Plan, wanted: str | None, made: str | None) -> None:
    """Report an id the file asked for that the state could not keep, with the id it got."""
    if wanted is not None and made is not None and wanted != made:
        plan.remapped[wanted] = made


def _kept(plan: Plan, principal_id: str | None, client_id: str | None) -> tuple[str, str] | None:
    """The ids a new identity keeps: the file's principal id (and client id, else a new one),
    unless one is taken already."""
    if principal_id is None or principal_id in plan.remapped or (client_id is not None and client_id in plan.remapped):
        return None
    return principal_id, client_id or arm.new_guid()


def apply(ctx: Ctx, plan: Plan) -> dict[str, Any]:
    """Make the state what the plan says; returns the identities' ids by the names the file gave."""
    state, e = ctx.state, plan.estate
    directory.rename(ctx, "tenant", plan.rename_tenants)
    directory.rename(ctx, "subscription", plan.rename_subscriptions)
    wanted = {t.name.lower(): t.id for t in e.tenants if t.id}
    for name, tenant_id in plan.new_tenants:
        made = directory.create_tenant(ctx, name, tenant_id)
        _note(plan, wanted.get(name.lower()), made.id)
    for moved, to in plan.move_subscriptions:  # ones that hold nothing: the move breaks nothing
        moves.move_subscription(ctx, moved, to)
    wanted = {s.name.lower(): s.id for s in e.subscriptions if s.id}
    for name, tenant, sub_id in plan.new_subscriptions:
        made_sub = directory.create_subscription(ctx, name, tenant, sub_id)
        _note(plan, wanted.get(name.lower()), made_sub.id)
    sub_ids = {low(s.name): s.id for s in state.subscriptions.values()}

    for a in plan.delete_assignments:
        roles.delete_assignment(ctx, a.id)
    for holder, gone in plan.delete_credentials:
        federation.remove(ctx, holder, gone.name)
    for resource in plan.delete_resources:
        lifecycle.delete(ctx, resource)

    for gkey, (sub_key, name, location, _) in plan.groups.items():
        group = groups.ensure(ctx, sub_ids[sub_key], name, location)
        if gkey in plan.guessed_groups:
            lifecycle.guess_group_location(group)
        elif gkey in plan.relocate_groups:
            lifecycle.locate_guessed_group(ctx, group, plan.relocate_groups[gkey])

    identities: dict[ObjKey, Identity] = {}
    for ikey, (ispec, existing) in plan.identities.items():
        if existing is None:
            with at(e, ispec.path):
                existing = lifecycle.create_identity(ctx, ispec.name, ispec.resource_group, sub_ids[ikey[0]], ispec.location,
                                                     _kept(plan, ispec.principal_id, ispec.client_id), ispec.location_guessed)
                _note(plan, ispec.principal_id, existing.principal_id)
        elif ikey in plan.relocate:
            lifecycle.locate_guessed_identity(ctx, existing, plan.relocate[ikey])
        identities[ikey] = existing
    by_identity: dict[ObjKey, list[CredentialSpec]] = {}
    for ckey, cred in plan.credentials:
        by_identity.setdefault(ckey, []).append(cred)
    for ckey, creds in by_identity.items():  # one change per identity: its rules hold for the end state
        try:
            federation.put_all(ctx, identities[ckey], [(c.name, c.issuer, c.subject, c.audiences) for c in creds])
        except MsiError as exc:
            failed = next((c for c in creds if low(c.name) == low(getattr(exc, "credential", ""))), creds[-1])
            raise located(e, failed.path, exc) from None

    resources: dict[ResKey, Resource] = {}
    for key, work in plan.resources.items():
        spec = work.spec
        with at(e, spec.path):
            r = work.existing
            if r is None:
                r = lifecycle.create_resource(ctx, spec.name, spec.type, spec.resource_group, sub_ids[key[0]], spec.location)
            elif work.disable_system or work.detach:
                lifecycle.unassign(ctx, r, work.disable_system, work.detach)
            if work.enable_system or work.attach:
                attach = [identities[k] for k in work.attach]
                lifecycle.assign(ctx, r, work.enable_system, attach, _kept(plan, spec.principal_id, spec.client_id))
                if work.enable_system:
                    _note(plan, spec.principal_id, r.system_principal_id)
        resources[key] = r
    for identity in plan.delete_identities:  # after the resources that keep running let go of them
        lifecycle.delete(ctx, identity)

    index = {(a.principal_id, a.role_definition_id, a.scope.lower()) for a in state.role_assignments.values()}
    for aspec, (principal, _, _) in plan.assignments:
        with at(e, aspec.path):
            if principal[0] == "identity":
                principal_id = identities[cast(ObjKey, principal[1])].principal_id
            else:
                principal_id = resources[cast(ResKey, principal[1])].system_principal_id or ""
            keep = aspec.id if aspec.id and aspec.id not in state.role_assignments and aspec.id not in plan.remapped else None
            roles.grant(ctx, principal_id, aspec.role, _scope(aspec.scope, sub_ids, plan), keep, index)

    for group in plan.delete_groups:
        lifecycle.delete_group(ctx, group)
    return ids_by_name(state, identities, resources)


def _scope(scope: str, sub_ids: dict[str, str], plan: Plan) -> str:
    """The file's scope with its subscription (a name or id) written as the subscription's id."""
    p = arm.parts(scope)
    ref = low(p.subscription_id)
    sub_id = sub_ids.get(ref)
    if sub_id is None:
        named = next((s for s in plan.estate.subscriptions if s.id == ref), None)
        sub_id = sub_ids.get(low(named.name)) if named is not None else ref
    out = arm.subscription_scope(sub_id or ref)
    if p.resource_group is not None:
        out = arm.resource_group_scope(sub_id or ref, p.resource_group)
        if p.name is not None and p.arm_type is not None:
            out = arm.resource_id(sub_id or ref, p.resource_group, p.arm_type, p.name)
    return out


K = TypeVar("K", bound=tuple[str, ...])


def short_refs(keys: Sequence[K], name_of: Callable[[K], str], group_of: Callable[[K], str], sub_of: Callable[[K], str],
               type_of: Callable[[K], str] | None = None) -> dict[K, str]:
    """The shortest reference naming each key alone: "name", "group/name" or
    "subscription/group/name", each tried first as it is and then, for resources (`type_of`), with
    the name qualified by the type ("vm:name"), which tells apart resources of one name."""

    def forms(k: K) -> list[tuple[tuple[str, ...], str]]:
        name, group, sub = name_of(k), group_of(k), sub_of(k)
        kind = type_of(k) if type_of is not None else None
        out: list[tuple[tuple[str, ...], str]] = []
        for level, prefix in enumerate(("", f"{group}/", f"{sub}/{group}/")):
            scope = (low(sub), low(group))[2 - level:]
            out.append((("plain", str(level), *scope, low(name)), f"{prefix}{name}"))
            if kind is not None:
                out.append((("typed", str(level), *scope, low(kind), low(name)), f"{prefix}{kind}:{name}"))
        return out

    counts: dict[tuple[str, ...], int] = {}
    every = {k: forms(k) for k in keys}
    for found in every.values():
        for form, _ in found:
            counts[form] = counts.get(form, 0) + 1
    return {k: next((text for form, text in found if counts[form] == 1), found[-1][1]) for k, found in every.items()}


def ids_by_name(state: State, identities: dict[ObjKey, Identity], resources: dict[ResKey, Resource]) -> dict[str, Any]:
    """{"identities": {ref: ids}, "resources": {ref: ids of its system-assigned identity}}."""
    sub_names = {s.id: s.name for s in state.subscriptions.values()}
    ids = list(identities)
    refs = short_refs(ids, lambda k: identities[k].name, lambda k: arm.parts(identities[k].resource_id).resource_group or "",
                      lambda k: sub_names.get(arm.parts(identities[k].resource_id).subscription, ""))
    out_i = {
        refs[k]: {"id": i.resource_id, "principalId": i.principal_id, "clientId": i.client_id, "tenantId": i.tenant_id}
        for k, i in identities.items()
    }
    with_system = [k for k, r in resources.items() if r.system_principal_id is not None]
    rrefs = short_refs(with_system, lambda k: resources[k].name, lambda k: resources[k].resource_group,
                       lambda k: sub_names.get(resources[k].subscription_id, ""), lambda k: resources[k].type)
    out_r = {}
    for k in with_system:
        r = resources[k]
        i = state.identities[r.system_principal_id or ""]
        out_r[rrefs[k]] = {"id": r.id, "principalId": i.principal_id, "clientId": i.client_id, "tenantId": i.tenant_id}
    return {"identities": out_i, "resources": out_r}
