"""The fleet poll behind ``hm-async poll`` and ``hm-async demo``: VINs in, JSON Lines out.

stdout (or ``--output``) carries only JSON Lines, one per VIN, so it can be piped into
``jq`` or a loader; the progress bar and the summary go to stderr. Each line is a small
envelope around the body HM sent, embedded with ``msgspec.Raw`` so the payload is written
byte for byte as received (never decoded and re-encoded)::

    {"vin": "...", "brand": "bmw", "ok": true, "request_id": "...", "data": {...HM's body...}}
    {"vin": "...", "brand": "bmw", "ok": false, "request_id": "...", "error": {"type":
     "PermissionDeniedError", "status": 403, "message": "...", "request_id": "..."}}

``request_id`` is HM's id of the answer (null when there was none, e.g. a network failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from ._age_stats import age_stats
from ._cli_errors import OutputError
from ._cli_input import parse_vehicle_lines
from ._client import HMClient
from ._errors import APIError, HMError
from ._metering import NO_BRAND
from ._poll import PollResult, Progress, VehicleInput
from ._ratelimit import BrandRateState

__all__ = ["Interrupts", "PollOutcome", "ResultWriter", "parse_vehicle_lines", "run_poll",
           "summary_table"]

#: How often the bar is redrawn from the poll's counters (the poll itself never waits on it).
_REFRESH_SECONDS = 0.1
#: How often written lines are flushed, so ``tail -f`` and a crash lose at most this much.
_FLUSH_SECONDS = 1.0


class _ErrorInfo(msgspec.Struct, omit_defaults=True):
    type: str
    message: str
    status: int | None = None
    request_id: str | None = None


class _OkLine(msgspec.Struct):
    vin: str
    brand: str | None
    ok: bool
    request_id: str | None
    data: msgspec.Raw


class _ErrorLine(msgspec.Struct):
    vin: str
    brand: str | None
    ok: bool
    request_id: str | None
    error: _ErrorInfo


def error_info(error: HMError) -> _ErrorInfo:
    status = request_id = None
    if isinstance(error, APIError):
        status, request_id = error.status_code, error.request_id
    return _ErrorInfo(type=type(error).__name__, message=str(error), status=status,
                      request_id=request_id)


class ResultWriter:
    """Encodes results as JSON Lines into a binary stream, one whole line per write.

    A failing write (disk full, closed pipe) raises :class:`OutputError` naming ``where``.
    """

    def __init__(self, stream: IO[bytes], where: str = "the output") -> None:
        self._stream = stream
        self._where = where
        self._encoder = msgspec.json.Encoder()
        self.lines = 0

    def write(self, r: PollResult) -> None:
        if r.error is None and r.raw is not None:
            raw = r.raw
            if b"\n" in raw or b"\r" in raw:  # a pretty-printed body would break the line
                raw = msgspec.json.format(raw, indent=0)
            line: Any = _OkLine(vin=r.vin, brand=r.brand, ok=True, request_id=r.request_id,
                                data=msgspec.Raw(raw))
        else:
            err = r.error or HMError("no data and no error")
            line = _ErrorLine(vin=r.vin, brand=r.brand, ok=False, request_id=r.request_id,
                              error=error_info(err))
        try:
            self._stream.write(self._encoder.encode(line) + b"\n")
        except OSError as exc:
            raise OutputError(self._where, exc) from None
        self.lines += 1

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(self._where, exc) from None


@dataclass
class PollOutcome:
    """What a poll did, for the summary: counts, time, and what was skipped or left."""

    progress: Progress
    elapsed: float
    written: int
    #: VINs listed more than once in the input (polled once)
    duplicates: int = 0
    #: VINs skipped because the output already had them (``--resume``)
    resumed: int = 0
    #: VINs not polled because the run was interrupted
    not_polled: int = 0
    interrupted: bool = False
    #: brand -> (first, last) monotonic time a result of that brand arrived
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: age of each answer's newest property (None: the answer had no timestamp)
    ages: list[timedelta | None] = field(default_factory=list)

    def achieved_rate(self, brand: str) -> float | None:
        """Results per second of ``brand`` between its first and last result."""
        span = self.spans.get(brand)
        b = self.progress.brands.get(brand)
        if span is None or b is None or b.done < 2 or span[1] <= span[0]:
            return None
        return (b.done - 1) / (span[1] - span[0])


class Interrupts:
    """Ctrl-C / SIGTERM during a poll: the first one stops feeding new VINs and lets the
    requests in flight finish (they are billed, so their results are written); a second one
    abandons them. Either way the output is left as complete, flushed JSON Lines."""

    def __init__(self, console: Console) -> None:
        self.stop = asyncio.Event()
        self._console = console
        self._task: asyncio.Task[Any] | None = None
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> Interrupts:
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._signalled, sig)
                self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)

    def _signalled(self, sig: signal.Signals) -> None:
        if not self.stop.is_set():
            self.stop.set()
            self._console.print(f"[yellow]{sig.name}: finishing the requests in flight, then "
                                f"stopping (again to abandon them)[/]")
        elif self._task is not None:
            self._task.cancel()


def _bar(console: Console) -> RichProgress:
    return RichProgress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
        TextColumn("{task.fields[rate]:>7.1f} VIN/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=10,
    )


async def run_poll(hm: HMClient, items: Sequence[VehicleInput], writer: ResultWriter | None, *,
                   concurrency: int, console: Console, show_progress: bool,
                   description: str = "polling", invalid: Sequence[PollResult] = (),
                   stop: asyncio.Event | None = None) -> PollOutcome:
    """Poll ``items``, write every result, draw the bar; per-VIN errors never raise.

    ``invalid`` are results decided before any request (lines that name no vehicle); they
    are written and counted like the others. Once ``stop`` is set no new VIN is started;
    the requests in flight finish and are written. Cancelling the caller abandons them.
    Results come in completion order, not input order.
    """
    total = len(items) + len(invalid)
    progress = Progress(total=total)
    outcome = PollOutcome(progress=progress, elapsed=0.0, written=0)
    spans = outcome.spans
    ages = outcome.ages
    started = time.monotonic()
    polled_at = datetime.now(timezone.utc)
    bar = _bar(console) if show_progress else None
    task = bar.add_task(description, total=total, ok=0, failed=0, rate=0.0) if bar else None
    next_draw = next_flush = 0.0

    def draw() -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=progress.done, ok=progress.ok, failed=progress.failed,
                       rate=progress.rate())

    def take(r: PollResult) -> None:
        if writer is not None:
            writer.write(r)
        if r.data is not None:  # HM hands on what the car last sent: how old is it?
            ages.append(r.data.age(polled_at))
        now = time.monotonic()
        key = r.brand or "unknown"
        first = spans.get(key, (now, now))[0]
        spans[key] = (first, now)

    def feed() -> Iterator[VehicleInput]:
        for item in items:
            if stop is not None and stop.is_set():
                return
            yield item

    if bar is not None:
        bar.start()
    try:
        for r in invalid:
            progress.record(r.brand, r.error)
            take(r)
        async for r in hm.poll(feed(), concurrency=concurrency, progress=progress,
                               keep_raw=writer is not None):
            take(r)
            now = time.monotonic()
            if now >= next_draw:
                next_draw = now + _REFRESH_SECONDS
                draw()
            if writer is not None and now >= next_flush:
                next_flush = now + _FLUSH_SECONDS
                writer.flush()
        draw()
    except asyncio.CancelledError:
        if stop is None or not stop.is_set():
            raise
        # a second Ctrl-C: the in-flight requests were abandoned; report what was done
    finally:
        if bar is not None:
            bar.stop()
        if writer is not None:
            writer.flush()
    outcome.elapsed = time.monotonic() - started
    outcome.written = writer.lines if writer is not None else 0
    outcome.not_polled = total - progress.done
    outcome.interrupted = stop is not None and stop.is_set()
    return outcome


def _short(name: str) -> str:
    return name[:-5] if name.endswith("Error") and len(name) > 5 else name


#: How the summary names the metered endpoints.
_ENDPOINT_LABELS = {"vehicle_data": "vehicle data", "clearance.list": "clearance list",
                    "clearance.get": "clearance get", "eligibility": "eligibility",
                    "access_tokens": "token requests"}


def summary_table(outcome: PollOutcome, hm: HMClient, *, title: str = "Poll summary",
                  resume_hint: str | None = None) -> Table:
    """Brands × outcomes, then totals, throughput and what the poll cost in API calls.

    The caption's numbers add up: VINs = ok + failed (+ not polled), and API calls = first
    attempts per endpoint + retries; 401 answers are explained, since they are not expired
    tokens here (those would show as extra token requests).
    """
    progress = outcome.progress
    usage = hm.usage()
    calls = usage.by_brand()
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column("brand", footer="total")
    table.add_column("VINs", justify="right", footer=str(progress.done))
    table.add_column("ok", justify="right", style="green", footer=str(progress.ok))
    table.add_column("failed", justify="right", style="red", footer=str(progress.failed))
    table.add_column("errors by kind", footer=_kinds(progress.errors()))
    table.add_column("HTTP calls", justify="right", footer=str(usage.total_calls))
    table.add_column("rate reached (pacing)")
    pacing = hm.limiters.snapshot()
    for brand in sorted(progress.brands):
        b = progress.brands[brand]
        known = brand != "unknown"
        label = brand if known else "(brand unknown)"  # VINs that never got to a request
        table.add_row(label, str(b.done), str(b.ok), str(b.failed), _kinds(b.errors),
                      str(calls.get(brand, 0)) if known else "-",
                      _pace(pacing.get(brand), outcome.achieved_rate(brand)) if known else "-")
    if calls.get(NO_BRAND):
        table.add_row(NO_BRAND, "", "", "", "", str(calls[NO_BRAND]), "")
    table.caption = "\n".join(_caption(outcome, hm, resume_hint))
    if hm.degraded:
        table.caption += ("\nran DEGRADED: Redis was lost mid-run; this worker went on with "
                          "its own token and limits")
    table.caption_justify = "left"
    return table


def _caption(outcome: PollOutcome, hm: HMClient, resume_hint: str | None) -> list[str]:
    progress = outcome.progress
    usage = hm.usage()
    rate = progress.done / outcome.elapsed if outcome.elapsed > 0 else 0.0
    first = f"{progress.done:,} VINs in {outcome.elapsed:.1f} s ({rate:.0f} VIN/s): " \
            f"{progress.ok:,} ok, {progress.failed:,} failed"
    if outcome.duplicates:
        first += f" · {outcome.duplicates:,} duplicate line(s) skipped (each VIN polled once)"
    if outcome.resumed:
        first += f" · {outcome.resumed:,} VIN(s) already in the output, not polled again"
    lines = [first]
    if outcome.ages:
        ages = age_stats(outcome.ages).describe()
        lines.append(f"data age (newest property per vehicle): {ages}")
    if outcome.interrupted:
        lines.append(f"[yellow]interrupted: {outcome.not_polled:,} VIN(s) not polled"
                     + (f"; {resume_hint}" if resume_hint and outcome.not_polled else "")
                     + "[/]")
    per_endpoint: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    for row in usage.rows:
        per_endpoint[row.endpoint] += row.calls
        answers[row.outcome] += row.calls + row.retries
    parts = [f"{n:,} {_ENDPOINT_LABELS.get(e, e)}" for e, n in per_endpoint.most_common()]
    parts.append(f"{usage.total_retries:,} retries")
    cost = f"HTTP calls: {usage.total_calls:,} = {' + '.join(parts)}"
    tokens = hm.tokens.requests_made
    if "access_tokens" not in per_endpoint:
        cost += f" · {tokens} token request(s)"
    cost += " (a token lives 5 minutes and is renewed from half its life)"
    lines.append(cost)
    shown = ", ".join(f"{k}×{n:,}" for k, n in sorted(answers.items()))
    lines.append(f"HTTP answers: {shown}")
    if answers.get("401"):
        lines.append("401: a vehicle whose consent the OEM removed answers 401 (counted as "
                     "PermissionDenied above); an expired token would also answer 401 and "
                     "cost one more token request")
    return lines


def _pace(state: BrandRateState | None, achieved: float | None) -> str:
    """How fast a brand went, and why: its limit, or adaptive pacing found from 429s."""
    if state is None:
        return "-"
    speed = f"{achieved:.0f} req/s" if achieved is not None else "-"
    if state.mode == "fixed" and state.allowed_rate is not None:
        how = f"limit {state.allowed_rate:g}/s"
    elif state.mode == "adaptive":
        how = "adaptive"
    else:
        how = state.mode
    limited = f", {state.rate_limited}×429" if state.rate_limited else ""
    return f"{speed} ({how}{limited})"


def _kinds(errors: Counter[str]) -> str:
    return ", ".join(f"{_short(k)}×{n}" for k, n in errors.most_common()) or "-"
