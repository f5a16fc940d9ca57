"""Credentials: what they send, how they fail on bad input, and that secrets stay hidden."""

from __future__ import annotations

import json
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwt
from joserfc.jwk import ECKey

from hm_async._credentials import (
    ASSERTION_TYPE,
    ClientCredentials,
    Credentials,
    CredentialsError,
    PrivateKeyCredentials,
    credentials_from_env,
)
from hm_async._errors import HMError, TokenRefusedError
from hm_async._tokens import TokenProvider
from hm_async.emulator import Emulator


def pem(key: Any, *, encryption: Any = None) -> str:
    return str(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption()).decode())


P256 = pem(ec.generate_private_key(ec.SECP256R1()))
P256_BODY = P256.splitlines()[1]  # a line of the secret, to look for in messages


# -- client secret --------------------------------------------------------------------------

@pytest.mark.anyio
async def test_client_credentials_body_and_redacted_repr() -> None:
    creds = ClientCredentials(client_id="cid", client_secret="top-secret")
    assert await creds.token_request_body("http://x") == {
        "grant_type": "client_credentials", "client_id": "cid", "client_secret": "top-secret"}
    for text in (repr(creds), str(creds), f"{creds}"):
        assert "top-secret" not in text and "cid" in text


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"client_id": "", "client_secret": "s"}, "client_id"),
    ({"client_id": "c", "client_secret": "  "}, "client_secret"),
    ({"client_id": "c", "client_secret": None}, "client_secret"),
])
def test_client_credentials_reject_blank_fields(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(CredentialsError, match=field):
        ClientCredentials(**kwargs)


def test_credentials_are_hm_errors_and_value_errors() -> None:
    with pytest.raises(HMError):
        ClientCredentials("", "s")
    with pytest.raises(ValueError):
        ClientCredentials("", "s")


def test_credentials_refuse_pickling() -> None:
    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(ClientCredentials("c", "s"))
    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(PrivateKeyCredentials("c", P256, "kid"))


# -- private key ----------------------------------------------------------------------------

@pytest.mark.anyio
async def test_assertion_claims_and_header() -> None:
    creds = PrivateKeyCredentials(client_id="cid", private_key=P256, key_id="kid-1",
                                  wall_clock=lambda: 1_700_000_000.7)
    body = await creds.token_request_body("https://sandbox.api.high-mobility.com/")
    assert body["grant_type"] == "client_credentials" and body["client_id"] == "cid"
    assert body["client_assertion_type"] == ASSERTION_TYPE
    public = ECKey.import_key(ECKey.import_key(P256).as_pem(private=False))
    decoded = jwt.decode(body["client_assertion"], public, algorithms=["ES256"])
    assert decoded.header == {"alg": "ES256", "typ": "JWT"}
    claims = dict(decoded.claims)
    jti = claims.pop("jti")
    assert uuid.UUID(jti).version == 4
    assert claims == {"ver": 2, "iss": "kid-1",
                      "aud": "https://sandbox.api.high-mobility.com/v1", "iat": 1_700_000_000}
    again = await creds.token_request_body("https://sandbox.api.high-mobility.com")
    assert jwt.decode(again["client_assertion"], public).claims["jti"] != jti  # fresh each time
    assert "client_secret" not in body


def test_private_key_repr_redacts_the_key() -> None:
    creds = PrivateKeyCredentials(client_id="cid", private_key=P256, key_id="kid-1")
    assert P256_BODY not in repr(creds) and "PRIVATE" not in repr(creds)
    assert "kid-1" in repr(creds) and creds.key_id == "kid-1" and creds.client_id == "cid"


def test_private_key_accepts_bytes_sec1_and_escaped_newlines() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sec1 = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
    PrivateKeyCredentials("c", sec1, "k")
    PrivateKeyCredentials("c", P256.replace("\n", "\\n"), "k")


@pytest.mark.parametrize(("key", "problem"), [
    ("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
     "could not be parsed"),
    (P256.replace(P256_BODY, P256_BODY[::-1]), "could not be parsed"),
    (pem(rsa.generate_private_key(65537, 2048)), "not an elliptic-curve key"),
    (pem(ed25519.Ed25519PrivateKey.generate()), "not an elliptic-curve key"),
    (pem(ec.generate_private_key(ec.SECP384R1())), "curve P-384"),
    (ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
     "public key"),
    (pem(ec.generate_private_key(ec.SECP256R1()),
         encryption=serialization.BestAvailableEncryption(b"pw")), "encrypted"),
    ("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", "not a PEM key"),
    ("", "empty"),
    (b"\xff\xfe", "non-ASCII"),
])
def test_bad_private_keys_get_clear_errors_without_the_key(key: str | bytes,
                                                           problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem) as info:
        PrivateKeyCredentials(client_id="c", private_key=key, key_id="k")
    message = str(info.value)
    body_lines = key.splitlines()[1:2] if isinstance(key, str) else []
    for line in body_lines:
        assert line not in message
    # No library exception chained in to carry text about the key.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_key_id_is_named() -> None:
    with pytest.raises(CredentialsError, match="key_id"):
        PrivateKeyCredentials("c", P256, "")


# -- the console's key file ----------------------------------------------------------------

def write(tmp_path: Path, doc: object, name: str = "key.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_from_file_reads_the_console_download(tmp_path: Path) -> None:
    path = write(tmp_path, {"private_key": P256, "id": "kid-9",
                            "inserted_at": "2024-01-01T00:00:00Z"})
    creds = PrivateKeyCredentials.from_file(path, client_id="cid")
    assert creds.key_id == "kid-9" and creds.client_id == "cid"
    assert isinstance(PrivateKeyCredentials.from_file(str(path), client_id="cid"), Credentials)


@pytest.mark.parametrize(("doc", "problem"), [
    ({"id": "k"}, "lacks 'private_key'"),
    ({"private_key": P256}, "lacks 'id'"),
    ({}, "lacks 'private_key' and 'id'"),
    ([1, 2], "not a JSON object"),
    (P256, "is not JSON"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----",
      "id": "k"}, "could not be parsed"),
])
def test_from_file_names_what_is_wrong(tmp_path: Path, doc: object, problem: str) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(CredentialsError, match=problem) as info:
        PrivateKeyCredentials.from_file(path, client_id="cid")
    assert str(path) in str(info.value) and P256_BODY not in str(info.value)


def test_from_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"cannot read .*No such file"):
        PrivateKeyCredentials.from_file(tmp_path / "missing.json", client_id="cid")
    with pytest.raises(CredentialsError, match="cannot read"):
        PrivateKeyCredentials.from_file(tmp_path, client_id="cid")  # a directory


