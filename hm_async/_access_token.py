"""``AccessToken``: an issued bearer token, the value the token provider, the policy loop
and any token store pass around.

A module of its own, below the token provider, so that a token store (the seam under
:class:`~hm_async._tokens.TokenProvider`) can name the token type without importing the
provider that imports it.
"""

from __future__ import annotations

__all__ = ["AccessToken"]


class AccessToken:
    """An issued bearer token. Immutable; its repr never shows the value.

    ``expires_at`` is on the provider's clock (monotonic by default), counted from when the
    token request was sent. ``generation`` numbers the tokens of one provider from 1.
    """

    __slots__ = ("authorization", "expires_at", "generation", "issued_at", "scope", "value")

    value: str
    authorization: str
    generation: int
    issued_at: float
    expires_at: float
    scope: str | None

    def __init__(self, value: str, *, generation: int, issued_at: float, expires_at: float,
                 scope: str | None = None) -> None:
        set_ = object.__setattr__
        set_(self, "value", value)
        set_(self, "authorization", "Bearer " + value)
        set_(self, "generation", generation)
        set_(self, "issued_at", issued_at)
        set_(self, "expires_at", expires_at)
        set_(self, "scope", scope)

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AccessToken is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("AccessToken is immutable")

    def __repr__(self) -> str:
        return (f"AccessToken(generation={self.generation}, expires_at={self.expires_at:.3f}, "
                f"scope={self.scope!r}, value=<redacted>)")

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("AccessToken cannot be pickled (it holds a secret)")
