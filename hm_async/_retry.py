"""Retry policy as pure functions and small state, so every rule is testable without I/O.

The defaults (``DEFAULT_MAX_RETRIES``, ``MAX_RETRY_AFTER``, the backoff schedules) live in
:mod:`hm_async._config` with the reasons for their values. Here:

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

from ._config import (
    DEFAULT_MAX_RETRIES,
    MAX_RETRY_AFTER,
    REQUEST_BACKOFF,
    TOKEN_BACKOFF,
    Backoff,
)

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "REQUEST_BACKOFF",
    "RETRYABLE_STATUSES",
    "TOKEN_BACKOFF",
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


def backoff_delay(attempt: int, *, schedule: Backoff = REQUEST_BACKOFF,
                  rand: float | None = None, retry_after: float | None = None,
                  remaining: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after ``attempt`` failures (1-based).

    The one backoff of hm_async, for API requests (``REQUEST_BACKOFF``, the default) and the
    token endpoint (``TOKEN_BACKOFF``): the server's ``Retry-After`` when it gave one (capped
    at ``MAX_RETRY_AFTER``), else ``schedule.initial`` doubling up to ``schedule.maximum``
    minus up to ``schedule.jitter`` of it (``rand`` is the random draw in [0, 1), drawn here
    when None); never more than ``remaining`` seconds (e.g. a token's remaining life).
    0 for ``attempt <= 0``.
    """
    if attempt <= 0:
        return 0.0
    if retry_after is not None:
        delay = min(retry_after, MAX_RETRY_AFTER)
    else:
        draw = random.random() if rand is None else rand
        delay = (min(schedule.initial * 2.0 ** (attempt - 1), schedule.maximum)
                 * (1.0 - schedule.jitter * draw))
    if remaining is not None:
        delay = min(delay, max(remaining, 0.0))
    return delay


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
