"""Azure RBAC's control-plane check: may a principal perform an action at a scope?

A principal may when one of its role assignments at the scope or above it holds a role whose
Actions match the action and whose NotActions do not (each role's Actions minus its NotActions,
united over the roles held). Matching ignores case; `*` matches any run of characters, and a
`/*/` segment also matches a single `/`, so that Managed Identity Operator's
`userAssignedIdentities/*/assign/action` grants `userAssignedIdentities/assign/action`, as it
does in Azure.
"""

from __future__ import annotations

import functools
import re

from msi_cli.core import arm, roledefs, roles
from msi_cli.core.model import RoleAssignment, State


@functools.lru_cache(maxsize=256)
def _pattern(action: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in action.lower().split("*")]
    body = ".*".join(parts).replace("/.*/", "/(?:.*/)?")
    return re.compile(body)


def matches(pattern: str, action: str) -> bool:
    return _pattern(pattern).fullmatch(action.lower()) is not None


def role_allows(definition: roledefs.RoleDefinition, action: str) -> bool:
    return any(matches(a, action) for a in definition.actions) and not any(matches(n, action) for n in definition.not_actions)


def granting(state: State, principal_id: str, action: str, scope: str) -> RoleAssignment | None:
    """The first assignment that lets the principal perform `action` at `scope`, or None."""
    for a in roles.assignments_for(state, principal_id, scope):
        definition = roledefs.ROLES_BY_ID.get(a.role_definition_id)
        if definition is not None and role_allows(definition, action):
            return a
    return None


def permitted(state: State, principal_id: str, action: str, scope: str) -> bool:
    return granting(state, principal_id, action, scope) is not None


def visible_subscriptions(state: State, principal_id: str) -> list[str]:
    """Subscriptions where the principal holds any role assignment (at the subscription or within
    it): what `GET /subscriptions` lists for it."""
    seen: list[str] = []
    for a in state.role_assignments.values():
        if a.principal_id != principal_id:
            continue
        sub = arm.parts(a.scope).subscription
        if sub in state.subscriptions and sub not in seen:
            seen.append(sub)
    return [s for s in state.subscriptions if s in seen]
