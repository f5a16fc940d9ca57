"""Thousands of payloads generated from the spec decode, keep their values and round-trip.

The generator below reads the vendored OpenAPI spec itself (not the generated models), so a
model that drifts from the spec, drops a property or mistypes a field shows up as a payload
that fails to decode or decodes to something else. Each seed gives a different random subset
of capabilities and properties; one payload carries every property of every capability.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import string
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from hm_async.models._streaming import StreamingVehicleData
from hm_async.models._vehicle_decode import decode_streaming_vehicle_data, decode_vehicle_data
from hm_async.models.vehicle_data import VehicleData

SPEC = Path(__file__).resolve().parent.parent / "scripts" / "specs" / "hm-vehicle-data-api-v1.yml"
SCHEMAS: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
RESPONSE = SCHEMAS["response"]["properties"]
CAPABILITIES = sorted(name for name, sub in RESPONSE.items() if "$ref" in sub)
PAYLOADS = 2500


class Gen:
    """Random JSON values valid for a schema (``density``: share of optional parts present)."""

    def __init__(self, rng: random.Random, *, density: float, always_data: bool = False) -> None:
        self.rng = rng
        self.density = density
        self.always_data = always_data

    def text(self) -> str:
        alphabet = string.ascii_letters + string.digits + ' _-/.é€"\\\n✓'
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, 12)))

    def timestamp(self) -> str:
        seconds = self.rng.randint(0, 2**31)
        when = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        if self.rng.random() < 0.5:
            when = when.replace(microsecond=self.rng.randint(0, 999_999))
        if self.rng.random() < 0.2:
            when = when.astimezone(dt.timezone(dt.timedelta(minutes=self.rng.randint(-720, 720))))
        return msgspec.json.decode(msgspec.json.encode(when), type=str)  # canonical RFC 3339

    def value(self, schema: dict[str, Any]) -> Any:
        if "$ref" in schema:
            return self.value(SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]])
        kind = schema.get("type")
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        if kind == "string":
            return self.timestamp() if schema.get("format") == "date-time" else self.text()
        if kind == "integer":
            return self.rng.randint(schema.get("minimum", -(2**40)), schema.get("maximum", 2**40))
        if kind == "number":
            if self.rng.random() < 0.2:
                return self.rng.randint(-100_000, 100_000)  # JSON integers are valid numbers
            return self.rng.uniform(-1e6, 1e6)
        if kind == "array":
            count = self.rng.randint(schema.get("minItems", 0), schema.get("maxItems", 3))
            return [self.value(schema["items"]) for _ in range(count)]
        if kind == "object":
            return {name: self.value(sub) for name, sub in schema["properties"].items()}
        raise AssertionError(f"schema the generator does not know: {schema}")

    def property_value(self, wrapper: dict[str, Any]) -> dict[str, Any]:
        fields = wrapper["properties"]
        out: dict[str, Any] = {}
        while not out:  # minProperties: 1
            if self.always_data or self.rng.random() < 0.9:
                out["data"] = self.value(fields["data"])
            if self.rng.random() < 0.8:
                out["timestamp"] = self.timestamp()
            if self.rng.random() < 0.1:
                out["failure"] = self.value(fields["failure"])
        return out

    def capability(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prop, sub in SCHEMAS[name]["properties"].items():
            if self.rng.random() >= self.density:
                continue
            if sub.get("type") == "array":
                wrapper = SCHEMAS[sub["items"]["$ref"].rsplit("/", 1)[-1]]
                count = self.rng.randint(1, 4)
                out[prop] = [self.property_value(wrapper) for _ in range(count)]
            else:
                out[prop] = self.property_value(SCHEMAS[sub["$ref"].rsplit("/", 1)[-1]])
        return out

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.rng.random() < 0.9:
            out["request_id"] = self.text()
        if self.rng.random() < 0.9:
            out["vin"] = "".join(self.rng.choices(string.ascii_uppercase + string.digits, k=17))
        if self.rng.random() < 0.9:
            out["brand"] = self.rng.choice(RESPONSE["brand"]["enum"])
        for name in CAPABILITIES:
            if self.rng.random() < self.density:
                out[name] = self.capability(name)
        return out


def add_noise(rng: random.Random, value: Any) -> Any:
    """Unknown keys at every object level and a new value for some strings (new enum values)."""
    if isinstance(value, dict):
        out = {key: add_noise(rng, sub) for key, sub in value.items()}
        if rng.random() < 0.5:
            out[f"future_{rng.randint(0, 999)}"] = rng.choice(
                [1, "x", [1, {"a": None}], {"b": 2.5}]
            )
        return out
    if isinstance(value, list):
        return [add_noise(rng, sub) for sub in value]
    return value


def streaming_shape(payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON-schema variant of a REST payload: capabilities only, every property a list."""
    return {
        cap: {prop: v if isinstance(v, list) else [v] for prop, v in body.items()}
        for cap, body in payload.items()
        if cap in CAPABILITIES
    }


