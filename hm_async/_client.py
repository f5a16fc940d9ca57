"""``HMClient``: the one object a program keeps for its lifetime.

A client is two things: the state it shares with its views (:class:`_Shared`: one pooled
aiohttp session, the GET lane, one token provider, one retry budget, one usage meter, the
per-brand limiters; opened on first use, closed by the root client) and its own
:class:`~hm_async._config.RequestOptions` (timeout, retries). :meth:`HMClient.with_options`
returns a view: a client over the same shared state with other options, made without
copying anything. Resources (``hm.clearance``, vehicle data, the fleet poller) get a small
:class:`~hm_async._requester.Requester` bound to the client's options, never the client.
"""

from __future__ import annotations

import enum
import ssl as ssl_module
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from functools import cached_property
from types import TracebackType

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from aiolimiter import AsyncLimiter
from yarl import URL

from ._aiohttp_lane import AiohttpLane
from ._clearance import ClearanceResource, VehicleLike, single_get_limiter
from ._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_REQUEST_TIMEOUT,
    DNS_CACHE_SECONDS,
    ENVIRONMENTS,
    KEEPALIVE_SECONDS,
    MAX_BODY_BYTES,
    NOT_GIVEN,
    NotGiven,
    RateLimits,
    RequestOptions,
    Timeout,
)
from ._credentials import Credentials
from ._eligibility import check_eligibility
from ._eligibility_many import DEFAULT_CONCURRENCY, EligibilityResult, eligibility_many
from ._events import EventHook
from ._h1_pool import LeanHTTP
from ._limiter import RateLimiter
from ._metering import UsageMeter, UsageSnapshot
from ._poll import Fleet, PollResult, Progress, VehicleInput, WatchResult, poll, watch
from ._ratelimit import RateLimiterRegistry
from ._raw_response import RawResponses
from ._response import Response
from ._retry import RetryBudget
from ._static_data import StaticDataResource
from ._token_store import TokenStore
from ._tokens import TokenProvider
from ._transport import Transport
from ._vehicle_data import VehicleDataResource
from .models import VehicleData
from .models._fleet import Eligibility

