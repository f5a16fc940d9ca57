"""The one exception hierarchy of hm_async, and the parser that builds it from HM responses.

Every failure a caller can see is an :class:`HMError`, so ``except hm_async.HMError`` is
enough; the subclasses say what went wrong by meaning, not by HTTP detail::

    * HMError
      + APIError                    the server answered with an error status
      |  - BadRequestError          400
      |  - AuthenticationError      401 (token invalid or missing)
      |  |  - TokenRefusedError     the token endpoint refused the credentials (OAuth error)
      |  - PermissionDeniedError    403 no consent / privacy mode, 401 consent removed by OEM
      |  - NotFoundError            404
      |  - VehicleUnavailableError  408 vehicle asleep or offline
      |  - ConflictError            409
      |  - ValidationError          422
      |  - RateLimitedError         429, with ``retry_after``
      |  - ServerError              5xx: HM or the carmaker failed (retry later)
      + TransportError              no usable HTTP answer; ``kind`` says why ("connect",
      |  |                          "tls", "certificate", "reset", "closed", "protocol",
      |  |                          "too_large", "shutdown", "timeout")
      |  - HMTimeoutError           a configured timeout fired; ``timeout`` names which
      |  |                          (also a ``TimeoutError``)
      |  - StaleConnectionError     a reused keep-alive connection closed before any byte
      |  |                          of the answer (the policy loop re-sends the GET once)
      |  - SharedStateError         Redis (shared token, limits, dedupe) unreachable or failed
      + DecodeError                 a 2xx answer whose body is not what the spec says
      + CredentialsError            credentials missing or malformed (also ValueError)
      + SettleTimeoutError          clearance.wait_until_settled ran out of time (also a
      |                             ``TimeoutError``; not a TransportError: no request failed)
      + NotClearedError             poll: the VIN has no approved clearance (no request made)
      + InvalidVehicleError         poll: an input item is not a valid VIN/brand (also ValueError)
      + RetryBudgetExhaustedError   the client-wide retry budget is spent (the API looks dead)
      + StreamError                 an MQTT stream ended (hm_async.stream)
         - StreamRefusedError       the broker refused us for good; ``reason`` says why
         - StreamUnavailableError   no connection within ``give_up_after``

Outside this tree on purpose: ``hm_async.webhooks.WebhookError`` (raised to a webhook
*server*, not by a client call) and ``hm_async.models.UnitConversionError`` (a ``ValueError``
of unit arithmetic, no API involved).

HM answers errors in three body shapes (``{"errors": [...], "request_id"}``, a bare list of
error objects, and OAuth's ``{"error", "error_description"}``), and proxies in front of it add
HTML pages and empty bodies. :func:`error_from_response` turns all of them into the classes
above. Messages carry what the server said, never a credential or token. Network exceptions
(aiohttp's, the socket's, the GET lane's) become :class:`TransportError` in one place only,
:func:`hm_async._network_errors.map_network_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CredentialsError",
    "DecodeError",
    "ErrorDetail",
    "HMError",
    "HMTimeoutError",
    "InvalidVehicleError",
    "NotClearedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RetryBudgetExhaustedError",
    "ServerError",
    "SettleTimeoutError",
    "SharedStateError",
    "StaleConnectionError",
    "StreamError",
    "StreamRefusedError",
    "StreamUnavailableError",
    "TokenRefusedError",
    "TransportError",
    "ValidationError",
    "VehicleUnavailableError",
    "error_from_response",
    "is_consent_removed",
    "is_invalid_token",
]

#: How much of a non-JSON body (an HTML error page) goes into a message.
_EXCERPT_CHARS = 200
#: Error bodies larger than this are not parsed: an error page has no business being huge.
MAX_ERROR_BODY_BYTES = 64 * 1024


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of HM's ``errors`` list."""

    title: str | None = None
    detail: str | None = None
    source: str | None = None


class HMError(Exception):
    """Root of every error hm_async raises."""


