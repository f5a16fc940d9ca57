"""The lean GET lane: hm_async's own keep-alive HTTP/1.1 connections to the API origin.

Why it exists: a fleet poll is tens of thousands of identical GETs, and aiohttp's
``ClientSession.request`` spends about 60 µs of CPU on each (timer contexts, a
``ClientRequest`` with its header merging, cookie and proxy logic, trace hooks, a
``StreamReader`` per body) -- three times what the exchange itself costs on an asyncio
protocol. This lane writes one prebuilt request (``GET <target> HTTP/1.1`` plus a header
block built once per token) on a pooled connection and parses the answer with
:class:`~hm_async._h1_parser.ResponseParser` (llhttp); ``benchmarks/fanout.py`` measures
the gain.

It is deliberately narrow, and everything else stays on aiohttp:

* GET only. A pooled connection that turns out to have been closed by the server before any
  byte of the answer arrived raises :class:`~hm_async.StaleConnectionError`; the lane does
  not send again by itself: the policy loop (:mod:`hm_async._transport`) re-sends the GET
  once, as a metered retry within the retry budget. (The server may have read and even
  executed the first copy before closing; a GET is idempotent, which is what makes the
  re-send acceptable.)
* One origin: the client's ``base_url``. The bearer token goes nowhere else, and redirects
  are answers (the transport refuses to follow them). Through an HTTP forward proxy
  (``proxy=``), each connection is a CONNECT tunnel to that origin (:mod:`._h1_proxy`):
  one extra round trip per new connection, none per request. Clients that need their own
  session use aiohttp for everything.
* TLS through the standard :mod:`ssl` module, with the same verification as the aiohttp
  connector (the default context, or the one the caller gave).

Time limits mirror aiohttp's: ``total`` from the moment the request may be sent (connecting
included), ``connect`` for opening the socket and the TLS handshake, ``read`` for the
longest silence while waiting for the answer. A request that fails, times out or is
cancelled closes its connection: a connection is reused only after a complete answer that
allows keep-alive.
"""

from __future__ import annotations

import asyncio
import math
import socket
import ssl as ssl_module
from collections.abc import Mapping, Sequence

import aiohappyeyeballs

from ._config import DNS_CACHE_SECONDS
from ._errors import HMTimeoutError, StaleConnectionError, TransportError
from ._events import request_path
from ._h1_parser import ParsedResponse, ProtocolError, ResponseParser
from ._h1_proxy import ProxyConfig, open_tunnel
from ._network_errors import map_network_error

__all__ = ["LeanHTTP", "StaleConnectionError"]

#: Seconds before the next address is tried in parallel (RFC 8305 recommends 0.25).
HAPPY_EYEBALLS_DELAY = 0.25


class _ClosedBeforeAnswer(Exception):
    """The server closed the connection before any byte of the answer (see ``get``)."""


#: Size of the one read buffer of a pool (see _Connection.get_buffer).
READ_BUFFER = 65536

#: What ``getaddrinfo`` returns for one address: (family, type, proto, canonname, sockaddr).
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str,
                 tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]]


