"""`msi serve`'s log: what came from the network never reaches the terminal raw, and a flood of
like lines does not become a flood of output.

Every line is escaped (control characters, line and paragraph separators, bidirectional and other
invisible format characters become `\\xNN`/`\\uNNNN`) and bounded in length. Lines are counted by
kind (a request's method and status, or the line itself): within each second at most PER_KIND
lines of one kind and TOTAL lines in all are written; the rest are summed up when the second ends
as "... and N more like this: <the last of them>".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

MAX_LINE = 400  # characters, after escaping
WINDOW = 1.0  # seconds
PER_KIND = 20  # lines of one kind per window
TOTAL = 100  # lines per window
MAX_KINDS = 256  # kinds counted per window; more are counted together
MAX_SUMMARIES = 10  # summary lines per window; the other kinds share one


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, limit: int = MAX_LINE) -> str:
    """`text` safe for a terminal: non-printable characters escaped, at most `limit` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    if len(text) > limit:
        text = f"{text[: limit - 24]}... ({len(text) - limit + 24} more)"
    return text


class ServerLog:
    """A callable log sink (`log(message, kind=None)`) in front of `write`, which takes one line."""

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.write = write
        self.clock = clock
        self._start = clock()
        self._printed = 0
        self._counts: dict[str, int] = {}
        self._held: dict[str, list[Any]] = {}  # kind -> [lines not written, the last of them]
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, message: str, kind: str | None = None) -> None:
        now = self.clock()
        if now - self._start >= WINDOW:
            self.flush()
            self._start = now
        counts = self._counts
        if kind is None:
            kind = message
        if kind not in counts and len(counts) >= MAX_KINDS:
            kind = "\0other"
        count = counts[kind] = counts.get(kind, 0) + 1
        if count <= PER_KIND and self._printed < TOTAL:
            self._printed += 1
            self.write(printable(message))
            return
        held = self._held.get(kind)
        if held is None:
            self._held[kind] = [1, message]
            self._schedule(now)
        else:
            held[0] += 1
            held[1] = message

    def failures(self, message: str) -> None:
        """The HTTP layer's sink without --verbose: only a handler that failed (a bug of msi's,
        always logged), not the malformed requests a client or a flood can send."""
        if message.startswith("500 "):
            self(message)

    def _schedule(self, now: float) -> None:
        """Write the summaries when the window ends, even if no other line comes."""
        if self._timer is not None:
            return
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a test's direct call): the next line or flush() writes them
        self._timer = loop.call_later(max(0.0, self._start + WINDOW - now), self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.flush()
        self._start = self.clock()

    def flush(self) -> None:
        """Write the summaries of the lines held back, and start counting afresh."""
        held = sorted(self._held.values(), key=lambda h: -h[0])
        self._held = {}
        self._counts = {}
        self._printed = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for count, last in held[:MAX_SUMMARIES]:
            self.write(printable(f"... and {count} more like this: {last}"))
        rest = held[MAX_SUMMARIES:]
        if rest:
            self.write(f"... and {sum(h[0] for h in rest)} more lines of {len(rest)} other kinds")