class APIError(HMError):
    """The HM API answered with an error status.

    ``title``, ``detail``, ``source`` come from the first error object of the body,
    ``errors`` holds all of them; ``request_id`` is what HM support asks for.
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        title: str | None = None,
        detail: str | None = None,
        source: str | None = None,
        request_id: str | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.title = title
        self.detail = detail
        self.source = source
        self.request_id = request_id
        self.errors = errors
        self.method = method
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r})"


class BadRequestError(APIError):
    """400: the request was malformed."""


class AuthenticationError(APIError):
    """401: the access token was missing, invalid or expired."""


class TokenRefusedError(AuthenticationError):
    """The token endpoint refused to issue a token (OAuth ``error`` / ``error_description``).

    Not retried: wrong client id, secret, key or clock will not fix themselves.
    """

    def __init__(self, message: str, *, error: str | None = None,
                 error_description: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error = error
        self.error_description = error_description


class PermissionDeniedError(APIError):
    """403 (or 401 "consent removed by OEM"): no active consent, or privacy mode is on.

    A per-vehicle condition: other vehicles and the access token are fine.
    """


class NotFoundError(APIError):
    """404: no such resource (for example no clearance for that VIN)."""


class VehicleUnavailableError(APIError):
    """408: the vehicle is asleep or offline. Retrying later may succeed."""


class ConflictError(APIError):
    """409: the resource is in a state that forbids this (already deleted, in transition)."""


class ValidationError(APIError):
    """422: HM refused the input (invalid VIN or brand, data not available yet).

    ``fields`` maps each field HM named (an error's ``source``) to what is wrong with it,
    e.g. ``{"odometer": "can't be blank"}`` from the static-data valuation.
    """

    @property
    def fields(self) -> dict[str, str]:
        return {e.source: e.detail or e.title or "" for e in self.errors if e.source}


class RateLimitedError(APIError):
    """429: too many requests. ``retry_after`` is the server's wait in seconds, if it said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: HM or the carmaker's backend failed or was too slow (503/504). Transient."""


class TransportError(HMError):
    """No usable HTTP answer: the connection failed, was reset, or TLS was refused.

    ``kind`` names the cause in words a caller can branch on: "connect" (the connection
    was never established, so the request was never sent), "tls", "certificate", "reset",
    "closed" (the server hung up before a complete answer), "protocol" (bytes that are not
    HTTP), "too_large" (a body over the size cap), "shutdown" (the client was closed),
    "timeout" (see :class:`HMTimeoutError`), or "other".
    """

    def __init__(self, message: str, *, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind


class HMTimeoutError(TransportError, TimeoutError):
    """A configured timeout fired. ``timeout`` names which one ("connect", "total", ...)."""

    def __init__(self, message: str, *, timeout: str, seconds: float | None = None) -> None:
        super().__init__(message, kind="timeout")
        self.timeout = timeout
        self.seconds = seconds

    @classmethod
    def fired(cls, timeout: str, seconds: float | None, method: str,
              path: str) -> HMTimeoutError:
        """The error for limit ``timeout`` of a request, worded the same on every path."""
        what = f"{seconds} s without data" if timeout == "read" else f"{seconds} s"
        return cls(f"{timeout} timeout ({what}) on {method} {path}", timeout=timeout,
                   seconds=seconds)


class StaleConnectionError(TransportError):
    """A reused keep-alive connection was closed by the server before any byte of the answer.

    The GET lane raises it instead of sending again by itself: the policy loop re-sends the
    GET once at once, counted as a retry and charged to the retry budget. The server may
    still have executed the first copy (it can read a request and then close), which is
    why only idempotent requests take this path.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="closed")


