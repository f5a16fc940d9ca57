"""Injected faults, rate limits, latency and the counters tests read, over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


class Raw:
    """Plain aiohttp calls with a token; outcomes as the client would see them."""

    def __init__(self, emu: Emulator, http: aiohttp.ClientSession) -> None:
        self.emu, self.http = emu, http
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        status, body = await self.token()
        assert status == 200, body
        self.headers = {"Authorization": f"Bearer {body['access_token']}"}

    async def token(self) -> tuple[int | str, Any]:
        try:
            async with self.http.post("/v1/access_tokens", json={
                "grant_type": "client_credentials", "client_id": self.emu.client_id,
                "client_secret": self.emu.client_secret,
            }) as resp:
                return resp.status, await resp.json(content_type=None)
        except aiohttp.ServerDisconnectedError:
            return "drop", None

    async def data(self, vin: str) -> tuple[int | str, Any, Any]:
        """(status or "drop", body, headers); HTML bodies come back as text."""
        try:
            async with self.http.get(f"/v1/vehicle-data/autoapi-13/{vin}",
                                     headers=self.headers) as resp:
                if resp.content_type == "text/html":
                    return resp.status, await resp.text(), resp.headers
                return resp.status, await resp.json(), resp.headers
        except aiohttp.ServerDisconnectedError:
            return "drop", None, None


async def open_raw(emu: Emulator, **session: Any) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession(base_url=emu.url, **session) as http:
        raw = Raw(emu, http)
        await raw.login()
        yield raw


@pytest.fixture
async def make_raw(emulator_factory: Any) -> AsyncIterator[Any]:
    gens: list[Any] = []

    async def make(config: EmulatorConfig | None = None, session: dict[str, Any] | None = None,
                   **changes: Any) -> Raw:
        emu = await emulator_factory(config or EmulatorConfig(**changes))
        gen = open_raw(emu, **(session or {}))
        gens.append(gen)
        result: Raw = await gen.__anext__()
        return result

    yield make
    for gen in gens:
        await gen.aclose()


async def test_fault_rate_is_honoured_with_every_kind(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=10, fault_rate=0.3, seed=11)
    n = 600
    outcomes: Counter[int | str] = Counter()
    for i in range(n):
        status, body, _ = await raw.data(raw.emu.vehicles[i % 10].vin)
        outcomes[status] += 1
        if status == 502:
            assert "<html>" in body and "502 Bad Gateway" in body
        elif status in (503, 504, 408, 500):
            assert set(body) == {"errors", "request_id"}
            assert set(body["errors"][0]) == {"title", "detail"}
    # aiohttp repeats a GET once by itself when the connection drops, so count at the server.
    stats = raw.emu.stats
    served = stats.count("vehicle_data")
    faults = sum(stats.faults.values())
    assert served - n == stats.count("vehicle_data", 0) - outcomes["drop"]  # the repeats
    # Binomial(~630, 0.3): mean ~190, sd ~11.5; these bounds fail only for a broken rate.
    assert 0.22 * served <= faults <= 0.38 * served, stats.faults
    assert set(stats.faults) == {"503", "504", "408", "500", "drop", "html502"}
    assert {503, 504, 408, 500, 502} <= set(outcomes), outcomes
    assert stats.count("vehicle_data", 200) == outcomes[200]


async def test_faults_stay_on_their_routes(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=2, fault_rate=1.0, faults=("503",))
    assert (await raw.token())[0] == 200  # only vehicle_data by default
    assert (await raw.data(raw.emu.vehicles[0].vin))[0] == 503
    raw.emu.set_config(fault_routes=("token",))
    status, body = await raw.token()
    assert status == 503 and body["errors"][0]["title"] == "Service Unavailable"
    assert (await raw.data(raw.emu.vehicles[0].vin))[0] == 200


async def test_scripted_faults_come_in_order_then_normal_service(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=2)
    vin = raw.emu.vehicles[0].vin
    # Two drops in a row: aiohttp silently repeats a GET once after a dropped connection.
    raw.emu.script_faults("vehicle_data", [503, "drop", "drop", None, 429, "html502", 401, 422])
    seen = [(await raw.data(vin))[0] for _ in range(8)]
    assert seen == [503, "drop", 200, 429, 502, 401, 422, 200]
    assert raw.emu.stats.count("vehicle_data", 0) == 2
    raw.emu.script_faults("vehicle_data", ["drop"])
    assert (await raw.data(vin))[0] == 200  # dropped once, repeated by aiohttp, served
    assert raw.emu.stats.count("vehicle_data", 0) == 3
    raw.emu.script_faults("token", ["drop", 500])  # POST: never repeated by aiohttp
    assert [(await raw.token())[0] for _ in range(3)] == ["drop", 500, 200]
    raw.emu.script_faults("vehicle_data", [503, 503])
    raw.emu.clear_faults()
    assert (await raw.data(vin))[0] == 200
    with pytest.raises(ValueError, match="unknown route"):
        raw.emu.script_faults("oauth", [503])
    with pytest.raises(ValueError, match="unknown scripted outcome"):
        raw.emu.script_faults("vehicle_data", [200])


async def test_rate_limit_answers_429_with_retry_after(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=4, brands=("bmw", "ford"), rate_limits={"bmw": 5.0})
    bmw = [v.vin for v in raw.emu.vehicles if v.brand == "bmw"]
    ford = [v.vin for v in raw.emu.vehicles if v.brand == "ford"]
    results = await asyncio.gather(*(raw.data(bmw[i % 2]) for i in range(20)))
    statuses = Counter(status for status, _, _ in results)
    assert statuses == {200: 5, 429: 15}  # a bucket of one second's worth
    limited = next(r for r in results if r[0] == 429)
    assert limited[1]["errors"] == [{"title": "Too Many Requests",
                                     "detail": "Rate limit exceeded"}]
    assert limited[2]["Retry-After"] == "1"
    assert [(await raw.data(ford[0]))[0] for _ in range(20)] == [200] * 20  # other brand
    assert raw.emu.stats.max_in_window("bmw") == 20  # arrivals, refused or not
    await asyncio.sleep(0.45)
    assert (await raw.data(bmw[0]))[0] == 200  # refilled at 5/s


async def test_paced_client_never_sees_429(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=2, brands=("mercedes-benz",),
                              rate_limits={"mercedes_benz": 10.0})
    vin = raw.emu.vehicles[0].vin
    started = time.monotonic()
    statuses = []
    for i in range(15):
        await asyncio.sleep(max(0.0, started + i * 0.11 - time.monotonic()))
        statuses.append((await raw.data(vin))[0])
    assert statuses == [200] * 15
    assert raw.emu.stats.max_in_window("mercedes-benz") <= 10


async def test_default_rate_limit_applies_to_unlisted_brands(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=2, brands=("kia", "bmw"), rate_limits={"bmw": 100.0},
                              default_rate_limit=2.0)
    kia, bmw = raw.emu.vehicles[0].vin, raw.emu.vehicles[1].vin
    assert [(await raw.data(kia))[0] for _ in range(3)] == [200, 200, 429]
    assert [(await raw.data(bmw))[0] for _ in range(3)] == [200, 200, 200]


async def test_latency_and_in_flight(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=20, latency=0.2)
    started = time.monotonic()
    results = await asyncio.gather(*(raw.data(v.vin) for v in raw.emu.vehicles))
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _, _ in results)
    assert 0.2 <= elapsed < 1.5  # concurrent, each delayed
    assert raw.emu.stats.max_in_flight == 20 and raw.emu.stats.in_flight == 0
    raw.emu.set_config(latency=(0.05, 0.1))
    for _ in range(3):
        t = time.monotonic()
        await raw.data(raw.emu.vehicles[0].vin)
        assert 0.05 <= time.monotonic() - t < 0.6


async def test_connections_and_counters(emulator_factory: Any) -> None:
    emu: Emulator = await emulator_factory(vehicles=3)
    async for raw in open_raw(emu, connector=aiohttp.TCPConnector(limit=1)):
        for v in emu.vehicles:
            await raw.data(v.vin)
        await raw.data("WBANOPE0000000001")
    stats = emu.stats
    assert stats.connections == 1  # one pooled socket for everything
    assert stats.token_requests == 1
    assert stats.count("vehicle_data", 200) == 3 and stats.count("vehicle_data", 403) == 1
    assert stats.requests[("token", 200)] == 1 and stats.statuses[200] == 4
    assert stats.count(status=403) == 1 and stats.total == 5
    stats.reset()
    assert stats.total == 0 and stats.connections == 0 and stats.token_requests == 0
    async for raw in open_raw(emu, connector=aiohttp.TCPConnector(force_close=True)):
        for v in emu.vehicles:
            await raw.data(v.vin)
    assert stats.connections == 4  # token + 3, each on its own socket


async def test_config_changes_apply_at_once_and_are_validated(make_raw: Any) -> None:
    raw: Raw = await make_raw(vehicles=1)
    vin = raw.emu.vehicles[0].vin
    assert (await raw.data(vin))[0] == 200
    raw.emu.set_config(fault_rate=1.0, faults=("504",))
    assert (await raw.data(vin))[0] == 504
    raw.emu.config.fault_rate = 0.0  # the live config object works too
    assert (await raw.data(vin))[0] == 200
    with pytest.raises(ValueError, match="fault_rate"):
        raw.emu.set_config(fault_rate=2.0)
    assert raw.emu.config.fault_rate == 0.0


@pytest.mark.parametrize(
    "bad",
    [{"faults": ("418",)}, {"fault_routes": ("oauth",)}, {"token_lifetime": 0},
     {"latency": (0.2, 0.1)}, {"vehicles": -1}, {"rate_limits": {"bmw": 0.0}},
     {"no_consent_fraction": 0.7, "asleep_fraction": 0.7}, {"brands": ()},
     {"update_interval": 0.0}],
)
def test_invalid_configs_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**bad)


def test_unknown_fleet_brand_is_refused() -> None:
    with pytest.raises(ValueError, match="brands"):
        Emulator(EmulatorConfig(brands=("trabant",)))
