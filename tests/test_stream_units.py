"""Streaming pieces that need no broker: credentials, decoding (V2/V1), the dedupe window."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trustme

from hm_async import CredentialsError
from hm_async.stream import (
    MalformedMessage,
    MemoryDedupeWindow,
    MQTTCredentials,
    StreamEvent,
    decode_v1,
    decode_v2,
    stream_topic,
)

SPEC = Path(__file__).parent.parent / "scripts" / "specs" / "auto-api-0002" / "janus-example.json"
NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


# -- credentials -------------------------------------------------------------------------
@pytest.fixture
def pems(tmp_path: Path) -> tuple[Path, Path, Path, trustme.CA]:
    ca = trustme.CA()
    leaf = ca.issue_cert("worker@clients.invalid", common_name="hm-worker")
    paths = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    leaf.cert_chain_pems[0].write_to_path(str(paths[1]))
    leaf.private_key_pem.write_to_path(str(paths[2]))
    return (*paths, ca)


def test_credentials_load_and_never_show_the_key(pems):
    ca, cert, key, _ = pems
    creds = MQTTCredentials.from_files(ca, cert, key)
    ctx = creds.ssl_context()
    assert ctx.check_hostname and ctx.verify_mode.name == "CERT_REQUIRED"
    key_body = key.read_text().splitlines()[1]
    assert key_body not in repr(creds) and "redacted" in repr(creds)
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(creds)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_missing_file_is_named(pems, tmp_path, which):
    paths = list(pems[:3])
    paths[which] = tmp_path / "nope.pem"
    with pytest.raises(CredentialsError, match=r"nope\.pem does not exist"):
        MQTTCredentials.from_files(*paths)


def test_directory_and_not_pem_are_clear(pems, tmp_path):
    ca, cert, key, _ = pems
    with pytest.raises(CredentialsError, match="is a directory"):
        MQTTCredentials.from_files(ca, tmp_path, key)
    junk = tmp_path / "junk.key"
    junk.write_text("hello")
    with pytest.raises(CredentialsError, match="holds no PEM private key"):
        MQTTCredentials.from_files(ca, cert, junk)
    with pytest.raises(CredentialsError, match="holds no PEM certificate"):
        MQTTCredentials.from_files(junk, cert, key)


def test_mismatched_key_is_named_without_its_content(pems, tmp_path):
    ca, cert, _, authority = pems
    other = authority.issue_cert("someone@clients.invalid")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    with pytest.raises(CredentialsError) as info:
        MQTTCredentials.from_files(ca, cert, other_key)
    assert "does not belong to the client certificate" in str(info.value)
    body = other_key.read_text().splitlines()[1]
    assert body not in str(info.value) and body not in repr(info.value)


def test_encrypted_key_is_refused(pems, tmp_path):
    ca, cert, _, _ = pems
    enc = tmp_path / "enc.key"
    enc.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                   "-----END ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(CredentialsError, match="password-protected"):
        MQTTCredentials.from_files(ca, cert, enc)


# -- topics --------------------------------------------------------------------------------
def test_topics():
    assert stream_topic("app") == "live/level13/app"
    assert stream_topic("app", environment="sandbox") == "sandbox/level13/app"
    assert stream_topic("app", version=1) == "live/level13/app/#"
    assert stream_topic("app", group="g") == "$share/g/live/level13/app"
    for bad in ({"app_id": "a/b"}, {"app_id": "a", "group": "x/y"},
                {"app_id": "a", "environment": "prod"}):
        with pytest.raises(ValueError):
            stream_topic(**bad)  # type: ignore[arg-type]


# -- decoding --------------------------------------------------------------------------------
def test_v2_spec_example_decodes():
    payload = SPEC.read_bytes()
    ev = decode_v2("live/level13/app", payload, NOW)
    assert isinstance(ev, StreamEvent) and ev.ok
    assert (ev.vin, ev.message_id, ev.version) == ("EXVETESTVIN000001", "ABCDEF", 2)
    odometer = ev.data.diagnostics.odometer[0]  # type: ignore[union-attr]
    assert odometer.data.value == 2050 and odometer.data.unit == "kilometers"
    assert ev.changed == ("diagnostics.odometer",)
    assert ev.raw == payload and ev.received_at == NOW


def test_unknown_capabilities_and_fields_decode():
    body = json.loads(SPEC.read_text())
    body["future_field"] = {"x": 1}
    body["data"]["teleportation"] = {"destination": [{"data": "mars", "timestamp":
                                                      "2030-01-01T00:00:00Z"}]}
    body["data"]["diagnostics"]["brand_new_property"] = [{"data": 1}]
    body["data"]["diagnostics"]["odometer"][0]["quality"] = "good"
    ev = decode_v2("t", json.dumps(body).encode(), NOW)
    assert ev.ok and ev.data.diagnostics.odometer[0].data.value == 2050  # type: ignore[union-attr]


def test_v1_single_and_multi_instance_decode_into_the_same_shape():
    single = {"version": 1, "message_id": "M1", "vin": "EXVETESTVIN000001",
              "capability": "diagnostics", "property": "odometer",
              "data": {"diagnostics": {"odometer": {"data": {"value": 7, "unit": "miles"},
                                                    "timestamp": "2021-10-06T13:59:25Z"}}}}
    ev = decode_v1("live/level13/app/EXVETESTVIN000001/diagnostics/get/odometer",
                   json.dumps(single).encode(), NOW)
    assert ev.ok and ev.data.diagnostics.odometer[0].data.value == 7  # type: ignore[union-attr]
    multi = dict(single, property="tire_pressures", message_id="M2", data={"diagnostics": {
        "tire_pressures": [{"data": {"location": loc, "pressure": {"value": 2.3, "unit": "bars"}},
                            "timestamp": "2021-10-06T13:59:25Z"}
                           for loc in ("front_left", "front_right")]}})
    ev = decode_v1("t", json.dumps(multi).encode(), NOW)
    assert ev.ok and len(ev.data.diagnostics.tire_pressures) == 2  # type: ignore[union-attr]
    assert ev.changed == ("diagnostics.tire_pressures",)


@pytest.mark.parametrize("payload, reason", [
    (b'{"version": 2, "message_id": "X1", "vin": "V", "da', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"version": 3, "message_id": "X1", "vin": "V", "data": {}}',
     "unsupported message version 3"),
    (b'{"version": 2, "message_id": "X1", "vin": "V", "data": {"diagnostics": {"odometer": "7"}}}',
     "does not match"),
    (b'{"version": 2, "vin": "V", "data": {}}', "does not match"),
    (b"[]", "does not match"),
])
def test_malformed_is_an_event_not_an_exception(payload, reason):
    ev = decode_v2("t", payload, NOW)
    assert isinstance(ev, MalformedMessage) and not ev.ok
    assert reason in ev.reason and ev.raw == payload
    if b'"X1"' in payload and payload.endswith(b"}"):
        assert ev.message_id == "X1" and ev.vin == "V"


# -- dedupe window ----------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_dedupe_claim_done_release():
    w = MemoryDedupeWindow(max_size=10, max_age=60)
    assert await w.claim("a") is True
    assert await w.claim("a") is False          # in progress: a duplicate
    await w.release("a")
    assert await w.claim("a") is True           # released: processed again
    await w.done("a")
    assert await w.claim("a") is False          # done: a duplicate
    await w.release("a")                        # release after done changes nothing
    assert await w.claim("a") is False


@pytest.mark.anyio
async def test_dedupe_window_is_bounded_by_size_and_age():
    clock = Clock()
    w = MemoryDedupeWindow(max_size=3, max_age=10, clock=clock)
    for mid in "abcd":
        assert await w.claim(mid)
        await w.done(mid)
    assert len(w) == 3
    assert await w.claim("a") is True           # pushed out by size: new again
    clock.now = 11
    assert await w.claim("z") is True
    assert len(w) == 1                          # everything older than max_age is gone
    assert await w.claim("d") is True


def test_reconnect_backoff_is_jittered_growing_capped_and_never_zero():
    from hm_async.stream import ReconnectBackoff

    low = ReconnectBackoff(rand=lambda: 0.0)
    high = ReconnectBackoff(rand=lambda: 1.0)
    assert [low.next_delay() for _ in range(3)] == [0.1, 0.1, 0.1]        # the floor
    assert [high.next_delay() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    high.reset()
    assert high.next_delay() == 0.5
