"""Raw mode: status, headers, body and request id of any call, beside its typed result.

``hm.with_raw_response.vehicle_data(vin)`` (and ``.eligibility``, ``.clearance.*``,
``.static_data.*``) makes the same request as the typed call and returns an
:class:`APIResponse` -- the shape openai-python's ``with_raw_response`` made familiar::

    raw = await hm.with_raw_response.vehicle_data(vin)
    raw.status, raw.headers["Content-Type"], raw.request_id, len(raw.body)
    data = raw.parse()                                 # the VehicleData the typed call returns

It works by handing the ordinary resource a :class:`_RecordingRequester`, a
:class:`~hm_async._requester.Requester` that keeps every answer it passes on, so there is
one description of each request and raw mode costs nothing when unused. Errors are raised
as in the typed call (an error answer's status, headers and request id are on the
:class:`~hm_async.APIError`), except a body that cannot be decoded: its response is still
returned and :meth:`APIResponse.parse` raises the :class:`~hm_async.DecodeError`.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Generic, TypeVar

from aiolimiter import AsyncLimiter
from multidict import CIMultiDictProxy

from ._clearance import ClearanceResource, VehicleLike
from ._eligibility import check_eligibility
from ._errors import DecodeError
from ._requester import Requester
from ._response import Response
from ._static_data import StaticDataResource
from ._vehicle_data import VehicleDataResource
from .models import VehicleData
from .models._fleet import Clearance, ClearanceResult, Eligibility
from .models.static_data import StaticData, VehicleValuation

__all__ = ["APIResponse", "RawClearance", "RawResponses", "RawStaticData"]

T = TypeVar("T")


class APIResponse(Generic[T]):
    """The HTTP answer of one call and its parsed value (:meth:`parse`).

    ``status``, ``headers`` (every header, rate-limit headers included when the server
    sends any), ``body`` (the bytes as received, decompressed) and ``request_id`` describe
    the call's last HTTP answer; a call that needs several requests (a clearance request
    of more than 100 vehicles, a list of more than 100 VINs) has them all in
    ``responses``, in order. Retried attempts are not kept: only the answers that counted.
    """

    __slots__ = ("_error", "_value", "responses")

    def __init__(self, responses: Sequence[Response], value: T | None,
                 error: DecodeError | None = None) -> None:
        if not responses:
            raise ValueError("an APIResponse needs at least one HTTP answer")
        self.responses: tuple[Response, ...] = tuple(responses)
        self._value = value
        self._error = error

    @property
    def http_response(self) -> Response:
        """The last HTTP answer of the call."""
        return self.responses[-1]

    @property
    def status(self) -> int:
        return self.responses[-1].status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.responses[-1].headers

    @property
    def body(self) -> bytes:
        return self.responses[-1].body

    @property
    def request_id(self) -> str | None:
        """HM's request id: the ``X-Request-Id`` header, else the body's ``request_id``."""
        return self.responses[-1].request_id

    def parse(self) -> T:
        """The typed result the ordinary call returns; raises its DecodeError if any."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"APIResponse(status={self.status}, request_id={self.request_id!r}, "
                f"bytes={len(self.body)})")


class _RecordingRequester:
    """A :class:`~hm_async._requester.Requester` that keeps each answer it passes on."""

    __slots__ = ("_inner", "responses")

    def __init__(self, inner: Requester) -> None:
        self._inner = inner
        self.responses: list[Response] = []

    async def request(self, method: str, target: str, *, endpoint: str, idempotent: bool,
                      body: bytes | None = None, brand: str | None = None,
                      rate_limited: bool = False) -> Response:
        resp = await self._inner.request(method, target, endpoint=endpoint,
                                         idempotent=idempotent,
                                         body=body, brand=brand, rate_limited=rate_limited)
        self.responses.append(resp)
        return resp


async def _raw(requester: Requester,
               call: Callable[[_RecordingRequester], Awaitable[T]]) -> APIResponse[T]:
    recorder = _RecordingRequester(requester)
    try:
        value = await call(recorder)
    except DecodeError as exc:
        if not recorder.responses:
            raise
        return APIResponse(recorder.responses, None, exc)
    return APIResponse(recorder.responses, value)


class RawClearance:
    """``hm.with_raw_response.clearance``: the clearance calls, answering APIResponse."""

    __slots__ = ("_get_limiter", "_requester")

    def __init__(self, requester: Requester, get_limiter: AsyncLimiter) -> None:
        self._requester = requester
        self._get_limiter = get_limiter

    def _resource(self, recorder: _RecordingRequester) -> ClearanceResource:
        return ClearanceResource(recorder, self._get_limiter)

    async def request(self, vehicles: Iterable[VehicleLike]
                      ) -> APIResponse[builtins.list[ClearanceResult]]:
        return await _raw(self._requester, lambda r: self._resource(r).request(vehicles))

    async def get(self, vin: str) -> APIResponse[Clearance]:
        return await _raw(self._requester, lambda r: self._resource(r).get(vin))

    async def list(
        self,
        *,
        vins: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        brands: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        approved_after: datetime | None = None,
        approved_before: datetime | None = None,
        inserted_after: datetime | None = None,
        inserted_before: datetime | None = None,
    ) -> APIResponse[builtins.list[Clearance]]:
        return await _raw(self._requester, lambda r: self._resource(r).list(
            vins=vins, statuses=statuses, brands=brands, tags=tags,
            approved_after=approved_after, approved_before=approved_before,
            inserted_after=inserted_after, inserted_before=inserted_before))

    async def delete(self, vin: str) -> APIResponse[Clearance]:
        return await _raw(self._requester, lambda r: self._resource(r).delete(vin))


class RawStaticData:
    """``hm.with_raw_response.static_data``: get and valuation, answering APIResponse."""

    __slots__ = ("_requester",)

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def get(self, vin: str) -> APIResponse[StaticData]:
        return await _raw(self._requester, lambda r: StaticDataResource(r).get(vin))

    async def valuation(self, vin: str, *, odometer: float, registration_date: date | str,
                        country: str) -> APIResponse[VehicleValuation]:
        return await _raw(self._requester, lambda r: StaticDataResource(r).valuation(
            vin, odometer=odometer, registration_date=registration_date, country=country))


class RawResponses:
    """``hm.with_raw_response``: every call of the client, answering :class:`APIResponse`."""

    __slots__ = ("_requester", "clearance", "static_data")

    def __init__(self, requester: Requester, clearance_get_limiter: AsyncLimiter) -> None:
        self._requester = requester
        self.clearance = RawClearance(requester, clearance_get_limiter)
        self.static_data = RawStaticData(requester)

    async def vehicle_data(self, vin: str, brand: str | None = None
                           ) -> APIResponse[VehicleData]:
        return await _raw(self._requester, lambda r: VehicleDataResource(r).get(vin, brand))

    async def vehicle_data_raw(self, vin: str, brand: str | None = None) -> APIResponse[bytes]:
        return await _raw(self._requester, lambda r: VehicleDataResource(r).raw(vin, brand))

    async def eligibility(self, vin: str, brand: str) -> APIResponse[Eligibility]:
        return await _raw(self._requester, lambda r: check_eligibility(r, vin, brand))
