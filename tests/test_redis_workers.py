"""Four real worker processes, one emulator, one redis-server: what issue 15 promises.

The emulator runs in the test process (so its counters can be read directly); each worker
is ``tests/redis_worker.py`` in its own process, polling its shard of the same VIN list
with a RedisTokenStore and a RedisLimiter. Sizes: ``HM_SCALE_VINS`` VINs (default 20,000)
over four brands limited at ``HM_SCALE_RATE`` requests per second each (default 300: the
emulator shares the test process and must not be the bottleneck), so one run takes ~18 s.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer, redis_server

from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio
__all__ = ["redis_server"]

VINS = int(os.environ.get("HM_SCALE_VINS", "20000"))
RATE = float(os.environ.get("HM_SCALE_RATE", "300"))
BRANDS = ("bmw", "mercedes-benz", "kia", "volvo-cars")
WORKERS = 4
TOKEN_LIFE = 2.0
WORKER = Path(__file__).with_name("redis_worker.py")


def config() -> EmulatorConfig:
    return EmulatorConfig(vehicles=VINS, brands=BRANDS, token_lifetime=TOKEN_LIFE,
                          rate_limits=dict.fromkeys(BRANDS, RATE), update_interval=3600.0)


def prepare_payloads(emu: Emulator) -> None:
    """Build every VIN's answer before the run: the emulator shares the test process, and
    a busy emulator sees requests late and bunched (its clock is what the test checks)."""
    for v in emu.vehicles:
        emu._server.data.body(v.vin, v.brand)


async def start_workers(emu: Emulator, redis_url: str, tmp: Path) -> list[tuple[Any, Path]]:
    prepare_payloads(emu)
    vin_file = tmp / "vins.csv"
    vin_file.write_text("".join(f"{v.vin},{v.brand}\n" for v in emu.vehicles))
    procs = []
    for i in range(WORKERS):
        out = tmp / f"worker{i}.txt"
        cfg = {"url": emu.url, "client_id": emu.client_id, "client_secret": emu.client_secret,
               "redis": redis_url, "vins": str(vin_file), "shard": [i, WORKERS],
               "limits": dict.fromkeys(BRANDS, RATE), "out": str(out), "wait_for_go": True,
               "hang_after": 80}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), json.dumps(cfg), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        procs.append((proc, out))
    # all workers have their token and connections: start them together, count from now
    for proc, _ in procs:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
    emu.stats.reset()
    for proc, _ in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    return procs


def results_of(out: Path) -> Counter[str]:
    lines = out.read_text().splitlines() if out.exists() else []
    return Counter(line.split()[0] for line in lines)


def per_second(times: list[float]) -> list[int]:
    bins = Counter(int(t - times[0]) for t in times)
    return [bins[i] for i in range(max(bins) + 1)]


def steady_rate(times: list[float]) -> float:
    """Requests per second over the middle half of the brand's run (start-up and the tail,
    when workers have run out of VINs of this brand, do not count)."""
    span = times[-1] - times[0]
    lo, hi = times[0] + span / 4, times[0] + 3 * span / 4
    return sum(lo <= t < hi for t in times) / (hi - lo)


def where_worst(times: list[float]) -> tuple[float, int]:
    """(start, count) of the busiest one-second window."""
    return max(((s, bisect.bisect_left(times, s + 1.0) - i) for i, s in enumerate(times)),
               key=lambda x: x[1])


class LagProbe:
    """How late the test process's event loop (the emulator's) wakes up, over time."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(0.005)
            self.samples.append((asked, loop.time() - asked - 0.005))

    def worst(self, start: float, end: float) -> float:
        return max((lag for t, lag in self.samples if start <= t <= end), default=0.0)

    async def __aenter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def shard_vins(emu: Emulator, i: int) -> set[str]:
    from hm_async._shard import shard_of

    return {v.vin for v in emu.vehicles if shard_of(v.vin, WORKERS) == i}


