"""The token endpoint's logic: the application's credentials, assertion checks, bearer tokens.

Assertions are verified for real (ES256 signature with the registered public key, ``typ``,
``ver``, ``iss``, ``aud``, ``jti`` replay, ``iat`` window) so a client bug in any of them shows
up here as HM's ``400 invalid_request`` instead of passing silently. Issued access tokens are
ES256 JWTs signed with the emulator's own key; verifying one costs a dict lookup once it has
been seen, so the token check never dominates a benchmark.
"""

from __future__ import annotations

import base64
import math
import random
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

__all__ = ["ASSERTION_TYPE", "SCOPE", "AuthState", "TokenError"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "fleet:clearance vehicle:eligibility-check vehicle:data"


def _derived_key(rng: random.Random) -> ECKey:
    """A P-256 private key from ``rng`` (a throwaway key of a local emulator, never real)."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    private = ec.derive_private_key(rng.randrange(1, order), ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key: ECKey = ECKey.import_key(pem)
    return key


class TokenError(Exception):
    """A refused token request; ``description`` goes into ``error_description``."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class AuthState:
    """Credentials of the one emulated application, and the tokens issued to it."""

    def __init__(self, *, client_id: str | None = None, client_secret: str | None = None,
                 seed: int | None = None) -> None:
        # With a seed, the application's credentials (ids, secret, key pair) are derived from
        # it, so a restarted emulator accepts what a user exported before; explicit values win.
        rng = random.Random(f"hm-emulator-credentials:{seed}") if seed is not None else None
        self.client_id = client_id or (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)) if rng else str(uuid.uuid4()))
        self.client_secret = client_secret or (
            base64.urlsafe_b64encode(rng.randbytes(24)).decode() if rng
            else secrets.token_urlsafe(24))
        self.key_id = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) if rng
                       else str(uuid.uuid4()))
        self.key_inserted_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        self._app_key = _derived_key(rng) if rng else ECKey.generate_key("P-256", private=True)
        self.private_key_pem: str = self._app_key.as_pem(private=True).decode()
        self._public_key = ECKey.import_key(self._app_key.as_pem(private=False))
        self._server_key = ECKey.generate_key("P-256", private=True)
        #: token string -> monotonic expiry; the authoritative list of live tokens.
        self._tokens: dict[str, float] = {}
        self._generation = 0
        #: jti -> wall time after which it may be forgotten (it would fail the iat check anyway).
        self._seen_jti: dict[str, float] = {}

    # -- token endpoint -----------------------------------------------------------------
    def issue(
        self, params: Mapping[str, object], *, audiences: tuple[str, ...], lifetime: float,
        iat_window: float,
    ) -> IssuedToken:
        """Check a token request (already parsed from JSON or a form) and issue a token."""
        missing = [
            name for name in ("client_id", "grant_type")
            if not isinstance(params.get(name), str) or not params.get(name)
        ]
        has_secret = bool(params.get("client_secret"))
        has_assertion = bool(params.get("client_assertion"))
        if not has_secret and not has_assertion:
            missing.append("client_secret")
        if missing:
            raise TokenError(", ".join(f"{name} can't be blank" for name in missing))
        if params["grant_type"] != "client_credentials":
            raise TokenError("grant_type is invalid")
        if params["client_id"] != self.client_id:
            raise TokenError("client_id is invalid")
        if has_assertion:
            if params.get("client_assertion_type") != ASSERTION_TYPE:
                raise TokenError("client_assertion_type is invalid")
            assertion = params["client_assertion"]
            if not isinstance(assertion, str):
                raise TokenError("client_assertion is invalid")
            self._check_assertion(assertion, audiences=audiences, iat_window=iat_window)
        else:
            secret = params["client_secret"]
            if not isinstance(secret, str) or not secrets.compare_digest(
                secret.encode(), self.client_secret.encode()
            ):
                raise TokenError("client_secret is invalid")
        return self._mint(lifetime)

    def _check_assertion(
        self, assertion: str, *, audiences: tuple[str, ...], iat_window: float
    ) -> None:
        try:
            token = jwt.decode(assertion, self._public_key, algorithms=["ES256"])
        except (JoseError, ValueError, TypeError):
            raise TokenError("client_assertion is invalid") from None
        if str(token.header.get("typ", "")).upper() != "JWT":
            raise TokenError("client_assertion is invalid: typ must be JWT")
        claims = token.claims
        if claims.get("ver") != 2:
            raise TokenError("client_assertion is invalid: ver must be 2")
        if claims.get("iss") != self.key_id:
            raise TokenError("client_assertion is invalid: iss does not match a key")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a.rstrip("/") in audiences for a in auds):
            raise TokenError("client_assertion is invalid: aud is invalid")
        iat = claims.get("iat")
        now = time.time()
        if not isinstance(iat, (int, float)) or isinstance(iat, bool):
            raise TokenError("client_assertion is invalid: iat is missing")
        if abs(now - iat) > iat_window:
            raise TokenError("client_assertion is expired")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise TokenError("client_assertion is invalid: jti is missing")
        self._forget_old_jti(now)
        if jti in self._seen_jti:
            raise TokenError("client_assertion is invalid: jti has already been used")
        self._seen_jti[jti] = now + 2 * iat_window

    def _forget_old_jti(self, now: float) -> None:
        if len(self._seen_jti) > 10_000:
            for key in [k for k, until in self._seen_jti.items() if until < now]:
                del self._seen_jti[key]

    def _mint(self, lifetime: float) -> IssuedToken:
        now = time.time()
        claims = {
            "iat": int(now),
            "exp": math.ceil(now + lifetime),
            "iss": "hm-async-emulator/v1/auth_tokens",
            "sub": self.client_id,
            "scope": SCOPE,
            "ver": 1,
            "jti": str(uuid.uuid4()),
            "gen": self._generation,
            "x_exp": now + lifetime,  # exact expiry; ``exp`` is rounded up to whole seconds
        }
        token = jwt.encode({"alg": "ES256", "typ": "JWT"}, claims, self._server_key)
        mono = time.monotonic()
        if len(self._tokens) > 10_000:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > mono}
        self._tokens[token] = mono + lifetime
        return IssuedToken(access_token=token, expires_in=max(1, math.floor(lifetime)))

    # -- bearer check --------------------------------------------------------------------
    def check_bearer(self, header: str | None) -> str | None:
        """``None`` when the header carries a live token, else the 401 detail to answer."""
        if not header or header[:7].lower() != "bearer ":
            return "Missing or invalid authorization header"
        token = header[7:].strip()
        expiry = self._tokens.get(token)
        if expiry is None:
            # Not one we know: still verify it properly, so a token that is well formed and
            # signed by us (e.g. issued before a restart of this object) is judged on merit.
            if not self._verify_foreign(token):
                return "Invalid token"
            expiry = self._tokens[token]
        if time.monotonic() >= expiry:
            return "Invalid token"
        return None

    def _verify_foreign(self, token: str) -> bool:
        try:
            decoded = jwt.decode(token, self._server_key, algorithms=["ES256"])
        except (JoseError, ValueError, TypeError):
            return False
        claims = decoded.claims
        exp = claims.get("x_exp")
        if claims.get("gen") != self._generation or not isinstance(exp, (int, float)):
            return False
        remaining = exp - time.time()
        if remaining <= 0:
            return False
        self._tokens[token] = time.monotonic() + remaining
        return True

    def invalidate_tokens(self) -> None:
        """Make every token issued so far answer 401 "Invalid token"."""
        self._tokens.clear()
        self._generation += 1
