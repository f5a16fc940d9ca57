"""Fleet fan-out: client CPU per VIN of hm.poll against baselines measured in the same run.

The emulator runs in a *separate process* (``python -m hm_async.emulator --json``) so its
work is not charged to the client; the figure that matters is the client process's CPU time
per VIN (``time.process_time``), not wall time, because a shared machine's wall clock lies.

Rows printed:

1. hm.poll, typed decode          vs a bare aiohttp loop that reads and discards the body
   (target: <= 1.0x the bare loop's CPU per VIN);
2. hm.poll                        vs an httpx.AsyncClient loop calling ``.json()``
   (target: >= 10x less CPU per VIN);
3. peak RSS growth while polling ``--rss-vins`` VINs (target: <= 50 MB);
4. wall time with server latency L and concurrency C vs the ideal N*L/C (target: within 10%).

Run: ``python benchmarks/fanout.py`` (``--quick`` for a smoke run; ``--profile`` prints where
hm.poll's CPU goes). Each measurement is repeated ``--repeat`` times and the best kept.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from hm_async import ClientCredentials, HMClient, RateLimits

#: The baselines have no rate limiter; unpaced brands (math.inf) keep the comparison about
#: the fan-out engine. Adaptive pacing (the default for unconfigured brands) starts at
#: 10 req/s and would measure the slow start instead.
UNPACED = RateLimits(default=math.inf)

Vins = list[tuple[str, str]]


class Server:
    """The emulator in a child process, so its CPU is not the client's."""

    def __init__(self, *extra: str, canned: bool = False) -> None:
        command = ([sys.executable, os.path.join(os.path.dirname(__file__), "canned_server.py")]
                   if canned else
                   [sys.executable, "-m", "hm_async.emulator", "--port", "0", "--json",
                    "--token-lifetime", "3600"])
        self.proc = subprocess.Popen([*command, "--vehicles", "1000", *extra],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.url: str = info["url"]
        self.client_id: str = info["client_id"]
        self.client_secret: str = info["client_secret"]
        self.vehicles: Vins = [(v["vin"], v["brand"]) for v in info["vehicles"]]

    def credentials(self) -> ClientCredentials:
        return ClientCredentials(client_id=self.client_id, client_secret=self.client_secret)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def token_for(server: Server) -> str:
    async with aiohttp.ClientSession() as s, s.post(
        server.url + "/v1/access_tokens",
        json={"grant_type": "client_credentials", "client_id": server.client_id,
              "client_secret": server.client_secret},
    ) as r:
        return str((await r.json())["access_token"])


async def run_workers(n: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> None:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bare_aiohttp(server: Server, vins: Vins, concurrency: int) -> None:
    token = await token_for(server)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency)
    ) as session:
        async def one(i: int) -> None:
            url = f"{server.url}/v1/vehicle-data/autoapi-13/{vins[i][0]}"
            async with session.get(url, headers=headers) as r:
                await r.read()

        await run_workers(len(vins), concurrency, one)


async def lean_aiohttp_decode(server: Server, vins: Vins, concurrency: int) -> None:
    """The floor for any aiohttp client that decodes: prebuilt URL and headers, typed
    decode, and no client logic at all (no retries, limits, tokens or result objects)."""
    from multidict import CIMultiDict
    from yarl import URL

    from hm_async.models import decode_vehicle_data

    token = await token_for(server)
    headers = CIMultiDict({"Authorization": f"Bearer {token}", "User-Agent": "bench",
                           "Accept": "application/json", "Accept-Encoding": "gzip, deflate"})
    prefix = f"{server.url}/v1/vehicle-data/autoapi-13/"
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=10)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        async def one(i: int) -> None:
            async with session.request("GET", URL(prefix + vins[i][0], encoded=True),
                                       headers=headers, timeout=timeout,
                                       allow_redirects=False) as r:
                decode_vehicle_data(await r.read())

        await run_workers(len(vins), concurrency, one)


