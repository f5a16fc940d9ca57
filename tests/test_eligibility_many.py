"""``eligibility_many``: bulk eligibility checks against the emulator over HTTP.

Every distinct VIN is checked exactly once and gets exactly one result (the emulator's
request count proves "once"), at most ``concurrency`` checks run at a time (the emulator's
in-flight gauge proves it), failures stay per VIN, results come in completion order, and
leaving the loop early stops the remaining checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hm_async import HMClient, InvalidVehicleError, ServerError, Vehicle
from hm_async._eligibility_many import EligibilityResult, eligibility_many
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.emulator._emulator import fleet_vin
from hm_async.emulator._server import eligibility_of
from hm_async.models import Eligibility

pytestmark = pytest.mark.anyio

VINS = [fleet_vin("bmw", i) for i in range(1, 121)]


@pytest.fixture
async def emu(emulator_factory: Any) -> Emulator:
    emu: Emulator = await emulator_factory(EmulatorConfig(latency=(0.002, 0.01), vehicles=0))
    return emu


@pytest.fixture
async def hm(emu: Emulator) -> AsyncIterator[HMClient]:
    async with HMClient(emu.client_credentials, base_url=emu.url) as client:
        yield client


async def collect(agen: Any) -> list[EligibilityResult]:
    return [r async for r in agen]


async def test_each_vin_once_with_its_answer(hm: HMClient, emu: Emulator) -> None:
    vehicles: list[Any] = [(v, "bmw") for v in VINS]
    vehicles += [Vehicle(vin=VINS[0], brand="bmw"), (VINS[1], "BMW")]  # repeats: not again
    results = await collect(eligibility_many(hm.eligibility, vehicles, concurrency=8))
    assert sorted(r.vin for r in results) == sorted(VINS)  # one result per distinct VIN
    assert emu.stats.count(route="eligibility") == len(VINS)  # one request per VIN
    for r in results:
        assert r.ok and r.brand == "bmw" and isinstance(r.eligibility, Eligibility)
        expected = eligibility_of(r.vin)
        assert r.eligibility.vin == r.vin and r.eligible == expected["eligible"]
    assert {r.eligible for r in results} == {True, False}


async def test_concurrency_is_bounded_and_used(hm: HMClient, emu: Emulator) -> None:
    emu.set_config(latency=0.03)
    await hm.tokens.get()  # the token request is not an eligibility check
    emu.stats.reset()
    results = await collect(eligibility_many(hm.eligibility, [(v, "bmw") for v in VINS[:60]],
                                             concurrency=5))
    assert len(results) == 60
    assert emu.stats.max_in_flight == 5


async def test_bad_items_and_failures_are_per_vin_results(hm: HMClient, emu: Emulator) -> None:
    items: list[Any] = [(v, "bmw") for v in VINS[:30]]
    # (issue 13 passes an unknown but well-formed brand on to HM, so the bad brand here is
    # a malformed one; a bare VIN has no brand, which an eligibility check needs)
    items += [("SHORT", "bmw"), (VINS[40], "not a brand!"), VINS[41], ("X" * 17, "bmw")]
    emu.script_faults("eligibility", [500] * 5)
    view = hm.with_options(max_retries=0)
    results = await collect(eligibility_many(view.eligibility, items, concurrency=4))
    by_vin = {r.vin: r for r in results}
    assert len(results) == len(by_vin) == 34
    invalid = [r for r in results if isinstance(r.error, InvalidVehicleError)]
    assert sorted(r.vin for r in invalid) == sorted(["SHORT", VINS[40], VINS[41]])
    failed = [r for r in results if isinstance(r.error, ServerError)]
    assert len(failed) == 5 and all(r.eligibility is None and not r.ok for r in failed)
    assert sum(r.ok for r in results) == 34 - 3 - 5
    # "XXXX..." is well formed: it is checked (HM decides), not refused as invalid.
    assert not isinstance(by_vin["X" * 17].error, InvalidVehicleError)
    assert emu.stats.count(route="eligibility") == 31  # no request for the invalid items


async def test_results_come_in_completion_order(hm: HMClient) -> None:
    async def slow_first(vin: str, brand: str) -> Eligibility:
        if vin == VINS[0]:
            await asyncio.sleep(0.3)  # the first VIN's answer arrives last
        return await hm.eligibility(vin, brand)

    results = await collect(eligibility_many(slow_first, [(v, "bmw") for v in VINS[:10]],
                                             concurrency=10))
    assert [r.vin for r in results][-1] == VINS[0]
    assert sorted(r.vin for r in results) == sorted(VINS[:10])


async def test_leaving_early_stops_the_remaining_checks(hm: HMClient, emu: Emulator) -> None:
    emu.set_config(latency=0.05)
    await hm.tokens.get()
    agen = eligibility_many(hm.eligibility, [(v, "bmw") for v in VINS], concurrency=4)
    got = []
    async for r in agen:
        got.append(r)
        if len(got) == 6:
            break
    await agen.aclose()
    sent = emu.stats.count(route="eligibility")
    await asyncio.sleep(0.2)
    assert emu.stats.count(route="eligibility") == sent <= 6 + 4
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
              and "worker" in repr(t.get_coro())]
    assert others == []


async def test_a_bug_in_the_check_ends_the_iteration() -> None:
    async def broken(vin: str, brand: str) -> Eligibility:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        await collect(eligibility_many(broken, [(VINS[0], "bmw")]))
    with pytest.raises(ValueError):
        await collect(eligibility_many(broken, [], concurrency=0))
