"""Fleet fan-out: vehicle data for thousands of VINs, one result per VIN, nothing lost.

Shape of a poll::

    inputs (lazy) ──► N workers (anyio task group, N = concurrency) ──► bounded stream ──► caller
                         │  fleet.fetch(vin, brand): the client's one vehicle-data request
                         │  (per-brand limiter, retries, token: all in the policy loop)
                         └─ every failure becomes that VIN's PollResult.error

The poller gets a :class:`Fleet` -- the vehicle-data request, the clearance list (for bare
VINs) and the limiter (to see which brands are throttled) -- never the client itself.
Every input item is read by :func:`~hm_async._vehicles.parse_vehicle_item`, once.

Why it is built this way:

* Memory is O(concurrency): workers pull the next input only when free, and the result
  stream holds at most ``concurrency`` results, so a slow consumer pauses the workers
  instead of piling up decoded payloads. (Input items of a throttled brand may be set
  aside, up to a bounded look-ahead, so that the other brands go on: see ``_Scheduler``.)
* The task group lives in a runner task, not in the async generator itself: a generator
  abandoned by ``break`` is closed by asyncio's finalizer from another task, and a cancel
  scope must be left by the task that entered it. The generator's ``finally`` cancels the
  runner and waits for it, so in-flight requests stop and connections return to the pool.
* Exactly once: each worker turns its item into exactly one result, whatever happens
  (``HMError`` from the transport, a decode failure, even an unexpected bug), and sends it
  before taking the next item.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from datetime import timedelta
from typing import Any, NamedTuple

import anyio
import msgspec

from ._age_stats import Stale, stale_marker
from ._clearance import VehicleLike
from ._errors import APIError, HMError, InvalidVehicleError, NotClearedError
from ._limiter import RateLimiter
from ._progress import BrandProgress, Progress
from ._response import Response
from ._shard import in_shard, in_shard_async, validate_shard
from ._slots import Slots
from ._vehicle_data import decode
from ._vehicles import VehicleItem, normalize_brand, parse_vehicle_item
from .models import VehicleData
from .models._fleet import Clearance

__all__ = ["BrandProgress", "Fleet", "PollResult", "Progress", "VehicleInput", "WatchResult",
           "poll", "watch"]

#: What ``poll`` accepts per item: a VIN (brand learned from the clearance list), a
#: ``(vin, brand)`` tuple or a :class:`Vehicle`.
VehicleInput = str | VehicleLike



class Fleet(NamedTuple):
    """What a poll needs from the client, and nothing more."""

    #: The one vehicle-data request: ``fetch(vin, brand)`` -> the 200 answer (or HMError).
    fetch: Callable[[str, str | None], Awaitable[Response]]
    #: Every clearance of the application (one list call), for VINs given without a brand.
    clearances: Callable[[], Awaitable[list[Clearance]]]
    #: The per-brand limiter, read (``waiting``) to keep a throttled brand from every worker.
    limiter: RateLimiter | None


_END = object()
#: Input items a poll may set aside while their brand is throttled (see _Scheduler): at
#: least this many, or 16 per worker. Parked items are the caller's small input items
#: (VIN strings, tuples), not payloads: 2,000 of them cost a few hundred KB.
MIN_LOOKAHEAD = 2000
LOOKAHEAD_PER_WORKER = 16


def _request_id(data: VehicleData | None, error: HMError | None) -> str | None:
    if data is not None:
        return data.request_id
    return error.request_id if isinstance(error, APIError) else None


class PollResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome for one VIN: ``data`` when it worked, else ``error`` (never both).

    ``stale`` is set (``poll(..., max_age=)``) when the newest property of ``data`` is
    older than ``max_age``: the data is still returned, the marker says how old it is.
    """

    vin: str
    brand: str | None
    data: VehicleData | None = None
    error: HMError | None = None
    raw: bytes | None = None
    stale: Stale | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def request_id(self) -> str | None:
        """HM's request id of the answer (from the body, or from the error), if it gave one.

        Read when asked, from what the result holds already: it costs a poll nothing.
        """
        return _request_id(self.data, self.error)


class WatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """A VIN whose data changed since the previous round; ``changed`` names the properties."""

    vin: str
    brand: str | None
    round: int
    changed: tuple[str, ...]
    data: VehicleData | None = None
    error: HMError | None = None
    stale: Stale | None = None

    @property
    def request_id(self) -> str | None:
        """HM's request id of the answer (see :attr:`PollResult.request_id`)."""
        return _request_id(self.data, self.error)


class _ClearanceDirectory:
    """VIN -> clearance, loaded with one list call the first time a bare VIN needs a brand."""

    def __init__(self, clearances: Callable[[], Awaitable[list[Clearance]]]) -> None:
        self._clearances = clearances
        self._lock = anyio.Lock()
        self._by_vin: dict[str, Clearance] | None = None
        self._error: HMError | None = None

    async def lookup(self, vin: str) -> Clearance | None:
        if self._by_vin is None and self._error is None:
            async with self._lock:
                if self._by_vin is None and self._error is None:
                    try:
                        listed = await self._clearances()
                        self._by_vin = {c.vin: c for c in listed}
                    except HMError as exc:
                        self._error = exc
        if self._error is not None:
            raise self._error
        assert self._by_vin is not None
        return self._by_vin.get(vin)


class _Scheduler:
    """Picks each worker's next item so that a throttled brand cannot hold every worker.

    Workers take items in input order. Without care, a brand that is paused by 429s or
    paced by its limit soon has every worker waiting in its limiter queue while the other
    brands' VINs sit unread behind them. So a brand may occupy at most half the workers,
    and none more once ``SATURATED_WAITERS`` of its requests queue in its limiter; an item
    of a brand over its share is parked and the worker reads on. Parked items go out as
    soon as their brand has room again. At most ``lookahead`` items are parked; past that,
    and once the input is exhausted, parked items run whatever their brand's state, so
    every item runs exactly once (and a one-brand fleet still uses every worker).
    """

    SATURATED_WAITERS = 2

    def __init__(self, limiter: RateLimiter | None, concurrency: int, lookahead: int) -> None:
        self._limiter = limiter
        self._share = max(1, (concurrency + 1) // 2)
        self._lookahead = lookahead
        self._parked: dict[str, deque[VehicleItem]] = {}
        self._parked_count = 0
        self._running: dict[str | None, int] = {}

    def _has_room(self, brand: str) -> bool:
        if self._running.get(brand, 0) >= self._share:
            return False
        limiter = self._limiter
        return limiter is None or limiter.waiting(brand) < self.SATURATED_WAITERS

    def _start(self, item: VehicleItem) -> VehicleItem:
        brand = item.brand
        self._running[brand] = self._running.get(brand, 0) + 1
        return item

    def admit(self, raw: object) -> VehicleItem | None:
        """The input item, read, to run now; None when it was parked for later."""
        item = parse_vehicle_item(raw)
        brand = item.brand
        if brand is None or self._parked_count >= self._lookahead or self._has_room(brand):
            return self._start(item)
        self._parked.setdefault(brand, deque()).append(item)
        self._parked_count += 1
        return None

    def unpark(self, *, force: bool = False) -> VehicleItem | None:
        """A parked item whose brand has room; with ``force``, any parked item if none has.

        One pass over the parked brands (every worker calls this for every item, so it
        is written out rather than built from ``_has_room``): the first brand with room
        wins; failing that, with ``force``, the least busy brand (an idle worker is worse
        than a queued one).
        """
        if not self._parked_count:
            return None
        running = self._running
        share = self._share
        limiter = self._limiter
        saturated = self.SATURATED_WAITERS
        chosen: str | None = None
        least = share + 1 << 30
        for brand in self._parked:
            busy = running.get(brand, 0)
            if busy < share and (limiter is None or limiter.waiting(brand) < saturated):
                chosen = brand
                break
            if force and busy < least:
                chosen, least = brand, busy
        else:
            if not force:
                return None
        assert chosen is not None
        items = self._parked[chosen]
        item = items.popleft()
        if not items:
            del self._parked[chosen]
        self._parked_count -= 1
        return self._start(item)

    def finished(self, brand: str | None) -> None:
        self._running[brand] -= 1


class _Poller:
    """The workers of one poll; see the module docstring."""

    def __init__(self, fleet: Fleet, keep_raw: bool, progress: Progress,
                 max_age: timedelta | None = None) -> None:
        self._fetch = fleet.fetch
        self._max_age = max_age
        self._limiter = fleet.limiter
        self._keep_raw = keep_raw
        self._progress = progress
        self._directory = _ClearanceDirectory(fleet.clearances)
        self._source_error: Exception | None = None
        self._source_done = False

    async def one(self, item: VehicleItem) -> PollResult:
        """The result for one input item, whatever happens; the scheduler is told the
        item is done before the result is handed on (or when it is cancelled)."""
        vin, brand = item.vin, item.brand
        try:
            if item.problem is not None:
                raise InvalidVehicleError(item.problem)
            if brand is None:
                clearance = await self._directory.lookup(vin)
                if clearance is None or clearance.status != "approved":
                    status = None if clearance is None else clearance.status
                    raise NotClearedError(
                        f"{vin} has no approved clearance (status: {status or 'unknown to HM'});"
                        f" no vehicle-data request made", vin=vin, status=status)
                brand = normalize_brand(clearance.brand) if clearance.brand else None
            body = (await self._fetch(vin, brand)).body
            data = decode(body)
            max_age = self._max_age
            result = PollResult(vin=vin, brand=brand, data=data,
                                raw=body if self._keep_raw else None,
                                stale=None if max_age is None else stale_marker(data, max_age))
        except HMError as exc:
            result = PollResult(vin=vin, brand=brand, error=exc)
        except Exception as exc:  # a bug must not lose the VIN: report it on the result
            wrapped = HMError(f"unexpected {type(exc).__name__} while polling {vin}: {exc}")
            wrapped.__cause__ = exc
            result = PollResult(vin=vin, brand=brand, error=wrapped)
        finally:
            self._scheduler.finished(item.brand)  # (the brand the scheduler counted it under)
        self._progress.record(brand, result.error)
        return result

    async def run(self, source: Iterator[Any] | AsyncIterator[Any], concurrency: int,
                  results: _Results) -> None:
        self._scheduler = _Scheduler(self._limiter, concurrency,
                                     max(MIN_LOOKAHEAD, LOOKAHEAD_PER_WORKER * concurrency))
        try:
            async with anyio.create_task_group() as tg:
                if isinstance(source, AsyncIterator):
                    shared = _SharedAsyncSource(source)
                    for _ in range(concurrency):
                        tg.start_soon(self._work_async, shared, results)
                else:
                    for _ in range(concurrency):
                        tg.start_soon(self._work_sync, source, results)
        finally:
            results.close()
        if self._source_error is not None:
            # every item read before the input failed has its result; now the failure
            raise self._source_error

    def _source_failed(self, exc: Exception) -> None:
        """The caller's input iterator raised: no more items; raised after the workers."""
        if self._source_error is None:
            self._source_error = exc

    def _next_sync(self, source: Iterator[Any]) -> VehicleItem | None:
        # next() runs to completion without yielding to the loop, so workers can share it.
        scheduler = self._scheduler
        if self._source_done:  # only parked items are left: one pass picks one
            return scheduler.unpark(force=True)
        picked = scheduler.unpark()
        if picked is not None:
            return picked
        try:
            for item in source:
                if (picked := scheduler.admit(item)) is not None:
                    return picked
        except Exception as exc:  # the caller's iterator failed
            self._source_failed(exc)
        self._source_done = True
        return scheduler.unpark(force=True)

    async def _next_async(self, source: _SharedAsyncSource) -> VehicleItem | None:
        scheduler = self._scheduler
        if source.done:  # only parked items are left: one pass picks one
            return scheduler.unpark(force=True)
        picked = scheduler.unpark()
        if picked is not None:
            return picked
        async with source.lock:  # one reader at a time; the others wait for their turn
            try:
                while (item := await source.next()) is not _END:
                    if (picked := scheduler.admit(item)) is not None:
                        return picked
            except Exception as exc:  # the caller's iterator failed
                source.done = True
                self._source_failed(exc)
        return scheduler.unpark(force=True)

    # The worker loops hand each result on without awaiting when there is room: a
    # coroutine per VIN is measurable on the hot path.

    async def _work_sync(self, source: Iterator[Any], results: _Results) -> None:
        while (picked := self._next_sync(source)) is not None:
            result = await self.one(picked)
            if not results.try_put(result):
                await results.put(result)

    async def _work_async(self, source: _SharedAsyncSource, results: _Results) -> None:
        while (picked := await self._next_async(source)) is not None:
            result = await self.one(picked)
            if not results.try_put(result):
                await results.put(result)


class _SharedAsyncSource:
    """An async input iterator that every worker reads, one at a time, under a lock.

    An async generator cannot be advanced by two tasks at once. A feeder task with a
    memory stream (the earlier design) cost a task switch and two anyio checkpoints per
    item -- for an async source that never waits, more CPU than the request itself. An
    uncontended ``asyncio.Lock`` and ``anext`` of a ready generator never yield to the
    loop, so a worker reads its next item in place. Nothing is read ahead.
    """

    __slots__ = ("_source", "done", "lock")

    def __init__(self, source: AsyncIterator[Any]) -> None:
        self._source = source
        self.done = False
        self.lock = asyncio.Lock()

    async def next(self) -> Any:
        """The next item, or ``_END`` once the source is exhausted (call under ``lock``)."""
        if self.done:
            return _END
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            self.done = True
            return _END


class _Results:
    """Worker -> consumer hand-off, bounded to ``capacity`` unread results.

    anyio's memory streams yield to the event loop on every send and receive (a checkpoint),
    which costs two loop iterations per VIN on the hot path; a deque with a semaphore for
    room costs none while neither side has to wait.
    """

    __slots__ = ("_closed", "_items", "_room", "_waiter")

    def __init__(self, capacity: int) -> None:
        self._items: deque[PollResult] = deque()
        self._room = Slots(capacity)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def try_put(self, result: PollResult) -> bool:
        """Hand ``result`` on if there is room now (False: ``await put(result)``)."""
        if not self._room.try_take():
            return False
        self._items.append(result)
        self._wake()
        return True

    async def put(self, result: PollResult) -> None:
        await self._room.take()
        self._items.append(result)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def get_nowait(self) -> PollResult | None:
        """The next result if one is ready, else None (then ``await get()``)."""
        items = self._items
        if not items:
            return None
        self._room.give()
        return items.popleft()

    async def get(self) -> PollResult | None:
        """The next result, or None once the workers are done and everything was read."""
        items = self._items
        while not items:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        self._room.give()
        return items.popleft()


async def poll(
    fleet: Fleet,
    vehicles: Iterable[VehicleInput] | AsyncIterable[VehicleInput],
    *,
    concurrency: int = 64,
    progress: Progress | None = None,
    keep_raw: bool = False,
    shard: tuple[int, int] | None = None,
    max_age: timedelta | float | None = None,
) -> AsyncGenerator[PollResult, None]:
    """Yield one :class:`PollResult` per input item, in completion order.

    ``shard=(i, n)`` keeps only the items whose VIN falls in shard ``i`` of ``n`` (a stable
    hash, see :mod:`hm_async._shard`): N workers split one list without a coordinator.

    ``vehicles`` is consumed lazily (a generator of a million VINs is fine). Bare VINs get
    their brand from one clearance list call; a VIN without approved clearance yields a
    :class:`~hm_async.NotClearedError` result and costs no vehicle-data request. Per-VIN
    failures are results, never exceptions. Breaking out of the loop or cancelling the
    consumer stops the in-flight requests. ``max_age`` (seconds or a timedelta) sets
    :attr:`PollResult.stale` on answers whose newest property is older than that.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError("concurrency must be an int >= 1")
    limit = _max_age(max_age)
    if isinstance(vehicles, AsyncIterable):
        source: Iterator[Any] | AsyncIterator[Any] = vehicles.__aiter__()
    elif isinstance(vehicles, Iterable) and not isinstance(vehicles, (str, bytes)):
        source = iter(vehicles)
    else:
        raise ValueError("vehicles must be an iterable or async iterable of VINs, "
                         "(vin, brand) tuples or Vehicle objects")
    if shard is not None:  # (the one hook of sharding; see _shard.py)
        source = (in_shard_async(source, validate_shard(shard))
                  if isinstance(source, AsyncIterator) else in_shard(source, shard))
    poller = _Poller(fleet, keep_raw, progress if progress is not None else Progress(), limit)
    results = _Results(concurrency)
    runner = asyncio.get_running_loop().create_task(poller.run(source, concurrency, results))
    try:
        while (result := results.get_nowait() or await results.get()) is not None:
            yield result
    finally:
        runner.cancel()
        await asyncio.wait([runner])
        if not runner.cancelled() and runner.exception() is not None:
            raise runner.exception()  # type: ignore[misc]


def _max_age(max_age: timedelta | float | None) -> timedelta | None:
    """``max_age`` as a timedelta, checked before any request."""
    if max_age is None:
        return None
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float, timedelta)):
        raise ValueError(f"max_age must be seconds or a timedelta, got {type(max_age).__name__}")
    limit = max_age if isinstance(max_age, timedelta) else timedelta(seconds=max_age)
    if limit < timedelta(0):
        raise ValueError("max_age must be >= 0")
    return limit


async def watch(
    fleet: Fleet,
    vehicles: Iterable[VehicleInput],
    *,
    every: float,
    rounds: int | None = None,
    concurrency: int = 64,
    include_errors: bool = False,
    max_age: timedelta | float | None = None,
) -> AsyncGenerator[WatchResult, None]:
    """Poll ``vehicles`` every ``every`` seconds; yield only VINs whose data changed.

    A property counts as changed when its timestamp differs from the last round (vehicle
    data updates sporadically: most rounds most VINs say nothing new). The first round
    reports every VIN. ``rounds`` stops after that many rounds; errors are yielded only
    with ``include_errors``. Brands learned in the first round are reused afterwards.
    ``max_age`` marks changed results whose newest property is still older than that
    (:attr:`WatchResult.stale`).
    """
    if not every > 0:
        raise ValueError("every must be a positive number of seconds")
    limit = _max_age(max_age)
    items: list[Any] = list(vehicles)
    seen: dict[str, dict[str, Any]] = {}
    brands: dict[str, str] = {}
    round_no = 0
    while rounds is None or round_no < rounds:
        started = time.monotonic()
        inputs = [(i, brands[i]) if isinstance(i, str) and i in brands else i for i in items]
        async with contextlib.aclosing(poll(fleet, inputs, concurrency=concurrency,
                                            max_age=limit)) as results:
            async for r in results:
                if r.brand is not None:
                    brands[r.vin] = r.brand
                if r.data is None:
                    if include_errors:
                        yield WatchResult(vin=r.vin, brand=r.brand, round=round_no, changed=(),
                                          error=r.error)
                    continue
                stamps = r.data.timestamps_by_path()
                before = seen.get(r.vin, {})
                changed = tuple(k for k, v in stamps.items() if before.get(k) != v)
                seen[r.vin] = stamps
                if changed:
                    yield WatchResult(vin=r.vin, brand=r.brand, round=round_no, changed=changed,
                                      data=r.data, stale=r.stale)
        round_no += 1
        if rounds is not None and round_no >= rounds:
            break
        await anyio.sleep(max(0.0, every - (time.monotonic() - started)))
