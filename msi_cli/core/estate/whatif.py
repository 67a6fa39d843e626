"""Rehearse a move: run the real move (msi_cli.core.moves) on a copy of the state, then compare.
(`rehearse_apply` does the same for `msi apply --what-if`: the apply itself runs on a copy, so a
plan it would refuse is refused by its what-if too.)

The rehearsal cannot drift from the move because it is the move: the same function runs on a
copy, and what it returns is what the real move would print. Around it, this module reads off the
copy what the move breaks (role assignments deleted or orphaned, identities that no longer get a
token and the apps that use them, user-assigned identities to re-create, federated credentials
that stop working) and writes the msi commands that repair it, in the order they must run.
"""

from __future__ import annotations

import copy
import os
import shlex
from collections.abc import Callable
from typing import Any, TypeVar

from msi_cli.core import arm, lookup, roledefs, roles, shapes
from msi_cli.core.context import Ctx
from msi_cli.core.timefmt import iso
from msi_cli.core.model import (
    SYSTEM,
    Identity,
    KeyCredential,
    Resource,
    RoleAssignment,
    ServicePrincipal,
    SigningKey,
    State,
    Subscription,
    Tenant,
    UserAssignment,
)


def clone(state: State) -> State:
    """A copy deep enough for a move: every object a move may change is copied, with its lists
    (role assignments, credentials and deleted principals are only ever added or dropped)."""
    out = copy.copy(state)
    out.tenants = {k: Tenant(t.id, t.name, t.created, list(t.signing_keys)) for k, t in state.tenants.items()}
    out.subscriptions = {k: Subscription(s.id, s.name, s.tenant_id, s.created) for k, s in state.subscriptions.items()}
    out.resource_groups = dict(state.resource_groups)
    out.resources = {
        k: Resource(r.name, r.type, r.subscription_id, r.resource_group, r.location, r.created, r.system_principal_id,
                    [UserAssignment(u.resource_id, u.principal_id, u.client_id) for u in r.user_assigned])
        for k, r in state.resources.items()
    }
    out.identities = {k: Identity(i.principal_id, i.client_id, i.tenant_id, i.kind, i.name, i.resource_id, i.location, i.created,
                                  i.location_guessed)
                      for k, i in state.identities.items()}
    out.principals = {k: ServicePrincipal(p.id, p.app_id, p.tenant_id, p.display_name, list(p.alternative_names), list(p.key_credentials))
                      for k, p in state.principals.items()}
    out.role_assignments = dict(state.role_assignments)
    out.deleted_principals = dict(state.deleted_principals)
    out.federated_credentials = dict(state.federated_credentials)
    out.issuers = dict(state.issuers)
    return out


T = TypeVar("T")


class _Unmade:
    """The key ring of a rehearsal: what it would issue is named, never made or stored (a what-if
    prints no key, thumbprint or key id), and no key is read."""

    def new_signing_key(self, tenant_id: str, created: int, signs_until: int, published_until: int) -> SigningKey:
        return SigningKey(os.urandom(20).hex(), iso(created), iso(signs_until), iso(published_until))

    def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential:
        return KeyCredential(arm.new_guid(), os.urandom(20).hex().upper(), iso(start), iso(end))

    def new_issuer_key(self, issuer_name: str, created: int, until: int) -> str:
        return os.urandom(20).hex()

    def signing_key_pem(self, kid: str) -> bytes:
        raise AssertionError("a rehearsal signs nothing")

    def certificate_pem(self, thumbprint: str) -> bytes:
        raise AssertionError("a rehearsal reads no certificate")

    def public_certificate_der(self, kid: str) -> bytes:
        raise AssertionError("a rehearsal reads no certificate")


def rehearse_apply(state: State, now: int, apply: Callable[[Ctx], T]) -> T:
    """Run `apply` as the real transaction would (after the same maintenance) on a copy of
    `state`, with keys that are never made, and return what it returns; it raises what the real
    apply would raise, and `state` is not touched."""
    from msi_cli.core import maintenance

    shadow = Ctx(clone(state), now, _Unmade())
    maintenance.maintain(shadow)
    return apply(shadow)


def _q(value: str) -> str:
    return shlex.quote(value)


