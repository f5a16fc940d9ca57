"""What pacing costs in the client's own code: hm.poll paced vs unpaced, with idle gaps skipped.

``fanout.py`` measures the paced poll against nginx in real time. Between two pacing ticks the
process sleeps, and on a shared virtual machine every sleep costs CPU time of its own
(``idle_tax.py``; ``fanout.py``'s control row, the bare aiohttp loop paced by a plain
``asyncio.sleep``, costs 1.15-1.5x its unpaced self there). That share moves with the host
and no client can remove it. This script measures the rest, which is ours:

* The GET lane (``hm.transport.lean``) is replaced by an in-process stand-in. It answers every
  GET with a canned vehicle-data body in the event loop's next pass, so no socket is involved:
  the client's Python cost only (the limiter, the scheduler, the waits, the decode).
* The event loop never sleeps. When it would wait for its next timer, its clock is moved on
  by that wait instead. The limiter runs on that clock
  (``HMClient(limiter=RateLimiterRegistry(limits, clock=loop.time))``).
* The token comes from a token store that hands out a fixed token (``HMClient(token_store=)``).

Rows, each against the unpaced poll of the same round (rounds interleaved):

* hm.poll with every brand limited to ``--paced-rate`` (8 brands; default tick, and each
  ``--ticks``);
* a floor: the same poll paced by a minimal limiter (one timer for all brands per tick,
  a credit per brand, a FIFO of futures; no window log, no 429 handling, so not a limiter
  to use). It is what any limiter costs that makes a request wait for its grant in this
  client. Our limiter's cost above it is its own bookkeeping.

The ratio uses the stand-in lane's unpaced cost, which lacks the socket and parsing work of
a real GET. Compare the added µs per VIN with the unpaced poll's CPU per VIN in ``fanout.py``.

Run: ``python benchmarks/pacing_cost.py`` (``--vins``, ``--repeat``, ``--ticks``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import selectors
import time
from collections.abc import Callable, Mapping

from canned_server import BRANDS, canned_vehicles, vehicle_json
from fanout import same_round_difference, same_round_ratio

from hm_async import ClientCredentials, HMClient, RateLimits
from hm_async._access_token import AccessToken
from hm_async._h1_parser import ParsedResponse
from hm_async._ratelimit import RateLimiterRegistry
from hm_async._token_store import TokenFetch
from hm_async.emulator._vehicle_data import VehicleDataSource


def canned_body() -> bytes:
    source = VehicleDataSource(failure_fraction=0.0, update_interval=3600.0)
    return vehicle_json(source, *canned_vehicles(1)[0], "canned")


class StandInLane:
    """Answers every GET in the event loop's next pass, as a socket that is ready would."""

    def __init__(self, body: bytes) -> None:
        self._fields = [(b"Content-Type", b"application/json"),
                        (b"Content-Length", str(len(body)).encode())]
        self._body = body

    def header_block(self, headers: Mapping[str, str]) -> bytes:
        del headers  # nothing is written anywhere
        return b""

    async def get(self, target: str, header_block: bytes, *, total: float | None,
                  connect: float | None, read: float | None) -> ParsedResponse:
        del target, header_block, total, connect, read  # the same answer for every GET
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ParsedResponse] = loop.create_future()
        loop.call_soon(answer.set_result, ParsedResponse(200, self._fields, self._body, True))
        return await answer

    async def aclose(self) -> None:
        return None


class FixedTokenStore:
    """A token store that always has a token (no token endpoint in this benchmark)."""

    degraded = False

    async def obtain(self, fetch: TokenFetch, *, namespace: str, stale: AccessToken | None,
                     rejected: bool = False, clock: Callable[[], float]) -> AccessToken:
        del fetch, namespace, stale, rejected  # never asks a token endpoint
        now = clock()
        return AccessToken("bench-token", generation=0, issued_at=now, expires_at=now + 3600)

    async def aclose(self) -> None:
        return None


class _SkippingSelector(selectors.EpollSelector):
    """Never blocks: a wait for a timer moves the owning loop's clock on instead."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is not None and timeout > 0:
            self.skipped += timeout
        return ready


class GapSkippingLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps over idle gaps: it never sleeps."""

    def __init__(self) -> None:
        self._skipping = _SkippingSelector()
        super().__init__(self._skipping)

    def time(self) -> float:
        return time.monotonic() + self._skipping.skipped


