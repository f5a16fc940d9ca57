"""The single-flight token provider, against the emulator (and a tiny server where needed).

What a user would notice: how many token requests the platform sees, whether callers wait,
whether a failure reaches every waiter or none, and whether a secret leaks into a log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from hm_async import (
    AuthenticationError,
    DecodeError,
    HMError,
    HMTimeoutError,
    PermissionDeniedError,
    ServerError,
    TokenRefusedError,
    TransportError,
)
from hm_async._config import TOKEN_BACKOFF
from hm_async._credentials import ClientCredentials
from hm_async._errors import error_from_response
from hm_async._tokens import (
    MAX_HARD_MARGIN,
    AccessToken,
    TokenProvider,
    backoff_delay,
    token_windows,
)
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio

INITIAL_DELAY = TOKEN_BACKOFF.initial
MAX_DELAY = TOKEN_BACKOFF.maximum


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def emulated(**config: Any) -> AsyncIterator[tuple[Emulator, aiohttp.ClientSession]]:
    async with Emulator(EmulatorConfig(**config)) as emu, aiohttp.ClientSession() as session:
        yield emu, session


@asynccontextmanager
async def provider_for(emu: Emulator, session: aiohttp.ClientSession,
                       **kwargs: Any) -> AsyncIterator[TokenProvider]:
    provider = TokenProvider(kwargs.pop("credentials", emu.client_credentials), session=session,
                             base_url=emu.url, **kwargs)
    try:
        yield provider
    finally:
        await provider.aclose()


async def wait_idle(provider: TokenProvider, limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while provider.refreshing:
            await asyncio.sleep(0.005)


# -- the windows, as pure functions -------------------------------------------------------

@given(issued=st.floats(-1e6, 1e6), life=st.floats(0.5, 86_400.0), jitter=st.floats(0.0, 0.999))
def test_windows_are_ordered_and_scale_with_the_real_lifetime(issued: float, life: float,
                                                              jitter: float) -> None:
    w = token_windows(issued, life, jitter)
    expires = issued + life
    assert issued < w.soft_at <= w.hard_at < expires
    # The early refresh starts at about half the life, never before it.
    assert w.soft_at >= issued + 0.5 * life - 1e-6
    assert w.soft_at <= issued + 0.6 * life + 1e-6
    # The mandatory margin is a tenth of the life, at most 30 s: a 300 s token is not
    # refreshed on every call, and a day-long one is not refreshed hours early.
    margin = expires - w.hard_at
    assert margin == pytest.approx(min(MAX_HARD_MARGIN, 0.1 * life), rel=1e-6, abs=1e-6)


def test_windows_of_hm_300_second_tokens() -> None:
    low, high = token_windows(0.0, 300.0, 0.0), token_windows(0.0, 300.0, 0.999)
    assert low.soft_at == 150.0 and 179.0 < high.soft_at < 180.0
    assert low.hard_at == high.hard_at == 270.0


@given(failures=st.integers(1, 50), rand=st.floats(0.0, 0.999),
       remaining=st.none() | st.floats(-10.0, 600.0))
def test_backoff_grows_is_capped_and_never_outlives_the_current_token(
        failures: int, rand: float, remaining: float | None) -> None:
    delay = backoff_delay(failures, rand=rand, remaining=remaining)
    base = min(INITIAL_DELAY * 2 ** (failures - 1), MAX_DELAY)
    assert 0.0 <= delay <= base
    if remaining is None or remaining >= base:
        assert delay >= 0.75 * base
    else:
        assert delay <= max(remaining, 0.0)
    assert backoff_delay(failures + 1, rand=rand, remaining=remaining) >= delay


def test_backoff_honours_retry_after_within_the_token_life() -> None:
    assert backoff_delay(1, rand=0.0, retry_after=3.0) == 3.0
    assert backoff_delay(1, rand=0.0, retry_after=3.0, remaining=1.0) == 1.0
    assert backoff_delay(0, rand=0.5) == 0.0


# -- the windows, live, with a fake clock and real 300 s tokens ----------------------------

async def test_refresh_windows_on_a_fake_clock_with_300_second_tokens() -> None:
    clock = FakeClock()
    async with emulated() as (emu, session), provider_for(emu, session, clock=clock,
                                                          rand=lambda: 0.0) as p:
        assert p.current() is None
        first = await p.get()
        assert first.expires_at == clock.now + 300.0
        # Until half-life: the same token, no request, no background work.
        for t in (0.0, 100.0, 149.9):
            clock.now = 1000.0 + t
            assert p.current() is first and not p.refreshing
        assert p.requests_made == 1
        # Soft window: callers get the current token at once; one refresh runs behind.
        clock.now = 1150.0
        for _ in range(1000):
            assert p.current() is first
        assert p.refreshing
        await wait_idle(p)
        assert p.requests_made == emu.stats.token_requests == 2
        second = p.current()
        assert second is not None and second.generation == 2
        assert second.expires_at == 1450.0
        # Hard window of the second token (270 s into its life): callers must wait.
        clock.now = 1150.0 + 275.0
        assert p.current() is None
        third = await p.get()
        assert third.generation == 3 and p.requests_made == 3
        # An expired token is never handed out.
        clock.now = third.expires_at + 0.1
        assert p.current() is None
        assert (await p.get()).generation == 4


async def test_soft_window_failures_stay_invisible_to_callers() -> None:
    clock = FakeClock()
    async with emulated() as (emu, session), provider_for(emu, session, clock=clock,
                                                          rand=lambda: 0.0) as p:
        first = await p.get()
        emu.script_faults("token", [503, 503])
        clock.now += 160.0
        with anyio.fail_after(5):
            while p.requests_made < 4:
                # Callers keep the current token while the refresh retries behind them.
                assert p.current() is first
                assert await p.get() is first
                await asyncio.sleep(0.01)
        await wait_idle(p)
        assert emu.stats.token_requests == 4
        assert p.current() is not None and p.current() is not first


async def test_hard_window_failure_falls_back_to_the_still_valid_token() -> None:
    clock = FakeClock()
    async with emulated() as (emu, session), provider_for(emu, session, clock=clock,
                                                          max_attempts=2) as p:
        first = await p.get()
        clock.now += 280.0  # hard window (270 s), 20 s of life left
        emu.script_faults("token", [503, 503, 503])
        assert p.current() is None
        tokens = await asyncio.gather(*(p.get() for _ in range(100)))
        assert all(t is first for t in tokens)
        assert p.requests_made == 3  # the 2 attempts of one flight, shared by 100 waiters
        # While the endpoint is failing, callers are not held up in the hard window.
        assert p.current() is first
        await wait_idle(p)
        assert p.current() is not None and p.current() is not first
        assert emu.stats.token_requests == 5  # + one failed and one good try after backoff


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.floats(0.0, 200.0), min_size=1, max_size=25),
       jitter=st.floats(0.0, 0.999))
def test_any_walk_of_the_clock_never_yields_an_expired_token_or_extra_requests(
        steps: list[float], jitter: float) -> None:
    marks: dict[int, tuple[float, float]] = {}

    def annotate(tok: AccessToken, j: float) -> AccessToken:
        w = token_windows(tok.issued_at, tok.lifetime, j)
        marks[tok.generation] = (w.soft_at, w.hard_at)
        return tok

    async def walk() -> None:
        clock = FakeClock(0.0)
        async with emulated() as (emu, session), provider_for(
                emu, session, clock=clock, rand=lambda: jitter) as p:
            last = annotate(await p.get(), jitter)
            generations = {last.generation}
            for step in steps:
                clock.now += step
                now = clock.now
                soft_at, hard_at = marks[last.generation]
                tok = p.current()
                if tok is None:
                    assert now >= hard_at  # a caller only ever waits in the hard window
                    tok = await p.get()
                elif now < soft_at:
                    assert tok is last and not p.refreshing
                assert now < tok.expires_at
                await wait_idle(p)
                newest = p.current() or tok
                if newest.generation not in generations:
                    assert now >= soft_at  # never refreshed while young
                    generations.add(newest.generation)
                    last = annotate(newest, jitter)
            assert p.requests_made == emu.stats.token_requests == len(generations)

    asyncio.run(walk())


# -- single flight, live --------------------------------------------------------------------

async def test_ten_thousand_callers_at_cold_start_make_one_request() -> None:
    async with emulated(latency=0.05) as (emu, session), provider_for(emu, session) as p:
        tokens = await asyncio.gather(*(p.get() for _ in range(10_000)))
        assert {t.generation for t in tokens} == {1}
        assert emu.stats.token_requests == p.requests_made == 1


async def test_one_request_per_short_token_life_and_callers_never_wait() -> None:
    lifetime, duration = 2.0, 6.5
    async with emulated(token_lifetime=lifetime) as (emu, session), provider_for(
            emu, session) as p:
        await p.get()
        vin = emu.vehicles[0].vin
        url = f"{emu.url}/v1/vehicle-data/autoapi-13/{vin}"
        slowest = 0.0
        statuses: list[int] = []
        seen: set[int] = set()
        deadline = time.monotonic() + duration

        async def caller(i: int) -> None:
            nonlocal slowest
            while time.monotonic() < deadline:
                started = time.perf_counter()
                tok = p.current() or await p.get()
                slowest = max(slowest, time.perf_counter() - started)
                seen.add(tok.generation)
                if i < 5:  # a few callers really use the token
                    async with session.get(url, headers={"Authorization": tok.authorization}) as r:
                        statuses.append(r.status)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(caller(i) for i in range(1000)))
        assert statuses and set(statuses) == {200}  # never an expired token
        assert slowest < 0.05  # refreshes happened in the background
        requests = emu.stats.token_requests
        assert requests == p.requests_made
        # every token was used, except perhaps one whose refresh finished at the deadline
        assert requests - 1 <= len(seen) == max(seen) <= requests
        # One request per token life: a refresh at 50-60% of each 2 s life.
        assert duration / lifetime <= requests <= duration / (0.5 * lifetime) + 1


async def test_a_thousand_simultaneous_401s_cause_one_refresh() -> None:
    async with emulated(vehicles=20, consent_removed_fraction=0.05) as (emu, session), \
            provider_for(emu, session) as p:
        removed = set(emu.special_vins["consent_removed"])
        vins = [v.vin for v in emu.vehicles]
        before = await p.get()
        emu.invalidate_tokens()
        outcomes: list[str] = []

        async def request(vin: str) -> None:
            tok = p.current() or await p.get()
            for attempt in range(2):
                url = f"{emu.url}/v1/vehicle-data/autoapi-13/{vin}"
                async with session.get(url, headers={"Authorization": tok.authorization}) as r:
                    body = await r.read()
                    if r.status == 200:
                        outcomes.append("ok")
                        return
                    err = error_from_response(r.status, body, headers=r.headers)
                if isinstance(err, PermissionDeniedError):
                    outcomes.append("consent")  # a vehicle problem: the token is kept
                    return
                assert isinstance(err, AuthenticationError) and attempt == 0
                p.invalidate(tok)
                tok = await p.get()
            raise AssertionError("401 after a fresh token")

        await asyncio.gather(*(request(vins[i % len(vins)]) for i in range(1000)))
        assert emu.stats.token_requests == p.requests_made == 2
        assert outcomes.count("consent") == sum(1 for i in range(1000)
                                                if vins[i % len(vins)] in removed) > 0
        assert outcomes.count("ok") == 1000 - outcomes.count("consent")
        assert not p.invalidate(before)  # an old generation never clears the new token


async def test_invalidate_compares_generations() -> None:
    async with emulated() as (emu, session), provider_for(emu, session) as p:
        first = await p.get()
        assert p.invalidate(first) and p.current() is None
        assert not p.invalidate(first)
        second = await p.get()
        assert second.generation == 2 and not p.invalidate(first)
        assert p.current() is second


async def test_tokens_rejected_while_brand_new_are_refreshed_with_backoff() -> None:
    async with emulated() as (emu, session), provider_for(emu, session) as p:
        tok = await p.get()
        gaps = []
        for _ in range(3):
            assert p.invalidate(tok)
            started = time.perf_counter()
            tok = await p.get()
            gaps.append(time.perf_counter() - started)
        assert p.requests_made == 4
        assert gaps[0] < 0.1  # the first rejection is taken at its word
        assert gaps[1] >= 0.75 * INITIAL_DELAY and gaps[2] >= 0.75 * 2 * INITIAL_DELAY


# -- failures -------------------------------------------------------------------------------

async def test_endpoint_down_then_up_waiters_recover_together() -> None:
    async with emulated() as (emu, session), provider_for(emu, session) as p:
        emu.script_faults("token", [503, "drop", 503])
        started = time.perf_counter()
        tokens = await asyncio.gather(*(p.get() for _ in range(2000)))
        assert {t.generation for t in tokens} == {1}
        assert emu.stats.token_requests == p.requests_made == 4
        # Backoff between the steps (a dropped socket is retried at once): 0.2 s then 0.4 s.
        assert time.perf_counter() - started >= 0.75 * (INITIAL_DELAY + 2 * INITIAL_DELAY)


async def test_endpoint_down_waiters_fail_together_with_bounded_attempts() -> None:
    async with emulated() as (emu, session), provider_for(emu, session) as p:
        emu.script_faults("token", [503] * 4)
        results = await asyncio.gather(*(p.get() for _ in range(2000)),
                                       return_exceptions=True)
        assert all(isinstance(r, ServerError) for r in results)
        assert results[0] is results[-1]  # one failure, shared
        assert emu.stats.token_requests == p.requests_made == 4
        # The failure is not cached: the next caller gets a new attempt, after the backoff.
        started = time.perf_counter()
        tok = await p.get()
        assert tok.generation == 1 and emu.stats.token_requests == 5
        # The backoff runs from the 4th failure, which is a little before ``started`` (the
        # 2,000 waiters are woken in between): 50 ms of that interval are allowed for.
        assert time.perf_counter() - started >= 0.75 * 8 * INITIAL_DELAY - 0.05


async def test_stale_keep_alive_socket_is_retried_at_once() -> None:
    async with emulated() as (emu, session), provider_for(emu, session) as p:
        emu.script_faults("token", ["drop"])
        started = time.perf_counter()
        await p.get()
        assert p.requests_made == 2 and time.perf_counter() - started < INITIAL_DELAY * 0.75


async def test_refusal_is_raised_at_once_with_the_servers_description() -> None:
    async with emulated() as (emu, session):
        secret = "wrong-but-secret-value-123"
        creds = ClientCredentials(client_id=emu.client_id, client_secret=secret)
        async with provider_for(emu, session, credentials=creds) as p:
            results = await asyncio.gather(*(p.get() for _ in range(500)),
                                           return_exceptions=True)
            assert all(isinstance(r, TokenRefusedError) for r in results)
            err = results[0]
            assert isinstance(err, TokenRefusedError)
            assert err.error == "invalid_request"
            assert err.error_description == "client_secret is invalid"
            assert "client_secret is invalid" in str(err) and secret not in str(err)
            assert secret not in repr(err) and p.requests_made == 1
            with pytest.raises(TokenRefusedError):
                await p.get()
            assert p.requests_made == 2  # asked again, not a cached failure


async def test_connection_refused_is_a_transport_error_after_bounded_attempts() -> None:
    async with emulated() as (emu, _):
        url = emu.url
    # The emulator is gone: nothing listens on its port any more.
    creds = ClientCredentials(client_id="cid", client_secret="s3cr3t-value")
    async with aiohttp.ClientSession() as session:
        p = TokenProvider(creds, session=session, base_url=url, max_attempts=3)
        with anyio.fail_after(5), pytest.raises(TransportError) as info:
            await p.get()
        await p.aclose()
    assert p.requests_made == 3 and "s3cr3t" not in str(info.value)


async def test_slow_endpoint_times_out_per_attempt() -> None:
    async with emulated(latency=0.5) as (emu, session), provider_for(
            emu, session, request_timeout=0.1, max_attempts=2) as p:
        with pytest.raises(HMTimeoutError) as info:
            await p.get()
        assert info.value.timeout == "total" and p.requests_made == 2


@asynccontextmanager
async def tiny_token_server(handler: Callable[[web.Request], Any]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/access_tokens", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("body", [
    b'{"access_token": 12345, "expires_in": 300}',
    b'{"access_token": "tok-SECRET", "expires_in": 0}',
    b"<html>proxy login</html>",
])
async def test_malformed_token_answer_is_a_decode_error_without_the_token(body: bytes) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async with tiny_token_server(handler) as url, aiohttp.ClientSession() as session:
        p = TokenProvider(ClientCredentials("cid", "sec"), session=session, base_url=url)
        with pytest.raises(DecodeError) as info:
            await p.get()
        await p.aclose()
        assert p.requests_made == 1  # not retried: asking again will not fix the format
        assert "SECRET" not in str(info.value) and "12345" not in str(info.value)


async def test_token_request_is_json_with_accept_header() -> None:
    seen: list[tuple[str | None, str | None, dict[str, Any]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Accept"), request.content_type,
                     msgspec.json.decode(await request.read())))
        return web.json_response({"access_token": "abc", "expires_in": 300,
                                  "token_type": "bearer"})

    async with tiny_token_server(handler) as url, aiohttp.ClientSession() as session:
        async with TokenProvider(ClientCredentials("cid", "sec"), session=session,
                                 base_url=url + "/") as p:
            tok = await p.get()
        assert tok.authorization == "Bearer abc" and tok.scope is None
    assert seen == [("application/json", "application/json",
                     {"grant_type": "client_credentials", "client_id": "cid",
                      "client_secret": "sec"})]


# -- cancellation and closing --------------------------------------------------------------

async def test_a_cancelled_first_caller_does_not_break_the_refresh() -> None:
    async with emulated(latency=0.3) as (emu, session), provider_for(emu, session) as p:
        first = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        assert p.refreshing
        others = [asyncio.ensure_future(p.get()) for _ in range(100)]
        with anyio.move_on_after(0.05):
            await p.get()  # an anyio-cancelled waiter, too
        first.cancel()
        tokens = await asyncio.gather(*others)
        assert first.cancelled()
        assert {t.generation for t in tokens} == {1} and emu.stats.token_requests == 1


async def test_refresh_survives_when_every_waiter_is_cancelled() -> None:
    async with emulated(latency=0.2) as (emu, session), provider_for(emu, session) as p:
        waiters = [asyncio.ensure_future(p.get()) for _ in range(10)]
        await asyncio.sleep(0.05)
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await wait_idle(p)
        assert p.current() is not None and (await p.get()).generation == 1
        assert p.requests_made == emu.stats.token_requests == 1


async def test_aclose_cancels_the_refresh_and_fails_waiters_cleanly(
        caplog: pytest.LogCaptureFixture) -> None:
    async with emulated(latency=1.0) as (emu, session):
        p = TokenProvider(emu.client_credentials, session=session, base_url=emu.url)
        waiter = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        with anyio.fail_after(0.5):
            await p.aclose()
        with pytest.raises(HMError, match="closed"):
            await waiter
        assert not p.refreshing
        with pytest.raises(HMError, match="closed"):
            await p.get()
    assert not [r for r in caplog.records if r.name == "asyncio"]


# -- secrets --------------------------------------------------------------------------------

async def test_no_secret_or_token_in_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hm_async")
    async with emulated() as (emu, session), provider_for(emu, session) as p:
        emu.script_faults("token", [503])
        tok = await p.get()
        p.invalidate(tok)
        tok2 = await p.get()
        texts = [repr(tok), str(tok2), repr(p), repr(emu.client_credentials),
                 *(r.getMessage() for r in caplog.records)]
        secrets = [tok.value, tok2.value, emu.client_secret]
        assert caplog.records  # the refreshes were logged ...
        for text in texts:
            for secret in secrets:
                assert secret not in text  # ... without any secret
        with pytest.raises(AttributeError):
            setattr(tok, "value", "x")  # noqa: B010