# -- environment ----------------------------------------------------------------------------

def test_env_client_secret() -> None:
    creds = credentials_from_env({"HM_CLIENT_ID": "cid", "HM_CLIENT_SECRET": "sec\n"})
    assert isinstance(creds, ClientCredentials) and creds.client_id == "cid"


def test_env_key_file_json_and_pem(tmp_path: Path) -> None:
    json_file = write(tmp_path, {"private_key": P256, "id": "kid-json"})
    creds = credentials_from_env({"HM_CLIENT_ID": "cid", "HM_PRIVATE_KEY_FILE": str(json_file)})
    assert isinstance(creds, PrivateKeyCredentials) and creds.key_id == "kid-json"
    creds = credentials_from_env({"HM_CLIENT_ID": "cid", "HM_PRIVATE_KEY_FILE": str(json_file),
                                  "HM_KEY_ID": "override"})
    assert isinstance(creds, PrivateKeyCredentials) and creds.key_id == "override"
    pem_file = write(tmp_path, P256, "key.pem")
    creds = credentials_from_env({"HM_CLIENT_ID": "cid", "HM_PRIVATE_KEY_FILE": str(pem_file),
                                  "HM_KEY_ID": "kid-pem"})
    assert isinstance(creds, PrivateKeyCredentials) and creds.key_id == "kid-pem"


def test_env_inline_key_with_escaped_newlines() -> None:
    creds = credentials_from_env({"HM_CLIENT_ID": "cid", "HM_KEY_ID": "k",
                                  "HM_PRIVATE_KEY": P256.replace("\n", "\\n")})
    assert isinstance(creds, PrivateKeyCredentials)
    doc = json.dumps({"private_key": P256, "id": "kid-doc"})
    creds = credentials_from_env({"HM_CLIENT_ID": "cid", "HM_PRIVATE_KEY": doc})
    assert isinstance(creds, PrivateKeyCredentials) and creds.key_id == "kid-doc"


