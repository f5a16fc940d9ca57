"""Configuration: every knob a caller can set, and every default, in one place.

All configuration objects here are immutable the same way (:class:`Frozen`: attributes are
set once in ``__init__``; assigning or deleting one later raises ``AttributeError``), so a
client, its views and the background token refresh can share them without copies.

* :class:`Timeout` -- per-request time limits;
* :class:`RateLimits` -- requests per second per brand (or adaptive);
* :class:`Backoff` -- a retry schedule (one for API requests, one for the token endpoint);
* :class:`RequestOptions` -- what a :meth:`HMClient.with_options` view changes;
* the module constants -- the defaults, each with the reason for its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import aiohttp

from ._vehicles import normalize_brand

__all__ = [
    "ENVIRONMENTS",
    "NOT_GIVEN",
    "Backoff",
    "Frozen",
    "NotGiven",
    "RateLimits",
    "RequestOptions",
    "Timeout",
]

#: Base URLs of HM's two environments; every path starts with /v1.
ENVIRONMENTS: Mapping[str, str] = {
    "sandbox": "https://sandbox.api.high-mobility.com",
    "production": "https://api.high-mobility.com",
}

#: Seconds a call may take (sending and reading the whole answer) unless configured.
DEFAULT_TIMEOUT = 30.0
#: Seconds to open a socket and finish TLS; an API origin that needs longer is down.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Retries of a failed call. HM's 503/504 mean "the carmaker failed or was slow" and 408
#: "vehicle asleep"; with a 10% transient failure rate three retries leave about one VIN in
#: 10,000 failed, while a dead API costs at most four attempts per call (and the retry
#: budget stops the fleet-wide hammering long before that).
DEFAULT_MAX_RETRIES = 3
#: Pooled connections per client. HM's fleet endpoints sit behind one host; 100 parallel
#: requests saturate a carmaker's limits long before they saturate a socket pool.
DEFAULT_MAX_CONNECTIONS = 100
#: Seconds an idle keep-alive connection is kept; below common load balancer idle timeouts
#: (60 s), so the client, not the server, closes it (fewer stale-socket failures).
KEEPALIVE_SECONDS = 30.0
#: DNS answers cached for 5 minutes: fan-out jobs do thousands of requests to one host.
DNS_CACHE_SECONDS = 300
#: A vehicle-data answer is a few KB; a fleet list maybe a few MB. Anything past this is
#: a misbehaving proxy, and reading it would only cost memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: A token answer is a few hundred bytes; an error page has no business being large either.
MAX_TOKEN_BODY_BYTES = 64 * 1024
#: Seconds one token request may take (also bounded by the client's own ``total``).
DEFAULT_TOKEN_REQUEST_TIMEOUT = 10.0
#: Token requests per refresh before the failure is handed to the waiting calls.
DEFAULT_TOKEN_MAX_ATTEMPTS = 4
#: The server's ``Retry-After`` is honoured up to a minute; a longer wait is better
#: surfaced to the caller than hidden inside one call.
MAX_RETRY_AFTER = 60.0

#: Adaptive brands start at 10 req/s: HM publishes no per-brand limits, and 10/s is polite
#: for any OEM backend (slow start reaches 100/s in ~5 s while the server accepts all).
ADAPTIVE_START = 10.0
#: An adaptive brand never stalls completely on its own estimate.
ADAPTIVE_MIN = 0.5
#: Highest finite limit (the limiter keeps ``floor(R)`` timestamps). Use ``math.inf``.
MAX_FIXED_RATE = 10_000.0
#: A brand held back by its fixed limit is released every this many seconds, ``R x tick``
#: requests together (see ``hm_async._ratelimit``). Every release wakes an idle event loop,
#: which costs CPU of its own (``benchmarks/idle_tax.py``: ~60 µs on the development VMs),
#: so 20 ms rather than 5; and 20 ms rather than more because it keeps a 300/s brand at six
#: requests per burst, which a server with a small burst allowance accepts. A fleet job may
#: choose a coarser tick (``RateLimits(pacing_tick=...)``) to spend less CPU, for bigger
#: bursts and up to a tick more waiting; the one-second window bound holds for any tick.
PACING_TICK = 0.02
#: The range ``pacing_tick`` may take: finer wakes the event loop for a request or two;
#: coarser than a second would break up the one-second window the limit is about.
MIN_PACING_TICK = 0.001
MAX_PACING_TICK = 1.0


class Frozen:
    """Base of the configuration objects: attributes are set once, in ``__init__``."""

    __slots__ = ()

    def _init(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # Immutable, so a copy may be the object itself; pickling restores through _init.
    def __copy__(self) -> Frozen:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Frozen:
        return self

    def __getstate__(self) -> dict[str, object]:
        return {name: getattr(self, name) for cls in type(self).__mro__
                for name in getattr(cls, "__slots__", ())}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._init(**state)


class Timeout(Frozen):
    """Per-request time limits in seconds (None disables one).

    ``total`` covers sending the request and reading the whole answer, *not* time spent
    waiting for a pooled connection; ``connect`` covers opening a new socket (and TLS);
    ``read`` is the longest silence allowed between two reads.
    """

    __slots__ = ("_aiohttp", "connect", "read", "total")

    total: float | None
    connect: float | None
    read: float | None
    _aiohttp: aiohttp.ClientTimeout

    def __init__(self, total: float | None = DEFAULT_TIMEOUT, *,
                 connect: float | None = DEFAULT_CONNECT_TIMEOUT,
                 read: float | None = None) -> None:
        for name, value in (("total", total), ("connect", connect), ("read", read)):
            if value is not None and not value > 0:
                raise ValueError(f"timeout {name} must be a positive number of seconds or None")
        self._init(total=total, connect=connect, read=read,
                   _aiohttp=aiohttp.ClientTimeout(total=total, sock_connect=connect,
                                                  sock_read=read))

    def __repr__(self) -> str:
        return f"Timeout(total={self.total}, connect={self.connect}, read={self.read})"

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A :class:`Timeout` from seconds (``total``; ``connect`` at most 10 s) or None."""
        if isinstance(value, Timeout):
            return value
        return cls(value, connect=None if value is None
                   else min(DEFAULT_CONNECT_TIMEOUT, value))


