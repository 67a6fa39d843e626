"""A server on its own event loop in a background thread, for tests and benchmarks (`msi serve`
itself runs `Server.run` on the main thread)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from msi_cli.server.service import Server


class ServerThread:
    """A server on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="msi-serve-loop", daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        self.loop.set_exception_handler(self.server.loop_error)
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
