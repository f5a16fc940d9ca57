"""Spec-valid Auto API 13 payloads, different for every VIN and changing now and then.

Each VIN has fixed traits (drive train, capabilities, home position, odometer) derived from its
VIN, and values that change once per ``update_interval`` seconds (each VIN at its own phase),
so a client that watches for changes sees some and a client that polls often sees the same
answer for a while, as on the real platform. The encoded bytes are cached per VIN and epoch:
serving a request costs a dict lookup and a concatenation with the request id.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from datetime import datetime, timezone
from typing import Any

import msgspec

__all__ = ["VehicleDataSource", "data_brand", "iso_time"]

#: Brands the vehicle-data body knows (hm-vehicle-data-api-v1.yml, response.brand).
_DATA_BRANDS = frozenset(
    {
        "abarth", "alfaromeo", "alpine", "audi", "bmw", "cadillac", "chevrolet", "chrysler",
        "citroen", "cupra", "dacia", "dodge", "ds", "fiat", "ford", "honda", "hyundai", "iveco",
        "jaguar", "jeep", "kia", "lancia", "land_rover", "lexus", "man", "mazda",
        "mercedes_benz", "mini", "mitsubishi", "nissan", "opel", "peugeot", "porsche",
        "renault", "sandbox", "seat", "skoda", "smart", "subaru", "toyota", "unknown",
        "volkswagen", "volvo_cars",
    }
)
_WHEELS = ("front_left", "front_right", "rear_right", "rear_left")
_FAILURES = (
    ("rate_limit", "Too many requests to the OEM for this vehicle"),
    ("execution_timeout", "The OEM did not answer in time"),
    ("oem_error", "The OEM returned an error for this property"),
    ("unknown", "Unknown failure"),
    ("pending", "Waiting for the vehicle to report this property"),
)
_ENCODER = msgspec.json.Encoder()


def data_brand(brand: str) -> str:
    """The vehicle-data spelling of a clearance brand; ``unknown`` where the enum lacks it."""
    spelled = brand.replace("-", "_")
    return spelled if spelled in _DATA_BRANDS else "unknown"


def iso_time(epoch_seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, as HM writes property timestamps."""
    dt = datetime.fromtimestamp(epoch_seconds, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class _Traits:
    """What does not change for a VIN: drive train, capabilities, where it lives."""

    __slots__ = (
        "base_km", "electric", "has_doors", "has_ignition", "has_location", "has_windows",
        "home", "km_per_epoch", "miles", "phase", "tires",
    )

    def __init__(self, vin: str) -> None:
        rng = random.Random(_seed("traits", vin))
        self.phase = rng.random()
        self.electric = rng.choice(("bev", "phev", "ice", "ice"))
        self.has_doors = rng.random() < 0.85
        self.has_location = rng.random() < 0.8
        self.has_windows = rng.random() < 0.4
        self.has_ignition = rng.random() < 0.5
        self.miles = rng.random() < 0.15
        self.tires = 4 if rng.random() < 0.9 else 5  # some report the spare too
        self.base_km = rng.uniform(500.0, 180_000.0)
        self.km_per_epoch = rng.uniform(0.2, 3.0)
        self.home = (rng.uniform(47.0, 55.0), rng.uniform(5.0, 15.0))


class VehicleDataSource:
    """Builds and caches the vehicle-data body for each VIN."""

    def __init__(self, *, failure_fraction: float, update_interval: float) -> None:
        self.failure_fraction = failure_fraction
        self.update_interval = update_interval
        self._origin = time.time()
        self._traits: dict[str, _Traits] = {}
        self._cache: dict[str, tuple[int, float, float, bytes]] = {}

    def _epoch(self, traits: _Traits, now: float) -> int:
        return math.floor((now - self._origin) / self.update_interval + traits.phase)

    def body(self, vin: str, brand: str, now: float | None = None) -> bytes:
        """The response body after ``{"request_id":"…",``: the encoded payload sans ``{``."""
        now = time.time() if now is None else now
        traits = self._traits.get(vin)
        if traits is None:
            traits = self._traits[vin] = _Traits(vin)
        epoch = self._epoch(traits, now)
        cached = self._cache.get(vin)
        if (
            cached is not None
            and cached[0] == epoch
            and cached[1] == self.update_interval
            and cached[2] == self.failure_fraction
        ):
            return cached[3]
        encoded = _ENCODER.encode(self.payload(vin, brand, now))[1:]
        self._cache[vin] = (epoch, self.update_interval, self.failure_fraction, encoded)
        return encoded

    def payload(self, vin: str, brand: str, now: float | None = None) -> dict[str, Any]:
        """The payload (without ``request_id``) the VIN reports at wall time ``now``."""
        now = time.time() if now is None else now
        traits = self._traits.get(vin) or _Traits(vin)
        epoch = self._epoch(traits, now)
        return _Builder(vin, traits, epoch, self, now).build(data_brand(brand))


class _Builder:
    """One snapshot of one VIN; random draws are seeded by (VIN, epoch) so they repeat."""

    def __init__(
        self, vin: str, traits: _Traits, epoch: int, source: VehicleDataSource, now: float
    ) -> None:
        self.vin = vin
        self.t = traits
        self.epoch = epoch
        self.interval = source.update_interval
        self.failure_fraction = source.failure_fraction
        self.origin = source._origin
        self.rng = random.Random(_seed("epoch", vin, epoch))
        self.now = now

    def _stamp(self, every: int = 1) -> str:
        """When a value that changes every ``every`` epochs last changed."""
        start_epoch = self.epoch - (self.epoch % every)
        start = self.origin + (start_epoch - self.t.phase) * self.interval
        return iso_time(min(start, self.now))

    def _prop(self, data: Any, every: int = 1) -> dict[str, Any]:
        stamp = self._stamp(every)
        if self.rng.random() < self.failure_fraction:
            reason, description = self.rng.choice(_FAILURES)
            return {"failure": {"reason": reason, "description": description}, "timestamp": stamp}
        return {"data": data, "timestamp": stamp}

    def build(self, brand: str) -> dict[str, Any]:
        out: dict[str, Any] = {"vin": self.vin, "brand": brand, "diagnostics": self._diagnostics()}
        if self.t.electric != "ice":
            out["charging"] = self._charging()
        if self.t.has_doors:
            out["doors"] = self._doors()
        if self.t.has_location:
            out["vehicle_location"] = self._location()
        if self.t.has_ignition:
            out["ignition"] = {"state": self._prop(self.rng.choice(("off", "lock", "on")))}
        if self.t.has_windows:
            out["windows"] = self._windows()
        return out

    def _length(self, km: float) -> dict[str, Any]:
        if self.t.miles:
            return {"value": round(km / 1.609344, 1), "unit": "miles"}
        return {"value": round(km, 1), "unit": "kilometers"}

    def _diagnostics(self) -> dict[str, Any]:
        rng, t = self.rng, self.t
        slow = random.Random(_seed("slow", self.vin, self.epoch // 5))
        moving = rng.random() < 0.3
        odometer = t.base_km + max(self.epoch, 0) * t.km_per_epoch
        tires = _WHEELS + (("spare",) if t.tires == 5 else ())
        d: dict[str, Any] = {
            "odometer": self._prop(self._length(odometer)),
            "speed": self._prop(
                {"value": round(rng.uniform(20, 130), 1) if moving else 0.0,
                 "unit": "kilometers_per_hour"}
            ),
            "battery_voltage": self._prop(
                {"value": round(rng.uniform(11.8, 14.4), 2), "unit": "volts"}
            ),
            "tire_pressures": [
                self._prop(
                    {"location": w, "pressure": {"value": round(slow.uniform(2.0, 2.8), 2),
                                                 "unit": "bars"}},
                    every=5,
                )
                for w in tires
            ],
            "tire_pressure_statuses": [
                self._prop({"location": w, "status": slow.choice(("normal",) * 8 + ("low",))},
                           every=5)
                for w in tires
            ],
            "washer_fluid_level": self._prop(slow.choice(("filled", "normal", "low")), every=5),
        }
        if t.electric != "bev":
            d["fuel_level"] = self._prop(round(rng.uniform(0.05, 1.0), 2))
            d["estimated_range"] = self._prop(self._length(rng.uniform(40, 800)))
        if rng.random() < 0.2:
            d["trouble_codes"] = [
                self._prop({"id": f"P{rng.randint(100, 999):04d}", "ecu_id": "ECU1",
                            "occurrences": rng.randint(1, 9), "status": "PENDING",
                            "system": rng.choice(("body", "chassis", "powertrain"))})
            ]
        return d

    def _charging(self) -> dict[str, Any]:
        rng = self.rng
        plugged = rng.random() < 0.4
        status = rng.choice(("charging", "charging_complete")) if plugged else "not_charging"
        return {
            "battery_level": self._prop(round(rng.uniform(0.05, 1.0), 2)),
            "estimated_range": self._prop(self._length(rng.uniform(20, 520))),
            "plugged_in": self._prop("plugged_in" if plugged else "disconnected"),
            "status": self._prop(status),
            "charging_rate": self._prop(
                {"value": round(rng.uniform(3.0, 150.0), 1) if status == "charging" else 0.0,
                 "unit": "kilowatts"}
            ),
            "battery_temperature": self._prop(
                {"value": round(rng.uniform(5.0, 40.0), 1), "unit": "celsius"}
            ),
        }

    def _doors(self) -> dict[str, Any]:
        rng = self.rng
        locked = rng.random() < 0.8
        state = "locked" if locked else "unlocked"
        return {
            "locks": [self._prop({"location": w, "lock_state": state}) for w in _WHEELS],
            "locks_state": self._prop(state),
            "positions": [
                self._prop({"location": w, "position": "closed" if locked or rng.random() < 0.8
                            else "open"})
                for w in _WHEELS
            ],
        }

    def _location(self) -> dict[str, Any]:
        rng = self.rng
        lat, lon = self.t.home
        return {
            "coordinates": self._prop(
                {"latitude": round(lat + rng.uniform(-0.2, 0.2), 6),
                 "longitude": round(lon + rng.uniform(-0.2, 0.2), 6)}
            ),
            "heading": self._prop({"value": round(rng.uniform(0, 359.9), 1), "unit": "degrees"}),
            "altitude": self._prop({"value": round(rng.uniform(0, 900), 1), "unit": "meters"}),
            "gps_source": self._prop("real"),
        }

    def _windows(self) -> dict[str, Any]:
        rng = self.rng
        opening = [rng.choice((0.0, 0.0, 0.0, 0.25, 1.0)) for _ in _WHEELS]
        return {
            "positions": [
                self._prop({"location": w, "position": "closed" if o == 0.0 else
                            ("open" if o == 1.0 else "intermediate")})
                for w, o in zip(_WHEELS, opening, strict=True)
            ],
            "open_percentages": [
                self._prop({"location": w, "open_percentage": o})
                for w, o in zip(_WHEELS, opening, strict=True)
            ],
        }
