"""Receiving HM webhooks: check the signature, decode the event, hand it to your code.

HM POSTs a JSON body to the URL set in the console and signs it with the secret set there::

    X-HM-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>
    X-HM-Delivery:      <unique delivery id>
    X-HM-Event:         <event type>  (sent by the platform; also read from the body)

Why it is built this way:

* The signature is checked on the *raw bytes* before any JSON parsing: re-encoding a parsed
  body changes whitespace and key order, so a check on parsed data would be both wrong and
  a parser exposed to anyone on the internet. Comparison is constant-time
  (:func:`hmac.compare_digest`) so the signature cannot be guessed byte by byte.
* HM documents the event names and headers but not a body schema. The models are tolerant:
  unknown fields are ignored, the type comes from ``X-HM-Event``, else the body's
  ``event.type`` / ``type``; every event keeps the decoded ``payload`` and the ``raw`` bytes,
  and an event type this module does not know becomes an :class:`UnknownEvent` instead of
  being dropped. The clearance change carries the new status in ``event.action`` and a
  rejection reason in ``event.detail`` (as HM's docs say), and the VIN in ``vehicle.vin``.
* The secret lives in a private slot of :class:`WebhookVerifier`; reprs, log lines and
  error answers never contain it (a 401 says only that the signature is missing or wrong).

Use with aiohttp::

    async def on_event(event: WebhookEvent) -> None: ...
    app.router.add_post("/hm/webhook", webhook_handler(secret, on_event))
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from aiohttp import web

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "FleetClearanceChanged",
    "InvalidSignatureError",
    "Ping",
    "UnknownEvent",
    "WebhookError",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookVerifier",
    "parse_event",
    "sign",
    "verify_signature",
    "webhook_handler",
]

SIGNATURE_HEADER = "X-HM-Signature-256"
DELIVERY_HEADER = "X-HM-Delivery"
EVENT_HEADER = "X-HM-Event"
_PREFIX = "sha256="
#: A webhook body is a small JSON document; refuse anything absurd before hashing it.
MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger("hm_async.webhooks")


class WebhookError(Exception):
    """A webhook delivery could not be accepted. Messages never contain the secret."""


class InvalidSignatureError(WebhookError):
    """``X-HM-Signature-256`` is missing, malformed or does not match the body."""


class WebhookPayloadError(WebhookError, ValueError):
    """The signature is right but the body is not a JSON object."""


class FleetClearanceChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The clearance status of a fleet vehicle changed; ``status`` is the new one.

    ``detail`` is HM's explanation when there is one (for example why it was rejected).
    """

    type: str = "fleet_clearance_changed"
    vin: str | None
    status: str | None
    detail: str | None = None
    brand: str | None = None
    delivery_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    raw: bytes = b""

    @property
    def approved(self) -> bool:
        return self.status == "approved"


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    """Sent when the webhook is configured or changed: proof that delivery works."""

    type: str = "ping"
    delivery_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    raw: bytes = b""


class UnknownEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event type this version does not model; kept whole so nothing is lost."""

    type: str
    vin: str | None = None
    delivery_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    raw: bytes = b""


WebhookEvent = FleetClearanceChanged | Ping | UnknownEvent


class _Vehicle(msgspec.Struct, kw_only=True):
    vin: str | None = None
    brand: str | None = None


class _Event(msgspec.Struct, kw_only=True):
    type: str | None = None
    action: str | None = None
    detail: str | None = None


class _Body(msgspec.Struct, kw_only=True):
    """The fields read from a body; everything else stays in ``payload``."""

    vehicle: _Vehicle | None = None
    event: _Event | str | None = None
    type: str | None = None
    vin: str | None = None
    action: str | None = None
    status: str | None = None
    detail: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``X-HM-Signature-256`` value HM sends for ``body`` (for tests and local senders)."""
    return _PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, signature: str | None, secret: str | bytes) -> bool:
    """True if ``signature`` (the header value) is the HMAC-SHA256 of ``body`` with ``secret``."""
    if not signature:
        return False
    signature = signature.strip()
    if signature[:len(_PREFIX)].lower() != _PREFIX:
        return False
    expected = hmac.new(_key(secret), body, hashlib.sha256).hexdigest()
    given = signature[len(_PREFIX):].strip().lower()
    # compare_digest on ASCII bytes: constant time in the length of the expected digest.
    try:
        given_bytes = given.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given_bytes)


_BODY_DECODER = msgspec.json.Decoder(_Body)
_ANY_DECODER = msgspec.json.Decoder()


