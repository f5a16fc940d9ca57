"""Reconnects against a real mosquitto: broker restart (persistence on), dropped TCP, expired
keep-alive. Nothing lost, nothing delivered twice, no subscription doubled, no busy loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from mqtt_broker import (  # noqa: F401 (the mqtt_broker fixture)
    Broker,
    emulator_publisher,
    mqtt_broker_fixture,
)

from hm_async.emulator._mqtt_config import EMULATOR_APP_ID
from hm_async.stream import EventStream, StreamEvent, stream

pytestmark = pytest.mark.anyio


class Proxy:
    """A TCP forwarder in front of the broker that can drop or black-hole its connections."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, dict[str, bool]]] = []
        self.accepted = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        state = {"frozen": False}
        self.links.append((writer, up_writer, state))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if not state["frozen"]:
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Drop every current connection (RST), as a NAT or a load balancer would."""
        for down, up, _ in self.links:
            down.transport.abort()
            up.transport.abort()
        self.links.clear()

    def freeze(self) -> None:
        """Current connections stay open but carry nothing any more (a dead path)."""
        for _, _, state in self.links:
            state["frozen"] = True

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def open_stream(broker: Broker, port: int | None = None, **kwargs) -> EventStream:
    return stream(broker.credentials(), app_id=EMULATOR_APP_ID, host=broker.host,
                  port=port or broker.port, client_id="hm-reconnect", connect_timeout=5,
                  **kwargs)


async def take(events: EventStream, n: int, into: list[str], timeout: float = 30) -> None:
    async def run() -> None:
        for _ in range(n):
            ev = await events.__anext__()
            assert isinstance(ev, StreamEvent)
            into.append(ev.message_id)
    await asyncio.wait_for(run(), timeout)


async def test_broker_restart_mid_stream_resumes_the_session(mqtt_broker, caplog):
    caplog.set_level(logging.INFO, logger="hm_async.stream")
    got: list[str] = []
    async with open_stream(mqtt_broker) as events:
        async with emulator_publisher(mqtt_broker) as pub:
            before = await pub.publish_burst(300)
        await take(events, 100, got)
        mqtt_broker.stop()                 # SIGTERM: mosquitto saves sessions and queues
        down_since = time.monotonic()
        caplog.clear()
        consumer = asyncio.create_task(take(events, 200, got))
        await asyncio.sleep(1.5)           # the consumer keeps trying meanwhile
        attempts = sum("connect to" in r.getMessage() for r in caplog.records)
        mqtt_broker.start()
        await consumer
        assert events.stats.reconnects == 1
        assert 1 <= attempts <= 8, attempts      # jittered backoff, not a busy loop
        assert time.monotonic() - down_since < 10
        print(f"broker restart: down 1.5 s, {attempts} connect attempts meanwhile, 200 queued "
              f"messages read {time.monotonic() - down_since:.1f} s after the stop")
        async with emulator_publisher(mqtt_broker) as pub:
            after = await pub.publish_burst(200)
        received = events.stats.received
        await take(events, 200, got)
    assert got == before + after               # nothing lost, order kept, nothing twice
    # a doubled subscription would deliver every new message twice
    assert events.stats.received - received == 200


async def test_dropped_tcp_and_expired_keepalive_reconnect(mqtt_broker):
    proxy = Proxy((mqtt_broker.host, mqtt_broker.port))
    await proxy.start()
    got: list[str] = []
    try:
        async with open_stream(mqtt_broker, port=proxy.port, keepalive=1) as events, \
                emulator_publisher(mqtt_broker) as pub:
            sent = await pub.publish_burst(100)
            await take(events, 30, got)
            proxy.cut()                                     # dropped TCP
            sent += await pub.publish_burst(100)
            await take(events, 170, got)
            assert events.stats.reconnects == 1
            proxy.freeze()                                  # silent dead path
            frozen_at = time.monotonic()
            sent += await pub.publish_burst(50)
            await take(events, 50, got, timeout=15)
            assert events.stats.reconnects == 2
            assert time.monotonic() - frozen_at < 8         # found by the keep-alive
            print(f"dead path found and healed in {time.monotonic() - frozen_at:.1f} s "
                  f"(keepalive 1 s)")
    finally:
        await proxy.close()
    assert got == sent
