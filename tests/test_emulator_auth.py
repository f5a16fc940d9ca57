"""The emulator's token endpoint and bearer checks, over HTTP, against the OAuth spec.

Assertions are built here with joserfc directly (not with the emulator's or the client's
code), so each check the emulator claims to make is proven by a request that breaks exactly
that one rule and gets HM's ``400 invalid_request``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
async def emu(emulator_factory: Any) -> Emulator:
    result: Emulator = await emulator_factory(vehicles=3)
    return result


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=emu.url) as session:
        yield session


def segment(token: str, index: int) -> dict[str, Any]:
    """A JWT's header (0) or claims (1), decoded without checking anything."""
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def assertion(emu: Emulator, *, key: ECKey | None = None, typ: str = "JWT",
              **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "ver": 2,
        "iss": emu.key_id,
        "aud": f"{emu.url}/v1",
        "jti": str(uuid.uuid4()),
        "iat": int(time.time()),
    }
    claims.update(overrides)
    signing_key = key or ECKey.import_key(emu.private_key_pem)
    return jwt.encode({"alg": "ES256", "typ": typ}, claims, signing_key)


def assertion_body(emu: Emulator, token: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": emu.client_id,
        "client_assertion": token,
        "client_assertion_type": ASSERTION_TYPE,
    }


async def post_token(http: aiohttp.ClientSession, body: dict[str, str], *,
                     form: bool = False) -> tuple[int, dict[str, Any]]:
    kwargs: dict[str, Any] = {"data": body} if form else {"json": body}
    async with http.post("/v1/access_tokens", **kwargs) as resp:
        return resp.status, await resp.json()


async def secret_token(http: aiohttp.ClientSession, emu: Emulator) -> str:
    status, body = await post_token(http, {"grant_type": "client_credentials",
                                           "client_id": emu.client_id,
                                           "client_secret": emu.client_secret})
    assert status == 200, body
    token: str = body["access_token"]
    return token


async def data_status(http: aiohttp.ClientSession, emu: Emulator,
                      authorization: str | None) -> tuple[int, dict[str, Any]]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with http.get(f"/v1/vehicle-data/autoapi-13/{emu.vehicles[0].vin}",
                        headers=headers) as resp:
        return resp.status, await resp.json()


async def test_client_secret_grant_answers_the_spec_shape(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    status, body = await post_token(http, {"grant_type": "client_credentials",
                                           "client_id": emu.client_id,
                                           "client_secret": emu.client_secret})
    assert status == 200
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert body["scope"] == "fleet:clearance vehicle:eligibility-check vehicle:data"
    # An ES256 JWT with an expiry, like HM's.
    header = segment(body["access_token"], 0)
    assert header["alg"] == "ES256"
    claims = segment(body["access_token"], 1)
    assert claims["exp"] > time.time() + 250
    assert emu.stats.token_requests == 1 and emu.stats.tokens_issued == 1


async def test_form_encoded_requests_are_accepted(emu: Emulator,
                                                  http: aiohttp.ClientSession) -> None:
    status, body = await post_token(
        http, {"grant_type": "client_credentials", "client_id": emu.client_id,
               "client_secret": emu.client_secret}, form=True)
    assert status == 200 and body["token_type"] == "bearer"
    status, body = await post_token(http, assertion_body(emu, assertion(emu)), form=True)
    assert status == 200, body


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"client_secret": "nope"}, "client_secret is invalid"),
        ({"client_id": "someone-else"}, "client_id is invalid"),
        ({"grant_type": "password"}, "grant_type is invalid"),
        ({"client_id": "", "grant_type": ""},
         "client_id can't be blank, grant_type can't be blank"),
    ],
)
async def test_bad_secret_requests_get_invalid_request(
    emu: Emulator, http: aiohttp.ClientSession, change: dict[str, str], description: str
) -> None:
    body = {"grant_type": "client_credentials", "client_id": emu.client_id,
            "client_secret": emu.client_secret, **change}
    status, answer = await post_token(http, body)
    assert status == 400
    assert answer == {"error": "invalid_request", "error_description": description}
    assert emu.client_secret not in json.dumps(answer)


