"""Where the CLI finds its credentials and server, and the exit codes it answers with.

Kept free of typer and rich so the rules can be tested (and reused by scripts) without the
``cli`` extra. Sources, strongest first: command-line flags, the ``--credentials`` JSON file,
environment variables. The first source that holds a secret (client secret or private key)
decides which kind of credentials is used, so a stray ``HM_CLIENT_SECRET`` in the shell
never mixes with a key given on the command line. Both kinds in flags or in the environment
is refused as ambiguous; a credentials file holding both (the emulator's ``--json`` line)
uses its client secret.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._credentials import Credentials, CredentialsError, credentials_from_env
from ._errors import AuthenticationError, HMError

__all__ = ["CliSettings", "ExitCode", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """Process exit codes of ``hm-async`` (also listed in ``--help`` and the docs)."""

    OK = 0
    #: some VINs failed (poll), or HM refused some vehicles (clearance request)
    PARTIAL_FAILURE = 1
    #: unknown option, malformed VIN or brand, unreadable input file, port in use
    USAGE = 2
    #: missing or malformed credentials, token refused
    AUTH = 3
    #: any other API or network failure
    API = 4
    #: the output could not be written (disk full, I/O error)
    OUTPUT = 5
    #: a bug in hm-async (reported in one line, please file it)
    INTERNAL = 70
    #: Ctrl-C or SIGTERM (what was written so far is complete)
    INTERRUPTED = 130
    #: the reader of the output went away (``| head``), as if killed by SIGPIPE
    BROKEN_PIPE = 141


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an error that ended a command."""
    if isinstance(exc, (CredentialsError, AuthenticationError)):
        # A 401 "consent removed" is a PermissionDeniedError, not an AuthenticationError.
        return ExitCode.AUTH
    if isinstance(exc, HMError):
        return ExitCode.API
    if isinstance(exc, ValueError):  # a malformed VIN, brand or option value
        return ExitCode.USAGE
    return ExitCode.API


_MAX_FILE_BYTES = 1024 * 1024

#: Keys read from a ``--credentials`` file, by the environment variable they stand for.
#: The file may be the console's private-key download, the emulator's ``--json`` line or a
#: hand-written ``{"client_id": ..., "client_secret": ...}``.
_FILE_KEYS: dict[str, tuple[str, ...]] = {
    "HM_CLIENT_ID": ("client_id",),
    "HM_CLIENT_SECRET": ("client_secret",),
    "HM_PRIVATE_KEY": ("private_key",),
    "HM_KEY_ID": ("key_id", "id"),
}
_SECRET_VARS = ("HM_CLIENT_SECRET", "HM_PRIVATE_KEY", "HM_PRIVATE_KEY_FILE")


@dataclass
class CliSettings:
    """What the global options said; secrets stay out of the repr."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    key_id: str | None = None
    credentials_file: str | None = None
    environment: str = "sandbox"
    base_url: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def _file_values(self) -> dict[str, str]:
        if not self.credentials_file:
            return {}
        where = f"credentials file {self.credentials_file!r}"
        try:
            raw = Path(self.credentials_file).read_bytes()[:_MAX_FILE_BYTES]
        except OSError as exc:
            raise CredentialsError(
                f"cannot read {where}: {exc.strerror or type(exc).__name__}") from None
        try:
            doc: Any = json.loads(raw)
        except ValueError:
            raise CredentialsError(f"{where} is not JSON") from None
        if not isinstance(doc, dict):
            raise CredentialsError(f"{where} is not a JSON object")
        out: dict[str, str] = {}
        for var, keys in _FILE_KEYS.items():
            for key in keys:
                value = doc.get(key)
                if isinstance(value, str) and value.strip():
                    out[var] = value
                    break
        for key in ("base_url", "url"):
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                out["HM_BASE_URL"] = value
                break
        return out

    def _sources(self) -> list[tuple[str, dict[str, str]]]:
        flags = {var: value for var, value in (
            ("HM_CLIENT_ID", self.client_id), ("HM_CLIENT_SECRET", self.client_secret),
            ("HM_PRIVATE_KEY_FILE", self.private_key_file), ("HM_KEY_ID", self.key_id),
            ("HM_BASE_URL", self.base_url),
        ) if value}
        env = {var: self.environ[var] for var in (
            "HM_CLIENT_ID", "HM_CLIENT_SECRET", "HM_PRIVATE_KEY_FILE", "HM_PRIVATE_KEY",
            "HM_KEY_ID", "HM_BASE_URL",
        ) if self.environ.get(var, "").strip()}
        return [("flags", flags), ("credentials file", self._file_values()),
                ("environment", env)]

    def resolve(self) -> tuple[Credentials, str | None]:
        """(credentials, base_url or None for the named environment)."""
        sources = self._sources()

        def first(var: str) -> str | None:
            return next((values[var] for _, values in sources if var in values), None)

        chosen: dict[str, str] = {}
        for name, values in sources:
            if any(v in values for v in _SECRET_VARS):
                chosen = {v: values[v] for v in _SECRET_VARS if v in values}
                if name == "credentials file" and "HM_CLIENT_SECRET" in chosen:
                    # e.g. the emulator's --json line, which lists both kinds
                    chosen = {"HM_CLIENT_SECRET": chosen["HM_CLIENT_SECRET"]}
                if "HM_CLIENT_SECRET" in chosen and len(chosen) > 1:
                    raise CredentialsError(
                        f"{name}: both a client secret and a private key are set; keep one")
                break
        merged = dict(chosen)
        client_id = first("HM_CLIENT_ID")
        if client_id:
            merged["HM_CLIENT_ID"] = client_id
        key_id = first("HM_KEY_ID")
        if key_id and "HM_CLIENT_SECRET" not in merged:
            merged["HM_KEY_ID"] = key_id
        if not client_id:
            raise CredentialsError(
                "no client id: pass --client-id, set HM_CLIENT_ID, or use --credentials FILE")
        if not chosen:
            raise CredentialsError(
                "no secret: pass --client-secret or --private-key-file, set HM_CLIENT_SECRET "
                "or HM_PRIVATE_KEY_FILE, or use --credentials FILE")
        return credentials_from_env(merged), first("HM_BASE_URL")
