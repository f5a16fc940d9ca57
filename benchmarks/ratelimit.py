"""Hot-path cost of the per-brand rate limiter, as ratios against an empty coroutine call.

Run: ``python benchmarks/ratelimit.py``. Measures, per call:
  * ``await acquire()`` for an unlimited brand (the fast path: no lock, no limiter),
  * ``on_success()`` for an adaptive brand (every accepted request of a fleet job),
  * ``await acquire()`` for a fixed brand paced at 5000/s (FIFO queue, the brand's one
    pacing timer, GCRA bucket and window log): CPU time per grant, since the wall time is
    the pacing itself,
against ``await empty()`` and a plain method call measured in the same run.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from hm_async._ratelimit import RateLimiterRegistry, RateLimits

N = 200_000


async def empty() -> None:
    return None


def nothing(_brand: str) -> None:
    return None


async def time_async(fn: Callable[[], Awaitable[object]], n: int = N,
                     timer: Callable[[], float] = time.perf_counter) -> float:
    best = math.inf
    for _ in range(5):
        t0 = timer()
        for _ in range(n):
            await fn()
        best = min(best, (timer() - t0) / n)
    return best


def time_sync(fn: Callable[[str], object], n: int = N) -> float:
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn("bmw")
        best = min(best, (time.perf_counter() - t0) / n)
    return best


async def main() -> None:
    reg = RateLimiterRegistry(RateLimits({"tesla": 5000.0}, default=math.inf))
    adaptive = RateLimiterRegistry(RateLimits(adaptive_max=1e6))
    await adaptive.acquire("bmw")

    base = await time_async(empty)
    base_cpu = await time_async(empty, timer=time.process_time)
    unlimited = await time_async(lambda: reg.acquire("bmw"))
    fixed = await time_async(lambda: reg.acquire("tesla"), n=2000, timer=time.process_time)
    call = time_sync(nothing)
    success = time_sync(adaptive.on_success)

    print(f"await empty()                 {base * 1e9:8.0f} ns  (baseline)")
    print(f"await acquire(unlimited)      {unlimited * 1e9:8.0f} ns  x{unlimited / base:.2f}")
    print(f"await acquire(fixed, paced)   {fixed * 1e9:8.0f} ns  x{fixed / base_cpu:.2f} (CPU)")
    print(f"plain call                    {call * 1e9:8.0f} ns  (baseline)")
    print(f"on_success(adaptive)          {success * 1e9:8.0f} ns  x{success / call:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
