"""Where and how a stream connects, and how a connection reports trouble to the stream.

Kept apart from the aiomqtt-backed :mod:`._connection` so that everything but the network
part of the package imports without the ``stream`` extra (``import hm_async`` must not need
aiomqtt).
"""

from __future__ import annotations

import ssl
from typing import Protocol

__all__ = ["Connection", "ConnectionLost", "ConnectionSettings", "Message"]


class ConnectionLost(Exception):
    """A connection failed or dropped for a reason worth retrying (internal: never escapes
    the stream, which reconnects)."""


class ConnectionSettings:
    """Where and how to connect; shared by every connection of one stream."""

    __slots__ = ("client_id", "connect_timeout", "host", "keepalive", "port",
                 "session_expiry", "ssl_context", "topic")

    def __init__(self, *, host: str, port: int, client_id: str, topic: str,
                 ssl_context: ssl.SSLContext, keepalive: int, session_expiry: int,
                 connect_timeout: float) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.topic = topic
        self.ssl_context = ssl_context
        self.keepalive = keepalive
        self.session_expiry = session_expiry
        self.connect_timeout = connect_timeout


class TopicName(Protocol):
    @property
    def value(self) -> str: ...


class Message(Protocol):
    """What the stream needs of a received PUBLISH (``aiomqtt.Message`` is one)."""

    @property
    def topic(self) -> TopicName: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def mid(self) -> int: ...

    @property
    def qos(self) -> int: ...


class Connection(Protocol):
    """One connected, subscribed MQTT session (see :mod:`._connection`)."""

    alive: bool

    async def next(self) -> Message: ...   # raises ConnectionLost when the connection is gone

    def ack(self, mid: int, qos: int) -> None: ...

    async def close(self) -> None: ...
