"""A CONNECT tunnel through an HTTP forward proxy, for the lean GET lane.

Fleet operators often reach the internet only through an egress proxy. The lane opens its
connections through one the way browsers, curl and aiohttp do for ``https`` origins: a TCP
connection to the proxy, ``CONNECT host:port HTTP/1.1`` (RFC 9110 9.3.6), and once the
proxy answers ``2xx`` the socket is a byte pipe to the origin, over which TLS (for an
``https`` origin, verified against the *origin's* name) and the GETs run as on a direct
connection. The proxy sees the origin's name and port, never the requests, the bearer
token or the answers (for an ``http`` origin it could read them in the clear, as with any
proxy). The same tunnel carries every keep-alive GET of the connection, so the proxy costs
one round trip per new connection, not per request.

Proxy credentials come from the proxy URL (``http://user:password@proxy:3128``) and go to
the proxy only, as ``Proxy-Authorization: Basic``; they are never part of a message, a
``repr`` or a log line (:class:`ProxyConfig` keeps them out of both).

Only ``http://`` proxy URLs are supported (TLS to the proxy itself is rare and not needed
for the tunnel's secrecy, which comes from TLS to the origin).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import urllib.request

from yarl import URL

__all__ = ["MAX_PROXY_ANSWER_BYTES", "ProxyConfig", "ProxyError", "open_tunnel",
           "proxy_from_env"]

#: The proxy's answer to CONNECT is a status line and a few header fields.
MAX_PROXY_ANSWER_BYTES = 16 * 1024


def proxy_from_env(origin: str | URL) -> str | None:
    """The proxy the environment names for ``origin`` (``trust_env``), or None.

    ``HTTPS_PROXY`` for an https origin, ``HTTP_PROXY`` for an http one (either case, as
    curl and aiohttp read them), and None when ``NO_PROXY`` covers the origin's host. The
    standard library's reading of the variables, which aiohttp's ``trust_env`` also uses.
    """
    url = URL(origin)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    if not proxy or not url.host:
        return None
    if urllib.request.proxy_bypass(url.host):  # NO_PROXY (the environment first)
        return None
    return proxy


class ProxyError(OSError):
    """The proxy refused or broke the tunnel (an ``OSError``: a connection failure)."""


class ProxyConfig:
    """Where the proxy is and how to authenticate to it; the password stays private."""

    __slots__ = ("_authorization", "host", "port")

    def __init__(self, url: str | URL) -> None:
        proxy = URL(url)
        if proxy.scheme != "http" or not proxy.host:
            raise ValueError(
                f"proxy must be an http:// URL with a host, got scheme {proxy.scheme!r}")
        if proxy.path not in ("", "/") or proxy.query_string or proxy.fragment:
            raise ValueError("proxy URL must not have a path, query or fragment")
        self.host = proxy.host
        self.port = proxy.port or 80
        self._authorization = b""
        if proxy.user is not None:
            pair = f"{proxy.user}:{proxy.password or ''}".encode()
            self._authorization = b"Proxy-Authorization: Basic " + base64.b64encode(pair)

    @property
    def authenticates(self) -> bool:
        return bool(self._authorization)

    def connect_request(self, host: str, port: int) -> bytes:
        """The CONNECT request for ``host:port`` (credentials included, if any)."""
        name = f"[{host}]" if ":" in host else host
        authority = f"{name}:{port}".encode("ascii")
        lines = [b"CONNECT " + authority + b" HTTP/1.1", b"Host: " + authority]
        if self._authorization:
            lines.append(self._authorization)
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def __repr__(self) -> str:
        auth = ", with credentials" if self._authorization else ""
        return f"ProxyConfig(http://{self.host}:{self.port}{auth})"


async def open_tunnel(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                      proxy: ProxyConfig, host: str, port: int) -> None:
    """Ask the proxy on ``sock`` for a tunnel to ``host:port``; return once it is open.

    Raises :class:`ProxyError` when the proxy refuses, closes or answers nonsense.
    """
    await loop.sock_sendall(sock, proxy.connect_request(host, port))
    answer = bytearray()
    searched = 0
    while True:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ProxyError(
                f"proxy {proxy.host}:{proxy.port} closed the connection before answering "
                f"CONNECT")
        answer += chunk
        end = answer.find(b"\r\n\r\n", max(0, searched - 3))
        if end >= 0:
            break
        searched = len(answer)
        if searched > MAX_PROXY_ANSWER_BYTES:
            raise ProxyError(f"proxy {proxy.host}:{proxy.port} sent an overlong answer")
    status_line = bytes(answer[:answer.find(b"\r\n")])
    parts = status_line.split(b" ", 2)
    if (len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0")
            or len(parts[1]) != 3 or not parts[1].isdigit()):
        raise ProxyError(f"proxy {proxy.host}:{proxy.port} answered CONNECT with "
                         f"{status_line[:60]!r}")
    status = int(parts[1])
    if not 200 <= status < 300:
        reason = parts[2].decode("latin-1", "replace")[:60] if len(parts) > 2 else ""
        hint = ""
        if status in (401, 407):  # (tinyproxy answers a wrong password with 401)
            hint = (" (the proxy wants credentials: give them in the proxy URL)"
                    if not proxy.authenticates else " (the proxy refused the credentials)")
        raise ProxyError(f"proxy {proxy.host}:{proxy.port} refused CONNECT to {host}:{port}: "
                         f"{status} {reason}{hint}")
    if end + 4 != len(answer):
        # the origin speaks only after our first bytes (TLS ClientHello or the GET)
        raise ProxyError(f"proxy {proxy.host}:{proxy.port} sent bytes after its CONNECT "
                         f"answer")
