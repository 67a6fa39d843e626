"""Shell completion of dynamic values: names from the current state, roles, resource types.

Each `complete_*` function takes (ctx, args, incomplete), as Typer's `autocompletion=` expects, and
returns the values that start with `incomplete` (case included, as Typer filters them), some as
`(value, help)` pairs. They run while a shell completes a command line, so they never fail
loudly: on any error they return nothing, and they never create or change the state file.

Command modules should not import this module (it would cost start-up time on every run): use the
lazy proxies of the same names in `msi_cli.cli.options`, which import it only while completing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from msi_cli.core import arm

if TYPE_CHECKING:
    from msi_cli.core.model import Identity, State

Completion = str | tuple[str, str]


def _state(ctx: Any) -> State | None:
    """The state the command line being completed refers to, or None (no file, unreadable...).

    `--state PATH` may already be on the line; while completing, Typer parses it but does not run
    the root callback, so it is read from the root context here."""
    from msi_cli.cli.statepath import state_file

    try:
        sf = state_file(ctx)
        if not sf.path.is_file():
            return None  # reading would create a fresh state, with new keys: not while completing
        return sf.read()
    except BaseException:
        return None


def _param(ctx: Any, name: str) -> Any:
    try:
        return ctx.params.get(name)
    except Exception:
        return None


def _matching(values: Iterable[Completion], incomplete: str) -> list[Completion]:
    """Unique values in order, those starting with `incomplete`."""
    prefix = incomplete or ""
    seen: set[str] = set()
    out: list[Completion] = []
    for item in values:
        value = item[0] if isinstance(item, tuple) else item
        if value in seen or not value.startswith(prefix):
            continue
        seen.add(value)
        out.append(item)
    return out


def _safely(produce: Callable[[], Iterable[Completion]], incomplete: str) -> list[Completion]:
    try:
        return _matching(produce(), incomplete)
    except BaseException:
        return []


def _subscription_filter(state: State, ctx: Any) -> str | None:
    ref = _param(ctx, "subscription") or os.environ.get("MSI_SUBSCRIPTION")
    if not ref:
        return None
    low = ref.lower()
    for sub in state.subscriptions.values():
        if sub.id == low or sub.name.lower() == low:
            return sub.id
    return None


def _resources(state: State, ctx: Any, incomplete: str) -> list[Completion]:
    group = (_param(ctx, "resource_group") or "").lower()
    sub_id = _subscription_filter(state, ctx)
    out: list[Completion] = []
    for res in state.resources.values():
        if group and res.resource_group.lower() != group:
            continue
        if sub_id and res.subscription_id != sub_id:
            continue
        out.append(res.id if incomplete.startswith("/") else res.name)
    return out


def _user_identities(state: State) -> list[Identity]:
    from msi_cli.core.model import USER

    return [i for i in state.identities.values() if i.kind == USER]


def _identities(state: State, ctx: Any, incomplete: str) -> list[Completion]:
    group = (_param(ctx, "resource_group") or "").lower()
    sub_id = _subscription_filter(state, ctx)
    out: list[Completion] = []
    for ident in _user_identities(state):
        where = arm.parts(ident.resource_id)
        if group and (where.resource_group or "").lower() != group:
            continue
        if sub_id and where.subscription != sub_id.lower():
            continue
        out.append(ident.resource_id if incomplete.startswith("/") else ident.name)
    return out


def complete_resources(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Resource names (full ids once the word starts with '/'), narrowed by -g/--subscription."""
    state = _state(ctx)
    if state is None:
        return []
    return _safely(lambda: _resources(state, ctx, incomplete), incomplete)


def complete_identities(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """User-assigned identity names (full ids once the word starts with '/')."""
    state = _state(ctx)
    if state is None:
        return []
    return _safely(lambda: _identities(state, ctx, incomplete), incomplete)


def complete_targets(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Resources and user-assigned identities: what `show` and `delete` take."""
    state = _state(ctx)
    if state is None:
        return []
    return _safely(lambda: _resources(state, ctx, incomplete) + _identities(state, ctx, incomplete), incomplete)


def complete_tenants(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Tenant display names, with the tenant id as help."""
    state = _state(ctx)
    if state is None:
        return []
    return _safely(lambda: [(t.name, t.id) for t in state.tenants.values()], incomplete)


def complete_subscriptions(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Subscription names, with the subscription id as help."""
    state = _state(ctx)
    if state is None:
        return []
    return _safely(lambda: [(s.name, s.id) for s in state.subscriptions.values()], incomplete)


def complete_groups(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Resource groups in use by resources and user-assigned identities."""
    state = _state(ctx)
    if state is None:
        return []

    def groups() -> list[str]:
        names: list[str | None] = [r.resource_group for r in state.resources.values()]
        names += [arm.parts(i.resource_id).resource_group for i in _user_identities(state)]
        return sorted({n for n in names if n}, key=str.lower)

    return _safely(groups, incomplete)


def complete_scopes(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Role-assignment scopes: subscriptions, resource groups, resources and identities, as ids."""
    state = _state(ctx)
    if state is None:
        return []

    def scopes() -> list[str]:
        out = [f"/subscriptions/{s.id}" for s in state.subscriptions.values()]
        groups: set[tuple[str | None, str | None]] = {(r.subscription_id, r.resource_group) for r in state.resources.values()}
        groups |= {(p.subscription, p.resource_group) for p in (arm.parts(i.resource_id) for i in _user_identities(state))}
        out += sorted(f"/subscriptions/{sub}/resourceGroups/{rg}" for sub, rg in groups if sub and rg)
        out += [r.id for r in state.resources.values()]
        out += [i.resource_id for i in _user_identities(state)]
        return out

    return _safely(scopes, incomplete)


def complete_roles(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """Built-in role names, with the role definition id as help."""

    def roles() -> list[Completion]:
        from msi_cli.core.roledefs import BUILT_IN_ROLES

        return [(r.name, r.id) for r in BUILT_IN_ROLES]

    return _safely(roles, incomplete)


def complete_types(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """`--type` values, with what Azure calls each as help."""

    def types() -> list[Completion]:
        from msi_cli.core.arm import RESOURCE_TYPES

        return [(key, t.label) for key, t in RESOURCE_TYPES.items()]

    return _safely(types, incomplete)


def complete_audiences(ctx: Any, args: list[str], incomplete: str) -> list[Completion]:
    """`--audience` values: the resource URIs the simulated tenants know."""

    def audiences() -> list[Completion]:
        from msi_cli.core.audiences import KNOWN_AUDIENCES

        return list(KNOWN_AUDIENCES)

    return _safely(audiences, incomplete)


__all__ = [
    "complete_audiences",
    "complete_groups",
    "complete_identities",
    "complete_resources",
    "complete_roles",
    "complete_scopes",
    "complete_subscriptions",
    "complete_targets",
    "complete_tenants",
    "complete_types",
]