def test_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HM_PRIVATE_KEY_FILE", "HM_PRIVATE_KEY", "HM_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HM_CLIENT_ID", "from-os")
    monkeypatch.setenv("HM_CLIENT_SECRET", "s")
    assert credentials_from_env().client_id == "from-os"


@pytest.mark.parametrize(("env", "problem"), [
    ({"HM_CLIENT_SECRET": "s"}, "HM_CLIENT_ID is not set"),
    ({"HM_CLIENT_ID": "  ", "HM_CLIENT_SECRET": "s"}, "HM_CLIENT_ID is not set"),
    ({"HM_CLIENT_ID": "c"}, "no secret found"),
    ({"HM_CLIENT_ID": "c", "HM_CLIENT_SECRET": "s", "HM_PRIVATE_KEY": P256}, "not both"),
    ({"HM_CLIENT_ID": "c", "HM_PRIVATE_KEY": P256, "HM_PRIVATE_KEY_FILE": "/x"}, "not both"),
    ({"HM_CLIENT_ID": "c", "HM_PRIVATE_KEY": P256}, "HM_KEY_ID is not set"),
    ({"HM_CLIENT_ID": "c", "HM_PRIVATE_KEY": P256[:-40], "HM_KEY_ID": "k"}, "HM_PRIVATE_KEY: "),
    ({"HM_CLIENT_ID": "c", "HM_PRIVATE_KEY_FILE": "/nonexistent/key.json"}, "cannot read"),
    ({"HM_CLIENT_ID": "c", "HM_PRIVATE_KEY": '{"id": "k"}'}, "lacks 'private_key'"),
])
def test_env_errors_name_the_variable(env: dict[str, str], problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem) as info:
        credentials_from_env(env)
    assert P256_BODY not in str(info.value) and "s3cret" not in str(info.value)


# -- the emulator's real verification -------------------------------------------------------

async def fetch_token(emu: Emulator, creds: Credentials) -> str:
    async with aiohttp.ClientSession() as session, TokenProvider(
            creds, session=session, base_url=emu.url) as provider:
        return (await provider.get()).value


@pytest.mark.anyio
async def test_both_kinds_are_accepted_by_the_emulator(tmp_path: Path) -> None:
    async with Emulator() as emu:
        key_file = write(tmp_path, emu.private_key_json())
        kinds: list[Credentials] = [
            ClientCredentials(client_id=emu.client_id, client_secret=emu.client_secret),
            PrivateKeyCredentials(client_id=emu.client_id, private_key=emu.private_key_pem,
                                  key_id=emu.key_id),
            PrivateKeyCredentials.from_file(key_file, client_id=emu.client_id),
            credentials_from_env({"HM_CLIENT_ID": emu.client_id,
                                  "HM_PRIVATE_KEY_FILE": str(key_file)}),
            credentials_from_env({"HM_CLIENT_ID": emu.client_id,
                                  "HM_CLIENT_SECRET": emu.client_secret}),
        ]
        tokens = {await fetch_token(emu, creds) for creds in kinds}
        assert len(tokens) == len(kinds) and emu.stats.tokens_issued == len(kinds)
        # The same credentials again: a fresh jti, so no replay refusal.
        await fetch_token(emu, kinds[1])


@pytest.mark.anyio
@pytest.mark.parametrize(("tweak", "description"), [
    ({"private_key": P256}, "client_assertion is invalid"),
    ({"key_id": "someone-else"}, "iss does not match"),
    ({"wall_clock": lambda: time.time() - 3600}, "client_assertion is expired"),
])
async def test_bad_assertions_are_refused_by_the_emulator(tweak: dict[str, Any],
                                                          description: str) -> None:
    async with Emulator() as emu:
        args: dict[str, Any] = {"client_id": emu.client_id,
                                "private_key": emu.private_key_pem, "key_id": emu.key_id}
        args.update(tweak)
        with pytest.raises(TokenRefusedError, match=description) as info:
            await fetch_token(emu, PrivateKeyCredentials(**args))
        assert info.value.error_description is not None
        assert description in info.value.error_description
