"""hm.poll and hm.watch against the emulator: exactly once, lazy, limited, cancellable."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from leakcheck import acquired_connections

import hm_async
from hm_async import HMClient, NotClearedError, PermissionDeniedError, Progress
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


async def test_exactly_once_for_5000_vins_with_faults() -> None:
    cfg = EmulatorConfig(vehicles=5000, fault_rate=0.1, seed=7, no_consent_fraction=0.01)
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url) as hm:
        progress = Progress()
        seen: Counter[str] = Counter()
        ok = 0
        async for r in hm.poll(emu.vehicles, concurrency=100, progress=progress):
            seen[r.vin] += 1
            assert (r.data is None) == (r.error is not None)
            if r.ok:
                ok += 1
                assert r.data is not None and r.data.vin == r.vin
        assert set(seen) == {v.vin for v in emu.vehicles}
        assert max(seen.values()) == 1
        no_consent = set(emu.special_vins["no_consent"])
        assert ok >= (5000 - len(no_consent)) * 0.995
        assert progress.done == 5000 and progress.ok == ok
        assert progress.errors()["PermissionDeniedError"] == len(no_consent)
        assert sum(emu.stats.faults.values()) > 300  # faults really happened


async def test_bare_vins_learn_brands_and_skip_uncleared() -> None:
    async with Emulator(EmulatorConfig(vehicles=20, revoke_delay=30)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        revoked = emu.vehicles[0].vin
        await hm.clearance.delete(revoked)
        unknown = "WUNKNWN0000000001"
        emu.stats.reset()
        vins = [v.vin for v in emu.vehicles] + [unknown, "not-a-vin"]
        results = {r.vin: r async for r in hm.poll(vins)}
        assert len(results) == 22
        assert emu.stats.count("clearance") == 1  # one list call for all brands
        assert emu.stats.count("vehicle_data") == 19
        for vin in (revoked, unknown):
            assert isinstance(results[vin].error, NotClearedError)
        err = results[revoked].error
        assert isinstance(err, NotClearedError) and err.status == "revoking"
        assert isinstance(results["not-a-vin"].error, hm_async.InvalidVehicleError)
        good = results[emu.vehicles[1].vin]
        assert good.ok and good.brand == emu.vehicles[1].brand


async def test_per_vin_failures_are_results_not_exceptions() -> None:
    cfg = EmulatorConfig(vehicles=40, no_consent_fraction=0.05, asleep_fraction=0.05)
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url,
                                              max_retries=1) as hm:
        results = [r async for r in hm.poll([(v.vin, v.brand) for v in emu.vehicles])]
        errors = {r.vin: r.error for r in results if r.error is not None}
        for vin in emu.special_vins["no_consent"]:
            assert isinstance(errors[vin], PermissionDeniedError)
        for vin in emu.special_vins["asleep"]:
            assert isinstance(errors[vin], hm_async.VehicleUnavailableError)
        assert len(results) == 40


async def test_inputs_are_consumed_lazily() -> None:
    pulled = 0

    async with Emulator(EmulatorConfig(vehicles=50, latency=0.02)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        def vehicles() -> Iterator[tuple[str, str]]:
            nonlocal pulled
            for i in range(1_000_000):
                pulled += 1
                v = emu.vehicles[i % 50]
                yield v.vin, v.brand

        got = 0
        async for _ in hm.poll(vehicles(), concurrency=8):
            got += 1
            if got == 40:
                break
        assert pulled <= 40 + 8 + 8 + 1  # consumed + in flight + buffered results

        async def async_vehicles() -> AsyncIterator[hm_async.Vehicle]:
            for v in emu.vehicles[:30]:
                await asyncio.sleep(0)
                yield v

        assert len([r async for r in hm.poll(async_vehicles(), concurrency=4)]) == 30


async def test_async_source_is_shared_by_the_workers_lazily_and_its_error_surfaces() -> None:
    """An async source is read by the workers in turn (no feeder task): every item once,
    nothing read far ahead of the consumer, a slow source still fills every worker, and
    an exception raised by the source reaches the caller instead of being swallowed."""
    async with Emulator(EmulatorConfig(vehicles=20, latency=0.05)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        pulled = 0

        async def endless() -> AsyncIterator[tuple[str, str]]:
            nonlocal pulled
            for i in range(1_000_000):
                pulled += 1
                v = emu.vehicles[i % 20]
                yield v.vin, v.brand

        got = 0
        async for _ in hm.poll(endless(), concurrency=8):
            got += 1
            if got == 40:
                break
        assert 40 <= pulled <= 40 + 8 + 8 + 1  # consumed + in flight + buffered results

        async def slow() -> AsyncIterator[hm_async.Vehicle]:
            for v in emu.vehicles:
                await asyncio.sleep(0.01)  # the source itself waits (a database, a queue)
                yield v

        started = time.monotonic()
        results = [r async for r in hm.poll(slow(), concurrency=20)]
        assert sorted(r.vin for r in results) == sorted(v.vin for v in emu.vehicles)
        # 20 items 10 ms apart, requests of 50 ms in parallel: far below 20 x 60 ms serial
        assert time.monotonic() - started < 0.8

        async def broken() -> AsyncIterator[hm_async.Vehicle]:
            for v in emu.vehicles[:5]:
                yield v
            raise RuntimeError("input database went away")

        before_failure = []
        with pytest.raises(RuntimeError, match="input database went away"):
            async for r in hm.poll(broken(), concurrency=4):
                before_failure.append(r.vin)
        # the items read before the failure are not lost; then the source's own exception
        assert sorted(before_failure) == sorted(v.vin for v in emu.vehicles[:5])

        def broken_sync() -> Iterator[hm_async.Vehicle]:
            yield from emu.vehicles[:3]
            raise LookupError("csv line 4 unreadable")

        before_failure.clear()
        with pytest.raises(LookupError, match="csv line 4"):
            async for r in hm.poll(broken_sync(), concurrency=4):
                before_failure.append(r.vin)
        assert sorted(before_failure) == sorted(v.vin for v in emu.vehicles[:3])
        assert acquired_connections(hm.transport) == 0


async def test_configured_rate_is_met_without_429() -> None:
    rate = 20.0
    # the server allows R per second (a bucket of R tokens), so a client that let 2R through
    # in its first second, as a fresh aiolimiter bucket does, would be answered with 429s
    cfg = EmulatorConfig(vehicles=90, brands=("bmw",), rate_limits={"bmw": rate})
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url,
                                              rate_limits={"bmw": rate}) as hm:
        results = [r async for r in hm.poll(emu.vehicles, concurrency=32)]
        assert all(r.ok for r in results)
        times = emu.stats.vehicle_data_times["bmw"]
        achieved = (len(times) - 1) / (times[-1] - times[0])
        assert abs(achieved - rate) / rate <= 0.05
        assert emu.stats.count("vehicle_data", 429) == 0
        # the limiter's own grant times never put R + 1 in a second (tests/test_ratelimit.py);
        # arrival times at the server carry loopback and scheduling jitter on top of that
        assert emu.stats.max_in_window("bmw") <= rate + 1


async def test_no_grant_is_spent_late_while_the_first_token_is_on_its_way() -> None:
    # The token endpoint fails twice first (about 0.5 s of backoff). A limiter grant taken
    # during that wait would be spent late, all together with the grants taken after it,
    # and the server would see more than R in one second.
    rate = 20.0
    cfg = EmulatorConfig(vehicles=60, brands=("bmw",), rate_limits={"bmw": rate})
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url,
                                              rate_limits={"bmw": rate}) as hm:
        emu.script_faults("token", [503, 503])
        results = [r async for r in hm.poll(emu.vehicles, concurrency=32)]
        assert all(r.ok for r in results)
        assert emu.stats.token_requests == 3
        assert emu.stats.count("vehicle_data", 429) == 0
        assert emu.stats.max_in_window("bmw") <= rate + 1


async def test_one_brands_429s_do_not_slow_the_others() -> None:
    # bmw is throttled by the server (429s) and adapts; its VINs are interleaved with ford's
    # and outnumber the workers, so without care every worker ends up queued behind bmw
    cfg = EmulatorConfig(vehicles=240, brands=("bmw", "ford"), rate_limits={"bmw": 5.0},
                         rate_limit_burst=1.0, latency=0.01)
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url,
                                              rate_limits={"ford": 100.0}) as hm:
        ford_total = sum(v.brand == "ford" for v in emu.vehicles)
        done: Counter[str] = Counter()
        started = time.monotonic()
        async for r in hm.poll(emu.vehicles, concurrency=16):
            assert r.ok, r.error
            done[r.brand or ""] += 1
            if done["ford"] == ford_total:
                break
        ford_time = time.monotonic() - started
        assert emu.stats.count("vehicle_data", 429) > 0  # bmw really was throttled
        # 120 ford VINs at 100/s finish while bmw (<= 5/s) is nowhere near done
        assert ford_time < 3.0
        assert done["bmw"] < 40


async def test_early_break_releases_connections_and_tasks() -> None:
    async with Emulator(EmulatorConfig(vehicles=200, latency=0.2)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        got = 0
        async for _ in hm.poll(emu.vehicles, concurrency=50):
            got += 1
            if got == 5:
                break
        await asyncio.sleep(0.05)
        # every connection back in (or out of) the pool, aiohttp's and the lean lane's
        assert acquired_connections(hm.transport) == 0
        assert not [t for t in asyncio.all_tasks() if "_Poller" in repr(t.get_coro())]
        assert emu.stats.count("vehicle_data") < 120  # stopped, not run to completion
        # the client is still fine afterwards
        assert (await hm.vehicle_data(emu.vehicles[0].vin)).vin == emu.vehicles[0].vin


async def test_cancelling_the_consumer_stops_the_poll() -> None:
    async with Emulator(EmulatorConfig(vehicles=200, latency=0.2)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        async def consume() -> None:
            async for _ in hm.poll(emu.vehicles, concurrency=50):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert acquired_connections(hm.transport) == 0


async def test_watch_yields_only_changes() -> None:
    quiet = EmulatorConfig(vehicles=6, update_interval=3600.0)
    async with Emulator(quiet) as emu, HMClient(emu.client_credentials, base_url=emu.url) as hm:
        rounds: Counter[int] = Counter()
        async for w in hm.watch([v.vin for v in emu.vehicles], every=0.2, rounds=3):
            rounds[w.round] += 1
            assert w.changed and w.data is not None
        assert rounds == {0: 6}  # first round reports all, later rounds nothing changed
        assert emu.stats.count("vehicle_data") == 18

    busy = EmulatorConfig(vehicles=6, update_interval=0.5)
    async with Emulator(busy) as emu, HMClient(emu.client_credentials, base_url=emu.url) as hm:
        later = [w async for w in hm.watch(emu.vehicles, every=0.6, rounds=3) if w.round > 0]
        assert later, "data that changes every 0.5 s must show up as changes"
        assert all(w.changed for w in later)
