"""The local token endpoint: routes each request to a resource's host protocol, applies faults,
keeps the state live, and asks the platform for tokens.

Cache hits are answered on the event loop from the in-memory state and token cache (no file is
read); anything that may block (re-reading a changed state file, minting under the state lock)
runs in a small thread pool, so one slow request never holds up the others.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from msi_cli import __version__, tokenservice
from msi_cli.core.timefmt import iso
from msi_cli.errors import MsiError, NotFound, TokenError
from msi_cli.server import appservice, discovery, entra, imds, routes, runfile
from msi_cli.server.arm.paths import is_arm
from msi_cli.server.faults import Fault, Injector
from msi_cli.server.hostprotocol import HostProtocol, Rejected, TokenRequest
from msi_cli.server.live import LiveState
from msi_cli.server.messages import Request, Response, json_response
from msi_cli.server.serverlog import ServerLog
from msi_cli.server.timesource import REAL, TimeSource
from msi_cli.store.keyring import FileKeyRing
from msi_cli.store.statefile import StateFile

if TYPE_CHECKING:
    from msi_cli.core.model import Resource, State

SERVER_NAME = f"msi-cli/{__version__}"
# the host protocols by route kind: each resource type names its host (`ResourceType.host`)
PROTOCOLS: dict[str, HostProtocol] = {proto.kind: proto for proto in (imds.PROTOCOL, appservice.PROTOCOL)}


def _plain_http_only(path: str, http_url: str) -> Response:
    return json_response(404, {"error": "not_found", "error_description": "IMDS and App Service endpoints are plain "
                                f"HTTP, as in Azure: use {http_url}. Run 'msi env RESOURCE' for a resource's endpoint."},
                         log=f"no HTTPS endpoint at {path}: managed identity endpoints are plain HTTP")


def _https_only(path: str, https_url: str) -> Response:
    """Azure Resource Manager and Entra's token endpoint asked on the plain-HTTP port: bearer
    tokens and client assertions travel over HTTPS only, as every Azure client requires."""
    where = f": use {https_url}" if https_url else ""
    return json_response(404, {"error": "not_found", "error_description": "Azure Resource Manager and Entra's token "
                                f"endpoint are served over HTTPS only{where}. Run 'msi env RESOURCE' for the addresses."},
                         log=f"no plain HTTP endpoint at {path}: Resource Manager and Entra's token endpoint are HTTPS only")


def _not_found(path: str) -> Response:
    return json_response(404, {"error": "not_found", "error_description": "No managed identity endpoint at this path. "
                                "Run 'msi env RESOURCE' for a resource's endpoint."}, log=f"no endpoint at {path}")


class Application:
    def __init__(self, sf: StateFile, key: bytes, faults: list[Fault], pool: ThreadPoolExecutor,
                 log: ServerLog, verbose: bool = False, clock: TimeSource = REAL) -> None:
        self.sf = sf
        self.key = key
        self.clock = clock  # real time for tokens, discovery and faults (simulated time adds the state's offset)
        self.live = LiveState(sf)
        self.injector = Injector(faults, clock.monotonic)
        self.keyset = discovery.KeySet(FileKeyRing(sf.keys_dir))
        self.pool = pool
        self.log = log
        self.verbose = verbose
        self.base_url = ""
        self.https_url = ""  # the HTTPS listener's base; requests on it get `tls=True`
        self._refreshing: asyncio.Future[None] | None = None
        self._secrets: dict[str, str] = {}

    def _log_request(self, req: Request, response: Response, started: float) -> None:
        if self.verbose or response.status >= 400:
            ms = (time.perf_counter() - started) * 1000
            why = f" ({response.log})" if response.log and response.status >= 400 else ""
            path = req.path if len(req.path) <= 200 else req.path[:200] + "..."
            # counted by method and status, so a flood of like requests becomes one summary line
            self.log(f"{req.method} {path} {response.status} {ms:.1f}ms{why}", kind=f"{req.method[:16]} {response.status}")

    def answer_now(self, req: Request, tls: bool = False) -> Response | None:
        """The answer, if it can be given at once without blocking: the state and token cache
        are current in memory, no fault is configured, and the token is a cache hit (or the
        request is refused). None sends the request down `handle`."""
        if self.injector or self.live.stale():
            return None
        route = routes.match(req.path)
        if route is None:
            return self._exchange_now(req) if req.method == "POST" and tls else None
        if route.kind == routes.JWKS and self._keys_due(route.target):
            return None  # the tenant's key is made off the loop first
        started = time.perf_counter()
        routed = self._route(req, self.live.current, tls)
        if isinstance(routed, _Pending):
            response = routed.answer_now()
            if response is None:
                return None
        else:
            response = routed
        self._log_request(req, response, started)
        return response

    def _exchange_now(self, req: Request) -> Response | None:
        """Entra's token endpoint answered on the loop when minting needs no lock (see
        `entra.exchange_now`); None for every other path, and whenever the state must change."""
        federated = entra.match(req.path)
        if federated is None or federated.kind not in (entra.TOKEN, entra.TOKEN_V1):
            return None
        started = time.perf_counter()
        try:
            response = entra.exchange_now(self, req, federated.target, federated.kind == entra.TOKEN_V1)
        except MsiError:
            return None  # `handle` answers it, with the error
        if response is not None:
            self._log_request(req, response, started)
        return response

    async def handle(self, req: Request, tls: bool = False) -> Response:
        started = time.perf_counter()
        response = await self._dispatch(req, tls)
        self._log_request(req, response, started)
        return response

    async def _fresh(self) -> None:
        """Re-read the state and token cache off the loop if their files changed (one re-read
        at a time, shared by the requests that wait for it)."""
        if not self.live.stale():
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().run_in_executor(self.pool, self.live.refresh)
        await self._refreshing

    async def _dispatch(self, req: Request, tls: bool = False) -> Response:
        route = routes.match(req.path)
        if route is None and is_arm(req.path):  # Azure Resource Manager: its own package, run in the pool
            if not tls:
                return _https_only(req.path, self.https_url)
            from msi_cli.server.arm import hook

            return await hook.answer(self, req, self.https_url)
        federated = entra.match(req.path) if route is None else None
        if route is None and federated is None:
            return _not_found(req.path)
        if federated is not None and federated.kind in (entra.TOKEN, entra.TOKEN_V1) and not tls:
            return _https_only(req.path, self.https_url)
        try:
            await self._fresh()
        except MsiError as exc:
            return PROTOCOLS.get(route.kind if route else "", imds.PROTOCOL).server_error(f"the state cannot be read: {exc.message}")
        if federated is not None:
            return await entra.handle(self, req, federated)
        assert route is not None  # no federation route: the path matched a managed identity one
        if route.kind == routes.JWKS and self._keys_due(route.target):
            try:
                await asyncio.get_running_loop().run_in_executor(self.pool, self._publish_keys, route.target)
            except MsiError as exc:
                return imds.server_error(f"the tenant's signing keys cannot be made: {exc.message}")
        pending = self._route(req, self.live.current, tls)
        if isinstance(pending, Response):
            return pending
        if not self.injector:
            return await pending.answer()
        decision = self.injector.enter(pending.resource.id, pending.resource.name)
        try:
            if decision.delay:
                await self.clock.sleep(decision.delay)
            if decision.status:
                response = pending.proto.fault(decision.status)
                response.log = decision.why
                return response
            return await pending.answer()
        finally:
            self.injector.leave(decision)

    def _route(self, req: Request, state: State, tls: bool = False) -> Response | _Pending:
        """Where requests are routed (the one place: a new endpoint is matched here). Answers
        everything that needs neither the host's rules nor a token: unknown paths, discovery,
        unknown resources. A request for a resource's token endpoint comes back as _Pending.
        `tls`: the request came to the HTTPS listener, whose base URL the documents then name."""
        route = routes.match(req.path)
        if route is None:
            return _not_found(req.path)
        proto = PROTOCOLS.get(route.kind)
        if proto is None:
            now_iso = iso(self.clock.now() + state.clock_offset)
            base = self.https_url if tls else self.base_url
            # Entra's endpoints (token, authorize...) are named where they are served: over HTTPS
            return discovery.handle(req, route.kind, route.target, base, state, self.keyset, now_iso,
                                    self.https_url or base)
        if tls:
            return _plain_http_only(req.path, self.base_url)
        resource = state.resources.get(route.target)
        if resource is None or resource.rtype.host != route.kind:
            return proto.not_found(f"No {proto.label} managed identity endpoint for resource '{route.target}'")
        return _Pending(self, req, proto, resource, state)

    def _keys_due(self, tenant_ref: str) -> bool:
        """A tenant publishes a key it signs with now; one that has none yet (no token issued so
        far) or whose key retired gets one before its JWKS is served."""
        state = self.live.current
        tenant = discovery.find_tenant(state, tenant_ref)
        if tenant is None:
            return False
        from msi_cli.core import credentials

        return credentials.keys_due(tenant, iso(self.clock.now() + state.clock_offset))

    def _publish_keys(self, tenant_ref: str) -> None:
        from msi_cli.core import credentials, lookup

        with self.sf.transaction(self.clock.now) as ctx:
            credentials.signing_key(ctx, lookup.tenant(ctx.state, tenant_ref))
        self.live.refresh()

    def _secret(self, resource_id: str) -> str:
        secret = self._secrets.get(resource_id)
        if secret is None:
            if len(self._secrets) >= 4096:
                self._secrets.clear()
            secret = self._secrets[resource_id] = runfile.identity_header(self.key, resource_id)
        return secret


class _Pending:
    """A request for a resource's token endpoint, before its host's rules are applied."""

    __slots__ = ("app", "req", "proto", "resource", "state")

    def __init__(self, app: Application, req: Request, proto: HostProtocol, resource: Resource, state: State) -> None:
        self.app, self.req, self.proto, self.resource, self.state = app, req, proto, resource, state

    def _parse(self) -> TokenRequest:
        return self.proto.parse(self.req, self._secret)

    def _secret(self) -> str:
        return self.app._secret(self.resource.id.lower())

    def _render(self, treq: TokenRequest, answer: dict[str, Any]) -> Response:
        return self.proto.token(answer, treq)

    def answer_now(self) -> Response | None:
        """The answer from the rules and the in-memory token cache; None when a token must be minted."""
        try:
            treq = self._parse()
            answer = tokenservice.cached(self.resource, treq.audience, treq.selector, self.state, self.app.live.tokens,
                                     self.app.clock.now)
        except Rejected as rejected:
            return rejected.response
        except TokenError as exc:
            return self.proto.error(exc)
        return None if answer is None else self._render(treq, answer)

    async def answer(self) -> Response:
        quick = self.answer_now()
        if quick is not None:
            return quick
        treq = self._parse()
        try:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self.app.pool, tokenservice.acquire, self.app.sf, self.resource,
                                                treq.audience, treq.selector, self.state, self.app.clock.now)
            self.app.live.tokens_changed()
        except TokenError as exc:
            return self.proto.error(exc)
        except NotFound as exc:
            return self.proto.not_found(exc.message)
        except MsiError as exc:
            return self.proto.server_error(exc.message)
        return self._render(treq, answer)
