"""The invariants that tie a state's records together: every reference names an object that
exists, nothing is held twice. Checked over the whole state when it is loaded and before every
save."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from msi_cli.core import arm
from msi_cli.core.datatype import fields
from msi_cli.core.model import SYSTEM, USER, Identity, Resource, ServicePrincipal, State, UserAssignment
from msi_cli.store import rows
from msi_cli.store.lazycoll import LazyCollection
from msi_cli.store.lazystate import LazyState
from msi_cli.store.validation import InvalidDocument
from msi_cli.store.linkdelta import _fresh, _position, _Some

_ENTRY_PRINCIPAL = fields(UserAssignment).index("principal_id")
_SYSTEM_AT = fields(Resource).index("system_principal_id")


def _columns(objects: Mapping[str, Any], cls: type, *names: str) -> list[tuple[Any, ...]]:
    """(key, the named fields in row form) for every object: from a LazyCollection without
    building its objects (a check of one changed record reads the others' rows only)."""
    if isinstance(objects, LazyCollection):
        return objects.columns(*names)
    row = rows.row_of(cls)
    at = [fields(cls).index(n) for n in names]
    return [(key, *[r[i] for i in at]) for key, r in ((k, row(o)) for k, o in objects.items())]


def check_links(state: State, changed: Mapping[str, Collection[str]] | None = None,
                removed: Mapping[str, Collection[str]] | None = None) -> None:
    """The invariants that tie records together, over the whole state. With `changed` (the keys
    of the records changed, added or removed, per collection; `removed`, those removed), only
    those that involve a changed collection: the others held in the state as it was loaded."""

    def due(*colls: str) -> bool:
        return changed is None or any(c in changed for c in colls)

    # Collections read from the cache and never built whole had records changed, added or
    # removed: a check of those records alone then covers what a change can break.
    some = _Some(state, changed, removed or {}) if changed is not None else None

    if due("subscriptions", "tenants"):
        _subscriptions(state)
    if state.default_subscription_id not in state.subscriptions:
        raise InvalidDocument(("default_subscription",), "'default_subscription' names an unknown subscription")
    if due("resource_groups", "subscriptions"):
        _resource_groups(state)
    if due("identities", "tenants", "resource_groups"):
        if some is not None and some.fits and not due("tenants", "resource_groups"):
            some.identities()
        else:
            _identities(state)
    stable = False  # the changed resources hold the system-assigned identities they held
    if due("resources", "subscriptions", "resource_groups", "identities"):
        only: set[str] | None = None
        if changed is not None and not due("subscriptions", "resource_groups"):
            # an unchanged resource that names no changed identity still holds: it is not checked again
            only = set(some.changed("resources") if some is not None else changed.get("resources", ()))
            touched = set(changed.get("identities", ())) - (some.fresh_identities if some is not None else set())
            if some is not None:  # a removed user-assigned identity may be named by resources: dangling, allowed
                touched -= some.removed_user_identities
            if touched:  # (an identity added now is named by no resource that did not change)
                only.update(_naming(state.resources, touched))
        stable = changed is not None and only is not None and _holders_unchanged(state, only)
        _resources(state, only, stable)
    if some is not None and some.fits and stable and due("identities", "resources"):
        some.system_identities_held()
    elif due("identities", "resources") and not (changed is not None and "identities" not in changed and stable):
        system_owner = {pid for _, pid in _columns(state.resources, Resource, "system_principal_id") if pid is not None}
        for n, (pid, kind) in enumerate(_columns(state.identities, Identity, "kind")):
            if kind == SYSTEM and pid not in system_owner:
                raise InvalidDocument(("identities", n, "principal_id"), f"system-assigned identity {pid} belongs to no resource")
    if due("identities", "principals"):
        keys = some.changed("identities") if some is not None and some.fits else [k for k, _ in _columns(state.identities, Identity, "kind")]
        for pid in keys:
            if pid not in state.principals:
                n = _position(state.identities, pid)
                raise InvalidDocument(("identities", n, "principal_id"), f"identity {pid} has no service principal")
    if due("principals", "identities", "tenants"):
        if some is not None and some.fits and not due("tenants"):
            some.principals()
        else:
            _principals(state)
    if some is not None:  # whether or not the other checks could look at the changed records alone
        some.removals()
    if due("deleted_principals", "principals", "identities", "tenants"):
        _deleted_principals(state)
    if due("federated_credentials", "identities"):
        _check_federation(state)


def _subscriptions(state: State) -> None:
    for n, s in enumerate(state.subscriptions.values()):
        if s.tenant_id not in state.tenants:
            raise InvalidDocument(("subscriptions", n, "tenant"), f"subscription '{s.name}' names an unknown tenant {s.tenant_id}")


def _resource_groups(state: State) -> None:
    for n, (key, g) in enumerate(state.resource_groups.items()):
        if key != g.id.lower():
            raise InvalidDocument(("resource_groups", n, "name"), f"resource group '{g.name}' is filed under another id")
        if g.subscription_id not in state.subscriptions:
            raise InvalidDocument(("resource_groups", n, "subscription"), f"resource group '{g.name}' names an unknown subscription")


def _identities(state: State) -> None:
    user_ids: set[str] = set()
    for n, (_, tenant_id, kind, resource_id, name) in enumerate(_columns(state.identities, Identity, "tenant_id", "kind", "resource_id", "name")):
        if tenant_id not in state.tenants:
            raise InvalidDocument(("identities", n, "tenant"), f"identity '{name}' names an unknown tenant {tenant_id}")
        if kind == USER:
            group = arm.parse_id(resource_id)
            if group is None or arm.resource_group_scope(group.subscription_id, group.resource_group or "").lower() not in state.resource_groups:
                raise InvalidDocument(("identities", n, "resource_id"), f"identity '{name}' is in a resource group that does not exist")
            if resource_id.lower() in user_ids:
                raise InvalidDocument(("identities", n, "resource_id"), f"two user-assigned identities share the id {resource_id}")
            user_ids.add(resource_id.lower())


def _naming(resources: Mapping[str, Resource], pids: set[str]) -> list[str]:
    """The keys of the resources that name any of `pids` (system- or user-assigned): for a few,
    from the chunks of rows that hold their bytes (LazyCollection.mentioning_items), else over
    every resource's rows."""
    if isinstance(resources, LazyCollection) and len(pids) <= 8:
        return [key for pid in pids for key, r in resources.mentioning_items(pid)
                if r.system_principal_id == pid or any(u.principal_id == pid for u in r.user_assigned)]
    return [key for key, pid, entries in _columns(resources, Resource, "system_principal_id", "user_assigned")
            if pid in pids or any(e[_ENTRY_PRINCIPAL] in pids for e in entries)]


def _holders_unchanged(state: State, keys: Collection[str]) -> bool:
    """Whether the resources `keys` (read from the cache, present: a removed one's identity is
    checked by _Some.removals) still
    hold the system-assigned identities they held when loaded, or, added now, one added now (each
    its own). Then no resource can now share one, and no identity lost its resource: the other
    records need no scan."""
    resources = state.resources
    if not isinstance(resources, LazyCollection) or resources.built() is None:
        return False
    unread = isinstance(state, LazyState) and state.is_pending("identities")  # then none was added
    identities = None if unread else state.identities
    fresh = _fresh(identities)
    fresh_held: set[str] = set()
    for key in keys:
        old = resources.previous(key)
        held = resources[key].system_principal_id
        if old is not None:
            if old[_SYSTEM_AT] != held:
                return False
        elif held is not None:
            if held not in fresh or held in fresh_held:
                return False
            fresh_held.add(held)
    return True


def _resources(state: State, only: set[str] | None, stable: bool = False) -> None:
    """Each resource's links (with `only`, the changed ones'); no two resources hold one
    system-assigned identity (unless `stable`: see _holders_unchanged)."""
    system_owner: dict[str, str] = {}
    if stable and only is not None and isinstance(state.resources, LazyCollection):
        at = state.resources.position
        entries = sorted((at(key), key, None) for key in only)
    else:
        entries = [(n, key, held) for n, (key, held) in enumerate(_columns(state.resources, Resource, "system_principal_id"))]
    for n, key, held in entries:
        if only is not None and key not in only:  # unchanged: only what a changed one may clash with
            if held is not None:
                if held in system_owner:
                    raise InvalidDocument(("resources", n, "system_principal_id"), f"system-assigned identity {held} is held by two resources")
                system_owner[held] = key
            continue
        res = state.resources[key]
        if key != res.id.lower():
            raise InvalidDocument(("resources", n, "name"), f"resource '{res.name}' is filed under another id")
        if res.subscription_id not in state.subscriptions:
            raise InvalidDocument(("resources", n, "subscription"), f"resource '{res.name}' names an unknown subscription")
        if arm.resource_group_scope(res.subscription_id, res.resource_group).lower() not in state.resource_groups:
            raise InvalidDocument(("resources", n, "resource_group"), f"resource '{res.name}' is in a resource group that does not exist")
        pid = res.system_principal_id
        if pid is not None:
            owner = state.identities.get(pid)
            if owner is None or owner.kind != SYSTEM:
                raise InvalidDocument(("resources", n, "system_principal_id"), f"resource '{res.name}' names a missing system-assigned identity {pid}")
            if pid in system_owner:
                raise InvalidDocument(("resources", n, "system_principal_id"), f"system-assigned identity {pid} is held by two resources")
            system_owner[pid] = res.name
        seen: set[str] = set()
        for entry in res.user_assigned:
            low = entry.resource_id.lower()
            parsed = arm.parse_id(entry.resource_id)
            if parsed is None or (parsed.arm_type or "").lower() != arm.IDENTITY_ARM_TYPE.lower() or low in seen:
                raise InvalidDocument(("resources", n, "user_identities"), f"resource '{res.name}' holds an invalid or repeated user-assigned identity id {entry.resource_id}")
            seen.add(low)
            # a live principal must be the identity the entry names; any other is a deleted one's (dangling)
            live = state.identities.get(entry.principal_id)
            if live is not None and (live.kind != USER or live.resource_id.lower() != low or live.client_id != entry.client_id):
                raise InvalidDocument(("resources", n, "user_identities"), f"resource '{res.name}' records principal {entry.principal_id} for {entry.resource_id}, which is another identity")


def _principals(state: State) -> None:
    clients = dict(_columns(state.identities, Identity, "client_id"))
    for n, (_, sp_id, app_id, tenant_id) in enumerate(_columns(state.principals, ServicePrincipal, "id", "app_id", "tenant_id")):
        if clients.get(sp_id, None) != app_id or sp_id not in clients:
            raise InvalidDocument(("principals", n, "id"), f"service principal {sp_id} has no matching identity")
        if tenant_id not in state.tenants:
            raise InvalidDocument(("principals", n, "tenant"), f"service principal {sp_id} names an unknown tenant")


def _deleted_principals(state: State) -> None:
    for n, d in enumerate(state.deleted_principals.values()):
        if d.id in state.principals or d.id in state.identities:
            raise InvalidDocument(("deleted_principals", n, "id"), f"principal {d.id} is both live and deleted")
        if d.tenant_id not in state.tenants:
            raise InvalidDocument(("deleted_principals", n, "tenant"), f"deleted principal {d.id} names an unknown tenant")


def _check_federation(state: State) -> None:
    counts: dict[str, int] = {}
    pairs: set[tuple[str, str, str]] = set()
    for n, c in enumerate(state.federated_credentials.values()):
        identity = state.identities.get(c.identity_id)
        if identity is None or identity.kind != USER:
            raise InvalidDocument(("federated_credentials", n, "identity"),
                                  f"federated identity credential '{c.name}' names no user-assigned identity ({c.identity_id})")
        counts[c.identity_id] = counts.get(c.identity_id, 0) + 1
        if counts[c.identity_id] > 20:
            raise InvalidDocument(("federated_credentials", n, "identity"), f"identity '{identity.name}' has more than 20 federated identity credentials")
        if (c.identity_id, c.issuer, c.subject) in pairs:
            raise InvalidDocument(("federated_credentials", n, "subject"), f"identity '{identity.name}' has two federated identity credentials with issuer '{c.issuer}' and subject '{c.subject}'")
        pairs.add((c.identity_id, c.issuer, c.subject))
