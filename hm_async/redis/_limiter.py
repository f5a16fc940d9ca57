"""``RedisLimiter``: per-brand limits that hold across every worker process.

The same contract as the in-process :class:`~hm_async._ratelimit.RateLimiterRegistry`
(``try_acquire`` / ``acquire`` / ``on_rate_limited`` / ``on_success`` / ``waiting``) and the
same guarantees, for all workers together:

* **fixed** limit ``R``: no one-second window holds more than ``R`` requests of the brand,
  whatever the number of workers (proof in :mod:`._limiter_scripts`);
* waiting is first come, first served: inside a process a FIFO queue per brand; across
  processes Redis hands out lease start times in the order the requests arrive;
* a 429 seen by one worker pauses the brand for all of them for its ``Retry-After``
  (the leases already handed out -- at most ``lease_seconds`` of grants per worker -- still
  go; new ones start after the pause);
* **adaptive** brands (no limit configured) share one AIMD estimate: successes are reported
  with the next lease request, a 429 cuts the shared rate once per generation.

Keeping Redis off the hot path: a worker takes grants in **leases** -- up to ``max_lease``
grants (``R x lease_seconds`` for a limited brand) usable for a short time from the
lease's start: ``idle_lease_seconds`` (250 ms) while the limit does not bind,
``lease_seconds`` (50 ms) when it does, ``busy_lease_seconds`` (20 ms) when requests are
already queued for all of the lease. While a lease lasts, ``try_acquire`` is a clock read
and two comparisons; one round trip serves a whole lease. The price of the window proof
is that a lease occupies its whole length: when the limit binds, the most a fixed brand
can reach is
``R / (1 + busy_lease_seconds + guard)``, about 96% of ``R`` with the defaults.

Faults: see :mod:`._link`. Degraded, each worker paces on an in-process registry with the
limits divided by the number of workers last seen in Redis, so the fleet stays near ``R``.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping

from .._errors import SharedStateError
from .._ratelimit import (
    DECREASE,
    DEFAULT_PAUSE,
    INCREASE,
    SLOW_START_GAIN,
    WINDOW_GUARD,
    BrandRateState,
    RateLimiterRegistry,
    RateLimits,
)
from .._retry import MAX_RETRY_AFTER
from ._limiter_scripts import CUT, LEASE
from ._link import REDIS_ERRORS, OnRedisError, RedisLink, SharesRedis

__all__ = ["RedisLimiter"]

#: How long a lease's grants may be used, from its start. Shorter costs more round trips
#: when the limit does not bind; longer costs throughput when it does (see module doc).
DEFAULT_LEASE_SECONDS = 0.05
#: The same for a lease whose grants are all awaited already (the limit binds).
DEFAULT_BUSY_LEASE_SECONDS = 0.02
#: The same while the limit does not bind (or there is none): few round trips.
DEFAULT_IDLE_LEASE_SECONDS = 0.25
#: Most grants in one lease: when leases are used up, 1/64 round trips per request.
DEFAULT_MAX_LEASE = 64
#: The achieved rate in ``snapshot()`` counts grants over about this many seconds.
ACHIEVED_SPAN = 2.0
#: A 429 cuts the rate at most once per pause plus this (when no generation is known).
CUT_HOLDOFF = 1.0

_FIXED, _ADAPTIVE, _UNLIMITED = "f", "a", "u"
_MODE_NAMES = {_FIXED: "fixed", _ADAPTIVE: "adaptive", _UNLIMITED: "unlimited"}


class _Brand:
    """One brand's lease in this process; touched on the event loop thread only."""

    __slots__ = (
        "binding",
        "cap",
        "end",
        "generation",
        "late",
        "left",
        "limit",
        "marks",
        "mode",
        "name",
        "paused_until",
        "pump",
        "queue",
        "rate",
        "rate_limited",
        "start",
        "successes",
        "total",
        "used",
        "want",
    )

    def __init__(self, name: str, limits: RateLimits, lease_seconds: float,
                 max_lease: int) -> None:
        self.name = name
        limit = limits.limit_for(name)
        if limit is None:
            self.mode, self.rate = _ADAPTIVE, limits.adaptive_start
        elif math.isinf(limit):
            self.mode, self.rate = _UNLIMITED, math.inf
        else:
            self.mode, self.rate = _FIXED, limit
        self.limit = limit
        self.cap = max_lease
        if self.mode == _FIXED:
            self.cap = max(1, min(max_lease, math.ceil(self.rate * lease_seconds)))
        self.binding = self.mode != _UNLIMITED  # until Redis shows it does not
        self.want = self.cap
        self.start = self.end = -math.inf
        self.left = 0
        self.used = 0
        self.generation = 0
        self.paused_until = -math.inf
        # waiters, first come first; each gets (generation, end of the lease it came from)
        self.queue: deque[asyncio.Future[tuple[int, float]]] = deque()
        self.late = 0  # grants that expired before their waiter could use them
        self.pump: asyncio.Task[None] | None = None
        self.successes = 0  # not yet reported to Redis (adaptive estimate)
        self.rate_limited = 0
        self.total = 0
        # (time, total) at each lease of the last few seconds, for the achieved rate
        self.marks: deque[tuple[float, int]] = deque()

    def achieved(self, now: float) -> float:
        """Grants per second over (about) the last two seconds."""
        marks = self.marks
        while len(marks) > 1 and marks[1][0] <= now - ACHIEVED_SPAN:
            marks.popleft()
        if not marks or now - marks[0][0] <= 0:
            return 0.0
        return (self.total - marks[0][1]) / max(now - marks[0][0], ACHIEVED_SPAN / 4)

    @property
    def waiting(self) -> int:
        return len(self.queue)

    def take(self) -> int:
        self.left -= 1
        self.used += 1
        self.total += 1
        return self.generation


