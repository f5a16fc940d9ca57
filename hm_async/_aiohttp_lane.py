"""The aiohttp lane: one attempt of any request over the client's ``aiohttp.ClientSession``.

One of the two lanes under the policy loop (the other is the GET lane of
:mod:`hm_async._h1_pool`). It sends exactly one request -- no retries, no token logic, no
redirects (an answer is an answer: the bearer token goes to the configured origin only) --
reads the body up to a cap, and turns every network exception into an hm_async error
through :func:`~hm_async._network_errors.map_network_error`. The token provider posts through
it too, so the token endpoint fails, times out and is capped the same way as any call.

Through an egress proxy (``HMClient(proxy=...)``, or ``trust_env=True`` and
``HTTPS_PROXY``/``NO_PROXY``), aiohttp's own proxy support carries each request: an
``https`` API origin is reached through a CONNECT tunnel (TLS end to end, so the proxy sees
neither the bearer token nor the token request), an ``http`` one by absolute-form requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from yarl import URL

from ._config import MAX_BODY_BYTES, Timeout
from ._errors import TransportError
from ._network_errors import map_network_error
from ._response import Response

__all__ = ["AiohttpLane", "read_capped"]


class AiohttpLane:
    """Sends one request over ``session`` and returns the whole answer as a :class:`Response`."""

    __slots__ = ("proxy", "session")

    def __init__(self, session: aiohttp.ClientSession, *, proxy: URL | None = None) -> None:
        self.session = session
        #: Every request goes through this proxy; None: direct, or as the session's
        #: ``trust_env`` reads HTTPS_PROXY / NO_PROXY. Credentials in its URL are turned
        #: by aiohttp into a Proxy-Authorization header for the proxy only.
        self.proxy = proxy

    async def send(self, method: str, url: URL, *, body: bytes | None,
                   headers: Mapping[str, str], timeout: Timeout,
                   max_body: int = MAX_BODY_BYTES, context: str = "") -> Response:
        """One attempt; raises :class:`~hm_async.TransportError` (or a timeout) on failure.

        ``context`` prefixes error messages (e.g. "token request").
        """
        try:
            async with self.session.request(method, url, data=body, headers=headers,
                                            timeout=timeout._aiohttp,
                                            allow_redirects=False,
                                            proxy=self.proxy) as resp:
                raw = await read_capped(resp, max_body)
                return Response(resp.status, resp.headers, raw)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise map_network_error(exc, method=method, path=url.path, host=url.host,
                                    port=url.port, limits=timeout, context=context) from exc


async def read_capped(resp: aiohttp.ClientResponse, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, or TransportError once it grows past ``limit`` bytes."""
    length = resp.content_length
    # Content-Length counts the bytes on the wire; a compressed body inflates beyond it.
    if length is not None and length <= limit and "Content-Encoding" not in resp.headers:
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TransportError(
                f"response body of {resp.method} {resp.url.path} exceeds {limit} bytes; "
                f"not read further", kind="too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)
