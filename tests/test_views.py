"""``with_options`` views share the client's state and differ only in request options."""

from __future__ import annotations

import gc
import logging

import pytest
from leakcheck import leak_messages, settle

from hm_async import HMClient, HMTimeoutError
from hm_async.emulator import Emulator

pytestmark = pytest.mark.anyio


async def test_view_shares_every_stateful_part(emulator: Emulator) -> None:
    vin = emulator.vehicles[0].vin
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        view = hm.with_options(timeout=5.0, max_retries=1)
        nested = view.with_options(max_retries=0)
        for other in (view, nested):
            assert other.transport is hm.transport  # session, GET lane, slots, budget
            assert other.tokens is hm.tokens
            assert other.limiters is hm.limiters and other.meter is hm.meter
            # HM counts single-VIN clearance lookups per application: one pacing for all
            assert other.clearance._single_get_limiter is hm.clearance._single_get_limiter
        await view.vehicle_data(vin)
        await nested.vehicle_data(vin)
        await hm.vehicle_data(vin)
        assert hm.usage().by_endpoint()["vehicle_data"] == 3  # one meter
        assert emulator.stats.count("token") == 1  # one token provider
        assert emulator.stats.connections == 2  # one aiohttp socket (token), one GET lane
    assert view.closed and nested.closed


async def test_view_options_combine_and_stay_apart(emulator: Emulator) -> None:
    vin = emulator.vehicles[0].vin
    async with HMClient(emulator.client_credentials, base_url=emulator.url,
                        max_retries=2) as hm:
        await hm.vehicle_data(vin)  # the token first: the timeouts below are for the GET
        emulator.set_config(latency=0.4)
        impatient = hm.with_options(timeout=0.2)
        no_retry = impatient.with_options(max_retries=0)  # keeps the parent view's timeout
        emulator.script_faults("vehicle_data", [503])
        with pytest.raises(HMTimeoutError):
            await no_retry.vehicle_data(vin)
        assert (await hm.vehicle_data(vin)).vin == vin  # the root kept its own options
        emulator.set_config(latency=0.0)


async def test_closing_a_view_closes_nothing_shared(emulator: Emulator) -> None:
    vin = emulator.vehicles[0].vin
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        async with hm.with_options(max_retries=0) as view:
            await view.vehicle_data(vin)
        await view.aclose()
        assert not hm.closed and not view.closed
        assert (await hm.vehicle_data(vin)).vin == vin
        assert emulator.stats.count("token") == 1 and emulator.stats.connections == 2


async def test_view_entered_before_its_root_leaks_nothing(
        emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    """The review's bug: such a view built its own ClientSession that nobody closed
    ("Unclosed client session" once it was garbage collected)."""
    caplog.set_level(logging.WARNING)
    vin = emulator.vehicles[0].vin
    hm = HMClient(emulator.client_credentials, base_url=emulator.url)
    async with hm.with_options(timeout=5.0) as view:
        assert (await view.vehicle_data(vin)).vin == vin
    assert (await hm.vehicle_data(vin)).vin == vin  # the root uses what the view opened
    assert emulator.stats.count("token") == 1
    await hm.aclose()
    assert view.closed
    del view, hm
    gc.collect()
    stray = await settle()
    assert not stray
    assert not leak_messages([r.getMessage() for r in caplog.records])
    assert not [r for r in caplog.records if r.name in ("asyncio", "aiohttp")]