class RedisLimiter(SharesRedis):
    """Per-brand rate limits shared through Redis; see the module docstring.

    ``rate_limits`` is a :class:`~hm_async.RateLimits` or a ``{brand: requests per
    second}`` mapping (the *total* for all workers). Use one instance per event loop.
    """

    def __init__(
        self,
        url: str,
        rate_limits: RateLimits | Mapping[str, float] | None = None,
        *,
        key_prefix: str = "hm_async:limits:",
        on_redis_error: OnRedisError = "degrade",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        busy_lease_seconds: float = DEFAULT_BUSY_LEASE_SECONDS,
        idle_lease_seconds: float = DEFAULT_IDLE_LEASE_SECONDS,
        max_lease: int = DEFAULT_MAX_LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limits is None or isinstance(rate_limits, RateLimits):
            self.limits = rate_limits or RateLimits()
        else:
            self.limits = RateLimits(per_brand=rate_limits)
        if not (0 < busy_lease_seconds <= lease_seconds <= idle_lease_seconds <= 1.0
                and max_lease >= 1):
            raise ValueError("need 0 < busy_lease_seconds <= lease_seconds <= "
                             "idle_lease_seconds <= 1 and max_lease >= 1")
        self._link = RedisLink(url, on_redis_error=on_redis_error, what="rate limiter")
        self._prefix = key_prefix
        self._lease_seconds = lease_seconds
        self._busy_lease_seconds = busy_lease_seconds
        self._idle_lease_seconds = idle_lease_seconds
        self._max_lease = max_lease
        self._clock = clock
        self._worker = secrets.token_hex(8)
        self._brands: dict[str, _Brand] = {}
        self._lease = self._link.client.register_script(LEASE)
        self._cut = self._link.client.register_script(CUT)
        self._background: set[asyncio.Task[None]] = set()
        self._fallback: RateLimiterRegistry | None = None
        self._workers_seen = 1
        self.round_trips = 0  # Redis calls made (leases and cuts), for benchmarks
        self.late_grants = 0  # grants whose waiter resumed after their lease had ended

    # -- state ----------------------------------------------------------------------------
    def _brand(self, brand: str) -> _Brand:
        b = self._brands.get(brand)
        if b is None:
            b = self._brands[brand] = _Brand(brand, self.limits, self._lease_seconds,
                                             self._max_lease)
        return b

    # -- the RateLimiter protocol ---------------------------------------------------------
    def try_acquire(self, brand: str) -> int | None:
        """A grant from the current lease without waiting, or None (then ``acquire``)."""
        fallback = self._fallback
        if fallback is not None:
            return fallback.try_acquire(brand)
        b = self._brands.get(brand)
        if b is not None and b.left > 0 and not b.waiting:
            now = self._clock()
            if b.start <= now < b.end and now >= b.paused_until:
                return b.take()
        return None

    async def acquire(self, brand: str) -> int:
        """Wait, first come first served across all workers, until ``brand`` may send."""
        if self._fallback is not None:
            return await self._fallback.acquire(brand)
        b = self._brand(brand)
        granted = self.try_acquire(brand)
        if granted is not None:
            return granted
        loop = asyncio.get_running_loop()
        first = False
        while True:
            waiter: asyncio.Future[tuple[int, float]] = loop.create_future()
            if first:
                b.queue.appendleft(waiter)  # it was its turn: it keeps its place
            else:
                b.queue.append(waiter)
            if b.pump is None:
                b.pump = loop.create_task(self._pump(b), name=f"hm_async lease {brand}")
            generation, end = await waiter
            # A grant is only good until its lease ends (the window proof counts on it): a
            # task that resumed too late (a busy loop, a descheduled process) asks again.
            if self._clock() < end:
                return generation
            b.late += 1
            self.late_grants += 1
            first = True

    async def _pump(self, b: _Brand) -> None:
        """The one task per brand that takes leases and hands their grants to the waiters in
        arrival order, all grants of a lease in one go (waking them one by one through a
        lock would cost a loop iteration per grant, and late grants expire)."""
        clock = self._clock
        queue = b.queue
        try:
            while queue:
                if queue[0].done():  # a cancelled waiter
                    _ = queue.popleft()
                    continue
                if self._fallback is not None:
                    generation = await self._fallback.acquire(b.name)
                    _give(queue, (generation, math.inf))
                    continue
                now = clock()
                if now < b.paused_until:
                    await asyncio.sleep(b.paused_until - now)
                    continue
                if b.left > 0 and now < b.end:
                    if now < b.start:
                        await asyncio.sleep(b.start - now)
                        continue
                    while b.left > 0 and _give(queue, (b.generation, b.end)):
                        b.take()
                    continue
                await self._take_lease(b)
        except SharedStateError as exc:  # on_redis_error="fail": every waiter learns it
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
        finally:
            b.pump = None
            if queue:  # cancelled: the waiters must not hang
                for waiter in queue:
                    waiter.cancel()
                queue.clear()

    async def _take_lease(self, b: _Brand) -> None:
        """One round trip: the next lease of ``b`` (or degrade/raise if Redis is gone)."""
        # Ask for what the last lease showed this worker uses: a worker with little demand
        # for a brand does not hold grants the others could use.
        if b.used >= b.want or b.start == -math.inf:
            b.want = min(b.cap, b.want * 2)
        else:
            b.want = max(1, min(b.cap, max(b.used * 2, b.waiting)))
        successes, b.successes = b.successes, 0
        limits = self.limits
        # How long the lease lasts: while the limit does not bind, long (few round trips;
        # its length costs nothing); when it binds, short, and shortest when requests are
        # queued for all of it and take its grants at once (the window rule charges every
        # lease its whole length, see _limiter_scripts).
        if not b.binding:
            length = self._idle_lease_seconds
        elif b.waiting >= b.want:
            length = self._busy_lease_seconds
        else:
            length = self._lease_seconds
        args: list[str | int] = [b.mode, repr(b.rate if b.mode == _FIXED else 0.0), b.want,
                repr(length), repr(WINDOW_GUARD), successes, self._worker,
                repr(limits.adaptive_start), repr(limits.adaptive_min),
                repr(limits.adaptive_max or 0.0), repr(SLOW_START_GAIN)]
        keys = [self._key(b.name, "leases"), self._key(b.name, "state"),
                self._prefix + "workers"]
        sent = self._clock()
        try:
            self.round_trips += 1
            answer = await self._lease(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            self._degrade(exc)
            return
        self._link.answered()
        received = self._clock()
        delay = float(answer[0])
        b.start = received + delay
        b.end = sent + delay + length
        b.left = int(answer[1])
        # Redis made us wait, or the window is more than half full: the limit binds, or
        # soon will (long leases would then cost throughput).
        b.binding = b.mode != _UNLIMITED and (delay > 0.0 or float(answer[6]) > 0.5)
        b.used = 0
        b.marks.append((received, b.total))
        b.generation = int(answer[2])
        self._workers_seen = max(1, int(answer[3]))
        if b.mode == _ADAPTIVE:
            b.rate = float(answer[4])
        paused_for = float(answer[5])
        if paused_for > 0:
            b.paused_until = max(b.paused_until, received + paused_for)

    def on_success(self, brand: str) -> None:
        """Count an accepted request; adaptive brands report it with their next lease."""
        if self._fallback is not None:
            self._fallback.on_success(brand)
            return
        b = self._brands.get(brand)
        if b is not None:
            b.successes += 1

    def on_rate_limited(self, brand: str, retry_after: float | None = None, *,
                        generation: int | None = None) -> None:
        """A 429: pause ``brand`` here at once and, through Redis, for every worker."""
        if self._fallback is not None:
            self._fallback.on_rate_limited(brand, retry_after, generation=generation)
            return
        b = self._brand(brand)
        pause = DEFAULT_PAUSE if retry_after is None else min(max(retry_after, 0.0),
                                                              MAX_RETRY_AFTER)
        b.rate_limited += 1
        b.paused_until = max(b.paused_until, self._clock() + pause)
        b.left = 0  # the rest of this lease would land inside the pause
        task = asyncio.get_running_loop().create_task(
            self._report_cut(b, pause, generation), name="hm_async shared 429 pause")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _report_cut(self, b: _Brand, pause: float, generation: int | None) -> None:
        limits = self.limits
        args: list[str | int] = [repr(pause), -1 if generation is None else generation, b.mode,
                repr(limits.adaptive_start), repr(limits.adaptive_min),
                repr(limits.adaptive_max or 0.0), repr(DECREASE), repr(INCREASE),
                repr(CUT_HOLDOFF)]
        try:
            self.round_trips += 1
            await self._cut(keys=[self._key(b.name, "state")], args=args)
        except REDIS_ERRORS as exc:
            try:
                self._degrade(exc)
            except SharedStateError:
                return  # "fail" mode: nobody awaits this task; the next acquire raises

    def waiting(self, brand: str) -> int:
        """Requests of ``brand`` queued in this worker right now."""
        if self._fallback is not None:
            return self._fallback.waiting(brand)
        b = self._brands.get(brand)
        return 0 if b is None else b.waiting

    def snapshot(self) -> dict[str, BrandRateState]:
        """This worker's view of every brand it used (for progress displays)."""
        if self._fallback is not None:
            return self._fallback.snapshot()
        now = self._clock()
        return {
            name: BrandRateState(
                brand=name, mode=_MODE_NAMES[b.mode],
                allowed_rate=None if b.mode == _UNLIMITED else b.rate,
                achieved_rate=b.achieved(now), waiting=b.waiting,
                paused_for=max(0.0, b.paused_until - now), requests=b.total,
                rate_limited=b.rate_limited)
            for name, b in self._brands.items()
        }

    # -- faults -------------------------------------------------------------------------
    def _degrade(self, exc: BaseException) -> None:
        """Redis is gone: raise (``fail``) or pace in-process with our share of each limit."""
        self._link.lost(exc)
        if self._fallback is None:
            self._fallback = RateLimiterRegistry(_share(self.limits, self._workers_seen),
                                                 clock=self._clock)

    def _key(self, brand: str, what: str) -> str:
        return f"{self._prefix}{brand}:{what}"

    # -- lifecycle ------------------------------------------------------------------------
    async def aclose(self) -> None:
        tasks = [*self._background, *(b.pump for b in self._brands.values() if b.pump)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await super().aclose()


    def __repr__(self) -> str:
        return (f"RedisLimiter(url={self._link.url!r}, limits={self.limits!r}, "
                f"degraded={self.degraded})")


def _give(queue: deque[asyncio.Future[tuple[int, float]]], grant: tuple[int, float]) -> bool:
    """Wake the first waiter still waiting with a grant; False if there is none."""
    while queue:
        waiter = queue.popleft()
        if not waiter.done():
            waiter.set_result(grant)
            return True
    return False


def _share(limits: RateLimits, workers: int) -> RateLimits:
    """Each worker's part of ``limits`` when ``workers`` pace apart (degraded mode)."""
    if workers <= 1:
        return limits
    default = None if limits.default is None else limits.default / workers
    return RateLimits(
        {brand: rate / workers for brand, rate in limits.per_brand.items()},
        default=default,
        adaptive_start=max(limits.adaptive_min, limits.adaptive_start / workers),
        adaptive_min=limits.adaptive_min,
        adaptive_max=None if limits.adaptive_max is None
        else max(limits.adaptive_max / workers, limits.adaptive_start / workers,
                 limits.adaptive_min),
    )

