"""Worker processes (examples/stream_worker.py) against a real mosquitto: SIGKILL mid-burst,
restart, and three workers sharing one stream. The workers' JSON Lines records are the
consumer's durable record: a line is flushed inside the loop body, i.e. before the ack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mqtt_broker import (  # noqa: F401 (the mqtt_broker fixture)
    Broker,
    emulator_publisher,
    mqtt_broker_fixture,
)

from hm_async.emulator._mqtt_config import EMULATOR_APP_ID

pytestmark = pytest.mark.anyio
WORKER = Path(__file__).parent.parent / "examples" / "stream_worker.py"
#: mosquitto's max_inflight_messages in the test broker: at most this many messages are in a
#: worker's hands unacknowledged, so at most this many (+1 in the body) can come back after
#: a SIGKILL.
INFLIGHT = 20


async def start_worker(broker: Broker, out: Path, client_id: str,
                       group: str | None = None) -> asyncio.subprocess.Process:
    ca, cert, key = broker.write_client("hm-worker")
    args = [sys.executable, str(WORKER), "--app-id", EMULATOR_APP_ID, "--ca", str(ca),
            "--cert", str(cert), "--key", str(key), "--host", broker.host,
            "--port", str(broker.port), "--client-id", client_id, "--out", str(out)]
    if group:
        args += ["--group", group]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert json.loads(line)["ready"], line
    return proc


def records(path: Path) -> list[str]:
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        if line.endswith("}"):  # a line cut by SIGKILL mid-write cannot be, but be strict
            ids.append(json.loads(line)["message_id"])
    return ids


async def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def test_sigkill_mid_burst_loses_nothing_and_duplicates_only_what_was_unacked(
        mqtt_broker, tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    count = int(os.environ.get("HM_STREAM_CRASH_MESSAGES", "5000"))
    worker = await start_worker(mqtt_broker, first, "hm-crash-worker")
    try:
        async with emulator_publisher(mqtt_broker, duplicate_rate=0.02, seed=7) as pub:
            burst = asyncio.create_task(pub.publish_burst(count))
            await wait_for(lambda: len(records(first)) >= count // 5)
            await kill(worker)                           # SIGKILL in the middle of the burst
            killed_at = len(records(first))
            ids = set(await burst)
            assert killed_at < len(ids) * 0.9            # the kill really was mid-burst
            worker = await start_worker(mqtt_broker, second, "hm-crash-worker")
            await wait_for(lambda: ids <= set(records(first)) | set(records(second)))
            assert pub.stats.duplicates > 0
            resent = set(pub.stats.duplicate_ids)
    finally:
        await kill(worker)
    a, b = records(first), records(second)
    # every message processed at least once, across the crash
    assert ids <= set(a) | set(b)
    # exactly once within one process's window (HM's duplicates included)
    assert max(Counter(a).values()) == 1 and max(Counter(b).values()) == 1
    # processed again after the restart: what the killed worker had not acknowledged (the
    # broker's in-flight window + the one in the body), and HM duplicates of messages done
    # before the crash (the in-memory window died with the process)
    again = set(a) & set(b)
    assert len(again - resent) <= INFLIGHT + 1
    assert len(a) + len(b) == len(ids) + len(again)
    print(f"crash test: {count} published ({len(ids)} unique ids, {len(resent)} resent by "
          f"'HM'), SIGKILL after {killed_at} records; processed again after restart: "
          f"{len(again)} ({len(again - resent)} unacknowledged redeliveries)")


async def test_three_workers_share_one_stream_and_a_killed_one_loses_nothing(
        mqtt_broker, tmp_path):
    outs = [tmp_path / f"w{i}.jsonl" for i in range(3)]
    restarted = tmp_path / "w1-again.jsonl"
    workers = [await start_worker(mqtt_broker, out, f"hm-group-{i}", group="fleet")
               for i, out in enumerate(outs)]
    try:
        async with emulator_publisher(mqtt_broker, seed=11) as pub:
            burst = asyncio.create_task(pub.publish_burst(1500))
            await wait_for(lambda: sum(len(records(o)) for o in outs) >= 300)
            await kill(workers[1])
            ids = set(await burst)
            await asyncio.sleep(0.5)
            held = ids - set().union(*(records(o) for o in outs))
            assert held   # the dead worker's unacknowledged share waits in its session
            workers[1] = await start_worker(mqtt_broker, restarted, "hm-group-1",
                                            group="fleet")
            await wait_for(lambda: ids <= set().union(*(records(o) for o in [*outs, restarted])))
    finally:
        for w in workers:
            await kill(w)
    per_worker = [set(records(outs[0])), set(records(outs[1])) | set(records(restarted)),
                  set(records(outs[2]))]
    assert all(len(share) > 100 for share in per_worker)       # the stream was split
    assert sum(len(s) for s in per_worker) == len(ids)         # each message to exactly one
    assert set().union(*per_worker) == ids                     # none lost