class RateLimits(Frozen):
    """Configuration: a limit per brand (either spelling) and a default; immutable.

    A limit is requests per second; ``math.inf`` means "do not pace" (429s still pause).
    A brand with neither a limit nor a ``default`` is adaptive. ``pacing_tick`` (seconds)
    is how often a brand held back by its fixed limit is released: it then sends
    ``limit x pacing_tick`` requests together. The default, 20 ms, keeps bursts small;
    0.1-0.25 s costs a paced fleet poll about a third less CPU (each release wakes an idle
    event loop) at the price of larger bursts and up to that much more waiting. No
    one-second window ever holds more than the limit, whatever the tick.
    """

    __slots__ = ("_per_brand", "adaptive_max", "adaptive_min", "adaptive_start", "default",
                 "pacing_tick")

    _per_brand: dict[str, float]
    default: float | None
    adaptive_start: float
    adaptive_min: float
    adaptive_max: float | None
    pacing_tick: float

    def __init__(
        self,
        per_brand: Mapping[str, float] | None = None,
        default: float | None = None,
        *,
        adaptive_start: float = ADAPTIVE_START,
        adaptive_min: float = ADAPTIVE_MIN,
        adaptive_max: float | None = None,
        pacing_tick: float = PACING_TICK,
    ) -> None:
        table: dict[str, float] = {}
        for brand, rate in (per_brand or {}).items():
            table[normalize_brand(brand, argument="per_brand key")] = _positive(rate, brand)
        if not 0 < adaptive_min <= adaptive_start or math.isinf(adaptive_start):
            raise ValueError("need 0 < adaptive_min <= adaptive_start < inf")
        if adaptive_max is not None and adaptive_max < adaptive_start:
            raise ValueError("adaptive_max must be >= adaptive_start")
        if not MIN_PACING_TICK <= pacing_tick <= MAX_PACING_TICK:  # also refuses NaN
            raise ValueError(f"pacing_tick must be between {MIN_PACING_TICK:g} and "
                             f"{MAX_PACING_TICK:g} seconds, got {pacing_tick}")
        self._init(_per_brand=table,
                   default=None if default is None else _positive(default, "default"),
                   adaptive_start=float(adaptive_start), adaptive_min=float(adaptive_min),
                   adaptive_max=None if adaptive_max is None else float(adaptive_max),
                   pacing_tick=float(pacing_tick))

    def limit_for(self, brand: str) -> float | None:
        """The configured limit of ``brand`` (dashed spelling), or None if it adapts."""
        return self._per_brand.get(brand, self.default)

    @property
    def per_brand(self) -> dict[str, float]:
        return dict(self._per_brand)

    def __repr__(self) -> str:
        return (f"RateLimits({self._per_brand!r}, default={self.default!r}, "
                f"adaptive_start={self.adaptive_start!r}, adaptive_min={self.adaptive_min!r}, "
                f"adaptive_max={self.adaptive_max!r}, pacing_tick={self.pacing_tick!r})")


