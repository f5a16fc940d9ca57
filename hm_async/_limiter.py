"""The seam between the policy loop and a per-brand rate limiter.

The transport (the policy loop of :mod:`hm_async._transport`) and the fleet poller depend
on this protocol only. The in-process default is
:class:`~hm_async._ratelimit.RateLimiterRegistry`; a limiter shared by many processes (Redis)
implements the same five methods. Brands are passed in the dashed spelling
(``mercedes-benz``), already normalised by the caller.

Guarantees every implementation must keep (the tests of the default prove them):

* **A configured limit is never exceeded.** For a brand with a fixed limit ``R`` requests per
  second, no one-second window ``[s, s+1)`` holds more than ``R`` grants (``floor(R)`` for a
  fractional ``R``; below 1/s at most one grant per ``1/R`` s), counted over every caller
  that shares the limiter, while the long-run rate stays close to ``R``.
* **Fairness.** Waiters of one brand are granted in arrival order (first come, first served):
  a newcomer never overtakes a task already waiting. Brands are independent: one brand's
  pacing or pause never delays another brand.
* **429 pause.** :meth:`RateLimiter.on_rate_limited` pauses the brand for ``retry_after``
  seconds (a default pause when None) before any further grant; a fixed limit is the
  operator's word and is not lowered by it.
* **Generations.** :meth:`RateLimiter.acquire` and :meth:`RateLimiter.try_acquire` return the
  brand's current generation, a number that grows each time the limiter slows the brand
  down. A 429 reported with the generation of a request sent before the last slow-down
  (``generation`` older than the current one) must not slow the brand down again, so a
  burst of 429s from requests already in flight cuts the rate once, not once per request.
* **Adaptive mode.** A brand without a configured limit adapts (AIMD): it starts at a
  modest rate, grows while :meth:`RateLimiter.on_success` reports accepted requests, and is
  cut multiplicatively on a 429 (once per generation).
* **Cheap fast path.** ``try_acquire`` never waits and allocates nothing when a grant is
  free: it runs once per request on the hot path.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RateLimiter"]


class RateLimiter(Protocol):
    """What the transport and the poller need from a per-brand limiter (see the module)."""

    def try_acquire(self, brand: str) -> int | None:
        """A grant now, as the brand's generation; None when the caller must ``acquire``."""
        ...

    def waiting(self, brand: str) -> int:
        """Tasks waiting for a grant of ``brand`` (the poller's scheduler reads it)."""
        ...

    async def acquire(self, brand: str) -> int:
        """Wait for a grant in arrival order; returns the brand's generation."""
        ...

    def on_rate_limited(self, brand: str, retry_after: float | None = None, *,
                        generation: int | None = None) -> None:
        """A 429 for ``brand``: pause it (``retry_after`` seconds) and maybe slow it down."""
        ...

    def on_success(self, brand: str) -> None:
        """A request of ``brand`` was accepted (adaptive brands grow from this)."""
        ...
