"""What a stream yields: a decoded :class:`StreamEvent`, or a :class:`MalformedMessage`.

Both are small frozen msgspec structs (``gc=False``: they hold no cycles, and a stream makes
tens of thousands a second). ``ok`` tells them apart, as on :class:`hm_async.PollResult`.
A V1 message (one property) and a V2 message (any number of capabilities) decode into the
same per-VIN shape, :class:`hm_async.models.StreamingVehicleData`, every property a list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ..models import StreamingVehicleData
from ..models._freshness import VehicleDataFreshness

__all__ = ["MalformedMessage", "StreamEvent", "property_timestamps"]


class StreamEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One vehicle's data as HM pushed it.

    ``data`` holds only what this message carried; ``changed`` names those properties as
    ``capability.property`` paths (the shape :class:`hm_async.WatchResult` uses), ``raw`` is
    the payload as received (unknown capabilities and fields are kept there), ``received_at``
    is when this process read it (UTC).
    """

    vin: str
    message_id: str
    data: StreamingVehicleData
    received_at: datetime
    raw: bytes
    topic: str
    version: int
    application_id: str | None = None

    ok: Literal[True] = True

    @property
    def changed(self) -> tuple[str, ...]:
        """``capability.property`` of every property in this message (sorted)."""
        return tuple(sorted({path.partition("[")[0] for path in self.timestamps}))

    @property
    def timestamps(self) -> dict[str, datetime]:
        """``capability.property[i]`` -> the value's timestamp, for each value carrying one."""
        return property_timestamps(self.data)


class MalformedMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A message that could not be decoded; the stream goes on. ``reason`` says why.

    ``message_id`` and ``vin`` are filled in when the envelope was readable. The payload is
    kept in ``raw`` for a dead-letter store; ``reason`` never quotes it.
    """

    topic: str
    reason: str
    received_at: datetime
    raw: bytes
    message_id: str | None = None
    vin: str | None = None

    ok: Literal[False] = False


def property_timestamps(data: VehicleDataFreshness) -> dict[str, datetime]:
    """``capability.property[i]`` -> timestamp for a REST or streaming vehicle-data model.

    Works on :class:`hm_async.VehicleData` (single values and lists) and on
    :class:`~hm_async.models.StreamingVehicleData` (lists only), so polled and pushed data
    describe their changes with the same keys (a single REST value is index 0).
    """
    return data.timestamps_by_path(index_single=True)
