"""Shared state for many worker processes, in Redis (extra ``hm-async[redis]``).

* :class:`RedisTokenStore` -- one access token per token life for every worker;
* :class:`RedisLimiter` -- per-brand limits that hold across all workers;
* :class:`RedisDedupeWindow` -- stream ``message_id``\\ s seen by any worker.

See ``docs/scale-out.md`` ("Running many workers").
"""

from __future__ import annotations

from .._errors import SharedStateError
from ._dedupe import RedisDedupeWindow
from ._limiter import RedisLimiter
from ._link import OnRedisError, redact_url
from ._token_store import RedisTokenStore

__all__ = ["OnRedisError", "RedisDedupeWindow", "RedisLimiter", "RedisTokenStore",
           "SharedStateError", "redact_url"]