__all__ = ["ENVIRONMENTS", "HMClient"]


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class _Shared:
    """What a client and all its views share. Opened on first use by any of them (so a
    view entered before its root works), closed only by the root client."""

    def __init__(self, credentials: Credentials, *, base_url: str,
                 session: aiohttp.ClientSession | None, max_connections: int,
                 ssl: ssl_module.SSLContext | bool, trace_configs: list[aiohttp.TraceConfig] | None,
                 lean_http: bool, clock: Callable[[], float], timeout: Timeout,
                 max_retries: int, retry_budget: RetryBudget,
                 limiters: RateLimiterRegistry, event_hooks: tuple[EventHook, ...],
                 proxy: URL | None, trust_env: bool, token_store: TokenStore | None = None,
                 limiter: RateLimiter | None = None) -> None:
        self.credentials = credentials
        self.base_url = base_url
        self.user_session = session
        self.max_connections = max_connections
        self.ssl = ssl
        self.trace_configs = trace_configs
        self.lean_http = lean_http and session is None and not trace_configs
        self.event_hooks = event_hooks
        self.proxy = proxy
        self.trust_env = trust_env
        self.clock = clock
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self.limiters = limiters
        # shared state of many workers (None: the in-process token and limiters)
        self.token_store = token_store
        self.limiter: RateLimiter = limiter if limiter is not None else limiters
        self.meter = UsageMeter()
        #: HM allows 60 single-VIN clearance lookups a minute per application: one pacing
        #: for the client and every view.
        self.clearance_get_limiter: AsyncLimiter = single_get_limiter()
        self.state = _State.UNOPENED
        self.transport: Transport | None = None
        self.owned_session: aiohttp.ClientSession | None = None

    def open(self) -> Transport:
        if self.state is _State.CLOSED:
            raise RuntimeError("this HMClient is closed; create a new one")
        if self.transport is not None:
            return self.transport
        session = self.user_session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=0, ttl_dns_cache=DNS_CACHE_SECONDS,
                keepalive_timeout=KEEPALIVE_SECONDS, ssl=self.ssl,
            )
            # No session-wide headers: the transport sends one prebuilt header set per
            # token, which aiohttp merges faster than defaults plus per-call headers.
            session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                trace_configs=self.trace_configs, raise_for_status=False,
                trust_env=self.trust_env,
            )
            self.owned_session = session
        limit = getattr(session.connector, "limit", 0) or self.max_connections
        lane = AiohttpLane(session, proxy=self.proxy)
        # The calls' own time limit also bounds the token request they may wait for.
        total = self.timeout.total
        tokens = TokenProvider(self.credentials, lane=lane, meter=self.meter,
                               base_url=self.base_url, clock=self.clock,
                               request_timeout=min(total or DEFAULT_TOKEN_REQUEST_TIMEOUT,
                                                   DEFAULT_TOKEN_REQUEST_TIMEOUT),
                               hooks=self.event_hooks, store=self.token_store)
        connections = min(limit, self.max_connections)
        self.transport = Transport(
            lane, tokens, base_url=self.base_url, max_connections=connections, timeout=self.timeout,
            max_retries=self.max_retries, retry_budget=self.retry_budget, meter=self.meter,
            limiter=self.limiter, hooks=self.event_hooks,
            lean=self._make_lean(connections) if self.lean_http and not self.proxied() else None,
        )
        self.state = _State.OPENED
        return self.transport

    def proxied(self) -> bool:
        """Whether requests to the API origin go through a proxy (``proxy=``, or
        ``trust_env`` and HTTPS_PROXY/HTTP_PROXY without a NO_PROXY match, read now)."""
        if self.proxy is not None:
            return True
        if not self.trust_env:
            return False
        try:
            get_env_proxy_for_url(URL(self.base_url))
        except LookupError:
            return False
        return True

    def _make_lean(self, connections: int) -> LeanHTTP:
        url = URL(self.base_url)
        context: ssl_module.SSLContext | None = None
        if url.scheme == "https":
            if isinstance(self.ssl, ssl_module.SSLContext):
                context = self.ssl
            else:
                context = ssl_module.create_default_context()
                if not self.ssl:  # verification off, as asked (self-signed test servers)
                    context.check_hostname = False
                    context.verify_mode = ssl_module.CERT_NONE
        assert url.host is not None and url.port is not None
        return LeanHTTP(url.host, url.port, ssl=context, max_idle=connections,
                        keepalive=KEEPALIVE_SECONDS, max_body=MAX_BODY_BYTES)

    async def aclose(self) -> None:
        if self.state is _State.CLOSED:
            return
        self.state = _State.CLOSED
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.tokens.aclose()  # closes the token store too
            if transport.lean is not None:
                await transport.lean.aclose()
        aclose_limiter = getattr(self.limiter, "aclose", None)  # a Redis limiter's connection
        if aclose_limiter is not None:
            await aclose_limiter()
        if self.owned_session is not None:
            session, self.owned_session = self.owned_session, None
            await session.close()


class _BoundRequester:
    """The :class:`~hm_async._requester.Requester` of one client or view: the shared
    policy loop with this client's options applied."""

    __slots__ = ("_max_retries", "_shared", "_timeout")

    def __init__(self, shared: _Shared, options: RequestOptions) -> None:
        self._shared = shared
        self._timeout = options.timeout
        self._max_retries = options.max_retries

    def request(self, method: str, target: str, *, endpoint: str, idempotent: bool,
                body: bytes | None = None, brand: str | None = None,
                rate_limited: bool = False) -> Awaitable[Response]:
        # a plain function handing back the policy loop's coroutine: no extra await per call
        transport = self._shared.transport or self._shared.open()
        return transport.request(method, target, endpoint=endpoint, brand=brand, body=body,
                                 idempotent=idempotent, rate_limited=rate_limited,
                                 timeout=self._timeout, max_retries=self._max_retries)


