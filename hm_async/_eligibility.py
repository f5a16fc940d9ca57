"""The Eligibility API: can this vehicle deliver data? (``POST /v1/eligibility``).

One function over a :class:`~hm_async._requester.Requester`, so ``hm.eligibility``, the raw
mode (``hm.with_raw_response.eligibility``) and ``hm.eligibility_many`` send the same request.
"""

from __future__ import annotations

import msgspec

from ._decode import decode
from ._requester import Requester
from ._vehicles import ELIGIBILITY_BRANDS, normalize_brand, validate_vin
from .models._fleet import ELIGIBILITY_DECODER, Eligibility

__all__ = ["ELIGIBILITY_PATH", "check_eligibility"]

ELIGIBILITY_PATH = "/v1/eligibility"


async def check_eligibility(requester: Requester, vin: str, brand: str) -> Eligibility:
    """Whether ``vin`` of ``brand`` can deliver data; validates both before any request."""
    vin = validate_vin(vin)
    brand = normalize_brand(brand, allowed=ELIGIBILITY_BRANDS)
    body = msgspec.json.encode({"vin": vin, "brand": brand})
    resp = await requester.request("POST", ELIGIBILITY_PATH,
                                   endpoint="eligibility", body=body, idempotent=True,
                                   brand=brand)
    return decode(ELIGIBILITY_DECODER, resp.body, what="eligibility", path=ELIGIBILITY_PATH)
