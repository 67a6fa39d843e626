"""Finding objects by name or id, with Azure-style not-found and ambiguity errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from msi_cli.core import arm
from msi_cli.core.model import USER, Identity, Resource, ServicePrincipal, State, Subscription, Tenant, UserAssignment
from msi_cli.errors import Ambiguous, InvalidArgument, MsiError, NotFound

T = TypeVar("T")

def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """"did you mean 'x'?" for the candidates closest to `word` (any case), or None. difflib is
    imported here, on the error path only."""
    import difflib

    by_key: dict[str, str] = {}
    for c in candidates:
        by_key.setdefault(c.lower(), c)
    low = word.strip().lower()
    scored = sorted(((difflib.SequenceMatcher(None, low, k).ratio(), k) for k in by_key), reverse=True)
    close = [k for r, k in scored[:3] if r >= 0.6 and r >= scored[0][0] - 0.05]
    if not close:  # a word of a longer value: `vault` for `https://vault.azure.net`, `Defualt` for `Default Directory`
        import re

        words: dict[str, list[str]] = {}
        for key in by_key:
            for part in re.split(r"[\s/.:_-]+", key):
                if len(part) >= 3:
                    words.setdefault(part, []).append(key)
        close = list(dict.fromkeys(k for w in difflib.get_close_matches(low, list(words), n=3, cutoff=0.75) for k in words[w]))[:3]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{by_key[k]}'" for k in close) + "?"


def _not_found(what: str, name: str, candidates: Iterable[str]) -> NotFound:
    return NotFound(f"{what} '{name}' not found", hint=did_you_mean(name, candidates))


def _disambiguate(matches: Sequence[Resource | Identity]) -> str:
    """The option that tells the matches apart: `-g RG` when their groups differ, else
    `--subscription S`, else the full id."""
    where = [arm.parse_id(m.id if isinstance(m, Resource) else m.resource_id) for m in matches]
    groups = sorted({(p.resource_group or "") for p in where if p is not None}, key=str.lower)
    if len(groups) == len(matches) and all(groups):
        return "add " + " or ".join(f"-g {g}" for g in groups) + ", or give the full id"
    subs = sorted({p.subscription_id for p in where if p is not None})
    if len(subs) == len(matches):
        return "add " + " or ".join(f"--subscription {s}" for s in subs) + ", or give the full id"
    return "give the full id instead"


def _one(
    matches: Sequence[T], what: str, name: str, ident: Callable[[T], str],
    candidates: Callable[[], Iterable[str]] = tuple, by_option: bool = True,
) -> T:
    if not matches:
        raise _not_found(what, name, candidates())
    if len(matches) > 1:
        ids = ", ".join(sorted(ident(m) for m in matches))
        plural = what[:-1] + "ies" if what.endswith("y") else what + "s"
        plural = plural.replace("resource or identities", "resources or identities")
        located = [m for m in matches if isinstance(m, (Resource, Identity))]
        hint = _disambiguate(located) if by_option and len(located) == len(matches) else "give the full id instead"
        raise Ambiguous(f"'{name}' matches {len(matches)} {plural}: {ids}", hint=hint)
    return matches[0]


def tenant(state: State, ref: str) -> Tenant:
    if ref in state.tenants:
        return state.tenants[ref]
    low = ref.lower()
    matches = [t for t in state.tenants.values() if t.id == low or t.name.lower() == low]
    return _one(matches, "tenant", ref, lambda t: t.id, lambda: [t.name for t in state.tenants.values()])


def tenant_by_id(state: State, ref: str) -> Tenant | None:
    """The tenant whose id `ref` is (any letter case), as Entra's endpoints name a tenant: by its
    id or a verified domain (msi's tenants have none), never by its display name."""
    return state.tenants.get(ref.lower())


def subscription(state: State, ref: str | None) -> Subscription:
    if ref is None:
        ref = state.default_subscription_id
    if ref in state.subscriptions:
        return state.subscriptions[ref]
    low = ref.lower()
    if low.startswith("/subscriptions/"):
        low = low.removeprefix("/subscriptions/").rstrip("/")
    matches = [s for s in state.subscriptions.values() if s.id == low or s.name.lower() == low]
    return _one(matches, "subscription", ref, lambda s: s.id, lambda: [s.name for s in state.subscriptions.values()])


def tenant_of(state: State, sub_id: str) -> Tenant:
    return state.tenants[state.subscriptions[sub_id].tenant_id]


def user_identities(state: State) -> list[Identity]:
    return [i for i in state.identities.values() if i.kind == USER]


def live_identity(state: State, entry: UserAssignment) -> Identity | None:
    """The identity a resource's entry names, or None when it was deleted (a dangling entry)."""
    identity = state.identities.get(entry.principal_id)
    if identity is None or identity.kind != USER or identity.resource_id.lower() != entry.resource_id.lower():
        return None
    return identity


def resource_identities(state: State, resource: Resource) -> list[Identity]:
    """The identities a resource holds: system-assigned first, then user-assigned in order."""
    found = []
    if resource.system_principal_id is not None:
        found.append(state.identities[resource.system_principal_id])
    for entry in resource.user_assigned:
        identity = live_identity(state, entry)
        if identity is not None:
            found.append(identity)
    return found


def find_user_identity_by_id(state: State, ident: str) -> Identity | None:
    """The user-assigned identity whose resource id is `ident` (any case): among those with its
    name (the id's last segment), so a store that keeps names apart builds only those."""
    low = ident.lower().rstrip("/")
    for i in named(state.identities, low.rsplit("/", 1)[-1]):
        if i.kind == USER and i.resource_id.lower() == low:
            return i
    return None


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def mentioning(objects: Mapping[str, T], value: str) -> Iterable[T]:
    """The objects that may refer to `value` anywhere in their fields (a superset: the caller
    tests each), in order. The store's LazyCollection answers without building the others
    (`mentioning`); any other mapping gives every object."""
    found: Callable[[str], list[T]] | None = getattr(objects, "mentioning", None)
    return found(value) if found is not None else objects.values()


def named(objects: Mapping[str, N], low: str) -> list[N]:
    """The objects whose `name` is `low` in any case. A collection that can find them without
    building the others (the store's LazyCollection, `matching`) is asked to."""
    matching: Callable[[str, str], list[N]] | None = getattr(objects, "matching", None)
    if matching is not None:
        return matching("name", low)
    return [o for o in objects.values() if o.name.lower() == low]


def _resources_named(state: State, name: str, resource_group: str | None, subscription_id: str | None) -> list[Resource]:
    """Resources called `name` (any case), in the group and subscription if given."""
    low, group = name.lower(), resource_group.lower() if resource_group is not None else None
    return [
        r for r in named(state.resources, low)
        if (group is None or r.resource_group.lower() == group)
        and (subscription_id is None or r.subscription_id == subscription_id)
    ]


def _identities_named(state: State, name: str, resource_group: str | None, subscription_id: str | None) -> list[Identity]:
    """User-assigned identities called `name` (any case), in the group and subscription if given."""
    low, group = name.lower(), resource_group.lower() if resource_group is not None else None
    out = []
    for i in named(state.identities, low):
        parsed = arm.parse_id(i.resource_id) if i.kind == USER else None
        if parsed is None:
            continue
        if (group is None or (parsed.resource_group or "").lower() == group) and (
            subscription_id is None or parsed.subscription_id == subscription_id
        ):
            out.append(i)
    return out


def _subscription_id(state: State, ref: str | None) -> str | None:
    return subscription(state, ref).id if ref else None


def _elsewhere(what: str, ref: str, resource_group: str | None, subscription_id: str | None, ids: list[str]) -> None:
    """A name not found within the group or subscription given, that exists outside them: say
    where, instead of suggesting the same name."""
    if not ids or (resource_group is None and subscription_id is None):
        return
    within = " and ".join([*([f"resource group '{resource_group}'"] if resource_group is not None else []),
                           *([f"subscription {subscription_id}"] if subscription_id is not None else [])])
    raise NotFound(f"{what} '{ref}' not found in {within}",
                   hint=f"found outside it: {', '.join(sorted(ids)[:3])}; name that group (-g) and subscription, or give the full id")


def resource(state: State, ref: str, resource_group: str | None = None, subscription: str | None = None) -> Resource:
    """A resource by id, or by name within the group and subscription (name or id) if given."""
    subscription_id = _subscription_id(state, subscription)
    if arm.looks_like_id(ref):
        found = state.resources.get(ref.lower().rstrip("/"))
        if found is None:
            raise NotFound(f"resource '{ref}' not found")
        return found
    matches = _resources_named(state, ref, resource_group, subscription_id)
    if not matches:
        _elsewhere("resource", ref, resource_group, subscription_id, [r.id for r in _resources_named(state, ref, None, None)])
    return _one(matches, "resource", ref, lambda r: r.id, lambda: [r.name for r in state.resources.values()])


def host(state: State, ref: str, resource_group: str | None = None, subscription: str | None = None) -> Resource:
    """A resource whose host hands out tokens (token, check-access, env), as `resource` finds it;
    a user-assigned identity named instead is a wrong use (exit 2), said as such: it is not on a
    host of its own, but attached to resources (or used by a workload)."""
    try:
        return resource(state, ref, resource_group, subscription)
    except NotFound as missing:
        try:
            identity = user_identity(state, ref, resource_group, _subscription_id(state, subscription))
        except MsiError:
            raise missing from None
        raise InvalidArgument(f"'{identity.name}' is a user-assigned identity, not a resource with a token endpoint",
                              hint="name a resource it is attached to, with --client-id to select it; for a workload: "
                                   "msi env --workload, --github or --kubernetes") from None


def user_identity(
    state: State, ref: str, resource_group: str | None = None, subscription_id: str | None = None, by_option: bool = False
) -> Identity:
    """A user-assigned identity by id, or by name within the group and subscription if given.
    `by_option`: the command line has -g/--subscription for this identity (an ambiguous name's
    hint names them); else (`--user-assigned NAME`) the hint is the full id."""
    if arm.looks_like_id(ref):
        found = find_user_identity_by_id(state, ref.rstrip("/"))
        if found is None:
            raise NotFound(f"user-assigned identity '{ref}' not found")
        return found
    matches = _identities_named(state, ref, resource_group, subscription_id)
    if not matches:
        _elsewhere("user-assigned identity", ref, resource_group, subscription_id,
                   [i.resource_id for i in _identities_named(state, ref, None, None)])
    return _one(matches, "user-assigned identity", ref, lambda i: i.resource_id, lambda: [i.name for i in user_identities(state)], by_option)


def principal(state: State, ref: str) -> ServicePrincipal:
    """A service principal by object id or app (client) id."""
    low = ref.lower()
    if low in state.principals:
        return state.principals[low]
    for sp in state.principals.values():
        if sp.app_id == low:
            return sp
    raise NotFound(f"service principal '{ref}' not found")


def target(
    state: State, ref: str, resource_group: str | None = None, subscription: str | None = None, by_option: bool = True
) -> Resource | Identity:
    """A resource or a user-assigned identity, by full id, or by name within the group and
    subscription (name or id) if given. `by_option`: the command has -g/--subscription for it (an
    ambiguous name's hint names them); else the hint is the full id."""
    subscription_id = _subscription_id(state, subscription)
    if arm.looks_like_id(ref):
        key = ref.lower().rstrip("/")
        if key in state.resources:
            return state.resources[key]
        found = find_user_identity_by_id(state, key)
        if found is not None:
            return found
        raise NotFound(f"resource '{ref}' not found")
    matches: list[Resource | Identity] = [
        *_resources_named(state, ref, resource_group, subscription_id),
        *_identities_named(state, ref, resource_group, subscription_id),
    ]
    if not matches:
        _elsewhere("resource or identity", ref, resource_group, subscription_id,
                   [*(r.id for r in _resources_named(state, ref, None, None)), *(i.resource_id for i in _identities_named(state, ref, None, None))])
    what = "resource" if all(isinstance(m, Resource) for m in matches) else "resource or identity"
    names = lambda: [*(r.name for r in state.resources.values()), *(i.name for i in user_identities(state))]  # noqa: E731
    return _one(matches, what, ref, lambda o: o.id if isinstance(o, Resource) else o.resource_id, names, by_option)


SCOPE_FORMS = (
    "a scope is a resource or identity name, a resource group name, or an id: "
    "/subscriptions/ID[/resourceGroups/RG[/providers/NAMESPACE/TYPE/NAME]]"
)


def scope_by_name(state: State, ref: str) -> str:
    """The scope a bare name gives: a resource's or user-assigned identity's id, or a resource
    group's scope, when exactly one object has that name (any case)."""
    low = ref.lower()
    found = [r.id for r in _resources_named(state, ref, None, None)]
    found += [i.resource_id for i in _identities_named(state, ref, None, None)]
    found += [arm.resource_group_scope(g.subscription_id, g.name) for g in state.resource_groups.values() if g.name.lower() == low]
    if not found:
        names = [*(r.name for r in state.resources.values()), *(i.name for i in user_identities(state))]
        names += [g.name for g in state.resource_groups.values()]
        close = did_you_mean(ref, names)
        raise NotFound(f"scope '{ref}' not found", hint=f"{close}; {SCOPE_FORMS}" if close else SCOPE_FORMS)
    if len(found) > 1:
        raise Ambiguous(f"scope '{ref}' matches {len(found)} objects: {', '.join(sorted(found))}", hint="give the full id as --scope")
    return found[0]
