"""RedisDedupeWindow with several real processes against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import pytest
from redis_server import RedisServer, redis_server

from hm_async.redis import RedisDedupeWindow

pytestmark = pytest.mark.anyio
__all__ = ["redis_server"]

IDS = 1000

# One worker process: connects, says "ready" and waits for "go" on stdin (so that all of
# them race, however slowly the machine starts processes), then claims every id in its
# own order, marks the claimed ones done (or stays in progress if told to hang), and
# prints the ids it won as JSON.
_WORKER = """
import asyncio, json, random, sys
from hm_async.redis import RedisDedupeWindow

async def main(url, seed, hang):
    ids = [f"msg-{i}" for i in range(int(sys.argv[4]))]
    random.Random(seed).shuffle(ids)
    won = []
    async with RedisDedupeWindow(url, in_progress_ttl=1, seen_ttl=60) as window:
        await window.claim(f"warm-up-{seed}")  # the connection is made before the race
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for mid in ids:
            if await window.claim(mid):
                won.append(mid)
                if not hang:
                    await window.done(mid)
        print(json.dumps(won), flush=True)
        if hang:
            await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "hang"))
"""


async def run_workers(url: str, n: int, *, hang: bool = False,
                      ids: int = IDS) -> list[tuple[asyncio.subprocess.Process, list[str]]]:
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER, url, str(seed), "hang" if hang else "run", str(ids),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE) for seed in range(n)]
    for proc in procs:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
    for proc in procs:  # all connected: now they race
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    out = []
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        out.append((proc, json.loads(line)))
    return out


async def test_each_message_is_claimed_by_exactly_one_of_four_processes(
        redis_server: RedisServer) -> None:
    results = await run_workers(redis_server.url, 4)
    for proc, _ in results:
        assert await proc.wait() == 0
    won = [mid for _, ids in results for mid in ids]
    assert len(won) == IDS and len(set(won)) == IDS
    assert all(ids for _, ids in results)  # they really raced
    # a redelivery to a fresh worker later is still a duplicate (done = seen)
    async with RedisDedupeWindow(redis_server.url) as window:
        assert not await window.claim("msg-7")
        assert await window.claim("msg-new")


async def test_a_dead_workers_claims_expire_but_done_ones_stay(
        redis_server: RedisServer) -> None:
    async with RedisDedupeWindow(redis_server.url, in_progress_ttl=1) as window:
        assert await window.claim("processed") and await window.claim("failed")
        await window.done("processed")
        await window.release("failed")
        assert await window.claim("failed")  # released: a redelivery is processed
        await window.done("failed")
    [(proc, hung)] = await run_workers(redis_server.url, 1, hang=True, ids=50)
    assert len(hung) == 50  # still "in progress" in a process we now kill
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    async with RedisDedupeWindow(redis_server.url) as window:
        assert not await window.claim(hung[0])  # in progress: another worker holds it
        await asyncio.sleep(1.2)
        assert await window.claim(hung[0])  # its claim expired: the redelivery runs
        assert not await window.claim("processed") and not await window.claim("failed")
        # one worker's release never deletes another worker's claim
        other = RedisDedupeWindow(redis_server.url)
        await other.release(hung[0])
        await other.aclose()
        assert not await window.claim(hung[0])


async def test_redis_lost_degrades_to_a_local_window() -> None:
    server = RedisServer().start()
    try:
        async with RedisDedupeWindow(server.url) as window:
            assert await window.claim("a")
            server.stop()
            assert await window.claim("b") and window.degraded
            await window.done("b")
            assert not await window.claim("b")
    finally:
        server.stop()


async def test_everything_works_for_an_acl_user_limited_as_the_docs_say(
        redis_server: RedisServer) -> None:
    """docs/scale-out.md tells operators which keys and commands to grant; hold it to that."""
    import redis.asyncio as aioredis

    from hm_async.redis import RedisLimiter, RedisTokenStore

    doc = (Path(__file__).parents[1] / "docs" / "scale-out.md").read_text()
    listed = re.search(r"the commands\s+the scripts need \(`([^`]+)`\)", doc)
    assert listed is not None
    commands = listed.group(1).split()
    assert "TIME" in commands and "EVALSHA" in commands
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.execute_command("ACL", "SETUSER", "hm", "on", ">pw-hm", "resetkeys",
                                "~hm_async:*", "-@all", *(f"+{c.lower()}" for c in commands))
    await admin.aclose()
    url = f"redis://hm:pw-hm@127.0.0.1:{redis_server.port}/0"
    async with RedisLimiter(url, {"bmw": 50.0}, on_redis_error="fail") as lim, \
            RedisDedupeWindow(url, on_redis_error="fail") as window:
        gen = await lim.acquire("bmw")
        lim.on_rate_limited("bmw", 0.1, generation=gen)
        await asyncio.sleep(0.05)
        await lim.acquire("kia")  # adaptive
        assert await window.claim("m1") and not await window.claim("m1")
        await window.done("m1")
        await window.release("m1")
        assert not lim.degraded and not window.degraded
    from hm_async import AccessToken

    store = RedisTokenStore(url, on_redis_error="fail")

    async def fetch() -> AccessToken:
        now = asyncio.get_running_loop().time()
        return AccessToken("tok-value", generation=1, issued_at=now, expires_at=now + 60)

    clock = asyncio.get_running_loop().time
    token = await store.obtain(fetch, namespace="acl", stale=None, clock=clock)
    other = RedisTokenStore(url)
    adopted = await other.obtain(fetch, namespace="acl", stale=None, clock=clock)
    await other.aclose()
    assert adopted.value == token.value and adopted.generation == 0
    await store.obtain(fetch, namespace="acl", stale=token, rejected=True, clock=clock)
    await store.aclose()
