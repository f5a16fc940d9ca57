"""Usage metering: HM bills production apps per API call, priced per carmaker.

The policy loop counts every HTTP attempt by (endpoint, brand, outcome), and the token
provider its token requests (endpoint "access_tokens", brand None); retries are counted apart
from first attempts, so an operator can estimate a month's bill from a day's snapshot and spot
runaway retries. Counting is one dict increment per attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal

import msgspec

__all__ = ["NO_BRAND", "TRANSPORT_FAILURE", "UsageMeter", "UsageRow", "UsageSnapshot", "outcome_of"]

#: The outcome of an attempt that got no HTTP answer (connection failure, timeout).
TRANSPORT_FAILURE = "transport"
_OUTCOMES = {s: str(s) for s in range(100, 600)}


def outcome_of(status: int) -> str:
    """The outcome name of an answer with ``status`` ("200", "429", ...), without a new str
    per call for the usual statuses."""
    return _OUTCOMES.get(status) or str(status)

#: The :meth:`UsageSnapshot.by_brand` key of calls that name no carmaker: the token
#: endpoint and the fleet clearance calls.
NO_BRAND = "(no brand)"


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """Calls of one endpoint for one brand with one outcome ("200", "429", "transport", ...)."""

    endpoint: str
    brand: str | None
    outcome: str
    calls: int
    retries: int


class UsageSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A copy of the counters at one moment; safe to keep, encode or diff."""

    rows: tuple[UsageRow, ...]

    @property
    def total_calls(self) -> int:
        """Every HTTP request sent (first attempts and retries): what HM bills."""
        return sum(r.calls + r.retries for r in self.rows)

    @property
    def total_retries(self) -> int:
        return sum(r.retries for r in self.rows)

    def by_brand(self) -> dict[str, int]:
        """Billed calls per brand; brand-less calls (the token endpoint, fleet clearance)
        are counted under :data:`NO_BRAND`, so every key is a printable name."""
        out: dict[str, int] = {}
        for r in self.rows:
            key = r.brand or NO_BRAND
            out[key] = out.get(key, 0) + r.calls + r.retries
        return out

    def by_endpoint(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.endpoint] = out.get(r.endpoint, 0) + r.calls + r.retries
        return out

    def estimate_cost(self, price_per_call: Mapping[str, float | Decimal],
                      default: float | Decimal = 0.0) -> float:
        """Cost of these calls given a price per call for each brand (``default`` for the
        rest, :data:`NO_BRAND` included).

        Summed in decimal arithmetic from the prices as written, so three calls at 0.2
        cost ``0.6``, not binary floating point's ``0.6000000000000001``.
        """
        total = Decimal(0)
        for r in self.rows:
            price = price_per_call.get(r.brand or NO_BRAND, default)
            total += (r.calls + r.retries) * _decimal(price)
        return float(total)


def _decimal(price: float | Decimal) -> Decimal:
    # str() gives the shortest text that round-trips the float: the price the caller wrote.
    return price if isinstance(price, Decimal) else Decimal(str(price))


class UsageMeter:
    """Counters of HTTP attempts; the transport calls :meth:`count` once per attempt."""

    __slots__ = ("_calls", "_retries")

    def __init__(self) -> None:
        self._calls: Counter[tuple[str, str | None, str]] = Counter()
        self._retries: Counter[tuple[str, str | None, str]] = Counter()

    def count(self, endpoint: str, brand: str | None, outcome: str, *, retry: bool) -> None:
        key = (endpoint, brand, outcome)
        if retry:
            self._retries[key] += 1
        else:
            self._calls[key] += 1

    def snapshot(self) -> UsageSnapshot:
        keys = sorted(set(self._calls) | set(self._retries),
                      key=lambda k: (k[0], k[1] or "", k[2]))
        return UsageSnapshot(rows=tuple(
            UsageRow(endpoint=e, brand=b, outcome=o, calls=self._calls[(e, b, o)],
                     retries=self._retries[(e, b, o)])
            for e, b, o in keys
        ))
