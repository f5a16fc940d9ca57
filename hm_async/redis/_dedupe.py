"""``RedisDedupeWindow``: stream ``message_id``\\ s seen by any worker, for at-least-once push.

Implements the stream package's ``DedupeWindow`` protocol (``claim`` / ``done`` /
``release`` / ``aclose``) with one key per message:

* ``claim`` -- ``SET <prefix><id> p:<worker> NX EX in_progress_ttl``: the first worker to
  claim a message processes it; every other claim (a redelivery to any worker) is a
  duplicate while the key lives.
* ``done`` -- the key becomes ``d`` with ``EX seen_ttl`` (the dedupe window), but only if
  it is still this worker's claim (compare-and-set in Lua).
* ``release`` -- the consumer failed or the stream closed before ``done``: delete the key
  if it is still ours (compare-and-delete), so a redelivery is processed.

A worker that dies between ``claim`` and ``done`` cannot release: its claim expires after
``in_progress_ttl`` (default 30 s), after which a redelivery is processed by another worker.
Keep ``in_progress_ttl`` above the longest time a consumer needs for one message.

Redis lost mid-run: ``on_redis_error="degrade"`` (default) goes on with an in-process
window for this worker (one WARNING; duplicates across workers may then pass), ``"fail"``
raises :class:`~hm_async.SharedStateError`.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from ._link import REDIS_ERRORS, OnRedisError, RedisLink, SharesRedis

__all__ = ["RedisDedupeWindow"]

_DONE = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'EX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: Message ids longer than this are hashed into the key (ids are UUIDs in practice).
MAX_ID_IN_KEY = 128


class RedisDedupeWindow(SharesRedis):
    """Shared dedupe window; see the module docstring."""

    def __init__(self, url: str, *, seen_ttl: float = 24 * 3600.0,
                 in_progress_ttl: float = 30.0, key_prefix: str = "hm_async:dedupe:",
                 on_redis_error: OnRedisError = "degrade") -> None:
        if not (seen_ttl >= 1 and in_progress_ttl >= 1):
            raise ValueError("seen_ttl and in_progress_ttl must be at least 1 second")
        self._link = RedisLink(url, on_redis_error=on_redis_error, what="dedupe window")
        self._seen_ttl = int(seen_ttl)
        self._in_progress_ttl = int(in_progress_ttl)
        self._prefix = key_prefix
        self._mine = "p:" + secrets.token_hex(8)
        self._done = self._link.client.register_script(_DONE)
        self._release = self._link.client.register_script(_RELEASE)
        self._local: dict[str, float] = {}  # degraded: message id -> monotonic expiry

    def _key(self, message_id: str) -> str:
        if len(message_id) > MAX_ID_IN_KEY:
            message_id = "h:" + hashlib.blake2b(message_id.encode(), digest_size=16).hexdigest()
        return self._prefix + message_id

    async def claim(self, message_id: str) -> bool:
        """True the first time any worker sees ``message_id`` (now in progress here)."""
        if not self._link.degraded:
            try:
                ok = await self._link.client.set(self._key(message_id), self._mine, nx=True,
                                                 ex=self._in_progress_ttl)
                self._link.answered()
                return bool(ok)
            except REDIS_ERRORS as exc:
                self._link.lost(exc)
        return self._claim_locally(message_id, self._in_progress_ttl)

    async def done(self, message_id: str) -> None:
        """The consumer finished: ``message_id`` stays a duplicate for ``seen_ttl``."""
        if not self._link.degraded:
            try:
                await self._done(keys=[self._key(message_id)],
                                 args=[self._mine, self._seen_ttl])
                return
            except REDIS_ERRORS as exc:
                self._link.lost(exc)
        self._local[message_id] = time.monotonic() + self._seen_ttl

    async def release(self, message_id: str) -> None:
        """Forget our claim (the consumer failed), so a redelivery is processed."""
        if not self._link.degraded:
            try:
                await self._release(keys=[self._key(message_id)], args=[self._mine])
                return
            except REDIS_ERRORS as exc:
                self._link.lost(exc)
        self._local.pop(message_id, None)

    def _claim_locally(self, message_id: str, ttl: float) -> bool:
        now = time.monotonic()
        if len(self._local) > 100_000:
            self._local = {k: t for k, t in self._local.items() if t > now}
        expiry = self._local.get(message_id)
        if expiry is not None and expiry > now:
            return False
        self._local[message_id] = now + ttl
        return True



    def __repr__(self) -> str:
        return (f"RedisDedupeWindow(url={self._link.url!r}, seen_ttl={self._seen_ttl}, "
                f"in_progress_ttl={self._in_progress_ttl}, degraded={self.degraded})")
