"""A clock that tests move by hand, for the in-process server (`Server(clock=...)`): monotonic
time stands still until `advance`, so a throttle window, a connection deadline or a fault's
latency is reached by moving the clock, never by sleeping. The wall clock is the real one plus
what `advance` added: the CLI a test runs beside the server reads the real clock, so a
certificate or token it makes a second later is already current for the server (a wall clock
that stood still would see it as not yet valid), and a cache countdown still moves on `advance`."""

from __future__ import annotations

import asyncio
import threading
import time


class ManualClock:
    """The `msi_cli.server.timesource.TimeSource` interface; thread-safe (the server's loop runs
    in its own thread, the test moves the clock from another)."""

    def __init__(self) -> None:
        self._mono = time.monotonic()
        self._elapsed = 0.0
        self._cond = threading.Condition()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self.slept: list[float] = []  # every wait asked for, in order

    def time(self) -> float:
        return time.time() + self._elapsed

    def monotonic(self) -> float:
        return self._mono + self._elapsed

    def now(self) -> int:
        return int(self.time())

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been moved `seconds` on (called on the server's loop)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        entry = (self._elapsed + seconds, loop, future)
        with self._cond:
            self.slept.append(seconds)
            if seconds <= 0:
                future.set_result(None)
            else:
                self._sleepers.append(entry)
            self._cond.notify_all()
        try:
            await future
        finally:
            with self._cond:
                if entry in self._sleepers:
                    self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._elapsed += seconds
            due = [s for s in self._sleepers if s[0] <= self._elapsed]
            self._sleepers = [s for s in self._sleepers if s[0] > self._elapsed]
        for _, loop, future in due:
            loop.call_soon_threadsafe(_wake, future)

    def wait_for_sleepers(self, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` waits are pending (bounded by `timeout`; a condition, not a sleep)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._sleepers) >= count, timeout)

    def sleeping(self) -> int:
        with self._cond:
            return len(self._sleepers)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
