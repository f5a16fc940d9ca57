"""``hm.static_data``: what DAT knows about a vehicle, and what it is worth.

The Vehicle Static Data API (scope ``vehicle:static-data``; production only at HM) answers
from the VIN alone: no clearance is needed. Two calls are offered; the deprecated
``GET /v1/vehicle-static-data/{vin}`` is not (its data is in ``get``'s answer).

The resource gets the client's :class:`~hm_async._requester.Requester` (URLs on the API origin,
the policy loop with the calling view's options), like ``hm.clearance``, so it neither knows the
client's internals nor the lanes beneath it.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from ._decode import decode
from ._requester import Requester
from ._vehicles import validate_vin
from .models.static_data import StaticData, ValuationRequest, VehicleValuation

__all__ = ["StaticDataResource"]

DATA_PATH = "/v1/vehicle-static-data/{vin}/data"
VALUATION_PATH = "/v1/vehicle-static-data/{vin}/valuation"

_DATA_DECODER = msgspec.json.Decoder(StaticData)
_VALUATION_DECODER = msgspec.json.Decoder(VehicleValuation)
_encoder = msgspec.json.Encoder()


def _registration_date(value: date | str) -> str:
    """``YYYY-MM-DD`` from a date (a datetime counts as its date); a str is sent as given,
    so HM's own check answers for it (a 422 naming ``registration_date``)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise ValueError(f"registration_date must be a date or 'YYYY-MM-DD', got "
                     f"{type(value).__name__}")


def _odometer(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"odometer must be a number of kilometres, got {type(value).__name__}")
    return value


class StaticDataResource:
    """The Vehicle Static Data API. Reached as ``hm.static_data``."""

    __slots__ = ("_requester",)

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def get(self, vin: str) -> StaticData:
        """Manufacturer, model, KBA numbers, specs and original price of one VIN.

        Raises :class:`~hm_async.ServerError` (504) when DAT, HM's source, fails.
        """
        vin = validate_vin(vin)
        requester = self._requester
        resp = await requester.request("GET", DATA_PATH.replace("{vin}", vin),
                                       endpoint="static_data.get", idempotent=True)
        return decode(_DATA_DECODER, resp.body, what="static data", path=DATA_PATH)

    async def valuation(self, vin: str, *, odometer: float, registration_date: date | str,
                        country: str) -> VehicleValuation:
        """DAT's valuation of one VIN for a market: ``odometer`` in km, the first
        ``registration_date`` (a date or ``"YYYY-MM-DD"``), ``country`` as ISO 3166-1
        alpha-2 (``"DE"``).

        HM checks the values: a refused one raises :class:`~hm_async.ValidationError` whose
        ``fields`` names it (``{"country_code": "can't be blank"}``). The call changes
        nothing at HM, so failures are retried like reads.
        """
        vin = validate_vin(vin)
        if not isinstance(country, str):
            raise ValueError(f"country must be a two-letter code like 'DE', got "
                             f"{type(country).__name__}")
        body = _encoder.encode(ValuationRequest(
            odometer=_odometer(odometer), registration_date=_registration_date(registration_date),
            country_code=country.strip().upper(),
        ))
        requester = self._requester
        resp = await requester.request("POST",
                                       VALUATION_PATH.replace("{vin}", vin),
                                       endpoint="static_data.valuation", body=body,
                                       idempotent=True)
        return decode(_VALUATION_DECODER, resp.body, what="valuation", path=VALUATION_PATH)
