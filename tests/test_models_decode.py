"""Decoding vehicle-data bodies: typed values, forward compatibility, errors with a path."""

from __future__ import annotations

import datetime as dt
import gc
import json
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from hm_async import DecodeError, HMError
from hm_async.models import vehicle_data as vd
from hm_async.models._vehicle_decode import decode_streaming_vehicle_data, decode_vehicle_data

SPECS = Path(__file__).resolve().parent.parent / "scripts" / "specs"
TS = "2021-10-06T13:59:25.648943Z"


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_odometer_and_friends_decode_to_real_types() -> None:
    data = decode_vehicle_data(
        body(
            {
                "request_id": "r-1",
                "vin": "1HM62652356323000",
                "brand": "mercedes_benz",
                "diagnostics": {
                    "odometer": {"data": {"value": 2050, "unit": "kilometers"}, "timestamp": TS},
                    "tire_pressures": [
                        {
                            "data": {
                                "location": "front_left",
                                "pressure": {"value": 2.4, "unit": "bars"},
                            }
                        },
                        {
                            "data": {
                                "location": "rear_left",
                                "pressure": {"value": 35, "unit": "pounds_force_per_square_inch"},
                            }
                        },
                    ],
                    "fuel_level": {
                        "failure": {"reason": "privacy_mode_active", "description": "off"}
                    },
                },
                "vehicle_location": {
                    "coordinates": {
                        "data": {"latitude": 52.52, "longitude": 13.40},
                        "timestamp": TS,
                    }
                },
            }
        )
    )
    assert (data.request_id, data.vin, data.brand) == ("r-1", "1HM62652356323000", "mercedes_benz")
    assert data.diagnostics is not None and data.diagnostics.odometer is not None
    odometer = data.diagnostics.odometer.data
    assert isinstance(odometer, vd.Length)
    assert odometer == vd.Length(value=2050.0, unit="kilometers")
    assert isinstance(odometer.value, float)
    assert data.diagnostics.odometer.timestamp == dt.datetime(
        2021, 10, 6, 13, 59, 25, 648943, tzinfo=dt.timezone.utc
    )
    pressures = data.diagnostics.tire_pressures
    assert [p.data.location for p in pressures if p.data] == ["front_left", "rear_left"]
    assert isinstance(pressures[1].data, vd.TirePressure)
    assert pressures[1].data.pressure.value_in("bars") == pytest.approx(2.41317, abs=1e-5)
    fuel = data.diagnostics.fuel_level
    assert fuel is not None and fuel.data is None and fuel.timestamp is None
    assert fuel.failure == vd.Failure(reason="privacy_mode_active", description="off")
    assert data.vehicle_location is not None and data.vehicle_location.coordinates is not None
    assert data.vehicle_location.coordinates.data == vd.Coordinates(latitude=52.52, longitude=13.4)
    # Absent capabilities are None, absent multi-instance properties an empty list.
    assert data.charging is None
    assert data.diagnostics.check_control_messages == []


def test_empty_object_is_an_empty_vehicle_data() -> None:
    assert decode_vehicle_data(b"{}") == vd.VehicleData()


def test_unknown_capabilities_properties_and_fields_are_ignored() -> None:
    data = decode_vehicle_data(
        body(
            {
                "vin": "V",
                "a_capability_from_2030": {"flux": {"data": 1}},
                "diagnostics": {
                    "teleport_charge": {"data": {"value": 1, "unit": "parsecs"}},
                    "odometer": {
                        "data": {"value": 1, "unit": "miles", "accuracy": "high"},
                        "timestamp": TS,
                        "availability": {"update_rate": "trip", "applies_per": "vehicle"},
                    },
                },
            }
        )
    )
    assert data.vin == "V"
    assert data.diagnostics == vd.Diagnostics(
        odometer=vd.Property(
            data=vd.Length(value=1.0, unit="miles"),
            timestamp=dt.datetime(2021, 10, 6, 13, 59, 25, 648943, tzinfo=dt.timezone.utc),
        )
    )


def test_unknown_enum_values_decode_as_strings() -> None:
    """The vendor adds enum values; each kind of enumerated place keeps the new one."""
    data = decode_vehicle_data(
        body(
            {
                "brand": "a_brand_from_2030",
                "race": {"gear_mode": {"data": "hover"}},  # enum inline in a property
                "adas": {"lane_keep_assist_system": {"data": "dreaming"}},  # custom enum type
                "doors": {"positions": [{"data": {"location": "roof", "position": "ajar"}}]},
                "diagnostics": {
                    "odometer": {"data": {"value": 3, "unit": "furlongs"}},  # unit enum
                    "speed": {"failure": {"reason": "gremlins", "description": "?"}},
                },
            }
        )
    )
    assert data.brand == "a_brand_from_2030"
    assert data.race and data.race.gear_mode and data.race.gear_mode.data == "hover"
    assert "hover" not in typing.get_args(vd.RaceGearMode)
    assert data.adas and data.adas.lane_keep_assist_system
    assert data.adas.lane_keep_assist_system.data == "dreaming"
    assert data.doors and data.doors.positions[0].data == vd.DoorPosition(
        location="roof", position="ajar"
    )
    assert data.diagnostics and data.diagnostics.odometer and data.diagnostics.odometer.data
    assert data.diagnostics.odometer.data.unit == "furlongs"
    assert data.diagnostics.speed and data.diagnostics.speed.failure
    assert data.diagnostics.speed.failure.reason == "gremlins"


