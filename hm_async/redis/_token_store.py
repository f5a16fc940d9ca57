"""``RedisTokenStore``: one access token for every worker process of an application.

Keys (``<prefix>`` is ``hm_async:token:`` plus a hash of the API origin and client id):

* ``<prefix>`` -- a hash ``{t: token, l: lifetime seconds, s: scope}`` whose key TTL (``PX``)
  is the token's *remaining* life minus a guard (2% of the life, at most 1 s). Remaining
  life, not an expiry instant: a reader converts it to its own monotonic clock as
  ``(clock reading taken before the read) + PTTL``, which errs early by the round trip, so
  no process ever compares wall clocks with another.
* ``<prefix>:lock`` -- ``SET NX PX`` by the one process fetching a new token, holding a
  random id; renewed every third of its ``lock_ttl`` (default 1 s) while the fetch runs,
  released by compare-and-delete. A holder that dies loses it within ``lock_ttl``.

:meth:`RedisTokenStore.obtain` runs one atomic script (``CLAIM``): if the stored token is
not the stale one, adopt it; if the stale one was rejected by a 401, delete it -- exactly it,
never a newer one; then try the lock. Whoever gets the lock fetches and publishes (``PUBLISH``
script: set the token, release the lock if still ours); the others poll ``CLAIM`` every
20-40 ms (jittered) until the new token is there or the lock is free. A refresh ahead of
expiry is started by the first process past its (jittered) soft window; the others find the
newer token when they pass theirs: one token request per token life, however many workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import secrets
from collections.abc import Callable

from .._token_store import TokenFetch
from .._tokens import AccessToken
from ._link import REDIS_ERRORS, OnRedisError, RedisLink, SharesRedis

__all__ = ["RedisTokenStore"]

_CLAIM = """
local t = redis.call('HGET', KEYS[1], 't')
if t and t ~= ARGV[1] then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl > 0 then
    return {1, t, redis.call('HGET', KEYS[1], 'l'), redis.call('HGET', KEYS[1], 's') or '', pttl}
  end
end
if t and t == ARGV[1] and ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {2} end
return {3, redis.call('PTTL', KEYS[2])}
"""

_PUBLISH = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 't', ARGV[1], 'l', ARGV[2], 's', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('GET', KEYS[2]) == ARGV[5] then redis.call('DEL', KEYS[2]) end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_ADOPT, _FETCH, _WAIT = 1, 2, 3
#: Waiters re-check every POLL_INTERVAL * (1..2) seconds: a token fetch takes tens of ms.
POLL_INTERVAL = 0.02
#: The key's TTL ends this share of the token's life (at most MAX_GUARD s) before expiry.
GUARD_FRACTION = 0.02
MAX_GUARD = 1.0
DEFAULT_LOCK_TTL = 1.0


class RedisTokenStore(SharesRedis):
    """A :class:`~hm_async._token_store.TokenStore` in Redis, shared by worker processes.

    ``url`` is a ``redis://`` or ``rediss://`` URL (use ``rediss://`` and an ACL user limited
    to ``key_prefix``: Redis then holds a live bearer token). ``on_redis_error`` is
    ``"degrade"`` (default: fetch in-process after one WARNING) or ``"fail"``.
    """

    def __init__(self, url: str, *, key_prefix: str = "hm_async:token:",
                 on_redis_error: OnRedisError = "degrade",
                 lock_ttl: float = DEFAULT_LOCK_TTL,
                 rand: Callable[[], float] = random.random) -> None:
        if not lock_ttl > 0:
            raise ValueError("lock_ttl must be a positive number of seconds")
        self._link = RedisLink(url, on_redis_error=on_redis_error, what="token")
        self._prefix = key_prefix
        self._lock_ms = max(1, round(lock_ttl * 1000))
        self._rand = rand
        client = self._link.client
        self._claim = client.register_script(_CLAIM)
        self._publish = client.register_script(_PUBLISH)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self.fetches = 0  # token requests this process made through the store
        self.adopted = 0  # tokens this process took from another one

    def _keys(self, namespace: str) -> list[str]:
        digest = hashlib.blake2b(namespace.encode(), digest_size=12).hexdigest()
        key = self._prefix + digest
        return [key, key + ":lock"]

    async def obtain(self, fetch: TokenFetch, *, namespace: str, stale: AccessToken | None,
                     rejected: bool = False, clock: Callable[[], float]) -> AccessToken:
        if self._link.degraded:
            return await fetch()
        await self._link.connect()
        keys = self._keys(namespace)
        me = secrets.token_hex(8)
        stale_value = stale.value if stale is not None else ""
        while True:
            before = clock()
            try:
                answer = await self._claim(
                    keys=keys, args=[stale_value, "1" if rejected else "0", me, self._lock_ms])
            except REDIS_ERRORS as exc:
                self._link.lost(exc)  # raises SharedStateError unless degrading
                return await fetch()
            kind = int(answer[0])
            if kind == _ADOPT:
                self.adopted += 1
                lifetime = float(answer[2])
                expires_at = before + int(answer[4]) / 1000.0
                scope = answer[3].decode() or None
                return AccessToken(answer[1].decode(), generation=0,
                                   issued_at=expires_at - lifetime, expires_at=expires_at,
                                   scope=scope)
            if kind == _FETCH:
                return await self._fetch_and_publish(fetch, keys, me, clock)
            # Another process is fetching: look again soon (jittered, so waiters spread).
            lock_left = max(int(answer[1]), 1) / 1000.0
            await asyncio.sleep(min(lock_left, POLL_INTERVAL * (1.0 + self._rand())))

    async def _fetch_and_publish(self, fetch: TokenFetch, keys: list[str], me: str,
                                 clock: Callable[[], float]) -> AccessToken:
        renewer = asyncio.create_task(self._keep_lock(keys[1], me),
                                      name="hm_async token lock renewal")
        try:
            token = await fetch()
        except BaseException:
            renewer.cancel()
            await asyncio.wait((renewer,))
            with contextlib.suppress(*REDIS_ERRORS):  # else it expires within lock_ttl
                await self._release(keys=[keys[1]], args=[me])
            raise
        renewer.cancel()
        await asyncio.wait((renewer,))
        self.fetches += 1
        lifetime = token.lifetime
        guard = min(MAX_GUARD, lifetime * GUARD_FRACTION)
        ttl_ms = int((token.expires_at - clock() - guard) * 1000)
        try:
            if ttl_ms > 0:
                await self._publish(keys=keys, args=[token.value, repr(lifetime),
                                                     token.scope or "", ttl_ms, me])
            else:
                await self._release(keys=[keys[1]], args=[me])
        except REDIS_ERRORS as exc:
            self._link.lost(exc)
        return token

    async def _keep_lock(self, lock_key: str, me: str) -> None:
        """Renew our lock while the fetch runs, so only a dead holder loses it."""
        try:
            while True:
                await asyncio.sleep(self._lock_ms / 3000.0)
                await self._renew(keys=[lock_key], args=[me, self._lock_ms])
        except REDIS_ERRORS:
            return  # Redis trouble shows up in the publish; the lock expires by itself



    def __repr__(self) -> str:
        return (f"RedisTokenStore(url={self._link.url!r}, key_prefix={self._prefix!r}, "
                f"degraded={self.degraded})")
