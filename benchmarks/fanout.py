"""Fleet fan-out: client CPU per VIN of hm.poll against baselines measured in the same run.

The CPU rows run against a static server that is not the bottleneck: nginx (started from here
with a generated config in a temporary directory, serving one canned vehicle-data JSON for
any path) when ``/usr/sbin/nginx`` (or ``nginx`` on PATH) exists, else ``canned_server.py``.
Both run in *separate processes*, so their work is not charged to the client; the figure that
matters is the client process's CPU time per VIN (``time.process_time``), not wall time,
because a shared machine's wall clock lies.

Rows printed:

1. hm.poll, typed decode, unpaced vs a bare aiohttp loop that reads and discards the body
   (target: <= 0.50x the bare loop's CPU per VIN);
2. hm.poll with a binding per-brand limit (``--paced-rate`` req/s per brand) vs the same
   poll unpaced (target: <= 1.2x), and its control: the bare aiohttp loop paced by a plain
   sleep to the same schedule, vs the bare loop unpaced (what spreading the same requests
   out in time costs on the machine by itself); then the same limit released every 0.1 s
   and 0.25 s (``RateLimits(pacing_tick=)``, default 0.02 s): fewer, bigger bursts;
3. hm.poll vs an httpx.AsyncClient loop calling ``.json()`` (target: >= 10x less CPU);
4. with uvloop installed (``hm-async[speed]``): hm.poll on uvloop's event loop;
5. peak RSS growth while polling ``--rss-vins`` VINs (target: <= 50 MB);
6. wall time with server latency L and concurrency C vs the ideal N*L/C (target: within 10%).

Run: ``python benchmarks/fanout.py`` (``--quick`` for a smoke run; ``--cpu-only`` for rows
1-4; ``--profile`` prints where hm.poll's CPU goes). Rounds (``--repeat``) interleave the
loops; a CPU row prints its best time and the median over rounds of its ratio to the
baseline measured in the same round.
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from hm_async import ClientCredentials, HMClient, RateLimits
from hm_async._ratelimit import PACING_TICK

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


class NginxServer(Server):
    """nginx serving one canned vehicle-data JSON for any path (and a canned token).

    A C server with one worker process answers a keep-alive GET in a few microseconds, so
    the client is measured, not the server. The vehicles and the payload come from the
    emulator's generator, as in ``canned_server.py``.
    """

    def __init__(self, nginx: str, vehicles: int = 1000) -> None:
        sys.path.insert(0, os.path.dirname(__file__))
        from canned_server import TOKEN, canned_vehicles, vehicle_json

        from hm_async.emulator._vehicle_data import VehicleDataSource

        self.tmp = tempfile.TemporaryDirectory(prefix="hm-bench-nginx-")
        root = self.tmp.name
        os.chmod(root, 0o755)  # nginx's workers run as another user when started by root
        self.vehicles = canned_vehicles(vehicles)
        source = VehicleDataSource(failure_fraction=0.0, update_interval=3600.0)
        vin, brand = self.vehicles[0]
        with open(os.path.join(root, "vehicle.json"), "wb") as fh:
            fh.write(vehicle_json(source, vin, brand, "canned"))
        port = _free_port()
        token = TOKEN.decode().replace("'", "")
        with open(os.path.join(root, "nginx.conf"), "w", encoding="ascii") as fh:
            fh.write(f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        default_type application/json;
        location = /v1/access_tokens {{ return 200 '{token}'; }}
        location / {{ try_files /vehicle.json =404; }}
    }}
}}
""")
        self.proc = subprocess.Popen(  # type: ignore[assignment]
            [nginx, "-p", root, "-e", f"{root}/error.log", "-c", f"{root}/nginx.conf"],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise SystemExit(f"nginx did not start; see {root}/error.log") from None
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"
        self.client_id = self.client_secret = "canned"

    def close(self) -> None:
        super().close()
        self.tmp.cleanup()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def static_server() -> tuple[Server, str]:
    """nginx if installed, else the canned server; and its name for the printout."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else None)
    if nginx is not None:
        return NginxServer(nginx), "nginx"
    return Server(canned=True), "canned_server.py"


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


async def bare_aiohttp(server: Server, vins: Vins, concurrency: int,
                       release_at: Callable[[int], float] | None = None) -> None:
    """The baseline: GET each VIN, read and discard the body. With ``release_at``, request
    ``i`` first sleeps until that loop time (the paced control)."""
    token = await token_for(server)
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency)
    ) as session:
        async def one(i: int) -> None:
            if release_at is not None and (delay := release_at(i) - loop.time()) > 0:
                await asyncio.sleep(delay)
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


async def hm_poll(server: Server, vins: Vins | AsyncIterator[tuple[str, str]],
                  concurrency: int, *,
                  lean_http: bool = True, rate_limits: RateLimits = UNPACED) -> None:
    async with HMClient(server.credentials(), base_url=server.url, lean_http=lean_http,
                        max_connections=concurrency, rate_limits=rate_limits) as hm:
        await hm.tokens.get()  # token fetch outside the measured loop, as for the baselines
        failed = 0
        async for r in hm.poll(vins, concurrency=concurrency):
            failed += not r.ok
        if failed:
            raise SystemExit(f"hm.poll: {failed} VINs failed; the benchmark needs a clean run")


async def hm_poll_aiohttp(server: Server, vins: Vins, concurrency: int) -> None:
    """hm.poll with every request on aiohttp's ClientSession (``lean_http=False``)."""
    await hm_poll(server, vins, concurrency, lean_http=False)


def hm_poll_paced(rate: float, tick: float = PACING_TICK,
                  ) -> Callable[[Server, Vins, int], Awaitable[None]]:
    """hm.poll with every brand limited to ``rate`` requests per second (a binding limit
    when ``rate`` times the number of brands is below what the unpaced poll reaches),
    released every ``tick`` seconds (``RateLimits(pacing_tick=)``)."""
    limits = RateLimits(default=rate, pacing_tick=tick)

    async def paced(server: Server, vins: Vins, concurrency: int) -> None:
        await hm_poll(server, vins, concurrency, rate_limits=limits)

    return paced


def bare_aiohttp_paced(rate: float) -> Callable[[Server, Vins, int], Awaitable[None]]:
    """The control for the paced row: the bare aiohttp loop with the simplest pacer there
    is -- request ``k`` waits (``asyncio.sleep``) for its slot on a fixed schedule of
    ``rate`` per brand times the brands, released in batches every ``PACING_TICK`` like the
    limiter's grants. No limiter, no hm_async code. Its CPU over the unpaced bare loop is
    what doing the same requests spread out in time costs on this machine by itself (the
    event loop sleeping between batches: on a VM the halted virtual CPU, and caches other
    processes reuse meanwhile), which no client can avoid."""

    async def paced(server: Server, vins: Vins, concurrency: int) -> None:
        per_second = rate * len({b for _, b in vins})
        batch = max(1, round(per_second * PACING_TICK))
        started = asyncio.get_running_loop().time()
        await bare_aiohttp(server, vins, concurrency,
                           release_at=lambda i: started + (i // batch) * batch / per_second)

    return paced


async def hm_poll_async_source(server: Server, vins: Vins, concurrency: int) -> None:
    """hm.poll fed by an async generator that never waits (a cursor with rows buffered)."""

    async def rows() -> AsyncIterator[tuple[str, str]]:
        for item in vins:
            yield item

    await hm_poll(server, rows(), concurrency)


async def hm_poll_uvloop(server: Server, vins: Vins, concurrency: int) -> None:
    """hm.poll as it is, run on uvloop's event loop by :func:`cpu_per_vin`."""
    await hm_poll(server, vins, concurrency)


Loop = Callable[[Server, Vins, int], Awaitable[None]]


def _run(fn: Loop, server: Server, vins: Vins, concurrency: int) -> None:
    if fn is hm_poll_uvloop:
        import uvloop

        uvloop.run(fn(server, vins, concurrency))
    else:
        asyncio.run(fn(server, vins, concurrency))


def cpu_per_vin(fns: list[Loop], server: Server, vins: Vins, concurrency: int,
                repeat: int, wall: list[list[float]] | None = None) -> list[list[float]]:
    """Client CPU seconds per VIN of each loop in each round; rounds interleave the loops,
    so drift of a shared machine (or of the server) hits all of them alike. ``wall``, if
    given, receives each run's wall time in seconds, in the same shape."""
    rounds: list[list[float]] = [[] for _ in fns]
    if wall is not None:
        wall[:] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            started, clock = time.process_time(), time.perf_counter()
            _run(fn, server, vins, concurrency)
            rounds[i].append((time.process_time() - started) / len(vins))
            if wall is not None:
                wall[i].append(time.perf_counter() - clock)
    return rounds


def same_round_ratio(rounds: list[float], baseline: list[float]) -> float:
    """The median over rounds of a loop's CPU over the baseline's CPU in the same round:
    on a shared machine, neighbouring measurements see the same load, so their ratio is
    steadier than a ratio of two minima taken at different moments."""
    return statistics.median(a / b for a, b in zip(rounds, baseline, strict=True))


def same_round_difference(rounds: list[float], baseline: list[float]) -> float:
    """The median over rounds of a loop's CPU minus the baseline's in the same round."""
    return statistics.median(a - b for a, b in zip(rounds, baseline, strict=True))


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


def profile_poll(server: Server, vins: Vins, concurrency: int, limits: RateLimits) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(hm_poll(server, vins, concurrency, rate_limits=limits))
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(25)


def cpu_rows(args: argparse.Namespace) -> None:
    """Client CPU per VIN of every loop against the static server, rounds interleaved."""
    server, name = static_server()
    try:
        vins = cycle(server.vehicles, args.vins)
        asyncio.run(hm_poll(server, vins[:200], args.concurrency))  # warm up both sides
        paced = hm_poll_paced(args.paced_rate)
        control = bare_aiohttp_paced(args.paced_rate)
        coarser = [(tick, hm_poll_paced(args.paced_rate, tick)) for tick in (0.1, 0.25)]
        loops: list[Loop] = [bare_aiohttp, hm_poll, paced, control,
                             *(fn for _, fn in coarser), lean_aiohttp_decode,
                             hm_poll_aiohttp, hm_poll_async_source]
        try:
            import httpx  # noqa: F401

            if not args.no_httpx:
                loops.append(httpx_loop)
        except ImportError:
            pass
        try:
            import uvloop  # noqa: F401

            loops.append(hm_poll_uvloop)
        except ImportError:
            pass
        rounds = dict(zip(loops, cpu_per_vin(loops, server, vins, args.concurrency,
                                              args.repeat), strict=True))
        base = rounds[bare_aiohttp]
        ours = rounds[hm_poll]
        brands = len({b for _, b in vins})
        print(f"server: {name}; paced: {args.paced_rate:g} req/s for each of {brands} brands; "
              f"ratio = median over {args.repeat} rounds of the same-round CPU ratio")
        print(f"{'client CPU per VIN':44s} {'best µs':>8s} {'ratio':>8s}")

        def row(label: str, fn: Loop, note: str = "") -> None:
            print(f"{label:44s} {min(rounds[fn]) * 1e6:8.1f} "
                  f"{same_round_ratio(rounds[fn], base):8.2f}   {note}")

        row("bare aiohttp loop (read, discard)", bare_aiohttp)
        row("hm.poll (typed decode), unpaced", hm_poll, "target <= 0.50")
        paced_over_unpaced = same_round_ratio(rounds[paced], ours)
        bare_paced_over_bare = same_round_ratio(rounds[control], base)
        row("hm.poll, binding per-brand limit", paced,
            f"{paced_over_unpaced:.2f}x unpaced (target <= 1.20)")
        row("control: bare aiohttp loop, same pacing", control,
            f"{bare_paced_over_bare:.2f}x the bare loop unpaced (the machine's idle cost)")
        print(f"{'':44s} {'':8s} {'':8s}   paced hm.poll's cost over its unpaced run, relative "
              f"to the bare loop's: {paced_over_unpaced / bare_paced_over_bare:.2f}")
        # The same in µs per VIN: the machine's share of pacing is about the same for any
        # client (the same sleeps), so what hm.poll adds beyond the bare loop's increase is
        # its own (compare benchmarks/pacing_cost.py, which skips the sleeps).
        hm_added = same_round_difference(rounds[paced], ours) * 1e6
        bare_added = same_round_difference(rounds[control], base) * 1e6
        print(f"{'':44s} {'':8s} {'':8s}   added by pacing, µs per VIN: hm.poll {hm_added:+.1f}, "
              f"bare loop {bare_added:+.1f}, difference {hm_added - bare_added:+.1f}")
        for tick, fn in coarser:
            row(f"hm.poll, same limit, pacing_tick={tick:g} s", fn,
                f"{same_round_ratio(rounds[fn], ours):.2f}x unpaced (bursts of "
                f"{args.paced_rate * tick:g} per brand)")
        row("floor: lean aiohttp + typed decode", lean_aiohttp_decode,
            "(no client logic at all)")
        row("hm.poll, lean_http=False (all aiohttp)", hm_poll_aiohttp,
            f"the lean GET lane saves "
            f"{(min(rounds[hm_poll_aiohttp]) - min(ours)) * 1e6:.0f} µs per VIN")
        row("hm.poll, input from an async generator", hm_poll_async_source,
            f"{same_round_ratio(rounds[hm_poll_async_source], ours):.2f}x hm.poll on a list")
        if httpx_loop in rounds:
            row("httpx loop (.json())", httpx_loop,
                f"hm.poll uses {same_round_ratio(rounds[httpx_loop], ours):.1f}x less CPU "
                f"(target >= 10)")
        if hm_poll_uvloop in rounds:
            row("hm.poll on uvloop (hm-async[speed])", hm_poll_uvloop,
                f"{same_round_ratio(rounds[hm_poll_uvloop], ours):.2f}x hm.poll on asyncio")
        if args.profile:
            profile_poll(server, vins, args.concurrency, RateLimits(default=args.paced_rate)
                         if args.profile == "paced" else UNPACED)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vins", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--rss-vins", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--profile", nargs="?", const="unpaced", choices=("unpaced", "paced"),
                        help="print where hm.poll's CPU goes (unpaced or paced)")
    parser.add_argument("--paced-rate", type=float, default=300.0,
                        help="per-brand limit of the paced row, req/s (default 300)")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU rows")
    parser.add_argument("--no-httpx", action="store_true", help="skip the (slow) httpx row")
    parser.add_argument("--rss-only", action="store_true",
                        help="only the memory row, in a process that ran nothing before")
    args = parser.parse_args()
    if args.quick:
        args.vins, args.repeat, args.rss_vins = 500, 1, 5000

    print(f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
          f"{os.cpu_count()} cores; {args.vins} VINs, concurrency {args.concurrency}, "
          f"{args.repeat} rounds")
    if args.rss_only:
        server = Server()
        try:
            peak, end = rss_growth_mb(server, args.rss_vins, args.concurrency)
        finally:
            server.close()
        print(f"RSS growth polling {args.rss_vins} VINs (fresh process): peak {peak:.1f} MB, "
              f"at the end {end:.1f} MB (target <= 50)")
        return
    cpu_rows(args)
    if args.cpu_only:
        return
    server = Server()
    try:
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
