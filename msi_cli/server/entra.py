"""Workload identity federation over HTTP: Entra's token endpoint for federated credentials, the
external issuers msi plays, GitHub Actions' token request endpoint and projected token files.

    POST {base}/{tenant}/oauth2/v2.0/token                    Entra's v2 token endpoint (form body)
    POST {base}/{tenant}/oauth2/token                         the v1 endpoint (`resource` for `scope`; string values)
    GET  {base}/issuers/{name}/.well-known/openid-configuration an issuer's discovery document
    GET  {base}/issuers/{name}/jwks                           its keys
    GET  {base}/github/token?run={id}&audience=A              ACTIONS_ID_TOKEN_REQUEST_URL

The rules live in msi_cli.core.exchange and msi_cli.core.issuers; this module parses, picks the
state and the simulated time, and renders.

The seam with HTTPS serving: `issuer_base(app)` is the one place that says at which address
issuers are published (the HTTPS address once the server has one, else its base URL).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from msi_cli.errors import MsiError
from msi_cli.server.messages import Request, Response, json_response, parse_query

if TYPE_CHECKING:
    from msi_cli.core.context import Event
    from msi_cli.core.model import State
    from msi_cli.server.app import Application
    from msi_cli.store.statefile import StateFile

TOKEN = "token"
TOKEN_V1 = "token-v1"
ISSUER_CONFIG = "issuer-config"
ISSUER_JWKS = "issuer-jwks"
GITHUB = "github"
TOKEN_SUFFIX = "/oauth2/v2.0/token"
TOKEN_V1_SUFFIX = "/oauth2/token"  # the v1 endpoint the v1 discovery document names
FORM = "application/x-www-form-urlencoded"
REFRESH_EVERY = 1.0  # seconds between checks of the projected token files


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    target: str  # the tenant as written, or an issuer name


@functools.lru_cache(maxsize=1024)
def match(raw_path: str) -> Route | None:
    path = unquote(raw_path).rstrip("/")
    low = path.lower()
    for kind, suffix in ((TOKEN, TOKEN_SUFFIX), (TOKEN_V1, TOKEN_V1_SUFFIX)):
        if low.endswith(suffix):
            tenant = path[: -len(suffix)]
            if tenant.count("/") == 1 and len(tenant) > 1:
                return Route(kind, tenant[1:])
            return None
    if low.startswith("/issuers/"):
        rest = path[len("/issuers/"):]
        for kind, suffix in ((ISSUER_CONFIG, "/.well-known/openid-configuration"), (ISSUER_JWKS, "/jwks")):
            if rest.endswith(suffix) and "/" not in rest[: -len(suffix)] and rest[: -len(suffix)]:
                return Route(kind, rest[: -len(suffix)])
        return None
    if low == "/github/token":
        return Route(GITHUB, "")
    return None


def issuer_base(app: Application) -> str:
    """Where the issuers msi plays are published: the HTTPS address when the server has one."""
    return app.https_url or app.base_url


def _now(app: Application, state: State) -> int:
    """Simulated now: the server's clock plus the state's offset."""
    return app.clock.now() + state.clock_offset


def _form(req: Request) -> dict[str, str]:
    """The form fields (first value of each); an empty form for any other content type."""
    ctype = (req.header("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype != FORM or not req.body:
        return {}
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    pairs = parse_query(text) or []
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _method(allowed: str) -> Response:
    return json_response(405, {"error": "invalid_request", "error_description": f"Only {allowed} is supported at this endpoint."},
                         headers=[("Allow", allowed)])


def _not_found(what: str) -> Response:
    return json_response(404, {"error": "not_found", "error_description": what}, log=what)


async def handle(app: Application, req: Request, route: Route) -> Response:
    """Answer a federation request (called by the Application for the paths `match` knows)."""
    loop = asyncio.get_running_loop()
    try:
        if route.kind in (TOKEN, TOKEN_V1):
            if req.method != "POST":
                return _method("POST")
            return await loop.run_in_executor(app.pool, token_exchange, app, req, route.target, route.kind == TOKEN_V1)
        if req.method not in ("GET", "HEAD"):
            return _method("GET")
        if route.kind == GITHUB:
            return await loop.run_in_executor(app.pool, github_token, app, req)
        return await loop.run_in_executor(app.pool, issuer_document, app, route)
    except MsiError as exc:
        return json_response(500, {"error": "server_error", "error_description": exc.message}, log=exc.message)


def token_exchange(app: Application, req: Request, tenant_ref: str, v1: bool = False) -> Response:
    """Validate against the live state without the lock (a refusal changes nothing); mint a
    token under the state lock (the tenant may roll its signing key, and the log records it)."""
    quick = exchange_now(app, req, tenant_ref, v1)
    if quick is not None:
        return quick
    from msi_cli.core import exchange

    with app.sf.transaction(app.clock.now) as tctx:
        status, body = exchange.exchange(tctx, tenant_ref, _form(req), issuer_base(app),
                                         correlation_id=req.header("client-request-id"), v1=v1)
    app.live.refresh()
    return json_response(status, body, log="" if status == 200 else body.get("error_description", ""))


def exchange_now(app: Application, req: Request, tenant_ref: str, v1: bool = False) -> Response | None:
    """The answer without the state lock, or None when minting must change the state (the
    tenant has no signing key in force yet). A refusal changes nothing; a token signed with a
    key the tenant already has changes nothing either, so no lock and no file is needed (nor a
    second check); the activity log still records the token. About a millisecond of CPU, most of
    it the RS256 signature: `Application.answer_now` calls it on the event loop, where it costs
    less than a hand-off to the thread pool and back."""
    from msi_cli.core import credentials, exchange
    from msi_cli.core.context import Ctx

    form = _form(req)
    correlation = req.header("client-request-id")
    state = app.live.current
    ctx = Ctx(state, _now(app, state), app.keyset.keys)
    try:
        tenant, identity, resource = exchange.check(ctx, tenant_ref, form, issuer_base(app), v1)
    except exchange.Refused as refused:
        return json_response(refused.status, refused.body(ctx.now, correlation_id=correlation), log=refused.reason)
    if credentials.keys_due(tenant, ctx.now_iso):
        return None
    status, body = exchange.issue(ctx, tenant, identity, resource, v1)
    _append_log(app.sf, ctx.events)
    return json_response(status, body, log="" if status == 200 else body.get("error_description", ""))


def _append_log(sf: StateFile, events: Sequence[Event]) -> None:
    import json

    from msi_cli.store import files

    if events:
        lines = "".join(json.dumps({"time": e.time, "operation": e.operation, "target": e.target, "outcome": e.outcome,
                                    "detail": e.detail}) + "\n" for e in events)
        files.append_line(sf.log_path, lines.encode("utf-8"))


def issuer_document(app: Application, route: Route) -> Response:
    from msi_cli.core import issuers

    state = app.live.current
    issuer = state.issuers.get(route.target.lower())
    if issuer is None or issuer.name != route.target:
        return _not_found(f"no issuer '{route.target}'")
    base = issuer_base(app)
    if route.kind == ISSUER_CONFIG:
        return json_response(200, issuers.discovery(base, issuer))
    return json_response(200, issuers.jwks(app.keyset.keys, issuer))


def github_token(app: Application, req: Request) -> Response:
    """GitHub Actions' ID token request: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=A` with
    `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` -> {"value": JWT}."""
    from msi_cli.core import issuers
    from msi_cli.store import projections

    query = dict(reversed(parse_query(req.query) or []))
    proj = projections.read(app.sf.private, query.get("run", ""))
    auth = req.header("authorization") or ""
    scheme, _, presented = auth.partition(" ")
    expected = proj.secret if proj is not None else ""
    if proj is None or not expected or scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        return json_response(401, {"message": "Bad credentials"}, log="the request token does not match this run")
    state = app.live.current
    issuer = state.issuers.get(proj.issuer.lower())
    if issuer is None:
        return _not_found(f"issuer '{proj.issuer}' was deleted")
    token = issuers.mint(app.keyset.keys, issuer, issuer_base(app), _now(app, state), proj.subject, query.get("audience") or None)
    return json_response(200, {"value": token})


def refresh_projections(app: Application) -> list[str]:
    """Bring every projected token file up to date with the simulated clock (blocking)."""
    from msi_cli.store import projections

    state = app.live.current
    return projections.refresh(app.sf.private, state, app.keyset.keys, issuer_base(app), _now(app, state))


async def keep_fresh(app: Application, interval: float = REFRESH_EVERY) -> None:
    """The server's periodic task: re-read the state if it changed, then rotate due tokens."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            await loop.run_in_executor(app.pool, _tick, app)
        except MsiError as exc:
            app.log(f"projected tokens: {exc.message}")
        await asyncio.sleep(interval)


def _tick(app: Application) -> None:
    if app.live.stale():
        app.live.refresh()
    refresh_projections(app)
