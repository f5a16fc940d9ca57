"""Counters a test reads to check what the client really did on the wire.

Everything is plain ints, Counters and lists mutated on the event loop thread only, so
recording costs a dict update per request and the server stays out of benchmark results.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DROPPED", "Stats"]

#: Status recorded for a request whose connection the emulator closed without answering.
DROPPED = 0


@dataclass
class Stats:
    """What the emulator saw since start (or the last :meth:`reset`).

    ``requests`` counts ``(route, status)`` pairs (route is ``"token"``, ``"eligibility"``,
    ``"clearance"``, ``"vehicle_data"`` or ``"other"``; status ``0`` means the connection was
    dropped on purpose); ``statuses`` counts statuses over all routes. ``connections`` is the
    number of distinct client sockets that sent a request. ``vehicle_data_times`` holds, per
    brand (dashed spelling), the ``time.monotonic()`` arrival time of every vehicle-data
    request, so :meth:`max_in_window` can tell the busiest one-second window;
    ``token_times`` the arrival time of every token request (to check refresh cycles).
    """

    token_requests: int = 0
    tokens_issued: int = 0
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    vehicle_data_times: dict[str, list[float]] = field(default_factory=dict)
    token_times: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _peers: set[object] = field(default_factory=set, repr=False)

    @property
    def connections(self) -> int:
        return len(self._peers)

    @property
    def total(self) -> int:
        """All requests answered (or dropped)."""
        return sum(self.statuses.values())

    def count(self, route: str | None = None, status: int | None = None) -> int:
        """Requests matching ``route`` and/or ``status`` (``None`` matches any)."""
        if route is None and status is not None:
            return self.statuses[status]
        return sum(
            n
            for (r, s), n in self.requests.items()
            if (route is None or r == route) and (status is None or s == status)
        )

    def max_in_window(self, brand: str, window: float = 1.0) -> int:
        """Most vehicle-data requests for ``brand`` that arrived within any ``window`` seconds."""
        times = self.vehicle_data_times.get(brand.replace("_", "-"), [])
        best = 0
        for i, start in enumerate(times):
            j = bisect.bisect_left(times, start + window, lo=i)
            best = max(best, j - i)
        return best

    def reset(self) -> None:
        """Zero every counter (the in-flight gauge keeps counting requests still running)."""
        self.token_requests = 0
        self.tokens_issued = 0
        self.requests.clear()
        self.statuses.clear()
        self.faults.clear()
        self.vehicle_data_times.clear()
        self.token_times.clear()
        self.max_in_flight = self.in_flight
        self._peers.clear()

    # -- recording, used by the server -------------------------------------------------
    def record(self, route: str, status: int) -> None:
        self.requests[(route, status)] += 1
        self.statuses[status] += 1

    def record_peer(self, peer: object) -> None:
        self._peers.add(peer)

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def leave(self) -> None:
        self.in_flight -= 1
