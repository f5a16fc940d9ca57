"""RedisLimiter against a real redis-server: the in-process limiter's guarantees, shared.

Several limiters in one event loop, each with its own connection pool and worker id, stand
for separate worker processes here (Redis cannot tell the difference); the run with real
processes is test_redis_workers.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextlib import AsyncExitStack

import pytest
from redis_server import RedisServer, free_port, redis_server

from hm_async import HMClient, RateLimits
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.redis import RedisLimiter, SharedStateError

pytestmark = pytest.mark.anyio
__all__ = ["redis_server"]


async def limiters(stack: AsyncExitStack, url: str, n: int,
                   **kwargs: object) -> list[RedisLimiter]:
    out = []
    for _ in range(n):
        lim = RedisLimiter(url, **kwargs)  # type: ignore[arg-type]
        await stack.enter_async_context(lim)
        out.append(lim)
    return out


async def test_four_clients_share_one_brand_limit(redis_server: RedisServer) -> None:
    """4 clients, each polling its shard: the emulator never sees > R in a second, no 429,
    and the brand runs at >= 90% of R (the emulator's bucket is exactly R). Everything
    shares one event loop here (the real processes are in test_redis_workers.py)."""
    rate = 100.0
    cfg = EmulatorConfig(vehicles=500, brands=("bmw",), rate_limits={"bmw": rate})
    async with Emulator(cfg) as emu, AsyncExitStack() as stack:
        vins = [(v.vin, v.brand) for v in emu.vehicles]
        clients = [await stack.enter_async_context(HMClient(
            emu.client_credentials, base_url=emu.url,
            limiter=RedisLimiter(redis_server.url, {"bmw": rate}))) for _ in range(4)]

        for hm in clients:
            # The transport takes a limiter grant before it waits for a token, so requests
            # granted during the first token request would all go when it arrives.
            await hm.tokens.get()

        async def work(i: int) -> list[bool]:
            return [r.ok async for r in clients[i].poll(vins, shard=(i, 4), concurrency=32)]

        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(*(work(i) for i in range(4)))
        elapsed = loop.time() - started
        assert sum(len(r) for r in results) == len(vins) and all(all(r) for r in results)
        assert emu.stats.max_in_window("bmw") <= rate
        assert emu.stats.count("vehicle_data", 429) == 0
        # the rate over the middle half of the run (not the start-up or the last stragglers)
        times = emu.stats.vehicle_data_times["bmw"]
        span = times[-1] - times[0]
        lo, hi = times[0] + span / 4, times[0] + 3 * span / 4
        achieved = sum(lo <= t < hi for t in times) / (hi - lo)
        assert elapsed < len(vins) / rate * 1.4
        print(f"achieved {achieved:.1f}/s of {rate}, worst window "
              f"{emu.stats.max_in_window('bmw')}")
        assert achieved >= 0.9 * rate, achieved


async def test_429_pauses_the_brand_for_every_worker(redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        a, b = await limiters(stack, redis_server.url, 2, rate_limits={"bmw": 1000.0})
        generation = await a.acquire("bmw")
        assert await b.acquire("bmw") == generation
        a.on_rate_limited("bmw", 1.0, generation=generation)
        await asyncio.sleep(0.05)  # a's report reaches Redis in the background
        b._brands["bmw"].left = 0  # b's current lease (<= 50 ms of grants) is used up
        loop = asyncio.get_running_loop()
        started = loop.time()
        await b.acquire("bmw")
        assert 0.85 <= loop.time() - started < 1.5


async def test_adaptive_estimate_is_shared(redis_server: RedisServer) -> None:
    limits = RateLimits(adaptive_start=10.0)
    async with AsyncExitStack() as stack:
        a, b = await limiters(stack, redis_server.url, 2, rate_limits=limits)
        gen = await a.acquire("volvo-cars")
        for _ in range(40):
            a.on_success("volvo-cars")
        a._brands["volvo-cars"].left = 0
        await a.acquire("volvo-cars")  # reports the 40 successes: slow start, +0.5 each
        await b.acquire("volvo-cars")
        assert b.snapshot()["volvo-cars"].allowed_rate == pytest.approx(30.0)
        a.on_rate_limited("volvo-cars", 0.1, generation=gen)
        a.on_rate_limited("volvo-cars", 0.1, generation=gen)  # same generation: one cut
        await asyncio.sleep(0.2)
        b._brands["volvo-cars"].left = 0
        assert await b.acquire("volvo-cars") == gen + 1
        assert b.snapshot()["volvo-cars"].allowed_rate == pytest.approx(24.0)


async def test_waiting_is_fair_across_workers(redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        lims = await limiters(stack, redis_server.url, 3, rate_limits={"kia": 40.0})
        grants: Counter[int] = Counter()

        async def hammer(i: int) -> None:
            while True:
                await lims[i].acquire("kia")
                grants[i] += 1

        tasks = [asyncio.create_task(hammer(i)) for i in range(3) for _ in range(20)]
        await asyncio.sleep(3.0)
        achieved = sum(lim.snapshot()["kia"].achieved_rate for lim in lims)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        counts = [grants[i] for i in range(3)]
        assert min(counts) >= 0.7 * max(counts), counts
        assert sum(counts) <= 40 * 3.0 + 40  # never more than R per second overall
        assert 30 <= achieved <= 44, achieved  # what the snapshots report, all workers


async def test_round_trips_per_request_when_the_limit_does_not_bind(
        redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        lim, = await limiters(stack, redis_server.url, 1,
                              rate_limits={"bmw": 10_000.0, "kia": float("inf")})
        for brand in ("bmw", "kia"):
            before = lim.round_trips
            n = 0
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.5
            while loop.time() < end:
                if lim.try_acquire(brand) is None:
                    await lim.acquire(brand)
                n += 1
                if n % 16 == 0:
                    await asyncio.sleep(0)
            assert (lim.round_trips - before) / n <= 0.1, (brand, lim.round_trips - before, n)


async def test_unreachable_at_start_and_lost_mid_run(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:pw-secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(SharedStateError) as info:
        await RedisLimiter(url).connect()
    assert "127.0.0.1" in str(info.value) and "pw-secret" not in str(info.value)

    server = RedisServer().start()
    try:
        for policy in ("degrade", "fail"):
            async with RedisLimiter(server.url, {"bmw": 100.0},
                                    on_redis_error=policy) as lim:  # type: ignore[arg-type]
                lim2 = RedisLimiter(server.url, {"bmw": 100.0})
                await lim2.acquire("bmw")  # a second worker was seen
                await lim.acquire("bmw")
                await lim2.aclose()
                if policy == "degrade":
                    server.stop()
                lim._brands["bmw"].left = 0
                caplog.set_level(logging.WARNING, logger="hm_async")
                if policy == "fail":
                    server.stop()
                    with pytest.raises(SharedStateError):
                        await lim.acquire("bmw")
                else:
                    for _ in range(5):
                        await lim.acquire("bmw")
                    assert lim.degraded
                    # each of the 2 workers seen now paces at half the limit in-process
                    assert lim.snapshot()["bmw"].allowed_rate == pytest.approx(50.0)
                    assert sum("degraded" in r.getMessage() for r in caplog.records) == 1
            server = RedisServer().start() if policy == "degrade" else server
    finally:
        server.stop()
