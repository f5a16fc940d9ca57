"""Where a :class:`~hm_async._tokens.TokenProvider` gets a new token from: the seam that lets
many worker processes share one token.

The provider decides *when* a token is needed (its soft and hard windows, backoff, 401
invalidation); the store decides *whether this process must ask HM for it* or can adopt
one another process already got. The default, :class:`MemoryTokenStore`, always asks: one
process, one provider, one token life, one request. :class:`hm_async.redis.RedisTokenStore`
shares the token through Redis.

Tokens cross the seam as :class:`~hm_async._tokens.AccessToken` on the provider's clock
(monotonic by default). A store that keeps tokens elsewhere stores the *remaining* lifetime
(e.g. as a Redis key TTL) and converts it back to the local clock when loading, so no two
processes ever compare wall clocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._access_token import AccessToken

__all__ = ["MemoryTokenStore", "TokenFetch", "TokenStore"]

#: Sends one token request to HM and returns the new token (the provider's ``_request_token``).
TokenFetch = Callable[[], Awaitable["AccessToken"]]


class TokenStore(Protocol):
    """Shared home of the access token. An implementation must keep these guarantees:

    * :meth:`obtain` returns a token that is *not* ``stale`` (compared by value) and still
      has life left on the caller's clock. It calls ``fetch`` at most once per call, and
      only when no usable newer token is available elsewhere; everything ``fetch`` raises
      propagates unchanged (the provider owns retries and backoff). A token that did not
      come from this call's ``fetch`` is returned with ``generation=0`` (the provider
      numbers it) and an ``expires_at`` no later than its real expiry on ``clock``. Of many
      processes that call ``obtain`` with the same ``stale`` token at the same time, one
      fetches and the others adopt its token (no stampede); if the fetching process dies,
      the others fetch after a bounded wait instead of waiting forever.
    * ``rejected=True`` means HM answered 401 for ``stale``: the store must forget exactly
      that token (never a newer one another process published meanwhile) and must not
      hand it out again. With ``rejected=False`` (a routine refresh ahead of expiry) the
      stale token stays usable by others until a newer one replaces it.
    * Tokens are kept apart by ``namespace`` (the API origin and client id): two
      applications sharing one Redis never see each other's token.
    * It stores the access token only: never the client secret, private key or assertion.
    * A store whose backend fails may fall back to fetching in-process (and then says so
      in ``degraded``), or raise an :class:`~hm_async.HMError`; it never hangs.
    """

    @property
    def degraded(self) -> bool:
        """True once the store has given up on its shared backend for this process."""
        ...

    async def obtain(self, fetch: TokenFetch, *, namespace: str, stale: AccessToken | None,
                     rejected: bool = False, clock: Callable[[], float]) -> AccessToken: ...

    async def aclose(self) -> None: ...


class MemoryTokenStore:
    """The in-process default: every refresh asks HM (the provider already single-flights)."""

    degraded = False

    async def obtain(self, fetch: TokenFetch, *, namespace: str, stale: AccessToken | None,
                     rejected: bool = False, clock: Callable[[], float]) -> AccessToken:
        del namespace, stale, rejected, clock  # one process: the provider's flight is enough
        return await fetch()

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return "MemoryTokenStore()"
