"""One shape for "this vehicle's data changed", whether it was polled or pushed.

``hm.watch()`` yields :class:`hm_async.WatchResult` (VIN, changed properties, REST data) and
``stream()`` yields :class:`StreamEvent` (VIN, message id, streaming data). A worker that only
wants to know *which vehicle reported what, when* can consume :class:`VehicleChange` from
either, so switching from polling to streaming is one line::

    source = hm.watch(vins, every=60)                  # polling
    source = events                                    # streaming (inside `async with stream(...)`)
    async for change in changes(source):
        change.vin, change.changed, change.timestamps

Failures (a poll error, a malformed message) are skipped by :func:`changes`; consume the
source directly to see them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import Any, Literal

import msgspec

from ._events import MalformedMessage, StreamEvent, property_timestamps

__all__ = ["VehicleChange", "as_change", "changes"]


class VehicleChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A vehicle whose data changed: ``changed`` as ``capability.property`` paths,
    ``timestamps`` per value (``capability.property[i]``), ``data`` the typed model it came
    with (REST :class:`hm_async.VehicleData` or :class:`~hm_async.models.StreamingVehicleData`)."""

    vin: str
    changed: tuple[str, ...]
    timestamps: dict[str, datetime]
    data: Any
    source: Literal["poll", "stream"]
    message_id: str | None = None


def as_change(item: Any) -> VehicleChange | None:
    """A :class:`VehicleChange` from a ``WatchResult`` or a ``StreamEvent`` (None for failures).

    Duck-typed on ``vin``/``changed``/``data`` so it does not depend on the polling module.
    """
    if isinstance(item, StreamEvent):
        stamps = property_timestamps(item.data)
        return VehicleChange(vin=item.vin, changed=_paths(stamps), timestamps=stamps,
                             data=item.data, source="stream", message_id=item.message_id)
    if isinstance(item, MalformedMessage):
        return None
    data = getattr(item, "data", None)
    if data is None or getattr(item, "error", None) is not None:
        return None
    stamps = property_timestamps(data)
    changed = tuple(sorted({path.partition("[")[0] for path in item.changed}))
    return VehicleChange(vin=item.vin, changed=changed,
                         timestamps={k: v for k, v in stamps.items()
                                     if k.partition("[")[0] in changed},
                         data=data, source="poll")


async def changes(source: AsyncIterable[Any]) -> AsyncIterator[VehicleChange]:
    """:func:`as_change` over a watch or a stream; failures are skipped."""
    async for item in source:
        change = as_change(item)
        if change is not None:
            yield change


def _paths(stamps: dict[str, datetime]) -> tuple[str, ...]:
    return tuple(sorted({path.partition("[")[0] for path in stamps}))
