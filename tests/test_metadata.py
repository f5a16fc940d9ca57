"""Response metadata, data age and bulk eligibility over HTTP (issue 16 points 2, 3, 4).

* raw mode: ``hm.with_raw_response.<call>`` returns an ``APIResponse`` (status, headers,
  body, request id, ``.parse()``) for vehicle data, eligibility, clearance and static data;
  headers a server sends (request id, rate-limit headers) are visible through it;
* ``PollResult.request_id`` / ``WatchResult.request_id`` and the CLI's JSON lines;
* ``hm.poll(..., max_age=)`` / ``hm.watch(..., max_age=)`` mark old answers ``stale``;
* ``hm.eligibility_many``: each distinct VIN once, one result per VIN.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp import web
from cli_runner import clean_env, cli

from hm_async import (
    APIResponse,
    Clearance,
    DecodeError,
    Eligibility,
    EligibilityResult,
    HMClient,
    InvalidVehicleError,
    ServerError,
    Stale,
    VehicleData,
)
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.models import StaticData, VehicleValuation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def emu(emulator_factory: Any) -> Emulator:
    emu: Emulator = await emulator_factory(EmulatorConfig(failure_fraction=0.0, vehicles=12))
    return emu


@pytest.fixture
async def hm(emu: Emulator) -> AsyncIterator[HMClient]:
    async with HMClient(emu.client_credentials, base_url=emu.url) as client:
        yield client


# -- raw mode ---------------------------------------------------------------------------------


async def test_raw_vehicle_data_has_status_headers_body_request_id_and_parse(
        hm: HMClient, emu: Emulator) -> None:
    vehicle = emu.vehicles[-1]
    raw = await hm.with_raw_response.vehicle_data(vehicle.vin, vehicle.brand)
    assert isinstance(raw, APIResponse)
    assert raw.status == 200
    assert raw.headers["Content-Type"].startswith("application/json")
    wire = json.loads(raw.body)
    assert wire["vin"] == vehicle.vin
    assert raw.request_id == wire["request_id"] and raw.request_id
    data = raw.parse()
    assert isinstance(data, VehicleData) and data.request_id == raw.request_id
    assert hm.transport.lean is not None and hm.transport.lean.loop is not None  # lane on
    # a second call is a new answer with its own id
    again = await hm.with_raw_response.vehicle_data_raw(vehicle.vin)
    assert again.parse() == again.body and again.request_id != raw.request_id


async def test_raw_mode_for_eligibility_clearance_and_static_data(hm: HMClient,
                                                                  emu: Emulator) -> None:
    vehicle = emu.vehicles[-1]
    raw = hm.with_raw_response
    elig = await raw.eligibility(vehicle.vin, vehicle.brand)
    assert elig.status == 200 and isinstance(elig.parse(), Eligibility)
    assert elig.parse().vin == vehicle.vin
    got = await raw.clearance.get(vehicle.vin)
    assert got.status == 200 and isinstance(got.parse(), Clearance)
    assert json.loads(got.body)["vin"] == vehicle.vin
    listed = await raw.clearance.list(vins=[v.vin for v in emu.vehicles[:3]])
    assert sorted(c.vin for c in listed.parse()) == sorted(v.vin for v in emu.vehicles[:3])
    assert len(listed.responses) == 1
    new_vin = "WBANEWVIN00000001"
    requested = await raw.clearance.request([(new_vin, "bmw")])
    assert requested.status == 200 and requested.parse()[0].vin == new_vin
    deleted = await raw.clearance.delete(vehicle.vin)
    assert deleted.status == 200 and deleted.parse().vin == vehicle.vin
    static = await raw.static_data.get(vehicle.vin)
    assert static.status == 200 and isinstance(static.parse(), StaticData)
    value = await raw.static_data.valuation(vehicle.vin, odometer=42_000,
                                             registration_date=date(2021, 3, 1), country="DE")
    assert isinstance(value.parse(), VehicleValuation)
    assert json.loads(value.body)["valuation"] is not None


async def test_a_view_raw_mode_uses_the_views_options(hm: HMClient, emu: Emulator) -> None:
    emu.script_faults("vehicle_data", [503])
    with pytest.raises(ServerError):
        await hm.with_options(max_retries=0).with_raw_response.vehicle_data(emu.vehicles[-1].vin)


class HeaderServer:
    """A small HM-shaped server that sends a request id and rate-limit headers, and can
    answer a body that is not vehicle data."""

    def __init__(self) -> None:
        self.body = b'{"vin": "WBAEMU00000000001", "brand": "bmw"}'

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t" * 20, "expires_in": 300,
                                  "token_type": "bearer"})

    async def data(self, request: web.Request) -> web.Response:
        return web.Response(body=self.body, content_type="application/json", headers={
            "X-Request-Id": "hdr-42", "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "9"})


@pytest.fixture
async def header_server() -> AsyncIterator[tuple[HeaderServer, str]]:
    server = HeaderServer()
    app = web.Application()
    app.router.add_post("/v1/access_tokens", server.token)
    app.router.add_get("/v1/vehicle-data/autoapi-13/{vin}", server.data)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_rate_limit_headers_and_header_request_id_are_visible(
        header_server: tuple[HeaderServer, str], emu: Emulator) -> None:
    server, url = header_server
    async with HMClient(emu.client_credentials, base_url=url) as hm:
        raw = await hm.with_raw_response.vehicle_data("WBAEMU00000000001")
        assert raw.request_id == "hdr-42"  # the header wins over the body
        assert raw.headers["X-RateLimit-Limit"] == "10"
        assert raw.headers["X-RateLimit-Remaining"] == "9"
        server.body = b"<html>not json</html>"
        broken = await hm.with_raw_response.vehicle_data("WBAEMU00000000001")
        assert broken.status == 200 and broken.body == server.body  # still returned
        with pytest.raises(DecodeError):
            broken.parse()
        with pytest.raises(DecodeError):
            await hm.vehicle_data("WBAEMU00000000001")  # the typed call raises as before


# -- request ids on poll and watch results, and in the CLI ------------------------------------


async def test_poll_and_watch_results_carry_the_request_id(hm: HMClient, emu: Emulator) -> None:
    vehicles = [(v.vin, v.brand) for v in emu.vehicles[:6]]
    emu.script_faults("vehicle_data", [503])
    view = hm.with_options(max_retries=0)
    results = [r async for r in view.poll(vehicles, concurrency=1, keep_raw=True)]
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1 and isinstance(failed[0].error, ServerError)
    assert failed[0].request_id == failed[0].error.request_id and failed[0].request_id
    for r in results:
        if r.ok:
            assert r.raw is not None
            assert r.request_id == json.loads(r.raw)["request_id"] and r.request_id
    watched = [w async for w in hm.watch(vehicles[:2], every=0.01, rounds=1)]
    assert len(watched) == 2 and all(w.request_id for w in watched)
    assert all(w.request_id == w.data.request_id for w in watched if w.data is not None)


async def test_cli_poll_writes_the_request_id_on_each_line(emu: Emulator) -> None:
    rows = "\n".join(f"{v.vin},{v.brand}" for v in emu.vehicles[:4])
    emu.script_faults("vehicle_data", [503] * 8)  # the first VIN fails after its retries
    run = await cli("--base-url", emu.url, "--client-id", emu.client_id, "poll",
                    "--no-progress", "--concurrency", "1", stdin=rows.encode(),
                    env=clean_env(HM_CLIENT_SECRET=emu.client_secret))
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert len(lines) == 4, run
    for line in lines:
        assert line["request_id"], line
        if line["ok"]:
            assert line["request_id"] == line["data"]["request_id"]
        else:
            assert line["request_id"] == line["error"]["request_id"]
    assert any(not line["ok"] for line in lines) and any(line["ok"] for line in lines)


# -- data age: max_age ------------------------------------------------------------------------


async def test_poll_max_age_marks_exactly_the_old_answers(hm: HMClient, emu: Emulator) -> None:
    vehicles = [(v.vin, v.brand) for v in emu.vehicles]
    plain = {r.vin: r for r in [r async for r in hm.poll(vehicles)]}
    ages = {vin: r.data.age() for vin, r in plain.items() if r.data is not None}
    assert all(a is not None for a in ages.values())
    ordered = sorted(a for a in ages.values() if a is not None)
    assert ordered[0] < ordered[-1]
    # a threshold in the middle of the biggest gap between two ages: stable while the
    # test runs, so each VIN is clearly on one side of it
    gaps = [(ordered[i + 1] - ordered[i], i) for i in range(len(ordered) - 1)]
    _, at = max(gaps)
    threshold = (ordered[at] + ordered[at + 1]) / 2
    assert ordered[at + 1] - ordered[at] > timedelta(seconds=2)
    marked = {r.vin: r async for r in hm.poll(vehicles, max_age=threshold)}
    for vin, r in marked.items():
        assert r.ok and r.data is not None
        expected_stale = ages[vin] is not None and ages[vin] > threshold  # type: ignore[operator]
        assert (r.stale is not None) == expected_stale, (vin, ages[vin], threshold)
        if r.stale is not None:
            assert isinstance(r.stale, Stale) and r.stale.max_age == threshold
            assert r.stale.age is not None and r.stale.age > threshold
            assert r.stale.newest == r.data.freshness().newest
    assert 0 < sum(r.stale is not None for r in marked.values()) < len(marked)
    # seconds work too; no marker without max_age, every answer marked at max_age=0
    assert all(r.stale is None for r in plain.values())
    zero = [r async for r in hm.poll(vehicles[:3], max_age=0)]
    assert all(r.stale is not None for r in zero)
    fresh = [r async for r in hm.poll(vehicles[:3], max_age=10 * 365 * 86400.0)]
    assert all(r.stale is None for r in fresh)


async def test_watch_max_age_and_bad_values(hm: HMClient, emu: Emulator) -> None:
    vehicles = [(v.vin, v.brand) for v in emu.vehicles[:3]]
    watched = [w async for w in hm.watch(vehicles, every=0.01, rounds=1, max_age=0)]
    assert len(watched) == 3 and all(isinstance(w.stale, Stale) for w in watched)
    before = emu.stats.count(route="vehicle_data")
    for bad in (-1, "1h", True):
        with pytest.raises(ValueError, match="max_age"):
            async for _ in hm.poll(vehicles, max_age=bad):  # type: ignore[arg-type]
                pass
    assert emu.stats.count(route="vehicle_data") == before  # refused before any request


# -- bulk eligibility -------------------------------------------------------------------------


async def test_eligibility_many_on_the_client(hm: HMClient, emu: Emulator) -> None:
    vehicles: list[Any] = [(v.vin, v.brand) for v in emu.vehicles]
    vehicles.append((emu.vehicles[0].vin, emu.vehicles[0].brand))  # a repeat: not again
    vehicles.append(("SHORT", "bmw"))
    await hm.tokens.get()
    results = [r async for r in hm.eligibility_many(vehicles, concurrency=3)]
    assert all(isinstance(r, EligibilityResult) for r in results)
    assert sorted(r.vin for r in results) == sorted([v.vin for v in emu.vehicles] + ["SHORT"])
    invalid = {r.vin for r in results if isinstance(r.error, InvalidVehicleError)}
    assert "SHORT" in invalid  # (and brands the Eligibility API does not serve)
    checked = [r for r in results if r.vin not in invalid]
    assert len(checked) >= len(emu.vehicles) // 2 and all(r.ok for r in checked)
    assert emu.stats.count(route="eligibility") == len(checked)  # each VIN once
