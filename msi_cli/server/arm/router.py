"""The ARM router: (method, path, query, headers, body, state access, simulated now) -> (status,
headers, JSON body). It authenticates the bearer token, then runs the operation: reads against a
snapshot of the state, changes inside one state transaction (so every rule of msi's core applies,
a refused change saves nothing, and `msi log` records what changed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from msi_cli.core.context import Ctx, KeyRing
from msi_cli.core.model import State
from msi_cli.errors import MsiError
from msi_cli.server.arm import errors, fics, identities, metadata, paths, rbac, resources, subscriptions
from msi_cli.server.arm.auth import Caller, authenticate
from msi_cli.server.arm.call import Call, Reply

READS = ("GET", "HEAD")


class StateAccess(Protocol):
    keys: KeyRing  # verifies token signatures (public_certificate_der)

    def snapshot(self) -> State: ...

    def transaction(self) -> AbstractContextManager[Ctx]: ...

    def now(self) -> int:
        """Whole epoch seconds on the server's clock (the simulated offset is the state's)."""
        ...


@dataclass(slots=True)
class ArmResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def handle(method: str, path: str, query: str, headers: dict[str, str], body: bytes, access: StateAccess,
           base_url: str, now: int | None = None) -> ArmResponse:
    request_id = str(uuid.uuid4())
    try:
        reply = _handle(method.upper(), path, query, headers, body, access, base_url, now)
    except errors.ArmError as exc:
        reply = Reply(exc.status, exc.body(), exc.headers)
    except MsiError as exc:  # a state that cannot be read or saved
        reply = Reply(500, {"error": {"code": "InternalServerError", "message": exc.message}})
    out = ArmResponse(reply.status, [*reply.headers, ("x-ms-request-id", request_id),
                                     ("x-ms-correlation-request-id", request_id)])
    if reply.body is not None and method.upper() != "HEAD":
        out.body = json.dumps(reply.body, separators=(",", ":")).encode("utf-8")
    return out


def _query(raw: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return {k.lower(): v for k, v in parse_qsl(raw, keep_blank_values=True)}


def _handle(method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes, access: StateAccess,
            base_url: str, now: int | None) -> Reply:
    route = paths.parse(path)
    if route is None:
        raise errors.no_route(path)
    query = _query(raw_query)
    if route.kind == "metadata":
        if method != "GET":
            raise errors.method_not_allowed(method)
        return Reply(200, metadata.answer(base_url, query.get("api-version", "")))
    if "api-version" not in query:
        raise errors.missing_api_version()
    handler = _handler(route)
    # Authenticate against the current state before anything else: a request without a valid
    # token never waits for (or holds) the state lock, nor has its body read.
    state = access.snapshot()
    moment = now if now is not None else access.now() + state.clock_offset
    caller = authenticate(state, access.keys, moment, headers.get("authorization"))
    parsed_body = _body(body) if method not in READS and method != "DELETE" else None
    if method in READS:
        return handler(Call(method, route, query, parsed_body, state, moment, base_url, caller))
    with access.transaction() as ctx:  # authorization and the change, on the state as it is under the lock
        logged = len(ctx.events)
        reply = handler(Call(method, route, query, parsed_body, ctx.state, now if now is not None else ctx.now,
                             base_url, caller, ctx=ctx))
        for event in ctx.events[logged:]:  # `msi log` says who made the change, and how
            event.detail = f"{event.detail}; " if event.detail else ""
            event.detail += f"by {caller.principal_id} through Resource Manager"
        return reply


def _body(raw: bytes) -> object:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.invalid_content(str(exc)) from None
    except RecursionError:
        raise errors.invalid_content("the JSON is nested too deeply") from None


def _handler(route: paths.Route) -> Callable[[Call], Reply]:
    kind = route.kind
    simple = {
        "tenants": subscriptions.tenants,
        "subscriptions": subscriptions.subscriptions,
        "subscription": subscriptions.subscription,
        "groups": subscriptions.list_groups,
        "generic-resources": resources.generic_list,
        "group": subscriptions.group,
        "system-identity": identities.system_identity,
        "role-definitions": rbac.role_definitions,
        "role-definition": rbac.role_definition,
        "role-assignments": rbac.role_assignments,
        "role-assignment": rbac.role_assignment,
        "federated-credentials": fics.credentials,
        "federated-credential": fics.credential,
    }
    if kind in simple:
        return _reads_only(simple[kind]) if kind in ("tenants", "subscriptions", "subscription", "groups") else simple[kind]
    probe = Call("GET", route, {}, None, State(0, 0, ""), 0, "", Caller("", "", ""))
    if identities.is_identity_type(probe):
        return identities.list_identities if kind == "resources" else identities.identity
    if resources.known_type(probe):
        return resources.list_resources if kind == "resources" else resources.resource
    raise errors.no_route(route.path)


def _reads_only(fn: Callable[[Call], Reply]) -> Callable[[Call], Reply]:
    def guarded(call: Call) -> Reply:
        if call.method not in READS:
            raise errors.method_not_allowed(call.method)
        return fn(call)

    return guarded
