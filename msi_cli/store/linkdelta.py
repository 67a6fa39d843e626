"""The link checks of a save's changed, added and removed records alone (store/links.py): for
collections read from the cache and never built whole, a change can break only the links of the
records it touched, and a removal only the links to what it removed."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from typing import Any

from msi_cli.core import arm
from msi_cli.core.datatype import fields
from msi_cli.core.model import SYSTEM, USER, Identity, Resource, State
from msi_cli.store.lazycoll import LazyCollection
from msi_cli.store.lazystate import LazyState
from msi_cli.store.validation import InvalidDocument

_SYSTEM_AT = fields(Resource).index("system_principal_id")


def _fresh(identities: Mapping[str, Identity] | None) -> set[str]:
    """The identities added since the collection was read, not counting one deleted and set again
    (it was there before: a resource that did not change may hold it)."""
    if not isinstance(identities, LazyCollection) or identities.built() is None:
        return set()
    return set(identities.added()) - set(identities.removed())


def _position(objects: Mapping[str, Any], key: str) -> int:
    """Where `key` stands among the objects (for an error's path)."""
    if isinstance(objects, LazyCollection):
        return objects.position(key)
    return list(objects).index(key)


class _Some:
    """Checks of the changed (and added) identities and principals alone, for collections read
    from the cache and never built whole (`fits`), and what their removals can break."""

    def __init__(self, state: State, changed: Mapping[str, Collection[str]], removed: Mapping[str, Collection[str]]) -> None:
        self.state = state
        self._changed = changed
        self._removed = removed

    @functools.cached_property
    def fits(self) -> bool:
        return all(self._partial(coll) for coll in ("resources", "identities", "principals"))

    def _partial(self, coll: str) -> bool:
        """Read from the cache, never built whole (a collection nobody used is, without reading it)."""
        if isinstance(self.state, LazyState) and self.state.is_pending(coll):
            return True
        objects = getattr(self.state, coll)
        return isinstance(objects, LazyCollection) and objects.built() is not None

    @functools.cached_property
    def fresh_identities(self) -> set[str]:
        ids = self.state.identities if not (isinstance(self.state, LazyState) and self.state.is_pending("identities")) else None
        return _fresh(ids)

    def changed(self, coll: str) -> list[str]:
        """The keys changed or added (not those removed)."""
        gone = self._removed.get(coll, ())
        return [k for k in self._changed.get(coll, ()) if k not in gone]

    @functools.cached_property
    def removed_user_identities(self) -> set[str]:
        ids = self.state.identities
        kind = fields(Identity).index("kind")
        return {k for k in self._removed.get("identities", ())
                if isinstance(ids, LazyCollection) and (row := ids.previous(k)) is not None and row[kind] == USER}

    def removals(self) -> None:
        """What a removal can break: a removed identity's principal left behind, a removed
        principal's identity, a removed resource's system-assigned identity left without it (a
        removed system-assigned identity still named by a resource is found by the resources'
        check; a removed user-assigned one may stay named: a dangling entry)."""
        state = self.state
        for pid in self._removed.get("identities", ()):
            if pid in state.principals:
                n = _position(state.principals, pid)
                raise InvalidDocument(("principals", n, "id"), f"service principal {pid} has no matching identity")
        for pid in self._removed.get("principals", ()):
            if pid in state.identities:
                n = _position(state.identities, pid)
                raise InvalidDocument(("identities", n, "principal_id"), f"identity {pid} has no service principal")
        gone = self._removed.get("resources", ())
        if gone and isinstance(state.resources, LazyCollection):
            holders = {state.resources[k].system_principal_id for k in self.changed("resources")}
            for key in gone:
                row = state.resources.previous(key)
                held = row[_SYSTEM_AT] if row is not None else None
                if held is not None and held in state.identities and held not in holders:
                    n = _position(state.identities, held)
                    raise InvalidDocument(("identities", n, "principal_id"), f"system-assigned identity {held} belongs to no resource")

    def identities(self) -> None:
        state = self.state
        for key in self.changed("identities"):
            i = state.identities[key]
            n = _position(state.identities, key)
            if i.tenant_id not in state.tenants:
                raise InvalidDocument(("identities", n, "tenant"), f"identity '{i.name}' names an unknown tenant {i.tenant_id}")
            if i.kind == USER:
                group = arm.parse_id(i.resource_id)
                if group is None or arm.resource_group_scope(group.subscription_id, group.resource_group or "").lower() not in state.resource_groups:
                    raise InvalidDocument(("identities", n, "resource_id"), f"identity '{i.name}' is in a resource group that does not exist")
                ids = state.identities
                same = [o for o in (ids.matching("name", i.name.lower()) if isinstance(ids, LazyCollection) else ids.values())
                        if o.kind == USER and o.resource_id.lower() == i.resource_id.lower()]
                if len(same) > 1:
                    raise InvalidDocument(("identities", n, "resource_id"), f"two user-assigned identities share the id {i.resource_id}")

    def system_identities_held(self) -> None:
        """Each changed system-assigned identity has its resource: one added now must be held by
        a resource changed now (the others hold what they held)."""
        state = self.state
        holders = {state.resources[k].system_principal_id for k in self.changed("resources")}
        for key in self.changed("identities"):
            if key in self.fresh_identities and state.identities[key].kind == SYSTEM and key not in holders:
                n = _position(state.identities, key)
                raise InvalidDocument(("identities", n, "principal_id"), f"system-assigned identity {key} belongs to no resource")

    def principals(self) -> None:
        state = self.state
        for key in dict.fromkeys([*self.changed("principals"), *self.changed("identities")]):
            sp = state.principals.get(key)
            if sp is None:
                continue  # an identity without one is refused by its own check
            owner = state.identities.get(sp.id)
            n = _position(state.principals, key)
            if owner is None or owner.client_id != sp.app_id:
                raise InvalidDocument(("principals", n, "id"), f"service principal {sp.id} has no matching identity")
            if sp.tenant_id not in state.tenants:
                raise InvalidDocument(("principals", n, "tenant"), f"service principal {sp.id} names an unknown tenant")
