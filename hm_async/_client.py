"""``HMClient``: the one object a program keeps for its lifetime.

It owns (or borrows) one pooled aiohttp session, one token provider, one retry budget,
one usage meter and the per-brand rate limiters; resources and the fleet poller share them.
"""

from __future__ import annotations

import copy
import enum
import ssl as ssl_module
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
from yarl import URL

from ._clearance import ClearanceResource
from ._credentials import Credentials
from ._decode import decode
from ._h1_pool import LeanHTTP
from ._metering import UsageMeter, UsageSnapshot
from ._ratelimit import RateLimiterRegistry, RateLimits
from ._retry import DEFAULT_MAX_RETRIES, RetryBudget
from ._static_data import StaticDataResource
from ._tokens import DEFAULT_REQUEST_TIMEOUT, TokenProvider
from ._transport import MAX_BODY_BYTES, Response, Timeout, Transport
from ._vehicles import ELIGIBILITY_BRANDS, normalize_brand, validate_vin
from .models._fleet import ELIGIBILITY_DECODER, Eligibility

if TYPE_CHECKING:
    from ._poll import PollResult, Progress, VehicleInput, WatchResult
    from .models import VehicleData

__all__ = ["ENVIRONMENTS", "HMClient"]

#: Base URLs of HM's two environments; every path starts with /v1.
ENVIRONMENTS: Mapping[str, str] = {
    "sandbox": "https://sandbox.api.high-mobility.com",
    "production": "https://api.high-mobility.com",
}

#: Pooled connections per client. HM's fleet endpoints sit behind one host; 100 parallel
#: requests saturate a carmaker's limits long before they saturate a socket pool.
DEFAULT_MAX_CONNECTIONS = 100
#: Seconds an idle keep-alive connection is kept; below common load balancer idle timeouts
#: (60 s), so the client, not the server, closes it (fewer stale-socket failures).
KEEPALIVE_SECONDS = 30.0
#: DNS answers cached for 5 minutes: fan-out jobs do thousands of requests to one host.
DNS_CACHE_SECONDS = 300



