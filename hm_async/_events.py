"""One event per HTTP attempt, on every lane and the token endpoint: the observability seam.

``HMClient(event_hooks=[fn])`` calls ``fn(event)`` synchronously, on the event loop, after
every attempt -- a first send, a retry, a 401 replay, a re-send on a stale connection, a
token request -- with an :class:`AttemptEvent`. The GET lane stays on (unlike
``trace_configs=``, which only aiohttp can serve). The policy loop and the token provider
build an event only when a hook is registered, so a client without hooks pays one truthiness
test per attempt; with a hook it pays a clock read, one small struct and the hook's own cost
(``benchmarks/event_hooks.py`` prints the figure per VIN).

An event never carries a header, a token, a body or a VIN: ``path`` is the route template
(``/v1/vehicle-data/autoapi-13/{vin}``), so hooks can export events to any backend as they
are. A hook that raises is logged once at WARNING (per hook) and otherwise ignored:
observing a request must never fail it.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable, Sequence

import msgspec

__all__ = ["AttemptEvent", "EventHook", "emit", "path_template", "request_path"]

logger = logging.getLogger("hm_async")


class AttemptEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one HTTP attempt did.

    * ``method``, ``path`` (the route template: each VIN is ``{vin}``), ``endpoint`` (the
      usage meter's name of the call: ``vehicle_data``, ``access_tokens`` ...), ``brand``
      (dashed spelling, None when the call has none), ``lane`` (``"lean"``: the GET lane,
      ``"aiohttp"``: writes, the token endpoint, GETs when the lane is off);
    * ``attempt`` counts from 1 within one call (at the token endpoint: within a run of
      failed token requests);
    * ``status`` is None when no answer came; ``error`` then names the failure
      (:attr:`~hm_async.TransportError.kind`: ``timeout``, ``connect``, ``closed`` ...);
    * ``retry_reason`` is set when this attempt will be followed by another: the status
      (``"429"``, ``"503"``), ``"invalid_token"`` (a 401 replayed with a new token),
      ``"stale_connection"`` or the failure kind (``"timeout"``, ``"reset"`` ...); None on
      the attempt that ended the call. At the token endpoint it names every transient
      failure (the next token request follows, in this refresh or the next caller's);
    * ``latency`` is seconds from the start of the attempt to the whole answer (it
      includes waiting for a free connection when more calls than ``max_connections`` run);
      ``bytes`` is the body size as received (0 without an answer);
    * ``request_id`` is HM's request id (the ``X-Request-Id`` header, else the body's
      ``request_id``) when the answer has one;
    * ``host``, ``port``, ``scheme``: the API origin the attempt went to.
    """

    method: str
    path: str
    endpoint: str
    brand: str | None
    lane: str
    attempt: int
    status: int | None
    error: str | None
    retry_reason: str | None
    latency: float
    bytes: int
    request_id: str | None
    host: str
    port: int
    scheme: str


#: A hook: called with each event, on the event loop's thread, after the attempt.
EventHook = Callable[[AttemptEvent], None]

# A VIN is 17 letters and digits; no other path segment of the HM API is.
_VIN_SEGMENT = re.compile(r"/[A-Za-z0-9]{17}(?=/|$)")
# Hooks whose failure was logged already (weakly held: a dropped hook is forgotten).
_failed_hooks: weakref.WeakSet[EventHook] = weakref.WeakSet()
_failed_ids: set[int] = set()  # for hooks that cannot be weakly referenced


def request_path(target: str) -> str:
    """The path of a request target (its query left out): what error messages, logs and
    events name, so a VIN-bearing query string never reaches them."""
    return target.partition("?")[0]


def path_template(path: str) -> str:
    """``path`` with each 17-character VIN segment replaced by ``{vin}``."""
    return _VIN_SEGMENT.sub("/{vin}", path)


def emit(hooks: Sequence[EventHook], event: AttemptEvent) -> None:
    """Hand ``event`` to every hook; a failing hook is logged once and never propagates."""
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            if _first_failure(hook):
                logger.warning("event hook %r raised; its later failures are not logged",
                               hook, exc_info=True)


def _first_failure(hook: EventHook) -> bool:
    try:
        if hook in _failed_hooks:
            return False
        _failed_hooks.add(hook)
    except TypeError:  # not weakly referenceable
        if id(hook) in _failed_ids:
            return False
        _failed_ids.add(id(hook))
    return True
