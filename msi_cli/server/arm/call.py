"""One ARM request as the handlers see it: the route, the parsed query and body, the caller, the
state (and, for a change, the transaction's context), and the checks every handler shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msi_cli.core import authz, lookup
from msi_cli.core.context import Ctx
from msi_cli.core.model import State, Subscription, Tenant
from msi_cli.server.arm import errors
from msi_cli.server.arm.auth import Caller
from msi_cli.server.arm.paths import Route


@dataclass(slots=True)
class Reply:
    status: int
    body: object = None  # JSON-able; None for no body
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Call:
    method: str
    route: Route
    query: dict[str, str]  # lower-case names
    body: object
    state: State
    now: int
    base_url: str
    caller: Caller  # every handler runs after authentication
    ctx: Ctx | None = None

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    def require(self, action: str, scope: str | None = None) -> None:
        """403 AuthorizationFailed unless the caller may perform `action` at `scope` (default:
        the request's own path, which is what ARM names in the message)."""
        where = self.route.path if scope is None else scope
        if not authz.permitted(self.state, self.caller.principal_id, action, where):
            raise errors.authorization_failed(self.caller.app_id, self.caller.principal_id, action, where)

    def subscription(self) -> Subscription:
        """The route's subscription: it must exist and belong to the token's tenant."""
        ref = self.route.subscription or ""
        sub = self.state.subscriptions.get(ref.lower())
        if sub is None:
            raise errors.subscription_not_found(ref)
        if sub.tenant_id != self.caller.tenant_id:
            raise errors.wrong_tenant(self.caller.tenant_id, sub.tenant_id)
        return sub

    def resource_names(self) -> tuple[str, str]:
        """The resource group and name of a route to one resource: its path names both."""
        group, name = self.route.group, self.route.name
        assert group is not None and name is not None, f"a {self.route.kind} route names no resource"
        return group, name

    def tenant_of(self, sub: Subscription) -> Tenant:
        return lookup.tenant_of(self.state, sub.id)

    def json_body(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise errors.invalid_content("the request body must be a JSON object")
        return self.body

    def changing(self) -> Ctx:
        assert self.ctx is not None, "a change outside a transaction"
        return self.ctx
