"""Fleet clearance state: which VINs the application may read, and how that changes.

Status changes happen lazily (a record knows its next status and when it is due, and is
brought up to date whenever it is looked at), so there is no background task to start, stop
or race with: the state a test sees is exactly what the delays say.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec

from .._vehicles import BRANDS

__all__ = ["Clearance", "Fleet", "FleetError"]

#: What HM accepts: 17 of A-Z and 0-9; its own test VINs contain I and O (no ISO 3779 check).
_VIN = re.compile(r"[A-Z0-9]{17}")
_STATUSES = frozenset(
    {"approved", "pending", "revoking", "revoked", "rejected", "canceling", "canceled"}
)
_REMOVED = frozenset({"revoked", "canceled", "rejected"})


class FleetError(Exception):
    """An error answer of the clearance API: status and one ``{title, source, detail}``."""

    def __init__(self, status: int, title: str, source: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"errors": [{"title": title, "source": source, "detail": detail}]}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> float:
    if not isinstance(value, str):
        raise ValueError("not a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


@dataclass
class Clearance:
    """One VIN's clearance record (times are wall-clock seconds)."""

    vin: str
    brand: str
    tags: dict[str, str]
    status: str
    inserted_at: float
    approved_at: float | None = None
    changelog: list[tuple[float, str, str | None]] = field(default_factory=list)
    next_status: str | None = None
    next_at: float = 0.0

    def advance(self, now: float) -> None:
        """Apply a due status change."""
        if self.next_status is not None and now >= self.next_at:
            status, at = self.next_status, self.next_at
            self.next_status = None
            self._set(status, at)

    def _set(self, status: str, at: float, reason: str | None = None) -> None:
        self.status = status
        self.changelog.append((at, status, reason))
        if status == "approved":
            self.approved_at = at

    def schedule(self, status: str, at: float) -> None:
        self.next_status, self.next_at = status, at

    def as_json(self) -> dict[str, Any]:
        changelog: list[dict[str, str]] = []
        for at, status, reason in self.changelog:
            entry = {"timestamp": _iso(at), "status": status}
            if reason:
                entry["reason"] = reason
            changelog.append(entry)
        return {
            "vin": self.vin,
            "status": self.status,
            "brand": self.brand,
            "tags": self.tags,
            "changelog": changelog,
        }


class Fleet:
    """All clearance records of the emulated application."""

    def __init__(self, rng: random.Random) -> None:
        self.records: dict[str, Clearance] = {}
        self._rng = rng

    def add(self, vin: str, brand: str, *, status: str = "approved",
            tags: dict[str, str] | None = None, inserted_at: float | None = None) -> Clearance:
        """Create a record directly (the pre-approved fleet, or a test's own setup)."""
        if status not in _STATUSES:
            raise ValueError(f"unknown clearance status {status!r}")
        now = time.time()
        inserted = now if inserted_at is None else inserted_at
        rec = Clearance(vin=vin, brand=brand, tags=dict(tags or {}), status="pending",
                        inserted_at=inserted)
        rec.changelog.append((inserted, "pending", None))
        if status != "pending":
            rec._set(status, min(now, inserted + 600.0))
        self.records[vin] = rec
        return rec

    def get(self, vin: str) -> Clearance | None:
        rec = self.records.get(vin)
        if rec is not None and rec.next_status is not None:
            rec.advance(time.time())
        return rec

    def is_approved(self, vin: str) -> bool:
        rec = self.get(vin)
        return rec is not None and rec.status == "approved"

    # -- POST /v1/fleets/vehicles -----------------------------------------------------------
    def request(self, body: object, *, approve_delay: float,
                reject_fraction: float) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("vehicles"), list):
            raise FleetError(422, "Invalid input", "vehicles",
                             "vehicles is required and must be a list")
        results: list[dict[str, Any]] = []
        now = time.time()
        for item in body["vehicles"]:
            results.append(self._request_one(item, now, approve_delay, reject_fraction))
        return results

    def _request_one(self, item: object, now: float, approve_delay: float,
                     reject_fraction: float) -> dict[str, Any]:
        if not isinstance(item, dict):
            return {"vin": "", "status": "error", "description": "vehicle must be an object"}
        vin = item.get("vin")
        brand = item.get("brand")
        tags = item.get("tags") or {}
        shown = vin if isinstance(vin, str) else ""
        if not isinstance(vin, str) or not vin:
            return {"vin": shown, "status": "error", "description": "vin can't be blank"}
        if len(vin) != 17:
            return {"vin": vin, "status": "error", "description": "vin should be 17 character(s)"}
        if _VIN.fullmatch(vin) is None:
            return {"vin": vin, "status": "error", "description": "vin is invalid"}
        if not isinstance(brand, str) or brand not in BRANDS:
            return {"vin": vin, "status": "error", "description": "The brand is invalid"}
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            return {"vin": vin, "status": "error",
                    "description": "tags must map strings to strings"}
        rec = self.get(vin)
        if rec is not None and rec.status not in _REMOVED:
            return {"vin": vin, "status": rec.status, "tags": rec.tags}
        if rec is None:
            rec = Clearance(vin=vin, brand=brand, tags=dict(tags), status="pending",
                            inserted_at=now)
            self.records[vin] = rec
        else:
            rec.brand, rec.tags = brand, dict(tags)
        rec._set("pending", now)
        outcome = "rejected" if self._rng.random() < reject_fraction else "approved"
        rec.schedule(outcome, now + approve_delay)
        rec.advance(now)
        return {"vin": vin, "status": rec.status, "tags": rec.tags}

    # -- GET /v1/fleets/vehicles ------------------------------------------------------------
    def list(self, raw_filter: str | None) -> list[dict[str, Any]]:
        match = _compile_filter(raw_filter) if raw_filter else None
        now = time.time()
        out = []
        for rec in self.records.values():
            rec.advance(now)
            if match is None or match(rec):
                out.append(rec.as_json())
        return out

    # -- DELETE /v1/fleets/vehicles/{vin} ---------------------------------------------------
    def delete(self, vin: str, *, revoke_delay: float,
               cancel_brands: Iterable[str]) -> dict[str, Any]:
        rec = self.get(vin)
        if rec is None:
            raise FleetError(404, "Not found", "vin", "Clearance not found for this VIN")
        now = time.time()
        if rec.status in ("revoking", "canceling"):
            raise FleetError(409, "Conflict", "vin", "Clearance is in transition mode")
        if rec.status in _REMOVED:
            raise FleetError(409, "Conflict", "vin", "Clearance is already removed")
        if rec.status == "pending":
            if rec.brand not in set(cancel_brands):
                raise FleetError(422, "not supported", "vin",
                                 "cancellation is not supported for this vin")
            rec.next_status = None
            rec._set("canceling", now)
            rec.schedule("canceled", now + revoke_delay)
        else:
            rec._set("revoking", now)
            rec.schedule("revoked", now + revoke_delay)
        rec.advance(now)
        # The whole record, as GET answers it: the spec's clearance example carries brand
        # and changelog, and a client decodes both answers into the same Clearance.
        return rec.as_json()


