"""TLS: certificates are verified by default, and a private CA is trusted only when given.

An HTTPS emulator with a throwaway CA (trustme) stands in for an API behind a certificate
the system does not know (a man in the middle, or a company proxy). The emulator's own TLS
serving is tested in tests/test_emulator_cli.py; here it is the client's side.
"""

from __future__ import annotations

import ssl
import time

import pytest
import trustme

import hm_async
from hm_async import HMClient, Timeout
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


def contexts(name: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a cert for ``name``, client context trusting its CA)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_an_unknown_ca_is_refused_by_default_before_any_secret_is_sent(
    lean_http: bool,
) -> None:
    server_ctx, _ = contexts()
    async with Emulator(EmulatorConfig(vehicles=1), ssl_context=server_ctx) as emu:
        assert emu.url.startswith("https://")
        async with HMClient(emu.client_credentials, base_url=emu.url, lean_http=lean_http,
                            timeout=Timeout(5.0, connect=2.0)) as hm:
            started = time.monotonic()
            with pytest.raises(hm_async.TransportError) as err:
                await hm.vehicle_data(emu.vehicles[0].vin)
            # a certificate failure is not worth a long retry dance (was ~50 s)
            assert time.monotonic() - started < 8.0
        text = str(err.value)
        assert "certificate" in text.lower() or "TLS" in text, text
        assert emu.client_secret not in text
        assert emu.stats.token_requests == 0  # the secret never left the client


async def test_the_ca_given_is_trusted_with_both_credential_kinds(lean_http: bool) -> None:
    server_ctx, client_ctx = contexts()
    async with Emulator(EmulatorConfig(vehicles=2), ssl_context=server_ctx) as emu:
        for creds in (emu.client_credentials, emu.private_key_credentials):
            async with HMClient(creds, base_url=emu.url, ssl=client_ctx,
                                lean_http=lean_http) as hm:
                data = await hm.vehicle_data(emu.vehicles[0].vin)
                assert data.vin == emu.vehicles[0].vin
        assert emu.stats.tokens_issued == 2  # the assertion's https audience was accepted


async def test_a_trusted_ca_does_not_excuse_a_wrong_host_name(lean_http: bool) -> None:
    server_ctx, client_ctx = contexts("api.example.com")
    async with Emulator(EmulatorConfig(vehicles=1), ssl_context=server_ctx) as emu, HMClient(
        emu.client_credentials, base_url=emu.url, ssl=client_ctx, lean_http=lean_http
    ) as hm:
        with pytest.raises(hm_async.TransportError) as err:
            await hm.vehicle_data(emu.vehicles[0].vin)
        assert "127.0.0.1" in str(err.value) or "hostname" in str(err.value).lower()
        assert emu.stats.token_requests == 0
