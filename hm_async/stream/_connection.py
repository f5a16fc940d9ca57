"""One MQTT 5 connection to HM's broker: aiomqtt (paho-mqtt 2) with manual acknowledgement.

A connection is used once: when it drops, the stream builds a new one (fresh paho client,
fresh inbox), so a packet id read on one connection is never acknowledged on another (packet
ids are per connection; acknowledging a stale id on a new connection could acknowledge a
different message).

Settings that make delivery at-least-once end to end:

* MQTT 5, QoS 1 subscription, ``clean_start=False`` and a ``SessionExpiryInterval``: the
  broker keeps the session (subscription and every unacknowledged or queued message) while
  the worker is away, and resumes it when the same client id connects again;
* manual acknowledgement: paho sends the PUBACK only when :meth:`Connection.ack` is called,
  which the stream does after the consumer's loop body for that message returned. aiomqtt
  2.5 has no public switch for it yet (aiomqtt issue #345, PR #346), so the paho client's
  own ``manual_ack_set``/``ack`` are called on ``aiomqtt.Client._client``. The other reach
  below the public APIs is ``paho.Client._sock_close()`` after a failed connect (aiomqtt
  leaves that socket open). Both are confined to this module.

Permanent refusals become :class:`StreamRefusedError` here: a negative CONNACK with a
reason that retrying cannot fix, a broker certificate we do not trust, the broker rejecting
our certificate (with TLS 1.3 that arrives as an alert *after* the handshake; paho only logs
it, so the connection listens to paho's log for it instead of waiting for the timeout), and
a SUBACK that refuses the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ._errors import StreamRefusedError
from ._settings import ConnectionLost, ConnectionSettings

__all__ = ["MQTTConnection", "open_connection"]

log = logging.getLogger("hm_async.stream")

#: CONNACK reason codes (MQTT 5) that mean "do not try again": protocol, client id,
#: credentials, authorisation, banned, auth method. Others (server busy/unavailable, quota)
#: are transient.
_PERMANENT_CONNACK = {0x84: "protocol", 0x85: "client_id", 0x86: "not_authorized",
                      0x87: "not_authorized", 0x8A: "not_authorized", 0x8C: "not_authorized"}
#: MQTT 3.1.1 return codes as paho reports them (1 protocol, 2 client id, 4 bad user, 5 not
#: authorised).
_PERMANENT_CONNACK_V311 = {1: "protocol", 2: "client_id", 4: "not_authorized",
                           5: "not_authorized"}
#: What paho logs when the broker answers our certificate with a TLS alert.
_TLS_ALERT_MARKERS = ("ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "ALERT_CERTIFICATE",
                      "ALERT_ACCESS_DENIED", "ALERT_DECRYPT_ERROR", "CERTIFICATE_REQUIRED",
                      "ALERT_HANDSHAKE_FAILURE")


def _inbox_type(holder: list[asyncio.Queue[aiomqtt.Message]]) -> type[asyncio.Queue[Any]]:
    """A queue class that hands its instance to us (aiomqtt builds it from ``queue_type``), so
    the stream can take a waiting message without aiomqtt's per-message task and wait."""

    class Inbox(asyncio.Queue):  # type: ignore[type-arg]
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            holder.append(self)

    return Inbox


