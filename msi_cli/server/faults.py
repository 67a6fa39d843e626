"""Fault injection for client testing: make a resource's token endpoint answer the way a
struggling Azure host does, so that client retry logic can be exercised locally. Off by default.

A fault is given as `TARGET:KIND[:OPTION]...`:
- TARGET: a resource name, a resource id, or `*` for every resource;
- KIND: `throttle` (Azure's managed identity limits: 429 beyond 20 requests per second or 5
  concurrent requests per resource), `429`, `410` (IMDS "available within 70 seconds"), any
  5xx status such as `500` or `503`, or `latency=DURATION` (e.g. `250ms`, `2s`) added before the
  answer;
- OPTION: `count=N` (only the first N matching requests), `share=P` (a share of them, `0.25` or
  `25%`, spread evenly: with 25% every fourth request), and for `throttle` `rps=N` and
  `concurrent=N` to change the limits.
Without count or share a status or latency fault applies to every request of its target. Faults
apply in the order given; a request answered by one status fault is not counted by the next, so
`vm1:503:count=1 vm1:429:count=1` answers 503, then 429, then normally.
Examples: `vm1:410:count=2`, `web1:503:share=50%`, `*:latency=200ms`, `vm1:throttle`.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from msi_cli.errors import InvalidArgument

THROTTLE_RPS = 20
THROTTLE_CONCURRENT = 5
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s)")
HINT = "use TARGET:KIND[:OPTION]..., e.g. vm1:410:count=2, web1:503:share=50%, *:latency=200ms or vm1:throttle"


@dataclass
class Fault:
    spec: str
    target: str  # '*', a lower-case name or a lower-case resource id
    kind: str  # 'throttle', 'status' or 'latency'
    status: int = 0
    delay: float = 0.0  # seconds
    count: int | None = None
    share: float | None = None
    rps: int = THROTTLE_RPS
    concurrent: int = THROTTLE_CONCURRENT
    seen: int = 0  # matching requests so far
    fired: int = 0
    windows: dict[str, deque[float]] = field(default_factory=dict)  # throttle: times of admitted requests, per resource id
    inflight: dict[str, int] = field(default_factory=dict)  # throttle: admitted requests in progress, per resource id

    def matches(self, resource_id: str, name: str) -> bool:
        return self.target in ("*", resource_id.lower(), name.lower())

    def _selected(self) -> bool:
        """Count this request and say whether count/share selects it."""
        self.seen += 1
        n = self.seen
        if self.count is not None:
            return n <= self.count
        if self.share is not None:
            return math.floor(n * self.share + 1e-9) > math.floor((n - 1) * self.share + 1e-9)
        return True


def _bad(spec: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid fault '{spec}': {why}", hint=HINT)


def _duration(spec: str, text: str) -> float:
    m = _DURATION.fullmatch(text.strip())
    if not m:
        raise _bad(spec, f"'{text}' is not a duration such as 250ms or 2s")
    value = float(m[1])
    return value / 1000 if m[2] == "ms" else value


def _positive_int(spec: str, name: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise _bad(spec, f"{name} must be a whole number of at least 1")
    return int(text)


def parse(spec: str) -> Fault:
    parts = spec.strip().split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise _bad(spec, "it needs a target and a kind")
    target, kind = parts[0].strip().lower().rstrip("/"), parts[1].strip().lower()
    if kind == "throttle":
        fault = Fault(spec, target, "throttle", status=429)
    elif kind.startswith("latency="):
        fault = Fault(spec, target, "latency", delay=_duration(spec, kind.split("=", 1)[1]))
    elif kind.isdigit() and (kind in ("410", "429") or 500 <= int(kind) <= 599):
        fault = Fault(spec, target, "status", status=int(kind))
    else:
        raise _bad(spec, f"unknown kind '{kind}' (throttle, 410, 429, 5xx or latency=DURATION)")
    for option in parts[2:]:
        name, _, value = option.strip().partition("=")
        name = name.lower()
        if name == "count" and fault.kind != "throttle":
            fault.count = _positive_int(spec, "count", value)
        elif name == "share" and fault.kind != "throttle":
            text = value.strip()
            try:
                share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            except ValueError:
                raise _bad(spec, f"share '{value}' is not a number such as 0.25 or 25%") from None
            if not 0 < share <= 1:
                raise _bad(spec, "share must be more than 0 and at most 1 (100%)")
            fault.share = share
        elif name == "rps" and fault.kind == "throttle":
            fault.rps = _positive_int(spec, "rps", value)
        elif name == "concurrent" and fault.kind == "throttle":
            fault.concurrent = _positive_int(spec, "concurrent", value)
        else:
            raise _bad(spec, f"option '{option}' does not apply to {fault.kind}")
    if fault.count is not None and fault.share is not None:
        raise _bad(spec, "give count or share, not both")
    return fault


@dataclass(slots=True)
class Decision:
    delay: float = 0.0
    status: int = 0  # 0: answer normally
    why: str = ""
    key: str = ""
    admitted: list[Fault] = field(default_factory=list)  # throttles that count this request as in progress


class Injector:
    """Decides, per request, what the faults do. Used from the event loop thread only."""

    def __init__(self, faults: list[Fault], clock: Callable[[], float] = time.monotonic) -> None:
        self.faults = faults
        self.clock = clock

    def __bool__(self) -> bool:
        return bool(self.faults)

    def enter(self, resource_id: str, name: str) -> Decision:
        """Called when a request for the resource's endpoint arrives; pass the result to `leave`."""
        decision = Decision(key=resource_id.lower())
        for fault in self.faults:
            if not fault.matches(resource_id, name):
                continue
            if fault.kind == "throttle":
                key = resource_id.lower()
                now = self.clock()
                window = fault.windows.setdefault(key, deque())
                while window and window[0] <= now - 1.0:
                    window.popleft()
                inflight = fault.inflight.get(key, 0)
                if not decision.status and (len(window) >= fault.rps or inflight >= fault.concurrent):
                    fault.fired += 1
                    decision.status = 429
                    decision.why = f"throttled by {fault.spec}: {len(window)} requests in the last second, {inflight} in progress"
                    continue
                window.append(now)
                fault.inflight[key] = inflight + 1
                decision.admitted.append(fault)
            elif fault.kind == "latency":
                if fault._selected():
                    fault.fired += 1
                    decision.delay += fault.delay
            elif not decision.status and fault._selected():  # a request answered by an earlier fault does not count
                fault.fired += 1
                decision.status = fault.status
                decision.why = f"injected by {fault.spec}"
        return decision

    def leave(self, decision: Decision) -> None:
        """The request `enter` decided on has been answered."""
        for fault in decision.admitted:
            fault.inflight[decision.key] = max(0, fault.inflight.get(decision.key, 0) - 1)
