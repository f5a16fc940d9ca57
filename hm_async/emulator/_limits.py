"""Rate limits and fault injection: the parts of the emulator that say "no" on purpose.

Per-brand limits are token buckets (rate = requests per second, capacity = one second's
worth unless ``rate_limit_burst`` says otherwise), which is how a client pacing itself at the
configured rate never sees a 429 while a burst does. The clearance GET-by-VIN limit is the
spec's "60 calls per minute per application", a sliding one-minute window.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Iterable

__all__ = ["FaultPlan", "SlidingWindow", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second up to ``capacity``; :meth:`take` says how long to wait."""

    __slots__ = ("_stamp", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._stamp = time.monotonic()

    def take(self, now: float) -> float:
        """0.0 if a request may pass now, else the seconds until one may."""
        # ``now`` may predate the bucket (read before it was created): never refill negatively,
        # or a full new bucket would refuse its very first request.
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def take(self, now: float) -> float:
        """0.0 if the event may happen now (and records it), else seconds until it may."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) < self.limit:
            self._times.append(now)
            return 0.0
        return self._times[0] + self.window - now


def retry_after_header(wait: float) -> str:
    """Retry-After is whole seconds (RFC 9110); never tell a client to retry at once."""
    return str(max(1, math.ceil(wait)))


class FaultPlan:
    """Decides, per request, whether a route fails and how.

    Scripted outcomes (``Emulator.script_faults``) come first, in order; then, for routes in
    ``fault_routes``, a random fault with probability ``fault_rate``. Outcomes are strings:
    an error status ``"400"`` … ``"599"`` (``"429"`` carries Retry-After, ``"401"`` is an
    invalid token), ``"drop"``, ``"html502"``, or ``"ok"`` to let one request through.
    """

    SPECIAL = frozenset({"drop", "html502", "ok"})

    def __init__(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self._scripts: dict[str, deque[str]] = {}

    def script(self, route: str, outcomes: Iterable[int | str | None]) -> None:
        queue = self._scripts.setdefault(route, deque())
        for outcome in outcomes:
            name = "ok" if outcome is None else str(outcome)
            if name not in self.SPECIAL and not (name.isdigit() and 400 <= int(name) <= 599):
                raise ValueError(
                    f"unknown scripted outcome {outcome!r}: use an error status (400-599), "
                    f"'drop', 'html502' or None"
                )
            queue.append(name)

    def clear(self) -> None:
        self._scripts.clear()

    def pending(self, route: str) -> int:
        return len(self._scripts.get(route, ()))

    def pick(self, route: str, rate: float, faults: tuple[str, ...],
             routes: tuple[str, ...]) -> str | None:
        """The fault for this request, or ``None`` to serve it normally."""
        queue = self._scripts.get(route)
        if queue:
            outcome = queue.popleft()
            return None if outcome == "ok" else outcome
        if rate > 0.0 and route in routes and self.rng.random() < rate:
            return self.rng.choice(faults)
        return None
