"""Event hooks (issue 16 point 5): one hook sees every HTTP attempt on both lanes and at the
token endpoint, against the emulator with scripted faults, and the GET lane stays on.

Also the OpenTelemetry hook (``hm_async.otel``), checked with the real SDK's in-memory span
exporter and metric reader: spans follow the HTTP client semantic conventions and never
carry the Authorization header, the token, the client secret or a VIN.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from yarl import URL

from hm_async import AttemptEvent, HMClient, RetryBudget
from hm_async._events import path_template
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.otel import OpenTelemetryHook

pytestmark = pytest.mark.anyio

DATA_ROUTE = "/v1/vehicle-data/autoapi-13/{vin}"


@pytest.fixture
async def emu(emulator_factory: object) -> Emulator:
    emu: Emulator = await emulator_factory(  # type: ignore[operator]
        EmulatorConfig(failure_fraction=0.0, vehicles=5))
    return emu


@pytest.fixture
async def recorded(emu: Emulator) -> AsyncIterator[tuple[HMClient, list[AttemptEvent]]]:
    events: list[AttemptEvent] = []
    async with HMClient(emu.client_credentials, base_url=emu.url, event_hooks=[events.append],
                        retry_budget=RetryBudget(min_per_second=100.0)) as hm:
        yield hm, events


def shape(e: AttemptEvent) -> tuple[str, str, int, int | None, str | None]:
    return e.method, e.endpoint, e.attempt, e.status, e.retry_reason


def test_path_template_hides_vins() -> None:
    assert path_template("/v1/vehicle-data/autoapi-13/WBAEMU00000000042") == DATA_ROUTE
    assert path_template("/v1/fleets/vehicles/WBAEMU00000000042") == "/v1/fleets/vehicles/{vin}"
    assert path_template("/v1/vehicle-static-data/WBAEMU00000000042/data") == (
        "/v1/vehicle-static-data/{vin}/data")
    assert path_template("/v1/fleets/vehicles") == "/v1/fleets/vehicles"


async def test_hook_sees_token_retries_and_429_and_the_lane_stays_on(
        recorded: tuple[HMClient, list[AttemptEvent]], emu: Emulator) -> None:
    hm, events = recorded
    vehicle = emu.vehicles[-1]
    emu.script_faults("vehicle_data", [503, 429, None])
    data = await hm.vehicle_data(vehicle.vin, vehicle.brand)
    assert [shape(e) for e in events] == [
        ("POST", "access_tokens", 1, 200, None),
        ("GET", "vehicle_data", 1, 503, "503"),
        ("GET", "vehicle_data", 2, 429, "429"),
        ("GET", "vehicle_data", 3, 200, None),
    ]
    token, *gets = events
    assert token.path == "/v1/access_tokens" and token.lane == "aiohttp"
    # the GET lane stayed on with a hook (trace_configs= would have switched it off)
    lean = hm.transport.lean
    assert lean is not None and lean.loop is not None
    for e in gets:
        assert e.lane == "lean" and e.path == DATA_ROUTE and e.brand == vehicle.brand
        assert e.host == "127.0.0.1" and e.port == URL(emu.url).port and e.scheme == "http"
        assert e.latency > 0 and e.bytes > 0 and e.request_id
        assert vehicle.vin not in repr(e)
    assert gets[-1].request_id == data.request_id


async def test_hook_sees_401_replays_and_token_endpoint_failures(
        recorded: tuple[HMClient, list[AttemptEvent]], emu: Emulator) -> None:
    hm, events = recorded
    vin = emu.vehicles[-1].vin
    emu.script_faults("token", [503, None])
    await hm.vehicle_data(vin)
    emu.script_faults("vehicle_data", [401])
    await hm.vehicle_data(vin)
    assert [shape(e) for e in events] == [
        ("POST", "access_tokens", 1, 503, "503"),   # the token provider's own retry
        ("POST", "access_tokens", 2, 200, None),
        ("GET", "vehicle_data", 1, 200, None),
        ("GET", "vehicle_data", 1, 401, "invalid_token"),  # replayed with a new token
        ("POST", "access_tokens", 1, 200, None),
        ("GET", "vehicle_data", 2, 200, None),
    ]


async def test_hook_sees_writes_dropped_connections_and_final_failures(
        recorded: tuple[HMClient, list[AttemptEvent]], emu: Emulator) -> None:
    hm, events = recorded
    vehicle = emu.vehicles[-1]
    await hm.tokens.get()
    events.clear()
    emu.script_faults("eligibility", ["drop", None])
    await hm.eligibility(vehicle.vin, vehicle.brand)
    dropped, answered = events
    assert (dropped.method, dropped.endpoint, dropped.lane) == ("POST", "eligibility", "aiohttp")
    assert dropped.status is None and dropped.error is not None
    assert dropped.retry_reason == dropped.error and dropped.bytes == 0
    assert shape(answered) == ("POST", "eligibility", 2, 200, None)
    events.clear()
    emu.script_faults("vehicle_data", [503])
    view = hm.with_options(max_retries=0)
    with pytest.raises(Exception, match="503"):
        await view.vehicle_data(vehicle.vin)
    assert [shape(e) for e in events] == [("GET", "vehicle_data", 1, 503, None)]


async def test_poll_with_a_hook_keeps_one_event_per_vin_on_the_lane(
        recorded: tuple[HMClient, list[AttemptEvent]], emu: Emulator) -> None:
    hm, events = recorded
    vehicles = [(v.vin, v.brand) for v in emu.vehicles]
    results = [r async for r in hm.poll(vehicles, concurrency=4)]
    assert all(r.ok for r in results)
    gets = [e for e in events if e.method == "GET"]
    assert len(gets) == len(vehicles)
    assert {e.lane for e in gets} == {"lean"} and {e.path for e in gets} == {DATA_ROUTE}
    assert sorted(e.request_id or "" for e in gets) == sorted(r.request_id or "" for r in results)


async def test_a_failing_hook_never_fails_a_request(emu: Emulator,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    seen: list[AttemptEvent] = []

    def broken(event: AttemptEvent) -> None:
        raise RuntimeError("hook bug")

    async with HMClient(emu.client_credentials, base_url=emu.url,
                        event_hooks=[broken, seen.append]) as hm:
        with caplog.at_level(logging.WARNING, logger="hm_async"):
            for v in emu.vehicles[-2:]:
                await hm.vehicle_data(v.vin)
    assert len(seen) == 3  # the token and two GETs: later hooks still run
    warnings = [r for r in caplog.records if "event hook" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per event


async def test_event_hooks_must_be_callables(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="event_hooks"):
        HMClient(emu.client_credentials, base_url=emu.url,
                 event_hooks=["not callable"])  # type: ignore[list-item]


# -- OpenTelemetry ----------------------------------------------------------------------------


@pytest.fixture
def otel() -> tuple[OpenTelemetryHook, InMemorySpanExporter, InMemoryMetricReader,
                    TracerProvider]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    hook = OpenTelemetryHook(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return hook, exporter, reader, tracer_provider


async def test_otel_spans_follow_the_http_client_conventions_without_secrets(
        emu: Emulator, otel: tuple[OpenTelemetryHook, InMemorySpanExporter,
                                   InMemoryMetricReader, TracerProvider]) -> None:
    hook, exporter, reader, tracer_provider = otel
    vehicle = emu.vehicles[-1]
    emu.script_faults("vehicle_data", [503, None])
    async with HMClient(emu.client_credentials, base_url=emu.url, event_hooks=[hook]) as hm:
        with tracer_provider.get_tracer("app").start_as_current_span("nightly job") as job:
            data = await hm.vehicle_data(vehicle.vin, vehicle.brand)
        token = hm.tokens.current()
        assert token is not None
    spans: list[ReadableSpan] = [s for s in exporter.get_finished_spans()
                                 if s.name != "nightly job"]
    assert [s.name for s in spans] == ["POST /v1/access_tokens", f"GET {DATA_ROUTE}",
                                       f"GET {DATA_ROUTE}"]
    failed, ok = spans[1], spans[2]
    for s in spans:
        assert s.kind is SpanKind.CLIENT
        assert s.parent is not None and s.parent.span_id == job.get_span_context().span_id
        assert s.attributes is not None
        assert s.attributes["server.address"] == "127.0.0.1"
        assert s.attributes["server.port"] == URL(emu.url).port
        assert s.attributes["url.scheme"] == "http"
        assert s.start_time is not None and s.end_time is not None
        assert s.end_time > s.start_time
    assert failed.attributes is not None and ok.attributes is not None
    assert failed.attributes["http.request.method"] == "GET"
    assert failed.attributes["url.template"] == DATA_ROUTE
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["error.type"] == "503"
    assert failed.attributes["hm.retry_reason"] == "503"
    assert failed.status.status_code is StatusCode.ERROR
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.attributes["http.request.resend_count"] == 1
    assert "error.type" not in ok.attributes and ok.status.status_code is StatusCode.UNSET
    assert ok.attributes["hm.request_id"] == data.request_id
    assert ok.attributes["hm.brand"] == vehicle.brand
    # never the Authorization header, the token, the secret or a VIN
    dumped = "".join(s.to_json() for s in spans)
    for secret in (vehicle.vin, token.value, emu.client_secret, "Bearer", "Authorization"):
        assert secret not in dumped

    metrics = reader.get_metrics_data()
    assert metrics is not None
    points = [p for rm in metrics.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics if m.name == "http.client.request.duration"
              for p in m.data.data_points]
    assert sum(p.count for p in points if isinstance(p, HistogramDataPoint)) == 3
    by_status = {p.attributes["http.response.status_code"]: p for p in points
                 if p.attributes is not None}
    assert set(by_status) == {200, 503}
    for p in points:
        assert p.attributes is not None
        assert vehicle.vin not in repr(dict(p.attributes))
        assert "hm.request_id" not in p.attributes  # high cardinality: spans only
