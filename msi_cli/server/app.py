"""The local token endpoint: routes each request to a resource's host protocol, applies faults,
keeps the state live, and asks the platform for tokens.

Cache hits are answered on the event loop from the in-memory state and token cache (no file is
read); anything that may block (re-reading a changed state file, minting under the state lock)
runs in a small thread pool, so one slow request never holds up the others.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from msi_cli import __version__, platform
from msi_cli.core.clock import iso, real_now
from msi_cli.errors import MsiError, NotFound, TokenError
from msi_cli.server import appservice, discovery, imds, routes, runfile
from msi_cli.server.faults import Fault, Injector
from msi_cli.server.httploop import REQUEST_TIMEOUT, HttpServer
from msi_cli.server.live import LiveState
from msi_cli.server.messages import Request, Response, json_response
from msi_cli.server.protocol import Rejected
from msi_cli.store.keyring import FileKeyRing
from msi_cli.store.statefile import StateFile

SERVER_NAME = f"msi-cli/{__version__}"
PROTOCOLS = {routes.IMDS: imds, routes.APPSERVICE: appservice}


def _not_found(path: str) -> Response:
    return json_response(404, {"error": "not_found", "error_description": "No managed identity endpoint at this path. "
                                "Run 'msi env RESOURCE' for a resource's endpoint."}, log=f"no endpoint at {path}")


class Application:
    def __init__(self, sf: StateFile, key: bytes, faults: list[Fault], pool: ThreadPoolExecutor,
                 log: Callable[[str], None], verbose: bool = False) -> None:
        self.sf = sf
        self.key = key
        self.live = LiveState(sf)
        self.injector = Injector(faults)
        self.keyset = discovery.KeySet(FileKeyRing(sf.keys_dir))
        self.pool = pool
        self.log = log
        self.verbose = verbose
        self.base_url = ""
        self._refreshing: asyncio.Future | None = None
        self._secrets: dict[str, str] = {}

    async def handle(self, req: Request) -> Response:
        started = time.perf_counter()
        response = await self._dispatch(req)
        if self.verbose or response.status >= 400:
            ms = (time.perf_counter() - started) * 1000
            why = f" ({response.log})" if response.log and response.status >= 400 else ""
            self.log(f"{req.method} {req.path} {response.status} {ms:.1f}ms{why}")
        return response

    async def _fresh(self) -> None:
        """Re-read the state and token cache off the loop if their files changed (one re-read
        at a time, shared by the requests that wait for it)."""
        if not self.live.stale():
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().run_in_executor(self.pool, self.live.refresh)
        await self._refreshing

    async def _dispatch(self, req: Request) -> Response:
        route = routes.match(req.path)
        if route is None:
            return _not_found(req.path)
        proto = PROTOCOLS.get(route.kind)
        try:
            await self._fresh()
        except MsiError as exc:
            return (proto or imds).server_error(f"the state cannot be read: {exc.message}")
        state = self.live.state
        if proto is None:
            now_iso = iso(real_now() + state.clock_offset)
            return discovery.handle(req, route.kind, route.target, self.base_url, state, self.keyset, now_iso)
        resource = state.resources.get(route.target)
        if resource is None or resource.rtype.host != route.kind:
            kind = "IMDS" if route.kind == routes.IMDS else "App Service"
            return proto.not_found(f"No {kind} managed identity endpoint for resource '{route.target}'")
        if not self.injector:
            return await self._token(req, route.kind, proto, resource, state)
        decision = self.injector.enter(resource.id, resource.name)
        try:
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.status:
                response = proto.fault(decision.status)
                response.log = decision.why
                return response
            return await self._token(req, route.kind, proto, resource, state)
        finally:
            self.injector.leave(decision)

    def _secret(self, resource_id: str) -> str:
        secret = self._secrets.get(resource_id)
        if secret is None:
            secret = self._secrets[resource_id] = runfile.identity_header(self.key, resource_id)
        return secret

    async def _token(self, req: Request, kind: str, proto, resource, state) -> Response:
        try:
            if kind == routes.IMDS:
                treq = imds.parse(req)
            else:
                treq = appservice.parse(req, self._secret(resource.id.lower()))
        except Rejected as rejected:
            return rejected.response
        try:
            answer = platform.cached(resource, treq.audience, treq.selector, state, self.live.tokens)
            if answer is None:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(
                    self.pool, platform.acquire, self.sf, resource, treq.audience, treq.selector, state)
                self.live.tokens_changed()
        except TokenError as exc:
            return proto.error(exc)
        except NotFound as exc:
            return proto.not_found(exc.message)
        except MsiError as exc:
            return proto.server_error(exc.message)
        if kind == routes.IMDS:
            return imds.token(answer)
        return appservice.token(answer, treq.legacy)


class Server:
    """`msi serve`: the HTTP loop, the application and the run file, started and stopped together."""

    def __init__(self, sf: StateFile, host: str = "127.0.0.1", port: int = 0, faults: list[Fault] | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, verbose: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.sf = sf
        self.host = host
        self.port = port
        self.log = log or _stderr
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="msi-serve")
        self.key = runfile.new_key()
        self.app = Application(sf, self.key, list(faults or []), self.pool, self.log, verbose)
        self.http = HttpServer(self.app.handle, server_name=SERVER_NAME, request_timeout=request_timeout,
                               on_error=self.log if verbose else None)
        self.url = ""
        self._record: runfile.RunRecord | None = None

    async def start(self) -> str:
        running = runfile.running(self.sf.server_path)
        if running is not None and running.pid != os.getpid():
            raise MsiError(f"a server is already running for this state at {running.url} (pid {running.pid})",
                           hint="stop it first, or use another --state")
        self.app.live.refresh()  # a state that does not load is an error now, not at the first request
        host, port = await self.http.start(self.host, self.port)
        self.url = self.app.base_url = runfile.client_url(host, port)
        self._record = runfile.RunRecord(self.url, host, port, os.getpid(), iso(real_now()), self.key.hex())
        try:
            runfile.write(self.sf.server_path, self._record)
        except BaseException:
            await self.http.close()
            raise
        return self.url

    async def stop(self) -> None:
        try:
            await self.http.close()
        finally:
            runfile.remove(self.sf.server_path, os.getpid())
            self.pool.shutdown(wait=False, cancel_futures=True)

    def run(self, ready: Callable[[str], None]) -> None:
        """Serve until SIGINT, SIGTERM or SIGHUP, then stop cleanly (blocking; main thread)."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, stop.set)
            url = await self.start()
            try:
                ready(url)
                await stop.wait()
            finally:
                await self.stop()

        asyncio.run(main())


class ServerThread:
    """A server on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="msi-serve-loop", daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
            self.loop.close()

    @property
    def url(self) -> str:
        return self.server.url


def _stderr(message: str) -> None:
    try:
        sys.stderr.write(f"msi serve: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