def test_literal_aliases_list_the_known_values() -> None:
    assert typing.get_args(vd.ActiveState) == ("inactive", "active")
    assert "mercedes_benz" in typing.get_args(vd.Brand)
    assert "kilometers" in typing.get_args(vd.LengthUnit)
    assert set(typing.get_args(vd.FailureReason)) >= {"rate_limit", "privacy_mode_active"}


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (
            {"diagnostics": {"odometer": {"data": {"value": "2050", "unit": "kilometers"}}}},
            "$.diagnostics.odometer.data.value",
        ),
        (
            {
                "diagnostics": {
                    "tire_pressures": [
                        {
                            "data": {
                                "location": "front_left",
                                "pressure": {"value": 2, "unit": "bars"},
                            }
                        },
                        {"data": {"location": "rear_left", "pressure": {"value": 2, "unit": 7}}},
                    ]
                }
            },
            "$.diagnostics.tire_pressures[1].data.pressure.unit",
        ),
        (
            {"diagnostics": {"odometer": {"timestamp": "yesterday"}}},
            "$.diagnostics.odometer.timestamp",
        ),
        ({"diagnostics": {"tire_pressures": {"data": None}}}, "$.diagnostics.tire_pressures"),
        ({"doors": {"locks": [{"data": {"location": "front_left"}}]}}, "$.doors.locks[0].data"),
        ({"vin": 17}, "$.vin"),
        ({"charging": []}, "$.charging"),
    ],
)
def test_wrong_types_fail_with_the_json_path(doc: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_vehicle_data(body(doc), path="/v1/vehicle-data/autoapi-13/VIN")
    assert isinstance(info.value, HMError)
    assert f"`{path}`" in str(info.value)
    assert "/v1/vehicle-data/autoapi-13/VIN" in str(info.value)
    assert info.value.path == "/v1/vehicle-data/autoapi-13/VIN"
    assert isinstance(info.value.__cause__, msgspec.ValidationError)


@pytest.mark.parametrize("raw", [b"", b"<html>502</html>", b'{"vin": "V"', b"[]", b"null"])
def test_bodies_that_are_not_vehicle_data_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="vehicle data"):
        decode_vehicle_data(raw)


def test_models_are_frozen_and_untracked_by_the_garbage_collector() -> None:
    data = decode_vehicle_data(
        body({"diagnostics": {"odometer": {"data": {"value": 1, "unit": "miles"}}}})
    )
    with pytest.raises(AttributeError):
        data.vin = "X"  # type: ignore[misc]
    assert data.diagnostics and data.diagnostics.odometer
    for obj in (data, data.diagnostics, data.diagnostics.odometer, data.diagnostics.odometer.data):
        assert not gc.is_tracked(obj)


def _spec_examples() -> list[tuple[str, Any]]:
    """Every example the spec gives for a 200 vehicle-data answer.

    The spec has no whole-body example, only per-field ``example`` values on the response
    schema (``request_id``, ``vin``); they are assembled into one body. Whole-body examples,
    should a later spec add them, are picked up too.
    """
    spec = yaml.safe_load((SPECS / "hm-vehicle-data-api-v1.yml").read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    found: list[tuple[str, Any]] = []
    for path, item in spec["paths"].items():
        media = item["get"]["responses"]["200"]["content"]["application/json"]
        if "example" in media:
            found.append((f"{path} example", media["example"]))
        for name, example in media.get("examples", {}).items():
            found.append((f"{path} {name}", example["value"]))
    response = schemas["response"]
    if "example" in response:
        found.append(("response example", response["example"]))
    fields = {k: v["example"] for k, v in response["properties"].items() if "example" in v}
    found.append(("field examples", fields))
    return found


def test_every_example_payload_in_the_spec_decodes() -> None:
    examples = _spec_examples()
    assert examples and examples[-1][1], "the spec has lost its examples"
    for name, example in examples:
        data = decode_vehicle_data(body(example))
        assert msgspec.to_builtins(data) == example, name
    fields = examples[-1][1]
    data = decode_vehicle_data(body(fields))
    assert data.vin == "1HM62652356323000"
    assert data.request_id == "2c85d1f9a23623ac5deeb7eecba61a5f"


def test_the_json_schema_fixture_decodes_in_its_streaming_shape() -> None:
    raw = (SPECS / "auto-api-0002" / "example.json").read_bytes()
    data = decode_streaming_vehicle_data(raw)
    when = dt.datetime(2021, 10, 6, 13, 59, 25, 648943, tzinfo=dt.timezone.utc)
    assert data.diagnostics is not None and data.race is not None
    assert data.diagnostics.odometer == [
        vd.Property(data=vd.Length(value=2050.0, unit="kilometers"), timestamp=when)
    ]
    assert data.diagnostics.speed == [
        vd.Property(data=vd.Speed(value=42.0, unit="kilometers_per_hour"), timestamp=when)
    ]
    assert data.race.vehicle_moving == [vd.Property(data="moving", timestamp=when)]
    assert msgspec.to_builtins(data) == json.loads(raw)
    # The REST decoder rejects the list shape, naming where: the two shapes differ.
    with pytest.raises(DecodeError, match=r"\$\.diagnostics\.odometer"):
        decode_vehicle_data(raw)


def test_the_janus_envelope_fixture_carries_streaming_data() -> None:
    envelope = json.loads((SPECS / "auto-api-0002" / "janus-example.json").read_bytes())
    data = decode_streaming_vehicle_data(body(envelope["data"]))
    assert data.diagnostics is not None
    assert [p.data for p in data.diagnostics.odometer] == [
        vd.Length(value=2050.0, unit="kilometers")
    ]


def test_streaming_decode_errors_name_the_path() -> None:
    doc = {"diagnostics": {"odometer": {"data": {"value": 1, "unit": "miles"}}}}
    with pytest.raises(DecodeError, match=r"`\$\.diagnostics\.odometer`"):
        decode_streaming_vehicle_data(body(doc))
