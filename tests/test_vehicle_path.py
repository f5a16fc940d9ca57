"""One reading of vehicle inputs, one vehicle-data request path (issue 12, point 1)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from hm_async import HMClient, InvalidVehicleError, Vehicle
from hm_async._clearance import as_vehicle
from hm_async._poll import Fleet, poll
from hm_async._response import Response
from hm_async._vehicle_data import VehicleDataResource
from hm_async._vehicles import VehicleItem, parse_vehicle_item
from hm_async.emulator import Emulator

pytestmark = pytest.mark.anyio

VIN = "WBA12345678901234"


@pytest.mark.parametrize(("item", "expected"), [
    (VIN, VehicleItem(VIN)),
    ((VIN, "mercedes_benz"), VehicleItem(VIN, "mercedes-benz")),
    ((VIN, "BMW", {"fleet": "a"}), VehicleItem(VIN, "bmw", {"fleet": "a"})),
    (Vehicle(vin=VIN, brand="volvo_cars", tags={"x": "y"}), VehicleItem(VIN, "volvo-cars",
                                                                        {"x": "y"})),
])
def test_every_input_shape_is_read_the_same_way(item: Any, expected: VehicleItem) -> None:
    assert parse_vehicle_item(item) == expected


@pytest.mark.parametrize(("item", "label", "problem"), [
    ("WBAD", "WBAD", "vin 'WBAD' is not a VIN"),
    (("WBAD", "bmw"), "WBAD", "vin 'WBAD' is not a VIN"),
    ((VIN, "bmv"), VIN, "brand 'bmv' is not a known brand"),
    ((VIN, "bmw", "not tags"), VIN, "dictionary update sequence"),
    (42, "42", "items must be VINs, (vin, brand[, tags]) tuples or Vehicle objects, got int"),
    ((VIN,), f"{VIN}", "got tuple"),
])
def test_a_bad_item_is_reported_not_raised(item: Any, label: str, problem: str) -> None:
    parsed = parse_vehicle_item(item)
    assert parsed.vin == label and parsed.brand is None
    assert parsed.problem is not None and problem in parsed.problem


def test_the_clearance_resource_reads_items_with_the_same_function() -> None:
    assert as_vehicle((VIN, "mercedes_benz", {"a": "b"})) == Vehicle(
        vin=VIN, brand="mercedes-benz", tags={"a": "b"})
    with pytest.raises(ValueError, match="vehicles item vin 'WBAD' is not a VIN"):
        as_vehicle(("WBAD", "bmw"))
    with pytest.raises(ValueError, match="items must be Vehicle objects or"):
        as_vehicle(VIN)  # type: ignore[arg-type]  # a clearance needs the brand


async def test_vehicle_data_has_one_request_path(emulator: Emulator,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """vehicle_data, vehicle_data_raw, poll and watch all send through
    VehicleDataResource.request, so there is one description of the request."""
    sent: list[tuple[str, str | None]] = []
    original = VehicleDataResource.request

    def counting(self: VehicleDataResource, vin: str,
                 brand: str | None) -> Awaitable[Response]:
        sent.append((vin, brand))
        return original(self, vin, brand)

    monkeypatch.setattr(VehicleDataResource, "request", counting)
    v = emulator.vehicles[0]
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        await hm.vehicle_data(v.vin)
        await hm.vehicle_data_raw(v.vin, v.brand)
        assert [r.ok async for r in hm.poll([(v.vin, v.brand)])] == [True]
        assert [r.vin async for r in hm.watch([v.vin], every=0.01, rounds=1)] == [v.vin]
        view = hm.with_options(max_retries=0)
        assert [r.ok async for r in view.poll([v.vin])] == [True]
    assert sent == [(v.vin, None), (v.vin, v.brand), (v.vin, v.brand), (v.vin, v.brand),
                    (v.vin, v.brand)]
    assert emulator.stats.count("vehicle_data") == 5


async def test_the_poller_needs_a_fetch_callable_not_a_client(emulator: Emulator) -> None:
    """The poller is given what it needs; here a fetch over a client's resource that
    refuses one VIN, to show the poller uses nothing else of the client."""
    vins = [v.vin for v in emulator.vehicles[:5]]
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        resource = VehicleDataResource(hm._requester)

        def fetch(vin: str, brand: str | None) -> Awaitable[Response]:
            if vin == vins[0]:
                raise InvalidVehicleError("refused by the caller's fetch")
            return resource.request(vin, brand)

        fleet = Fleet(fetch=fetch, clearances=hm.clearance.list, limiter=None)
        results = {r.vin: r async for r in poll(fleet, ["WBAD", *vins], concurrency=2)}
    assert set(results) == {"WBAD", *vins}
    assert isinstance(results["WBAD"].error, InvalidVehicleError)
    assert isinstance(results[vins[0]].error, InvalidVehicleError)
    assert all(results[v].ok and results[v].brand for v in vins[1:])
    assert emulator.stats.count("vehicle_data") == 4


@pytest.mark.parametrize("target", ["https://elsewhere.example/v1/fleets/vehicles",
                                    "//elsewhere.example/v1/x", "v1/fleets/vehicles", ""])
async def test_requests_are_named_by_target_on_the_api_origin_only(
        emulator: Emulator, target: str) -> None:
    """Resources hand the transport a request target (path and query); only the transport
    joins it to the configured origin. Anything that is not a path there is refused before
    a token is attached or a byte is sent, on both lanes."""
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        for method in ("GET", "POST"):  # the GET lane and the aiohttp lane
            with pytest.raises(ValueError, match="not a path on the API origin"):
                await hm._requester.request(method, target, endpoint="x", idempotent=True)
        assert emulator.stats.token_requests == 0
        # a real target works, query included (the clearance list's filter)
        listed = await hm.clearance.list(vins=[emulator.vehicles[0].vin])
        assert [c.vin for c in listed] == [emulator.vehicles[0].vin]
