"""``hm.clearance``: request, inspect and remove data-access clearance for fleet vehicles."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio
import msgspec
from aiolimiter import AsyncLimiter
from yarl import URL

from ._decode import decode
from ._errors import SettleTimeoutError
from ._requester import Requester
from ._vehicles import Vehicle, normalize_brand, parse_vehicle_item, validate_vin
from .models._fleet import (
    CLEARANCE_DECODER,
    CLEARANCE_LIST_DECODER,
    CLEARANCE_RESULTS_DECODER,
    CLEARANCE_STATUSES,
    Clearance,
    ClearanceResult,
)

__all__ = ["ClearanceResource", "VehicleLike", "as_vehicle", "single_get_limiter"]

#: A vehicle given as a ``Vehicle`` or a ``(vin, brand)`` / ``(vin, brand, tags)`` tuple.
VehicleLike = Vehicle | tuple[str, str] | tuple[str, str, Mapping[str, str]]

#: The Fleet Clearance API's collection (``/{vin}`` for one vehicle).
CLEARANCE_PATH = "/v1/fleets/vehicles"

#: VINs per POST: HM documents no maximum; 100 keeps one request's body and the blast
#: radius of one failed request small.
REQUEST_BATCH = 100
#: VINs per list call in a ``vin in [...]`` filter: keeps the URL-encoded filter well under
#: the 8 KB URL limit of common proxies (100 VINs encode to about 3 KB).
FILTER_BATCH = 100
#: GET /v1/fleets/vehicles/{vin} allows 60 calls a minute per application; one every
#: 1.05 s keeps any 60 s window at 58 calls or fewer.
SINGLE_GET_PERIOD = 1.05

#: wait_until_settled: first pause between list calls, and its growth per call.
SETTLE_FIRST_DELAY = 0.25
SETTLE_BACKOFF = 1.5

_encoder = msgspec.json.Encoder()


def as_vehicle(item: VehicleLike | str, *, argument: str = "vehicles") -> Vehicle:
    """Turn one caller-given vehicle into a validated :class:`Vehicle` (brand required)."""
    if isinstance(item, Vehicle):
        return item
    if not isinstance(item, tuple) or len(item) not in (2, 3):  # a clearance needs the brand
        raise ValueError(
            f"{argument} items must be Vehicle objects or (vin, brand[, tags]) tuples, got "
            f"{type(item).__name__}")
    parsed = parse_vehicle_item(item, argument=argument)
    if parsed.problem is not None or parsed.brand is None:
        raise ValueError(parsed.problem)
    return Vehicle(vin=parsed.vin, brand=parsed.brand, tags=parsed.tags)


def _condition(values: Sequence[Any]) -> dict[str, Any]:
    if len(values) == 1:
        return {"operator": "eq", "value": values[0]}
    return {"operator": "in", "value": list(values)}


def _date_condition(after: datetime | None, before: datetime | None,
                    name: str) -> dict[str, Any] | None:
    if after is not None and before is not None:
        raise ValueError(f"give {name}_after or {name}_before, not both: HM's filter takes one "
                         f"operator per field")
    if after is not None:
        return {"operator": "gt", "value": _iso(after)}
    if before is not None:
        return {"operator": "lt", "value": _iso(before)}
    return None


def _iso(value: datetime) -> str:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    return value.isoformat().replace("+00:00", "Z")


def build_filter(
    *,
    vins: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    brands: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    approved_after: datetime | None = None,
    approved_before: datetime | None = None,
    inserted_after: datetime | None = None,
    inserted_before: datetime | None = None,
) -> dict[str, Any]:
    """The JSON ``filter`` of ``GET /v1/fleets/vehicles``, validated before any request."""
    out: dict[str, Any] = {}
    if vins:
        out["vin"] = _condition([validate_vin(v, argument="vins item") for v in vins])
    if statuses:
        for s in statuses:
            if not isinstance(s, str) or s not in CLEARANCE_STATUSES or s == "error":
                raise ValueError(f"statuses item {s!r} is not a clearance status; valid: "
                                 f"{', '.join(sorted(CLEARANCE_STATUSES - {'error'}))}")
        out["status"] = _condition(list(statuses))
    if brands:
        out["brand"] = _condition([normalize_brand(b, argument="brands item") for b in brands])
    if tags:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ValueError("tags must map str to str")
        out["tags"] = {"operator": "contains", "value": dict(tags)}
    for name, after, before in (("approved_at", approved_after, approved_before),
                                ("inserted_at", inserted_after, inserted_before)):
        cond = _date_condition(after, before, name.split("_")[0])
        if cond is not None:
            out[name] = cond
    return out


def single_get_limiter() -> AsyncLimiter:
    """The pacing of ``GET /v1/fleets/vehicles/{vin}``: one per application (client and
    views share it), since HM counts these calls per application."""
    return AsyncLimiter(1, SINGLE_GET_PERIOD)


class ClearanceResource:
    """The Fleet Clearance API. Reached as ``hm.clearance``.

    ``requester`` sends through the client's policy loop with the calling view's options;
    ``get_limiter`` is the application-wide pacing of :meth:`get` (:func:`single_get_limiter`).
    """

    def __init__(self, requester: Requester, get_limiter: AsyncLimiter) -> None:
        self._requester = requester
        self._single_get_limiter = get_limiter

    @staticmethod
    def _target(suffix: str = "") -> str:
        return CLEARANCE_PATH + suffix

    async def request(self, vehicles: Iterable[VehicleLike]) -> list[ClearanceResult]:
        """Ask for data access to ``vehicles``; one :class:`ClearanceResult` per VIN.

        Large lists are sent in batches of 100. A VIN HM refuses comes back with
        ``status == "error"`` and a ``description``; it does not raise.
        Not retried after an ambiguous failure (the request may have been applied).
        """
        items = [as_vehicle(v) for v in vehicles]
        results: list[ClearanceResult] = []
        for start in range(0, len(items), REQUEST_BATCH):
            batch = items[start:start + REQUEST_BATCH]
            body = _encoder.encode({"vehicles": [
                {"vin": v.vin, "brand": v.brand, "tags": dict(v.tags or {})} for v in batch
            ]})
            resp = await self._requester.request("POST", self._target(),
                                                 endpoint="clearance.request", body=body,
                                                 idempotent=False)
            decoded = decode(CLEARANCE_RESULTS_DECODER, resp.body, what="clearance results",
                             path=CLEARANCE_PATH)
            results.extend(decoded.vehicles)
        return results

    async def get(self, vin: str) -> Clearance:
        """The clearance of one VIN. HM allows 60 of these a minute: prefer :meth:`list`."""
        vin = validate_vin(vin)
        await self._single_get_limiter.acquire()
        resp = await self._requester.request("GET", self._target("/" + vin),
                                             endpoint="clearance.get", idempotent=True)
        return decode(CLEARANCE_DECODER, resp.body, what="clearance",
                      path="/v1/fleets/vehicles/{vin}")

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
    ) -> list[Clearance]:
        """Clearances matching every given condition (all of them when none is given).

        More than 100 ``vins`` are split over several calls to keep URLs short.
        """
        if isinstance(vins, str) or isinstance(statuses, str) or isinstance(brands, str):
            raise ValueError("vins, statuses and brands take lists, not a single str")
        common = dict(statuses=statuses, brands=brands, tags=tags,
                      approved_after=approved_after, approved_before=approved_before,
                      inserted_after=inserted_after, inserted_before=inserted_before)
        vin_list = list(vins) if vins else []
        if not vin_list:
            return await self._list_once(build_filter(**common))  # type: ignore[arg-type]
        out: list[Clearance] = []
        for start in range(0, len(vin_list), FILTER_BATCH):
            flt = build_filter(vins=vin_list[start:start + FILTER_BATCH],
                               **common)  # type: ignore[arg-type]
            out.extend(await self._list_once(flt))
        return out

    async def _list_once(self, flt: Mapping[str, Any]) -> builtins.list[Clearance]:
        target = self._target()
        if flt:  # (yarl encodes the query exactly as aiohttp would have)
            target = URL.build(path=target, query={"filter": _encoder.encode(flt).decode()}
                               ).raw_path_qs
        resp = await self._requester.request("GET", target, endpoint="clearance.list",
                                             idempotent=True)
        listed = decode(CLEARANCE_LIST_DECODER, resp.body, what="clearance list",
                        path=CLEARANCE_PATH)
        return builtins.list(listed)

    async def delete(self, vin: str) -> Clearance:
        """Revoke (approved) or cancel (pending) one VIN's clearance.

        A second delete raises :class:`~hm_async.ConflictError`. Not retried after an
        ambiguous failure, since the first attempt may have been applied.
        """
        vin = validate_vin(vin)
        resp = await self._requester.request("DELETE", self._target("/" + vin),
                                             endpoint="clearance.delete", idempotent=False)
        return decode(CLEARANCE_DECODER, resp.body, what="clearance", path="/v1/fleets/vehicles"
                      "/{vin}")

    async def wait_until_settled(
        self, vins: Iterable[str], *, timeout: float = 600.0, interval: float = 5.0
    ) -> dict[str, Clearance]:
        """Poll until no VIN is pending, revoking or canceling; return the final states.

        Uses list calls with a VIN filter (100 VINs a call), never the 60-a-minute per-VIN
        endpoint. The first checks come quickly (after 0.25 s, then 1.5 times longer each
        time, up to ``interval``), so a change that takes a second is seen in about a
        second while a slow approval costs one call per ``interval``. VINs HM does not know
        are missing from the result. Raises :class:`~hm_async.SettleTimeoutError` (with the
        last states seen) after ``timeout``.
        """
        pending = {validate_vin(v, argument="vins item") for v in vins}
        settled: dict[str, Clearance] = {}
        deadline = time.monotonic() + timeout
        delay = min(SETTLE_FIRST_DELAY, interval)
        while pending:
            for c in await self.list(vins=sorted(pending)):
                if c.vin in pending and c.settled:
                    settled[c.vin] = c
                    pending.discard(c.vin)
                elif c.vin in pending:
                    settled[c.vin] = c  # last seen, replaced once settled
            unsettled = {v for v in pending if v in settled}
            pending = unsettled
            if not pending:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SettleTimeoutError(
                    f"{len(pending)} of {len(settled)} clearances still not settled after "
                    f"{timeout} s", seconds=timeout, clearances=settled)
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * SETTLE_BACKOFF, interval)
        return settled
