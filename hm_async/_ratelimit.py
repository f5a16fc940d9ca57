"""Per-brand rate limits: HM throttles each carmaker's backend apart, so one brand's 429s
must never slow the others, and a fleet job should run each brand as fast as it is allowed.

Three modes per brand (dashed spelling; callers normalise with ``normalize_brand``):

* **fixed** — a configured limit ``R`` (per brand, or the default). Guarantee: no half-open
  one-second window ``[s, s+1)`` ever holds more than ``R`` grants (``floor(R)`` for a
  fractional ``R``; for ``R < 1`` at most one grant per ``1/R`` seconds), while the long-run
  rate stays within ~1% of ``R`` even on a busy event loop. See :class:`_Brand` for the proof.
* **adaptive** — no limit configured: AIMD. Start at ``adaptive_start`` and grow
  multiplicatively until the first 429 (slow start), then on a 429 cut to ``DECREASE`` times the
  rate the server actually accepted, at most once per generation (requests already in flight
  when the rate was cut do not cut it again), grow back multiplicatively to ``DECREASE`` times
  the rate before the cut (so a short 429 storm does not cost minutes of throughput), and
  from there linearly by ``INCREASE`` of the cut rate per second. The server's token bucket
  is refilled during the pause, so the sawtooth sits near the allowed rate with one short
  burst of 429s per cycle.
* **unlimited** — a limit of ``math.inf``: no pacing at all; the hot path is a dict lookup, a
  clock read and two integer increments.

Every mode honours a 429's ``Retry-After`` by pausing that brand only (``DEFAULT_PAUSE`` when
the server gave none); a fixed limit is the operator's word and is not lowered.

Waiting is first come, first served: aiolimiter (1.3) orders its waiters fairly, but a
newcomer that finds capacity free can barge past a waiter that was just woken, which then
re-queues at the back. So each brand puts a FIFO ``asyncio.Lock`` in
front of its limiter: at most one task is ever inside the ``AsyncLimiter``, and asyncio's
Lock hands itself to the oldest waiter (a newcomer never takes it while others wait).

Constants and why:

* ``DEFAULT_PAUSE = 1.0`` s: RFC 9110 Retry-After is whole seconds, so 1 s is the shortest
  wait a server can ask for; a per-second token bucket is full again after it.
* ``ADAPTIVE_START = 10`` req/s: HM publishes no per-brand limits; 10/s is polite for any
  OEM backend and slow start (``SLOW_START_GAIN = 0.5`` per success, i.e. the rate doubles
  about every 1.4 s while the server accepts everything) reaches 100/s in ~5 s.
* ``DECREASE = 0.8``: the cut is applied to the *accepted* rate measured since the last pause
  (not to the offered rate), which in saturation is the server's limit; 20% headroom lets
  the server's bucket refill without wasting half the throughput as TCP's 0.5 would.
* ``INCREASE = 0.05``: grow by 5% of the post-cut rate per second, so a 20/s brand takes
  ~4 s to return to its limit and a few more to drain a one-second burst allowance: about
  one 429 episode per 10 s.
* ``ADAPTIVE_MIN = 0.5`` req/s: a brand never stalls completely on its own estimate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import msgspec
from aiolimiter import AsyncLimiter

from ._config import ADAPTIVE_MIN, ADAPTIVE_START, MAX_FIXED_RATE, RateLimits
from ._retry import MAX_RETRY_AFTER

# RateLimits and the adaptive defaults live in _config with the other settings; they are
# re-exported here for the code that always imported them from this module.
__all__ = ["ADAPTIVE_MIN", "ADAPTIVE_START", "MAX_FIXED_RATE", "BrandRateState",
           "RateLimiterRegistry", "RateLimits"]

DEFAULT_PAUSE = 1.0
SLOW_START_GAIN = 0.5
DECREASE = 0.8
INCREASE = 0.05
#: Without a generation, further 429s do not cut again until this long after the pause.
CUT_HOLDOFF = 1.0
#: An adaptive brand's limiter is rebuilt only when its rate moved by more than this.
REBUILD_TOLERANCE = 0.02
#: Extra spacing added to the sliding-window rule, so an observer that reads the clock a
#: little after the grant (the caller, or the server after the request crossed localhost)
#: still never sees ``R + 1`` requests within one second. Costs 2% of the rate at most.
WINDOW_GUARD = 0.02
#: Minimum span of post-pause traffic before the accepted rate is trusted for a cut.
MIN_MEASURE_SPAN = 0.5

_SLOTS_PER_SECOND = 10
_SLOTS = 20  # two seconds of history

_FIXED, _ADAPTIVE, _UNLIMITED = 0, 1, 2
_MODE_NAMES = ("fixed", "adaptive", "unlimited")


class BrandRateState(msgspec.Struct, frozen=True, kw_only=True):
    """One brand at one moment, for progress displays.

    ``allowed_rate`` is None when unlimited; ``achieved_rate`` counts grants over the last
    two seconds; ``paused_for`` is the seconds left of a 429 pause; ``rate_limited`` counts
    the 429s reported for the brand.
    """

    brand: str
    mode: str
    allowed_rate: float | None
    achieved_rate: float
    waiting: int
    paused_for: float
    requests: int
    rate_limited: int


class _Brand:
    """State of one brand; mutated on the event loop thread only.

    Proof of the fixed-mode window bound. Grants of a brand are serialised by its lock, so
    their clock readings ``t_0 <= t_1 <= ...`` are increasing. Let ``n = max(1, floor(R))``
    and ``W = 1`` if ``R >= 1`` else ``1/R``. A grant is only made when
    ``t_i >= t_{i-n} + W + WINDOW_GUARD`` (``log`` holds the last ``n`` grant times). If a
    half-open window ``[s, s+W)`` held ``n+1`` grants ``t_j..t_{j+n}``, then
    ``t_{j+n} - t_j < W``, contradicting the rule. Hence no one-second window holds more than
    ``n <= R`` grants. The aiolimiter bucket in front (capacity 2, leak ``R``/s) spreads the
    grants evenly at ``1/R`` and lets one slot of slack absorb event-loop timer lag; with
    capacity 1 every late wake-up would be lost for good (measured: 5% under load at 20/s,
    30% at 200/s), and aiolimiter's usual ``AsyncLimiter(R, 1)`` starts empty and lets up to
    ``2R`` through in its first second — the log rule caps both.
    """

    __slots__ = (
        "ai_step", "first_seen", "generation", "grants", "idx", "last_grant", "limiter",
        "limiter_rate", "lock", "log", "log_i", "max_rate", "min_rate", "mode", "name",
        "no_cut_until", "paused_until", "rate", "rate_limited", "recover_to", "slot",
        "slow_start", "succ",
        "total", "waiting", "window",
    )

    def __init__(self, name: str, limits: RateLimits, now: float) -> None:
        self.name = name
        limit = limits.limit_for(name)
        self.limiter: AsyncLimiter | None = None
        self.limiter_rate = 0.0
        self.log: list[float] | None = None
        self.log_i = 0
        self.window = 1.0
        if limit is None:
            self.mode = _ADAPTIVE
            self.rate = limits.adaptive_start
        elif math.isinf(limit):
            self.mode = _UNLIMITED
            self.rate = math.inf
        else:
            self.mode = _FIXED
            self.rate = limit
            self.limiter = AsyncLimiter(2, 2.0 / limit)
            self.limiter_rate = limit
            self.log = [-math.inf] * max(1, math.floor(limit))
            self.window = 1.0 if limit >= 1.0 else 1.0 / limit
        self.min_rate = limits.adaptive_min
        self.max_rate = math.inf if limits.adaptive_max is None else limits.adaptive_max
        self.slow_start = True
        self.recover_to = 0.0
        self.ai_step = 0.0
        self.lock: asyncio.Lock | None = None
        self.waiting = 0
        self.paused_until = -math.inf
        self.no_cut_until = -math.inf
        self.generation = 0
        self.rate_limited = 0
        self.total = 0
        self.first_seen = now
        self.last_grant = -math.inf
        self.slot = int(now * _SLOTS_PER_SECOND)
        self.idx = self.slot % _SLOTS
        self.grants = [0] * _SLOTS
        self.succ = [0] * _SLOTS

    def grant(self, now: float) -> int:
        """Record one grant at ``now``; returns the rate generation it was granted under."""
        s = int(now * _SLOTS_PER_SECOND)
        if s != self.slot:
            self.roll(s)
        self.grants[self.idx] += 1
        self.total += 1
        self.last_grant = now
        return self.generation

    def roll(self, slot: int) -> None:
        """Advance the history ring to ``slot``, zeroing the slots skipped."""
        steps = slot - self.slot
        if steps <= 0:
            return
        grants, succ = self.grants, self.succ
        for k in range(self.slot + 1, self.slot + 1 + min(steps, _SLOTS)):
            i = k % _SLOTS
            grants[i] = 0
            succ[i] = 0
        self.slot = slot
        self.idx = slot % _SLOTS

    def rate_since(self, counts: list[int], now: float, since: float) -> tuple[float, float]:
        """(events per second, span in seconds) over ``[max(since, now - 2 s), now]``."""
        self.roll(int(now * _SLOTS_PER_SECOND))
        first = max(int(since * _SLOTS_PER_SECOND), self.slot - _SLOTS + 1)
        if first > self.slot:
            return 0.0, 0.0
        total = sum(counts[k % _SLOTS] for k in range(first, self.slot + 1))
        span = now - first / _SLOTS_PER_SECOND
        return total / max(span, 1.0 / _SLOTS_PER_SECOND), span


class RateLimiterRegistry:
    """Per-brand limiters built on first use from a :class:`RateLimits`.

    ``clock`` must be the clock asyncio sleeps on (the default event loop uses
    ``time.monotonic``): waits are computed as differences of its readings. Create one
    registry per event loop (aiolimiter binds to the loop that first uses it).
    """

    __slots__ = ("_brands", "_clock", "limits")

    def __init__(
        self, limits: RateLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits if limits is not None else RateLimits()
        self._clock = clock
        self._brands: dict[str, _Brand] = {}

    def _brand(self, brand: str) -> _Brand:
        b = self._brands.get(brand)
        if b is None:
            b = self._brands[brand] = _Brand(brand, self.limits, self._clock())
        return b

    def try_acquire(self, brand: str) -> int | None:
        """Grant at once, without a coroutine, when ``brand`` is unpaced and not paused.

        Returns the generation like :meth:`acquire`, or None: then await :meth:`acquire`.
        """
        b = self._brands.get(brand)
        if b is not None and b.mode == _UNLIMITED and not b.waiting:
            now = self._clock()
            if now >= b.paused_until:
                return b.grant(now)
        return None

    async def acquire(self, brand: str) -> int:
        """Wait, first come first served, until ``brand`` may send one request.

        Returns the brand's rate generation; pass it to :meth:`on_rate_limited` so that 429s
        of requests sent before the last cut do not cut the rate again.
        """
        b = self._brands.get(brand)
        if b is None:
            b = self._brand(brand)
        if b.mode == _UNLIMITED and not b.waiting:
            now = self._clock()
            if now >= b.paused_until:
                return b.grant(now)
        return await self._acquire_slow(b)

    async def _acquire_slow(self, b: _Brand) -> int:
        lock = b.lock
        if lock is None:
            lock = b.lock = asyncio.Lock()
        b.waiting += 1
        try:
            async with lock:
                return b.grant(await self._wait_turn(b))
        finally:
            b.waiting -= 1

    async def _wait_turn(self, b: _Brand) -> float:
        """Run by the lock holder only: returns the grant time once pause and pacing allow."""
        clock = self._clock
        while True:
            now = clock()
            delay = b.paused_until - now
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if b.mode == _ADAPTIVE:
                rate = b.rate
                if abs(rate - b.limiter_rate) > REBUILD_TOLERANCE * b.limiter_rate:
                    # A fresh bucket would grant at once: keep the spacing from the last
                    # grant by hand, then the new bucket takes over.
                    b.limiter = AsyncLimiter(1, 1.0 / rate)
                    b.limiter_rate = rate
                    delay = b.last_grant + 1.0 / rate - now
                    if delay > 0:
                        await asyncio.sleep(delay)
                        continue
            limiter = b.limiter
            if limiter is None:  # unlimited, was only waiting for a pause
                return now
            await limiter.acquire()
            log = b.log
            if log is not None:
                while (delay := log[b.log_i] + b.window + WINDOW_GUARD - clock()) > 0:
                    await asyncio.sleep(delay)
            now = clock()
            if now < b.paused_until:
                continue  # a 429 arrived while we waited: this slot is forfeit
            if log is not None:
                log[b.log_i] = now
                b.log_i = (b.log_i + 1) % len(log)
            return now

    def on_success(self, brand: str) -> None:
        """Count an accepted request; adaptive brands speed up a little (hot path)."""
        b = self._brands.get(brand)
        if b is None:
            return
        b.succ[b.idx] += 1
        if b.mode == _ADAPTIVE:
            rate = b.rate
            if b.slow_start or rate < b.recover_to:
                rate += SLOW_START_GAIN
            else:
                rate += b.ai_step / rate
            b.rate = rate if rate < b.max_rate else b.max_rate

    def on_rate_limited(
        self, brand: str, retry_after: float | None = None, *, generation: int | None = None
    ) -> None:
        """A 429 for ``brand``: pause it, and slow it down if it is adaptive.

        ``retry_after`` is the server's wait in seconds (``DEFAULT_PAUSE`` if None, capped at
        ``MAX_RETRY_AFTER``); ``generation`` is what :meth:`acquire` returned for the request.
        """
        b = self._brand(brand)
        now = self._clock()
        b.rate_limited += 1
        pause = DEFAULT_PAUSE if retry_after is None else min(max(retry_after, 0.0),
                                                              MAX_RETRY_AFTER)
        previous_pause_end = b.paused_until
        b.paused_until = max(b.paused_until, now + pause)
        if b.mode != _ADAPTIVE:
            return
        if generation is not None:
            if generation != b.generation:
                return  # sent before the last cut: that cut already accounted for it
        elif now < b.no_cut_until:
            return
        accepted, span = b.rate_since(b.succ, now, max(b.first_seen, previous_pause_end))
        basis = b.rate
        if span >= MIN_MEASURE_SPAN and accepted > 0:
            basis = min(basis, accepted)
        rate = max(b.min_rate, min(b.max_rate, basis * DECREASE))
        # After a burst of 429s the brand grows back fast (slow start) to 80% of the rate it
        # had before, then probes slowly; a 429 while still below that target means the
        # server's limit really dropped, so the target drops with it.
        pre_cut = b.rate
        if pre_cut < b.recover_to:
            b.recover_to = pre_cut * DECREASE
        elif not math.isinf(pre_cut):
            b.recover_to = max(b.recover_to, pre_cut * DECREASE)
        b.rate = rate
        b.slow_start = False
        b.ai_step = rate * INCREASE
        b.generation += 1
        b.no_cut_until = b.paused_until + CUT_HOLDOFF

    def waiting(self, brand: str) -> int:
        """Requests of ``brand`` queued for a slot right now (0 for a brand not seen yet)."""
        b = self._brands.get(brand)
        return 0 if b is None else b.waiting

    def rate(self, brand: str) -> float | None:
        """The rate ``brand`` is allowed now (requests per second); None if unlimited."""
        b = self._brand(brand)
        return None if b.mode == _UNLIMITED else b.rate

    def snapshot(self) -> dict[str, BrandRateState]:
        """Every brand seen so far; cheap enough to call a few times a second."""
        now = self._clock()
        out: dict[str, BrandRateState] = {}
        for name, b in self._brands.items():
            achieved, _ = b.rate_since(b.grants, now, b.first_seen)
            out[name] = BrandRateState(
                brand=name,
                mode=_MODE_NAMES[b.mode],
                allowed_rate=None if b.mode == _UNLIMITED else b.rate,
                achieved_rate=achieved,
                waiting=b.waiting,
                paused_for=max(0.0, b.paused_until - now),
                requests=b.total,
                rate_limited=b.rate_limited,
            )
        return out
