"""``Requester``: the small interface a resource sends its requests through.

A resource (clearance, vehicle data, static data, ...) needs one thing from the client: the
policy loop with the calling view's options (timeout, retries) already applied. It gets
exactly that, never the client, so a resource cannot reach into the client's private state
and a new resource is one class plus one line in :class:`~hm_async.HMClient`.

A resource names what it wants by request target -- the path and query as they go on the
request line -- never by URL: only the transport joins a target to the configured API
origin, so no code above it can point a request (and the bearer token) at another host. It
is also cheaper: a fleet poll builds no URL object per VIN.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from ._response import Response

__all__ = ["Requester"]


class Requester(Protocol):
    """Sends one logical request through the client's policy loop (see the module)."""

    def request(self, method: str, target: str, *, endpoint: str, idempotent: bool,
                body: bytes | None = None, brand: str | None = None,
                rate_limited: bool = False) -> Awaitable[Response]:
        """The 200 answer of ``method target``, or an :class:`~hm_async.HMError`.

        ``target`` is the request target on the API origin: an already URL-encoded path
        starting with ``/v1/``, optionally with ``?query``.

        ``endpoint`` names the call for the usage meter; ``idempotent`` allows retries after
        ambiguous failures; ``brand`` with ``rate_limited`` paces the call by that brand's
        limiter (and meters it under the brand).
        """
        ...
