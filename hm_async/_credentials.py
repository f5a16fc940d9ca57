"""The application's credentials, and the body of the token request built from them.

HM issues access tokens for two kinds of credentials: a client secret, or a private key from
the console that signs a short-lived ES256 ``client_assertion`` (RFC 7523). Both are parsed
and checked when constructed, so a malformed key fails at start-up with a message naming
what is wrong, not minutes later inside a token refresh. Secrets live in private slots and
never appear in a repr, a log line or an exception message; errors name fields, variables
and files, never their values.

Signing is done inline on the event loop: an ES256 signature with joserfc costs ~40 µs
(measured on the build machine) and happens once per token, i.e. every few minutes; handing
it to a thread would cost more than it saves.
"""

from __future__ import annotations

import abc
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from ._errors import CredentialsError

__all__ = [
    "ASSERTION_TYPE",
    "ClientCredentials",
    "Credentials",
    "CredentialsError",
    "PrivateKeyCredentials",
    "credentials_from_env",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_REDACTED = "<redacted>"
#: The console's key file is a few hundred bytes; refuse to slurp anything absurd.
_MAX_KEY_FILE_BYTES = 1024 * 1024


def _require_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise CredentialsError(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise CredentialsError(f"{name} is empty")
    return value


class Credentials(abc.ABC):
    """What the token provider needs: a client id and a fresh token-request body."""

    __slots__ = ("_client_id",)

    def __init__(self, client_id: str) -> None:
        self._client_id = _require_text(client_id, "client_id")

    @property
    def client_id(self) -> str:
        return self._client_id

    @abc.abstractmethod
    async def token_request_body(self, base_url: str) -> dict[str, str]:
        """The JSON body of ``POST {base_url}/v1/access_tokens``; new for every attempt."""

    def __str__(self) -> str:
        return repr(self)

    def __reduce__(self) -> Any:
        # Pickling would copy the secret into whatever stores the pickle; refuse it.
        raise TypeError(f"{type(self).__name__} cannot be pickled (it holds a secret)")


class ClientCredentials(Credentials):
    """Client id and client secret, sent as they are to the token endpoint."""

    __slots__ = ("_client_secret",)

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id)
        self._client_secret = _require_text(client_secret, "client_secret")

    async def token_request_body(self, base_url: str) -> dict[str, str]:  # noqa: ARG002
        return {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._client_id!r}, client_secret={_REDACTED})"


def _load_private_key(private_key: str | bytes) -> ECKey:
    """Parse a PEM private key and insist on what ES256 needs: an EC P-256 private key."""
    if isinstance(private_key, bytes):
        try:
            private_key = private_key.decode("ascii")
        except UnicodeDecodeError:
            raise CredentialsError("private_key is not PEM text (it has non-ASCII bytes)") from None
    text = _require_text(private_key, "private_key")
    if "\\n" in text and "\n" not in text:
        # A PEM squeezed into one line of an environment variable or .env file.
        text = text.replace("\\n", "\n")
    if "-----BEGIN" not in text:
        raise CredentialsError(
            "private_key is not a PEM key (no '-----BEGIN' line); pass the 'private_key' "
            "value of the console's JSON download, or use PrivateKeyCredentials.from_file()")
    if "ENCRYPTED" in text.split("\n", 1)[0]:
        raise CredentialsError("private_key is encrypted; pass the unencrypted PKCS#8 PEM")
    try:
        key: ECKey = ECKey.import_key(text)
    except JoseError:
        # joserfc loaded it fine but it is RSA, Ed25519, ... (never echo the key itself).
        raise CredentialsError(
            "private_key is not an elliptic-curve key; HM keys are EC P-256 (ES256)") from None
    except (ValueError, TypeError) as exc:
        raise CredentialsError(
            f"private_key could not be parsed as a PEM private key ({type(exc).__name__})"
        ) from None
    if not key.is_private:
        raise CredentialsError("private_key is a public key; the private key is needed")
    if key.curve_name != "P-256":
        raise CredentialsError(
            f"private_key is on curve {key.curve_name}; ES256 needs a P-256 key")
    return key


