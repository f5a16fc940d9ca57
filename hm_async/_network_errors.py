"""The one place where a network exception becomes an hm_async error.

aiohttp's exceptions, the socket's ``OSError``\\ s, ``ssl`` errors and timeouts all arrive
here, from the aiohttp lane (writes and the token endpoint) and from the GET lane
(:mod:`hm_async._h1_pool`), and leave as a :class:`~hm_async.TransportError` whose ``kind``
says what happened, or an :class:`~hm_async.HMTimeoutError` naming the limit that fired
(httpx's ``map_httpcore_exceptions`` plays the same role). So callers never import aiohttp
to handle errors, every message has one format, and the policy loop decides about retries
from ``kind`` instead of from a lane's exception classes:

========== ============================================================ ==================
kind       meaning                                                      request sent?
========== ============================================================ ==================
connect    no connection (refused, unreachable, DNS)                    no
tls        TLS handshake failed                                         no
certificate the server's certificate is not trusted                     no
reset      the connection broke while the request was under way         maybe
closed     the server hung up before a complete answer                  maybe
protocol   the answer is not valid HTTP                                 yes
timeout    a configured time limit fired (:class:`HMTimeoutError`)      maybe
========== ============================================================ ==================

(``too_large`` and ``shutdown`` are raised where they happen: the lanes know them first.)
Messages name the method, path and host, never a header, token or body.
"""

from __future__ import annotations

import asyncio
import os
import ssl

import aiohttp

from ._config import Timeout
from ._errors import HMError, HMTimeoutError, TransportError

__all__ = ["NOT_SENT_KINDS", "map_network_error"]

#: Kinds of failure that prove the request never left: even a write may be sent again.
NOT_SENT_KINDS = frozenset({"connect", "tls", "certificate"})


def map_network_error(exc: BaseException, *, method: str, path: str, host: str | None,
                      port: int | None = None, limits: Timeout | None = None,
                      fired: str = "total", seconds: float | None = None,
                      connecting: bool = False, context: str = "") -> HMError:
    """The hm_async error for network exception ``exc`` raised by ``method path``.

    ``fired`` names the limit a bare ``TimeoutError`` stands for (aiohttp's own timeout
    classes say it themselves); its seconds come from ``limits``, else from ``seconds``.
    ``connecting`` marks an ``OSError`` raised while opening the connection. ``context``
    prefixes the message (e.g. "token request"). An :class:`HMError` is returned unchanged.
    """
    if isinstance(exc, HMError):
        return exc
    prefix = f"{context}: " if context else ""
    where = f"{method} {path}"
    which: str | None = None
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        which = "connect"
    elif isinstance(exc, aiohttp.SocketTimeoutError):
        which = "read"
    elif isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        which = fired
    if which is not None:
        if limits is not None:
            seconds = getattr(limits, which)
        what = f"{seconds} s without data" if which == "read" else f"{seconds} s"
        return HMTimeoutError(f"{prefix}{which} timeout ({what}) on {where}", timeout=which,
                              seconds=seconds)
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError)):
        return TransportError(f"{prefix}TLS failure talking to {host}: certificate not "
                              f"trusted: {_reason(exc)}", kind="certificate")
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return TransportError(f"{prefix}TLS failure talking to {host}: {_reason(exc)}",
                              kind="tls")
    if isinstance(exc, aiohttp.ClientConnectorError) or (connecting and isinstance(exc, OSError)):
        os_error = getattr(exc, "os_error", exc)
        return TransportError(f"{prefix}connection failure on {where}: cannot connect to "
                              f"{host}:{port}: {_reason(os_error)}", kind="connect")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        kind = "closed"
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        kind = "protocol"
    elif isinstance(exc, (aiohttp.ClientOSError, ConnectionError)):
        kind = "reset"
    else:
        kind = "other"
    return TransportError(f"{prefix}connection failure on {where}: {_reason(exc)}", kind=kind)


def _reason(exc: BaseException) -> str:
    """What went wrong, in words: ``connection refused``, not a class name, when possible."""
    errno = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and isinstance(errno, int) and errno > 0 and not isinstance(
            exc, ssl.SSLError):
        return os.strerror(errno).lower()
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