def drop_empty(value: Any) -> Any:
    """What encoding with omit_defaults gives back: empty capabilities stay, empty lists go."""
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def check_roundtrip(payload: dict[str, Any]) -> None:
    body = msgspec.json.encode(payload)
    decoded = decode_vehicle_data(body)
    # Every value survives: the models hold exactly what the body said.
    assert msgspec.to_builtins(decoded) == drop_empty(payload)
    # Encoding the models and decoding again gives equal models.
    assert decode_vehicle_data(msgspec.json.encode(decoded)) == decoded

    streaming = streaming_shape(payload)
    decoded_stream = decode_streaming_vehicle_data(msgspec.json.encode(streaming))
    assert msgspec.to_builtins(decoded_stream) == drop_empty(streaming)
    again = msgspec.json.decode(msgspec.json.encode(decoded_stream), type=StreamingVehicleData)
    assert again == decoded_stream


def test_every_property_of_every_capability_decodes() -> None:
    gen = Gen(random.Random(0), density=1.0, always_data=True)
    payload = gen.payload()
    assert set(CAPABILITIES) <= set(payload)
    assert sum(len(body) for cap, body in payload.items() if cap in CAPABILITIES) == 383
    check_roundtrip(payload)
    decoded = decode_vehicle_data(msgspec.json.encode(payload))
    for cap in CAPABILITIES:
        struct = getattr(decoded, cap)
        for prop, sub in SCHEMAS[cap]["properties"].items():
            value = getattr(struct, prop)
            assert value, f"{cap}.{prop} was dropped"
            # Unit structs look alike (value, unit): check each is of its spec's family.
            wrapper = SCHEMAS[(sub.get("items") or sub)["$ref"].rsplit("/", 1)[-1]]
            ref = wrapper["properties"]["data"].get("$ref", "")
            if "/unit_" in ref:
                for item in value if isinstance(value, list) else [value]:
                    assert item.data.family == ref.rsplit("/unit_", 1)[1], f"{cap}.{prop}"


@pytest.mark.parametrize("block", range(5))
def test_generated_payloads_decode_and_roundtrip(block: int) -> None:
    for seed in range(block * PAYLOADS // 5, (block + 1) * PAYLOADS // 5):
        rng = random.Random(seed)
        payload = Gen(rng, density=rng.choice([0.05, 0.2, 0.5])).payload()
        check_roundtrip(payload)


def test_generated_payloads_with_unknown_fields_decode_to_the_same_models() -> None:
    for seed in range(500):
        rng = random.Random(10_000 + seed)
        payload = Gen(rng, density=0.2).payload()
        noisy = add_noise(rng, copy.deepcopy(payload))
        noisy[f"new_capability_{seed}"] = {"some_property": {"data": 1}}
        expected = decode_vehicle_data(msgspec.json.encode(payload))
        assert decode_vehicle_data(msgspec.json.encode(noisy)) == expected
        stream = streaming_shape(noisy)
        assert decode_streaming_vehicle_data(msgspec.json.encode(stream)) == msgspec.json.decode(
            msgspec.json.encode(streaming_shape(payload)), type=StreamingVehicleData
        )


def test_unknown_enum_values_anywhere_are_kept_as_strings() -> None:
    """Replace every enumerated value of a full payload with one the spec does not know."""
    rng = random.Random(7)
    payload = Gen(rng, density=1.0).payload()
    replaced: list[str] = []

    def enum_paths(schema: dict[str, Any], value: Any) -> Any:
        if "$ref" in schema:
            return enum_paths(SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]], value)
        if "enum" in schema:
            new = f"new_{value}_{len(replaced)}"
            replaced.append(new)
            return new
        if schema.get("type") == "array":
            return [enum_paths(schema["items"], v) for v in value]
        if "properties" in schema:  # capabilities, property wrappers and custom types
            return {k: enum_paths(schema["properties"][k], v) for k, v in value.items()}
        return value

    changed = {
        key: enum_paths(RESPONSE[key], value) if key in CAPABILITIES or key == "brand" else value
        for key, value in payload.items()
    }
    assert len(replaced) > 150  # enum-typed values are everywhere in a full payload
    decoded = decode_vehicle_data(msgspec.json.encode(changed))
    assert msgspec.to_builtins(decoded) == drop_empty(changed)
    assert isinstance(decoded, VehicleData) and decoded.brand is not None
    assert decoded.brand.startswith("new_")
