"""How an estate's names match a state's: tenants and subscriptions by display name (or id), and
references ("name", "group/name", "subscription/group/name") to what the file declares.

`Matcher` is the base of `plan.Planner`: it holds the estate, the state, the plan being built and
the name indexes both sides share.
"""

from __future__ import annotations

from typing import Any

from msi_cli.core import lookup
from msi_cli.core.estate.changes import Plan, low
from msi_cli.core.estate.schema import Estate, Path_
from msi_cli.core.model import State


class Matcher:
    def __init__(self, estate: Estate, state: State, prune: bool) -> None:
        self.e, self.state, self.plan = estate, state, Plan(estate, prune)
        self.tenants_by_name = {low(t.name): t for t in state.tenants.values()}
        self.subs_by_name = {low(s.name): s for s in state.subscriptions.values()}
        self.sub_name_of = {s.id: low(s.name) for s in state.subscriptions.values()}
        self.file_tenants: dict[str, str] = {}  # lower name/id -> name
        self.file_subs: dict[str, str] = {}  # lower name/id -> name
        self.sub_tenant: dict[str, str] = {}  # sub key -> tenant name
        self._by_name: dict[int, dict[str, list[Any]]] = {}  # per reference pool: its keys by name
        self._referenced: set[str] | None = None  # principal ids role assignments name (made when first needed)

    # ---- names ----------------------------------------------------------------------------------------

    def tenant_name(self, ref: str, path: Path_) -> str:
        hit = self.file_tenants.get(low(ref))
        if hit is not None:
            return hit
        try:
            return lookup.tenant(self.state, ref).name
        except Exception as exc:
            raise self.e.fail(path, f"unknown tenant '{ref}' (declare it under [[tenants]])") from exc

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
        raise self.e.fail(path, f"unknown subscription '{ref}' (declare it under [[subscriptions]])")

    def display(self, *parts: str) -> str:
        """A key as people read it: the subscription by its display name."""
        sub = self.file_subs.get(parts[0]) or (self.subs_by_name[parts[0]].name if parts[0] in self.subs_by_name else parts[0])
        return "/".join((sub, *parts[1:]))

    # ---- references -------------------------------------------------------------------------------------

    def _resolve(self, ref: str, pool: dict[Any, Any], near: tuple[str, str] | None, path: Path_, what: str) -> Any:
        """A key of `pool` (keys end with the lower-case name, start with subscription and group)
        from "name", "group/name" or "subscription/group/name"."""
        parts = ref.rsplit("/", 2)
        name = low(parts[-1])
        group = low(parts[-2]) if len(parts) > 1 else None
        sub = self.sub_key(parts[0], path) if len(parts) > 2 else None
        index = self._by_name.get(id(pool))
        if index is None:
            index = {}
            for k in pool:
                index.setdefault(k[-1], []).append(k)
            self._by_name[id(pool)] = index
        found = [k for k in index.get(name, ()) if (group is None or k[1] == group) and (sub is None or k[0] == sub)]
        if len(found) > 1 and near is not None:
            closer = [k for k in found if k[:2] == near]
            found = closer or found
        if not found:
            raise self.e.fail(path, f"{what} '{ref}' is not declared in the file")
        if len(found) > 1:
            options = ", ".join("/".join(k[:2]) + "/" + k[-1] for k in found)
            raise self.e.fail(path, f"{what} '{ref}' matches {len(found)}: {options}; write it as subscription/group/name")
        return found[0]