def parse_event(body: bytes, *, event_type: str | None = None,
                delivery_id: str | None = None) -> WebhookEvent:
    """Decode an (already verified) body into a typed event.

    ``event_type`` is the ``X-HM-Event`` header when there was one; it wins over the body.
    Raises :class:`WebhookPayloadError` when the body is not a JSON object.
    """
    try:
        payload = _ANY_DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad UTF-8 in a string
        raise WebhookPayloadError("webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError(
            f"webhook body is a JSON {type(payload).__name__}, expected an object")
    try:
        fields = _BODY_DECODER.decode(body)
    except msgspec.ValidationError:
        fields = _Body()  # known keys with surprising types: keep the payload, type what we can
    event = fields.event if isinstance(fields.event, _Event) else None
    kind = (_text(event_type) or (event.type if event else None)
            or (fields.event if isinstance(fields.event, str) else None) or fields.type)
    kind = (kind or "").strip().lower() or "unknown"
    vehicle = fields.vehicle
    vin = (vehicle.vin if vehicle else None) or fields.vin
    if kind == "fleet_clearance_changed":
        status = (event.action if event else None) or fields.action or fields.status
        return FleetClearanceChanged(
            vin=vin, status=status, detail=(event.detail if event else None) or fields.detail,
            brand=vehicle.brand if vehicle else None, delivery_id=delivery_id,
            payload=payload, raw=body)
    if kind == "ping":
        return Ping(delivery_id=delivery_id, payload=payload, raw=body)
    return UnknownEvent(type=kind, vin=vin, delivery_id=delivery_id, payload=payload, raw=body)


class WebhookVerifier:
    """Holds the secret; checks and decodes one delivery at a time.

    Framework-neutral: pass the raw body and the headers (any case-insensitive or plain
    mapping). Raises :class:`InvalidSignatureError` or :class:`WebhookPayloadError`.
    """

    __slots__ = ("_key",)

    def __init__(self, secret: str | bytes) -> None:
        if not isinstance(secret, (str, bytes)):
            raise TypeError(f"secret must be str or bytes, got {type(secret).__name__}")
        self._key = _key(secret)

    def __repr__(self) -> str:
        return "WebhookVerifier(secret=<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("WebhookVerifier cannot be pickled (it holds a secret)")

    def verify(self, body: bytes, signature: str | None) -> bool:
        return verify_signature(body, signature, self._key)

    def parse(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify ``body`` against the headers' signature, then decode it."""
        signature = _header(headers, SIGNATURE_HEADER)
        if signature is None:
            raise InvalidSignatureError(f"{SIGNATURE_HEADER} header is missing")
        if not self.verify(body, signature):
            raise InvalidSignatureError(f"{SIGNATURE_HEADER} does not match the body")
        return parse_event(body, event_type=_header(headers, EVENT_HEADER),
                           delivery_id=_header(headers, DELIVERY_HEADER))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):  # a plain dict: try other cases
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


EventCallback = Callable[[WebhookEvent], Awaitable[Any]]


class _Handler:
    """The work of the handler :func:`webhook_handler` returns; the secret stays in the verifier."""

    __slots__ = ("_callback", "_max_body", "_verifier")

    def __init__(self, verifier: WebhookVerifier, callback: EventCallback, max_body: int) -> None:
        self._verifier = verifier
        self._callback = callback
        self._max_body = max_body

    def __repr__(self) -> str:
        return f"webhook_handler(callback={getattr(self._callback, '__qualname__', '?')})"

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self._max_body:
            return web.json_response({"error": "body too large"}, status=413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self._max_body:
                return web.json_response({"error": "body too large"}, status=413)
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            event = self._verifier.parse(body, request.headers)
        except InvalidSignatureError as exc:
            logger.warning("webhook refused from %s: %s", request.remote, exc)
            return web.json_response({"error": str(exc)}, status=401)
        except WebhookPayloadError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            await self._callback(event)
        except Exception:
            # A 5xx makes HM deliver again later, which is what a failed handler wants.
            logger.exception("webhook callback failed for %s event (delivery %s)",
                             event.type, event.delivery_id)
            return web.json_response({"error": "handler failed"}, status=500)
        return web.json_response({"ok": True})


def webhook_handler(secret: str | bytes | WebhookVerifier, callback: EventCallback, *,
                    max_body_bytes: int = MAX_BODY_BYTES
                    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler: 401 on a bad or missing signature, else ``await callback(event)``.

    Answers 200 after the callback returns, 400 for a signed body that is not a JSON object,
    413 for an oversized body and 500 when the callback raises (HM then redelivers). Keep the
    callback short (put the event on a queue): HM waits for the answer.
    """
    verifier = secret if isinstance(secret, WebhookVerifier) else WebhookVerifier(secret)
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be >= 1")
    handler = _Handler(verifier, callback, max_body_bytes)

    # aiohttp wants a coroutine function, not a callable object.
    async def hm_webhook(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return hm_webhook
