"""How fast is the typed vehicle-data decode, against the baselines a user would reach for?

Decodes one realistic fleet payload (an electric car's diagnostics, charging, location,
doors, climate, maintenance and usage: ~5 KB of ``GET /v1/vehicle-data/autoapi-13/{vin}``)
three ways in the same run:

* ``json.loads`` — the standard library, untyped dicts;
* ``msgspec.json.decode`` without a type — msgspec's untyped fast path;
* ``hm_async``'s typed decode into the generated ``VehicleData`` structs (with datetimes
  parsed and types checked).

Machines are noisy, so each decoder is timed in several rounds, interleaved, and the result
is the *ratio* of best (and median) times, not absolute microseconds. Target: typed is no
slower than untyped msgspec and at least 2x faster than ``json.loads``.

Run: ``python benchmarks/decode.py [--rounds 15] [--seconds 0.2]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from hm_async.models._vehicle_decode import decode_vehicle_data

_T = "2024-05-14T08:{:02d}:{:02d}.{:03d}Z"
_counter = 0


def ts() -> str:
    """Distinct, realistic timestamps (carmakers report each property's own time)."""
    global _counter
    _counter += 1
    return _T.format(_counter % 60, (_counter * 7) % 60, (_counter * 37) % 1000)


def prop(data: Any) -> dict[str, Any]:
    return {"data": data, "timestamp": ts()}


def unit(value: float, name: str) -> dict[str, Any]:
    return prop({"value": value, "unit": name})


def payload() -> dict[str, Any]:
    wheels = ["front_left", "front_right", "rear_left", "rear_right"]
    doors = ["front_left", "front_right", "rear_left", "rear_right"]
    return {
        "request_id": "2c85d1f9a23623ac5deeb7eecba61a5f",
        "vin": "WBA12345678901234",
        "brand": "bmw",
        "diagnostics": {
            "odometer": unit(48211.4, "kilometers"),
            "speed": unit(0, "kilometers_per_hour"),
            "battery_voltage": unit(12.4, "volts"),
            "battery_level": prop(0.81),
            "estimated_range": unit(312, "kilometers"),
            "engine_coolant_temperature": unit(21.5, "celsius"),
            "washer_fluid_level": prop("filled"),
            "brake_fluid_level": prop("filled"),
            "tire_pressures": [
                prop({"location": w, "pressure": {"value": 2.4 + i / 20, "unit": "bars"}})
                for i, w in enumerate(wheels)
            ],
            "tire_pressure_statuses": [prop({"location": w, "status": "normal"}) for w in wheels],
            "check_control_messages": [
                prop(
                    {
                        "id": 229,
                        "remaining_time": {"value": 0, "unit": "minutes"},
                        "text": "Tyre pressure monitor: reset",
                        "status": "low",
                    }
                )
            ],
        },
        "charging": {
            "battery_level": prop(0.81),
            "estimated_range": unit(312, "kilometers"),
            "status": prop("charging"),
            "charge_limit": prop(0.9),
            "plugged_in": prop("plugged_in"),
            "charger_power": unit(11, "kilowatts"),
            "time_to_complete_charge": unit(42, "minutes"),
            "battery_temperature": unit(24.5, "celsius"),
            "charge_port_state": prop("open"),
            "current_type": prop("alternating_current"),
            "charging_rate": unit(16, "amperes"),
        },
        "vehicle_location": {
            "coordinates": prop({"latitude": 52.520008, "longitude": 13.404954}),
            "heading": unit(187.3, "degrees"),
            "altitude": unit(34.2, "meters"),
            "precision": unit(5.0, "meters"),
            "gps_signal_strength": prop(0.9),
        },
        "doors": {
            "locks": [prop({"location": d, "lock_state": "locked"}) for d in doors],
            "positions": [prop({"location": d, "position": "closed"}) for d in doors],
            "locks_state": prop("locked"),
        },
        "climate": {
            "inside_temperature": unit(19.5, "celsius"),
            "outside_temperature": unit(12.0, "celsius"),
            "hvac_state": prop("inactive"),
        },
        "ignition": {"status": prop("off")},
        "maintenance": {
            "distance_to_next_service": unit(11800, "kilometers"),
            "time_to_next_service": unit(143, "days"),
            "next_inspection_date": prop("2025-03-01T00:00:00.000Z"),
        },
        "usage": {
            "average_speed": unit(43.1, "kilometers_per_hour"),
            "electric_consumption_average": unit(17.8, "kwh_per_100_kilometers"),
            "last_trip_date": prop("2024-05-13T17:42:10.000Z"),
            "odometer_after_last_trip": unit(48211.4, "kilometers"),
        },
    }


def timed(fn: Callable[[], object], seconds: float) -> float:
    """Seconds per call: calibrate a loop count for ~``seconds``, then time it once."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        if took >= seconds / 4:
            break
        n *= 4
    n = max(1, int(n * seconds / took))
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.2, help="per decoder per round")
    args = parser.parse_args(argv)

    body = json.dumps(payload(), separators=(",", ":")).encode()
    typed = decode_vehicle_data(body)  # also proves the payload is valid for the models
    assert typed.diagnostics is not None and typed.diagnostics.odometer is not None
    assert msgspec.json.decode(body) == json.loads(body)

    untyped_decoder = msgspec.json.Decoder()
    candidates: dict[str, Callable[[], object]] = {
        "json.loads": lambda: json.loads(body),
        "msgspec untyped": lambda: untyped_decoder.decode(body),
        "hm_async typed": lambda: decode_vehicle_data(body),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, fn in candidates.items():  # interleaved: drift hits every decoder alike
            times[name].append(timed(fn, args.seconds))

    print(
        f"payload: {len(body)} bytes, Python {sys.version.split()[0]}, msgspec "
        f"{msgspec.__version__}, {args.rounds} rounds"
    )
    for name, samples in times.items():
        print(
            f"  {name:16s} best {min(samples) * 1e6:8.2f} us   "
            f"median {statistics.median(samples) * 1e6:8.2f} us"
        )
    best = {name: min(samples) for name, samples in times.items()}
    median = {name: statistics.median(samples) for name, samples in times.items()}
    typed_name = "hm_async typed"
    for baseline in ("json.loads", "msgspec untyped"):
        print(
            f"typed speed-up vs {baseline:16s} best {best[baseline] / best[typed_name]:5.2f}x"
            f"   median {median[baseline] / median[typed_name]:5.2f}x"
        )
    ok = best["json.loads"] / best[typed_name] >= 2 and best[typed_name] <= best["msgspec untyped"]
    print("target (>= 2x json.loads, no slower than msgspec untyped):", "met" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
