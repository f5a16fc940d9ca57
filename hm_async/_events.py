"""One event per HTTP attempt, on every lane and the token endpoint: the observability seam.

``HMClient(event_hooks=[fn])`` calls ``fn(event)`` synchronously after every attempt -- a
first send, a retry, a 401 replay, a re-send on a stale connection, a token request -- with
an :class:`AttemptEvent`. The policy loop builds the event only when a hook is registered,
so a client without hooks pays one attribute test per attempt; with a hook it pays one
small struct and the hook's own cost (``benchmarks/fanout.py`` prints the figure).

An event never carries a header, a token, a body or a VIN: ``path`` is the route template
(``/v1/vehicle-data/autoapi-13/{vin}``), so hooks can export to any backend as they are.
A hook that raises is logged once at WARNING and otherwise ignored: observing a request
must never fail it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import msgspec

__all__ = ["AttemptEvent", "EventHook", "emit", "path_template"]

logger = logging.getLogger("hm_async")


class AttemptEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one HTTP attempt did.

    ``status`` is None when no answer came (``error`` then names the failure kind, e.g.
    ``timeout``, ``connect``, ``reset``); ``retry_reason`` is set when the policy loop will
    send the request again (``"429"``, ``"503"``, ``"timeout"``, ``"invalid_token"``,
    ``"stale_connection"`` ...) and None on the attempt that ended the call. ``attempt``
    counts from 1 within one call; ``latency`` is seconds from send to the whole answer;
    ``bytes`` is the body size as received.
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

_VIN_SEGMENT = re.compile(r"/[A-Za-z0-9]{17}(?=/|$)")
_failed_hooks: set[int] = set()


def path_template(path: str) -> str:
    """``path`` with each 17-character VIN segment replaced by ``{vin}``."""
    return _VIN_SEGMENT.sub("/{vin}", path)


def emit(hooks: Sequence[EventHook], event: AttemptEvent) -> None:
    """Hand ``event`` to every hook; a failing hook is logged once and never propagates."""
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            if id(hook) not in _failed_hooks:
                _failed_hooks.add(id(hook))
                logger.warning("event hook %r raised; its later failures are not logged",
                               hook, exc_info=True)
