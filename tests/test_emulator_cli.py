"""Running the emulator as a process (``python -m hm_async.emulator``) and over HTTPS."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from joserfc import jwt
from joserfc.jwk import ECKey

from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.emulator.__main__ import main

pytestmark = pytest.mark.anyio


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hm_async.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


async def _token(http: aiohttp.ClientSession, body: dict[str, str]) -> tuple[int, Any]:
    async with http.post("/v1/access_tokens", json=body) as resp:
        return resp.status, await resp.json()


async def test_json_mode_prints_one_line_with_working_credentials(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    proc = _start("--json", "--vehicles", "3", "--key-file", str(key_file),
                  "--rate-limit", "bmw=50", "--latency", "0,0.01")
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:")
        assert len(info["vehicles"]) == 3
        assert json.loads(key_file.read_text())["id"] == info["key_id"]
        async with aiohttp.ClientSession(base_url=info["url"]) as http:
            status, body = await _token(http, {
                "grant_type": "client_credentials", "client_id": info["client_id"],
                "client_secret": info["client_secret"]})
            assert status == 200
            claims = {"ver": 2, "iss": info["key_id"], "aud": f"{info['url']}/v1",
                      "jti": str(uuid.uuid4()), "iat": int(time.time())}
            signed = jwt.encode({"alg": "ES256", "typ": "JWT"}, claims,
                                ECKey.import_key(info["private_key"]))
            status, _ = await _token(http, {
                "grant_type": "client_credentials", "client_id": info["client_id"],
                "client_assertion": signed,
                "client_assertion_type":
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
            assert status == 200
            vin = info["vehicles"][0]["vin"]
            async with http.get(f"/v1/vehicle-data/autoapi-13/{vin}",
                                headers={"Authorization": f"Bearer {body['access_token']}"}
                                ) as resp:
                assert resp.status == 200 and (await resp.json())["vin"] == vin
    finally:
        code = _stop(proc)
    assert code == 0


async def test_human_mode_prints_the_credentials_and_stops_on_ctrl_c() -> None:
    proc = _start("--vehicles", "2")
    try:
        assert proc.stdout is not None
        lines = [await asyncio.to_thread(proc.stdout.readline) for _ in range(6)]
    finally:
        code = _stop(proc, signal.SIGINT)
    text = "".join(lines)
    assert "listening on http://127.0.0.1:" in text
    assert "client_id" in text and "client_secret" in text
    assert code == 0


def test_bad_arguments_exit_with_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 13.7: the emulator is a typer command like the others; main() returns the
    # usage exit code instead of raising argparse's SystemExit, and click writes "Usage:".
    for argv in (["--fault-rate", "2"], ["--rate-limit", "bmw"], ["--faults", "418"],
                 ["--latency", "soon"]):
        assert main(argv) == 2, argv
    assert "Usage:" in capsys.readouterr().err


async def test_https_with_a_caller_supplied_context(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with Emulator(EmulatorConfig(vehicles=1), ssl_context=server_ctx) as emu:
        assert emu.url.startswith("https://127.0.0.1:")
        connector = aiohttp.TCPConnector(ssl=client_ctx)
        async with aiohttp.ClientSession(base_url=emu.url, connector=connector) as http:
            claims = {"ver": 2, "iss": emu.key_id, "aud": f"{emu.url}/v1",
                      "jti": str(uuid.uuid4()), "iat": int(time.time())}
            signed = jwt.encode({"alg": "ES256", "typ": "JWT"}, claims,
                                ECKey.import_key(emu.private_key_pem))
            status, body = await _token(http, {
                "grant_type": "client_credentials", "client_id": emu.client_id,
                "client_assertion": signed,
                "client_assertion_type":
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
        assert status == 200, body