class HMClient:
    """Asyncio client for the High Mobility fleet APIs.

    ``credentials`` is a :class:`ClientCredentials` or :class:`PrivateKeyCredentials`.
    ``environment`` picks sandbox or production; ``base_url`` overrides it (the emulator).
    Pass ``session`` to share your own ``aiohttp.ClientSession``: the client then never
    closes it. ``timeout`` (seconds or :class:`Timeout`) and ``max_retries`` are defaults
    that :meth:`with_options` overrides for some calls. ``rate_limits`` caps requests per
    second per brand (adaptive when a brand has no limit). ``ssl`` is passed to the
    connector: keep the default (verification on) outside tests.

    ``lean_http`` (on by default) sends GET requests -- vehicle data, clearance lookups --
    over hm_async's own keep-alive HTTP/1.1 connections, which cost about a third of the
    CPU of aiohttp's request path (see ``hm_async._h1_pool``); writes and the token
    endpoint always use aiohttp. It is off when you pass ``session`` or ``trace_configs``
    (your session's settings and hooks then see every request), when a proxy applies (see
    below), or with ``lean_http=False``.

    ``event_hooks`` are called with an :class:`~hm_async.AttemptEvent` after every HTTP
    attempt, on both lanes and at the token endpoint (retries, 429s, 401 replays
    included); unlike ``trace_configs`` they keep the GET lane on. See
    :mod:`hm_async._events` and :class:`hm_async.otel.OpenTelemetryHook`.

    ``proxy`` (``"http://proxy:3128"``) sends every request through that forward proxy;
    ``trust_env=True`` reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and ~/.netrc) as aiohttp
    does. An ``https`` API origin is reached through a CONNECT tunnel, so the bearer token
    and the token request go, encrypted, only to the API origin. Through a proxy the GET
    lane is off for now: GETs use aiohttp too (about 3x the client CPU per request; the
    network round trips are the same).

    Many worker processes (see docs/scale-out.md): ``token_store`` shares one token between
    them (e.g. :class:`hm_async.redis.RedisTokenStore`) and ``limiter`` replaces the
    in-process per-brand limiters (e.g. :class:`hm_async.redis.RedisLimiter`, which then
    carries the limits, so ``rate_limits`` does not apply to it). The client closes both.

    Use it as ``async with HMClient(...) as hm:`` or call :meth:`aclose` when done.
    """

    _shared: _Shared
    _options: RequestOptions
    _is_view: bool

    def __init__(
        self,
        credentials: Credentials,
        *,
        environment: str = "sandbox",
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        rate_limits: RateLimits | Mapping[str, float] | None = None,
        ssl: ssl_module.SSLContext | bool = True,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        retry_budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        lean_http: bool = True,
        event_hooks: Sequence[EventHook] | None = None,
        proxy: str | URL | None = None,
        trust_env: bool = False,
        token_store: TokenStore | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise ValueError("credentials must be ClientCredentials or PrivateKeyCredentials, "
                             f"got {type(credentials).__name__}")
        if base_url is None:
            if environment not in ENVIRONMENTS:
                raise ValueError(f"environment {environment!r} is not one of "
                                 f"{', '.join(ENVIRONMENTS)} (or pass base_url=)")
            base_url = ENVIRONMENTS[environment]
        url = URL(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/"):
            raise ValueError(f"base_url must look like https://host[:port], got {base_url!r}")
        if max_retries < 0 or max_connections < 1:
            raise ValueError("max_retries must be >= 0 and max_connections >= 1")
        hooks = tuple(event_hooks or ())
        if not all(callable(h) for h in hooks):
            raise ValueError("event_hooks must be callables taking an AttemptEvent")
        proxy_url = None if proxy is None else URL(proxy)
        if proxy_url is not None and (proxy_url.scheme not in ("http", "https")
                                      or not proxy_url.host):
            # (never echo the URL: it may carry the proxy's password)
            raise ValueError("proxy must look like http://host:port")
        if rate_limits is None or isinstance(rate_limits, RateLimits):
            rate_limits = rate_limits or RateLimits()
        else:
            rate_limits = RateLimits(per_brand=rate_limits)
        self._shared = _Shared(
            credentials, base_url=str(url).rstrip("/"), session=session,
            max_connections=max_connections, ssl=ssl, trace_configs=trace_configs,
            lean_http=lean_http, clock=clock, timeout=Timeout.coerce(timeout),
            max_retries=max_retries, retry_budget=retry_budget or RetryBudget(clock=clock),
            limiters=RateLimiterRegistry(rate_limits), event_hooks=hooks, proxy=proxy_url,
            trust_env=trust_env, token_store=token_store, limiter=limiter,
        )
        self.rate_limits = rate_limits
        self._options = RequestOptions()
        self._is_view = False

    def __repr__(self) -> str:
        view = ", view" if self._is_view else ""
        return (f"HMClient(base_url={self.base_url!r}, client_id="
                f"{self._credentials.client_id!r}, state={self._shared.state.name.lower()}"
                f"{view})")

    # -- what the client and its views share ---------------------------------------------

    @property
    def base_url(self) -> str:
        return self._shared.base_url

    @property
    def _credentials(self) -> Credentials:
        return self._shared.credentials

    @property
    def limiters(self) -> RateLimiterRegistry:
        """The per-brand rate limiters (shared by the client and its views)."""
        return self._shared.limiters

    @property
    def meter(self) -> UsageMeter:
        """The usage meter (shared by the client and its views); see :meth:`usage`."""
        return self._shared.meter

    @property
    def transport(self) -> Transport:
        """The policy loop (and its lanes) this client and its views share: for inspection
        and tests (``transport.lean`` is the GET lane, None when it is off)."""
        return self._shared.transport or self._shared.open()

    @property
    def tokens(self) -> TokenProvider:
        """The shared token provider (for inspection; it refreshes by itself)."""
        return self.transport.tokens

    def usage(self) -> UsageSnapshot:
        """Calls made so far by endpoint, brand and outcome, retries apart (what HM bills)."""
        return self._shared.meter.snapshot()

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> HMClient:
        self._shared.open()
        try:
            await self._connect_shared_state()
        except BaseException:
            await self.aclose()  # no session left open behind a failed start
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop background token refreshes and close the session if this client made it.

        On a view (:meth:`with_options`) this does nothing: the root client owns the
        shared session, connections and token provider.
        """
        if not self._is_view:
            await self._shared.aclose()

    @property
    def closed(self) -> bool:
        return self._shared.state is _State.CLOSED

    # -- shared state of many workers (token store, limiter) ------------------------------

    async def _connect_shared_state(self) -> None:
        """Fail at start, naming the URL, when a shared token store or limiter is unreachable."""
        for part in (self._shared.token_store, self._shared.limiter):
            connect = getattr(part, "connect", None)
            if connect is not None:
                await connect()

    @property
    def degraded(self) -> bool:
        """True once a shared token store or limiter lost its backend (e.g. Redis) and this
        client went on with in-process state (``on_redis_error="degrade"``)."""
        return any(bool(getattr(part, "degraded", False))
                   for part in (self._shared.token_store, self._shared.limiter))

    def with_options(self, *, timeout: Timeout | float | NotGiven | None = NOT_GIVEN,
                     max_retries: int | None = None) -> HMClient:
        """A view of this client with other defaults for the calls made through it.

        The view shares this client's session, connections, token provider, limiters, meter
        and retry budget, and differs only in these options (``timeout=None`` means no time
        limit; an option not given keeps this client's). Closing it does nothing; entering
        it with ``async with`` before the root client works too.
        """
        options = RequestOptions(
            timeout=self._options.timeout if isinstance(timeout, NotGiven)
            else Timeout.coerce(timeout),
            max_retries=self._options.max_retries if max_retries is None else max_retries,
        )
        view = object.__new__(HMClient)
        view._shared = self._shared
        view._options = options
        view._is_view = True
        view.rate_limits = self.rate_limits
        return view

    # -- resources -----------------------------------------------------------------------

    @cached_property
    def _requester(self) -> _BoundRequester:
        return _BoundRequester(self._shared, self._options)

    @cached_property
    def clearance(self) -> ClearanceResource:
        """The Fleet Clearance API: request, get, list, delete, wait_until_settled."""
        return ClearanceResource(self._requester, self._shared.clearance_get_limiter)

    @cached_property
    def _vehicle_data(self) -> VehicleDataResource:
        return VehicleDataResource(self._requester)

    @cached_property
    def static_data(self) -> StaticDataResource:
        """The Vehicle Static Data API: get (specs, original price) and valuation."""
        return StaticDataResource(self._requester)

    async def eligibility(self, vin: str, brand: str) -> Eligibility:
        """Whether ``vin`` of ``brand`` can deliver data (Eligibility API)."""
        return await check_eligibility(self._requester, vin, brand)

    def eligibility_many(self, vehicles: Iterable[VehicleLike], *,
                         concurrency: int = DEFAULT_CONCURRENCY
                         ) -> AsyncGenerator[EligibilityResult, None]:
        """Eligibility of many vehicles (``(vin, brand)`` tuples or :class:`Vehicle`
        objects): one :class:`EligibilityResult` per distinct VIN, in completion order.

        Each distinct VIN is checked exactly once, at most ``concurrency`` at a time; a
        failed or invalid item is that VIN's result, never an exception. Breaking out of
        the loop cancels the checks still running.
        """
        return eligibility_many(self.eligibility, vehicles, concurrency=concurrency)

    @cached_property
    def with_raw_response(self) -> RawResponses:
        """The same calls, answering :class:`~hm_async.APIResponse` (status, headers, body,
        request id, ``.parse()`` for the typed result): ``hm.with_raw_response.vehicle_data(
        vin)``, ``.eligibility``, ``.clearance.get`` ..., ``.static_data.valuation``."""
        return RawResponses(self._requester, self._shared.clearance_get_limiter)

    async def vehicle_data_raw(self, vin: str, brand: str | None = None) -> bytes:
        """The vehicle-data answer as the bytes HM sent, for storing payloads unchanged.

        ``brand`` (optional) applies that brand's rate limit and meters the call under it.
        """
        return await self._vehicle_data.raw(vin, brand)

    async def vehicle_data(self, vin: str, brand: str | None = None) -> VehicleData:
        """Typed vehicle data of one VIN (Auto API level 13)."""
        return await self._vehicle_data.get(vin, brand)

    def _fleet(self) -> Fleet:
        return Fleet(fetch=self._vehicle_data.request, clearances=self.clearance.list,
                     limiter=self._shared.limiter)

    def poll(self, vehicles: Iterable[VehicleInput] | AsyncIterable[VehicleInput], *,
             concurrency: int = 64, progress: Progress | None = None,
             keep_raw: bool = False, max_age: timedelta | float | None = None,
             shard: tuple[int, int] | None = None) -> AsyncGenerator[PollResult, None]:
        """Vehicle data for a whole fleet: one :class:`PollResult` per input item, in
        completion order.

        ``vehicles`` (VINs, ``(vin, brand)`` tuples or :class:`Vehicle` objects; an iterable
        or an async iterable) is consumed lazily. Bare VINs get their brand from one
        clearance list call; a VIN without approved clearance yields a
        :class:`~hm_async.NotClearedError` result and costs no request. At most
        ``concurrency`` requests run at once. ``progress`` receives live counts;
        ``keep_raw`` keeps each body as HM sent it in ``PollResult.raw``. Per-VIN failures
        are results, never exceptions; breaking out of the loop stops in-flight requests.
        ``max_age`` (seconds or a timedelta) sets ``PollResult.stale`` on answers whose
        newest property is older than that (data is still data: a marker, not an error).
        ``shard=(i, n)`` keeps only the VINs of shard ``i`` of ``n`` (a stable hash of the
        VIN), so N workers split one list without a coordinator.
        """
        return poll(self._fleet(), vehicles, concurrency=concurrency, progress=progress,
                    keep_raw=keep_raw, max_age=max_age, shard=shard)

    def watch(self, vehicles: Iterable[VehicleInput], *, every: float,
              rounds: int | None = None, concurrency: int = 64,
              include_errors: bool = False, max_age: timedelta | float | None = None
              ) -> AsyncGenerator[WatchResult, None]:
        """Poll ``vehicles`` every ``every`` seconds, yielding only what changed.

        A property counts as changed when its timestamp differs from the last round; the
        first round reports every VIN. ``rounds`` stops after that many rounds (None: run
        until the caller stops); errors are yielded only with ``include_errors``;
        ``max_age`` marks results whose newest property is older (``WatchResult.stale``).
        """
        return watch(self._fleet(), vehicles, every=every, rounds=rounds,
                     concurrency=concurrency, include_errors=include_errors, max_age=max_age)
