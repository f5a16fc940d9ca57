"""Fleet-level freshness: a stale marker for one result, and the age spread of many.

Pure functions over :class:`~hm_async.models.VehicleData` (whose ``freshness()`` finds the
newest property timestamp of one answer), for the poller and the CLI summary to use:

* :func:`stale_marker` gives a :class:`Stale` marker when an answer's newest property is
  older than ``max_age`` (``hm.poll(..., max_age=)`` puts it on the result; data that old
  is still data, so it is a marker, not an exception);
* :func:`age_stats` summarises the ages of a polled fleet (median, p90, oldest), and
  :meth:`AgeStats.describe` writes them as one line for a summary table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .models._freshness import VehicleDataFreshness

__all__ = ["AgeStats", "Stale", "age_stats", "format_age", "stale_marker"]


@dataclass(frozen=True, slots=True)
class Stale:
    """An answer whose newest property is older than ``max_age`` (or has no timestamp at
    all, then ``newest`` and ``age`` are None)."""

    newest: datetime | None
    age: timedelta | None
    max_age: timedelta


def stale_marker(data: VehicleDataFreshness, max_age: timedelta | float,
                 now: datetime | None = None) -> Stale | None:
    """A :class:`Stale` marker when ``data``'s newest property is older than ``max_age``
    (seconds or a timedelta) at ``now`` (default: the current time), else None."""
    limit = max_age if isinstance(max_age, timedelta) else timedelta(seconds=max_age)
    if limit < timedelta(0):
        raise ValueError("max_age must be >= 0")
    fresh = data.freshness()
    age = fresh.age(now or datetime.now(timezone.utc))
    if age is not None and age <= limit:
        return None
    return Stale(newest=fresh.newest, age=age, max_age=limit)


@dataclass(frozen=True, slots=True)
class AgeStats:
    """The spread of data ages over a fleet: ``median``, ``p90`` (nearest rank) and
    ``oldest`` of the answers that had a timestamp (``count``); ``unknown`` answers had
    none. The ages are None when no answer had one."""

    count: int
    unknown: int
    median: timedelta | None
    p90: timedelta | None
    oldest: timedelta | None

    def describe(self) -> str:
        """One line, e.g. ``median 2h 05m · p90 9h 40m · oldest 3d 02h (950 vehicles)``."""
        if self.median is None or self.p90 is None or self.oldest is None:
            return f"no timestamps ({self.unknown} without)"
        text = (f"median {format_age(self.median)} · p90 {format_age(self.p90)} · oldest "
                f"{format_age(self.oldest)} ({self.count} vehicles")
        return text + (f", {self.unknown} without timestamps)" if self.unknown else ")")


def age_stats(ages: Iterable[timedelta | None]) -> AgeStats:
    """Median, p90 and oldest of ``ages`` (one per answer; None for an answer without any
    timestamp, counted apart). One sort; fine for a fleet of a million."""
    known: list[timedelta] = []
    unknown = 0
    for age in ages:
        if age is None:
            unknown += 1
        else:
            known.append(age)
    if not known:
        return AgeStats(count=0, unknown=unknown, median=None, p90=None, oldest=None)
    known.sort()
    n = len(known)
    middle = known[n // 2] if n % 2 else (known[n // 2 - 1] + known[n // 2]) / 2
    p90 = known[max(0, math.ceil(0.9 * n) - 1)]
    return AgeStats(count=n, unknown=unknown, median=middle, p90=p90, oldest=known[-1])


def format_age(age: timedelta) -> str:
    """A short human age: ``42s``, ``7m 05s``, ``2h 05m``, ``3d 02h`` (negative: ``-``,
    a vehicle clock ahead of ours)."""
    seconds = int(age.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"
