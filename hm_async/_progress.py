"""Live counts of a fleet poll, per brand, for progress bars and dashboards.

Kept apart from the poller: the CLI's bar and a caller's dashboard read these counters while
the poller's workers update them, and neither needs the other's machinery.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from ._errors import HMError

__all__ = ["BrandProgress", "Progress"]


class BrandProgress:
    """Counters of one brand. Plain ints: updating them is the whole hot-path cost."""

    __slots__ = ("done", "errors", "failed", "ok")

    def __init__(self) -> None:
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"BrandProgress(done={self.done}, ok={self.ok}, failed={self.failed})"


class Progress:
    """Live counts of a poll, per brand, for progress bars and dashboards.

    Pass one to ``hm.poll(..., progress=p)`` and read it from anywhere (the CLI's bar does);
    ``rate()`` is results per second over the last few seconds.
    """

    def __init__(self, *, total: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.brands: dict[str, BrandProgress] = {}
        self._clock = clock
        self.started = clock()
        self._samples: list[tuple[float, int]] = [(self.started, 0)]

    def record(self, brand: str | None, error: HMError | None) -> None:
        key = brand or "unknown"
        counts = self.brands.get(key)
        if counts is None:
            counts = self.brands[key] = BrandProgress()
        counts.done += 1
        if error is None:
            counts.ok += 1
        else:
            counts.failed += 1
            counts.errors[type(error).__name__] += 1

    @property
    def done(self) -> int:
        return sum(b.done for b in self.brands.values())

    @property
    def ok(self) -> int:
        return sum(b.ok for b in self.brands.values())

    @property
    def failed(self) -> int:
        return sum(b.failed for b in self.brands.values())

    def rate(self, window: float = 5.0) -> float:
        """Results per second over roughly the last ``window`` seconds."""
        now, done = self._clock(), self.done
        samples = self._samples
        if now - samples[-1][0] >= 0.5:
            samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= window:
            samples.pop(0)
        t0, d0 = samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0

    def errors(self) -> Counter[str]:
        """Failed results by error class name, over all brands."""
        total: Counter[str] = Counter()
        for b in self.brands.values():
            total.update(b.errors)
        return total