def rehearse(ctx: Ctx, operation: str, move: Callable[[Ctx], dict[str, Any]]) -> dict[str, Any]:
    """Run `move` on a copy of ctx's state, after the maintenance the real move's transaction
    does first (certificates MSRP rolls, principals purged), so both start from the same state;
    ctx's state is not touched. ctx's key ring makes what maintenance issues without storing it."""
    from msi_cli.core import maintenance

    before = clone(ctx.state)
    maintenance.maintain(Ctx(before, ctx.now, ctx.keys))
    after = clone(before)
    shadow = Ctx(after, ctx.now, ctx.keys)
    result = move(shadow)
    report: dict[str, Any] = {"whatIf": True, "operation": operation, "result": result}
    deleted = [a for aid, a in before.role_assignments.items() if aid not in after.role_assignments]
    report["deletedRoleAssignments"] = [shapes.assignment(before, a) for a in deleted]
    orphaned = [a for a in after.role_assignments.values()
                if roles.scope_exists(before, a.scope) and not roles.scope_exists(after, a.scope)]
    report["orphanedRoleAssignments"] = [shapes.assignment(after, a) for a in orphaned]
    broken = _broken(after, result)
    report["brokenIdentities"] = broken
    recreate = [i for i in lookup.user_identities(after) if i.tenant_id != _tenant_of_id(after, i.resource_id)
                and i.tenant_id == _tenant_of_id(before, i.resource_id)]
    report["userAssignedIdentitiesToRecreate"] = [
        {"id": i.resource_id, "name": i.name, "principalId": i.principal_id, "usedBy": _users_of(after, i)} for i in recreate
    ]
    report["brokenFederatedCredentials"] = [
        {"identity": i.resource_id, "name": c.name, "issuer": c.issuer, "subject": c.subject,
         "reason": f"the identity's service principal stays in tenant {i.tenant_id}; exchanges at its new tenant fail (AADSTS700016)"}
        for i in recreate for c in after.federated_credentials.values() if c.identity_id == i.principal_id
    ]
    report["fixCommands"] = _fixes(before, after, recreate, broken, deleted, orphaned)
    _USERS.pop(id(after), None)
    return report


def _tenant_of_id(state: State, resource_id: str) -> str | None:
    sub = state.subscriptions.get(arm.parts(resource_id).subscription)
    return sub.tenant_id if sub is not None else None


_USERS: dict[int, dict[str, list[str]]] = {}


def _users_of(state: State, identity: Identity) -> list[str]:
    """The resources that get tokens as this identity (its host, or every resource it is attached
    to), from an index of the state built once per rehearsal."""
    index = _USERS.get(id(state))
    if index is None:
        index = {}
        for r in state.resources.values():
            if r.system_principal_id is not None:
                index.setdefault(r.system_principal_id, []).append(r.id)
            for u in r.user_assigned:
                index.setdefault(u.principal_id, []).append(r.id)
        _USERS[id(state)] = index
    return list(index.get(identity.principal_id, ()))


