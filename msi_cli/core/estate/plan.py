"""What applying an estate would change, matched by name against a state.

Tenants and subscriptions match by display name, resource groups by subscription and name,
resources and user-assigned identities by subscription, group, type and name. A subscription is
known by its name inside the plan (its id exists only once it is created), so every key below is
made of lower-case names. Nothing here changes the state.
"""

from __future__ import annotations

from typing import Any, cast

from msi_cli.core import arm, lookup, moves, roledefs, roles
from msi_cli.core.estate.changes import (
    CREATE,
    DELETE,
    UPDATE,
    AssignKey,
    Change,
    GroupKey,
    ObjKey,
    Plan,
    PrincipalKey,
    ResKey,
    ResourceWork,
    ScopeKey,
    low,
)
from msi_cli.core.estate.matching import Matcher
from msi_cli.core.estate.schema import Estate, GroupSpec, IdentitySpec, Path_, ResourceSpec, SubscriptionSpec
from msi_cli.core.model import USER, FederatedCredential, Identity, Resource, RoleAssignment, State, Subscription
from msi_cli.errors import Conflict


class Planner(Matcher):
    """The plan, kind by kind (names and references are matched by `Matcher`)."""

    # ---- the plan -------------------------------------------------------------------------------------

    def build(self) -> Plan:
        self._tenants()
        self._subscriptions()
        idents = self._identities()
        resources = self._resources()
        self._groups(idents, resources)
        self._resource_identities(idents, resources)
        self._assignments(idents, resources)
        self._prune(idents, resources)
        return self.plan

    def _tenants(self) -> None:
        for spec in self.e.tenants:
            if low(spec.name) in self.file_tenants:
                raise self.e.fail(spec.path, f"tenant '{spec.name}' is declared twice")
            self.file_tenants[low(spec.name)] = spec.name
            if spec.id:
                self.file_tenants.setdefault(spec.id, spec.name)
        matched = self.match(self.e.tenants, self.state.tenants, "tenant")
        for spec, existing in zip(self.e.tenants, matched):
            if existing is None:
                keep = spec.id if spec.id and spec.id not in self.state.tenants else None
                if spec.id and keep is None:
                    self.plan.remapped[spec.id] = "(a new id)"
                self.plan.new_tenants.append((spec.name, keep))
                self.plan.changes.append(Change(CREATE, "tenant", spec.name))
                self.tenant_ids[low(spec.name)] = None
            else:
                self.tenant_ids[low(spec.name)] = existing.id
                if spec.id == existing.id and existing.name != spec.name:  # matched by its id: renamed (by name: kept, in any case)
                    self.plan.rename_tenants[existing.id] = spec.name
                    self.plan.changes.append(Change(UPDATE, "tenant", existing.name, f"rename to {spec.name} (id {existing.id})"))

    def _subscriptions(self) -> None:
        for spec in self.e.subscriptions:
            if low(spec.name) in self.file_subs:
                raise self.e.fail(spec.path, f"subscription '{spec.name}' is declared twice")
            self.file_subs[low(spec.name)] = spec.name
            if spec.id:
                self.file_subs.setdefault(spec.id, spec.name)
        default_tenant = lookup.tenant_of(self.state, self.state.default_subscription_id)
        matched = self.match(self.e.subscriptions, self.state.subscriptions, "subscription")
        for spec, existing in zip(self.e.subscriptions, matched):
            if spec.tenant:
                tenant = self.tenant_name(spec.tenant, spec.path + ("tenant",))
                tenant_id = self.tenant_ids[low(tenant)] if low(tenant) in self.tenant_ids else lookup.tenant(self.state, tenant).id
            else:  # an existing subscription stays in its tenant; a new one is made in the default one's
                tenant_id = default_tenant.id if existing is None else existing.tenant_id
                tenant = self.plan.rename_tenants.get(tenant_id, self.state.tenants[tenant_id].name)
            self.sub_tenant[low(spec.name)] = tenant
            if existing is None:
                keep = spec.id if spec.id and spec.id not in self.state.subscriptions else None
                if spec.id and keep is None:
                    self.plan.remapped[spec.id] = "(a new id)"
                self.plan.new_subscriptions.append((spec.name, tenant, keep))
                self.plan.changes.append(Change(CREATE, "subscription", spec.name, f"in tenant {tenant}"))
                continue
            if existing.tenant_id != tenant_id:
                self._move(spec, existing, tenant)
            if spec.id == existing.id and existing.name != spec.name:  # matched by its id: renamed (by name: kept, in any case)
                self.plan.rename_subscriptions[existing.id] = spec.name
                self.plan.changes.append(Change(UPDATE, "subscription", existing.name, f"rename to {spec.name} (id {existing.id})"))
        # from here on, the state's subscriptions are known by the names they will have
        for sub_id, name in self.plan.rename_subscriptions.items():
            self.sub_name_of[sub_id] = low(name)
        self.subs_by_name = {self.sub_name_of[s.id]: s for s in self.state.subscriptions.values()}

    def _move(self, spec: SubscriptionSpec, existing: Subscription, tenant: str) -> None:
        """A subscription the file puts in another tenant: moved when it holds nothing (no role
        assignment to delete, no identity to strand), else refused: `msi move-subscription`
        reports what such a move breaks."""
        name, was = spec.name, self.state.tenants[existing.tenant_id].name
        held = moves.holdings(self.state, existing.id)
        if held:
            raise Conflict(
                f"{self.e.where(spec.path)}: subscription '{name}' is in tenant '{was}', the file puts it in '{tenant}', "
                f"and it holds {', '.join(held)}; nothing was changed",
                hint=f"a subscription that holds anything changes tenant only by a move, which reports what breaks: "
                     f"msi move-subscription '{existing.name}' --tenant '{tenant}' --what-if",
            )
        self.plan.move_subscriptions.append((existing.id, tenant))
        self.plan.changes.append(Change(UPDATE, "subscription", existing.name, f"tenant {was} -> {tenant}"))

    def _identities(self) -> dict[ObjKey, IdentitySpec]:
        index: dict[ObjKey, Identity] = {}
        for i in self.state.identities.values():
            if i.kind == USER:
                p = arm.parts(i.resource_id)
                index[(self.sub_name_of.get(p.subscription, ""), low(p.resource_group or ""), low(i.name))] = i
        self.state_identities = index
        out: dict[ObjKey, IdentitySpec] = {}
        for spec in self.e.identities:
            key = (self.sub_key(spec.subscription, spec.path + ("subscription",)), low(spec.resource_group), low(spec.name))
            if key in out:
                raise self.e.fail(spec.path, f"identity '{spec.name}' in group '{spec.resource_group}' is declared twice")
            out[key] = spec
            existing = index.get(key)
            self.plan.identities[key] = (spec, existing)
            name = self.display(*key[:2], spec.name)
            if existing is None:
                self._keep_ids(spec.principal_id, spec.client_id)
                self.plan.changes.append(Change(CREATE, "identity", name, f"in {spec.location}"))
            elif spec.location_guessed or not spec.located:
                pass  # a guess (msi import az), or no location in the file: where the identity is stays as it is
            elif existing.location_guessed:
                # an entry that gives the region (the identity's own az entry, or any file) settles the
                # guess: moved once if it differs, the mark cleared either way; the region is fixed after
                self.plan.relocate[key] = spec.location
                moved = (f"location {existing.location} -> {spec.location}" if existing.location != spec.location
                         else f"location {spec.location} confirmed")
                self.plan.changes.append(Change(UPDATE, "identity", name, f"{moved} (an import guessed its region from a resource that uses it)"))
            elif existing.location != spec.location:
                raise Conflict(f"{self.e.where(spec.path + ('location',))}: identity '{spec.name}' is in {existing.location}; "
                               "a user-assigned identity cannot move to another region; nothing was changed")
            self._credentials(key, spec, existing, name)
        return out

    def _keep_ids(self, *ids: str | None) -> None:
        """Ids the file asks to keep that another object has, had (a principal deleted, even past its
        soft-delete window) or is still named by (an orphaned role assignment): a new one instead,
        as Azure never gives an object id twice and a new principal never inherits old access."""
        if not any(ids):
            return
        if self._referenced is None:
            self._referenced = {a.principal_id for a in self.state.role_assignments.values()}
        taken = self.state.identities.keys() | self.state.principals.keys() | self.state.deleted_principals.keys()
        for i in ids:
            if i and (i in taken or i in self._referenced):
                self.plan.remapped[i] = "(a new id)"

    def _credentials(self, key: ObjKey, spec: IdentitySpec, existing: Identity | None, name: str) -> None:
        held: dict[str, FederatedCredential] = {}
        if existing is not None:
            held = {low(c.name): c for c in self.state.federated_credentials.values() if c.identity_id == existing.principal_id}
        seen: set[str] = set()
        for cred in spec.credentials:
            if low(cred.name) in seen:
                raise self.e.fail(cred.path, f"federated credential '{cred.name}' is declared twice")
            seen.add(low(cred.name))
            old = held.get(low(cred.name))
            if old is None:
                self.plan.credentials.append((key, cred))
                self.plan.changes.append(Change(CREATE, "federated credential", f"{name}/{cred.name}", f"{cred.issuer} {cred.subject}"))
            elif (old.issuer, old.subject, old.audiences) != (cred.issuer, cred.subject, cred.audiences):
                self.plan.credentials.append((key, cred))
                moved = [f"{what} {was} -> {now}" for what, was, now in (
                    ("issuer", old.issuer, cred.issuer), ("subject", old.subject, cred.subject),
                    ("audiences", ", ".join(old.audiences), ", ".join(cred.audiences))) if was != now]
                self.plan.changes.append(Change(UPDATE, "federated credential", f"{name}/{cred.name}", "; ".join(moved)))
        if existing is not None:
            for k, c in held.items():
                if k not in seen:
                    self._drop(Change(DELETE, "federated credential", f"{name}/{c.name}"),
                               lambda c=c: self.plan.delete_credentials.append((existing, c)))

    def _drop(self, change: Change, do: Any) -> None:
        if self.plan.prune:
            self.plan.changes.append(change)
            do()
        else:
            self.plan.kept += 1

    def _resources(self) -> dict[ResKey, ResourceSpec]:
        index: dict[ResKey, Resource] = {}
        for r in self.state.resources.values():
            index[(self.sub_name_of[r.subscription_id], low(r.resource_group), low(r.rtype.arm_type), low(r.name))] = r
        self.state_resources = index
        out: dict[ResKey, ResourceSpec] = {}
        for spec in self.e.resources:
            rtype = arm.RESOURCE_TYPES[spec.type]
            key = (self.sub_key(spec.subscription, spec.path + ("subscription",)), low(spec.resource_group), low(rtype.arm_type), low(spec.name))
            if key in out:
                raise self.e.fail(spec.path, f"resource '{spec.name}' ({rtype.arm_type}) in group '{spec.resource_group}' is declared twice")
            out[key] = spec
            existing = index.get(key)
            work = ResourceWork(spec, key, existing)
            self.plan.resources[key] = work
            if existing is None:
                self._keep_ids(spec.principal_id, spec.client_id)
                continue
            if existing.type != spec.type:
                raise Conflict(f"{self.e.where(spec.path + ('type',))}: '{spec.name}' exists as a {existing.type}, the file says "
                               f"{spec.type}; nothing was changed", hint="delete it first (or apply with --prune after removing it from the file)")
            if spec.located and existing.location != spec.location:  # left out: it stays where it is
                raise Conflict(f"{self.e.where(spec.path + ('location',))}: '{spec.name}' is in {existing.location}; a resource "
                               "cannot change region; nothing was changed")
        return out

    def _groups(self, idents: dict[ObjKey, IdentitySpec], resources: dict[ResKey, ResourceSpec]) -> None:
        declared: dict[GroupKey, GroupSpec] = {}
        for g in self.e.resource_groups:
            key = (self.sub_key(g.subscription, g.path + ("subscription",)), low(g.name))
            if key in declared:
                raise self.e.fail(g.path, f"resource group '{g.name}' is declared twice")
            declared[key] = g
            # declared with its region: checked (a guess, as export writes one, is neither checked nor settling)
            self.plan.groups[key] = (key[0], g.name, g.location, g.located and not g.location_guessed)
        for ik, ispec in idents.items():
            self.plan.groups.setdefault(ik[:2], (ik[0], ispec.resource_group, ispec.location, False))
        for rk, rspec in resources.items():
            self.plan.groups.setdefault(rk[:2], (rk[0], rspec.resource_group, rspec.location, False))
        existing = {(self.sub_name_of[g.subscription_id], low(g.name)): g for g in self.state.resource_groups.values()}
        self.state_groups = existing
        for key, (_, name, location, was_declared) in self.plan.groups.items():
            old = existing.get(key)
            if old is None:
                self.plan.changes.append(Change(CREATE, "resource group", self.display(key[0], name), f"in {location}"))
                if (not was_declared and self.e.groups_guessed) or (key in declared and declared[key].location_guessed):
                    self.plan.guessed_groups.add(key)
            elif was_declared and old.location_guessed:  # its own entry settles the guess: moved once, or confirmed
                self.plan.relocate_groups[key] = location
                moved = f"location {old.location} -> {location}" if old.location != location else f"location {location} confirmed"
                self.plan.changes.append(Change(UPDATE, "resource group", self.display(key[0], name),
                                                f"{moved} (an import made it where its first member is)"))
            elif was_declared and old.location != location:
                raise Conflict(f"{self.e.where(declared[key].path + ('location',))}: Invalid resource group location '{location}'. "
                               f"The Resource group already exists in location '{old.location}'; nothing was changed")

    def _resource_identities(self, idents: dict[ObjKey, IdentitySpec], resources: dict[ResKey, ResourceSpec]) -> None:
        for key, work in self.plan.resources.items():
            spec = work.spec
            wanted: list[ObjKey] = []
            for n, ref in enumerate(spec.user_assigned):
                k = self._resolve(ref, idents, key[:2], spec.path + ("user_assigned", n), "user-assigned identity")
                if k not in wanted:
                    wanted.append(k)
            name = self.display(*key[:2], spec.name)
            r = work.existing
            if r is None:
                work.enable_system = spec.system_assigned
                work.attach = wanted
                what = [spec.type] + ["system-assigned"] * spec.system_assigned + [f"user-assigned {k[-1]}" for k in wanted]
                self.plan.changes.append(Change(CREATE, "resource", name, ", ".join(what)))
                continue
            if spec.system_assigned and r.system_principal_id is None:
                work.enable_system = True
                self.plan.changes.append(Change(UPDATE, "resource", name, "enable the system-assigned identity"))
            if not spec.system_assigned and r.system_principal_id is not None:
                work.disable_system = True
                self.plan.changes.append(Change(UPDATE, "resource", name, f"disable the system-assigned identity (deletes principal {r.system_principal_id})", True))
            current: dict[ObjKey, str] = {}
            for entry in r.user_assigned:
                p = arm.parts(entry.resource_id)
                k = (self.sub_name_of.get(p.subscription, ""), low(p.resource_group or ""), low(p.name or ""))
                if lookup.live_identity(self.state, entry) is None:
                    work.detach.append(entry.resource_id)  # a deleted identity's entry never gives a token again
                    self.plan.changes.append(Change(UPDATE, "resource", name, f"remove the dangling entry {entry.resource_id}", True))
                else:
                    current[k] = entry.resource_id
            for k in wanted:
                if k not in current:
                    work.attach.append(k)
                    self.plan.changes.append(Change(UPDATE, "resource", name, f"attach {k[-1]}"))
            for k, rid in current.items():
                if k not in wanted:
                    work.detach.append(rid)
                    self.plan.changes.append(Change(UPDATE, "resource", name, f"detach {k[-1]}", True))

    def _scope_key(self, scope: str, path: Path_) -> ScopeKey:
        p = arm.parts(scope)
        sub = self.sub_key(p.subscription_id, path)
        if p.resource_group is None:
            return (sub,)
        if p.name is None:
            return (sub, low(p.resource_group))
        return (sub, low(p.resource_group), low(p.arm_type or ""), low(p.name))

    def _scope_exists(self, key: ScopeKey, idents: dict[ObjKey, IdentitySpec]) -> bool:
        if len(key) < 4:
            return True
        if key[2] == low(arm.IDENTITY_ARM_TYPE):
            ik = (key[0], key[1], key[3])
            return ik in idents or (not self.plan.prune and ik in self.state_identities)
        return key in self.plan.resources or (not self.plan.prune and key in self.state_resources)

    def _assignments(self, idents: dict[ObjKey, IdentitySpec], resources: dict[ResKey, ResourceSpec]) -> None:
        existing = self._state_assignments()
        seen: set[AssignKey] = set()
        system = {k: s for k, s in resources.items() if s.system_assigned}
        shared: dict[tuple[tuple[str, ...], str], int] = {}  # resources of one name in a group: the plan names their type
        for k in system:
            shared[(k[:2], k[-1])] = shared.get((k[:2], k[-1]), 0) + 1
        for spec in self.e.role_assignments:
            try:
                definition = roles.role(spec.role)
            except Exception as exc:
                raise self.e.fail(spec.path + ("role",), getattr(exc, "message", str(exc))) from None
            scope = self._scope_key(spec.scope, spec.path + ("scope",))
            if not self._scope_exists(scope, idents):
                raise self.e.fail(spec.path + ("scope",), f"scope '{spec.scope}' names nothing the file (or the state) holds")
            if spec.identity is not None:
                principal: PrincipalKey = ("identity", self._resolve(spec.identity, idents, None, spec.path + ("identity",), "user-assigned identity"))
            else:
                assert spec.resource is not None
                principal = ("resource", self._resolve(spec.resource, system, None, spec.path + ("resource",), "resource with a system-assigned identity",
                                                       lambda k: system[k].type))
            key: AssignKey = (principal, definition.id, scope)
            if key in seen:
                raise self.e.fail(spec.path, "this role assignment is declared twice")
            seen.add(key)
            if existing.pop(key, None) is None:
                self.plan.assignments.append((spec, key))
                who = self.display(*principal[1][:2], principal[1][-1])
                rkey = cast(ResKey, principal[1])
                if principal[0] == "resource" and shared[(rkey[:2], rkey[-1])] > 1:
                    who = self.display(*rkey[:2], f"{system[rkey].type}:{rkey[-1]}")
                self.plan.changes.append(Change(CREATE, "role assignment", f"{definition.name} for {who}", f"at {spec.scope}"))
        self.leftover_assignments = list(existing.values())

    def _state_assignments(self) -> dict[AssignKey, RoleAssignment]:
        """The state's assignments by principal name, role and scope (orphaned ones are left out:
        no file names them, so --prune deletes them)."""
        owner: dict[str, PrincipalKey] = {}
        for (sub, group, name), i in self.state_identities.items():
            owner[i.principal_id] = ("identity", (sub, group, name))
        for key, r in self.state_resources.items():
            if r.system_principal_id is not None:
                owner[r.system_principal_id] = ("resource", key)
        out: dict[AssignKey, RoleAssignment] = {}
        self.orphaned: list[RoleAssignment] = []
        for a in self.state.role_assignments.values():
            who = owner.get(a.principal_id)
            p = arm.parts(a.scope)
            sub_name = self.sub_name_of.get(p.subscription)
            if who is None or sub_name is None:
                self.orphaned.append(a)
                continue
            scope: ScopeKey = (sub_name,) if p.resource_group is None else (
                (sub_name, low(p.resource_group)) if p.name is None else (sub_name, low(p.resource_group), low(p.arm_type or ""), low(p.name)))
            out[(who, a.role_definition_id, scope)] = a
        return out

    def _prune(self, idents: dict[ObjKey, IdentitySpec], resources: dict[ResKey, ResourceSpec]) -> None:
        names = {rid: rdef.name for rid, rdef in roledefs.ROLES_BY_ID.items()}
        for a in [*self.leftover_assignments, *self.orphaned]:
            self._drop(Change(DELETE, "role assignment", f"{names.get(a.role_definition_id, a.role_definition_id)} for {a.principal_id}",
                              f"at {a.scope}"), lambda a=a: self.plan.delete_assignments.append(a))
        for key, r in self.state_resources.items():
            if key not in resources:
                self._drop(Change(DELETE, "resource", self.display(key[0], r.resource_group, r.name), r.type),
                           lambda r=r: self.plan.delete_resources.append(r))
        for ik, i in self.state_identities.items():
            if ik not in idents:
                self._drop(Change(DELETE, "identity", self.display(ik[0], ik[1], i.name)), lambda i=i: self.plan.delete_identities.append(i))
        for gk, g in self.state_groups.items():
            if gk not in self.plan.groups:
                self._drop(Change(DELETE, "resource group", self.display(gk[0], g.name)), lambda g=g: self.plan.delete_groups.append(g))


def make(estate: Estate, state: State, prune: bool = False) -> Plan:
    return Planner(estate, state, prune).build()

