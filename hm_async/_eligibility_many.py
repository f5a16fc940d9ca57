"""Eligibility checks for many vehicles at once, one result per VIN, as they finish.

Operators onboard hundreds of vehicles at a time and want to know, before asking for
clearance, which of them can deliver data. :func:`eligibility_many` fans the single check out
with the discipline of ``poll``: every distinct VIN is checked exactly once (a repeated VIN is
not checked again), at most ``concurrency`` checks are in flight, and each VIN gets exactly
one :class:`EligibilityResult` holding either its :class:`~hm_async.models.Eligibility` or the
:class:`~hm_async.HMError` that ended its check; one VIN's failure never stops the others.
An item that is not a valid ``(vin, brand)`` is reported as an
:class:`~hm_async.InvalidVehicleError` result without a request.

It takes the single check as a coroutine function (``hm.eligibility``), so it knows nothing
of the client, the transport or ``poll``. Results come in completion order. Stopping the
iteration early (``break``) cancels the checks still running; no task outlives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from ._clearance import VehicleLike
from ._errors import HMError, InvalidVehicleError
from ._vehicles import ELIGIBILITY_BRANDS, normalize_brand, parse_vehicle_item
from .models._fleet import Eligibility

__all__ = ["DEFAULT_CONCURRENCY", "EligibilityCheck", "EligibilityResult", "eligibility_many"]

#: Checks in flight at once: the Eligibility API answers from HM's own records, so a modest
#: fan-out finishes hundreds of VINs in seconds without crowding the client's connections.
DEFAULT_CONCURRENCY = 16

EligibilityCheck = Callable[[str, str], Awaitable[Eligibility]]


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    """The outcome for one VIN: ``eligibility`` when the check answered, else ``error``.

    ``brand`` is as given (None when the input item had none).
    """

    vin: str
    brand: str | None
    eligibility: Eligibility | None = None
    error: HMError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def eligible(self) -> bool:
        """True only when the check answered and said the vehicle is eligible."""
        return self.eligibility is not None and self.eligibility.eligible


def _items(vehicles: Iterable[object]) -> Iterator[tuple[str, str] | EligibilityResult]:
    """Each distinct VIN once: ``(vin, brand)`` to check, or the result of a bad item.

    Items are read by :func:`~hm_async._vehicles.parse_vehicle_item`, as ``poll`` and the
    clearance resource read them; a check also needs a brand the Eligibility API serves.
    """
    seen: set[str] = set()
    for raw in vehicles:
        item = parse_vehicle_item(raw, argument="vehicles")
        problem = item.problem
        brand: str | None = None
        if problem is None:
            if item.brand is None:
                problem = (f"vehicles item {item.vin!r} has no brand: an eligibility check "
                           f"needs (vin, brand) or a Vehicle")
            else:
                try:
                    brand = normalize_brand(item.brand, allowed=ELIGIBILITY_BRANDS,
                                            argument="vehicles item brand")
                except ValueError as exc:
                    problem = str(exc)
        if problem is not None or brand is None:
            yield EligibilityResult(vin=item.vin, brand=None,
                                    error=InvalidVehicleError(problem or "no brand"))
            continue
        if item.vin not in seen:
            seen.add(item.vin)
            yield item.vin, brand


async def eligibility_many(
    check: EligibilityCheck,
    vehicles: Iterable[VehicleLike],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> AsyncGenerator[EligibilityResult, None]:
    """Run ``check(vin, brand)`` for every distinct VIN of ``vehicles`` (``Vehicle`` objects
    or ``(vin, brand)`` tuples); yield one :class:`EligibilityResult` per VIN as each
    finishes. Errors other than :class:`~hm_async.HMError` (bugs) stop the iteration."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError("concurrency must be an int >= 1")
    items = _items(vehicles)
    done: asyncio.Queue[EligibilityResult | BaseException | None] = asyncio.Queue()

    async def worker() -> None:
        try:
            # One shared iterator: each item is taken by exactly one worker.
            for item in items:
                if isinstance(item, EligibilityResult):
                    done.put_nowait(item)
                    continue
                vin, brand = item
                try:
                    answer = await check(vin, brand)
                except HMError as exc:
                    done.put_nowait(EligibilityResult(vin=vin, brand=brand, error=exc))
                else:
                    done.put_nowait(EligibilityResult(vin=vin, brand=brand, eligibility=answer))
        except Exception as exc:  # a bug in the check or the input: end the iteration
            done.put_nowait(exc)
        else:
            done.put_nowait(None)  # this worker ran out of items

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    running = len(workers)
    try:
        while running:
            got = await done.get()
            if got is None:
                running -= 1
            elif isinstance(got, BaseException):
                raise got
            else:
                yield got
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
