"""``Response``: one fully read HTTP answer, the value every lane hands to the policy loop.

Both lanes build it (the aiohttp lane from a ``ClientResponse``, the GET lane from its
parser), so the policy loop, the error parser and the resources never see a lane's types.
"""

from __future__ import annotations

from multidict import CIMultiDictProxy

__all__ = ["Response"]


class Response:
    """A fully read HTTP answer: status, headers and body bytes (both request paths)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
