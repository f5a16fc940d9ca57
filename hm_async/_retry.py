"""Retry policy as pure functions and small state, so every rule is testable without I/O.

The constants and why:

* ``DEFAULT_MAX_RETRIES = 3``: HM's 503/504 mean "the carmaker failed or was slow" and 408
  means "vehicle asleep"; with a 10% transient failure rate three retries leave about one
  VIN in 10,000 failed, while a dead API costs at most four attempts per call (and the
  retry budget below stops the fleet-wide hammering long before that).
* ``INITIAL_DELAY = 0.5`` s doubling to ``MAX_DELAY = 8`` s, with up to 25% jitter
  subtracted (openai-python's shape): long enough for an OEM hiccup, short enough that a
  fleet job does not stall; jitter spreads thousands of coroutines that failed together.
* ``MAX_RETRY_AFTER = 60`` s: the server's ``Retry-After`` is honoured up to a minute; a
  longer wait is better surfaced to the caller than hidden inside one call.
* Retry budget: retries may add at most ``RETRY_RATIO = 20%`` to the request volume, plus
  ``MIN_RETRIES_PER_SECOND = 10`` so a quiet client can still retry. When HM is down, a
  client polling 10,000 VINs makes ~10,000 first attempts and ~2,000 retries instead of
  40,000 (Finagle's and gRPC's retry budget idea).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable

from ._config import DEFAULT_MAX_RETRIES, MAX_RETRY_AFTER, REQUEST_BACKOFF

INITIAL_DELAY = REQUEST_BACKOFF.initial
MAX_DELAY = REQUEST_BACKOFF.maximum

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "RETRYABLE_STATUSES",
    "RetryBudget",
    "backoff_delay",
    "parse_retry_after",
]

RETRY_RATIO = 0.2
MIN_RETRIES_PER_SECOND = 10.0
BUDGET_CAPACITY = 100.0

#: Statuses worth another attempt: the vehicle or carmaker may answer next time.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses that prove the server did not act on the request, so even a POST may be repeated.
NOT_APPLIED_STATUSES = frozenset({429})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped.

    Returns None when absent or unparseable: the caller then uses its own backoff.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(retry: int, *, retry_after: float | None = None,
                  rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``retry`` (1-based): the server's wish, else jittered backoff."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    base = min(INITIAL_DELAY * 2.0 ** (retry - 1), MAX_DELAY)
    return base * (1.0 - 0.25 * rand())


def should_retry(status: int, *, idempotent: bool) -> bool:
    """True when an answer with ``status`` may be retried for this kind of request."""
    if idempotent:
        return status in RETRYABLE_STATUSES
    return status in NOT_APPLIED_STATUSES


class RetryBudget:
    """A client-wide token bucket that caps retries at a fraction of the traffic.

    Each first attempt deposits ``ratio`` tokens, time adds ``min_per_second``, each retry
    spends one. An empty bucket means the API is failing for everyone: stop retrying.
    """

    __slots__ = ("_capacity", "_clock", "_last", "_min_per_second", "_ratio", "_tokens")

    def __init__(self, *, ratio: float = RETRY_RATIO,
                 min_per_second: float = MIN_RETRIES_PER_SECOND,
                 capacity: float = BUDGET_CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ratio = ratio
        self._min_per_second = min_per_second
        self._capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._last = clock()

    def record_request(self) -> None:
        """A first attempt was made: it earns a fraction of a retry."""
        tokens = self._tokens + self._ratio
        self._tokens = tokens if tokens < self._capacity else self._capacity

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is empty."""
        now = self._clock()
        self._tokens = min(self._capacity,
                           self._tokens + (now - self._last) * self._min_per_second)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def available(self) -> float:
        return self._tokens
