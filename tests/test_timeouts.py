"""Slow and hanging servers: every configured timeout fires, says which it was, and nothing
waits forever.

The emulator's ``latency`` covers a uniformly slow server (tests/test_retries.py,
tests/test_client.py); here small aiohttp apps and raw sockets misbehave in the ways the
emulator cannot: answer nothing at all, stall in the middle of a body, drip a body forever,
never finish the TLS handshake, or hang on the token endpoint.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
import trustme
from aiohttp import web

import hm_async
from hm_async import ClientCredentials, HMClient, Timeout
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio

VIN = "WBAEMU00000000001"

CREDS = ClientCredentials(client_id="client", client_secret="s3cr3t-value")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def token(request: web.Request) -> web.Response:
    return web.json_response({"access_token": "tok", "expires_in": 300,
                              "token_type": "bearer"})


@asynccontextmanager
async def serve(data: Handler, token_handler: Handler = token) -> AsyncIterator[
        tuple[str, list[float]]]:
    """An app with a token endpoint and ``data`` on the vehicle-data path; yields its URL and
    the arrival times of vehicle-data requests."""
    arrivals: list[float] = []

    async def counted(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        return await data(request)

    app = web.Application()
    app.router.add_post("/v1/access_tokens", token_handler)
    app.router.add_get("/v1/vehicle-data/autoapi-13/{vin}", counted)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", arrivals
    finally:
        await runner.cleanup()


async def hang(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def test_hanging_server_total_timeout_fires_and_names_itself(lean_http: bool) -> None:
    async with serve(hang) as (url, arrivals), HMClient(
        CREDS, base_url=url, lean_http=lean_http, max_retries=0,
        timeout=Timeout(0.4, connect=1.0),
    ) as hm:
        await hm.tokens.get()
        started = time.monotonic()
        with pytest.raises(hm_async.HMTimeoutError) as err:
            await hm.vehicle_data_raw(VIN)
        took = time.monotonic() - started
        assert err.value.timeout == "total" and err.value.seconds == 0.4
        assert "total timeout (0.4 s)" in str(err.value) and VIN in str(err.value)
        assert isinstance(err.value, TimeoutError)  # also catchable as the builtin
        assert 0.35 <= took < 0.9
        assert len(arrivals) == 1


async def test_each_retry_gets_its_own_timeout_and_the_call_still_ends(lean_http: bool) -> None:
    async with serve(hang) as (url, arrivals), HMClient(
        CREDS, base_url=url, lean_http=lean_http, timeout=0.3, max_retries=2
    ) as hm:
        await hm.tokens.get()
        started = time.monotonic()
        with pytest.raises(hm_async.HMTimeoutError) as err:
            await hm.vehicle_data_raw(VIN)
        took = time.monotonic() - started
        assert err.value.timeout == "total"
        assert len(arrivals) == 3  # first attempt + 2 retries, each cut at 0.3 s
        # 3 x 0.3 s plus backoffs of 0.375-0.5 s and 0.75-1 s
        assert 0.9 + 1.1 <= took < 0.9 + 1.5 + 0.6


async def test_a_stall_mid_body_is_a_read_timeout(lean_http: bool) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"vin": "' + VIN.encode())
        await asyncio.sleep(3600)
        return resp

    async with serve(stall) as (url, _), HMClient(
        CREDS, base_url=url, lean_http=lean_http, max_retries=0,
        timeout=Timeout(5.0, connect=1.0, read=0.3),
    ) as hm:
        await hm.tokens.get()
        started = time.monotonic()
        with pytest.raises(hm_async.HMTimeoutError) as err:
            await hm.vehicle_data_raw(VIN)
        assert err.value.timeout == "read" and err.value.seconds == 0.3
        assert "read timeout (0.3 s without data)" in str(err.value)
        assert time.monotonic() - started < 1.5


async def test_a_body_that_drips_forever_is_cut_by_the_total_timeout(lean_http: bool) -> None:
    """A server that keeps each gap under the read timeout cannot hold a call forever."""
    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b"[")
        while True:
            await asyncio.sleep(0.05)
            await resp.write(b"0,")

    async with serve(drip) as (url, _), HMClient(
        CREDS, base_url=url, lean_http=lean_http, max_retries=0,
        timeout=Timeout(0.6, connect=1.0, read=0.3),
    ) as hm:
        await hm.tokens.get()
        started = time.monotonic()
        with pytest.raises(hm_async.HMTimeoutError) as err:
            await hm.vehicle_data_raw(VIN)
        assert err.value.timeout == "total"
        assert 0.55 <= time.monotonic() - started < 1.2


async def test_a_tls_handshake_that_never_finishes_is_a_connect_timeout(lean_http: bool) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    emu = Emulator(EmulatorConfig(vehicles=1), ssl_context=server_ctx)
    await emu.start()
    url, vin = emu.url, emu.vehicles[0].vin
    port = int(url.rsplit(":", 1)[1])
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # TCP is up; the TLS ServerHello never comes

    async with HMClient(emu.client_credentials, base_url=url, ssl=client_ctx, lean_http=lean_http,
                        timeout=Timeout(5.0, connect=0.3), max_retries=0) as hm:
        try:
            await hm.vehicle_data_raw(vin)  # a token and a pooled connection, then ...
        finally:
            await emu.close()  # ... the real server goes away
        server = await asyncio.start_server(silent, "127.0.0.1", port)
        try:
            started = time.monotonic()
            with pytest.raises(hm_async.HMTimeoutError) as err:
                await hm.vehicle_data_raw(vin)
            assert err.value.timeout == "connect" and err.value.seconds == 0.3
            assert "connect timeout (0.3 s)" in str(err.value)
            assert time.monotonic() - started < 1.5
            assert accepted  # the socket did connect: it is the handshake that hung
        finally:
            for w in accepted:
                w.close()
            server.close()
            await server.wait_closed()


async def test_a_hanging_token_endpoint_is_bounded_by_the_configured_timeout() -> None:
    """The call's timeout must bound the token request it waits for, too.

    Fails before the fix proposed in the issue-8 report: ``HMClient`` builds its
    ``TokenProvider`` with the fixed 10 s ``request_timeout`` and 4 attempts, so a call
    configured with ``timeout=0.5`` waits ~41 s for a hanging token endpoint.
    """
    arrivals: list[float] = []

    async def hanging_token(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        return await hang(request)

    async with serve(hang, hanging_token) as (url, _), HMClient(
        CREDS, base_url=url, max_retries=0, timeout=Timeout(0.5, connect=0.5),
    ) as hm:
        error: hm_async.HMTimeoutError | None = None
        started = time.monotonic()
        with anyio.move_on_after(8.0):
            try:
                await hm.vehicle_data_raw(VIN)
            except hm_async.HMTimeoutError as exc:
                error = exc
        took = time.monotonic() - started
        # 4 token attempts of <= 0.5 s each, plus backoffs of at most 0.2 + 0.4 + 0.8 s
        assert error is not None and took < 5.0, (
            f"a call with timeout=0.5 s was still waiting for a token after {took:.1f} s")
        assert error.timeout == "total" and "token request" in str(error)
        assert len(arrivals) == 4
