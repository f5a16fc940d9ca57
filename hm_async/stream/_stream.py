"""``stream()``: HM's MQTT push as an async iterator of typed events, delivered at least once.

    async with hm_async.stream(creds, app_id="…", environment="production") as events:
        async for event in events:
            if event.ok:
                await store(event.vin, event.data)    # the message is acknowledged only
                                                      # after this body returned

The contract (docs/streaming.md states it for users):

* A message is acknowledged to the broker (PUBACK) only after the consumer's loop body for it
  returned, i.e. when the consumer asks for the next event, or leaves the ``async with``
  without an exception. If the body raises, or the process dies, the message is not
  acknowledged: the broker keeps it in the persistent session and delivers it again when a
  worker with the same client id (or, for a shared subscription, the group) connects again.
* Before handing a message over, the stream claims its ``message_id`` in the dedupe window;
  an id already claimed or done is a duplicate: acknowledged and dropped, counted in
  ``stats.duplicates``. After the body returned the id is marked done; if the body raised
  (or the stream closed first) the claim is released so a redelivery is processed.
* Transient connection trouble is handled inside: reconnect with jittered exponential
  backoff, resume the session (clean start off), subscribe again (MQTT replaces an identical
  subscription of the same session; it is never doubled). Permanent refusals raise
  :class:`StreamRefusedError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from types import TracebackType
from typing import Literal

from ._credentials import MQTTCredentials
from ._decode import Decoded, decode_v1, decode_v2
from ._dedupe import DedupeWindow, MemoryDedupeWindow
from ._errors import StreamUnavailableError
from ._settings import Connection, ConnectionLost, ConnectionSettings

OpenConnection = Callable[[ConnectionSettings], Awaitable[Connection]]

__all__ = ["EventStream", "ReconnectBackoff", "StreamStats", "stream", "stream_topic"]

log = logging.getLogger("hm_async.stream")

V2_HOST = "mqtt-v2.high-mobility.com"
V1_HOSTS = {"production": "mqtt.high-mobility.com", "sandbox": "sandbox.mqtt.high-mobility.com"}
_TOPIC_PREFIX = {"production": "live", "sandbox": "sandbox"}
_UTC = timezone.utc
#: A connection that lasted this long was a good one: the next loss starts the backoff afresh.
_STABLE_SECONDS = 10.0


def stream_topic(app_id: str, *, environment: str = "production", version: int = 2,
                 group: str | None = None) -> str:
    """The topic filter for an application: V2 ``live/level13/<app_id>``, V1
    ``live/level13/<app_id>/#`` (one topic per VIN and property); ``sandbox/…`` for the sandbox;
    ``$share/<group>/…`` when a group of workers shares the stream."""
    if environment not in _TOPIC_PREFIX:
        raise ValueError(f"environment must be one of {sorted(_TOPIC_PREFIX)}, "
                         f"not {environment!r}")
    if version not in (1, 2):
        raise ValueError("version must be 2 (MQTT V2, 'Enterprise') or 1")
    if not app_id or any(c in app_id for c in "/+#"):
        raise ValueError("app_id must be the application id (no '/', '+' or '#')")
    topic = f"{_TOPIC_PREFIX[environment]}/level13/{app_id}"
    if version == 1:
        topic += "/#"
    if group is not None:
        if not group or any(c in group for c in "/+#"):
            raise ValueError("group must be a non-empty name without '/', '+' or '#'")
        topic = f"$share/{group}/{topic}"
    return topic


class ReconnectBackoff:
    """Full-jitter exponential backoff: a delay drawn from [floor, min(cap, base·2^n)].

    The floor keeps a broker that accepts and drops at once from turning the loop into a busy
    loop; the jitter keeps a fleet of workers from reconnecting in lockstep after a broker
    restart. ``reset()`` after a connection delivered something.
    """

    __slots__ = ("_rand", "attempts", "base", "cap", "floor")

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, floor: float = 0.1,
                 rand: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.floor = base, cap, floor
        self._rand = rand
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** self.attempts)
        self.attempts += 1
        return self.floor + (ceiling - self.floor) * self._rand() if ceiling > self.floor \
            else self.floor

    def reset(self) -> None:
        self.attempts = 0


class StreamStats:
    """Counters of one stream; plain ints, read them from anywhere (the CLI's progress line)."""

    __slots__ = ("connects", "delivered", "duplicates", "malformed", "received", "started")

    def __init__(self) -> None:
        self.received = 0      # messages read from the broker
        self.delivered = 0     # handed to the consumer (events + malformed messages)
        self.duplicates = 0    # dropped: message_id already seen within the window
        self.malformed = 0     # MalformedMessage events
        self.connects = 0      # successful connections (the first one included)
        self.started = time.monotonic()

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def __repr__(self) -> str:
        return (f"StreamStats(received={self.received}, delivered={self.delivered}, "
                f"duplicates={self.duplicates}, malformed={self.malformed}, "
                f"reconnects={self.reconnects})")


class _Pending:
    """The message in the consumer's hands: where to acknowledge it, what to mark done."""

    __slots__ = ("conn", "message_id", "mid", "qos")

    def __init__(self, conn: Connection, mid: int, qos: int, message_id: str | None) -> None:
        self.conn, self.mid, self.qos, self.message_id = conn, mid, qos, message_id


class EventStream:
    """The async iterator ``stream()`` gives; see the module docstring for the contract."""

    def __init__(self, settings: ConnectionSettings, *, open_connection: OpenConnection,
                 version: Literal[1, 2], dedupe: DedupeWindow, owns_dedupe: bool,
                 backoff: ReconnectBackoff, give_up_after: float | None) -> None:
        self.settings = settings
        self._open = open_connection
        self.stats = StreamStats()
        self.dedupe = dedupe
        self._owns_dedupe = owns_dedupe
        self._decode = decode_v2 if version == 2 else decode_v1
        self._backoff = backoff
        self._give_up_after = give_up_after
        self._conn: Connection | None = None
        self._connected_at = 0.0
        self._pending: _Pending | None = None
        self._closed = False

    def __repr__(self) -> str:
        return (f"<EventStream {self.settings.topic!r} client_id={self.settings.client_id!r} "
                f"{self.stats!r}>")

    @property
    def client_id(self) -> str:
        return self.settings.client_id

    async def __aenter__(self) -> EventStream:
        await self._connected()  # fail fast on a permanent refusal
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose(failed=exc_type is not None)

    async def aclose(self, *, failed: bool = False) -> None:
        """Finish (``failed=False``) or release the message in hand, disconnect, close."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._settle(success=not failed)
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
            if self._owns_dedupe:
                await self.dedupe.aclose()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Decoded:
        if self._closed:
            raise StopAsyncIteration
        if self._pending is not None:
            await self._settle(success=True)
        stats = self.stats
        while True:
            conn = self._conn
            if conn is None or not conn.alive:
                conn = await self._connected()
            try:
                msg = await conn.next()
            except ConnectionLost as exc:
                await self._lost(conn, exc)
                continue
            stats.received += 1
            event = self._decode(msg.topic.value, msg.payload, datetime.now(_UTC))
            if event.ok:
                if not await self.dedupe.claim(event.message_id):
                    stats.duplicates += 1
                    conn.ack(msg.mid, msg.qos)
                    continue
                self._pending = _Pending(conn, msg.mid, msg.qos, event.message_id)
            else:
                stats.malformed += 1
                self._pending = _Pending(conn, msg.mid, msg.qos, None)
            stats.delivered += 1
            return event

    async def _settle(self, *, success: bool) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if success:
            if pending.message_id is not None:
                await self.dedupe.done(pending.message_id)
            pending.conn.ack(pending.mid, pending.qos)
        elif pending.message_id is not None:
            await self.dedupe.release(pending.message_id)

    async def _lost(self, conn: Connection, exc: BaseException) -> None:
        log.warning("MQTT connection to %s:%s lost (%s); reconnecting", self.settings.host,
                    self.settings.port, exc)
        if time.monotonic() - self._connected_at > _STABLE_SECONDS:
            self._backoff.reset()  # it was a good connection: start the backoff afresh
        if self._conn is conn:
            self._conn = None
        await conn.close()
        await asyncio.sleep(self._backoff.next_delay())

    async def _connected(self) -> Connection:
        conn = self._conn
        if conn is not None and conn.alive:
            return conn
        started = time.monotonic()
        while True:
            try:
                conn = await self._open(self.settings)
            except ConnectionLost as exc:
                waited = time.monotonic() - started
                if self._give_up_after is not None and waited >= self._give_up_after:
                    raise StreamUnavailableError(
                        f"no connection to the MQTT broker {self.settings.host}:"
                        f"{self.settings.port} for {waited:.0f} s (last error: {exc})") from None
                delay = self._backoff.next_delay()
                if self._give_up_after is not None:  # one last try right at the deadline
                    delay = min(delay, self._give_up_after - waited)
                log.info("MQTT connect to %s:%s failed (%s); next try in %.1f s",
                         self.settings.host, self.settings.port, exc, delay)
                await asyncio.sleep(delay)
                continue
            # the backoff is not reset here: a broker that accepts and drops at once must
            # meet a growing delay; _lost resets it after a connection that lasted
            self._conn = conn
            self._connected_at = time.monotonic()
            self.stats.connects += 1
            return conn


def stream(
    credentials: MQTTCredentials,
    *,
    app_id: str,
    environment: str = "production",
    version: Literal[1, 2] = 2,
    group: str | None = None,
    client_id: str | None = None,
    host: str | None = None,
    port: int = 8883,
    dedupe: DedupeWindow | None = None,
    dedupe_size: int = 100_000,
    dedupe_age: float = 3600.0,
    session_expiry: int = 24 * 3600,
    keepalive: int = 30,
    connect_timeout: float = 10.0,
    backoff: ReconnectBackoff | None = None,
    give_up_after: float | None = None,
) -> EventStream:
    """HM's MQTT push for ``app_id``, as an async context manager and iterator of events.

    ``version`` 2 is HM's MQTT V2 ("Enterprise") broker, one topic per application; 1 is the
    older per-property V1 broker. ``group`` makes this worker one of a group sharing the
    stream (``$share/<group>/<topic>``: each message goes to one worker of the group).
    ``client_id`` names the persistent session: it must be stable across restarts of this
    worker and different for every worker running at the same time; the default is derived
    from the app id, the group and the host name (so: one worker per host, or pass your own).
    ``host``/``port`` override the broker (a local mosquitto, the emulator's broker).
    ``dedupe`` replaces the in-process window of ``dedupe_size`` ids / ``dedupe_age``
    seconds (a caller-supplied window is not closed by the stream). ``give_up_after`` ends a
    stream that could not connect for that many seconds with
    :class:`StreamUnavailableError` (default: keep trying).
    """
    topic = stream_topic(app_id, environment=environment, version=version, group=group)
    if host is None:
        host = V2_HOST if version == 2 else V1_HOSTS[environment]
    if client_id is None:
        client_id = f"hm-async-{app_id[:36]}-{group or 'solo'}-{socket.gethostname()}"[:128]
    settings = ConnectionSettings(
        host=host, port=port, client_id=client_id, topic=topic,
        ssl_context=credentials.ssl_context(), keepalive=keepalive,
        session_expiry=session_expiry, connect_timeout=connect_timeout)
    # The network part needs the `stream` extra (aiomqtt); importing it here, on first use,
    # keeps `import hm_async` working without it. Not a cycle: nothing imports back.
    try:
        from ._connection import open_connection
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("hm_async.stream needs the stream extra: "
                          "pip install 'hm-async[stream]'") from exc
    owns = dedupe is None
    window = dedupe if dedupe is not None else MemoryDedupeWindow(max_size=dedupe_size,
                                                                  max_age=dedupe_age)
    return EventStream(settings, open_connection=open_connection, version=version,
                       dedupe=window, owns_dedupe=owns, backoff=backoff or ReconnectBackoff(),
                       give_up_after=give_up_after)
