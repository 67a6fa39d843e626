"""The simulated platform's token service, shared by `msi token`, `msi check-access` and the local
endpoint: select the identity, answer from the platform cache, or mint under the state lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from msi_cli.core import lookup, tokens
from msi_cli.core.timefmt import real_now
from msi_cli.core.model import Resource, State
from msi_cli.store.statefile import StateFile
from msi_cli.store.tokencache import TokenCache


class Cache(Protocol):
    """What `cached` reads: a TokenCache, or the server's in-memory Snapshot of it."""

    def get(self, key: str) -> dict[str, str] | None: ...


def cached(resource: Resource, audience: str, selector: tokens.Selector, state: State, cache: Cache,
           clock: Callable[[], int] = real_now) -> dict[str, Any] | None:
    """The platform cache's answer without the lock (None: a token must be minted). Selection
    errors are raised here. `cache` is a TokenCache or anything with its `get`; `clock` gives
    real (unsimulated) epoch seconds, the server's injected clock or the machine's."""
    now = clock() + state.clock_offset
    identity = tokens.select(state, resource, selector)
    entry = cache.get(tokens.cache_key(state, resource, identity, audience))
    return tokens.from_cache(entry, now) if entry else None


def acquire(sf: StateFile, resource: Resource, audience: str, selector: tokens.Selector, state: State,
            clock: Callable[[], int] = real_now) -> dict[str, Any]:
    """A token response for `resource` as its host's endpoint would hand it out."""
    hit = cached(resource, audience, selector, state, TokenCache(sf.tokens_path), clock)
    if hit is not None:
        return hit
    with sf.transaction(clock) as ctx:
        current = lookup.resource(ctx.state, resource.id)
        identity = tokens.select(ctx.state, current, selector)
        key = tokens.cache_key(ctx.state, current, identity, audience)
        cache = TokenCache(sf.tokens_path, under_lock=True)  # another process may have minted while we waited
        entry = cache.get(key)
        hit = tokens.from_cache(entry, ctx.now) if entry else None
        if hit is not None:
            return hit
        response = tokens.mint(ctx, current, identity, audience)
        cache.put(key, response, ctx.now)
    return response