def _broken(after: State, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Identities that no longer get a token, as the move itself found them (move-subscription's
    `brokenIdentities`, migrate's `identities`), with the apps that use them."""
    entries = result.get("brokenIdentities")
    if entries is None:
        entries = [e for e in result.get("identities", []) if not e["works"]]
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry["principalId"] in out:
            continue
        identity = after.identities[entry["principalId"]]
        users = _users_of(after, identity)  # a user-assigned one breaks for every app (tokens.check_chain)
        out[identity.principal_id] = {
            "principalId": identity.principal_id, "kind": identity.kind, "name": identity.name,
            "id": identity.resource_id, "reason": entry["reason"], "usedBy": users,
        }
    return list(out.values())


def _fixes(before: State, after: State, recreate: list[Identity], broken: list[dict[str, Any]],
           deleted: list[RoleAssignment], orphaned: list[RoleAssignment]) -> list[str]:
    """The msi commands that repair what the move breaks, in the order they must run: give the apps
    that lose a user-assigned identity across tenants one of their own; detach and re-create
    user-assigned identities (with their federated credentials) and attach them again; disable and
    re-enable broken system-assigned identities; then grant the lost access again, to the new
    principals, and remove the orphaned assignments. Roles msi does not know are left alone."""
    cmds: list[str] = []
    renewed: dict[str, str] = {}  # old principal id -> how to name its successor in `msi grant`
    names = {rid: d.name for rid, d in roledefs.ROLES_BY_ID.items()}
    replace = _Replacer(before, after, names, [*deleted, *orphaned])
    for i in recreate:
        p = arm.parts(i.resource_id)
        home = _tenant_of_id(after, i.resource_id)
        users: list[str] = []  # the apps in the identity's (new) tenant
        others: list[str] = []  # and those of other tenants
        for rid in _users_of(after, i):
            (users if _tenant_of_id(after, rid) == home else others).append(rid)
        cmds.extend(replace(i, others))
        for rid in users:
            cmds.append(f"msi unassign {_q(rid)} --user-assigned {_q(i.resource_id)}")
        cmds.append(f"msi delete {_q(i.resource_id)} --yes")
        cmds.append(f"msi create-identity {_q(i.name)} -g {_q(p.resource_group or '')} --subscription {p.subscription} --location {i.location}")
        for c in sorted((c for c in after.federated_credentials.values() if c.identity_id == i.principal_id), key=lambda c: c.name.lower()):
            cmds.append(f"msi federation add {_q(i.resource_id)} --name {_q(c.name)} --issuer {_q(c.issuer)} --subject {_q(c.subject)}"
                        + "".join(f" --audience {_q(a)}" for a in c.audiences))
        for rid in users:
            cmds.append(f"msi assign {_q(rid)} --user-assigned {_q(i.resource_id)}")
        renewed[i.principal_id] = i.resource_id
    recreated = {i.principal_id for i in recreate}
    for entry in broken:
        if entry["kind"] == SYSTEM:
            for rid in entry["usedBy"]:
                cmds.append(f"msi unassign {_q(rid)} --system-assigned")
                cmds.append(f"msi assign {_q(rid)} --system-assigned")
                renewed[entry["principalId"]] = rid
        elif entry["principalId"] not in recreated:  # it stays; the apps that moved away from its tenant lose it
            cmds.extend(replace(after.identities[entry["principalId"]], entry["usedBy"]))
    known = [a for a in orphaned if a.role_definition_id in names]
    for a in known:  # at a scope that moved: remove it, grant at the new id
        cmds.append(f"msi revoke {a.principal_id} --role {_q(names[a.role_definition_id])} --scope {_q(a.scope)}")
    moved_away = {a.id for a in orphaned}
    regrants = [*deleted, *known, *(a for a in after.role_assignments.values() if a.principal_id in renewed and a.id not in moved_away)]
    for a in regrants:
        principal = renewed.get(a.principal_id)
        if principal is None:
            identity = after.identities.get(a.principal_id)
            if identity is None:
                continue  # the principal was already gone: nothing to grant to
            principal = identity.resource_id
        cmds.extend(replace.grant(a, principal))
    return cmds


class _Replacer:
    """Identities for the apps that lose a user-assigned identity across tenants (an identity of
    another tenant cannot be attached): one of the same name beside each app, with the old one's
    access in that app's tenant, attached before the old one is detached. Also grants once each."""

    def __init__(self, before: State, after: State, names: dict[str, str], lost: list[RoleAssignment]) -> None:
        self.before, self.after, self.names, self.lost = before, after, names, lost
        self.taken = {i.resource_id.lower() for i in lookup.user_identities(after)}  # names made here included
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, old: Identity, users: list[str]) -> list[str]:
        cmds: list[str] = []
        made: dict[tuple[str, str], str] = {}
        for rid in users:
            p = arm.parts(rid)
            place = (p.subscription, p.resource_group or "")
            new = made.get(place)
            if new is None:
                name = self._free(place, old.name)
                new = made[place] = arm.resource_id(place[0], place[1], arm.IDENTITY_ARM_TYPE, name)
                cmds.append(f"msi create-identity {_q(name)} -g {_q(place[1])} --subscription {place[0]} "
                            f"--location {self.after.resources[rid.lower()].location}")
                for a in [*self.lost, *self.after.role_assignments.values()]:
                    if a.principal_id == old.principal_id:
                        cmds.extend(self.grant(a, new))
            cmds.append(f"msi assign {_q(rid)} --user-assigned {_q(new)}")  # first: the app is never left without one
            cmds.append(f"msi unassign {_q(rid)} --user-assigned {_q(old.resource_id)}")
        return cmds

    def _free(self, place: tuple[str, str], base: str) -> str:
        """`base`, or `base-2`, `base-3`... (within the 128 characters a name may have): the first
        name no identity in that group has, nor one made by an earlier fix."""
        name, n = base, 1
        while arm.resource_id(place[0], place[1], arm.IDENTITY_ARM_TYPE, name).lower() in self.taken:
            n += 1
            name = base[: 128 - len(f"-{n}")] + f"-{n}"
        self.taken.add(arm.resource_id(place[0], place[1], arm.IDENTITY_ARM_TYPE, name).lower())
        return name

    def grant(self, a: RoleAssignment, principal: str) -> list[str]:
        """`msi grant` of `a`'s role to `principal` where `a`'s scope is after the move, if it still
        exists, the role is one msi knows, the tenants agree, and it was not granted already."""
        role = self.names.get(a.role_definition_id)
        scope = _new_scope(self.before, self.after, a.scope)
        if role is None or scope is None or not _same_tenant(self.after, principal, scope):
            return []
        key = (principal.lower(), role, scope.lower())
        if key in self.seen:
            return []
        self.seen.add(key)
        return [f"msi grant {_q(principal)} --role {_q(role)} --scope {_q(scope)}"]


def _new_scope(before: State, after: State, scope: str) -> str | None:
    """Where a scope is after the move: itself if it still exists, else the moved resource's new id."""
    if roles.scope_exists(after, scope):
        return scope
    for key, old in before.resources.items():
        if arm.covers(old.id, scope) and key not in after.resources:
            new = next((r for r in after.resources.values() if r is not None and _same_object(old, r)), None)
            if new is not None:
                return new.id + scope[len(old.id):]
    return None


def _same_object(old: Resource, new: Resource) -> bool:
    return old.name == new.name and old.type == new.type and old.created == new.created


def _same_tenant(state: State, principal_ref: str, scope: str) -> bool:
    """A grant works only when the principal's tenant holds the scope's subscription."""
    sub = state.subscriptions.get(arm.parts(scope).subscription)
    if sub is None:
        return False
    owner = state.resources.get(principal_ref.lower())
    if owner is not None:
        return owner.subscription_id in state.subscriptions and state.subscriptions[owner.subscription_id].tenant_id == sub.tenant_id
    tenant = _tenant_of_id(state, principal_ref)
    return tenant == sub.tenant_id

