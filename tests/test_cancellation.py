"""Cancellation at many points leaves nothing behind and breaks nothing.

Single calls are cancelled at a sweep of delays that land in every phase of a request --
waiting for the token (tokens live 1 s, so refreshes are in flight), for a pool slot, for
the answer, in a retry's backoff; polls are stopped after k results for many k, by leaving
the loop and by cancelling the consuming task. After each: no connection checked out of the
pool, no stray task, no unhandled exception, and the client -- its token provider included --
still works. (tests/test_poll.py and tests/test_tokens.py hold one-point versions of these.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import anyio
import pytest
from leakcheck import BACKGROUND, acquired_connections, leak_messages, settle, stray_tasks

from hm_async import HMClient
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


def assert_clean(hm: HMClient, caplog: pytest.LogCaptureFixture, where: str) -> None:
    assert acquired_connections(hm.transport) == 0, where
    # a token refresh may legitimately be running in the background; nothing else may
    others = stray_tasks(BACKGROUND)
    assert not others, (where, others)
    bad = [r for r in caplog.records if r.name in ("asyncio", "aiohttp") or r.levelno >= 40]
    assert not bad, (where, [r.getMessage() for r in bad])
    assert not leak_messages([r.getMessage() for r in caplog.records]), where


async def test_single_calls_cancelled_at_many_points(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = EmulatorConfig(vehicles=8, token_lifetime=1.0, latency=(0.01, 0.04), seed=5)
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url,
                                              max_connections=2) as hm:
        vins = [v.vin for v in emu.vehicles]
        completed = cancelled = 0
        for i, delay in enumerate([0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.012, 0.016,
                                   0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.3, 0.6, 0.9]):
            if i % 3 == 1:
                emu.script_faults("vehicle_data", [503])  # cancel inside the backoff, too
            if i % 4 == 2:
                emu.script_faults("token", [503])
                emu.invalidate_tokens()

            async def one(vin: str) -> None:
                await hm.vehicle_data(vin)

            async with anyio.create_task_group() as tg:  # 3 calls for 2 pooled connections
                with anyio.move_on_after(delay) as scope:
                    for vin in vins[:3]:
                        tg.start_soon(one, vin)
                    await anyio.sleep(60)
                tg.cancel_scope.cancel()
            cancelled += scope.cancelled_caught
            emu.clear_faults()
            await settle(hm.transport, BACKGROUND)
            assert_clean(hm, caplog, f"after a cancel at {delay} s")
            # the client, token provider included, still works
            assert (await hm.vehicle_data(vins[i % 8])).vin == vins[i % 8]
            completed += 1
        assert cancelled >= 15
    assert completed == 18


@pytest.mark.parametrize("how", ["break", "cancel"])
async def test_polls_stopped_after_k_results(how: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = EmulatorConfig(vehicles=120, token_lifetime=1.0, latency=(0.0, 0.02),
                         fault_rate=0.1, seed=9)
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url) as hm:
        for k in (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89):
            got: Counter[str] = Counter()

            async def consume(k: int = k, got: Counter[str] = got) -> None:
                async for r in hm.poll(emu.vehicles, concurrency=16):
                    got[r.vin] += 1
                    if how == "break" and len(got) >= k:
                        break
                    if how == "cancel" and len(got) >= k:
                        await anyio.sleep(60)  # cancelled here, mid-poll

            task = asyncio.create_task(consume())
            if how == "cancel":
                while len(got) < k and not task.done():
                    await asyncio.sleep(0.002)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                await task
            assert not got or max(got.values()) == 1
            await settle(hm.transport, BACKGROUND)
            assert_clean(hm, caplog, f"{how} after {k} results")
        # nothing left running or broken: a full poll still gives every VIN exactly once
        emu.set_config(fault_rate=0.0)
        results = Counter([r.vin async for r in hm.poll(emu.vehicles, concurrency=16)
                           if r.ok])
        assert set(results.values()) == {1} and len(results) == 120