async def test_missing_everything_lists_every_blank_param(http: aiohttp.ClientSession) -> None:
    status, answer = await post_token(http, {})
    assert status == 400 and answer["error"] == "invalid_request"
    assert answer["error_description"] == (
        "client_id can't be blank, grant_type can't be blank, client_secret can't be blank"
    )


async def test_valid_assertion_gets_a_token_that_works(emu: Emulator,
                                                       http: aiohttp.ClientSession) -> None:
    status, body = await post_token(http, assertion_body(emu, assertion(emu)))
    assert status == 200, body
    status, _ = await data_status(http, emu, f"Bearer {body['access_token']}")
    assert status == 200


async def test_assertion_audience_may_name_localhost(emu: Emulator) -> None:
    port = emu.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession(base_url=f"http://localhost:{port}") as http:
        token = assertion(emu, aud=f"http://localhost:{port}/v1")
        status, body = await post_token(http, assertion_body(emu, token))
    assert status == 200, body


@pytest.mark.parametrize(
    "case",
    ["wrong_key", "wrong_aud", "stale_iat", "future_iat", "ver_1", "wrong_iss", "typ",
     "no_jti", "garbage", "wrong_type"],
)
async def test_each_broken_assertion_rule_gets_invalid_request(
    emu: Emulator, http: aiohttp.ClientSession, case: str
) -> None:
    now = time.time()
    token = {
        "wrong_key": lambda: assertion(emu, key=ECKey.generate_key("P-256", private=True)),
        "wrong_aud": lambda: assertion(emu, aud="https://sandbox.api.high-mobility.com/v1"),
        "stale_iat": lambda: assertion(emu, iat=int(now - 301)),
        "future_iat": lambda: assertion(emu, iat=int(now + 301)),
        "ver_1": lambda: assertion(emu, ver=1),
        "wrong_iss": lambda: assertion(emu, iss=str(uuid.uuid4())),
        "typ": lambda: assertion(emu, typ="JOSE+JSON"),
        "no_jti": lambda: assertion(emu, jti=""),
        "garbage": lambda: "not.a.jwt",
        "wrong_type": lambda: assertion(emu),
    }[case]()
    body = assertion_body(emu, token)
    if case == "wrong_type":
        body["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    status, answer = await post_token(http, body)
    assert status == 400, answer
    assert answer["error"] == "invalid_request"
    assert "client_assertion" in answer["error_description"]
    assert emu.stats.tokens_issued == 0
    # The same emulator still accepts a correct assertion: the refusal was about that rule.
    status, _ = await post_token(http, assertion_body(emu, assertion(emu)))
    assert status == 200


async def test_iat_inside_the_window_is_accepted(emu: Emulator,
                                                 http: aiohttp.ClientSession) -> None:
    for skew in (-290, 290):
        status, body = await post_token(
            http, assertion_body(emu, assertion(emu, iat=int(time.time() + skew))))
        assert status == 200, body


async def test_replayed_jti_is_refused(emu: Emulator, http: aiohttp.ClientSession) -> None:
    token = assertion(emu)
    status, _ = await post_token(http, assertion_body(emu, token))
    assert status == 200
    status, answer = await post_token(http, assertion_body(emu, token))
    assert status == 400 and answer["error"] == "invalid_request"
    assert "jti" in answer["error_description"]
    # Same jti, freshly signed: still a replay.
    jti = str(uuid.uuid4())
    assert (await post_token(http, assertion_body(emu, assertion(emu, jti=jti))))[0] == 200
    assert (await post_token(http, assertion_body(emu, assertion(emu, jti=jti))))[0] == 400


async def test_tokens_expire(emulator_factory: Any) -> None:
    emu: Emulator = await emulator_factory(vehicles=1, token_lifetime=0.6)
    async with aiohttp.ClientSession(base_url=emu.url) as http:
        token = await secret_token(http, emu)
        assert (await data_status(http, emu, f"Bearer {token}"))[0] == 200
        await asyncio.sleep(0.7)
        status, body = await data_status(http, emu, f"Bearer {token}")
    assert status == 401
    assert body["errors"] == [{"title": "Not Authorized", "detail": "Invalid token"}]
    assert isinstance(body["request_id"], str) and body["request_id"]


async def test_expires_in_is_whole_seconds_never_zero(emulator_factory: Any) -> None:
    emu: Emulator = await emulator_factory(vehicles=0, token_lifetime=1.5)
    async with aiohttp.ClientSession(base_url=emu.url) as http:
        status, body = await post_token(http, {"grant_type": "client_credentials",
                                               "client_id": emu.client_id,
                                               "client_secret": emu.client_secret})
    assert status == 200 and body["expires_in"] == 1


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Missing or invalid authorization header"),
        ("Basic abc", "Missing or invalid authorization header"),
        ("Bearer not-a-token", "Invalid token"),
    ],
)
async def test_bad_bearer_gets_401_in_the_vehicle_data_shape(
    emu: Emulator, http: aiohttp.ClientSession, authorization: str | None, detail: str
) -> None:
    status, body = await data_status(http, emu, authorization)
    assert status == 401
    assert body["errors"] == [{"title": "Not Authorized", "detail": detail}]
    assert body["request_id"]


