"""Splitting a fleet: ``poll(shard=(i, n))`` and ``hm-async poll --shard i/n [--redis URL]``."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from redis_server import RedisServer, free_port, redis_server
from test_cli import _emu_args, _emu_env, cli

from hm_async import HMClient
from hm_async._shard import parse_shard, shard_of
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio
__all__ = ["redis_server"]


def test_shard_of_is_stable_and_spreads_evenly() -> None:
    # fixed values: the split must never change between releases, processes or machines
    sample = ("WBA00000000000001", "WBA00000000000002", "VIN00000000000001",
              "EXVETESTVIN000001")
    assert [shard_of(v, 4) for v in sample] == [0, 0, 3, 3]
    assert [shard_of(v, 7) for v in sample] == [2, 0, 0, 5]
    assert shard_of(" wba00000000000001", 7) == 2
    vins = [f"VIN{i:014d}" for i in range(20_000)]
    counts = Counter(shard_of(v, 4) for v in vins)
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 4_700
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/4", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="i/n"):
            parse_shard(bad)


async def test_poll_shards_cover_every_vin_once() -> None:
    async with Emulator(EmulatorConfig(vehicles=200)) as emu, \
            HMClient(emu.client_credentials, base_url=emu.url) as hm:
        vins = [(v.vin, v.brand) for v in emu.vehicles] + [("NOTAVIN", "bmw")]
        seen: Counter[str] = Counter()
        for i in range(3):
            async for r in hm.poll(vins, shard=(i, 3)):
                seen[r.vin] += 1
        assert set(seen) == {v for v, _ in vins} and set(seen.values()) == {1}
        assert emu.stats.count("vehicle_data") == 200
        with pytest.raises(ValueError, match="shard"):
            async for _ in hm.poll(vins, shard=(3, 3)):
                pass


async def test_cli_shards_share_redis(redis_server: RedisServer) -> None:
    async with Emulator(EmulatorConfig(vehicles=60, token_lifetime=60)) as emu:
        text = "\n".join(f"{v.vin},{v.brand}" for v in emu.vehicles).encode()
        runs = await asyncio.gather(*(
            cli(*_emu_args(emu), "poll", "--no-progress", "--shard", f"{i}/2", "--redis",
                redis_server.url, stdin=text, env=_emu_env(emu)) for i in range(2)))
        vins = Counter()
        for run in runs:
            assert run.code == 0, run
            vins.update(json.loads(line)["vin"] for line in run.out.splitlines())
        assert set(vins) == {v.vin for v in emu.vehicles} and set(vins.values()) == {1}
        assert emu.stats.token_requests == 1  # the two workers shared one token
        assert "DEGRADED" not in runs[0].err

        url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
        down = await cli(*_emu_args(emu), "poll", "--no-progress", "--redis", url,
                         stdin=text, env=_emu_env(emu))
        assert down.code != 0 and "cannot reach Redis" in down.err
        assert "hunter2" not in down.err + down.out.decode()
