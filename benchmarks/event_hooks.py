"""What an event hook costs: client CPU per VIN of hm.poll with and without hooks.

Three variants of the same poll, rounds interleaved (A B C A B C ...) so machine noise hits
them alike; the server (``canned_server.py``: canned answers, negligible CPU) runs in a child
process, and the figure is the client process's CPU time (``time.process_time``) per VIN:

* ``no hook``     HMClient() -- the baseline (one truthiness test per attempt);
* ``no-op hook``  HMClient(event_hooks=[lambda e: None]) -- the event itself;
* ``otel hook``   HMClient(event_hooks=[OpenTelemetryHook(...)]) with the real SDK: a span
                  per attempt through a SimpleSpanProcessor into an exporter that drops it,
                  and the duration histogram into an in-memory reader;
* ``otel metrics`` the same hook with ``traces=False``: the histogram only.

Printed: the best round's CPU per VIN of each (as ``fanout.py`` keeps the best: a shared
machine only ever adds time), its ratio to the baseline, and the microseconds a hook adds
per VIN, with every round's figure.
Run: ``python benchmarks/event_hooks.py`` (``--vins``, ``--rounds``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from hm_async import AttemptEvent, ClientCredentials, HMClient, RateLimits

UNPACED = RateLimits(default=math.inf)
Hooks = Callable[[], list[Callable[[AttemptEvent], None]]]


def _otel_hooks(traces: bool = True) -> list[Callable[[AttemptEvent], None]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from hm_async.otel import OpenTelemetryHook

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            del spans  # dropped: the cost measured is recording, not exporting
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return [OpenTelemetryHook(tracer_provider=tracer_provider, meter_provider=meter_provider,
                              traces=traces)]


def _no_op(event: AttemptEvent) -> None:
    del event


VARIANTS: dict[str, Hooks] = {
    "no hook": list,
    "no-op hook": lambda: [_no_op],
    "otel hook": _otel_hooks,
    "otel metrics": lambda: _otel_hooks(traces=False),
}


async def one_poll(url: str, creds: ClientCredentials, vins: list[tuple[str, str]],
                   concurrency: int, hooks: Hooks) -> float:
    """Client CPU seconds per VIN of one poll (token and connections included)."""
    gc.collect()
    started = time.process_time()
    async with HMClient(creds, base_url=url, rate_limits=UNPACED,
                        event_hooks=hooks()) as hm:
        async for r in hm.poll(vins, concurrency=concurrency):
            if not r.ok:
                raise SystemExit(f"poll failed: {r.error}")
    return (time.process_time() - started) / len(vins)


async def event_cost(url: str, creds: ClientCredentials, vins: list[tuple[str, str]],
                     n: int = 20000) -> float:
    """CPU seconds to build and hand out one attempt's event to a no-op hook, measured in
    isolation (steadier than the difference of two polls on a busy machine): the policy
    loop's own ``_emit`` with a real answer and a new URL per call, as in a poll."""
    from yarl import URL

    async with HMClient(creds, base_url=url, rate_limits=UNPACED,
                        event_hooks=[_no_op]) as hm:
        answer = (await hm.with_raw_response.vehicle_data(vins[0][0])).http_response
        transport = hm.transport
        prefix = url + "/v1/vehicle-data/autoapi-13/"
        urls = [URL(prefix + vins[i % len(vins)][0], encoded=True) for i in range(n)]
        hooks = transport.hooks
        started = time.process_time()
        for u in urls:
            transport._emit(hooks, "GET", u, "vehicle_data", "bmw", 1, 0.0, answer, None, None)
        return (time.process_time() - started) / n


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vins", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(__file__), "canned_server.py"),
         "--vehicles", str(min(args.vins, 1000))], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        creds = ClientCredentials(client_id=info["client_id"],
                                  client_secret=info["client_secret"])
        fleet = [(v["vin"], v["brand"]) for v in info["vehicles"]]
        vins = [fleet[i % len(fleet)] for i in range(args.vins)]
        await one_poll(info["url"], creds, vins[:200], args.concurrency, VARIANTS["no hook"])
        samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.rounds):
            for name, hooks in VARIANTS.items():  # interleaved: A B C A B C ...
                samples[name].append(
                    await one_poll(info["url"], creds, vins, args.concurrency, hooks))
        emit_cost = min([await event_cost(info["url"], creds, fleet) for _ in range(3)])
    finally:
        server.terminate()
        server.wait(10)
    base = min(samples["no hook"])
    print(f"hm.poll of {args.vins} VINs, concurrency {args.concurrency}, "
          f"{args.rounds} interleaved rounds; client CPU per VIN (best round; a shared "
          f"machine only ever adds time):")
    for name, values in samples.items():
        cpu = min(values)
        print(f"  {name:<12} {cpu * 1e6:7.1f} us/VIN   {cpu / base:5.2f}x   "
              f"{(cpu - base) * 1e6:+6.1f} us/VIN vs no hook   (rounds: "
              f"{' '.join(f'{v * 1e6:.0f}' for v in values)})")
    print(f"  one event to a no-op hook, measured alone: {emit_cost * 1e6:.1f} us per attempt "
          f"= {emit_cost / base:.3f}x the no-hook poll's CPU per VIN")


if __name__ == "__main__":
    asyncio.run(main())

