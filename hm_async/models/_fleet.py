"""Models of the eligibility and fleet clearance APIs (hand-written: they are small).

Enumerated fields are typed ``str``: HM adds statuses and brands over time, and a new value
must not make a whole answer undecodable. The known values are listed in ``*_STATUSES``.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "CLEARANCE_STATUSES",
    "SETTLED_STATUSES",
    "ChangelogEntry",
    "Clearance",
    "ClearanceResult",
    "Eligibility",
]

#: Statuses of a clearance (hm-fleet-clearance-v1.yml); ``error`` only appears in POST results.
CLEARANCE_STATUSES = frozenset(
    {"pending", "approved", "rejected", "revoking", "revoked", "canceling", "canceled", "error"}
)
#: Statuses that will not change without a new request: waiting on them is over.
SETTLED_STATUSES = frozenset({"approved", "rejected", "revoked", "canceled", "error"})


class Eligibility(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a vehicle can deliver data, and how (``pull``, ``push``)."""

    vin: str
    eligible: bool
    data_delivery: tuple[str, ...] = ()
    connectivity_status: str | None = None
    primary_user_assigned: bool | None = None


class ChangelogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One status change of a clearance; ``reason`` explains a rejection."""

    timestamp: datetime
    status: str
    reason: str | None = None


class Clearance(msgspec.Struct, frozen=True, kw_only=True):
    """The data-access clearance of one vehicle, as the clearance GET/DELETE answer it."""

    vin: str
    status: str
    brand: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    changelog: tuple[ChangelogEntry, ...] = ()

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def settled(self) -> bool:
        return self.status in SETTLED_STATUSES


class ClearanceResult(msgspec.Struct, frozen=True, kw_only=True):
    """One VIN's outcome of a clearance request: ``pending``, or ``error`` with a description.

    A per-VIN ``error`` is a result, not an exception: the other VINs of the batch went through.
    """

    vin: str
    status: str
    description: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "error"


class _ClearanceResultList(msgspec.Struct, frozen=True):
    vehicles: tuple[ClearanceResult, ...]


ELIGIBILITY_DECODER = msgspec.json.Decoder(Eligibility)
CLEARANCE_DECODER = msgspec.json.Decoder(Clearance)
CLEARANCE_LIST_DECODER = msgspec.json.Decoder(tuple[Clearance, ...])
CLEARANCE_RESULTS_DECODER = msgspec.json.Decoder(_ClearanceResultList)
