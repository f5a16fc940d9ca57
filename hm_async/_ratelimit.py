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

Waiting is first come, first served, with one pacing timer per brand: waiters queue in a
FIFO of futures. Grants are handed out in batches: whenever the rules allow (the brand's
one timer fires, armed for the moment of the next grant, or a waiter arrives at an empty
queue), one pass reads the clock, checks the rules (a 429 may have paused the brand
meanwhile) and grants the head waiters as many requests as the rules allow at that
reading, each future carrying its generation. All of them resume together in the event
loop's next iteration (no sleep in between; ``WINDOW_GUARD`` covers that lag, as it covers
the time to the send), so a tick's requests go out in one burst and their answers come
back in one or two wake-ups, instead of a wake-up per grant. A newcomer is granted at
once only when nobody waits. Per grant that is one future and at most one timer per
brand, instead of the lock, aiolimiter's future and timer and a sleep per request of the
first design. A fixed brand's bucket is read on a grid of ``RateLimits.pacing_tick``
seconds (``PACING_TICK`` in ``_config``, 20 ms by default), as of the last grid point, so a
newcomer between two points gets only what was free at the last one (the bucket's slack of
at least one tick absorbs the rounding, so the long-run rate is kept; the one-second
window rule is not rounded, see :class:`_Brand`). A brand at its limit therefore sends
about ``R * tick`` requests per grid point instead of one each time a token accrues (each a
wake-up of its own), and the brands of a fleet poll wake the event loop together: a poll
at 300/s for each of 8 brands makes 365 instead of 540 passes of the event loop, 130
instead of 162 of them after a sleep (its CPU time moved by less than the machines'
noise; ``benchmarks/fanout.py``, ``benchmarks/pacing_tick.py``, ``benchmarks/pacing_cost.py``).

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
from collections import deque
from collections.abc import Callable

import msgspec

from ._config import ADAPTIVE_MIN, ADAPTIVE_START, MAX_FIXED_RATE, PACING_TICK, RateLimits
from ._retry import MAX_RETRY_AFTER

# RateLimits and the adaptive defaults live in _config with the other settings; they are
# re-exported here for the code that always imported them from this module.
__all__ = ["ADAPTIVE_MIN", "ADAPTIVE_START", "MAX_FIXED_RATE", "PACING_TICK", "BrandRateState",
           "RateLimiterRegistry", "RateLimits"]

DEFAULT_PAUSE = 1.0
SLOW_START_GAIN = 0.5
DECREASE = 0.8
INCREASE = 0.05
#: Without a generation, further 429s do not cut again until this long after the pause.
CUT_HOLDOFF = 1.0
#: Extra spacing added to the sliding-window rule, so an observer that reads the clock a
#: little after the grant (the caller, or the server after the request crossed localhost)
#: still never sees ``R + 1`` requests within one second. Costs 2% of the rate at most.
WINDOW_GUARD = 0.02
#: Minimum span of post-pause traffic before the accepted rate is trusted for a cut.
MIN_MEASURE_SPAN = 0.5

