"""How ``hm-async`` words a failure: one line in the CLI's language, never a traceback.

The library's messages are written for Python callers: they may name an aiohttp exception
class, say ``ssl:default`` for a plain-HTTP URL, or advise calling a Python function. The
CLI shows the same facts the way a shell user thinks of them::

    cannot connect to 127.0.0.1:8099: connection refused
    cannot resolve host api.example.invalid
    TLS certificate of 127.0.0.1:8443 is not trusted: self-signed certificate

Kept free of typer and rich, like :mod:`hm_async._cli_config`, so the wording is testable.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Iterator

import aiohttp

from ._credentials import CredentialsError
from ._errors import HMError, HMTimeoutError, RetryBudgetExhaustedError, TransportError

__all__ = ["OutputError", "describe"]

#: Advice written for Python callers, and what a CLI user should read instead.
_CLI_WORDING = (
    ("or use PrivateKeyCredentials.from_file()",
     "or give the console's JSON download with --private-key-file or --credentials"),
)


class OutputError(Exception):
    """Writing results failed: the disk is full, the device refused, or the reader left.

    ``broken_pipe`` tells the last case apart (``hm-async poll ... | head -1``): it is not a
    failure of the data, and it has its own exit code.
    """

    def __init__(self, where: str, exc: OSError) -> None:
        self.broken_pipe = isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE
        reason = "the reader closed the pipe" if self.broken_pipe else _strerror(exc)
        super().__init__(f"cannot write {where}: {reason}")


def _strerror(exc: OSError) -> str:
    """``connection refused`` rather than ``[Errno 111] Connect call failed (...)``."""
    if exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno).lower()
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc) or "failed"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network(exc: TransportError, origin: str | None) -> str | None:
    """The root cause of a transport failure in plain words, if one is recognised."""
    where = origin or "the server"
    for cause in _causes(exc):
        if isinstance(cause, aiohttp.ClientConnectorCertificateError):
            reason = getattr(cause.certificate_error, "verify_message", None) or "not trusted"
            return f"TLS certificate of {cause.host}:{cause.port} is not trusted: {reason}"
        if isinstance(cause, aiohttp.ClientConnectorError):
            if isinstance(cause.os_error, socket.gaierror):
                return f"cannot resolve host {cause.host}"
            if isinstance(cause.os_error, ssl.SSLError):
                return (f"TLS failure talking to {cause.host}:{cause.port}: "
                        f"{cause.os_error.reason or cause.os_error.strerror}")
            return f"cannot connect to {cause.host}:{cause.port}: {_strerror(cause.os_error)}"
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return f"{where} closed the connection without answering"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate of {where} is not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure talking to {where}: {cause.reason or cause.strerror}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host of {where}"
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
            return f"cannot connect to {where}: {_strerror(cause)}"
    return None


def describe(exc: BaseException, *, origin: str | None = None) -> str:
    """One line for ``exc`` as a CLI user should read it.

    ``origin`` (``host:port`` of the API) names the server when the cause does not.
    """
    if isinstance(exc, RetryBudgetExhaustedError) and exc.last_error is not None:
        return "gave up retrying, the API is failing: " + describe(exc.last_error,
                                                                    origin=origin)
    if isinstance(exc, HMTimeoutError):
        return f"timed out: {exc}"
    if isinstance(exc, TransportError):
        plain = _network(exc, origin)
        if plain is not None:
            return plain
    message = str(exc) or type(exc).__name__
    if isinstance(exc, CredentialsError):
        for python_advice, cli_advice in _CLI_WORDING:
            message = message.replace(python_advice, cli_advice)
    elif not isinstance(exc, (HMError, ValueError)):
        message = f"{type(exc).__name__}: {message}"
    return " ".join(message.split())
