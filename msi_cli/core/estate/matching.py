"""How an estate's names match a state's: tenants and subscriptions by display name (or id), and
references ("name", "group/name", "subscription/group/name", a resource's name optionally
qualified by its type: "vm:name") to what the file declares.

`Matcher` is the base of `plan.Planner`: it holds the estate, the state, the plan being built and
the name indexes both sides share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from msi_cli.core import arm, lookup
from msi_cli.core.estate.changes import Plan, low
from msi_cli.core.estate.schema import Estate, Path_
from msi_cli.core.model import State
from msi_cli.errors import Conflict


class Matcher:
    def __init__(self, estate: Estate, state: State, prune: bool) -> None:
        self.e, self.state, self.plan = estate, state, Plan(estate, prune)
        self.tenants_by_name = {low(t.name): t for t in state.tenants.values()}
        self.subs_by_name = {low(s.name): s for s in state.subscriptions.values()}
        self.sub_name_of = {s.id: low(s.name) for s in state.subscriptions.values()}
        self.file_tenants: dict[str, str] = {}  # lower name/id -> name
        self.file_subs: dict[str, str] = {}  # lower name/id -> name
        self.sub_tenant: dict[str, str] = {}  # sub key -> tenant name
        self.tenant_ids: dict[str, str | None] = {}  # lower name of a file's tenant -> the state's tenant it is (None: a new one)
        self._by_name: dict[int, dict[str, list[Any]]] = {}  # per reference pool: its keys by name
        self._referenced: set[str] | None = None  # principal ids role assignments name (made when first needed)

    # ---- tenants and subscriptions ---------------------------------------------------------------------

    def match(self, specs: Sequence[Any], objects: Mapping[str, Any], kind: str) -> list[Any]:
        """The state's tenant or subscription each spec is (None: a new one): the one with the
        spec's id when the state holds it (a display name can change, the id cannot), else the one
        with its display name that no other spec names by id. Refused when the names the objects
        would have are not unique (msi keeps display names unique: files and commands name them)."""
        by_id = [objects.get(s.id) if s.id else None for s in specs]
        claimed = {o.id for o in by_id if o is not None}
        free = {low(o.name): o for o in objects.values() if o.id not in claimed}
        out = [hit if hit is not None else free.pop(low(spec.name), None) for spec, hit in zip(specs, by_id)]
        final = {low(o.name): o for o in objects.values() if o.id not in claimed}
        for spec, hit in zip(specs, out):
            if hit is None or hit.id not in claimed:
                continue
            other = final.get(low(spec.name))
            if other is not None and other.id != hit.id:
                raise Conflict(f"{self.e.where(spec.path)}: {kind} {hit.id} ('{hit.name}') cannot be named '{spec.name}': "
                               f"{kind} {other.id} has that name; nothing was changed",
                               hint=f"give {kind} {other.id} another name in the file, or this one")
        return out

    # ---- names ----------------------------------------------------------------------------------------

    def tenant_name(self, ref: str, path: Path_) -> str:
        hit = self.file_tenants.get(low(ref))
        if hit is not None:
            return hit
        try:
            held = lookup.tenant(self.state, ref)
        except Exception as exc:
            raise self.e.fail(path, f"unknown tenant '{ref}' (declare it under [[tenants]])") from exc
        renamed = self.plan.rename_tenants.get(held.id)
        if renamed is not None:  # its old name names nothing once the file is applied (and applying it again would fail)
            raise self.e.fail(path, f"tenant '{ref}' is renamed '{renamed}' by this file (id {held.id}): name it '{renamed}' or by its id")
        return held.name

    def sub_key(self, ref: str | None, path: Path_) -> str:
        if ref is None:
            return self.sub_name_of[self.state.default_subscription_id]
        hit = self.file_subs.get(low(ref))
        if hit is not None:
            return low(hit)
        ref_id = low(ref).removeprefix("/subscriptions/").rstrip("/")
        if ref_id in self.state.subscriptions:
            return self.sub_name_of[ref_id]
        if low(ref) in self.subs_by_name:
            return low(ref)
        for sub_id, renamed in self.plan.rename_subscriptions.items():
            if low(self.state.subscriptions[sub_id].name) == low(ref):
                raise self.e.fail(path, f"subscription '{ref}' is renamed '{renamed}' by this file (id {sub_id}): "
                                        f"name it '{renamed}' or by its id")
        raise self.e.fail(path, f"unknown subscription '{ref}' (declare it under [[subscriptions]])")

    def display(self, *parts: str) -> str:
        """A key as people read it: the subscription by its display name."""
        sub = self.file_subs.get(parts[0]) or (self.subs_by_name[parts[0]].name if parts[0] in self.subs_by_name else parts[0])
        return "/".join((sub, *parts[1:]))

    # ---- references -------------------------------------------------------------------------------------

    def _resolve(self, ref: str, pool: dict[Any, Any], near: tuple[str, str] | None, path: Path_, what: str,
                 type_of: Callable[[Any], str] | None = None) -> Any:
        """A key of `pool` (keys end with the lower-case name, start with subscription and group)
        from "name", "group/name" or "subscription/group/name". In a pool of resources (`type_of`
        gives each key's type) the name may carry its type, "vm:name", to tell apart resources of
        one name (Azure lets a VM and a web app share a name in a group)."""
        parts = ref.rsplit("/", 2)
        kind, _, name = parts[-1].rpartition(":")
        name = low(name)
        if kind and type_of is None:
            raise self.e.fail(path, f"{what} '{ref}': a type qualifier ('{kind}:') names a resource; write the identity as "
                                    "name, group/name or subscription/group/name")
        if kind and (low(kind) not in arm.RESOURCE_TYPES or "/" in kind):
            raise self.e.fail(path, f"{what} '{ref}': unknown resource type '{kind}' (use one of: {', '.join(arm.RESOURCE_TYPES)})")
        group = low(parts[-2]) if len(parts) > 1 else None
        sub = self.sub_key(parts[0], path) if len(parts) > 2 else None
        index = self._by_name.get(id(pool))
        if index is None:
            index = {}
            for k in pool:
                index.setdefault(k[-1], []).append(k)
            self._by_name[id(pool)] = index
        found = [k for k in index.get(name, ()) if (group is None or k[1] == group) and (sub is None or k[0] == sub)
                 and (not kind or type_of is None or low(type_of(k)) == low(kind))]
        if len(found) > 1 and near is not None:
            closer = [k for k in found if k[:2] == near]
            found = closer or found
        if not found:
            raise self.e.fail(path, f"{what} '{ref}' is not declared in the file")
        if len(found) > 1:
            if type_of is not None:
                options = ", ".join(sorted(f"{self.display(*k[:2])}/{type_of(k)}:{k[-1]}" for k in found))
                raise self.e.fail(path, f"{what} '{ref}' matches {len(found)}: {options}; write one of these")
            options = ", ".join("/".join(k[:2]) + "/" + k[-1] for k in found)
            raise self.e.fail(path, f"{what} '{ref}' matches {len(found)}: {options}; write it as subscription/group/name")
        return found[0]