class MQTTConnection:
    """A connected, subscribed client; :meth:`next` yields messages, :meth:`ack` acks one."""

    __slots__ = ("_client", "_inbox", "_messages", "_paho", "_topic", "alive")

    def __init__(self, client: aiomqtt.Client, inbox: asyncio.Queue[aiomqtt.Message],
                 topic: str) -> None:
        self._client = client
        self._topic = topic
        self._paho: paho.Client = client._client
        self._inbox = inbox
        self._messages = client.messages
        self.alive = True

    @classmethod
    async def open(cls, settings: ConnectionSettings) -> MQTTConnection:
        holder: list[asyncio.Queue[aiomqtt.Message]] = []
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = settings.session_expiry
        client = aiomqtt.Client(
            settings.host, settings.port, identifier=settings.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props,
            keepalive=settings.keepalive, tls_context=settings.ssl_context,
            timeout=settings.connect_timeout, queue_type=_inbox_type(holder), logger=log,
        )
        paho_client: paho.Client = client._client
        paho_client.manual_ack_set(True)  # before CONNECT: queued messages arrive right after
        loop = asyncio.get_running_loop()
        alert: asyncio.Future[str] = loop.create_future()

        def on_log(_client: paho.Client, _userdata: Any, level: int, text: str) -> None:
            if level == paho.MQTT_LOG_ERR and any(m in text.upper() for m in _TLS_ALERT_MARKERS):
                loop.call_soon_threadsafe(_settle, alert, text)

        paho_client.on_log = on_log
        entering = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.wait((entering, alert), return_when=asyncio.FIRST_COMPLETED)
            if not entering.done():
                raise StreamRefusedError(
                    f"the broker {settings.host}:{settings.port} rejected the client "
                    f"certificate ({_alert_name(alert.result())})", reason="certificate")
            entering.result()
        except BaseException as exc:
            entering.cancel()
            with contextlib.suppress(BaseException):
                await entering
            # aiomqtt leaves the socket of a failed connect open (and registered with the
            # loop); paho's own close unregisters and closes it. One loop turn first: the
            # reader/writer registrations paho scheduled from the connect thread must have
            # run, or they would meet a closed file descriptor.
            await asyncio.sleep(0)
            paho_client._sock_close()
            if isinstance(exc, aiomqtt.MqttError):
                _raise_if_permanent(exc, settings)
                raise ConnectionLost(str(exc)) from exc
            raise
        finally:
            alert.cancel()
            # with on_log set, paho formats every log line (each PUBLISH, with its properties)
            paho_client.on_log = None
        conn = cls(client, holder[0], settings.topic)
        try:
            codes = await client.subscribe(settings.topic, qos=1)
        except aiomqtt.MqttError as exc:
            await conn.close(flush=False)
            raise ConnectionLost(f"subscribe failed: {exc}") from exc
        except BaseException:
            await conn.close(flush=False)
            raise
        refused = [c for c in codes if getattr(c, "value", c) >= 0x80]
        if not refused and any(getattr(c, "value", c) < 1 for c in codes):
            await conn.close(flush=False)
            raise StreamRefusedError(
                f"the broker granted the subscription to {settings.topic!r} with QoS 0 only: "
                "messages could be lost, so the stream does not start", reason="qos")
        if refused:
            await conn.close(flush=False)
            code = refused[0]
            reason = "not_authorized" if getattr(code, "value", code) == 0x87 \
                else "subscribe_refused"
            raise StreamRefusedError(
                f"the broker refused the subscription to {settings.topic!r}: {code}",
                reason=reason)
        return conn

    async def next(self) -> aiomqtt.Message:
        """The next message; raises :class:`ConnectionLost` when the connection is gone."""
        inbox = self._inbox
        if inbox.qsize():
            return inbox.get_nowait()
        try:
            return await self._messages.__anext__()
        except aiomqtt.MqttError as exc:
            self.alive = False
            raise ConnectionLost(str(exc.__cause__ or exc)) from exc

    def ack(self, mid: int, qos: int) -> None:
        """Send the PUBACK for ``mid`` (a no-op for QoS 0 or a connection that is gone)."""
        if self.alive and qos:
            self._paho.ack(mid, qos)

    async def close(self, *, flush: bool = True) -> None:
        """Disconnect (normal DISCONNECT: the broker keeps the session for its expiry).

        With ``flush``, first one round trip (SUBSCRIBE to our own topic again, which MQTT
        defines as replacing the identical subscription): the broker answers it only after it
        has processed the PUBACKs sent before it. Without it, closing a socket that still has
        unread messages in its receive buffer makes the kernel send a TCP reset, and the
        broker's kernel may drop our last PUBACKs with it: acknowledged work would come back.
        """
        if self.alive and flush:
            self.alive = False
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await self._client.subscribe(self._topic, qos=1, timeout=2.0)
        self.alive = False
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await self._client.__aexit__(None, None, None)


async def open_connection(settings: ConnectionSettings) -> MQTTConnection:
    """Connect, subscribe, return the connection; :class:`ConnectionLost` for a transient
    failure (including OS errors), :class:`StreamRefusedError` for a permanent one."""
    try:
        return await MQTTConnection.open(settings)
    except OSError as exc:
        raise ConnectionLost(str(exc)) from exc


def _settle(future: asyncio.Future[str], text: str) -> None:
    if not future.done():
        future.set_result(text)


def _alert_name(text: str) -> str:
    upper = text.upper()
    for marker in _TLS_ALERT_MARKERS:
        if marker in upper:
            return "TLS alert " + marker.removeprefix("ALERT_").lower().replace("_", " ")
    return "TLS alert"


def _raise_if_permanent(exc: aiomqtt.MqttError, settings: ConnectionSettings) -> None:
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, MqttConnectError):
        rc = exc.rc
        value = getattr(rc, "value", rc)
        table = _PERMANENT_CONNACK if getattr(rc, "value", None) is not None \
            else _PERMANENT_CONNACK_V311
        if isinstance(value, int) and value in table:
            raise StreamRefusedError(f"the broker {where} refused the connection: {rc}",
                                     reason=table[value]) from None
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip()
        raise StreamRefusedError(
            f"the broker {where} presented a certificate that does not verify against the "
            f"configured CA ({detail or 'verification failed'})", reason="certificate") from None
    if "WRONG_VERSION_NUMBER" in text:
        raise StreamRefusedError(f"{where} does not speak TLS", reason="protocol") from None
