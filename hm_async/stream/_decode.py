"""Payload -> :class:`StreamEvent`, for HM's V2 envelope and V1 per-property messages.

V2 (``json-schema/janus/0002``): ``{version: 2, application_id, message_id, vin, data}`` with
``data`` in the streaming shape; decoded in one msgspec pass straight into typed structs
(no intermediate dicts: that is what keeps the per-message cost under a bare ``json.loads``).
V1 (``hm-push-api-v1.yml``): ``{version: 1, message_id, vin, capability, property, data}``
where ``data`` is ``{capability: {property: value}}`` and ``value`` is one ``{data,
timestamp}`` object or, for multi-instance properties, a list of them; it is normalised to a
list so V1 and V2 give the same shape. Unknown capabilities, properties and fields are
ignored by the typed model (they stay in ``raw``); wrong types, missing envelope fields and
other versions make a :class:`MalformedMessage`, never an exception.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ..models import StreamingVehicleData
from ._events import MalformedMessage, StreamEvent

__all__ = ["Decoded", "decode_v1", "decode_v2"]

Decoded = StreamEvent | MalformedMessage


class _EnvelopeV2(msgspec.Struct, gc=False):
    version: float
    message_id: str
    vin: str
    data: StreamingVehicleData
    application_id: str | None = None


class _EnvelopeV1(msgspec.Struct, gc=False):
    version: float
    message_id: str
    vin: str
    capability: str
    property: str
    data: dict[str, dict[str, Any]]


class _Ids(msgspec.Struct, gc=False):
    """What can still be read from an envelope that failed to decode."""

    message_id: str | None = None
    vin: str | None = None


_V2 = msgspec.json.Decoder(_EnvelopeV2)
_V1 = msgspec.json.Decoder(_EnvelopeV1)
_IDS = msgspec.json.Decoder(_Ids)


def _malformed(topic: str, payload: bytes, reason: str, now: datetime) -> MalformedMessage:
    try:
        ids = _IDS.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        ids = _Ids()
    return MalformedMessage(topic=topic, reason=reason, received_at=now, raw=payload,
                            message_id=ids.message_id, vin=ids.vin)


def _why(exc: Exception) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return f"does not match the V2/V1 message schema: {exc}"
    return "is not valid JSON"


def decode_v2(topic: str, payload: bytes, now: datetime) -> Decoded:
    """Decode one V2 (``live/level13/<app_id>``) message."""
    try:
        env = _V2.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # ValidationError included
        return _malformed(topic, payload, _why(exc), now)
    if env.version != 2:
        return _malformed(topic, payload, f"unsupported message version {env.version:g}", now)
    return StreamEvent(vin=env.vin, message_id=env.message_id, data=env.data, received_at=now,
                       raw=payload, topic=topic, version=2, application_id=env.application_id)


def decode_v1(topic: str, payload: bytes, now: datetime) -> Decoded:
    """Decode one V1 (``<env>/level13/<app_id>/<vin>/<capability>/get/<property>``) message."""
    try:
        env = _V1.decode(payload)
        if env.version != 1:
            return _malformed(topic, payload, f"unsupported message version {env.version:g}",
                              now)
        shaped = {cap: {prop: value if isinstance(value, list) else [value]
                        for prop, value in props.items()}
                  for cap, props in env.data.items()}
        data = msgspec.convert(shaped, StreamingVehicleData)
    except (msgspec.DecodeError, UnicodeDecodeError, AttributeError) as exc:
        return _malformed(topic, payload, _why(exc), now)
    return StreamEvent(vin=env.vin, message_id=env.message_id, data=data, received_at=now,
                       raw=payload, topic=topic, version=1)
