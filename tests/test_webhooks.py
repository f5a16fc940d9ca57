"""Webhooks: signature checks on raw bytes, tolerant event models, and the aiohttp handler
served on a real local socket."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hm_async.webhooks import (
    FleetClearanceChanged,
    InvalidSignatureError,
    Ping,
    UnknownEvent,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerifier,
    parse_event,
    sign,
    verify_signature,
    webhook_handler,
)

SECRET = "s3cr3t-webhook-value-XYZ"

CLEARANCE_BODY = json.dumps({
    "vehicle": {"vin": "WBAEMU00000000001", "brand": "bmw", "serial_number": "ABC"},
    "event": {"type": "fleet_clearance_changed", "action": "rejected",
              "detail": "vehicle not supported", "received_at": "2024-05-01T10:00:00Z"},
    "application": {"id": "APP"},
}, separators=(",", ":")).encode()


def test_signature_matches_an_independent_hmac() -> None:
    body = b'{"a": 1}'
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET) == expected
    assert verify_signature(body, expected, SECRET)
    assert verify_signature(body, expected.upper().replace("SHA256=", "sha256="), SECRET)


@pytest.mark.parametrize("signature", [
    None, "", "sha256=", "sha1=abc", "deadbeef", "sha256=zz", "sha256=é",
])
def test_malformed_signatures_are_refused(signature: str | None) -> None:
    assert not verify_signature(b"{}", signature, SECRET)


def test_any_change_to_body_or_secret_breaks_the_signature() -> None:
    good = sign(CLEARANCE_BODY, SECRET)
    # Same JSON, different bytes: the check is on the raw body, not on parsed data.
    reencoded = json.dumps(json.loads(CLEARANCE_BODY)).encode()
    assert reencoded != CLEARANCE_BODY
    assert not verify_signature(reencoded, good, SECRET)
    assert not verify_signature(CLEARANCE_BODY, good, SECRET + "x")
    with pytest.raises(ValueError, match="empty"):
        sign(b"{}", "")


def test_clearance_change_is_typed() -> None:
    event = parse_event(CLEARANCE_BODY, delivery_id="d-1")
    assert isinstance(event, FleetClearanceChanged)
    assert (event.vin, event.status, event.detail, event.brand) == (
        "WBAEMU00000000001", "rejected", "vehicle not supported", "bmw")
    assert event.delivery_id == "d-1" and not event.approved
    assert event.payload["application"] == {"id": "APP"} and event.raw == CLEARANCE_BODY


def test_header_type_wins_and_flat_bodies_are_understood() -> None:
    body = b'{"vin": "WBAEMU00000000001", "action": "approved"}'
    event = parse_event(body, event_type="fleet_clearance_changed")
    assert isinstance(event, FleetClearanceChanged) and event.approved
    assert event.vin == "WBAEMU00000000001"
    ping = parse_event(b'{"event": "ping"}')
    assert isinstance(ping, Ping)
    assert isinstance(parse_event(b'{"type": "PING"}'), Ping)


def test_unknown_events_are_kept_not_dropped() -> None:
    body = b'{"vehicle": {"vin": "WBAEMU00000000002"}, "event": {"type": "trip_ended"}, "x": [1]}'
    event = parse_event(body)
    assert isinstance(event, UnknownEvent)
    assert event.type == "trip_ended" and event.vin == "WBAEMU00000000002"
    assert event.payload["x"] == [1]
    # Known keys with surprising types do not lose the event either.
    odd = parse_event(b'{"vehicle": "nope", "event": 5, "type": "ping"}')
    assert isinstance(odd, UnknownEvent) and odd.type == "unknown"
    assert odd.payload["vehicle"] == "nope"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
def test_non_object_bodies_raise(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event(body)


def test_verifier_never_shows_the_secret() -> None:
    verifier = WebhookVerifier(SECRET)
    assert SECRET not in repr(verifier) and SECRET not in str(verifier)
    with pytest.raises(InvalidSignatureError) as info:
        verifier.parse(b"{}", {"x-hm-signature-256": "sha256=" + "0" * 64})
    assert SECRET not in str(info.value)
    with pytest.raises(InvalidSignatureError, match="missing"):
        verifier.parse(b"{}", {})
    # Plain dicts are searched case-insensitively.
    event = verifier.parse(b'{"event": "ping"}', {"x-hm-signature-256": sign(b'{"event": "ping"}',
                                                                              SECRET)})
    assert isinstance(event, Ping)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(verifier)
    handler = webhook_handler(SECRET, _noop)
    assert SECRET not in repr(handler)


async def _noop(event: WebhookEvent) -> None:
    return None


class _Site:
    def __init__(self, url: str, received: list[WebhookEvent]) -> None:
        self.url = url
        self.received = received


@pytest.fixture
async def site() -> AsyncIterator[_Site]:
    received: list[WebhookEvent] = []

    async def on_event(event: WebhookEvent) -> None:
        if isinstance(event, UnknownEvent) and event.type == "explode":
            raise RuntimeError("callback bug")
        received.append(event)

    app = web.Application()
    app.router.add_post("/hook", webhook_handler(SECRET, on_event, max_body_bytes=4096))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    try:
        yield _Site(f"http://127.0.0.1:{port}/hook", received)
    finally:
        await runner.cleanup()


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers={
        "Content-Type": "application/json", **headers}) as resp:
        return resp.status, await resp.json()


@pytest.mark.anyio
async def test_handler_accepts_signed_events_and_refuses_the_rest(
        site: _Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hm_async.webhooks")
    good = {"X-HM-Signature-256": sign(CLEARANCE_BODY, SECRET), "X-HM-Delivery": "abc"}
    assert await _post(site.url, CLEARANCE_BODY, good) == (200, {"ok": True})
    [event] = site.received
    assert isinstance(event, FleetClearanceChanged) and event.delivery_id == "abc"
    assert event.status == "rejected"

    status, body = await _post(site.url, CLEARANCE_BODY, {})
    assert status == 401 and "missing" in str(body["error"])
    tampered = CLEARANCE_BODY.replace(b"rejected", b"approved")
    status, body = await _post(site.url, tampered, good)
    assert status == 401 and "does not match" in str(body["error"])
    wrong_key = {"X-HM-Signature-256": sign(CLEARANCE_BODY, "other-secret")}
    assert (await _post(site.url, CLEARANCE_BODY, wrong_key))[0] == 401
    assert len(site.received) == 1  # nothing unsigned reached the callback

    not_json = b"<html>"
    assert (await _post(site.url, not_json, {"X-HM-Signature-256": sign(not_json, SECRET)}))[0] \
        == 400
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    assert (await _post(site.url, big, {"X-HM-Signature-256": sign(big, SECRET)}))[0] == 413

    ping = b'{"event": {"type": "ping"}}'
    header_typed = b'{"vehicle": {"vin": "WBAEMU00000000003"}}'
    assert (await _post(site.url, ping, {"X-HM-Signature-256": sign(ping, SECRET)}))[0] == 200
    assert (await _post(site.url, header_typed, {
        "X-HM-Signature-256": sign(header_typed, SECRET), "X-HM-Event": "trip_started"}))[0] == 200
    assert isinstance(site.received[1], Ping)
    assert isinstance(site.received[2], UnknownEvent) and site.received[2].type == "trip_started"

    boom = b'{"type": "explode"}'
    assert (await _post(site.url, boom, {"X-HM-Signature-256": sign(boom, SECRET)}))[0] == 500
    assert "callback failed" in caplog.text
    assert SECRET not in caplog.text