class _Connection(asyncio.BufferedProtocol):
    """One socket; at most one request in flight at a time."""

    __slots__ = ("deadline", "idle_since", "last_read", "lost", "parser", "pool", "read_limit",
                 "target", "total", "transport", "waiter")

    def __init__(self, pool: LeanHTTP) -> None:
        self.pool = pool
        self.parser = ResponseParser(pool.max_body)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[ParsedResponse] | None = None
        self.lost = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self.target = ""
        # the time limits of the request in flight (see LeanHTTP._sweep_timers)
        self.deadline: float | None = None
        self.total: float | None = None
        self.read_limit: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:  # noqa: ARG002
        # Every connection of the pool reads into the pool's one buffer: the loop calls
        # get_buffer, recv_into and buffer_updated back to back, and the parser copies what
        # it keeps. (A plain Protocol gets a new bytes object of asyncio's 256 KiB read
        # size per read, which glibc may serve with mmap/munmap each time.)
        return self.pool.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = self.pool.read_buffer[:nbytes]
        waiter = self.waiter
        if waiter is None or waiter.done():
            self._between_answers(data)
            return
        if self.pool.tracks_reads:
            self.last_read = self.pool.now()
        try:
            response = self.parser.feed(data)
        except ProtocolError as exc:
            waiter.set_exception(TransportError(
                f"invalid HTTP answer to GET {request_path(self.target)}: {exc}"))
            self.close()
            return
        if response is not None:
            waiter.set_result(response)

    def check_at(self) -> float:
        """When the limits of the request in flight next need a look (inf: none set)."""
        at = math.inf if self.deadline is None else self.deadline
        if self.read_limit is not None:
            silence_ends = self.last_read + self.read_limit
            if silence_ends < at:
                at = silence_ends
        return at

    def expired(self, now: float) -> bool:
        """Fail the request in flight if one of its limits has passed (True: done with)."""
        waiter = self.waiter
        assert waiter is not None
        if self.deadline is not None and now >= self.deadline:
            kind, seconds = "total", self.total
        elif self.read_limit is not None and now >= self.last_read + self.read_limit:
            kind, seconds = "read", self.read_limit
        else:
            return False
        waiter.set_exception(HMTimeoutError.fired(kind, seconds, "GET",
                                                  request_path(self.target)))
        return True

    def _between_answers(self, data: bytes | memoryview) -> None:
        """Bytes while no request waits: empty lines are ignored (RFC 9112 2.2: a server may
        end an answer with an extra CRLF, and TCP may deliver it on its own); anything else
        nobody asked for, and the connection is out of step."""
        try:
            if self.parser.feed(data) is None and not self.parser.started:
                return
        except ProtocolError:
            pass
        self.close()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.lost = True
        self.pool.forget(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            response = self.parser.feed_eof()
        except ProtocolError as error:
            waiter.set_exception(TransportError(
                f"connection failure on GET {request_path(self.target)}: {error}"))
            return
        if response is not None:
            waiter.set_result(response)
        else:
            waiter.set_exception(_ClosedBeforeAnswer())

    def close(self) -> None:
        self.lost = True
        self.pool.forget(self)  # now, not one loop iteration later in connection_lost
        if self.transport is not None:
            self.transport.close()


class LeanHTTP:
    """A pool of keep-alive HTTP/1.1 connections to one origin, for GET requests."""

    def __init__(self, host: str, port: int, *, ssl: ssl_module.SSLContext | None,
                 max_idle: int, keepalive: float, max_body: int,
                 proxy: str | ProxyConfig | None = None) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        #: the forward proxy every connection tunnels through (its password stays private)
        self.proxy = proxy if proxy is None or isinstance(proxy, ProxyConfig) else ProxyConfig(
            proxy)
        self.max_idle = max_idle
        self.keepalive = keepalive
        self.max_body = max_body
        self.tracks_reads = False
        self.read_buffer = memoryview(bytearray(READ_BUFFER))
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._closed = False
        self._sweep: asyncio.TimerHandle | None = None  # the one timer that checks limits
        self._sweep_at = math.inf
        # the addresses connections go to (the origin's, or the proxy's): an IP address as it
        # is, for good; a name resolved once for DNS_CACHE_SECONDS (see _resolve)
        to = (host, port) if self.proxy is None else (self.proxy.host, self.proxy.port)
        literal = _ip_literal(*to)
        self._addresses: tuple[float, Sequence[AddrInfo]] | None = (
            None if literal is None else (math.inf, literal))
        self._resolving: asyncio.Task[Sequence[AddrInfo]] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop of the first request
        default_port = 443 if ssl is not None else 80
        name = f"[{host}]" if ":" in host else host
        self._host_header = name if port == default_port else f"{name}:{port}"

    # -- what the transport uses -----------------------------------------------------------

    def header_block(self, headers: Mapping[str, str]) -> bytes:
        """Host plus ``headers``, encoded once (per token) and reused for every request."""
        lines = [f"Host: {self._host_header}"]
        for name, value in headers.items():
            if any(c in value for c in "\r\n\0") or any(c in name for c in "\r\n\0: "):
                raise ValueError(f"header {name!r} cannot be sent")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @property
    def in_use(self) -> int:
        """Connections with a request in flight (0 once every request has finished)."""
        return len(self._all) - len(self._idle)

    async def get(self, target: str, header_block: bytes, *, total: float | None,
                  connect: float | None, read: float | None) -> ParsedResponse:
        """Send ``GET target`` and return the whole answer; raise HMError subclasses."""
        if self._closed:
            raise TransportError("the client is closed", kind="shutdown")
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
        if read is not None:
            self.tracks_reads = True
        if " " in target or not target.isprintable():  # targets come encoded; be sure
            raise ValueError(f"request target {target[:60]!r} is not URL-encoded")
        request = b"GET " + target.encode("ascii") + b" HTTP/1.1\r\n" + header_block
        deadline = None if total is None else loop.time() + total
        conn = self._checkout()
        reused = conn is not None
        if conn is None:
            try:
                conn = await self._connect(target, deadline, connect, total)
            except _ClosedBeforeAnswer:
                raise _closed_new_connection(target) from None
        # The exchange is written out here, not in a helper coroutine: this is the hot path
        # of a fleet poll, and every coroutine level costs each GET a frame and a resume.
        waiter: asyncio.Future[ParsedResponse] = loop.create_future()
        conn.waiter = waiter
        conn.target = target
        conn.deadline, conn.total, conn.read_limit = deadline, total, read
        if deadline is not None or read is not None:
            conn.last_read = loop.time()
            at = conn.check_at()
            if at < self._sweep_at:  # else the armed sweep comes first and re-arms for it
                self._arm_sweep(at)
        assert conn.transport is not None
        try:
            conn.transport.write(request)
            response = await waiter
        except _ClosedBeforeAnswer:
            conn.waiter = None
            conn.close()
            if self._closed:
                raise TransportError("the client is closed", kind="shutdown") from None
            if reused:
                # Usually closed while idle, but the server may also have read (even
                # executed) the GET before closing: the policy loop decides on a re-send.
                raise StaleConnectionError(
                    f"connection failure on GET {request_path(target)}: the server closed a "
                    f"reused keep-alive connection before answering") from None
            raise _closed_new_connection(target) from None
        except BaseException:
            conn.waiter = None
            conn.close()  # a request may be half-sent or half-answered: never reuse
            raise
        conn.waiter = None
        if response.keep_alive and not conn.lost:
            self._checkin(conn)
        else:
            conn.close()
        return response

    async def aclose(self) -> None:
        """Close every connection, idle or busy; later requests fail."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
            self._sweep_at = math.inf
        connections = list(self._all)
        self._idle.clear()
        for conn in connections:
            conn.close()
        if connections:
            await asyncio.sleep(0)  # let the transports run their close callbacks

    # -- internals ---------------------------------------------------------------------------

    def now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def _arm_sweep(self, at: float) -> None:
        """(Re-)arm the pool's one timer to look at the requests in flight by ``at``."""
        if self._sweep is not None:
            self._sweep.cancel()
        assert self.loop is not None
        self._sweep_at = at
        self._sweep = self.loop.call_at(at, self._sweep_timers)

    def _sweep_timers(self) -> None:
        """The pool's one timer: fail the requests out of time, re-arm for the rest.

        Why not a timer per request: arming and cancelling a loop timer (or even keeping
        an object per request in a set) for each of tens of thousands of GETs costs CPU on
        every exchange, while nearly all of them end long before their limits. A request
        only writes its limits on its connection and arms this timer if it is the earliest;
        when the timer fires it looks at every connection with a request in flight (at
        most ``max_connections``), fails those whose limit has passed (the total deadline
        wins over the read limit) and re-arms for the next earliest. Data that arrived
        meanwhile only moved ``last_read``, so no timer is touched per read, and a request
        that ended needs no clean-up: the next sweep finds its connection idle.
        """
        self._sweep = None
        self._sweep_at = math.inf
        assert self.loop is not None
        now = self.loop.time()
        at = math.inf
        for conn in list(self._all):
            waiter = conn.waiter
            if waiter is None or waiter.done() or conn.expired(now):
                continue
            check = conn.check_at()
            if check < at:
                at = check
        if at < math.inf:
            self._arm_sweep(at)

    def forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        if conn.waiter is None and conn in self._idle:
            self._idle.remove(conn)

    def _checkout(self) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()  # the most recently used: least likely to have been closed
            if conn.lost:
                continue
            if self.now() - conn.idle_since > self.keepalive:
                # the most recent one is past the keep-alive time, so all of them are
                stale = [conn, *idle]
                idle.clear()
                for old in stale:
                    old.close()
                return None
            return conn
        return None

    def _checkin(self, conn: _Connection) -> None:
        idle = self._idle
        now = self.now()
        # Connections unused for longer than the keep-alive time are closed here, from the
        # cold end of the stack, instead of by a timer.
        while idle and now - idle[0].idle_since > self.keepalive:
            idle.pop(0).close()
        if self._closed or len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)

    async def _connect(self, target: str, deadline: float | None, connect: float | None,
                       total: float | None) -> _Connection:
        loop = self.loop
        assert loop is not None
        limit, kind, seconds = connect, "connect", connect
        if deadline is not None:
            remaining = deadline - loop.time()
            if limit is None or remaining < limit:
                limit, kind, seconds = remaining, "total", total
        # The connect runs in a task of its own that a timeout or a cancellation never
        # interrupts half-way: whatever it opens after we stop waiting is closed by
        # _close_unwanted. (asyncio.wait_for can lose a socket that was connected just as
        # it was cancelled, on the Python versions we support.)
        connecting = loop.create_task(self._open(loop))
        try:
            await asyncio.wait((connecting,), timeout=limit)
        except BaseException:
            _abandon(connecting)
            raise
        try:
            if not connecting.done():
                _abandon(connecting)
                raise asyncio.TimeoutError
            _, conn = connecting.result()
        except (asyncio.TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError too
            raise map_network_error(exc, method="GET", path=request_path(target),
                                    host=self.host, port=self.port, fired=kind,
                                    seconds=seconds, connecting=True) from exc
        if self._closed:
            conn.close()
            raise TransportError("the client is closed", kind="shutdown")
        if conn.lost:  # closed by the server before this task resumed: writing would hang
            raise _ClosedBeforeAnswer
        self._all.add(conn)
        return conn

    async def _open(self, loop: asyncio.AbstractEventLoop,
                    ) -> tuple[asyncio.BaseTransport, _Connection]:
        """Resolve, connect with happy eyeballs (RFC 8305), tunnel through the proxy if
        there is one, then TLS if configured.

        aiohappyeyeballs is what aiohttp's connector uses: a host whose IPv6 route is dead
        costs 0.25 s instead of a connect timeout, and, unlike the standard library's
        version on Python < 3.12, it closes the sockets of the attempts it abandons.
        """
        proxy = self.proxy
        host, port = (self.host, self.port) if proxy is None else (proxy.host, proxy.port)
        infos = await self._resolve(loop, host, port)
        sock = await aiohappyeyeballs.start_connection(
            infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1)
        try:
            if proxy is not None:  # then TLS and HTTP run inside the tunnel, as direct
                await open_tunnel(loop, sock, proxy, self.host, self.port)
            return await loop.create_connection(
                lambda: _Connection(self), sock=sock, ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None)
        except BaseException:
            sock.close()
            raise

    async def _resolve(self, loop: asyncio.AbstractEventLoop, host: str,
                       port: int) -> Sequence[AddrInfo]:
        """The addresses of ``host``: one lookup shared by every connection being opened, and
        reused for ``DNS_CACHE_SECONDS`` (as aiohttp's connector caches them).

        Why: a fleet poll opens ``max_connections`` connections at once, and asyncio's
        ``getaddrinfo`` is a round trip to a thread each time; 50 identical lookups are a
        stampede on the resolver and cost more CPU than the first hundred requests. An IP
        address needs no lookup at all. A failed lookup is not cached: the next connection
        asks again.
        """
        cached = self._addresses
        if cached is not None and loop.time() < cached[0]:
            return cached[1]
        resolving = self._resolving
        if resolving is None:
            resolving = self._resolving = loop.create_task(self._lookup(loop, host, port))
            resolving.add_done_callback(_retrieve)  # (its error reaches every waiter)
        # shielded: one caller giving up (a timeout, a cancel) must not fail the others
        return await asyncio.shield(resolving)

    async def _lookup(self, loop: asyncio.AbstractEventLoop, host: str,
                      port: int) -> Sequence[AddrInfo]:
        try:
            infos: Sequence[AddrInfo] = await loop.getaddrinfo(host, port,
                                                               type=socket.SOCK_STREAM)
            self._addresses = (loop.time() + DNS_CACHE_SECONDS, infos)
            return infos
        finally:
            self._resolving = None


def _retrieve(task: asyncio.Task[Sequence[AddrInfo]]) -> None:
    """Mark a lookup's error as seen: the callers that still wait get it anyway, and one
    whose callers all gave up must not log "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()


def _ip_literal(host: str, port: int) -> Sequence[AddrInfo] | None:
    """The one address of an IPv4 or IPv6 literal, as ``getaddrinfo`` would give it."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        address = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
    return None


def _abandon(connecting: asyncio.Task[tuple[asyncio.BaseTransport, _Connection]]) -> None:
    """Stop a connect nobody waits for; close the connection should it complete anyway."""
    connecting.cancel()
    connecting.add_done_callback(_close_unwanted)


def _close_unwanted(connecting: asyncio.Task[tuple[asyncio.BaseTransport, _Connection]]) -> None:
    if connecting.cancelled():
        return
    if connecting.exception() is None:  # retrieving it also keeps asyncio quiet
        connecting.result()[0].close()


def _closed_new_connection(target: str) -> TransportError:
    return TransportError(f"connection failure on GET {request_path(target)}: the server "
                          f"closed a new connection without answering", kind="closed")