class MinimalLimiter:
    """The floor: one timer per tick for every brand, ``rate * tick`` grants per brand."""

    def __init__(self, rate: float, tick: float) -> None:
        self._per_tick = rate * tick
        self._tick = tick
        self._queues: dict[str, collections.deque[asyncio.Future[int]]] = (
            collections.defaultdict(collections.deque))
        self._credit: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def try_acquire(self, brand: str) -> int | None:
        credit = self._credit.get(brand, self._per_tick)
        if credit >= 1 and not self._queues[brand]:
            self._credit[brand] = credit - 1
            return 0
        return None

    def waiting(self, brand: str) -> int:
        return len(self._queues[brand])

    async def acquire(self, brand: str) -> int:
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[int] = loop.create_future()
        self._queues[brand].append(granted)
        if self._timer is None:
            self._timer = loop.call_at(math.ceil(loop.time() / self._tick) * self._tick,
                                       self._release, loop)
        return await granted

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        for brand, queue in self._queues.items():
            credit = min(self._credit.get(brand, 0.0) + self._per_tick, self._per_tick)
            while queue and credit >= 1:
                queue.popleft().set_result(0)
                credit -= 1
            self._credit[brand] = credit
        self._timer = loop.call_at(loop.time() + self._tick, self._release, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def on_success(self, brand: str) -> None:
        del brand  # (a fixed rate: nothing to learn)

    def on_rate_limited(self, brand: str, retry_after: float | None = None, *,
                        generation: int | None = None) -> None:
        del brand, retry_after, generation  # (the stand-in lane never answers 429)


async def poll(vins: list[tuple[str, str]], body: bytes, concurrency: int,
               make_limiter: Callable[[Callable[[], float]], object]) -> None:
    loop = asyncio.get_running_loop()
    limiter = make_limiter(loop.time)
    async with HMClient(ClientCredentials(client_id="bench", client_secret="bench"),
                        base_url="http://127.0.0.1:9", max_connections=concurrency,
                        token_store=FixedTokenStore(),
                        limiter=limiter) as hm:  # type: ignore[arg-type]
        hm.transport.lean = StandInLane(body)  # type: ignore[assignment]
        failed = 0
        async for result in hm.poll(vins, concurrency=concurrency):
            failed += not result.ok
    if isinstance(limiter, MinimalLimiter):
        limiter.close()
    if failed:
        raise SystemExit(f"{failed} VINs failed; the benchmark needs a clean run")


def cpu_per_vin(vins: list[tuple[str, str]], body: bytes, concurrency: int,
                make_limiter: Callable[[Callable[[], float]], object]) -> tuple[float, float]:
    """(client CPU µs per VIN, seconds of loop clock) for one poll on a gap-skipping loop."""
    loop = GapSkippingLoop()
    try:
        started, cpu = loop.time(), time.process_time()
        loop.run_until_complete(poll(vins, body, concurrency, make_limiter))
        return (time.process_time() - cpu) / len(vins) * 1e6, loop.time() - started
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vins", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--paced-rate", type=float, default=300.0)
    parser.add_argument("--ticks", default="0.1,0.25",
                        help="pacing ticks to measure besides the default (comma-separated)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rate = args.paced_rate
    vins = canned_vehicles(args.vins)
    body = canned_body()

    def registry(limits: RateLimits) -> Callable[[Callable[[], float]], object]:
        return lambda clock: RateLimiterRegistry(limits, clock=clock)

    default_tick = RateLimits().pacing_tick
    rows: dict[str, Callable[[Callable[[], float]], object]] = {
        "unpaced": registry(RateLimits(default=math.inf)),
        f"paced, tick {default_tick:g} s (default)": registry(RateLimits(default=rate)),
    }
    for tick in (float(t) for t in args.ticks.split(",") if t):
        rows[f"paced, tick {tick:g} s"] = registry(RateLimits(default=rate, pacing_tick=tick))
    rows[f"floor: minimal limiter, tick {default_tick:g} s"] = (
        lambda _clock: MinimalLimiter(rate, default_tick))  # (its timers are the loop's)

    cpu_per_vin(vins[:500], body, args.concurrency, rows["unpaced"])  # warm-up, not counted
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    span: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, make in rows.items():
            cpu[name].append((result := cpu_per_vin(vins, body, args.concurrency, make))[0])
            span[name] = result[1]
    base = cpu["unpaced"]
    print(f"{args.vins} VINs of {len(BRANDS)} brands, concurrency {args.concurrency}, paced rows "
          f"at {rate:g} req/s per brand; stand-in GET lane, idle gaps skipped; "
          f"{args.repeat} rounds")
    print(f"{'':40s} {'best µs/VIN':>12s} {'added µs/VIN':>13s} {'ratio':>6s} {'loop s':>7s}")
    for name, values in cpu.items():
        print(f"{name:40s} {min(values):12.2f} {same_round_difference(values, base):+13.2f} "
              f"{same_round_ratio(values, base):6.2f} {span[name]:7.2f}")


if __name__ == "__main__":
    main()
