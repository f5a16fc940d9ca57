"""Every file in examples/ runs against the emulator here, so the examples cannot rot.

The scripts with a command line run as real subprocesses (``python examples/x.py``); the
two servers are built from their ``make_app`` / ``EventWorker`` and served on a real socket.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web

from hm_async import HMClient
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.webhooks import sign

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_example_is_covered() -> None:
    # stream_worker runs in tests/test_stream_workers.py (it needs the mosquitto fixture)
    assert {p.stem for p in EXAMPLES.glob("*.py")} == {
        "bulk_poll", "event_worker", "private_key_auth", "stream_worker", "web_app"}


async def run_script(name: str, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
    full_env.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / f"{name}.py"), *args, env=full_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_bulk_poll_and_private_key_scripts(tmp_path: Path) -> None:
    cfg = EmulatorConfig(vehicles=40, no_consent_fraction=0.05, fault_rate=0.05, seed=4)
    async with Emulator(cfg) as emu:
        csv_in = tmp_path / "fleet.csv"
        half = len(emu.vehicles) // 2  # half with a brand column value, half looked up
        csv_in.write_text("vin,brand\n" + "\n".join(
            f"{v.vin},{v.brand if i < half else ''}" for i, v in enumerate(emu.vehicles)))
        jsonl = tmp_path / "out.jsonl"
        key_file = tmp_path / "private-key.json"
        key_file.write_text(json.dumps(emu.private_key_json()))
        vin = emu.vehicles[-1].vin
        (code, _, err), (key_code, key_out, key_err) = await asyncio.gather(
            run_script("bulk_poll", str(csv_in), str(jsonl), env={
                "HM_CLIENT_ID": emu.client_id, "HM_CLIENT_SECRET": emu.client_secret,
                "HM_BASE_URL": emu.url}),
            run_script("private_key_auth", str(key_file), vin, env={
                "HM_CLIENT_ID": emu.client_id, "HM_BASE_URL": emu.url}),
        )
        no_consent = set(emu.special_vins["no_consent"])
    assert code == 1, err  # some vehicles have no consent: a partial failure
    lines = [json.loads(x) for x in jsonl.read_bytes().splitlines()]
    assert len(lines) == 40 and {x["vin"] for x in lines} == {v.vin for v in emu.vehicles}
    assert {x["vin"] for x in lines if not x["ok"]} == no_consent
    assert all(x["data"]["vin"] == x["vin"] for x in lines if x["ok"])
    assert f"PermissionDeniedError: {len(no_consent)}" in err

    assert key_code == 0, key_err
    assert "private_key=<redacted>" in key_out and "BEGIN" not in key_out
    assert f"'vin': '{vin}'" in key_out and "vehicle:data" in key_out
    assert emu.stats.count("token", 200) == 2  # one token per script, secret and key alike


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_web_app_shares_one_client_for_its_lifetime() -> None:
    web_app = load("web_app")
    cfg = EmulatorConfig(vehicles=16, no_consent_fraction=0.1, asleep_fraction=0.1)
    async with Emulator(cfg) as emu:
        made: list[HMClient] = []

        def make_client() -> HMClient:
            made.append(HMClient(emu.client_credentials, base_url=emu.url))
            return made[-1]

        runner, url = await _serve(web_app.make_app(make_client))
        try:
            special = {vin for vins in emu.special_vins.values() for vin in vins}
            normal = [v.vin for v in emu.vehicles if v.vin not in special]
            async with aiohttp.ClientSession() as s:
                async def get(path: str) -> tuple[int, object]:
                    async with s.get(url + path) as resp:
                        return resp.status, await resp.json()

                answers = await asyncio.gather(*(get(f"/vehicles/{v}") for v in normal))
                assert all(st == 200 and body["vin"] == v  # type: ignore[index]
                           for (st, body), v in zip(answers, normal, strict=True))
                assert (await get(f"/vehicles/{emu.special_vins['no_consent'][0]}"))[0] == 403
                assert (await get(f"/vehicles/{emu.special_vins['asleep'][0]}"))[0] == 503
                assert (await get("/vehicles/nope"))[0] == 400
                assert await get("/fleet") == (200, {"approved": 16})
                status, used = await get("/usage")
                assert status == 200 and used["by_endpoint"]["clearance.list"] == 1  # type: ignore[index]
        finally:
            await runner.cleanup()
        assert len(made) == 1 and made[0].closed  # one client, closed with the app
        assert emu.stats.count("token") == 1  # one token served every request


async def test_event_worker_turns_webhooks_into_vehicle_updates() -> None:
    worker_mod = load("event_worker")
    secret = "whsec-example"
    async with Emulator(EmulatorConfig(vehicles=6, no_consent_fraction=0.2)) as emu:
        out: asyncio.Queue[object] = asyncio.Queue()
        worker = worker_mod.EventWorker(
            lambda: HMClient(emu.client_credentials, base_url=emu.url), secret, out, workers=2)
        runner, url = await _serve(worker.app())
        try:
            denied = emu.special_vins["no_consent"][0]
            good = next(v for v in emu.vehicles if v.vin != denied)
            events = [
                {"vehicle": {"vin": good.vin, "brand": good.brand},
                 "event": {"type": "fleet_clearance_changed", "action": "approved"}},
                {"vehicle": {"vin": denied},
                 "event": {"type": "fleet_clearance_changed", "action": "approved"}},
                {"vehicle": {"vin": good.vin},
                 "event": {"type": "fleet_clearance_changed", "action": "revoked"}},
                {"event": {"type": "ping"}},
            ]
            async with aiohttp.ClientSession() as s:
                for event in events:
                    body = json.dumps(event).encode()
                    async with s.post(url + "/hm/webhook", data=body, headers={
                            "X-HM-Signature-256": sign(body, secret)}) as resp:
                        assert resp.status == 200
                forged = b'{"vehicle": {"vin": "WBAEMU00000000009"}, "event": "x"}'
                async with s.post(url + "/hm/webhook", data=forged, headers={
                        "X-HM-Signature-256": sign(forged, "not-the-secret")}) as resp:
                    assert resp.status == 401
            updates = [await asyncio.wait_for(out.get(), 10) for _ in range(3)]
            await asyncio.sleep(0.05)
            assert out.empty()  # the ping and the forged event produced nothing
        finally:
            await runner.cleanup()
    by_key = {(u.vin, u.status): u for u in updates}  # type: ignore[attr-defined]
    ok = by_key[(good.vin, "approved")]
    assert ok.data is not None and ok.data.vin == good.vin and ok.error is None
    assert "PermissionDeniedError" in by_key[(denied, "approved")].error
    assert by_key[(good.vin, "revoked")].data is None
