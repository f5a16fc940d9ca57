"""Vehicle data: the one request path for ``GET /v1/vehicle-data/autoapi-13/{vin}``.

``hm.vehicle_data``, ``hm.vehicle_data_raw``, ``hm.poll`` and ``hm.watch`` all send through
:meth:`VehicleDataResource.request`, so there is one description of this request (path,
endpoint name for the meter, idempotency, brand pacing). It is the hot path of a fleet poll,
so ``request`` is a plain function returning the policy loop's coroutine: no extra await,
no copy, one string concatenation per VIN (and no URL object: see ``_requester``).
"""

from __future__ import annotations

from collections.abc import Awaitable

from ._requester import Requester
from ._response import Response
from ._vehicles import normalize_brand, validate_vin
from .models import VehicleData, decode_vehicle_data

__all__ = ["VEHICLE_DATA_PATH", "VEHICLE_DATA_ROUTE", "VehicleDataResource"]

VEHICLE_DATA_PATH = "/v1/vehicle-data/autoapi-13/"
#: The route as error messages name it (one constant: no per-VIN string for the decoder).
VEHICLE_DATA_ROUTE = VEHICLE_DATA_PATH + "{vin}"


class VehicleDataResource:
    """Vehicle data of one VIN at a time; the poller fans :meth:`request` out."""

    __slots__ = ("_requester",)

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def request(self, vin: str, brand: str | None) -> Awaitable[Response]:
        """The answer for a validated ``vin``; ``brand`` (dashed spelling, or None) applies
        that brand's rate limit and meters the call under it."""
        return self._requester.request(
            "GET", VEHICLE_DATA_PATH + vin, endpoint="vehicle_data",
            brand=brand, idempotent=True, rate_limited=brand is not None)

    async def raw(self, vin: str, brand: str | None = None) -> bytes:
        """The body HM sent, after validating ``vin`` and normalising ``brand``."""
        vin = validate_vin(vin)
        if brand is not None:
            brand = normalize_brand(brand)
        return (await self.request(vin, brand)).body

    async def get(self, vin: str, brand: str | None = None) -> VehicleData:
        """Typed vehicle data (Auto API level 13)."""
        return decode(await self.raw(vin, brand))


def decode(body: bytes) -> VehicleData:
    """The typed vehicle data of a body; :class:`~hm_async.DecodeError` names the route."""
    return decode_vehicle_data(body, path=VEHICLE_DATA_ROUTE)
