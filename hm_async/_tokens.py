"""One access token shared by every coroutine of a client, refreshed by a single flight.

Thousands of coroutines ask for the token; the platform must see one token request per
token life, however many ask at once. The rules, and the constants behind them:

* **Two windows, derived from the real ``expires_in``** (HM's tokens live 300 s, so generic
  minute-sized margins would refresh on every call). A token's life is counted from the
  moment its request was *sent*, so the request's latency is already charged against it.

  - from ``SOFT_FRACTION`` = 50% of the life, plus up to ``SOFT_JITTER`` = 10% of it drawn
    at random per token (150-180 s for a 300 s token), the first caller starts a refresh in
    the background; everybody keeps using the current token and nobody waits. Refreshing
    at half-life leaves the other half for retries if the token endpoint is down, before
    any caller is affected; the jitter keeps a fleet of workers started together from
    refreshing in lockstep. The price is ~1.7-2 token requests per 300 s instead of ~1.
  - ``HARD_MARGIN_FRACTION`` = 10% of the life, at most ``MAX_HARD_MARGIN`` = 30 s, before
    expiry (270 s for a 300 s token), callers wait for the refresh. The margin covers the
    time a request takes to reach HM with the token (seconds), clock skew between HM's own
    nodes (seconds), and one more token attempt (``request_timeout`` = 10 s) before expiry.

* **Single flight.** A refresh is one :class:`asyncio.Task` owned by the provider; waiters
  only watch it (``asyncio.wait``), so cancelling a waiter cancels nothing else, and a
  refresh started by a request that was then cancelled still serves everyone else.

* **Failures.** Transient causes (5xx, 429, connection errors and timeouts -- including a
  stale keep-alive socket, which aiohttp does not retry for a POST -- are retried inside the
  flight, at most ``max_attempts`` = 4 requests per flight, with backoff starting at
  ``TOKEN_BACKOFF`` (``_config``): 0.2 s, doubling, capped at 5 s, 25% jitter, and never
  past the current token's remaining life. A first "server disconnected" is retried at once:
  that is the stale socket, not the server failing. Refusals (400 ``invalid_request``) are
  raised at once with the server's ``error_description``. Every waiter of the flight shares
  each request; a failure is handed to the waiters of that flight only -- the next caller
  gets a new attempt -- but consecutive failures are remembered, so that new attempt waits
  out the next backoff step instead of hammering a failing endpoint. When a refresh fails
  while the current token is still valid, waiters get the current token.

* **Invalidation.** :meth:`TokenProvider.invalidate` clears the token only if it is still
  the one a 401 was answered for (compared by generation), so 1,000 concurrent 401s cause
  one refresh. A token rejected while brand new (``FRESH_FRACTION`` = 5% of its life) counts
  as a failure after the first time, so a server that refuses every token gets spaced
  refreshes, not a storm.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections.abc import Callable
from types import TracebackType

import aiohttp
import msgspec
from yarl import URL

from ._access_token import AccessToken
from ._aiohttp_lane import AiohttpLane
from ._config import (
    DEFAULT_TOKEN_MAX_ATTEMPTS,
    DEFAULT_TOKEN_REQUEST_TIMEOUT,
    MAX_TOKEN_BODY_BYTES,
    TOKEN_BACKOFF,
    Timeout,
)
from ._credentials import Credentials
from ._errors import (
    APIError,
    DecodeError,
    HMError,
    RateLimitedError,
    ServerError,
    TransportError,
    error_from_response,
)
from ._events import AttemptEvent, EventHook, emit
from ._metering import TRANSPORT_FAILURE, UsageMeter, outcome_of
from ._response import Response
from ._retry import backoff_delay as _backoff_delay
from ._retry import parse_retry_after
from ._token_store import MemoryTokenStore, TokenStore
from ._version import USER_AGENT

__all__ = [
    "AccessToken",
    "TokenProvider",
    "TokenWindows",
    "backoff_delay",
    "token_windows",
]

logger = logging.getLogger("hm_async")

SOFT_FRACTION = 0.5
SOFT_JITTER = 0.1
HARD_MARGIN_FRACTION = 0.1
MAX_HARD_MARGIN = 30.0
FRESH_FRACTION = 0.05
#: The usage meter's name for the token endpoint (brand None).
ENDPOINT = "access_tokens"

_PATH = "/v1/access_tokens"
_HEADERS = {"Accept": "application/json", "Content-Type": "application/json",
            "User-Agent": USER_AGENT}
_NEVER = -math.inf


class _TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    expires_in: float
    token_type: str = "bearer"
    scope: str | None = None


_decoder = msgspec.json.Decoder(_TokenResponse)


class TokenWindows(msgspec.Struct, frozen=True):
    """When a token should be refreshed: ``soft_at`` in the background, ``hard_at`` waiting."""

    soft_at: float
    hard_at: float
    fresh_until: float


def token_windows(issued_at: float, lifetime: float, jitter: float) -> TokenWindows:
    """The refresh windows of a token living ``lifetime`` seconds from ``issued_at``.

    ``jitter`` is a random draw in [0, 1). Always ``issued_at < soft_at <= hard_at <
    issued_at + lifetime`` for a positive lifetime.
    """
    margin = min(MAX_HARD_MARGIN, lifetime * HARD_MARGIN_FRACTION)
    hard_at = issued_at + lifetime - margin
    soft_at = issued_at + lifetime * (SOFT_FRACTION + SOFT_JITTER * jitter)
    return TokenWindows(soft_at=min(soft_at, hard_at), hard_at=hard_at,
                        fresh_until=issued_at + lifetime * FRESH_FRACTION)


#: The one backoff of hm_async (:func:`hm_async._retry.backoff_delay`) on the token
#: endpoint's schedule (``TOKEN_BACKOFF``: 0.2 s doubling to 5 s, 25% jitter).
backoff_delay = functools.partial(_backoff_delay, schedule=TOKEN_BACKOFF)


def _transient(exc: HMError) -> bool:
    if isinstance(exc, TransportError) and exc.kind == "certificate":
        return False  # an untrusted certificate stays untrusted: retrying only delays the news
    # 408 Request Timeout: a proxy or the server gave up waiting; the next attempt may pass.
    return isinstance(exc, (TransportError, ServerError, RateLimitedError)) or (
        isinstance(exc, APIError) and exc.status_code == 408)


def _stale_socket(exc: HMError) -> bool:
    """The server closed a pooled connection under us (not a refused connect)."""
    return isinstance(exc, TransportError) and exc.kind in ("closed", "reset")


class _Failure:
    """How a flight ended without a token; the traceback is kept as the flight saw it."""

    __slots__ = ("error", "traceback")

    def __init__(self, error: HMError) -> None:
        self.error = error
        self.traceback = error.__traceback__

    def reraise(self) -> HMError:
        # Many waiters raise this one exception; restoring the flight's traceback each time
        # keeps it from growing by every waiter's frames.
        return self.error.with_traceback(self.traceback)


class TokenProvider:
    """Hands out the shared access token; see the module docstring for the rules.

    ``current()`` is the synchronous fast path (a clock read and one comparison while the
    token is young); ``get()`` waits for the single-flight refresh when one is needed.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str,
        lane: AiohttpLane | None = None,
        session: aiohttp.ClientSession | None = None,
        meter: UsageMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_timeout: float = DEFAULT_TOKEN_REQUEST_TIMEOUT,
        max_attempts: int = DEFAULT_TOKEN_MAX_ATTEMPTS,
        rand: Callable[[], float] = random.random,
        store: TokenStore | None = None,
        hooks: tuple[EventHook, ...] = (),
    ) -> None:
        """``lane`` is the client's aiohttp lane (or give ``session`` to post through one
        of its own); ``meter`` counts each token request as endpoint "access_tokens";
        ``hooks`` (the client's event hooks) see each token request as an
        :class:`~hm_async.AttemptEvent` (endpoint "access_tokens", never the body)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not request_timeout > 0:
            raise ValueError("request_timeout must be a positive number of seconds")
        if lane is None:
            if session is None:
                raise ValueError("TokenProvider needs lane= or session=")
            lane = AiohttpLane(session)
        self._credentials = credentials
        self._lane = lane
        self._meter = meter if meter is not None else UsageMeter()
        self._base_url = base_url.rstrip("/")
        self._url = self._base_url + _PATH
        self._target = URL(self._url)
        self._clock = clock
        self._request_timeout = request_timeout
        self._timeout = Timeout(request_timeout, connect=None)
        self._retrying = False  # the last token request failed: the next one is a retry
        self._max_attempts = max_attempts
        self._rand = rand
        self._hooks = hooks
        self._attempt = 0  # token requests since the last one that brought a token
        self._token: AccessToken | None = None
        # The fast path compares against _soft_at only; -inf whenever there is no token.
        self._soft_at = _NEVER
        self._hard_at = _NEVER
        self._fresh_until = _NEVER
        self._generation = 0
        self._flight: asyncio.Task[AccessToken | _Failure] | None = None
        self._failures = 0  # consecutive failed token requests
        self._not_before = _NEVER  # no token request before this (backoff across flights)
        self._fresh_rejections = 0
        self._requests = 0
        self._last_retry_after: float | None = None
        self._closed = False
        # Where refreshes come from (shared between processes or not); see _token_store.
        self._store: TokenStore = store if store is not None else MemoryTokenStore()
        self._rejected: AccessToken | None = None  # the token a 401 cleared, for the store

    # -- the fast path ------------------------------------------------------------------
    def current(self) -> AccessToken | None:
        """The cached token if it can be used without waiting, else None (then ``get()``).

        Past the soft window this also starts the background refresh.
        """
        if self._clock() < self._soft_at:
            return self._token
        return self._current_slow()

    def _current_slow(self) -> AccessToken | None:
        token = self._token
        if token is None or self._closed:
            return None
        now = self._clock()
        if now >= token.expires_at:
            return None
        if now < self._hard_at or now < self._not_before:
            # Soft window, or the hard window while the endpoint is failing: the token is
            # still good, so use it and let the (backed-off) refresh run in the background.
            self._ensure_flight()
            return token
        return None

    async def get(self) -> AccessToken:
        """A usable token, waiting for the shared refresh if there is none."""
        token = self.current()
        if token is not None:
            return token
        if self._closed:
            raise HMError("the TokenProvider is closed")
        task = self._ensure_flight()
        if task is None:  # no running loop: cannot happen inside a coroutine
            raise RuntimeError("TokenProvider.get() needs a running event loop")
        await asyncio.wait((task,))
        if task.cancelled():
            raise HMError("the TokenProvider was closed while waiting for a token")
        outcome = task.result()
        if isinstance(outcome, AccessToken):
            return outcome
        fallback = self._token
        if fallback is not None and self._clock() < fallback.expires_at:
            return fallback
        raise outcome.reraise()

    def invalidate(self, token: AccessToken) -> bool:
        """Forget ``token`` if it is still the current one (a 401 said it is no good).

        Returns True if it was cleared; False if a newer token already replaced it.
        """
        current = self._token
        if current is None or current.generation != token.generation:
            return False
        now = self._clock()
        fresh = now < self._fresh_until
        self._set_token(None)
        self._rejected = token
        if fresh:
            self._fresh_rejections += 1
            if self._fresh_rejections > 1:
                # Tokens are refused as soon as they are issued: space the next refreshes.
                delay = backoff_delay(self._fresh_rejections - 1, rand=self._rand())
                self._not_before = max(self._not_before, now + delay)
        else:
            self._fresh_rejections = 0
        logger.debug("token invalidated generation=%d", token.generation)
        return True

    @property
    def requests_made(self) -> int:
        """Token requests sent so far (successful or not)."""
        return self._requests

    @property
    def refreshing(self) -> bool:
        """True while a refresh flight is running."""
        return self._flight is not None

    # -- the flight ---------------------------------------------------------------------
    def _ensure_flight(self) -> asyncio.Task[AccessToken | _Failure] | None:
        task = self._flight
        if task is None and not self._closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
            task = loop.create_task(self._fly(), name="hm_async token refresh")
            self._flight = task
        return task

    async def _fly(self) -> AccessToken | _Failure:
        """Get a new token: the one task every waiter watches. Never raises except cancel."""
        this = asyncio.current_task()
        attempts = 0
        try:
            while True:
                now = self._clock()
                wait = self._not_before - now
                token = self._token
                if token is not None and token.expires_at > now:
                    wait = min(wait, token.expires_at - now)
                if wait > 0:
                    await asyncio.sleep(wait)
                attempts += 1
                try:
                    new = await self._obtain()
                except HMError as exc:
                    if not self._after_failure(exc, attempts):
                        logger.warning("token refresh failed after %d attempt(s): %s",
                                       attempts, exc)
                        return _Failure(exc)
                    continue
                self._failures = 0
                self._not_before = _NEVER
                if self._token is not None:
                    # A routine refresh of a token nobody rejected: HM accepts our tokens.
                    self._fresh_rejections = 0
                self._set_token(new)
                return new
        finally:
            if self._flight is this:
                self._flight = None

    async def _obtain(self) -> AccessToken:
        """One attempt: a token from the store, which calls ``_request_token`` at most once.

        The token to replace is the current one (a refresh ahead of expiry) or, after a 401,
        the rejected one, which the store then forgets. A token another process fetched
        arrives with generation 0 and is numbered here, so generations stay this
        provider's own sequence.
        """
        current = self._token
        stale = current if current is not None else self._rejected
        new = await self._store.obtain(self._request_token, stale=stale,
                                       namespace=f"{self._base_url} {self._credentials.client_id}",
                                       rejected=current is None and stale is not None,
                                       clock=self._clock)
        self._rejected = None
        if new.generation == 0:
            self._generation += 1
            new = AccessToken(new.value, generation=self._generation, issued_at=new.issued_at,
                              expires_at=new.expires_at, scope=new.scope)
            logger.debug("token adopted from the store generation=%d", new.generation)
        return new

    def _after_failure(self, exc: HMError, attempts: int) -> bool:
        """Record a failed attempt and schedule the next; True if this flight tries again."""
        now = self._clock()
        token = self._token
        remaining = token.expires_at - now if token is not None else None
        if attempts == 1 and _stale_socket(exc):
            delay = 0.0  # a pooled socket the server had closed: not a failing server
        else:
            self._failures += 1
            delay = backoff_delay(self._failures, rand=self._rand(),
                                  retry_after=self._last_retry_after, remaining=remaining)
        self._not_before = now + delay
        retry = _transient(exc) and attempts < self._max_attempts
        if retry:
            logger.debug("token request failed (%s); retrying in %.3f s", type(exc).__name__,
                         delay)
        return retry

    def _set_token(self, token: AccessToken | None) -> None:
        self._token = token
        if token is None:
            self._soft_at = self._hard_at = self._fresh_until = _NEVER
            return
        windows = token_windows(token.issued_at, token.lifetime, self._rand())
        self._hard_at = windows.hard_at
        self._fresh_until = windows.fresh_until
        self._soft_at = windows.soft_at

    async def _request_token(self) -> AccessToken:
        body = msgspec.json.encode(await self._credentials.token_request_body(self._base_url))
        self._last_retry_after = None
        sent_at = self._clock()
        self._requests += 1
        retry, self._retrying = self._retrying, True  # until this request brings a token
        hooks = self._hooks
        started = 0.0
        if hooks:
            self._attempt = self._attempt + 1 if retry else 1
            started = time.perf_counter()
        try:
            resp = await self._lane.send("POST", self._target, body=body, headers=_HEADERS,
                                         timeout=self._timeout, max_body=MAX_TOKEN_BODY_BYTES,
                                         context="token request")
        except TransportError as exc:
            self._meter.count(ENDPOINT, None, TRANSPORT_FAILURE, retry=retry)
            if hooks:
                self._emit(hooks, started, None, exc)
            raise
        status, raw = resp.status, resp.body
        self._meter.count(ENDPOINT, None, outcome_of(status), retry=retry)
        if status != 200:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            self._last_retry_after = retry_after
            error = error_from_response(
                status, raw, headers=resp.headers, method="POST", path=_PATH,
                token_endpoint=True, retry_after=retry_after)
            if hooks:
                self._emit(hooks, started, resp, error)
            raise error
        if hooks:
            self._emit(hooks, started, resp, None)
        try:
            answer = _decoder.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
            # msgspec names the field and the type, never the value (which is the token).
            raise DecodeError(f"token answer of POST {_PATH} is not valid: {exc}",
                              status_code=status, path=_PATH) from None
        if not answer.access_token or not answer.expires_in > 0:
            raise DecodeError(f"token answer of POST {_PATH} lacks a token or a positive "
                              f"expires_in", status_code=status, path=_PATH)
        self._generation += 1
        self._retrying = False
        logger.debug("token issued generation=%d expires_in=%s", self._generation,
                     answer.expires_in)
        return AccessToken(answer.access_token, generation=self._generation, issued_at=sent_at,
                           expires_at=sent_at + answer.expires_in, scope=answer.scope)

    def _emit(self, hooks: tuple[EventHook, ...], started: float, resp: Response | None,
              failure: HMError | None) -> None:
        """The event of one token request: never its body (the credentials) or answer."""
        target = self._target
        transient = failure is not None and _transient(failure)
        reason: str | None = None
        if transient and failure is not None:
            reason = (str(resp.status) if resp is not None else
                      failure.kind if isinstance(failure, TransportError) else None)
        emit(hooks, AttemptEvent(
            method="POST", path=_PATH, endpoint=ENDPOINT, brand=None, lane="aiohttp",
            attempt=self._attempt, status=None if resp is None else resp.status,
            error=failure.kind if isinstance(failure, TransportError) else None,
            retry_reason=reason, latency=time.perf_counter() - started,
            bytes=0 if resp is None else len(resp.body),
            request_id=None if resp is None else resp.request_id,
            host=target.host or "", port=target.port or 0, scheme=target.scheme))

    # -- lifecycle ----------------------------------------------------------------------
    async def aclose(self) -> None:
        """Cancel a running refresh and wait for it; later ``get()`` calls raise."""
        self._closed = True
        task, self._flight = self._flight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))
        await self._store.aclose()

    async def __aenter__(self) -> TokenProvider:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        token = self._token
        state = "none" if token is None else f"generation {token.generation}"
        return (f"TokenProvider(url={self._url!r}, client_id={self._credentials.client_id!r}, "
                f"token={state}, requests_made={self._requests})")