# -- the ``filter`` query parameter ------------------------------------------------------------
_Pred = Callable[[Clearance], bool]


def _bad(detail: str) -> FleetError:
    return FleetError(422, "Invalid input", "filter", detail)


def _compile_filter(raw: str) -> _Pred:
    """Build a predicate from the URL-decoded JSON ``filter`` (conditions are ANDed)."""
    try:
        spec = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise _bad("filter must be URL-encoded JSON") from None
    if not isinstance(spec, dict):
        raise _bad("filter must be a JSON object")
    preds = [_compile_one(name, cond) for name, cond in spec.items()]
    return lambda rec: all(p(rec) for p in preds)


def _compile_one(name: str, cond: object) -> _Pred:
    if not isinstance(cond, dict) or "operator" not in cond or "value" not in cond:
        raise _bad(f"filter.{name} must be {{\"operator\": ..., \"value\": ...}}")
    op, value = cond["operator"], cond["value"]
    if name in ("vin", "status", "brand"):
        def norm(v: object) -> object:
            return v.replace("_", "-") if name == "brand" and isinstance(v, str) else v

        if op == "eq":
            want = norm(value)
            return lambda rec: getattr(rec, name) == want
        if op == "in":
            if not isinstance(value, list):
                raise _bad(f"filter.{name}: operator in needs a list")
            wanted = {norm(v) for v in value}
            return lambda rec: getattr(rec, name) in wanted
        raise _bad(f"filter.{name}: operator {op!r} is not supported (eq, in)")
    if name == "tags":
        if not isinstance(value, dict):
            raise _bad("filter.tags: value must be an object")
        if op == "eq":
            return lambda rec: rec.tags == value
        if op == "contains":
            items = value.items()
            return lambda rec: all(rec.tags.get(k) == v for k, v in items)
        raise _bad(f"filter.tags: operator {op!r} is not supported (eq, contains)")
    if name in ("approved_at", "inserted_at"):
        try:
            at = _parse_time(value)
        except ValueError:
            raise _bad(f"filter.{name}: value must be an ISO 8601 date-time") from None
        compare: dict[str, Callable[[float], bool]] = {
            "eq": lambda t: int(t) == int(at),  # the API keeps whole seconds
            "lt": lambda t: t < at,
            "gt": lambda t: t > at,
            "lte": lambda t: t <= at,
            "gte": lambda t: t >= at,
        }
        test = compare.get(op) if isinstance(op, str) else None
        if test is None:
            raise _bad(f"filter.{name}: operator {op!r} is not supported (eq, lt, gt, lte, gte)")

        def pred(rec: Clearance) -> bool:
            t = getattr(rec, name)
            return t is not None and test(t)

        return pred
    raise _bad(f"filter.{name}: unknown field (vin, status, brand, tags, approved_at, inserted_at)")
