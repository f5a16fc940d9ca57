"""The transport's retry rules, timeouts and auth handling, against real local servers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

import hm_async
from hm_async import HMClient
from hm_async._retry import RetryBudget, backoff_delay, parse_retry_after, should_retry
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def client_for(cfg: EmulatorConfig, **kwargs: object) -> AsyncIterator[
        tuple[Emulator, HMClient]]:
    async with Emulator(cfg) as emu, HMClient(emu.client_credentials, base_url=emu.url,
                                              **kwargs) as hm:  # type: ignore[arg-type]
        yield emu, hm


def test_retry_policy_is_pure_and_bounded() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("9999") == 60.0  # capped
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert backoff_delay(1, rand=0.0) == 0.5
    assert backoff_delay(3, rand=0.0) == 2.0
    assert backoff_delay(10, rand=0.0) == 8.0
    assert backoff_delay(2, rand=1.0) == 0.75
    assert backoff_delay(1, retry_after=4.0) == 4.0
    for status in (408, 429, 500, 502, 503, 504):
        assert should_retry(status, idempotent=True)
    for status in (400, 401, 403, 404, 409, 422):
        assert not should_retry(status, idempotent=True)
    assert should_retry(429, idempotent=False) and not should_retry(503, idempotent=False)
    now = [0.0]
    budget = RetryBudget(ratio=0.5, min_per_second=1.0, capacity=2.0, clock=lambda: now[0])
    assert budget.try_spend() and budget.try_spend() and not budget.try_spend()
    budget.record_request()
    budget.record_request()
    assert budget.try_spend()
    now[0] = 1.0
    assert budget.try_spend() and not budget.try_spend()


async def test_transient_statuses_are_retried_until_success() -> None:
    async with client_for(EmulatorConfig(vehicles=2)) as (emu, hm):
        emu.script_faults("vehicle_data", [503, 504, "html502"])
        started = time.monotonic()
        raw = await hm.vehicle_data_raw(emu.vehicles[0].vin)
        assert raw.startswith(b"{")
        assert emu.stats.count("vehicle_data") == 4
        # three backoffs of 0.375-0.5, 0.75-1 and 1.5-2 s
        assert time.monotonic() - started >= 2.5


async def test_dropped_connection_is_retried_once() -> None:
    async with client_for(EmulatorConfig(vehicles=2)) as (emu, hm):
        emu.script_faults("vehicle_data", ["drop"])
        await hm.vehicle_data_raw(emu.vehicles[0].vin)
        assert emu.stats.count("vehicle_data", 0) == 1
        assert emu.stats.count("vehicle_data", 200) == 1


async def test_retries_exhausted_raise_the_last_error() -> None:
    async with client_for(EmulatorConfig(vehicles=2), max_retries=1) as (emu, hm):
        emu.script_faults("vehicle_data", [503, 500, 503])
        with pytest.raises(hm_async.ServerError) as err:
            await hm.vehicle_data_raw(emu.vehicles[0].vin)
        assert err.value.status_code == 500
        assert emu.stats.count("vehicle_data") == 2


async def test_retry_after_is_honoured() -> None:
    async with client_for(EmulatorConfig(vehicles=2, rate_limits={"bmw": 1.0},
                                         rate_limit_burst=1.0, brands=("bmw",))) as (emu, hm):
        vin = emu.vehicles[0].vin
        await hm.vehicle_data_raw(vin)  # no brand given: no client-side limiter, 1/s server
        emu.stats.reset()
        started = time.monotonic()
        await hm.vehicle_data_raw(vin)  # 429 with Retry-After, then success
        assert emu.stats.count("vehicle_data", 429) == 1
        assert time.monotonic() - started >= 0.5


async def test_refusals_are_not_retried() -> None:
    cfg = EmulatorConfig(vehicles=10, asleep_fraction=0.1, privacy_mode_fraction=0.1)
    async with client_for(cfg) as (emu, hm):
        with pytest.raises(hm_async.PermissionDeniedError, match="Privacy mode"):
            await hm.vehicle_data_raw(emu.special_vins["privacy_mode"][0])
        assert emu.stats.count("vehicle_data", 403) == 1
        emu.script_faults("clearance", [422])
        with pytest.raises(hm_async.ValidationError):
            await hm.clearance.list()
        assert emu.stats.count("clearance", 422) == 1


async def test_post_that_may_have_been_applied_is_not_retried() -> None:
    async with client_for(EmulatorConfig(vehicles=0)) as (emu, hm):
        emu.script_faults("clearance", [503])
        with pytest.raises(hm_async.ServerError):
            await hm.clearance.request([("WNEW0000000000001", "bmw")])
        assert emu.stats.count("clearance") == 1
        emu.script_faults("clearance", ["drop"])
        with pytest.raises(hm_async.TransportError):
            await hm.clearance.request([("WNEW0000000000001", "bmw")])
        assert emu.stats.count("clearance") == 2
        emu.script_faults("clearance", [429])  # refused before acting: safe to repeat
        results = await hm.clearance.request([("WNEW0000000000001", "bmw")])
        assert results[0].status == "pending"


async def test_retry_budget_exhausted_gives_a_clear_error() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, capacity=2.0)
    async with client_for(EmulatorConfig(vehicles=2), retry_budget=budget) as (emu, hm):
        emu.script_faults("vehicle_data", [503] * 10)
        with pytest.raises(hm_async.RetryBudgetExhaustedError, match="retry budget") as err:
            await hm.vehicle_data_raw(emu.vehicles[0].vin)
        assert isinstance(err.value.last_error, hm_async.ServerError)
        assert emu.stats.count("vehicle_data") == 3  # first attempt + the 2 budgeted retries


async def test_invalid_token_is_refreshed_and_replayed_once() -> None:
    async with client_for(EmulatorConfig(vehicles=2)) as (emu, hm):
        vin = emu.vehicles[0].vin
        await hm.vehicle_data_raw(vin)
        emu.invalidate_tokens()
        await hm.vehicle_data_raw(vin)
        assert emu.stats.token_requests == 2
        assert emu.stats.count("vehicle_data", 401) == 1


async def test_consent_removed_is_a_permission_error_not_a_token_problem() -> None:
    cfg = EmulatorConfig(vehicles=10, consent_removed_fraction=0.1)
    async with client_for(cfg) as (emu, hm):
        with pytest.raises(hm_async.PermissionDeniedError, match="Consent is removed"):
            await hm.vehicle_data_raw(emu.special_vins["consent_removed"][0])
        assert emu.stats.token_requests == 1


async def test_timeouts_name_which_fired() -> None:
    async with client_for(EmulatorConfig(vehicles=2),
                          timeout=hm_async.Timeout(0.3, connect=1.0), max_retries=0) as (emu, hm):
        await hm.tokens.get()  # while the emulator is still fast
        emu.set_config(latency=1.0)
        started = time.monotonic()
        with pytest.raises(hm_async.HMTimeoutError) as err:
            await hm.vehicle_data_raw(emu.vehicles[0].vin)
        assert err.value.timeout == "total" and err.value.seconds == 0.3
        assert time.monotonic() - started < 0.9


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_bearer_never_follows_a_redirect_to_another_origin() -> None:
    seen: list[str | None] = []

    async def catcher(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({})

    other = web.Application()
    other.router.add_get("/{tail:.*}", catcher)
    other_runner, other_url = await _serve(other)
    try:
        async with Emulator(EmulatorConfig(vehicles=1)) as emu:
            async def token(request: web.Request) -> web.StreamResponse:
                return web.json_response({"access_token": "t0k3n", "expires_in": 300,
                                          "token_type": "bearer"})

            async def redirect(request: web.Request) -> web.StreamResponse:
                assert request.headers["Authorization"] == "Bearer t0k3n"
                assert request.headers["User-Agent"].startswith("hm-async/")
                raise web.HTTPFound(other_url + "/steal")

            app = web.Application()
            app.router.add_post("/v1/access_tokens", token)
            app.router.add_get("/v1/vehicle-data/autoapi-13/{vin}", redirect)
            runner, url = await _serve(app)
            try:
                async with HMClient(emu.client_credentials, base_url=url) as hm:
                    with pytest.raises(hm_async.APIError, match="not followed"):
                        await hm.vehicle_data_raw(emu.vehicles[0].vin)
            finally:
                await runner.cleanup()
        assert seen == []
    finally:
        await other_runner.cleanup()
