"""The emulator's MQTT push: HM V2 (and V1) messages for its vehicles, to a real broker.

As the emulated vehicles' data changes (every ``update_interval``, each VIN at its own
phase), the publisher sends the changed properties the way HM's push does: a V2 envelope
``{version: 2, application_id, message_id, vin, data}`` on ``live/level13/<app_id>`` with
``data`` in the streaming shape (every property a list), or per-property V1 messages on
``live/level13/<app_id>/<vin>/<capability>/get/<property>``. Like the real platform it
delivers at least once: a ``duplicate_rate`` share of messages repeat an earlier message (same
``message_id``, same body), and a ``malformed_rate`` share are broken, so a worker can be
tested against both. QoS 1, MQTT 5, TLS with a client certificate (the broker's
``require_certificate true``).

    async with Emulator(mqtt=MQTTPush(host, port, credentials, rate=100)) as emu:
        emu.mqtt.stats.published        # the publisher runs while the emulator does
        await emu.mqtt.publish_burst(5000)   # or push a burst now (tests, benchmarks)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import aiomqtt
import msgspec

from .._vehicles import Vehicle
from ._mqtt_config import MQTTPush

__all__ = ["MQTTPublisher", "PublisherStats", "streaming_shape"]

log = logging.getLogger("hm_async.emulator.mqtt")
_ENCODER = msgspec.json.Encoder()
_PREFIX = {"production": "live", "sandbox": "sandbox"}
_TOP_LEVEL = frozenset({"request_id", "vin", "brand"})
#: How many recent messages a duplicate may repeat.
_REPLAY_DEPTH = 1000
#: Publishes in flight at once during a burst (paho queues the rest).
_BURST_WINDOW = 200


class VehicleSource(Protocol):
    """What the publisher needs of the emulator."""

    @property
    def vehicles(self) -> list[Vehicle]: ...

    def vehicle_data_payload(self, vin: str) -> dict[str, Any]: ...


class PublisherStats:
    """What was published: totals and the ids of the well-formed messages."""

    __slots__ = ("duplicate_ids", "duplicates", "malformed", "message_ids", "published")

    def __init__(self) -> None:
        self.published = 0          # every PUBLISH acknowledged by the broker
        self.duplicates = 0         # of which repeats of an earlier message
        self.malformed = 0          # of which broken on purpose
        self.message_ids: set[str] = set()  # distinct ids of well-formed messages
        self.duplicate_ids: set[str] = set()  # ids that were sent more than once

    def __repr__(self) -> str:
        return (f"PublisherStats(published={self.published}, duplicates={self.duplicates}, "
                f"malformed={self.malformed}, unique={len(self.message_ids)})")


def streaming_shape(payload: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """A REST vehicle-data body -> the streaming shape: capabilities only, every property a
    list (a single ``{data, timestamp}`` becomes a one-element list)."""
    return {cap: {prop: value if isinstance(value, list) else [value]
                  for prop, value in props.items()}
            for cap, props in payload.items()
            if cap not in _TOP_LEVEL and isinstance(props, dict)}


class MQTTPublisher:
    """Publishes the emulator's vehicle data; see the module docstring."""

    def __init__(self, source: VehicleSource, push: MQTTPush) -> None:
        self.push = push
        self.stats = PublisherStats()
        self._source = source
        self._rng = random.Random(push.seed)
        self._nonce = uuid.uuid4().hex
        self._counter = 0
        self._last: dict[str, dict[tuple[str, str], bytes]] = {}
        self._recent: deque[tuple[str, bytes, str]] = deque(maxlen=_REPLAY_DEPTH)
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._topic = f"{_PREFIX[push.environment]}/level13/{push.app_id}"

    def __repr__(self) -> str:
        return f"<MQTTPublisher {self.push.host}:{self.push.port} {self._topic!r} {self.stats!r}>"

    async def start(self, *, run: bool = True) -> None:
        """Connect; with ``run`` also start publishing changes at ``rate``."""
        push = self.push
        client = aiomqtt.Client(push.host, push.port, identifier=push.client_id,
                                protocol=aiomqtt.ProtocolVersion.V5,
                                tls_context=push.credentials.ssl_context(), timeout=30)
        client.pending_calls_threshold = _BURST_WINDOW + 50  # a burst is not a leak: no warning
        await client.__aenter__()
        self._client = client
        if run:
            self._task = asyncio.create_task(self._run(), name="hm-emulator-mqtt")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    # -- publishing -------------------------------------------------------------------------
    async def publish_burst(self, count: int, *, vins: Sequence[str] | None = None) -> list[str]:
        """Publish ``count`` messages now (duplicate and malformed rates apply), cycling over
        the fleet with its current data; returns the ids of the well-formed ones, in order."""
        targets = list(vins) if vins is not None else [v.vin for v in self._source.vehicles]
        ids: list[str] = []
        pending: set[asyncio.Task[None]] = set()
        for i in range(count):
            vin = targets[i % len(targets)]
            topic, body, message_id = self._next_message(vin, None)
            if message_id is not None:
                ids.append(message_id)
            pending.add(asyncio.create_task(self._send(topic, body)))
            if len(pending) >= _BURST_WINDOW:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        if pending:
            await asyncio.gather(*pending)
        return ids

    async def publish_changes(self, vin: str) -> int:
        """Publish what changed for ``vin`` since the last call (everything the first time)."""
        changed = self._changed(vin)
        if not changed:
            return 0
        topic, body, _ = self._next_message(vin, changed)
        await self._send(topic, body)
        return 1

    async def _run(self) -> None:
        interval = 1.0 / self.push.rate
        next_at = time.monotonic()
        while True:
            sent = 0
            for vehicle in self._source.vehicles:
                if await self.publish_changes(vehicle.vin):
                    sent += 1
                    next_at += interval
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        next_at = time.monotonic()
            if not sent:  # nothing changed anywhere: look again in a while, not in a busy loop
                await asyncio.sleep(min(1.0, 100 * interval))
                next_at = time.monotonic()

    async def _send(self, topic: str, body: bytes) -> None:
        if self._client is None:
            raise RuntimeError("the MQTT publisher is not started")
        await self._client.publish(topic, body, qos=1)
        self.stats.published += 1

    # -- messages ---------------------------------------------------------------------------
    def _changed(self, vin: str) -> dict[str, dict[str, list[Any]]]:
        data = streaming_shape(self._source.vehicle_data_payload(vin))
        last = self._last.setdefault(vin, {})
        out: dict[str, dict[str, list[Any]]] = {}
        for cap, props in data.items():
            for prop, values in props.items():
                encoded = _ENCODER.encode(values)
                if last.get((cap, prop)) != encoded:
                    last[(cap, prop)] = encoded
                    out.setdefault(cap, {})[prop] = values
        return out

    def _message_id(self) -> str:
        self._counter += 1
        return hashlib.sha256(f"{self._nonce}:{self._counter}".encode()).hexdigest().upper()

    def _next_message(self, vin: str, data: dict[str, dict[str, list[Any]]] | None
                      ) -> tuple[str, bytes, str | None]:
        """(topic, body, message_id of a well-formed message or None)."""
        push, rng = self.push, self._rng
        if self._recent and rng.random() < push.duplicate_rate:
            topic, body, message_id = self._recent[rng.randrange(len(self._recent))]
            self.stats.duplicates += 1
            self.stats.duplicate_ids.add(message_id)
            return topic, body, message_id
        message_id = self._message_id()
        if rng.random() < push.malformed_rate:
            self.stats.malformed += 1
            return self._topic_for(vin, None), self._malformed(vin, message_id), None
        if data is None:
            data = streaming_shape(self._source.vehicle_data_payload(vin))
        topic, body = (self._v2(vin, message_id, data) if push.version == 2
                       else self._v1(vin, message_id, data))
        self._recent.append((topic, body, message_id))
        self.stats.message_ids.add(message_id)
        return topic, body, message_id

    def _topic_for(self, vin: str, cap_prop: tuple[str, str] | None) -> str:
        if self.push.version == 2:
            return self._topic
        cap, prop = cap_prop or ("diagnostics", "odometer")
        return f"{self._topic}/{vin}/{cap}/get/{prop}"

    def _v2(self, vin: str, message_id: str, data: dict[str, Any]) -> tuple[str, bytes]:
        return self._topic, _ENCODER.encode({
            "version": 2, "application_id": self.push.app_id, "message_id": message_id,
            "vin": vin, "data": data})

    def _v1(self, vin: str, message_id: str, data: dict[str, dict[str, list[Any]]]
            ) -> tuple[str, bytes]:
        """One V1 message carries one property: the first one of the changes (a single value
        unless the property is multi-instance, as in hm-push-api-v1.yml)."""
        cap, props = next(iter(data.items()))
        prop, values = next(iter(props.items()))
        value: Any = values if len(values) != 1 else values[0]
        return self._topic_for(vin, (cap, prop)), _ENCODER.encode({
            "version": 1, "message_id": message_id, "vin": vin, "capability": cap,
            "property": prop, "data": {cap: {prop: value}}})

    def _malformed(self, vin: str, message_id: str) -> bytes:
        kind = self._rng.randrange(4)
        if kind == 0:  # cut off mid-way
            return _ENCODER.encode({"version": self.push.version, "message_id": message_id,
                                    "vin": vin, "data": {}})[:-7]
        if kind == 1:  # a version nobody knows
            return _ENCODER.encode({"version": 99, "message_id": message_id, "vin": vin,
                                    "data": {}})
        if kind == 2:  # a wrong type inside the data
            return _ENCODER.encode({"version": self.push.version, "message_id": message_id,
                                    "vin": vin, "application_id": self.push.app_id,
                                    "capability": "diagnostics", "property": "odometer",
                                    "data": {"diagnostics": {"odometer": "twelve"}}})
        return b"\xff\xfe not json"