async def httpx_loop(server: Server, vins: Vins, concurrency: int) -> None:
    import httpx

    token = await token_for(server)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        async def one(i: int) -> None:
            r = await client.get(f"{server.url}/v1/vehicle-data/autoapi-13/{vins[i][0]}")
            r.json()

        await run_workers(len(vins), concurrency, one)


async def hm_poll(server: Server, vins: Vins, concurrency: int, *,
                  lean_http: bool = True) -> None:
    async with HMClient(server.credentials(), base_url=server.url, lean_http=lean_http,
                        max_connections=concurrency, rate_limits=UNPACED) as hm:
        await hm.tokens.get()  # token fetch outside the measured loop, as for the baselines
        failed = 0
        async for r in hm.poll(vins, concurrency=concurrency):
            failed += not r.ok
        if failed:
            raise SystemExit(f"hm.poll: {failed} VINs failed; the benchmark needs a clean run")


async def hm_poll_aiohttp(server: Server, vins: Vins, concurrency: int) -> None:
    """hm.poll with every request on aiohttp's ClientSession (``lean_http=False``)."""
    await hm_poll(server, vins, concurrency, lean_http=False)


def cpu_per_vin(fns: list[Callable[[Server, Vins, int], Awaitable[None]]], server: Server,
                vins: Vins, concurrency: int, repeat: int) -> list[float]:
    """Best client CPU seconds per VIN of each loop; rounds interleave the loops, so drift
    of a shared machine (or of the server) hits all of them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            started = time.process_time()
            asyncio.run(fn(server, vins, concurrency))
            best[i] = min(best[i], (time.process_time() - started) / len(vins))
    return best


def cycle(vehicles: Vins, n: int) -> Vins:
    return [vehicles[i % len(vehicles)] for i in range(n)]


def _rss_mb() -> float:
    """Current resident set size (not the high-water mark, which earlier runs may have set)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_growth_mb(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    """(peak RSS growth, RSS growth at the end) while polling ``n`` VINs from a generator.

    RSS is sampled every 50 ms; the baseline is taken after a warm-up poll.
    """

    async def main() -> tuple[float, float]:
        async with HMClient(server.credentials(), base_url=server.url,
                            max_connections=concurrency, rate_limits=UNPACED) as hm:
            await hm.tokens.get()
            warm = [r async for r in hm.poll(server.vehicles[:500], concurrency=concurrency)]
            del warm
            gc.collect()
            base = peak = _rss_mb()

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, _rss_mb())
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            lazy = (server.vehicles[i % len(server.vehicles)] for i in range(n))
            count = 0
            async for r in hm.poll(lazy, concurrency=concurrency):
                count += r.ok
            sampler.cancel()
            assert count == n, f"{n - count} VINs failed"
            return peak - base, _rss_mb() - base

    return asyncio.run(main())


def wall_vs_ideal(n: int, concurrency: int, latency: str) -> tuple[float, float]:
    """Wall time over the ideal N*L/C of hm.poll and of the bare aiohttp loop.

    ``latency`` is the server's: seconds, or ``min,max`` drawn uniformly. The server is
    ``canned_server.py`` (see its docstring for why not the emulator); the clock starts
    after the client is set up and has its token.
    """
    server = Server("--latency", latency, canned=True)
    vins = cycle(server.vehicles, n)
    ideal = n * _mean_latency(latency) / concurrency

    async def ours() -> float:
        async with HMClient(server.credentials(), base_url=server.url,
                            max_connections=concurrency, rate_limits=UNPACED) as hm:
            await hm.tokens.get()
            started = time.perf_counter()
            ok = 0
            async for r in hm.poll(vins, concurrency=concurrency):
                ok += r.ok
            assert ok == n, f"{n - ok} VINs failed"
            return time.perf_counter() - started

    async def bare() -> float:
        started = time.perf_counter()
        await bare_aiohttp(server, vins, concurrency)  # includes its session setup
        return time.perf_counter() - started

    try:
        return asyncio.run(ours()) / ideal, asyncio.run(bare()) / ideal
    finally:
        server.close()


