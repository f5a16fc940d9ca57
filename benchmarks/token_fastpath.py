"""Cost of the token fast path (a cached, young token) against a bare attribute read.

Every request asks the provider for the token, so this path runs once per API call. It is
measured the way the transport calls it (``provider.current() or await provider.get()``)
and as the plain synchronous ``current()``, against reading an attribute of an object in
the same run, and the ratio is printed. Run: ``python benchmarks/token_fastpath.py``.
"""

from __future__ import annotations

import asyncio
import time
import timeit

import aiohttp

from hm_async._tokens import TokenProvider
from hm_async.emulator import Emulator

N = 1_000_000
REPEAT = 5


class Holder:
    __slots__ = ("token",)

    def __init__(self, token: object) -> None:
        self.token = token


def best_per_call(stmt: str, namespace: dict[str, object], number: int = N) -> float:
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=REPEAT, number=number)) / number


async def main() -> None:
    async with Emulator() as emu, aiohttp.ClientSession() as session:
        provider = TokenProvider(emu.client_credentials, session=session, base_url=emu.url)
        token = await provider.get()
        holder = Holder(token)
        ns: dict[str, object] = {"p": provider, "h": holder}
        bare = best_per_call("h.token", ns)
        current = best_per_call("p.current()", ns)
        clock = best_per_call("m()", {"m": time.monotonic})

        async def via_get(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                _ = provider.current() or await provider.get()
            return (time.perf_counter() - started) / n

        async def via_attr(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                _ = holder.token
            return (time.perf_counter() - started) / n

        awaited = min([await via_get(N // 5) for _ in range(REPEAT)])
        loop_bare = min([await via_attr(N // 5) for _ in range(REPEAT)])
        assert provider.requests_made == 1, "the fast path must not request tokens"
        await provider.aclose()

    print(f"bare attribute read           {bare * 1e6:8.4f} µs/call")
    print(f"time.monotonic() alone        {clock * 1e6:8.4f} µs/call")
    print(f"provider.current()            {current * 1e6:8.4f} µs/call   "
          f"ratio {current / bare:5.1f}x")
    print(f"in a coroutine loop: attribute {loop_bare * 1e6:8.4f} µs/call")
    print(f"current() or await get()      {awaited * 1e6:8.4f} µs/call   "
          f"ratio {awaited / loop_bare:5.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