class DecodeError(HMError):
    """A successful answer whose body does not match the documented shape."""

    def __init__(self, message: str, *, status_code: int | None = None,
                 path: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.path = path


class RetryBudgetExhaustedError(HMError):
    """The client-wide retry budget is spent: the API failed too often to keep retrying.

    ``last_error`` is the failure that would have been retried.
    """

    def __init__(self, message: str, *, last_error: HMError | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: VehicleUnavailableError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}

_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 409: "Conflict", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

_CONSENT_REMOVED_MARKERS = ("consent is removed", "consent removed", "consent was removed")
#: Details of a 401 that blame the token itself (a fresh token may fix it).
_INVALID_TOKEN_MARKERS = ("invalid token", "invalid jwt", "missing or invalid authorization",
                          "expired")


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _details(items: list[Any]) -> tuple[ErrorDetail, ...]:
    return tuple(
        ErrorDetail(title=_text(i.get("title")),
                    detail=_text(i.get("detail") or i.get("description")),
                    source=_text(i.get("source")))
        for i in items
        if isinstance(i, dict)
    )


def _parse_body(body: bytes) -> tuple[tuple[ErrorDetail, ...], str | None, str | None, str | None]:
    """Return (errors, request_id, oauth_error, oauth_description); empty when not JSON."""
    if not body or len(body) > MAX_ERROR_BODY_BYTES:
        return (), None, None, None
    try:
        doc = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for
        return (), None, None, None  # invalid UTF-8 inside a string
    if isinstance(doc, list):
        return _details(doc), None, None, None
    if not isinstance(doc, dict):
        return (), None, None, None
    errors = doc.get("errors")
    details = _details(errors) if isinstance(errors, list) else ()
    return details, _text(doc.get("request_id")), _text(doc.get("error")), _text(
        doc.get("error_description"))


def _excerpt(body: bytes, content_type: str | None) -> str:
    if not body:
        return "empty body"
    kind = (content_type or "unknown content type").split(";")[0].strip()
    text = body[:_EXCERPT_CHARS].decode("utf-8", "replace")
    text = " ".join(text.split())
    more = "…" if len(body) > _EXCERPT_CHARS else ""
    return f"non-JSON body ({kind}): {text}{more}"


def is_consent_removed(detail: str | None) -> bool:
    """True for HM's 401 "Consent is removed by OEM": a vehicle problem, not a token one."""
    return detail is not None and any(m in detail.lower() for m in _CONSENT_REMOVED_MARKERS)


def is_invalid_token(error: APIError) -> bool:
    """True for a 401 that blames the access token (so one replay with a new token may pass).

    Not for "consent removed by OEM" (a vehicle problem: a new token would not help).
    """
    if not isinstance(error, AuthenticationError):
        return False  # e.g. PermissionDeniedError for "consent removed by OEM"
    details = [e.detail for e in error.errors] or [error.detail]
    if any(is_consent_removed(d) for d in details):
        return False
    text = " ".join(d.lower() for d in details if d)
    return not text or any(m in text for m in _INVALID_TOKEN_MARKERS)


def error_from_response(
    status: int,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    path: str | None = None,
    token_endpoint: bool = False,
    retry_after: float | None = None,
) -> APIError:
    """Build the most specific :class:`APIError` for an error answer.

    ``token_endpoint`` marks answers of ``POST /v1/access_tokens``: a 4xx there is a
    :class:`TokenRefusedError` carrying the OAuth ``error_description``.
    ``retry_after`` is the already-parsed ``Retry-After`` header (see ``_retry``).
    """
    errors, request_id, oauth_error, oauth_description = _parse_body(body)
    if request_id is None and headers is not None:
        request_id = headers.get("X-Request-Id") or headers.get("X-Request-ID")
    first = errors[0] if errors else ErrorDetail()
    title = first.title or oauth_error
    detail = first.detail or oauth_description
    if not errors and oauth_error is None and detail is None:
        content_type = headers.get("Content-Type") if headers is not None else None
        detail = _excerpt(body, content_type)

    reason = _REASONS.get(status, "HTTP error")
    where = f" on {method} {path}" if method and path else ""
    # An error without a title names its field in ``source`` (the static-data 422:
    # ``{"detail": "can't be blank", "source": "odometer"}``): the field leads then.
    summary = "; ".join(
        ": ".join(p for p in (e.title or e.source, e.detail) if p) for e in errors
    ) or ": ".join(p for p in (title, detail) if p)
    message = f"HTTP {status} {reason}{where}: {summary}"
    if request_id:
        message += f" (request_id={request_id})"

    common: dict[str, Any] = dict(
        status_code=status, title=title, detail=detail, source=first.source,
        request_id=request_id, errors=errors, method=method, path=path,
    )
    # 408 (the server timed out waiting) and 429 say nothing about the credentials.
    if token_endpoint and 400 <= status < 500 and status not in (408, 429):
        return TokenRefusedError(message, error=oauth_error,
                                 error_description=oauth_description, **common)
    if status == 401 and any(is_consent_removed(e.detail) for e in errors):
        return PermissionDeniedError(message, **common)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **common)
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(message, **common)


class SettleTimeoutError(HMError, TimeoutError):
    """``clearance.wait_until_settled`` ran out of time; ``clearances`` is the last state seen.

    Not a :class:`TransportError`: every request succeeded, HM just has not decided yet, so
    ``except TransportError`` (network trouble) does not catch a clearance deadline.
    ``timeout`` is "settle" and ``seconds`` the deadline, as on :class:`HMTimeoutError`.
    """

    def __init__(self, message: str, *, seconds: float, clearances: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.timeout = "settle"
        self.seconds = seconds
        self.clearances = dict(clearances)


class CredentialsError(HMError, ValueError):
    """Credentials are missing or malformed. The message names the problem, not the secret."""


class NotClearedError(HMError):
    """The VIN has no approved clearance, so no vehicle-data request was made for it.

    ``status`` is the clearance status HM reported, or None when HM does not know the VIN.
    """

    def __init__(self, message: str, *, vin: str, status: str | None) -> None:
        super().__init__(message)
        self.vin = vin
        self.status = status


class InvalidVehicleError(HMError, ValueError):
    """An item given to ``poll`` is not a valid VIN or brand; reported as that item's result."""


class StreamError(HMError):
    """Root of the failures that end an MQTT stream (:func:`hm_async.stream`).

    Transient trouble (broker restarting, connection dropped, keep-alive expired) is never
    raised: the stream reconnects. What ends a stream is a permanent refusal, or
    ``give_up_after`` running out.
    """


class StreamRefusedError(StreamError):
    """The broker refused us for good (certificate, authorisation, client id, protocol).

    ``reason`` is a short machine-readable cause: ``"certificate"``, ``"not_authorized"``,
    ``"subscribe_refused"``, ``"qos"`` (only QoS 0 granted: at least once impossible),
    ``"client_id"`` or ``"protocol"``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StreamUnavailableError(StreamError):
    """No connection to the broker succeeded within ``give_up_after`` seconds."""


class SharedStateError(TransportError):
    """Redis, which holds the state many workers share (token, limits, dedupe), is
    unreachable or failed; raised at start, and mid-run with ``on_redis_error="fail"``.
    The message names the Redis URL without its password."""
