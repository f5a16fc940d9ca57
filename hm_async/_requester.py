"""``Requester``: the small interface a resource sends its requests through.

A resource (clearance, vehicle data, static data, ...) needs two things from the client:
URLs on the configured API origin, and the policy loop with the calling view's options
(timeout, retries) already applied. It gets exactly that, never the client, so a resource
cannot reach into the client's private state and a new resource is one class plus one line
in :class:`~hm_async.HMClient`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from yarl import URL

from ._response import Response

__all__ = ["Requester"]


class Requester(Protocol):
    """Sends one logical request through the client's policy loop (see the module)."""

    @property
    def base_url(self) -> str:
        """The API origin, e.g. ``https://sandbox.api.high-mobility.com`` (no slash)."""
        ...

    def url(self, path: str) -> URL:
        """``base_url + path``; ``path`` is already URL-encoded and starts with /v1."""
        ...

    def request(self, method: str, url: URL, *, endpoint: str, idempotent: bool,
                body: bytes | None = None, brand: str | None = None,
                rate_limited: bool = False) -> Awaitable[Response]:
        """The 200 answer of ``method url``, or an :class:`~hm_async.HMError`.

        ``endpoint`` names the call for the usage meter; ``idempotent`` allows retries after
        ambiguous failures; ``brand`` with ``rate_limited`` paces the call by that brand's
        limiter (and meters it under the brand).
        """
        ...
