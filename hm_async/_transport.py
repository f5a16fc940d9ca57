"""The policy loop: one logical request in, one answer (or one HMError) out.

Every API call goes through :meth:`Transport.request` (the token endpoint, which this loop
itself depends on, has its own small loop in :mod:`hm_async._tokens` over the same lane).
Each attempt goes over one lane: the aiohttp lane (:mod:`hm_async._aiohttp_lane`) or, for
GETs when the client enables it, the GET lane (:mod:`hm_async._h1_pool`); both map network
failures through :func:`~hm_async._network_errors.map_network_error` and answer with a
:class:`~hm_async._response.Response`, so everything below is shared. The transport

* waits for a free slot of its own (a semaphore no larger than the connector's pool), so
  aiohttp never queues for a connection and its ``total`` timeout starts only once the
  request can really be sent -- time spent queueing is not charged to the request;
* attaches the bearer token (only ever to the configured API origin: callers give a request
  target -- path and query -- and only this module joins it to ``base_url``; redirects are
  never followed) and replays once after a 401 "invalid token"
  with a fresh token, invalidating only the token that request used;
* retries transient failures with jittered exponential backoff, honouring ``Retry-After``,
  within a client-wide :class:`~hm_async._retry.RetryBudget`, never repeating a request
  that may have been applied (only idempotent ones are retried on ambiguous failures);
* re-sends a GET at once, once, when the GET lane reports that a reused keep-alive connection
  was closed before any byte of the answer (:class:`~hm_async.StaleConnectionError`): the
  re-send is counted as a retry and charged to the retry budget. The server may have
  executed the first copy (it can read a request and then close), so only GETs go this way;
* paces rate-limited brands through the :class:`~hm_async._limiter.RateLimiter` protocol;
* counts every attempt in the :class:`~hm_async._metering.UsageMeter`, logs one debug
  line per attempt (method, path, status, latency, request id; never headers) and, when
  the client has event hooks, hands each attempt's :class:`~hm_async.AttemptEvent` to them
  (:mod:`hm_async._events`; one truthiness test per attempt when there are none).
"""

from __future__ import annotations

import asyncio
import logging
import time

from multidict import CIMultiDict
from yarl import URL

from ._access_token import AccessToken
from ._aiohttp_lane import AiohttpLane
from ._config import Timeout
from ._errors import (
    APIError,
    HMError,
    RateLimitedError,
    RetryBudgetExhaustedError,
    StaleConnectionError,
    TransportError,
    error_from_response,
    is_invalid_token,
)
from ._events import AttemptEvent, EventHook, emit, path_template, request_path
from ._h1_pool import LeanHTTP
from ._limiter import RateLimiter
from ._metering import TRANSPORT_FAILURE, UsageMeter, outcome_of
from ._network_errors import NOT_SENT_KINDS
from ._response import Response
from ._retry import RetryBudget, backoff_delay, parse_retry_after, should_retry
from ._slots import Slots
from ._tokens import TokenProvider
from ._version import USER_AGENT

__all__ = ["Transport"]

logger = logging.getLogger("hm_async")

_BASE_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}

#: A 429 proves the request was not processed, and the brand's limiter slows down after it,
#: so throttled attempts get their own, larger allowance instead of using up ``max_retries``
#: (which is meant for failures) or the retry budget (which guards against a dead API).
MAX_RATE_LIMIT_RETRIES = 8


class _TokenUnavailable(Exception):
    """Carries a token provider failure past the transport's retry loop."""

    def __init__(self, error: HMError) -> None:
        super().__init__(str(error))
        self.error = error


