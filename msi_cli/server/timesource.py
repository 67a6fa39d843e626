"""Where the server reads the time and waits: one object handed to the HTTP loop (deadlines,
the Date header), the application (token cache countdown, discovery, signing-key due dates) and
the fault injector (throttle windows, latency). `REAL` is the machine's clocks; tests hand in
one they move by hand, so nothing in them sleeps to let time pass."""

from __future__ import annotations

import asyncio
import time as _time


class TimeSource:
    """The real clocks. `time` is epoch seconds (wall clock), `monotonic` measures deadlines,
    `sleep` waits on the event loop. (Plain functions, so the hot path pays no extra call.)"""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(asyncio.sleep)

    def now(self) -> int:
        """Whole epoch seconds, as `core.timefmt.real_now` gives them."""
        return int(self.time())


REAL = TimeSource()