async def test_four_workers_share_token_and_limits_and_survive_a_sigkill(
        redis_server: RedisServer, tmp_path: Path) -> None:
    async with Emulator(config()) as emu, LagProbe() as lag:
        procs = await start_workers(emu, redis_server.url, tmp_path)
        victim, victim_out = procs[0]
        # SIGKILL worker 0 once it is well into its shard (its lock and leases must expire)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(results_of(victim_out)) < VINS // WORKERS // 3 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        summaries = []
        for proc, _ in procs[1:]:
            stdout, _ = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode == 0
            summaries.append(json.loads(stdout))
        stats = emu.stats
        print(summaries)
        print("401s:", stats.count(status=401))

        # every VIN of the survivors' shards answered exactly once, all ok
        for i, (_, out) in enumerate(procs[1:], start=1):
            got = results_of(out)
            assert set(got) == shard_vins(emu, i) and set(got.values()) == {1}
            assert all(line.endswith(" ok") for line in out.read_text().splitlines())
        assert not any(s["degraded"] for s in summaries)
        # no stall: the survivors took about as long as the whole fleet takes at R per brand
        assert max(s["elapsed"] for s in summaries) < 1.5 * VINS / (len(BRANDS) * RATE)

        # limits: no one-second window above R per brand, no 429, >= 90% of R achieved
        assert stats.count("vehicle_data", 429) == 0
        for brand in BRANDS:
            times = stats.vehicle_data_times[brand]
            worst = stats.max_in_window(brand)
            achieved = steady_rate(times)
            print("per second:", per_second(times))
            print(f"{brand}: {len(times)} requests, worst 1 s window {worst} (R={RATE:g}), "
                  f"achieved {achieved:.0f}/s = {achieved / RATE:.0%} of R")
            # The emulator timestamps a request when its event loop gets to it. On a machine
            # busier than the test (other jobs), it can be late by more than the 20 ms the
            # limiter allows for and then sees requests bunched that were not sent bunched:
            # only the part of its own lateness beyond 20 ms excuses requests above R.
            start, count = where_worst(times)
            late = lag.worst(start - 0.1, start + 1.0)
            allowance = RATE * max(0.0, late - 0.02)
            print(f"{brand}: emulator late by up to {late * 1000:.0f} ms around the worst "
                  f"window (at {start - times[0]:.1f} s): allowance {allowance:.0f}")
            assert worst <= RATE + allowance, (start - times[0], count, late)
            assert achieved >= 0.9 * RATE

        # token: one request per refresh cycle for all workers together. A cycle ends when
        # the first worker passes its soft window (>= 50% of the 2 s life, less the store's
        # 2% TTL guard) and fetches for everybody: consecutive token requests are >= 0.9 s
        # apart, and < 2 s (a live token all along). No request carried an expired token
        # (the emulator answers those 401).
        gaps = [b - a for a, b in itertools.pairwise(stats.token_times)]
        print(f"token requests: {len(stats.token_times)}, gaps {min(gaps):.2f}-"
              f"{max(gaps):.2f} s; per worker "
              f"{[s['token_requests'] for s in summaries]}")
        assert gaps and all(0.9 <= g < TOKEN_LIFE for g in gaps), gaps
        assert stats.tokens_issued == stats.token_requests
        assert stats.count(status=401) == 0


async def test_redis_stopped_mid_run_every_vin_answered_once(tmp_path: Path) -> None:
    server = RedisServer().start()
    try:
        async with Emulator(config()) as emu:
            procs = await start_workers(emu, server.url, tmp_path)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while (sum(len(results_of(out)) for _, out in procs) < VINS // 4
                   and loop.time() < deadline):
                await asyncio.sleep(0.05)
            server.stop()
            summaries = []
            for proc, _ in procs:
                stdout, _ = await asyncio.wait_for(proc.communicate(), 90)
                assert proc.returncode == 0
                summaries.append(json.loads(stdout))
            total: Counter[str] = Counter()
            for _, out in procs:
                total.update(results_of(out))
            assert set(total) == {v.vin for v in emu.vehicles}
            assert set(total.values()) == {1}
            assert all(s["degraded"] for s in summaries)
            assert sum(s["done"] for s in summaries) == VINS
    finally:
        server.stop()
