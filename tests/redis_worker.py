"""One worker process of a scaled-out poll, for test_redis_workers.py and the benchmark.

``python tests/redis_worker.py CONFIG_JSON`` where the JSON names the emulator (url,
client id/secret), Redis (url, or null for in-process state), the VIN file (``vin,brand``
lines), the shard, the per-brand limits and the output file. It writes one line per result
(``vin ok``) to the output file as results come, then prints one JSON summary line to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import sys
import time
from typing import Any

from hm_async import ClientCredentials, HMClient, HMError, RateLimits
from hm_async.redis import RedisLimiter, RedisTokenStore


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    with open(cfg["vins"], encoding="ascii") as f:
        vins = [tuple(line.strip().split(",")) for line in f if line.strip()]
    creds = ClientCredentials(cfg["client_id"], cfg["client_secret"])
    # brands without a limit are not paced (``"default": null`` would make them adaptive)
    default = cfg.get("default", "inf")
    limits = RateLimits({b: float(r) for b, r in cfg["limits"].items()},
                        default=None if default is None else float(default))
    redis_url = cfg.get("redis")
    kwargs: dict[str, Any] = {"rate_limits": limits}
    store = limiter = None
    if redis_url:
        store = RedisTokenStore(redis_url, on_redis_error=cfg.get("on_redis_error", "degrade"))
        limiter = RedisLimiter(redis_url, limits,
                               on_redis_error=cfg.get("on_redis_error", "degrade"))
        kwargs = {"token_store": store, "limiter": limiter}
    shard = tuple(cfg["shard"]) if cfg.get("shard") else None
    done = ok = 0
    started = time.perf_counter()
    cpu = time.process_time()
    async with HMClient(creds, base_url=cfg["url"], max_retries=cfg.get("max_retries", 2),
                        **kwargs) as hm:
        # The transport takes a limiter grant before it waits for a token or a new
        # connection: requests granted while the first token or the pool's connections are
        # on their way would all go at once when they arrive. So: token and connections
        # first (a VIN outside the fleet: 403, counted under no brand), then wait for "go".
        await hm.tokens.get()
        await asyncio.gather(*(_warm(hm) for _ in range(cfg.get("concurrency", 64))))
        if cfg.get("wait_for_go"):
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        with open(cfg["out"], "w", encoding="ascii", buffering=1) as out:
            async for r in hm.poll(vins, shard=shard,  # type: ignore[arg-type]
                                   concurrency=cfg.get("concurrency", 64)):
                done += 1
                ok += r.ok
                out.write(f"{r.vin} {'ok' if r.ok else type(r.error).__name__}\n")
        summary = {
            "done": done, "ok": ok, "elapsed": time.perf_counter() - started,
            "cpu": time.process_time() - cpu, "degraded": hm.degraded,
            "token_requests": hm.tokens.requests_made,
            "round_trips": limiter.round_trips if limiter is not None else 0,
            "late_grants": limiter.late_grants if limiter is not None else 0,
            "adopted": store.adopted if store is not None else 0,
        }
    return summary


async def _warm(hm: HMClient) -> None:
    with contextlib.suppress(HMError):
        await hm.vehicle_data_raw("WARMUP00000000000")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    # a hung worker shows where it hangs (stderr) and ends, instead of hanging a test
    faulthandler.dump_traceback_later(cfg.get("hang_after", 100), exit=True)
    if cfg.get("uvloop"):
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(run(cfg))), flush=True)


if __name__ == "__main__":
    main()
