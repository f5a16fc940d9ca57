"""``Response``: one fully read HTTP answer, the value every lane hands to the policy loop.

Both lanes build it (the aiohttp lane from a ``ClientResponse``, the GET lane from its
parser), so the policy loop, the error parser and the resources never see a lane's types.
"""

from __future__ import annotations

from multidict import CIMultiDictProxy

__all__ = ["Response"]

_BODY_KEY = b'"request_id"'


class Response:
    """A fully read HTTP answer: status, headers and body bytes (both request paths)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def request_id(self) -> str | None:
        """HM's request id: the ``X-Request-Id`` header, else the body's ``request_id``.

        Read on demand (a header lookup and a byte search), so answers nobody asks about
        cost nothing.
        """
        header = self.headers.get("X-Request-Id")
        if header:
            return header
        body = self.body
        at = body.find(_BODY_KEY)
        if at < 0:
            return None
        # "request_id" : "value" -- JSON allows spaces around the colon
        colon = body.find(b":", at + len(_BODY_KEY), at + len(_BODY_KEY) + 8)
        start = body.find(b'"', colon + 1, colon + 8) if colon > 0 else -1
        if start < 0:
            return None
        end = body.find(b'"', start + 1, start + 200)
        return body[start + 1:end].decode("utf-8", "replace") if end > 0 else None