def _mean_latency(latency: str) -> float:
    parts = [float(p) for p in latency.split(",")]
    return sum(parts) / len(parts)


def profile_poll(server: Server, vins: Vins, concurrency: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(hm_poll(server, vins, concurrency))
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vins", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-vins", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rss-only", action="store_true",
                        help="only the memory row, in a process that ran nothing before")
    args = parser.parse_args()
    if args.quick:
        args.vins, args.repeat, args.rss_vins = 500, 1, 5000

    print(f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
          f"{os.cpu_count()} cores; {args.vins} VINs, concurrency {args.concurrency}, "
          f"best of {args.repeat}")
    if args.rss_only:
        server = Server()
        try:
            peak, end = rss_growth_mb(server, args.rss_vins, args.concurrency)
        finally:
            server.close()
        print(f"RSS growth polling {args.rss_vins} VINs (fresh process): peak {peak:.1f} MB, "
              f"at the end {end:.1f} MB (target <= 50)")
        return
    server = Server()
    try:
        vins = cycle(server.vehicles, args.vins)
        asyncio.run(hm_poll(server, vins[:200], args.concurrency))  # warm up both sides
        loops: list[Callable[[Server, Vins, int], Awaitable[None]]] = [
            bare_aiohttp, lean_aiohttp_decode, hm_poll, hm_poll_aiohttp]
        try:
            import httpx  # noqa: F401

            loops.append(httpx_loop)
        except ImportError:
            pass
        bare, floor, ours, ours_aiohttp, *rest = cpu_per_vin(loops, server, vins, args.concurrency,
                                               args.repeat)
        hx = rest[0] if rest else float("nan")
        print(f"{'client CPU per VIN':40s} {'µs':>8s} {'ratio':>8s}")
        print(f"{'bare aiohttp loop (read, discard)':40s} {bare * 1e6:8.1f} {1.0:8.2f}")
        print(f"{'floor: lean aiohttp + typed decode':40s} {floor * 1e6:8.1f} "
              f"{floor / bare:8.2f}   (no client logic at all)")
        print(f"{'hm.poll (typed decode)':40s} {ours * 1e6:8.1f} {ours / bare:8.2f}"
              f"   target <= 1.00; {ours / floor:.2f}x the floor")
        print(f"{'hm.poll, lean_http=False (all aiohttp)':40s} {ours_aiohttp * 1e6:8.1f} "
              f"{ours_aiohttp / bare:8.2f}   the lean GET lane saves "
              f"{(ours_aiohttp - ours) * 1e6:.0f} µs per VIN")
        print(f"{'httpx loop (.json())':40s} {hx * 1e6:8.1f} {hx / bare:8.2f}"
              f"   hm.poll uses {hx / ours:.1f}x less CPU (target >= 10)")
        if args.profile:
            profile_poll(server, vins, args.concurrency)
        peak, end = rss_growth_mb(server, args.rss_vins, args.concurrency)
        print(f"RSS growth polling {args.rss_vins} VINs: peak {peak:.1f} MB, at the end "
              f"{end:.1f} MB (target <= 50)")
    finally:
        server.close()
    n = 4000 if not args.quick else 500
    for latency, label in (("0.05", "fixed 50 ms"), ("0.025,0.075", "25-75 ms, mean 50")):
        runs = [wall_vs_ideal(n, args.concurrency, latency) for _ in range(args.repeat)]
        ours = min(r[0] for r in runs)
        bare = min(r[1] for r in runs)
        print(f"wall time / ideal N*L/C, {n} VINs, latency {label}, concurrency "
              f"{args.concurrency}: hm.poll {ours:.3f}x (target <= 1.10), bare aiohttp loop "
              f"{bare:.3f}x (canned server)")


if __name__ == "__main__":
    main()