def _positive(rate: float, what: str) -> float:
    rate = float(rate)
    if not (0 < rate <= MAX_FIXED_RATE or rate == math.inf):  # also refuses NaN
        raise ValueError(f"rate limit for {what!r} must be > 0 and <= {MAX_FIXED_RATE:g} "
                         f"requests per second (or math.inf for none), got {rate}")
    return rate


class Backoff(Frozen):
    """A retry schedule: ``initial`` seconds doubling up to ``maximum``, minus up to
    ``jitter`` of it at random (so coroutines that failed together do not retry together)."""

    __slots__ = ("initial", "jitter", "maximum")

    initial: float
    maximum: float
    jitter: float

    def __init__(self, initial: float, maximum: float, *, jitter: float = 0.25) -> None:
        if not 0 < initial <= maximum or not 0 <= jitter < 1:
            raise ValueError("need 0 < initial <= maximum and 0 <= jitter < 1")
        self._init(initial=initial, maximum=maximum, jitter=jitter)

    def __repr__(self) -> str:
        return f"Backoff({self.initial}, {self.maximum}, jitter={self.jitter})"


#: API requests: 0.5 s doubling to 8 s (openai-python's shape): long enough for an OEM
#: hiccup, short enough that a fleet job does not stall.
REQUEST_BACKOFF = Backoff(0.5, 8.0)
#: The token endpoint: 0.2 s doubling to 5 s. Shorter than for requests because every call
#: of the client may be waiting for it, and a refresh starts at half a token's life, so
#: there is time for several attempts before the current token expires.
TOKEN_BACKOFF = Backoff(0.2, 5.0)


class NotGiven:
    """The type of :data:`NOT_GIVEN`: "keep what the client has", where None already means
    something (``with_options(timeout=None)`` is "no time limit")."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class RequestOptions(Frozen):
    """What a view (:meth:`HMClient.with_options`) changes: None keeps the client's default."""

    __slots__ = ("max_retries", "timeout")

    timeout: Timeout | None
    max_retries: int | None

    def __init__(self, *, timeout: Timeout | None = None, max_retries: int | None = None) -> None:
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ValueError("max_retries must be >= 0")
        self._init(timeout=timeout, max_retries=max_retries)

    def __repr__(self) -> str:
        return f"RequestOptions(timeout={self.timeout!r}, max_retries={self.max_retries!r})"
