"""Streaming cost per message: hm_async.stream vs a bare aiomqtt loop, through a real broker.

    python benchmarks/stream.py [--messages 20000] [--rounds 3] [--rss 1000000]

Both consumers read the same N pre-queued 2 KB V2 messages from a local mosquitto (mTLS,
MQTT 5, QoS 1, persistent session), in interleaved rounds:

* ``bare``: ``aiomqtt.Client`` + ``async for m in client.messages: json.loads(m.payload)``
  (paho acknowledges each message as soon as it is queued: no at-least-once guarantee);
* ``hm``: ``hm_async.stream()``: typed msgspec decode, dedupe claim/done, hand-off to the
  consumer, PUBACK after the loop body.

Printed: CPU seconds per message of each (``time.process_time``: this process, all threads,
one core), messages/s of CPU, and the ratio hm/bare from the same run. Then the library path
alone (no broker): decode + dedupe + hand-off vs ``json.loads``. Then RSS on the decode +
dedupe path without the broker (the broker path is the same code; a million messages through
mosquitto would measure mosquitto): ``--rss`` messages to fill the window and let the
allocator settle, then ``--rss`` more, sampled every 10 %.
Needs mosquitto and the test extra (trustme); reuses tests/mqtt_broker.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mqtt_broker import Broker

from hm_async.stream import MemoryDedupeWindow, decode_v2, stream

APP = "48aa1779-91c2-468e-97e9-ab112efd53b9"
TOPIC = f"live/level13/{APP}"


def payload(i: int) -> bytes:
    """A V2 message of ~2 KB: odometer, tire pressures, doors, location, charging."""
    ts = "2026-12-02T08:00:00.000Z"

    def prop(data: object) -> list[dict[str, object]]:
        return [{"data": data, "timestamp": ts}]

    body = {
        "version": 2, "application_id": APP, "message_id": f"{i:064X}",
        "vin": f"WBAEMU{i % 100_000:011d}",
        "data": {
            "diagnostics": {
                "odometer": prop({"value": 12345.6 + i, "unit": "kilometers"}),
                "speed": prop({"value": 88.0, "unit": "kilometers_per_hour"}),
                "fuel_level": prop(0.42),
                "tire_pressures": [{"data": {"location": loc, "pressure": {
                    "value": 2.3, "unit": "bars"}}, "timestamp": ts}
                    for loc in ("front_left", "front_right", "rear_right", "rear_left")],
            },
            "doors": {"locks": [{"data": {"location": loc, "lock_state": "locked"},
                                 "timestamp": ts}
                                for loc in ("front_left", "front_right", "rear_right",
                                            "rear_left")],
                      "locks_state": prop("locked")},
            "vehicle_location": {"coordinates": prop({"latitude": 52.52, "longitude": 13.4}),
                                 "heading": prop({"value": 181.0, "unit": "degrees"})},
            "charging": {"battery_level": prop(0.77), "status": prop("not_charging"),
                         "estimated_range": prop({"value": 321.0, "unit": "kilometers"})},
        },
    }
    raw = json.dumps(body).encode()
    pad = 2048 - len(raw)
    if pad > 20:  # pad to 2 KB with a field a newer platform might add (ignored by decode)
        body["trace"] = "x" * (pad - 12)
        raw = json.dumps(body).encode()
    return raw


async def preload(broker: Broker, client_id: str, start: int, n: int) -> None:
    """Create/keep the consumer's session and queue ``n`` messages for it."""
    creds = broker.credentials()
    async with aiomqtt.Client(broker.host, broker.port, identifier=client_id,
                              protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                              tls_context=creds.ssl_context(), properties=_expiry()) as c:
        await c.subscribe(TOPIC, qos=1)
    async with aiomqtt.Client(broker.host, broker.port, identifier="bench-publisher",
                              protocol=aiomqtt.ProtocolVersion.V5,
                              tls_context=broker.credentials("hm-emulator").ssl_context()) as p:
        p.pending_calls_threshold = 10_000
        for chunk in range(start, start + n, 500):
            await asyncio.gather(*(p.publish(TOPIC, payload(i), qos=1)
                                   for i in range(chunk, min(chunk + 500, start + n))))


def _expiry() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    return props


async def consume_bare(broker: Broker, n: int) -> tuple[float, float]:
    creds = broker.credentials()
    cpu, wall = time.process_time(), time.perf_counter()
    count = 0
    async with aiomqtt.Client(broker.host, broker.port, identifier="bench-bare",
                              protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                              tls_context=creds.ssl_context(), properties=_expiry()) as c:
        async for m in c.messages:
            json.loads(m.payload)  # type: ignore[arg-type]
            count += 1
            if count == n:
                break
    return time.process_time() - cpu, time.perf_counter() - wall


