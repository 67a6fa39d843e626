"""An HTTPS worker of `msi serve`: another process answering the HTTPS listener the parent bound.

The signing, TLS and parsing of Entra's token exchange hold one event loop (and the GIL) per
process, so `msi serve --https-workers N` starts N-1 of these next to itself: each inherits the
listening socket (the kernel hands every accepted connection to one of the processes) and answers
it with its own Application on the same state file and the server certificate the parent wrote.
A worker serves HTTPS only: plain HTTP, faults, the run file and the projected token files stay
with the parent. Every change it makes goes through the state's locked transactions, as parallel
CLI commands do; it reads the state live, so a CLI change applies to its next request too.

Protocol with the parent (`start`): the run key arrives as the first line on stdin (never on the
command line, which other users can read); the worker prints "ready" on stdout once it accepts;
it stops on SIGTERM, SIGINT or SIGHUP, and by itself when stdin reaches its end (the parent died).
It runs in its own process group, so a terminal's Ctrl-C reaches the parent only.

Usage (by `msi serve` only): python -m msi_cli.server.worker --fd K --state PATH --http-url URL
--https-url URL --cert PATH --cert-key PATH [--request-timeout S] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from msi_cli.errors import MsiError
from msi_cli.server.app import SERVER_NAME, Application
from msi_cli.server.httploop import REQUEST_TIMEOUT, HttpServer
from msi_cli.server.serverlog import ServerLog
from msi_cli.store.statefile import StateFile

READY = b"ready\n"
START_TIMEOUT = 30.0  # seconds a worker may take to start accepting
STOP_TIMEOUT = 5.0  # seconds a worker may take to stop after SIGTERM, before SIGKILL
_stopping: set[int] = set()  # workers `stop` ended: their exit is no news


def default_count() -> int:
    """Processes answering HTTPS when `--https-workers` is not given: one per CPU, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def start(fd: int, sf: StateFile, key: bytes, http_url: str, https_url: str, cert: Path, cert_key: Path,
          request_timeout: float, verbose: bool) -> subprocess.Popen[bytes]:
    """Start one worker on the listening socket `fd` (not waited for: see `wait_ready`)."""
    argv = [sys.executable, "-m", "msi_cli.server.worker", "--fd", str(fd), "--state", str(sf.path),
            "--http-url", http_url, "--https-url", https_url, "--cert", str(cert), "--cert-key", str(cert_key),
            "--request-timeout", repr(request_timeout)]
    if verbose:
        argv.append("--verbose")
    # its own process group: Ctrl-C reaches `msi serve` alone, which then stops its workers
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(fd,), process_group=0)
    assert proc.stdin is not None  # a pipe was asked for
    proc.stdin.write(key.hex().encode() + b"\n")
    proc.stdin.flush()  # the pipe stays open: its end tells the worker that the parent is gone
    return proc


def wait_ready(proc: subprocess.Popen[bytes]) -> bool:
    """Block until the worker accepts (True), or it exits first (False)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.stdout.close()
    return line == READY


def watch(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], log: Callable[[str], None]) -> None:
    """Log (and reap) the worker when it exits before `stop`: the other processes keep answering."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): the exit shows at stop only
        return

    def exited() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        code = proc.poll()
        if code is not None and proc.pid not in _stopping:
            how = f"signal {-code}" if code < 0 else f"status {code}"
            log(f"HTTPS worker {proc.pid} exited ({how}); the other processes still answer HTTPS")

    loop.add_reader(pidfd, exited)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every worker, then wait for each (SIGKILL past STOP_TIMEOUT); never raises."""
    for proc in procs:
        _stopping.add(proc.pid)  # `watch` logs no exit then
        if proc.poll() is None:
            try:
                proc.terminate()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass


def _read_key() -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            raise SystemExit(0)  # the parent is gone before it sent the key
        line += chunk
    return bytes.fromhex(line.decode().strip())


async def _serve(args: argparse.Namespace, key: bytes) -> None:
    from msi_cli.server import tls
    from msi_cli.server.service import _stderr

    log = ServerLog(_stderr)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="msi-serve")
    app = Application(StateFile(Path(args.state)), key, [], pool, log, args.verbose)
    app.base_url, app.https_url = args.http_url, args.https_url
    https = HttpServer(lambda req: app.handle(req, tls=True), quick=lambda req: app.answer_now(req, tls=True),
                       server_name=SERVER_NAME, request_timeout=args.request_timeout,
                       on_error=log if args.verbose else log.failures)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        message = str(context.get("message") or "event loop error")
        exc = context.get("exception")
        log(f"{message}: {exc}" if exc is not None else message, kind=message)

    def parent_gone() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            stopping.set()

    loop.set_exception_handler(loop_error)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_reader(0, parent_gone)
    try:
        app.live.refresh()
        await https.start(None, None, ssl=tls.server_context(Path(args.cert), Path(args.cert_key)),
                          sock=socket.socket(fileno=args.fd))
        os.write(1, READY)
        await stopping.wait()
    except MsiError as exc:
        log(f"HTTPS worker {os.getpid()} cannot start: {exc.message}")
    finally:
        await https.close()
        log.flush()
        pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="msi-serve-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--http-url", required=True)
    parser.add_argument("--https-url", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--cert-key", required=True)
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    key = _read_key()
    asyncio.run(_serve(args, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
