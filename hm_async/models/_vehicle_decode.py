"""Decoding vehicle-data bodies into the generated models, with decoders built once.

Building a msgspec decoder for ``VehicleData`` walks ~130 struct types; doing it per call
would cost more than the decode itself, so both decoders live at module level and are reused
(msgspec decoders are safe to share between tasks and threads). Failures become
:class:`hm_async.DecodeError` carrying msgspec's JSON path (``$.diagnostics.odometer…``), so a
bad field is found without dumping the body, which may hold a vehicle's location.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from .._errors import DecodeError
from ._streaming import StreamingVehicleData
from .vehicle_data import VehicleData

__all__ = ["decode_streaming_vehicle_data", "decode_vehicle_data"]

T = TypeVar("T")

_VEHICLE_DATA = msgspec.json.Decoder(VehicleData)
_STREAMING = msgspec.json.Decoder(StreamingVehicleData)


def _decode(decoder: msgspec.json.Decoder[T], body: bytes | str, what: str, path: str | None) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        where = f" from {path}" if path else ""  # (built for failures only: hot path)
        raise DecodeError(
            f"{what}{where} does not match the Auto API level 13 schema: {exc}", path=path
        ) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
        where = f" from {path}" if path else ""
        raise DecodeError(f"{what}{where} is not valid JSON: {exc}", path=path) from exc


def decode_vehicle_data(body: bytes | str, *, path: str | None = None) -> VehicleData:
    """Decode a ``GET /v1/vehicle-data/autoapi-13/{vin}`` body.

    ``path`` (the request path, optional) only goes into the error message. Raises
    :class:`hm_async.DecodeError` when the body is not JSON or a value has the wrong type;
    unknown capabilities, properties, fields and enum values are accepted.
    """
    return _decode(_VEHICLE_DATA, body, "vehicle data", path)


def decode_streaming_vehicle_data(
    body: bytes | str, *, path: str | None = None
) -> StreamingVehicleData:
    """Decode vehicle data in the streaming / JSON-schema shape (every property a list)."""
    return _decode(_STREAMING, body, "streaming vehicle data", path)