#: In ticks: a time within this of a grid point counts as on it (the bucket's time is a
#: float sum of ``1/R`` steps, the clock's a float too); 20 ns at the default tick, far
#: inside ``WINDOW_GUARD``.
_GRID_TOLERANCE = 1e-6

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

    Proof of the fixed-mode window bound. Grants of a brand are made one at a time on the
    event loop's thread, so their clock readings ``t_0 <= t_1 <= ...`` are increasing. Let
    ``n = max(1, floor(R))`` and ``W = 1`` if ``R >= 1`` else ``1/R``. A grant is only made when
    ``t_i >= t_{i-n} + W + WINDOW_GUARD`` (``log`` holds the last ``n`` grant times). If a
    half-open window ``[s, s+W)`` held ``n+1`` grants ``t_j..t_{j+n}``, then
    ``t_{j+n} - t_j < W``, contradicting the rule. Hence no one-second window holds more than
    ``n <= R`` grants. A GCRA bucket in front (theoretical arrival time ``tat``, one grant
    per ``1/R``, slack ``tau = max(1/R, tick)``, i.e. a capacity of about
    ``max(2, R * tick + 1)``), read on the tick grid (a grant is allowed from the first
    grid point at or after the time the bucket allows it; rounding up only delays a
    grant), spreads
    the grants evenly and lets the slack absorb event-loop timer lag and the tick rounding;
    with no slack every late wake-up would be lost for good (measured: 5% under load at 20/s,
    30% at 200/s), and aiolimiter's usual ``AsyncLimiter(R, 1)`` starts empty and lets up to
    ``2R`` through in its first second — the log rule caps both. Adaptive brands have no
    slack (a grant at most every ``1/rate`` after the last one, at the current rate).

    The log rule is not rounded to the grid. Tick batches of ``R * tick`` fill a second
    exactly, so the batch a second after another is held back by ``WINDOW_GUARD``; rounded up
    to the grid it would wait a whole tick, losing a tick's worth of grants every second
    (20% of the rate at a 0.25 s tick). Unrounded it waits ``WINDOW_GUARD`` (2%), and the
    brand's later batches follow the window rule, off the grid by as much.
    """

    __slots__ = (
        "ai_step", "first_seen", "generation", "grants", "idx", "last_grant", "log", "log_i",
        "max_rate", "min_rate", "mode", "name", "no_cut_until", "paused_until", "queue", "rate",
        "rate_limited", "recover_to", "slack", "slot", "slow_start", "succ", "tat", "tick",
        "timer", "total", "waiting", "window",
    )

    def __init__(self, name: str, limits: RateLimits, now: float) -> None:
        self.name = name
        limit = limits.limit_for(name)
        self.log: list[float] | None = None
        self.log_i = 0
        self.window = 1.0
        self.tat = -math.inf
        self.slack = 0.0
        self.tick = limits.pacing_tick
        if limit is None:
            self.mode = _ADAPTIVE
            self.rate = limits.adaptive_start
        elif math.isinf(limit):
            self.mode = _UNLIMITED
            self.rate = math.inf
        else:
            self.mode = _FIXED
            self.rate = limit
            self.slack = max(1.0 / limit, self.tick)
            self.log = [-math.inf] * max(1, math.floor(limit))
            self.window = 1.0 if limit >= 1.0 else 1.0 / limit
        self.min_rate = limits.adaptive_min
        self.max_rate = math.inf if limits.adaptive_max is None else limits.adaptive_max
        self.slow_start = True
        self.recover_to = 0.0
        self.ai_step = 0.0
        self.queue: deque[asyncio.Future[int]] = deque()
        self.timer: asyncio.TimerHandle | None = None
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

    def next_grant_at(self) -> float:
        """The earliest clock reading at which the pacing rules allow the next grant."""
        at = self.paused_until
        mode = self.mode
        if mode == _FIXED:
            spaced = self.tat - self.slack
            if spaced > at:  # the bucket, read on the tick grid (see the class docstring)
                tick = self.tick
                at = (math.ceil(spaced / tick - _GRID_TOLERANCE) - _GRID_TOLERANCE) * tick
            log = self.log
            assert log is not None
            windowed = log[self.log_i] + self.window + WINDOW_GUARD
            if windowed > at:
                at = windowed
        elif mode == _ADAPTIVE:
            spaced = self.last_grant + 1.0 / self.rate
            if spaced > at:
                at = spaced
        return at

    def take(self, now: float) -> int:
        """A paced grant at ``now`` (the rules allow it): bucket and log, then the counts."""
        if self.mode == _FIXED:
            tat = self.tat
            self.tat = (tat if tat > now else now) + 1.0 / self.rate
            log = self.log
            assert log is not None
            log[self.log_i] = now
            self.log_i = (self.log_i + 1) % len(log)
        return self.grant(now)

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
    registry per event loop (a brand's queue and timer belong to the loop that used it).
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
        """Grant at once, without a coroutine, when nobody waits for ``brand`` and its pause
        and pacing allow a request now (always so for an unpaced brand that is not paused).

        Returns the generation like :meth:`acquire`, or None: then await :meth:`acquire`.
        """
        b = self._brands.get(brand)
        if b is not None and not b.waiting:
            now = self._clock()
            if b.mode == _UNLIMITED:
                if now >= b.paused_until:
                    return b.grant(now)
            elif now >= b.next_grant_at():
                return b.take(now)
        return None

    async def acquire(self, brand: str) -> int:
        """Wait, first come first served, until ``brand`` may send one request.

        Returns the brand's rate generation; pass it to :meth:`on_rate_limited` so that 429s
        of requests sent before the last cut do not cut the rate again.
        """
        b = self._brands.get(brand)
        if b is None:
            b = self._brand(brand)
        if not b.waiting:
            now = self._clock()
            if b.mode == _UNLIMITED:
                if now >= b.paused_until:
                    return b.grant(now)
            elif now >= b.next_grant_at():
                return b.take(now)
        return await self._acquire_slow(b)

    async def _acquire_slow(self, b: _Brand) -> int:
        """Queue for a grant; granted by :meth:`_grant_ready` (see the module docstring)."""
        loop = asyncio.get_running_loop()
        queue = b.queue
        waiter: asyncio.Future[int] = loop.create_future()
        queue.append(waiter)
        b.waiting += 1
        try:
            if len(queue) == 1:
                self._grant_ready(b, loop)
            return await waiter
        except BaseException:
            self._leave(b, waiter)
            raise
        finally:
            b.waiting -= 1

    def _grant_ready(self, b: _Brand, loop: asyncio.AbstractEventLoop) -> None:
        """Grant the waiters at the head of ``b``'s queue as many requests as the rules
        allow now, all in this one pass, and arm the brand's one timer for the next grant.

        The waiters granted here resume together in the event loop's next iteration, so a
        tick's grants of every brand go out in one burst and their answers are read in one
        or two wake-ups, instead of one wake-up per grant.
        """
        queue = b.queue
        now = self._clock()
        while queue:
            at = b.next_grant_at()
            if now < at:
                # (a fixed brand's `at` is on the tick grid unless its window rule binds)
                when = loop.time() + (at - now)
                timer = b.timer
                if timer is not None:
                    if timer.when() <= when:
                        return
                    timer.cancel()
                b.timer = loop.call_at(when, self._wake, b, loop)
                return
            waiter = queue.popleft()
            if not waiter.done():  # (a cancelled waiter leaves by itself)
                waiter.set_result(b.take(now))
        if b.timer is not None:
            b.timer.cancel()
            b.timer = None

    def _wake(self, b: _Brand, loop: asyncio.AbstractEventLoop) -> None:
        b.timer = None
        self._grant_ready(b, loop)

    @staticmethod
    def _leave(b: _Brand, waiter: asyncio.Future[int]) -> None:
        """A waiter gives up (cancelled) before its grant: out of the queue. A grant it was
        already given is spent (the rate bound holds; only throughput is lost)."""
        queue = b.queue
        try:
            queue.remove(waiter)
        except ValueError:  # already granted and removed
            return
        if not queue and b.timer is not None:
            b.timer.cancel()
            b.timer = None

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
