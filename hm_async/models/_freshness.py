"""How old is this data? Timestamp methods mixed into the generated vehicle-data models.

HM returns the latest data the carmaker delivered, which may be hours old (a car may report
when its doors lock, not during a trip). Every property carries the time the vehicle
recorded it, so age is a property of each value: ``Property.age()``; and of an answer: the
newest and oldest timestamps of all its properties, found in one walk over the decoded
struct (``VehicleData.freshness()``). The walk only follows struct fields (capabilities,
then properties, then list items): a few hundred attribute reads, no JSON again.

These classes are mixins (no state, ``__slots__ = ()``): the generator names them as bases
of ``Property``, ``VehicleData`` and ``StreamingVehicleData``, and this module imports no
model, so the generated code depends on it and not the other way round. Timestamps without
a UTC offset (the spec says RFC 3339, which has one) are taken as UTC.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, NamedTuple

from msgspec.structs import astuple

__all__ = ["Freshness", "PropertyAge", "VehicleDataFreshness"]


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def _now(now: datetime | None) -> datetime:
    return datetime.now(timezone.utc) if now is None else _aware(now)


_CAPABILITIES: dict[type, dict[str, Any]] = {}


def _capabilities(cls: type) -> dict[str, Any]:
    """Capability field name -> its struct class, read once per model class from the hints
    (so a misspelt name is caught even when the answer lacks that capability)."""
    known = _CAPABILITIES.get(cls)
    if known is None:
        known = _CAPABILITIES[cls] = {
            name: arg
            for name, hint in typing.get_type_hints(cls).items()
            for arg in typing.get_args(hint)
            if hasattr(arg, "__struct_fields__")
        }
    return known


class Freshness(NamedTuple):
    """Newest and oldest property timestamps of one answer, and which properties they are
    (``"capability.property"``); all None when no property has a timestamp."""

    newest: datetime | None
    oldest: datetime | None
    newest_property: str | None
    oldest_property: str | None
    values: int
    """How many property values carried a timestamp."""

    def age(self, now: datetime | None = None) -> timedelta | None:
        """How long ago the newest value was recorded: the age of the answer as a whole."""
        return None if self.newest is None else _now(now) - self.newest


class PropertyAge:
    """``age()`` for ``Property``: how long ago the vehicle recorded this value."""

    __slots__ = ()
    timestamp: datetime | None

    def age(self, now: datetime | None = None) -> timedelta | None:
        """``now`` (default: the current time, UTC) minus ``timestamp``; None without one."""
        ts = self.timestamp
        return None if ts is None else _now(now) - _aware(ts)


class VehicleDataFreshness:
    """Timestamp queries for ``VehicleData`` (and ``StreamingVehicleData``)."""

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]

    def property_timestamps(self) -> Iterator[tuple[str, datetime]]:
        """``("capability.property", timestamp)`` for every value that has a timestamp;
        a multi-instance property yields one pair per instance."""
        for cap_name, prop_name, _, ts in self._walk():
            yield f"{cap_name}.{prop_name}", _aware(ts)

    def timestamps_by_path(self, *, index_single: bool = False) -> dict[str, datetime]:
        """Path -> timestamp (as sent) of every timestamped value, for change detection.

        A multi-instance property's values are ``capability.property[i]``; a single value
        is ``capability.property``, or ``capability.property[0]`` with ``index_single``
        (so REST answers, which have single values, and streaming messages, which have
        lists, name a value alike). ``hm.watch`` and the stream's ``property_timestamps``
        both read this.
        """
        out: dict[str, datetime] = {}
        for cap_name, prop_name, index, ts in self._walk():
            if index is None and not index_single:
                out[f"{cap_name}.{prop_name}"] = ts
            else:
                out[f"{cap_name}.{prop_name}[{index or 0}]"] = ts
        return out

    def _walk(self) -> Iterator[tuple[str, str, int | None, datetime]]:
        """(capability, property, list index or None for a single value, raw timestamp)
        of every timestamped value. Reads a struct's fields in one C call
        (``msgspec.structs.astuple``, shallow) and skips absent ones."""
        capabilities = _capabilities(type(self))
        me: Any = self  # a msgspec.Struct: this class is only mixed into generated structs
        for cap_name, cap in zip(self.__struct_fields__, astuple(me), strict=True):
            if cap is None or cap_name not in capabilities:
                continue  # an absent capability, or request_id / vin / brand
            for prop_name, value in zip(cap.__struct_fields__, astuple(cap), strict=True):
                if value is None:
                    continue
                if type(value) is list:
                    for index, item in enumerate(value):
                        if item.timestamp is not None:
                            yield cap_name, prop_name, index, item.timestamp
                elif value.timestamp is not None:
                    yield cap_name, prop_name, None, value.timestamp

    def freshness(self) -> Freshness:
        """Newest and oldest property timestamps, found in one walk (the loop of
        :meth:`_walk` written out: this runs once per polled answer)."""
        newest_at: datetime | None = None
        oldest_at: datetime | None = None
        newest = oldest = ("", "")
        values = 0
        capabilities = _capabilities(type(self))
        me: Any = self
        for cap_name, cap in zip(self.__struct_fields__, astuple(me), strict=True):
            if cap is None or cap_name not in capabilities:
                continue
            for prop_name, value in zip(cap.__struct_fields__, astuple(cap), strict=True):
                if value is None:
                    continue
                for item in value if type(value) is list else (value,):
                    ts = item.timestamp
                    if ts is None:
                        continue
                    if ts.tzinfo is None:
                        ts = _aware(ts)
                    values += 1
                    if newest_at is None or ts > newest_at:
                        newest, newest_at = (cap_name, prop_name), ts
                    if oldest_at is None or ts < oldest_at:
                        oldest, oldest_at = (cap_name, prop_name), ts
        if not values:
            return Freshness(None, None, None, None, 0)
        return Freshness(newest_at, oldest_at, ".".join(newest), ".".join(oldest), values)

    def newest_timestamp(self) -> datetime | None:
        """When the most recent value of this answer was recorded (None: no timestamps)."""
        return self.freshness().newest

    def oldest_timestamp(self) -> datetime | None:
        """When the least recent value of this answer was recorded (None: no timestamps)."""
        return self.freshness().oldest

    def age(self, now: datetime | None = None) -> timedelta | None:
        """Age of the newest value: how stale the answer is as a whole."""
        return self.freshness().age(now)

    def property_age(self, name: str, now: datetime | None = None) -> timedelta | None:
        """Age of ``"capability.property"`` (e.g. ``"diagnostics.odometer"``); for a
        multi-instance property, of its newest instance. None when the answer lacks it or
        it has no timestamp; ValueError for a name the model does not know (a typo)."""
        cap_name, _, prop_name = name.partition(".")
        cap_class = _capabilities(type(self)).get(cap_name)
        if cap_class is None or not prop_name:
            raise ValueError(f"{name!r} is not 'capability.property' of this model")
        if prop_name not in cap_class.__struct_fields__:
            raise ValueError(f"{cap_name} has no property {prop_name!r}")
        cap = getattr(self, cap_name)
        if cap is None:
            return None
        value: Any = getattr(cap, prop_name)
        items = value if type(value) is list else ([] if value is None else [value])
        stamps = [_aware(i.timestamp) for i in items if i.timestamp is not None]
        return _now(now) - max(stamps) if stamps else None
