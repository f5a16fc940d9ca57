"""Streaming: HM's MQTT push (V2 and V1), delivered at least once, deduplicated, typed.

Needs the ``stream`` extra (``pip install 'hm-async[stream]'``: aiomqtt on paho-mqtt 2).
Start with :func:`stream`; docs/streaming.md states the delivery contract.
"""

from ._changes import VehicleChange, as_change, changes
from ._credentials import MQTTCredentials
from ._decode import decode_v1, decode_v2
from ._dedupe import DedupeWindow, MemoryDedupeWindow
from ._errors import StreamError, StreamRefusedError, StreamUnavailableError
from ._events import MalformedMessage, StreamEvent, property_timestamps
from ._stream import EventStream, ReconnectBackoff, StreamStats, stream, stream_topic

__all__ = [
    "DedupeWindow",
    "EventStream",
    "MQTTCredentials",
    "MalformedMessage",
    "MemoryDedupeWindow",
    "ReconnectBackoff",
    "StreamError",
    "StreamEvent",
    "StreamRefusedError",
    "StreamStats",
    "StreamUnavailableError",
    "VehicleChange",
    "as_change",
    "changes",
    "decode_v1",
    "decode_v2",
    "property_timestamps",
    "stream",
    "stream_topic",
]
