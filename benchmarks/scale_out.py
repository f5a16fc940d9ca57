"""Scale-out: aggregate throughput of 1, 2 and 4 worker processes sharing Redis state.

The server is nginx (C, one worker process) answering a canned token and a canned
vehicle-data body, so it is not the bottleneck; the per-brand limits (10,000/s, the most
RateLimits takes) never bind. Each worker process polls its shard of the same VIN list with
a RedisTokenStore and a RedisLimiter; the aggregate rate is all VINs over the span from
the first worker's start to the last one's end (workers are started, then told to go
together). Rounds are interleaved (1, 2, 4 workers, then the in-process baseline, again).

Printed: requests/s per worker count and the ratio to one worker; Redis round trips per
request (batched leases); CPU per request of a worker with the Redis limiter and token store
vs the same worker with the in-process ones. The ratios depend on the cores: with fewer
cores than workers + nginx + redis-server, the processes share them and scaling stops at
the core count; the table says how many there were.

Run: ``python benchmarks/scale_out.py [--vins 20000] [--rounds 3]`` (needs /usr/sbin/nginx
and redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BRANDS = ("bmw", "mercedes-benz", "kia", "volvo-cars")
LIMIT = 10_000.0  # per brand; the client never gets near it
TOKEN = ('{"access_token":"bench-token-0123456789abcdef","token_type":"bearer",'
         '"expires_in":3600,"scope":"vehicle:data"}')


# -- the worker ------------------------------------------------------------------------------

async def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    from hm_async import ClientCredentials, HMClient, RateLimits
    from hm_async.redis import RedisLimiter, RedisTokenStore

    vins = [(f"BENCH{i:012d}", BRANDS[i % len(BRANDS)]) for i in range(cfg["vins"])]
    limits = RateLimits(dict.fromkeys(BRANDS, LIMIT))
    store = limiter = None
    options: dict[str, Any] = {"rate_limits": limits}
    if cfg["redis"]:
        store = RedisTokenStore(cfg["redis"])
        limiter = RedisLimiter(cfg["redis"], limits)
        options = {"token_store": store, "limiter": limiter}
    async with HMClient(ClientCredentials("bench", "bench"), base_url=cfg["url"],
                        **options) as hm:
        await hm.tokens.get()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started, cpu = time.monotonic(), time.process_time()
        done = 0
        async for r in hm.poll(vins, shard=tuple(cfg["shard"]), concurrency=64):
            done += r.ok
        return {"start": started, "end": time.monotonic(), "done": done,
                "cpu": time.process_time() - cpu,
                "round_trips": limiter.round_trips if limiter is not None else 0}


# -- servers -----------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    from hm_async.emulator._vehicle_data import VehicleDataSource

    body = b'{"request_id":"bench",' + VehicleDataSource(
        failure_fraction=0.0, update_interval=3600.0).body("BENCH000000000001", "bmw")
    (tmp / "vd.json").write_bytes(body)
    port = free_port()
    conf = f"""
daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};
  fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  keepalive_requests 1000000; keepalive_timeout 60s;
  server {{
    listen 127.0.0.1:{port};
    location = /v1/access_tokens {{ default_type application/json; return 200 '{TOKEN}'; }}
    location /v1/vehicle-data/autoapi-13/ {{
      default_type application/json; root {tmp}; rewrite ^ /vd.json break; }}
  }}
}}
"""
    (tmp / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server",
                             "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, f"redis://127.0.0.1:{port}/0"


def wait_port(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


# -- one run -----------------------------------------------------------------------------------

async def run(n: int, url: str, redis_url: str | None, vins: int) -> dict[str, float]:
    procs = []
    for i in range(n):
        cfg = {"url": url, "redis": redis_url, "vins": vins, "shard": [i, n]}
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", json.dumps(cfg),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
    for p in procs:
        assert p.stdout is not None and await p.stdout.readline() == b"ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    outs = [json.loads((await p.communicate())[0]) for p in procs]
    done = sum(o["done"] for o in outs)
    if done != vins:
        raise RuntimeError(f"{done} of {vins} VINs answered")
    span = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return {"rate": done / span, "cpu_per_req": sum(o["cpu"] for o in outs) / done,
            "trips_per_req": sum(o["round_trips"] for o in outs) / done}


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        nginx, url = start_nginx(Path(tmpdir))
        redis, redis_url = start_redis()
        try:
            rows: dict[str, list[dict[str, float]]] = {}
            for _ in range(args.rounds):
                for label, n, shared in (("1 worker, in-process state", 1, None),
                                         ("1 worker, Redis", 1, redis_url),
                                         ("2 workers, Redis", 2, redis_url),
                                         ("4 workers, Redis", 4, redis_url)):
                    rows.setdefault(label, []).append(await run(n, url, shared, args.vins))
        finally:
            nginx.terminate()
            redis.terminate()
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rows.items()}
    base = med["1 worker, Redis"]["rate"]
    print(f"scale-out: {args.vins} VINs per run, nginx server, limits not binding, "
          f"{os.cpu_count()} cores for workers + nginx + redis-server, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'':30} {'req/s':>8} {'vs 1 worker':>12} {'Redis trips/req':>16} "
          f"{'CPU us/req':>11}")
    for label, m in med.items():
        print(f"{label:30} {m['rate']:8.0f} {m['rate'] / base:11.2f}x "
              f"{m['trips_per_req']:16.3f} {m['cpu_per_req'] * 1e6:11.1f}")
    inproc = med["1 worker, in-process state"]["cpu_per_req"]
    print(f"CPU per request, Redis limiter+token store vs in-process (1 worker): "
          f"{med['1 worker, Redis']['cpu_per_req'] / inproc:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(asyncio.run(worker(json.loads(sys.argv[2])))), flush=True)
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vins", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
