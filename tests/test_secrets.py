"""No secret leaks: a whole session at DEBUG, with both credential kinds, failures included.

Everything a program could print or ship to a log collector is gathered -- every log record
of every logger (message, arguments, formatted traceback), the repr and str of the client,
credentials, token provider, tokens, results and every exception raised (with their causes)
-- and searched for the client secret, the private key's PEM lines and every bearer token the
emulator issued. Redirects are covered in tests/test_retries.py (vehicle data); here the
token endpoint, which carries the client secret, gets the same treatment.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import hm_async
from hm_async import ClientCredentials, Credentials, HMClient, PrivateKeyCredentials
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


def exception_texts(exc: BaseException) -> list[str]:
    out: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out += [str(cur), repr(cur), *(repr(a) for a in cur.args),
                "".join(traceback.format_exception(type(cur), cur, cur.__traceback__)),
                repr(vars(cur)) if hasattr(cur, "__dict__") else ""]
        cur = cur.__cause__ or cur.__context__
    return out


async def session(emu: Emulator, creds: Credentials, texts: list[str],
                  issued: set[str]) -> None:
    """Everything a fleet job does, with failures, collecting what it could show."""
    vins = [v.vin for v in emu.vehicles]

    async def attempt(call: Callable[[], Awaitable[Any]]) -> None:
        try:
            texts.append(repr(await call()))
        except hm_async.HMError as exc:
            texts.extend(exception_texts(exc))
        issued.update(emu._server.auth._tokens)  # before an invalidation forgets them

    async with HMClient(creds, base_url=emu.url, max_retries=1) as hm:
        texts += [repr(hm), str(hm), repr(creds), str(creds)]
        await attempt(lambda: hm.eligibility(vins[0], "bmw"))
        await attempt(lambda: hm.clearance.request([("WBANEW00000000001", "bmw")]))
        await attempt(lambda: hm.clearance.list(statuses=["approved"]))
        await attempt(lambda: hm.clearance.get(vins[1]))
        await attempt(lambda: hm.vehicle_data(vins[2]))
        emu.script_faults("vehicle_data", [503, 503, 503])  # retried, then raised
        await attempt(lambda: hm.vehicle_data(vins[2]))
        emu.script_faults("vehicle_data", [401])  # "Invalid token": refreshed and replayed
        await attempt(lambda: hm.vehicle_data(vins[3]))
        emu.invalidate_tokens()
        await attempt(lambda: hm.vehicle_data(vins[3]))
        emu.script_faults("token", [503, 500, "drop", 503])  # a refresh that fails ...
        emu.invalidate_tokens()
        await attempt(lambda: hm.vehicle_data(vins[4]))  # ... and surfaces to the caller
        await attempt(lambda: hm.vehicle_data(emu.special_vins["no_consent"][0]))
        await attempt(lambda: hm.clearance.delete(vins[5]))
        await attempt(lambda: hm.clearance.delete(vins[5]))  # 409
        emu.set_config(fault_rate=0.3)
        async for r in hm.poll(vins, concurrency=8):
            texts.append(repr(r))
            if r.error is not None:
                texts.extend(exception_texts(r.error))
        emu.set_config(fault_rate=0.0)
        tokens = hm.tokens
        texts += [repr(tokens), str(tokens), repr(tokens.current()), str(tokens.current())]
        texts += [repr(hm.usage()), repr(hm.limiters.snapshot())]


@pytest.mark.parametrize("kind", ["client_secret", "private_key"])
async def test_a_debug_session_leaks_no_secret(kind: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: hm_async, aiohttp, asyncio
    cfg = EmulatorConfig(vehicles=24, token_lifetime=1.0, no_consent_fraction=0.05, seed=3)
    texts: list[str] = []
    issued: set[str] = set()
    async with Emulator(cfg) as emu:
        creds: Credentials = (emu.client_credentials if kind == "client_secret"
                              else emu.private_key_credentials)
        await session(emu, creds, texts, issued)
        # a refused credential of the same kind: its secret must not show either
        wrong: Credentials
        if kind == "client_secret":
            wrong = ClientCredentials(emu.client_id, "wrong-" + emu.client_secret)
        else:
            other = Emulator(EmulatorConfig(vehicles=0))  # a different, valid key pair
            wrong = PrivateKeyCredentials(emu.client_id, other.private_key_pem, emu.key_id)
        async with HMClient(wrong, base_url=emu.url) as hm:
            with pytest.raises(hm_async.TokenRefusedError) as refused:
                await hm.vehicle_data(emu.vehicles[0].vin)
            texts.extend(exception_texts(refused.value))
            texts += [repr(wrong), str(wrong)]
        issued.update(emu._server.auth._tokens)

    formatter = logging.Formatter("%(message)s")
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), formatter.format(record)]
    secrets = [emu.client_secret, *issued, *(t.rsplit(".", 1)[1] for t in issued)]
    if kind == "client_secret":
        secrets.append("wrong-" + emu.client_secret)
    else:
        for pem in (emu.private_key_pem, other.private_key_pem):
            secrets += [line for line in pem.splitlines() if len(line) > 16]
    assert len(issued) >= 4  # refreshes and invalidations really happened
    assert len(caplog.records) > 50  # and were logged
    blob = "\n".join(texts)
    leaked = [s[:12] + "…" for s in secrets if s in blob]
    assert not leaked, f"secrets found in logs, reprs or errors: {leaked}"
    assert emu.client_id in blob  # the search is not vacuous: ids are fine to show


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_the_token_request_is_never_replayed_to_another_origin(status: int) -> None:
    """A redirecting token endpoint must not get the client secret sent elsewhere."""
    stolen: list[bytes] = []

    async def catcher(request: web.Request) -> web.Response:
        stolen.append(await request.read())
        return web.json_response({"access_token": "x", "expires_in": 300})

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", catcher)
    other_runner, other_url = await _serve(other)

    async def redirect(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=status, headers={"Location": other_url + "/v1/access_tokens"})

    app = web.Application()
    app.router.add_post("/v1/access_tokens", redirect)
    runner, url = await _serve(app)
    creds = ClientCredentials("client", "top-secret-value")
    try:
        async with HMClient(creds, base_url=url) as hm:
            with pytest.raises(hm_async.HMError) as err:
                await hm.vehicle_data("WBAEMU00000000001")
        assert str(status) in str(err.value)
        assert "top-secret-value" not in "\n".join(exception_texts(err.value))
    finally:
        await runner.cleanup()
        await other_runner.cleanup()
    assert stolen == []
