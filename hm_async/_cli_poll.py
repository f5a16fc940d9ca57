"""The fleet poll behind ``hm-async poll`` and ``hm-async demo``: VINs in, JSON Lines out.

stdout (or ``--output``) carries only JSON Lines, one per VIN, so it can be piped into
``jq`` or a loader; the progress bar and the summary go to stderr. Each line is a small
envelope around the body HM sent, embedded with ``msgspec.Raw`` so the payload is written
byte for byte as received (never decoded and re-encoded)::

    {"vin": "...", "brand": "bmw", "ok": true, "data": {...HM's body...}}
    {"vin": "...", "brand": "bmw", "ok": false, "error": {"type": "PermissionDeniedError",
     "status": 403, "message": "...", "request_id": "..."}}
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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

from ._client import HMClient
from ._errors import APIError, HMError
from ._poll import PollResult, Progress, VehicleInput
from ._ratelimit import BrandRateState

__all__ = ["PollOutcome", "ResultWriter", "parse_vehicle_lines", "run_poll", "summary_table"]

#: How often the bar is redrawn from the poll's counters (the poll itself never waits on it).
_REFRESH_SECONDS = 0.1


class _ErrorInfo(msgspec.Struct, omit_defaults=True):
    type: str
    message: str
    status: int | None = None
    request_id: str | None = None


class _OkLine(msgspec.Struct):
    vin: str
    brand: str | None
    ok: bool
    data: msgspec.Raw


class _ErrorLine(msgspec.Struct):
    vin: str
    brand: str | None
    ok: bool
    error: _ErrorInfo


def error_info(error: HMError) -> _ErrorInfo:
    status = request_id = None
    if isinstance(error, APIError):
        status, request_id = error.status_code, error.request_id
    return _ErrorInfo(type=type(error).__name__, message=str(error), status=status,
                      request_id=request_id)


class ResultWriter:
    """Encodes results as JSON Lines into a binary stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._encoder = msgspec.json.Encoder()
        self.lines = 0

    def write(self, r: PollResult) -> None:
        if r.error is None and r.raw is not None:
            raw = r.raw
            if b"\n" in raw or b"\r" in raw:  # a pretty-printed body would break the line
                raw = msgspec.json.format(raw, indent=0)
            line: Any = _OkLine(vin=r.vin, brand=r.brand, ok=True, data=msgspec.Raw(raw))
        else:
            err = r.error or HMError("no data and no error")
            line = _ErrorLine(vin=r.vin, brand=r.brand, ok=False, error=error_info(err))
        self._stream.write(self._encoder.encode(line) + b"\n")
        self.lines += 1


def _split_row(line: str) -> list[str]:
    for sep in (",", ";", "\t"):
        if sep in line:
            return [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=sep))]
    return line.split()


def parse_vehicle_lines(lines: Iterable[str], *, brand: str | None = None
                        ) -> Iterator[str | tuple[str, str]]:
    """VINs from text: one per line, optionally ``VIN,BRAND`` (CSV with a header works too).

    Blank lines and ``#`` comments are skipped. Malformed VINs are passed on as they are:
    the poll reports them as that line's error instead of stopping the whole job.
    ``brand`` is used for lines that name none (and saves the clearance lookup).
    """
    vin_col, brand_col = 0, 1
    first = True
    for text in lines:
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        row = _split_row(text)
        if first:
            first = False
            header = [c.lower() for c in row]
            if "vin" in header:
                vin_col = header.index("vin")
                brand_col = header.index("brand") if "brand" in header else -1
                continue
        vin = row[vin_col].upper() if vin_col < len(row) else ""
        line_brand = row[brand_col] if 0 <= brand_col < len(row) and row[brand_col] else brand
        yield (vin, line_brand) if line_brand else vin


@dataclass
class PollOutcome:
    progress: Progress
    elapsed: float


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
                   description: str = "polling") -> PollOutcome:
    """Poll ``items``, write every result, draw the bar; per-VIN errors never raise."""
    progress = Progress(total=len(items))
    started = time.monotonic()
    bar = _bar(console) if show_progress else None
    task = bar.add_task(description, total=len(items), ok=0, failed=0, rate=0.0) if bar else None
    next_draw = 0.0

    def draw() -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=progress.done, ok=progress.ok, failed=progress.failed,
                       rate=progress.rate())

    if bar is not None:
        bar.start()
    try:
        async for r in hm.poll(items, concurrency=concurrency, progress=progress,
                               keep_raw=writer is not None):
            if writer is not None:
                writer.write(r)
            now = time.monotonic()
            if now >= next_draw:
                next_draw = now + _REFRESH_SECONDS
                draw()
        draw()
    finally:
        if bar is not None:
            bar.stop()
    return PollOutcome(progress=progress, elapsed=time.monotonic() - started)


def _short(name: str) -> str:
    return name[:-5] if name.endswith("Error") and len(name) > 5 else name


def summary_table(outcome: PollOutcome, hm: HMClient, *, title: str = "Poll summary") -> Table:
    """Brands × outcomes, then totals, throughput and what the poll cost in API calls."""
    progress = outcome.progress
    calls = hm.usage().by_brand()
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column("brand", footer="total")
    table.add_column("VINs", justify="right", footer=str(progress.done))
    table.add_column("ok", justify="right", style="green", footer=str(progress.ok))
    table.add_column("failed", justify="right", style="red", footer=str(progress.failed))
    all_errors = progress.errors()
    table.add_column("errors by kind", footer=_kinds(all_errors))
    table.add_column("API calls", justify="right", footer=str(sum(calls.values())))
    table.add_column("pacing at the end")
    pacing = hm.limiters.snapshot()
    for brand in sorted(progress.brands):
        b = progress.brands[brand]
        known = brand != "unknown"
        table.add_row(brand, str(b.done), str(b.ok), str(b.failed), _kinds(b.errors),
                      str(calls.get(brand, 0)) if known else "-",
                      _pace(pacing.get(brand)) if known else "-")
    usage = hm.usage()
    rate = progress.done / outcome.elapsed if outcome.elapsed > 0 else 0.0
    outcomes: Counter[str] = Counter()
    for row in usage.rows:
        outcomes[row.outcome] += row.calls + row.retries
    table.caption = (
        f"{progress.done} VINs in {outcome.elapsed:.1f} s ({rate:.0f} VIN/s) · "
        f"{usage.total_calls} HTTP calls incl. {usage.total_retries} retries · "
        f"{hm.tokens.requests_made} token request(s)\n"
        f"HTTP outcomes: {', '.join(f'{k}×{n}' for k, n in outcomes.most_common())}"
    )
    table.caption_justify = "left"
    return table


def _pace(state: BrandRateState | None) -> str:
    if state is None:
        return "-"
    rate = "unlimited" if state.allowed_rate is None else f"{state.allowed_rate:.0f} req/s"
    limited = f", {state.rate_limited}×429" if state.rate_limited else ""
    return f"{state.mode} {rate}{limited}"


def _kinds(errors: Counter[str]) -> str:
    return ", ".join(f"{_short(k)}×{n}" for k, n in errors.most_common()) or "-"
