"""``hm-async emulator --mqtt`` publishing to a real mosquitto, ``hm-async stream`` reading it."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from mqtt_broker import mqtt_broker_fixture  # noqa: F401 (the mqtt_broker fixture)

from hm_async.emulator._mqtt_config import EMULATOR_APP_ID
from hm_async.stream import stream

pytestmark = pytest.mark.anyio


async def run(*args: str, timeout: float = 60) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def test_emulator_pushes_and_stream_command_writes_json_lines(mqtt_broker, tmp_path):
    ca, cert, key = mqtt_broker.write_client("hm-worker")
    _, ecert, ekey = mqtt_broker.write_client("hm-emulator")
    broker = f"{mqtt_broker.host}:{mqtt_broker.port}"
    async with stream(mqtt_broker.credentials(), app_id=EMULATOR_APP_ID, host=mqtt_broker.host,
                      port=mqtt_broker.port, client_id="hm-cli"):
        pass  # the persistent session now exists: what the emulator publishes is kept for it
    emulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hm_async.emulator", "--port", "0", "--json", "--vehicles", "40",
        "--seed", "5", "--mqtt", broker, "--mqtt-ca", str(ca), "--mqtt-cert", str(ecert),
        "--mqtt-key", str(ekey), "--mqtt-rate", "500", "--mqtt-duplicate-rate", "0.2",
        "--mqtt-malformed-rate", "0.1", stdout=asyncio.subprocess.PIPE)
    try:
        assert emulator.stdout is not None
        assert json.loads(await asyncio.wait_for(emulator.stdout.readline(), 30))["url"]
        out = tmp_path / "events.jsonl"
        code, _, err = await run(
            "hm_async", "stream", "--app-id", EMULATOR_APP_ID, "--ca", str(ca), "--cert",
            str(cert), "--key", str(key), "--host", mqtt_broker.host, "--port",
            str(mqtt_broker.port), "--client-id", "hm-cli", "-o", str(out),
            "--max-messages", "30")
    finally:
        emulator.terminate()
        await emulator.wait()
    assert code == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 30
    good = [x for x in lines if x["ok"]]
    bad = [x for x in lines if not x["ok"]]
    assert good and bad and all(x["error"] for x in bad)
    assert len({x["message_id"] for x in good}) == len(good)        # duplicates dropped
    first = good[0]
    assert first["message"]["vin"] == first["vin"] and first["message"]["version"] == 2
    assert "diagnostics.odometer" in first["changed"]
    summary = err.decode()
    assert "duplicates dropped" in summary and "malformed" in summary


async def test_stream_command_refused_certificate_exits_3(mqtt_broker, tmp_path):
    import trustme

    ca, _, _ = mqtt_broker.write_client("hm-worker")
    _, cert, key = mqtt_broker.write_client("hm-worker", ca=trustme.CA())
    code, _, err = await run(
        "hm_async", "stream", "--app-id", EMULATOR_APP_ID, "--ca", str(ca), "--cert", str(cert),
        "--key", str(key), "--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
        "--no-progress")
    assert code == 3 and b"rejected the client certificate" in err
    code, _, err = await run(
        "hm_async", "stream", "--app-id", EMULATOR_APP_ID, "--ca", str(ca), "--cert", str(cert),
        "--key", str(tmp_path / "missing.key"))
    assert code == 3 and b"missing.key does not exist" in err


async def test_demo_stream_runs_its_own_broker_and_emulator():
    code, out, err = await run("hm_async", "demo", "--stream")
    assert code == 0, err
    text = out.decode()
    assert "mosquitto at 127.0.0.1" in text and "properties, odometer" in text
    assert "duplicates dropped" in text and "the emulator resent" in text
