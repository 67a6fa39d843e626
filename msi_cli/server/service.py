"""`msi serve` as a process: the plain HTTP listener and the HTTPS one, the application they
share, the run file that `msi env` reads, the projected-token task, and a clean stop on a signal.
(What each request gets is decided in `server/app.py`.)"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from msi_cli.core.timefmt import iso, real_now
from msi_cli.errors import MsiError
from msi_cli.server import entra, runfile
from msi_cli.server.app import SERVER_NAME, Application
from msi_cli.server.faults import Fault
from msi_cli.server.httploop import REQUEST_TIMEOUT, HttpServer
from msi_cli.server.serverlog import ServerLog
from msi_cli.server.timesource import REAL, TimeSource
from msi_cli.store import files
from msi_cli.store.statefile import StateFile

if TYPE_CHECKING:
    from msi_cli.server.tls import Setup


class Server:
    """`msi serve`: the HTTP loop, the application and the run file, started and stopped together."""

    def __init__(self, sf: StateFile, host: str = "127.0.0.1", port: int = 0, faults: list[Fault] | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, verbose: bool = False,
                 log: Callable[[str], None] | None = None, https_port: int | None = None,
                 clock: TimeSource = REAL, open_files: int | None = None, https_workers: int = 1) -> None:
        """`open_files`: the open-file limit the connections must fit in (tests); by default the
        process's RLIMIT_NOFILE, raised toward what the connections need. `https_workers`: the
        processes answering the HTTPS listener, this one included (see `server/worker.py`)."""
        self.sf = sf
        self.host = host
        self.port = port
        self.https_port = https_port  # None: no HTTPS listener
        self.https_workers = https_workers
        self.request_timeout = request_timeout
        self.verbose = verbose
        self.workers: list[subprocess.Popen[bytes]] = []  # the other processes answering HTTPS
        self.log = ServerLog(log or _stderr)  # escaped, bounded, repeated lines summed up
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="msi-serve")
        self.key = runfile.new_key()
        self.app = Application(sf, self.key, list(faults or []), self.pool, self.log, verbose, clock)
        self.http = HttpServer(self.app.handle, quick=self.app.answer_now, server_name=SERVER_NAME,
                               request_timeout=request_timeout, on_error=self.log if verbose else self.log.failures, clock=clock,
                               open_files=open_files)
        self.https: HttpServer | None = None
        if https_port is not None:
            self.https = HttpServer(functools.partial(self.app.handle, tls=True),
                                    quick=functools.partial(self.app.answer_now, tls=True), server_name=SERVER_NAME,
                                    request_timeout=request_timeout, on_error=self.log if verbose else self.log.failures,
                                    clock=clock, open_files=open_files)
        self.url = ""
        self.https_url = ""
        self.tls_setup: Setup | None = None  # once the HTTPS listener is up
        self._record: runfile.RunRecord | None = None
        self._projections: asyncio.Task[None] | None = None
        self._serving: int | None = None  # the fd holding the state's serve lock

    async def start(self) -> str:
        # One server per state, also when two start at once: the first holds this lock until it
        # ends (however it ends); the record's check stays for a server of an older msi.
        files.private_dir(self.sf.private, tighten=True)
        self._serving = files.held_lock(self.sf.private / "serve.lock")
        try:
            return await self._start()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._serving is not None:
            os.close(self._serving)  # the next server may start
            self._serving = None

    async def _start(self) -> str:
        running = runfile.running(self.sf.server_path)
        if self._serving is None or (running is not None and running.pid != os.getpid()):
            where = f" at {running.url} (pid {running.pid})" if running is not None else ""
            raise MsiError(f"a server is already running for this state{where}", hint="stop it first, or use another --state")
        self.app.live.refresh()  # a state that does not load is an error now, not at the first request
        try:
            host, port = await self.http.start(self.host, self.port)
        except OSError as exc:
            raise MsiError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                           hint="choose another --port, or 0 for a free one") from None
        self.url = self.app.base_url = runfile.client_url(host, port)
        try:
            if self.https is not None:
                await self._start_https()
            self._record = runfile.RunRecord(self.url, host, port, os.getpid(), iso(real_now()), self.key.hex(),
                                             self.https_url)
            runfile.write(self.sf.server_path, self._record)
        except BaseException:
            await self._close_listeners()
            if self.workers:
                from msi_cli.server import worker

                worker.stop(self.workers)
            raise
        self._projections = asyncio.get_running_loop().create_task(entra.keep_fresh(self.app))  # projected token files
        return self.url

    async def _start_https(self) -> None:
        from msi_cli.server import tls

        https, https_port = self.https, self.https_port
        assert https is not None and https_port is not None  # started only when an HTTPS port was given
        setup = self.tls_setup = tls.server_setup(self.sf.private, self.host, real_now())
        try:
            host, port = await https.start(self.host, https_port, ssl=setup.context)
        except OSError as exc:
            raise MsiError(f"cannot listen on {self.host}:{self.https_port}: {exc.strerror or exc}",
                           hint="choose another --https-port, or 0 for a free one") from None
        self.https_url = self.app.https_url = runfile.client_url(host, port, "https")
        if self.https_workers > 1:
            await self._start_workers(setup)

    async def _start_workers(self, setup: Setup) -> None:
        """Start the HTTPS workers on the listening socket and wait until each accepts; one
        that fails to start is reported and left out (this process still answers)."""
        from msi_cli.server import worker

        assert self.https is not None and self.https._server is not None  # the HTTPS listener is up
        fd = self.https._server.sockets[0].fileno()
        loop = asyncio.get_running_loop()
        for _ in range(self.https_workers - 1):
            self.workers.append(worker.start(fd, self.sf, self.key, self.url, self.https_url, setup.cert_path,
                                             setup.key_path, self.request_timeout, self.verbose))
        started, self.workers = self.workers, []
        for proc in started:
            try:
                ready = await asyncio.wait_for(loop.run_in_executor(self.pool, worker.wait_ready, proc), worker.START_TIMEOUT)
            except TimeoutError:
                ready = False
            if ready:
                self.workers.append(proc)
                worker.watch(loop, proc, self.log)
            else:
                worker.stop([proc])
                self.log(f"HTTPS worker {proc.pid} did not start")

    async def _close_listeners(self) -> None:
        try:
            await self.http.close()
        finally:
            if self.https is not None:
                await self.https.close()

    async def stop(self) -> None:
        if self._projections is not None:
            self._projections.cancel()
        try:
            await self._close_listeners()
        finally:
            if self.workers:
                from msi_cli.server import worker

                worker.stop(self.workers)
            self.log.flush()
            runfile.remove(self.sf.server_path, os.getpid())
            self._release()
            self.pool.shutdown(wait=False, cancel_futures=True)

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What asyncio would print with a traceback (say, out of file descriptors), as one line."""
        message = context.get("message") or "event loop error"
        exc = context.get("exception")
        self.log(f"{message}: {exc}" if exc is not None else message, kind=message)

    def run(self, ready: Callable[[str], None]) -> int:
        """Serve until SIGINT, SIGTERM or SIGHUP, then stop cleanly (blocking; main thread).
        Returns the number of the signal that stopped it."""
        stopped_by: list[int] = []

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(self.loop_error)
            stop = asyncio.Event()

            def on_signal(sig: int) -> None:
                stopped_by.append(sig)
                stop.set()

            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, on_signal, int(sig))
            url = await self.start()
            try:
                ready(url)
                await stop.wait()
            finally:
                await self.stop()

        asyncio.run(main())
        return stopped_by[0] if stopped_by else 0


def _stderr(message: str) -> None:
    try:
        sys.stderr.write(f"msi serve: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