class PrivateKeyCredentials(Credentials):
    """Client id plus the console's private key, which signs a fresh assertion per request.

    ``private_key`` is the PKCS#8 PEM (SEC1 ``EC PRIVATE KEY`` is accepted too), ``key_id``
    the key's ``id`` from the console. ``wall_clock`` gives ``iat`` (seconds since the epoch;
    HM checks it against its own clock, so this one is wall time, not monotonic).
    """

    __slots__ = ("_key", "_key_id", "_wall_clock")

    def __init__(self, client_id: str, private_key: str | bytes, key_id: str, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(client_id)
        self._key_id = _require_text(key_id, "key_id")
        self._key = _load_private_key(private_key)
        self._wall_clock = wall_clock

    @property
    def key_id(self) -> str:
        return self._key_id

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, client_id: str) -> PrivateKeyCredentials:
        """Load the console's JSON download (``private_key``, ``id``, ``inserted_at``)."""
        p = Path(path).expanduser()
        try:
            with p.open("rb") as fh:
                raw = fh.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise CredentialsError(
                f"cannot read private key file {str(p)!r}: {exc.strerror or type(exc).__name__}"
            ) from None
        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise CredentialsError(f"private key file {str(p)!r} is too large to be a key file")
        return cls._from_document(raw, where=f"private key file {str(p)!r}", client_id=client_id)

    @classmethod
    def _from_document(cls, raw: bytes | str, *, where: str, client_id: str,
                       key_id: str | None = None) -> PrivateKeyCredentials:
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CredentialsError(
                f"{where} is not JSON; expected the console's download with "
                f"'private_key' and 'id'") from None
        if not isinstance(doc, dict):
            raise CredentialsError(f"{where} is not a JSON object")
        missing = [f for f in ("private_key", "id") if not doc.get(f)]
        if key_id is not None and "id" in missing:
            missing.remove("id")
        if missing:
            raise CredentialsError(f"{where} lacks {' and '.join(repr(m) for m in missing)}")
        kid = key_id if key_id is not None else doc["id"]
        try:
            return cls(client_id=client_id, private_key=doc["private_key"], key_id=kid)
        except CredentialsError as exc:
            raise CredentialsError(f"{where}: {exc}") from None

    async def token_request_body(self, base_url: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(base_url),
        }

    def assertion(self, base_url: str) -> str:
        """A freshly signed ``client_assertion`` for the API at ``base_url``."""
        claims = {
            "ver": 2,
            "iss": self._key_id,
            "aud": base_url.rstrip("/") + "/v1",
            "jti": str(uuid.uuid4()),
            "iat": int(self._wall_clock()),
        }
        return jwt.encode({"alg": "ES256", "typ": "JWT"}, claims, self._key, algorithms=["ES256"])

    def __repr__(self) -> str:
        return (f"PrivateKeyCredentials(client_id={self._client_id!r}, "
                f"key_id={self._key_id!r}, private_key={_REDACTED})")


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    """Credentials from ``HM_CLIENT_ID`` plus either ``HM_CLIENT_SECRET`` or a private key.

    The private key comes from ``HM_PRIVATE_KEY_FILE`` (the console's JSON download, or a
    bare PEM file) or ``HM_PRIVATE_KEY`` (the JSON document or the PEM itself, ``\\n``
    escapes allowed); ``HM_KEY_ID`` is needed with a bare PEM and overrides the file's ``id``.
    Empty variables count as unset. Ambiguous settings are refused rather than guessed.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() or None if value is not None else None

    client_id = get("HM_CLIENT_ID")
    secret = get("HM_CLIENT_SECRET")
    key_file = get("HM_PRIVATE_KEY_FILE")
    key_text = get("HM_PRIVATE_KEY")
    key_id = get("HM_KEY_ID")
    if client_id is None:
        raise CredentialsError("HM_CLIENT_ID is not set")
    if key_file is not None and key_text is not None:
        raise CredentialsError("set HM_PRIVATE_KEY_FILE or HM_PRIVATE_KEY, not both")
    has_key = key_file is not None or key_text is not None
    if secret is not None and has_key:
        raise CredentialsError(
            "set HM_CLIENT_SECRET or a private key (HM_PRIVATE_KEY_FILE / HM_PRIVATE_KEY), "
            "not both")
    if secret is not None:
        return ClientCredentials(client_id=client_id, client_secret=secret)
    if not has_key:
        raise CredentialsError(
            "no secret found: set HM_CLIENT_SECRET, or HM_PRIVATE_KEY_FILE / HM_PRIVATE_KEY")
    if key_file is not None:
        where = f"HM_PRIVATE_KEY_FILE ({key_file!r})"
        try:
            with Path(key_file).expanduser().open("rb") as fh:
                raw = fh.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise CredentialsError(
                f"cannot read {where}: {exc.strerror or type(exc).__name__}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialsError(f"{where} is neither JSON nor PEM text") from None
    else:
        where = "HM_PRIVATE_KEY"
        text = key_text or ""
    if text.lstrip().startswith("{"):
        return PrivateKeyCredentials._from_document(text, where=where, client_id=client_id,
                                                    key_id=key_id)
    if key_id is None:
        raise CredentialsError(f"HM_KEY_ID is not set (needed with the bare PEM in {where})")
    try:
        return PrivateKeyCredentials(client_id=client_id, private_key=text, key_id=key_id)
    except CredentialsError as exc:
        raise CredentialsError(f"{where}: {exc}") from None
