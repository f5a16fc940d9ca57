"""One Redis connection pool per shared object, and what happens when Redis fails.

Every Redis-backed part (token store, limiter, dedupe window) holds a :class:`RedisLink`:

* **at start** (:meth:`RedisLink.connect`) Redis must answer a PING, or the caller gets a
  :class:`~hm_async.SharedStateError` naming the URL *without* its password: a worker that
  cannot coordinate must not start pretending it can.
* **mid-run** (:meth:`RedisLink.lost`) the policy decides: ``"degrade"`` (the default)
  logs one WARNING and the part continues on in-process state for the rest of its life
  (a fleet job keeps going; ``degraded`` then says so); ``"fail"`` raises
  :class:`~hm_async.SharedStateError` for the affected call.

Commands time out after ``socket_timeout`` (default 2 s) and are retried once after 50 ms
by redis-py: a Redis that is gone costs an affected call about that much, never a hang.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import RedisError
from yarl import URL

from .._errors import SharedStateError

__all__ = ["REDIS_ERRORS", "OnRedisError", "RedisLink", "SharesRedis", "redact_url"]

logger = logging.getLogger("hm_async")

OnRedisError = Literal["degrade", "fail"]

#: What a lost or misbehaving Redis raises through redis-py (OSError: a refused socket
#: that redis-py did not wrap).
REDIS_ERRORS = (RedisError, OSError)

DEFAULT_SOCKET_TIMEOUT = 2.0


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (the user name stays: it helps)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "<unparsable Redis URL>"
    if parsed.password is not None:
        parsed = parsed.with_password("***")
    query = parsed.query
    if "password" in query:
        parsed = parsed.update_query(password="***")
    return str(parsed)


class RedisLink:
    """A ``redis.asyncio`` client for one shared part, with the fault policy applied."""

    def __init__(self, url: str, *, on_redis_error: OnRedisError = "degrade",
                 what: str, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> None:
        if on_redis_error not in ("degrade", "fail"):
            raise ValueError('on_redis_error must be "degrade" or "fail"')
        self.url = redact_url(url)
        self._secret = _password_of(url)
        self.on_redis_error = on_redis_error
        self.what = what
        self.degraded = False
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(ConstantBackoff(0.05), 1), decode_responses=False,
        )
        self._connected = False

    async def connect(self) -> None:
        """PING once; a Redis that does not answer is a clear error, not a later surprise."""
        if self._connected:
            return
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            raise SharedStateError(
                f"cannot reach Redis at {self.url} for the shared {self.what}: "
                f"{type(exc).__name__}: {_safe(exc, self._secret)}") from None
        self._connected = True

    def answered(self) -> None:
        """Redis answered a command: later failures are mid-run losses, not start failures."""
        self._connected = True

    def lost(self, exc: BaseException) -> None:
        """Redis failed mid-run: degrade (one WARNING) or raise SharedStateError.

        Before Redis ever answered this is a start failure, which always raises.
        """
        if not self._connected:
            raise SharedStateError(
                f"cannot reach Redis at {self.url} for the shared {self.what}: "
                f"{type(exc).__name__}: {_safe(exc, self._secret)}") from None
        if self.on_redis_error == "fail":
            raise SharedStateError(
                f"Redis at {self.url} failed for the shared {self.what}: "
                f"{type(exc).__name__}: {_safe(exc, self._secret)}") from None
        if not self.degraded:
            self.degraded = True
            logger.warning(
                "Redis at %s failed (%s); this worker goes on with its own %s "
                "(degraded)", self.url, type(exc).__name__, self.what)

    async def aclose(self) -> None:
        await self.client.aclose()


def _password_of(url: str) -> str | None:
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    return parsed.password or parsed.query.get("password") or None


def _safe(exc: BaseException, password: str | None) -> str:
    """The exception text; redis-py does not put the password in it, but be sure."""
    text = str(exc)
    return text.replace(password, "***") if password else text


_Self = TypeVar("_Self", bound="SharesRedis")


class SharesRedis:
    """The lifecycle every shared-state class (token store, limiter, dedupe window) has in
    common: a :class:`RedisLink` in ``_link``, ``connect()`` at start, ``degraded`` once
    Redis was lost, ``aclose()``, and ``async with``."""

    _link: RedisLink

    @property
    def degraded(self) -> bool:
        """True once Redis was lost and this process went on with in-process state."""
        return self._link.degraded

    async def connect(self) -> None:
        """Check that Redis answers (raises SharedStateError naming the URL otherwise)."""
        await self._link.connect()

    async def aclose(self) -> None:
        await self._link.aclose()

    async def __aenter__(self: _Self) -> _Self:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