class Transport:
    """Sends requests for one client; see the module docstring for what it guarantees."""

    def __init__(
        self,
        lane: AiohttpLane,
        tokens: TokenProvider,
        *,
        base_url: str,
        max_connections: int,
        timeout: Timeout,
        max_retries: int,
        retry_budget: RetryBudget,
        meter: UsageMeter,
        limiter: RateLimiter | None = None,
        lean: LeanHTTP | None = None,
        hooks: tuple[EventHook, ...] = (),
    ) -> None:
        self.lane = lane
        self.lean = lean
        #: The API origin every request target is joined to (``scheme://host[:port]``).
        self.base_url = base_url
        self.tokens = tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self.meter = meter
        self.limiter = limiter
        #: The client's event hooks (:mod:`hm_async._events`); empty: no event is built.
        self.hooks = hooks
        origin = URL(base_url)
        self._origin = (origin.host or "", origin.port or 0, origin.scheme)  # for events
        self._slots = Slots(max_connections)
        self._headers_for: tuple[AccessToken | None, CIMultiDict[str], CIMultiDict[str]] = (
            None, CIMultiDict(), CIMultiDict())
        self._lean_block_for: tuple[AccessToken | None, bytes] = (None, b"")

    def _headers(self, token: AccessToken, with_body: bool) -> CIMultiDict[str]:
        """Every header of a request, built once per token: aiohttp then adds only Host."""
        cached_token, plain, json_body = self._headers_for
        if cached_token is not token:
            plain = CIMultiDict(_BASE_HEADERS)
            plain["Authorization"] = token.authorization
            json_body = plain.copy()
            json_body["Content-Type"] = "application/json"
            self._headers_for = (token, plain, json_body)
        return json_body if with_body else plain

    def _lean_block(self, lean: LeanHTTP, token: AccessToken) -> bytes:
        """The lean lane's header block (the same headers, encoded), built once per token."""
        cached_token, block = self._lean_block_for
        if cached_token is not token:
            block = lean.header_block({**_BASE_HEADERS, "Authorization": token.authorization})
            self._lean_block_for = (token, block)
        return block

    async def request(
        self,
        method: str,
        target: str,
        *,
        endpoint: str,
        brand: str | None = None,
        body: bytes | None = None,
        idempotent: bool,
        rate_limited: bool = False,
        timeout: Timeout | None = None,
        max_retries: int | None = None,
    ) -> Response:
        """Send one logical request and return its 200 answer, or raise HMError.

        ``target`` is the request target on the API origin: an already URL-encoded path
        starting with ``/``, optionally with ``?query``.
        """
        if target[:1] != "/" or target[:2] == "//":  # ("//host/..." names another host)
            raise ValueError(f"request target {target[:60]!r} is not a path on the API origin")
        retries_left = self.max_retries if max_retries is None else max_retries
        rate_limit_retries_left = MAX_RATE_LIMIT_RETRIES if retries_left > 0 else 0
        limits = timeout or self.timeout
        limiter = self.limiter if rate_limited and brand is not None else None
        hooks = self.hooks
        replayed_401 = resent_stale = False
        attempt = 0
        generation: int | None = None
        started = 0.0
        self.retry_budget.record_request()
        while True:
            if limiter is not None:
                if self.tokens.current() is None:
                    # A grant is a send time. Taken while the token is still on its way, it
                    # would be spent late, together with every grant taken after it, and the
                    # server would see more than the brand's rate in one second.
                    await self.tokens.get()
                # the generation lets the limiter ignore 429s of requests sent before its
                # last slow-down, so a burst of them cuts the rate once, not once each
                generation = limiter.try_acquire(brand)  # type: ignore[arg-type]
                if generation is None:
                    generation = await limiter.acquire(brand)  # type: ignore[arg-type]
            is_retry = attempt > 0
            attempt += 1
            if hooks:
                started = time.perf_counter()
            resp: Response | None = None
            try:
                token, resp = await self._send(method, target, body, limits)
            except _TokenUnavailable as exc:
                raise exc.error from exc.error.__cause__
            except TransportError as exc:
                self.meter.count(endpoint, brand, TRANSPORT_FAILURE, retry=is_retry)
                failure: HMError = exc
                if type(exc) is StaleConnectionError and not resent_stale:
                    # Not a sign of a failing server, so no backoff and no use of
                    # max_retries; but it is one more request, so it spends the budget.
                    resent_stale = True
                    if self.retry_budget.try_spend():
                        if hooks:
                            self._emit(hooks, method, target, endpoint, brand, attempt, started,
                                       None, exc, "stale_connection")
                        logger.debug("resend method=%s path=%s reason=stale connection",
                                     method, request_path(target))
                        continue
                    if hooks:
                        self._emit(hooks, method, target, endpoint, brand, attempt, started,
                                   None, exc, None)
                    raise self._budget_spent(method, target, exc) from exc
                retry_after = None
                # A connection that was never established cannot have delivered the request.
                retryable = idempotent or exc.kind in NOT_SENT_KINDS
            else:
                status = resp.status
                self.meter.count(endpoint, brand, outcome_of(status), retry=is_retry)
                if status == 200:
                    if limiter is not None:
                        limiter.on_success(brand)  # type: ignore[arg-type]
                    if hooks:
                        self._emit(hooks, method, target, endpoint, brand, attempt, started,
                                   resp, None, None)
                    return resp
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                error = error_from_response(status, resp.body, headers=resp.headers,
                                            method=method, path=request_path(target),
                                            retry_after=retry_after)
                if status == 401 and is_invalid_token(error):
                    if hooks:
                        self._emit(hooks, method, target, endpoint, brand, attempt, started,
                                   resp, None, None if replayed_401 else "invalid_token")
                    if replayed_401:
                        raise error
                    # Only this request's token is dropped; concurrent 401s for the same
                    # token share one refresh, and a token that is already newer is kept.
                    self.tokens.invalidate(token)
                    replayed_401 = True
                    continue
                if isinstance(error, RateLimitedError) and limiter is not None:
                    limiter.on_rate_limited(brand, retry_after,  # type: ignore[arg-type]
                                            generation=generation)
                failure = error
                retryable = should_retry(status, idempotent=idempotent)
            throttled = isinstance(failure, RateLimitedError)
            stop: HMError | None = None
            if not retryable or (rate_limit_retries_left if throttled else retries_left) <= 0:
                stop = failure
            elif not throttled and not self.retry_budget.try_spend():
                stop = self._budget_spent(method, target, failure)
            if hooks:
                self._emit(hooks, method, target, endpoint, brand, attempt, started, resp,
                           failure, None if stop is not None else _retry_reason(resp, failure))
            if stop is failure:
                raise failure
            if stop is not None:
                raise stop from failure
            if throttled:
                rate_limit_retries_left -= 1
            else:
                retries_left -= 1
            delay = backoff_delay(attempt, retry_after=retry_after)  # REQUEST_BACKOFF
            if limiter is not None and throttled:
                delay = 0.0  # the limiter already holds this brand back for Retry-After
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("retry method=%s path=%s attempt=%d delay=%.3f reason=%s",
                             method, request_path(target), attempt + 1, delay,
                             type(failure).__name__)
            if delay > 0:
                await asyncio.sleep(delay)

    def _emit(self, hooks: tuple[EventHook, ...], method: str, target: str, endpoint: str,
              brand: str | None, attempt: int, started: float, resp: Response | None,
              failure: HMError | None, retry_reason: str | None) -> None:
        """Build the attempt's event (only called when there are hooks) and hand it out."""
        latency = time.perf_counter() - started
        lean = self.lean is not None and method == "GET"
        origin = self._origin
        emit(hooks, AttemptEvent(
            method=method, path=path_template(request_path(target)), endpoint=endpoint, brand=brand,
            lane="lean" if lean else "aiohttp", attempt=attempt,
            status=None if resp is None else resp.status,
            error=failure.kind if isinstance(failure, TransportError) else None,
            retry_reason=retry_reason, latency=latency,
            bytes=0 if resp is None else len(resp.body),
            request_id=None if resp is None else resp.request_id,
            host=origin[0], port=origin[1], scheme=origin[2]))

    @staticmethod
    def _budget_spent(method: str, target: str, failure: HMError) -> RetryBudgetExhaustedError:
        return RetryBudgetExhaustedError(
            f"not retrying {method} {request_path(target)}: the client-wide retry budget is "
            f"spent (the API is failing for many requests); last error: {failure}",
            last_error=failure)

    async def _send(self, method: str, target: str, body: bytes | None,
                    timeout: Timeout) -> tuple[AccessToken, Response]:
        if not self._slots.try_take():
            await self._slots.take()
        try:
            # The token is taken once a connection slot is ours: a request that queued for
            # long must not carry a token that expired while it waited.
            token = self.tokens.current()
            if token is None:
                try:
                    token = await self.tokens.get()
                except HMError as exc:
                    # the provider already retried the token endpoint with its own
                    # backoff; retrying here too would multiply token attempts
                    raise _TokenUnavailable(exc) from exc
            debug = logger.isEnabledFor(logging.DEBUG)
            started = time.perf_counter() if debug else 0.0
            lean = self.lean
            result: Response
            if lean is not None and method == "GET":
                result = await lean.get(target, self._lean_block(lean, token),
                                        total=timeout.total, connect=timeout.connect,
                                        read=timeout.read)
            else:
                result = await self.lane.send(method, URL(self.base_url + target, encoded=True),
                                              body=body,
                                              headers=self._headers(token, body is not None),
                                              timeout=timeout)
        finally:
            self._slots.give()
        if debug:
            logger.debug("request method=%s path=%s status=%d latency_ms=%.1f request_id=%s",
                         method, request_path(target), result.status,
                         (time.perf_counter() - started) * 1000.0, result.request_id)
        if 300 <= result.status < 400:
            location = result.headers.get("Location", "")
            path = request_path(target)
            raise APIError(
                f"HTTP {result.status} redirect on {method} {path} to {location!r} not "
                f"followed: hm_async sends the bearer token only to the configured API origin",
                status_code=result.status, method=method, path=path,
            )
        return token, result


def _retry_reason(resp: Response | None, failure: HMError) -> str:
    """Why an attempt is sent again: its status, else its failure's kind (event hooks)."""
    if resp is not None:
        return str(resp.status)
    return failure.kind if isinstance(failure, TransportError) else type(failure).__name__
