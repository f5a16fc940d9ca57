"""HMClient against the emulator: lifecycle, resources, validation, metering, connections."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
import pytest

import hm_async
from hm_async import (
    ConflictError,
    HMClient,
    NotFoundError,
    PermissionDeniedError,
    Vehicle,
)
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio

NEW_VINS = [f"WNEW0000000{i:06d}" for i in range(250)]


async def test_eligibility_typed_and_validated_before_network() -> None:
    async with Emulator(EmulatorConfig(vehicles=4)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        vin = emu.vehicles[0].vin
        e = await hm.eligibility(vin, "mercedes_benz")
        assert isinstance(e, hm_async.Eligibility)
        assert e.vin == vin and isinstance(e.eligible, bool)
        assert all(d in ("pull", "push") for d in e.data_delivery)
        before = emu.stats.total
        with pytest.raises(ValueError, match="vin 'WBAD' is not a VIN"):
            await hm.eligibility("WBAD", "bmw")
        # Issue 13.1: I, O and Q are VIN characters for HM; a dash is still refused.
        with pytest.raises(ValueError, match="vin 'WBADT43452G29640-'"):
            await hm.eligibility("WBADT43452G29640-", "bmw")
        with pytest.raises(ValueError, match=r"brand 'tesla' .*valid brands: .*bmw"):
            await hm.eligibility(vin, "tesla")  # cleared brand, but not an eligibility brand
        assert emu.stats.total == before


async def test_clearance_request_batches_and_per_vin_results() -> None:
    async with Emulator(EmulatorConfig(vehicles=0, approve_delay=0.2)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        vehicles: list[Vehicle | tuple[str, str]] = [(v, "bmw") for v in NEW_VINS[:200]]
        vehicles += [Vehicle(vin=v, brand="volvo_cars", tags={"fleet": "north"})
                     for v in NEW_VINS[200:]]
        results = await hm.clearance.request(vehicles)
        assert [r.vin for r in results] == NEW_VINS
        assert all(r.status == "pending" and r.ok for r in results)
        assert results[-1].tags == {"fleet": "north"}
        assert emu.stats.count("clearance", 200) == 3  # 100 + 100 + 50
        # a VIN that is already cleared is refused per VIN, not for the whole batch
        again = await hm.clearance.request([(NEW_VINS[0], "bmw"), (NEW_VINS[-1], "volvo-cars")])
        assert len(again) == 2
        settled = await hm.clearance.wait_until_settled(NEW_VINS, timeout=10, interval=0.2)
        assert set(settled) == set(NEW_VINS)
        assert {c.status for c in settled.values()} == {"approved"}
        assert settled[NEW_VINS[-1]].brand == "volvo-cars"


async def test_clearance_get_list_delete_and_conflict() -> None:
    async with Emulator(EmulatorConfig(vehicles=12, revoke_delay=30)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        first = emu.vehicles[0]
        c = await hm.clearance.get(first.vin)
        assert c.vin == first.vin and c.status == "approved" and c.approved
        assert c.brand == first.brand
        everything = await hm.clearance.list()
        assert {x.vin for x in everything} == {v.vin for v in emu.vehicles}
        mine = await hm.clearance.list(vins=[v.vin for v in emu.vehicles[:3]])
        assert {x.vin for x in mine} == {v.vin for v in emu.vehicles[:3]}
        by_brand = await hm.clearance.list(brands=[first.brand.replace("-", "_")])
        assert by_brand and all(x.brand == first.brand for x in by_brand)
        assert await hm.clearance.list(statuses=["revoked"]) == []
        deleted = await hm.clearance.delete(first.vin)
        assert deleted.vin == first.vin and deleted.status == "revoking"
        with pytest.raises(ConflictError) as conflict:
            await hm.clearance.delete(first.vin)
        assert conflict.value.status_code == 409
        assert emu.stats.count("clearance", 409) == 1  # not retried
        revoking = await hm.clearance.list(statuses=["revoking"])
        assert [x.vin for x in revoking] == [first.vin]
        with pytest.raises(NotFoundError):
            await hm.clearance.get("WUNKNWN0000000001")
        with pytest.raises(ValueError, match="statuses item 'done'"):
            await hm.clearance.list(statuses=["done"])


async def test_vehicle_data_typed_raw_and_permission_error() -> None:
    cfg = EmulatorConfig(vehicles=20, no_consent_fraction=0.05)
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url) as hm:
        ok_vehicle = emu.vehicles[-1]
        data = await hm.vehicle_data(ok_vehicle.vin, ok_vehicle.brand)
        assert data.vin == ok_vehicle.vin
        raw = await hm.vehicle_data_raw(ok_vehicle.vin)
        assert raw.startswith(b"{") and ok_vehicle.vin.encode() in raw
        blocked = emu.special_vins["no_consent"][0]
        with pytest.raises(PermissionDeniedError) as err:
            await hm.vehicle_data(blocked)
        assert err.value.status_code == 403 and err.value.request_id
        assert emu.stats.count("vehicle_data", 403) == 1  # a refusal is not retried


async def test_usage_metering_counts_calls_and_retries() -> None:
    async with Emulator(EmulatorConfig(vehicles=3)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        v = emu.vehicles[0]
        emu.script_faults("vehicle_data", [503])
        await hm.vehicle_data(v.vin, v.brand)
        await hm.eligibility(v.vin, "bmw")
        usage = hm.usage()
        rows = {(r.endpoint, r.brand, r.outcome): r for r in usage.rows}
        assert rows[("vehicle_data", v.brand, "503")].calls == 1
        assert rows[("vehicle_data", v.brand, "200")].retries == 1
        assert rows[("eligibility", "bmw", "200")].calls == 1
        # Since issue 12 the token endpoint is metered too (endpoint "access_tokens", no
        # brand): three API calls plus the one token request.
        assert usage.total_calls == 4 and usage.total_retries == 1
        assert hm.tokens.requests_made == 1 == usage.by_endpoint()["access_tokens"]
        assert usage.by_brand()[v.brand] == 2 + (v.brand == "bmw")
        expected = 0.02 + 0.01 * (v.brand == "bmw")
        assert usage.estimate_cost({v.brand: 0.01}) == pytest.approx(expected)


async def test_concurrent_calls_reuse_a_bounded_pool() -> None:
    async with Emulator(EmulatorConfig(vehicles=50, latency=0.01)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url, max_connections=8
    ) as hm:
        vins = [v.vin for v in emu.vehicles]
        await asyncio.gather(*(hm.vehicle_data_raw(vins[i % 50]) for i in range(200)))
        assert emu.stats.count("vehicle_data", 200) == 200
        # one connection may serve the token request before the pool fills up
        assert emu.stats.connections <= 9
        assert emu.stats.max_in_flight <= 9


async def test_own_session_is_used_and_never_closed() -> None:
    async with Emulator(EmulatorConfig(vehicles=2)) as emu, aiohttp.ClientSession() as session:
        async with HMClient(emu.client_credentials, base_url=emu.url, session=session) as hm:
            await hm.vehicle_data_raw(emu.vehicles[0].vin)
        assert not session.closed
        assert hm.closed
        with pytest.raises(RuntimeError, match="closed"):
            await hm.vehicle_data_raw(emu.vehicles[0].vin)


async def test_exit_after_error_or_cancellation_leaves_nothing_behind() -> None:
    async with Emulator(EmulatorConfig(vehicles=2, latency=1.0)) as emu:
        with pytest.raises(ZeroDivisionError):
            async with HMClient(emu.client_credentials, base_url=emu.url) as hm:
                await hm.eligibility(emu.vehicles[0].vin, "bmw")
                raise ZeroDivisionError
        hm2 = HMClient(emu.client_credentials, base_url=emu.url)

        async def body() -> None:
            async with hm2:
                await hm2.vehicle_data_raw(emu.vehicles[0].vin)

        task = asyncio.create_task(body())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert hm.closed and hm2.closed
        gc.collect()  # an unclosed session would warn here, and warnings are errors
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in others if "hm_async" in repr(t.get_coro())]


async def test_with_options_overrides_timeout_for_some_calls() -> None:
    async with Emulator(EmulatorConfig(vehicles=2, latency=0.6)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url, timeout=5
    ) as hm:
        vin = emu.vehicles[0].vin
        await hm.vehicle_data_raw(vin)  # default timeout: fine
        impatient = hm.with_options(timeout=0.2, max_retries=0)
        with pytest.raises(hm_async.HMTimeoutError) as err:
            await impatient.vehicle_data_raw(vin)
        assert err.value.timeout == "total" and "0.2" in str(err.value)
        await impatient.aclose()  # a view never closes the shared session
        await hm.vehicle_data_raw(vin)


async def test_constructor_validation() -> None:
    creds = hm_async.ClientCredentials(client_id="id", client_secret="s3cr3t-value")
    with pytest.raises(ValueError, match="environment 'staging'"):
        HMClient(creds, environment="staging")
    with pytest.raises(ValueError, match="base_url"):
        HMClient(creds, base_url="ftp://example.com")
    hm = HMClient(creds, environment="production")
    assert hm.base_url == "https://api.high-mobility.com"
    assert "s3cr3t" not in repr(hm)
    await hm.aclose()


async def test_trace_configs_let_users_attach_metrics() -> None:
    ends: list[int] = []

    async def on_request_end(session: object, ctx: object,
                             params: aiohttp.TraceRequestEndParams) -> None:
        ends.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    async with Emulator(EmulatorConfig(vehicles=2)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url, trace_configs=[trace]
    ) as hm:
        emu.script_faults("vehicle_data", [503])
        await hm.vehicle_data_raw(emu.vehicles[0].vin)
    assert ends == [200, 503, 200]  # the token request, the failed attempt, its retry