async def test_a_token_signed_by_another_key_is_invalid(emu: Emulator,
                                                        http: aiohttp.ClientSession) -> None:
    real = await secret_token(http, emu)
    claims = segment(real, 1)
    forged = jwt.encode({"alg": "ES256", "typ": "JWT"}, claims,
                        ECKey.generate_key("P-256", private=True))
    status, body = await data_status(http, emu, f"Bearer {forged}")
    assert status == 401 and body["errors"][0]["detail"] == "Invalid token"


async def test_invalidate_tokens_forces_a_new_token(emu: Emulator,
                                                    http: aiohttp.ClientSession) -> None:
    token = await secret_token(http, emu)
    assert (await data_status(http, emu, f"Bearer {token}"))[0] == 200
    emu.invalidate_tokens()
    status, body = await data_status(http, emu, f"Bearer {token}")
    assert status == 401 and body["errors"][0]["detail"] == "Invalid token"
    fresh = await secret_token(http, emu)
    assert (await data_status(http, emu, f"Bearer {fresh}"))[0] == 200


async def test_clearance_and_eligibility_401_carry_a_source(emu: Emulator,
                                                            http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/fleets/vehicles") as resp:
        assert resp.status == 401
        assert (await resp.json())["errors"] == [{
            "title": "Not Authorized", "source": "Authorization",
            "detail": "Missing or invalid authorization header"}]
    async with http.post("/v1/eligibility", json={"vin": emu.vehicles[0].vin, "brand": "bmw"},
                         headers={"Authorization": "Bearer nope"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["errors"][0]["detail"] == "Invalid token"


async def test_credential_material_matches_the_console_download(emu: Emulator,
                                                                tmp_path: Path) -> None:
    from hm_async._credentials import ClientCredentials, PrivateKeyCredentials

    key_file = emu.private_key_json()
    assert set(key_file) == {"private_key", "id", "inserted_at"}
    assert key_file["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert key_file["id"] == emu.key_id
    assert isinstance(emu.client_credentials, ClientCredentials)
    assert isinstance(emu.private_key_credentials, PrivateKeyCredentials)
    assert emu.client_secret not in repr(emu) and emu.private_key_pem not in repr(emu)
    # The project's own credential objects build requests the emulator accepts.
    path = tmp_path / "private-key.json"
    path.write_text(json.dumps(key_file))
    from_file = PrivateKeyCredentials.from_file(path, client_id=emu.client_id)
    async with aiohttp.ClientSession(base_url=emu.url) as http:
        for creds in (emu.client_credentials, emu.private_key_credentials, from_file):
            status, body = await post_token(http, await creds.token_request_body(emu.url))
            assert status == 200, body


async def test_emulator_refuses_to_start_twice_and_needs_start_for_url() -> None:
    emu = Emulator(EmulatorConfig(vehicles=0))
    with pytest.raises(RuntimeError, match="not started"):
        _ = emu.url
    async with emu:
        with pytest.raises(RuntimeError, match="already running"):
            await emu.start()
