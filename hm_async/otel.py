"""OpenTelemetry for hm_async (extra ``hm-async[otel]``): a span and a duration per attempt.

``HMClient(credentials, event_hooks=[OpenTelemetryHook()])`` records every HTTP attempt --
on the GET lane, on aiohttp and at the token endpoint -- following OpenTelemetry's stable
HTTP client semantic conventions:

* a CLIENT span per attempt named ``"{method} {url.template}"`` with
  ``http.request.method``, ``url.template``, ``server.address``, ``server.port``,
  ``url.scheme``, ``http.response.status_code``, ``error.type`` and, on retries,
  ``http.request.resend_count``; plus ``hm.endpoint``, ``hm.brand``, ``hm.lane``,
  ``hm.retry_reason`` and ``hm.request_id``;
* the ``http.client.request.duration`` histogram (seconds) with the low-cardinality
  attributes above (method, ``url.template``, server, scheme, status, ``error.type``).

Built on :class:`hm_async.AttemptEvent`, it sees what the events carry and nothing else: no
header (so never the Authorization header), no body, and the route template instead of the
VIN-bearing path. Spans are recorded after the attempt with its real start and end times,
as children of whatever span is current where the request was made.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from ._events import AttemptEvent
from ._version import __version__

__all__ = ["OpenTelemetryHook"]

_SCOPE = "hm_async"


class OpenTelemetryHook:
    """An event hook that records OpenTelemetry spans and metrics (see the module docstring).

    ``tracer_provider`` / ``meter_provider`` default to the global ones; pass
    ``traces=False`` or ``metrics_enabled=False`` to record only one kind.
    """

    __slots__ = ("_duration", "_tracer")

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None,
                 traces: bool = True, metrics_enabled: bool = True) -> None:
        self._tracer: Tracer | None = (trace.get_tracer(_SCOPE, __version__, tracer_provider)
                                       if traces else None)
        self._duration: Histogram | None = None
        if metrics_enabled:
            meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
            self._duration = meter.create_histogram(
                "http.client.request.duration", unit="s",
                description="Duration of HTTP client requests.")

    def __call__(self, event: AttemptEvent) -> None:
        error_type = _error_type(event)
        common: dict[str, Any] = {
            "http.request.method": event.method,
            "server.address": event.host,
            "server.port": event.port,
            "url.scheme": event.scheme,
            "url.template": event.path,
        }
        if event.status is not None:
            common["http.response.status_code"] = event.status
        if error_type is not None:
            common["error.type"] = error_type
        if self._duration is not None:
            self._duration.record(event.latency, common)
        if self._tracer is not None:
            self._span(self._tracer, event, common, error_type)

    @staticmethod
    def _span(tracer: Tracer, event: AttemptEvent, common: dict[str, Any],
              error_type: str | None) -> None:
        end = time.time_ns()
        attributes = dict(common)
        attributes["hm.endpoint"] = event.endpoint
        attributes["hm.lane"] = event.lane
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        if event.brand is not None:
            attributes["hm.brand"] = event.brand
        if event.retry_reason is not None:
            attributes["hm.retry_reason"] = event.retry_reason
        if event.request_id is not None:
            attributes["hm.request_id"] = event.request_id
        span = tracer.start_span(
            f"{event.method} {event.path}", kind=SpanKind.CLIENT, attributes=attributes,
            start_time=end - int(event.latency * 1e9))
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)


def _error_type(event: AttemptEvent) -> str | None:
    """``error.type`` per the conventions: the status code from 400 up, else the failure."""
    if event.status is not None:
        return str(event.status) if event.status >= 400 else None
    return event.error or "_OTHER"
