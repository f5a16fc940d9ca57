"""hm_async.stream against a real mosquitto (mTLS, MQTT 5) fed by the emulator's publisher."""

from __future__ import annotations

import contextlib
import logging
import time

import pytest
import trustme
from mqtt_broker import (  # noqa: F401 (the mqtt_broker fixture)
    Broker,
    emulator_publisher,
    mqtt_broker_fixture,
    running_broker,
)

from hm_async import HMClient, HMError
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.emulator._mqtt import MQTTPublisher
from hm_async.emulator._mqtt_config import MQTTPush
from hm_async.stream import (
    MalformedMessage,
    MQTTCredentials,
    StreamEvent,
    StreamRefusedError,
    StreamUnavailableError,
    as_change,
    stream,
)

pytestmark = pytest.mark.anyio
APP = MQTTPush.__dataclass_fields__["app_id"].default


def open_stream(broker: Broker, client_id: str = "hm-w1", **kwargs):
    kwargs.setdefault("app_id", APP)
    return stream(broker.credentials(), host=broker.host, port=broker.port,
                  client_id=client_id, connect_timeout=5, **kwargs)


async def test_v2_typed_events_duplicates_dropped_malformed_counted(mqtt_broker):
    async with open_stream(mqtt_broker) as events, \
            emulator_publisher(mqtt_broker, duplicate_rate=0.2, malformed_rate=0.05,
                               seed=3) as pub:
        ids = await pub.publish_burst(600)
        expected = set(ids)
        delivered: list[str] = []
        malformed: list[MalformedMessage] = []
        async for ev in events:
            if isinstance(ev, StreamEvent):
                delivered.append(ev.message_id)
                assert ev.vin and ev.data.diagnostics is not None and ev.changed
            else:
                malformed.append(ev)
            if set(delivered) == expected and len(malformed) == pub.stats.malformed:
                break
        assert len(delivered) == len(expected)            # every id exactly once
        assert pub.stats.duplicates > 50
        assert events.stats.duplicates == pub.stats.duplicates
        assert events.stats.malformed == len(malformed) == pub.stats.malformed > 10
        assert all(m.reason for m in malformed)


async def test_v1_per_property_messages_decode_into_the_same_shape(mqtt_broker):
    async with open_stream(mqtt_broker, version=1) as events, \
            emulator_publisher(mqtt_broker, version=1) as pub:
        ids = await pub.publish_burst(40)
        got = []
        async for ev in events:
            assert isinstance(ev, StreamEvent) and ev.version == 1
            got.append(ev)
            if len(got) == len(ids):
                break
        assert [e.message_id for e in got] == ids
        assert all(len(e.changed) == 1 for e in got)
        assert got[0].topic.endswith(f"/{got[0].vin}/diagnostics/get/odometer")


async def test_a_message_is_acknowledged_only_after_the_loop_body_returned(mqtt_broker):
    async with emulator_publisher(mqtt_broker) as pub:
        async with open_stream(mqtt_broker):   # creates the persistent session
            pass
        ids = await pub.publish_burst(30)
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="consumer failed"):
        async with open_stream(mqtt_broker) as events:
            async for ev in events:
                assert isinstance(ev, StreamEvent)
                seen.append(ev.message_id)
                if len(seen) == 10:
                    raise RuntimeError("consumer failed")
    async with open_stream(mqtt_broker) as events:
        async for ev in events:
            assert isinstance(ev, StreamEvent)
            seen.append(ev.message_id)
            if set(seen) == set(ids):
                break
    assert seen[:10] == ids[:10] and seen[10:] == ids[9:]


async def test_break_acknowledges_the_last_message(mqtt_broker):
    async with emulator_publisher(mqtt_broker) as pub, open_stream(mqtt_broker) as events:
        ids = await pub.publish_burst(5)
        async for ev in events:
            assert ev.ok and ev.message_id == ids[0]
            break
    async with open_stream(mqtt_broker) as events:
        ev = await events.__anext__()
        assert ev.ok and ev.message_id == ids[1]


async def test_broker_rejecting_our_certificate_is_a_clear_error(mqtt_broker, caplog):
    caplog.set_level(logging.DEBUG)
    foreign = trustme.CA()
    ca, cert, key = mqtt_broker.write_client("hm-worker", ca=foreign)
    started = time.monotonic()
    with pytest.raises(StreamRefusedError) as info:
        async with stream(MQTTCredentials.from_files(ca, cert, key), app_id=APP,
                          host=mqtt_broker.host, port=mqtt_broker.port, client_id="hm-x",
                          connect_timeout=20):
            pass
    assert info.value.reason == "certificate" and isinstance(info.value, HMError)
    assert "rejected the client certificate" in str(info.value)
    assert time.monotonic() - started < 5       # not after the 20 s connect timeout
    key_line = key.read_text().splitlines()[1]
    assert key_line not in str(info.value) and key_line not in caplog.text
    assert caplog.records          # paho's debug log was on, and said nothing secret


async def test_untrusted_broker_certificate_is_refused(mqtt_broker, tmp_path):
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    _, cert, key = mqtt_broker.write_client("hm-worker")
    with pytest.raises(StreamRefusedError, match="does not verify") as info:
        async with stream(MQTTCredentials.from_files(tmp_path / "other-ca.pem", cert, key),
                          app_id=APP, host=mqtt_broker.host, port=mqtt_broker.port):
            pass
    assert info.value.reason == "certificate"


async def test_not_authorised_is_a_clear_error(tmp_path):
    with running_broker(tmp_path / "b", extra_conf="clientid_prefixes hm-\n") as broker:
        with pytest.raises(StreamRefusedError, match="refused the connection") as info:
            async with open_stream(broker, client_id="rogue-worker"):
                pass
        assert info.value.reason == "not_authorized"
        async with open_stream(broker, client_id="hm-fine"):   # the same broker lets us in
            pass


async def test_a_broker_granting_only_qos_0_is_refused(tmp_path):
    with running_broker(tmp_path / "b", extra_conf="max_qos 0\n") as broker:
        with pytest.raises(StreamRefusedError, match="QoS 0 only") as info:
            async with open_stream(broker):
                pass
        assert info.value.reason == "qos"


async def test_no_broker_and_give_up_after(tmp_path):
    broker = Broker(tmp_path / "never-started")
    started = time.monotonic()
    with pytest.raises(StreamUnavailableError):
        async with open_stream(broker, give_up_after=1.0):
            pass
    assert 1.0 <= time.monotonic() - started < 4


async def test_watch_and_stream_changes_share_one_shape(mqtt_broker):
    async with Emulator(EmulatorConfig(vehicles=3, failure_fraction=0.0,
                                       update_interval=3600)) as emu:
        vin = emu.vehicles[0].vin
        async with HMClient(emu.client_credentials, base_url=emu.url) as hm, \
                contextlib.aclosing(hm.watch([vin], every=0.1, rounds=1)) as watch:
            polled = [as_change(r) async for r in watch]
        publisher = MQTTPublisher(emu, MQTTPush(mqtt_broker.host, mqtt_broker.port,
                                                mqtt_broker.credentials("hm-emulator")))
        await publisher.start(run=False)
        try:
            async with open_stream(mqtt_broker) as events:
                assert await publisher.publish_changes(vin) == 1
                pushed = as_change(await events.__anext__())
        finally:
            await publisher.close()
    poll_change = polled[0]
    assert poll_change is not None and pushed is not None
    assert (poll_change.vin, poll_change.source, pushed.source) == (vin, "poll", "stream")
    assert poll_change.changed == pushed.changed and len(pushed.changed) > 10
    assert poll_change.timestamps == pushed.timestamps
