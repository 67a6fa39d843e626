"""How `msi serve` hands a request to the ARM router: off the event loop, in the server's thread
pool; reads against the server's in-memory state, changes in a state transaction (under the state
lock, as minting is)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from msi_cli.errors import MsiError
from msi_cli.server.arm import router
from msi_cli.server.messages import Request, Response, json_response

if TYPE_CHECKING:
    from msi_cli.core.context import Ctx
    from msi_cli.core.model import State
    from msi_cli.server.app import Application


class _ServerAccess:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.keys = app.keyset.keys

    def snapshot(self) -> State:
        return self.app.live.current

    def transaction(self) -> AbstractContextManager[Ctx]:
        return self.app.sf.transaction(self.app.clock.now)

    def now(self) -> int:
        return self.app.clock.now()


async def answer(app: Application, req: Request, base_url: str) -> Response:
    """`base_url`: the listener the request came to (HTTPS for az and the SDKs), which the cloud
    metadata names as Resource Manager."""
    try:
        await app._fresh()
    except MsiError as exc:
        return json_response(500, {"error": {"code": "InternalServerError", "message": exc.message}}, log=exc.message)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(app.pool, router.handle, req.method, req.path, req.query, req.headers,
                                        req.body, _ServerAccess(app), base_url)
    why = ""
    if result.status >= 400 and result.body:
        error = (result.json() or {}).get("error", {}) if result.body.startswith(b"{") else {}
        why = f"ARM {error.get('code', '')}"
    return Response(result.status, result.body, headers=result.headers, log=why)