class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


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
    (your session's settings and hooks then see every request), or with ``lean_http=False``.

    Use it as ``async with HMClient(...) as hm:`` or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        environment: str = "sandbox",
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Timeout | float | None = 30.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        rate_limits: RateLimits | Mapping[str, float] | None = None,
        ssl: ssl_module.SSLContext | bool = True,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        retry_budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        lean_http: bool = True,
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
        self.base_url = str(url).rstrip("/")
        self._credentials = credentials
        self._user_session = session
        self._max_connections = max_connections
        self._ssl = ssl
        self._trace_configs = trace_configs
        self._lean_http = lean_http and session is None and not trace_configs
        self._clock = clock
        self._default_timeout = Timeout.coerce(timeout)
        self._default_max_retries = max_retries
        self._retry_budget = retry_budget or RetryBudget(clock=clock)
        if rate_limits is None or isinstance(rate_limits, RateLimits):
            self.rate_limits = rate_limits or RateLimits()
        else:
            self.rate_limits = RateLimits(per_brand=rate_limits)
        self.limiters = RateLimiterRegistry(self.rate_limits)
        self.meter = UsageMeter()
        self._state = _State.UNOPENED
        self._is_view = False
        self._root: HMClient | None = None
        self._call_timeout: Timeout | None = None
        self._call_max_retries: int | None = None
        self._transport: Transport | None = None
        self._owned_session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return (f"HMClient(base_url={self.base_url!r}, client_id="
                f"{self._credentials.client_id!r}, state={self._state.name.lower()})")

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> HMClient:
        self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def _open(self) -> Transport:
        if self._state is _State.CLOSED:
            raise RuntimeError("this HMClient is closed; create a new one")
        if self._transport is not None:
            return self._transport
        session = self._user_session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=DNS_CACHE_SECONDS,
                keepalive_timeout=KEEPALIVE_SECONDS, ssl=self._ssl,
            )
            # No session-wide headers: the transport sends one prebuilt header set per
            # token, which aiohttp merges faster than defaults plus per-call headers.
            session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                trace_configs=self._trace_configs, raise_for_status=False,
            )
            self._owned_session = session
        limit = getattr(session.connector, "limit", 0) or self._max_connections
        # The calls' own time limit also bounds the token request they may wait for.
        total = self._default_timeout.total
        tokens = TokenProvider(self._credentials, session=session, base_url=self.base_url,
                               clock=self._clock,
                               request_timeout=min(total or DEFAULT_REQUEST_TIMEOUT,
                                                   DEFAULT_REQUEST_TIMEOUT))
        connections = min(limit, self._max_connections)
        self._transport = Transport(
            session, tokens, max_connections=connections,
            timeout=self._default_timeout, max_retries=self._default_max_retries,
            retry_budget=self._retry_budget, meter=self.meter, limiter=self.limiters,
            lean=self._make_lean(connections) if self._lean_http else None,
        )
        self._state = _State.OPENED
        return self._transport

    def _make_lean(self, connections: int) -> LeanHTTP:
        url = URL(self.base_url)
        context: ssl_module.SSLContext | None = None
        if url.scheme == "https":
            if isinstance(self._ssl, ssl_module.SSLContext):
                context = self._ssl
            else:
                context = ssl_module.create_default_context()
                if not self._ssl:  # verification off, as asked (self-signed test servers)
                    context.check_hostname = False
                    context.verify_mode = ssl_module.CERT_NONE
        assert url.host is not None and url.port is not None
        return LeanHTTP(url.host, url.port, ssl=context, max_idle=connections,
                        keepalive=KEEPALIVE_SECONDS, max_body=MAX_BODY_BYTES)

    async def aclose(self) -> None:
        """Stop background token refreshes and close the session if this client made it."""
        if self._is_view or self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.tokens.aclose()
            if transport.lean is not None:
                await transport.lean.aclose()
        if self._owned_session is not None:
            session, self._owned_session = self._owned_session, None
            await session.close()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def with_options(self, *, timeout: Timeout | float | object | None = ...,
                     max_retries: int | None = None) -> HMClient:
        """A view of this client with other defaults for the calls made through it.

        It shares the session, token and limits; closing it does nothing.
        """
        view = copy.copy(self)
        view._is_view = True
        view._root = self._root or self
        view.__dict__.pop("clearance", None)
        view.__dict__.pop("static_data", None)
        if timeout is not ...:
            view._call_timeout = Timeout.coerce(timeout)  # type: ignore[arg-type]
        if max_retries is not None:
            if max_retries < 0:
                raise ValueError("max_retries must be >= 0")
            view._call_max_retries = max_retries
        return view

    # -- plumbing shared by the resources --------------------------------------------------

    def _url(self, path: str) -> URL:
        return URL(self.base_url + path, encoded=True)

    @property
    def _tx(self) -> Transport:
        if self._root is not None:
            return self._root._tx
        return self._transport or self._open()

    async def _request(self, method: str, url: URL, *, endpoint: str,
                       body: bytes | None = None, idempotent: bool,
                       brand: str | None = None, rate_limited: bool = False) -> Response:
        return await self._tx.request(
            method, url, endpoint=endpoint, brand=brand, body=body, idempotent=idempotent,
            rate_limited=rate_limited, timeout=self._call_timeout,
            max_retries=self._call_max_retries,
        )

    async def _request_path(self, method: str, path: str, *, endpoint: str,
                            body: bytes | None = None, idempotent: bool) -> Response:
        """:meth:`_request` for a path under the base URL (the resources' requester)."""
        return await self._request(method, self._url(path), endpoint=endpoint, body=body,
                                   idempotent=idempotent)

    @property
    def tokens(self) -> TokenProvider:
        """The shared token provider (for inspection; it refreshes by itself)."""
        return self._tx.tokens

    def usage(self) -> UsageSnapshot:
        """Calls made so far by endpoint, brand and outcome, retries apart (what HM bills)."""
        return self.meter.snapshot()

    # -- resources -----------------------------------------------------------------------

    @cached_property
    def clearance(self) -> ClearanceResource:
        """The Fleet Clearance API: request, get, list, delete, wait_until_settled."""
        return ClearanceResource(self)

    @cached_property
    def static_data(self) -> StaticDataResource:
        """The Vehicle Static Data API: get (specs, original price) and valuation."""
        return StaticDataResource(self._request_path)

    async def eligibility(self, vin: str, brand: str) -> Eligibility:
        """Whether ``vin`` of ``brand`` can deliver data (Eligibility API)."""
        validate_vin(vin)
        brand = normalize_brand(brand, allowed=ELIGIBILITY_BRANDS)
        body = msgspec.json.encode({"vin": vin, "brand": brand})
        resp = await self._request("POST", self._url("/v1/eligibility"), endpoint="eligibility",
                                   body=body, idempotent=True, brand=brand)
        return decode(ELIGIBILITY_DECODER, resp.body, what="eligibility", path="/v1/eligibility")

    async def vehicle_data_raw(self, vin: str, brand: str | None = None) -> bytes:
        """The vehicle-data answer as the bytes HM sent, for storing payloads unchanged.

        ``brand`` (optional) applies that brand's rate limit and meters the call under it.
        """
        validate_vin(vin)
        if brand is not None:
            brand = normalize_brand(brand)
        resp = await self._request("GET", self._url(VEHICLE_DATA_PATH + vin),
                                   endpoint="vehicle_data", idempotent=True, brand=brand,
                                   rate_limited=brand is not None)
        return resp.body

    async def vehicle_data(self, vin: str, brand: str | None = None) -> VehicleData:
        """Typed vehicle data of one VIN (Auto API level 13)."""
        from .models import decode_vehicle_data

        return decode_vehicle_data(await self.vehicle_data_raw(vin, brand))

    def poll(self, vehicles: Iterable[VehicleInput] | Any, *, concurrency: int = 64,
             progress: Progress | None = None, **kwargs: Any) -> AsyncGenerator[PollResult, None]:
        """Vehicle data for a whole fleet: one :class:`PollResult` per input VIN, as they finish.

        See :func:`hm_async._poll.poll` for the details.
        """
        from ._poll import poll

        return poll(self, vehicles, concurrency=concurrency, progress=progress, **kwargs)

    def watch(self, vehicles: Iterable[VehicleInput] | Any, *, every: float,
              **kwargs: Any) -> AsyncGenerator[WatchResult, None]:
        """Poll ``vehicles`` every ``every`` seconds, yielding only what changed."""
        from ._poll import watch

        return watch(self, vehicles, every=every, **kwargs)


VEHICLE_DATA_PATH = "/v1/vehicle-data/autoapi-13/"
