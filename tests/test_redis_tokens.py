"""RedisTokenStore against a real redis-server and the emulator: one token for many providers.

Each provider has its own store (its own connection pool), exactly as separate worker
processes would; the multi-process run is in test_redis_workers.py.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis_server import RedisServer, free_port, redis_server

from hm_async import HMClient, TokenProvider
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.redis import RedisTokenStore, SharedStateError

pytestmark = pytest.mark.anyio
__all__ = ["redis_server"]


async def providers(stack: AsyncExitStack, emu: Emulator, url: str, n: int,
                    **store_kwargs: object) -> list[TokenProvider]:
    session = await stack.enter_async_context(aiohttp.ClientSession())
    out = []
    for _ in range(n):
        store = RedisTokenStore(url, **store_kwargs)  # type: ignore[arg-type]
        p = TokenProvider(emu.client_credentials, session=session, base_url=emu.url,
                          store=store)
        stack.push_async_callback(p.aclose)
        out.append(p)
    return out


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(token_lifetime=2.0)) as e:
        yield e


async def test_many_providers_one_token_request(emu: Emulator,
                                                redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        ps = await providers(stack, emu, redis_server.url, 8)
        tokens = await asyncio.gather(*(p.get() for _ in range(20) for p in ps))
        assert len({t.value for t in tokens}) == 1
        assert emu.stats.token_requests == 1
        assert sum(p.requests_made for p in ps) == 1


async def test_soft_refresh_by_the_first_past_the_window(emu: Emulator,
                                                         redis_server: RedisServer) -> None:
    """6 providers using their 2 s tokens for 5 s: one token request per refresh cycle.

    A cycle starts when the first provider passes its soft window (50-60% of the life, i.e.
    1.0-1.2 s after the request) and ends with the next request; so consecutive token
    requests are >= 1.0 s apart (less 50 ms of scheduling slack) and < 2 s (the token never
    runs out), and no request is refused as expired (no 401).
    """
    async with AsyncExitStack() as stack:
        ps = await providers(stack, emu, redis_server.url, 6)
        loop = asyncio.get_running_loop()
        end = loop.time() + 5.0
        while loop.time() < end:
            for p in ps:
                await p.get()
            await asyncio.sleep(0.01)
        times = emu.stats.token_times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) >= 4 and all(0.95 <= g < 2.0 for g in gaps), gaps
        assert emu.stats.tokens_issued == len(times)
        assert sum(p.requests_made for p in ps) == len(times)
        assert emu.stats.count(status=401) == 0


async def test_401_drops_exactly_that_token(emu: Emulator, redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        a, b = await providers(stack, emu, redis_server.url, 2)
        old = await a.get()
        assert (await b.get()).value == old.value
        assert a.invalidate(old)
        new = await a.get()
        assert new.value != old.value and emu.stats.token_requests == 2
        # b's own 401 for the old token: it adopts a's new one and deletes nothing newer
        b_old = b.current()
        assert b_old is not None and b.invalidate(b_old)
        assert (await b.get()).value == new.value
        assert emu.stats.token_requests == 2
        c, = await providers(stack, emu, redis_server.url, 1)
        assert (await c.get()).value == new.value and emu.stats.token_requests == 2


async def test_dead_lock_holder_costs_at_most_the_lock_ttl(emu: Emulator,
                                                           redis_server: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        p, = await providers(stack, emu, redis_server.url, 1, lock_ttl=0.3)
        store = p._store
        assert isinstance(store, RedisTokenStore)
        _, lock_key = store._keys(f"{emu.url} {emu.client_id}")
        r = aioredis.Redis.from_url(redis_server.url)
        # a worker took the lock and was SIGKILLed before publishing
        assert await r.set(lock_key, "dead-worker", nx=True, px=300)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await p.get()
        waited = loop.time() - started
        await r.aclose()
        assert 0.2 <= waited < 1.5, waited
        assert emu.stats.token_requests == 1


async def test_unreachable_redis_names_the_url_without_password(emu: Emulator) -> None:
    url = f"redis://worker:s3cret-pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(SharedStateError) as info:
        async with HMClient(emu.client_credentials, base_url=emu.url,
                            token_store=RedisTokenStore(url)):
            pass
    text = str(info.value)
    assert "127.0.0.1" in text and "worker" in text and "s3cret-pw" not in text
    assert emu.stats.token_requests == 0


@pytest.mark.parametrize("policy", ["degrade", "fail"])
async def test_redis_lost_mid_run(emu: Emulator, policy: str,
                                  caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer().start()
    try:
        async with AsyncExitStack() as stack:
            p, = await providers(stack, emu, server.url, 1, on_redis_error=policy)
            first = await p.get()
            server.stop()
            assert p.invalidate(first)
            caplog.set_level(logging.WARNING, logger="hm_async")
            if policy == "fail":
                with pytest.raises(SharedStateError) as info:
                    await p.get()
                assert str(server.port) in str(info.value)
            else:
                second = await p.get()
                assert second.value != first.value
                assert p.invalidate(second)
                await p.get()  # still in-process, and only one WARNING for the loss
                warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                            and "degraded" in r.getMessage()]
                assert len(warnings) == 1 and p._store.degraded
    finally:
        server.stop()


async def test_client_goes_on_degraded_and_the_summary_says_so(emu: Emulator) -> None:
    from rich.console import Console

    from hm_async._cli_poll import run_poll, summary_table

    server = RedisServer().start()
    try:
        async with HMClient(emu.client_credentials, base_url=emu.url,
                            token_store=RedisTokenStore(server.url)) as hm:
            vins = [(v.vin, v.brand) for v in emu.vehicles[:20]]
            console = Console(file=io.StringIO(), width=200)
            first = await run_poll(hm, vins, None, concurrency=4, console=console,
                                   show_progress=False)
            assert first.progress.ok == 20 and not hm.degraded
            server.stop()
            token = hm.tokens.current()
            assert token is not None and hm.tokens.invalidate(token)  # needs a new one
            second = await run_poll(hm, vins, None, concurrency=4, console=console,
                                    show_progress=False)
            assert second.progress.done == 20 and second.progress.ok == 20
            assert hm.degraded
            console.print(summary_table(second, hm))
            assert "DEGRADED" in console.file.getvalue()  # type: ignore[attr-defined]
    finally:
        server.stop()