async def consume_hm(broker: Broker, n: int) -> tuple[float, float]:
    creds = broker.credentials()
    cpu, wall = time.process_time(), time.perf_counter()
    count = 0
    async with stream(creds, app_id=APP, host=broker.host, port=broker.port,
                      client_id="bench-hm") as events:
        async for ev in events:
            if not ev.ok:
                raise RuntimeError(ev.reason)
            count += 1
            if count == n:
                break
    return time.process_time() - cpu, time.perf_counter() - wall


def library_path(payloads: list[bytes], rounds: int) -> None:
    """decode + dedupe + hand-off (no broker) vs json.loads, interleaved."""
    now = datetime.now(timezone.utc)
    bare, hm = [], []
    for r in range(rounds):
        window = MemoryDedupeWindow(max_size=100_000)
        for mode in (("bare", "hm") if r % 2 == 0 else ("hm", "bare")):
            t = time.process_time()
            if mode == "bare":
                for p in payloads:
                    json.loads(p)
                bare.append((time.process_time() - t) / len(payloads))
            else:
                for p in payloads:
                    ev = decode_v2(TOPIC, p, now)
                    if ev.ok and window.claim_now(ev.message_id):
                        window.done_now(ev.message_id)
                hm.append((time.process_time() - t) / len(payloads))
    b, h = statistics.median(bare), statistics.median(hm)
    print(f"library path, no broker ({len(payloads):,} msgs x {rounds} rounds): "
          f"json.loads {b * 1e6:.1f} us/msg, decode+dedupe {h * 1e6:.1f} us/msg, "
          f"ratio {h / b:.2f}x")


def rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4


def rss_run(total: int) -> None:
    """``total`` messages to fill the window and let the allocator settle, then ``total``
    more, RSS sampled at every 10 % of each phase."""
    now = datetime.now(timezone.utc)
    window = MemoryDedupeWindow(max_size=100_000, max_age=3600)
    template = payload(0)
    marker = b"0" * 64
    step = total // 10
    phases: list[list[int]] = [[], []]
    for i in range(2 * total):
        p = template.replace(marker, f"{i:064X}".encode(), 1)
        ev = decode_v2(TOPIC, p, now)
        if ev.ok and window.claim_now(ev.message_id):
            window.done_now(ev.message_id)
        if (i + 1) % step == 0:
            phases[i // total].append(rss_kib())
    warm, steady = phases
    print(f"RSS, decode + dedupe window of 100,000 ids, no broker, MiB at every 10 %: "
          f"first {total:,} messages " + " ".join(f"{s / 1024:.0f}" for s in warm)
          + f"; next {total:,} " + " ".join(f"{s / 1024:.0f}" for s in steady)
          + f" (grew {(steady[-1] - steady[0]) / 1024:.1f} MiB over the last {total - step:,})")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rss", type=int, default=1_000_000)
    ap.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_only:  # a fresh process, so the numbers are this path's alone
        rss_run(args.rss)
        return
    n = args.messages
    print(f"payload {len(payload(1))} bytes; {n:,} messages per consumer per round, "
          f"{args.rounds} interleaved rounds")
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), max_inflight=100)
        broker.start()
        try:
            results: dict[str, list[tuple[float, float]]] = {"bare": [], "hm": []}
            start = 0
            for r in range(args.rounds):
                order = ("bare", "hm") if r % 2 == 0 else ("hm", "bare")
                for mode in order:
                    await preload(broker, f"bench-{mode}", start, n)
                    start += n
                    run = consume_bare if mode == "bare" else consume_hm
                    results[mode].append(await run(broker, n))
                    cpu, wall = results[mode][-1]
                    print(f"  round {r + 1} {mode:4}: {cpu / n * 1e6:6.1f} us CPU/msg, "
                          f"{n / cpu:8,.0f} msg/s of CPU, {n / wall:8,.0f} msg/s wall")
        finally:
            broker.stop()
    bare_cpu = statistics.median(c for c, _ in results["bare"]) / n
    hm_cpu = statistics.median(c for c, _ in results["hm"]) / n
    print(f"through mosquitto (median of {args.rounds}): bare aiomqtt+json.loads "
          f"{bare_cpu * 1e6:.1f} us/msg ({1 / bare_cpu:,.0f} msg/s), hm_async.stream "
          f"{hm_cpu * 1e6:.1f} us/msg ({1 / hm_cpu:,.0f} msg/s); ratio hm/bare "
          f"{hm_cpu / bare_cpu:.2f}x")
    library_path([payload(i) for i in range(n)], args.rounds)
    if args.rss:
        subprocess.run([sys.executable, __file__, "--rss-only", "--rss", str(args.rss)],
                       check=True)


if __name__ == "__main__":
    asyncio.run(main())
