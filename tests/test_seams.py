"""One seam per concern: the network-error mapper, the backoff, the metered token endpoint,
and the stale-connection re-send in the policy loop (issue 12, points 2 and 5)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from typing import Any

import aiohttp
import pytest
from yarl import URL

from hm_async import HMClient, RetryBudgetExhaustedError, TransportError
from hm_async._aiohttp_lane import AiohttpLane
from hm_async._config import REQUEST_BACKOFF, TOKEN_BACKOFF, Timeout
from hm_async._credentials import ClientCredentials
from hm_async._errors import StaleConnectionError
from hm_async._h1_pool import LeanHTTP
from hm_async._retry import RetryBudget, backoff_delay
from hm_async._tokens import TokenProvider
from hm_async._tokens import backoff_delay as token_backoff
from hm_async.emulator import Emulator

pytestmark = pytest.mark.anyio


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def failure(call: Awaitable[Any]) -> TransportError:
    with pytest.raises(TransportError) as err:
        await call
    return err.value


async def test_one_mapper_for_both_lanes_and_the_token_endpoint(closed_port: int) -> None:
    base = f"http://127.0.0.1:{closed_port}"
    lean = LeanHTTP("127.0.0.1", closed_port, ssl=None, max_idle=1, keepalive=1.0,
                    max_body=1000)
    async with aiohttp.ClientSession() as session:
        lane = AiohttpLane(session)
        tokens = TokenProvider(ClientCredentials("cid", "secret"), lane=lane, base_url=base,
                               max_attempts=1)
        errors = [
            await failure(lean.get("/v1/x", lean.header_block({}), total=2.0, connect=1.0,
                                   read=None)),
            await failure(lane.send("GET", URL(base + "/v1/x"), body=None, headers={},
                                    timeout=Timeout(2.0))),
            await failure(tokens.get()),
        ]
        await tokens.aclose()
    await lean.aclose()
    for error in errors:
        # one wording and one kind, whichever lane: no aiohttp class names, no "ssl:default"
        assert error.kind == "connect", error
        assert f"cannot connect to 127.0.0.1:{closed_port}: connection refused" in str(error)
        assert "ClientConnectorError" not in str(error) and "ssl:" not in str(error)
    assert str(errors[2]).startswith("token request: ")


def test_one_backoff_function_with_two_schedules() -> None:
    assert token_backoff.func is backoff_delay  # type: ignore[attr-defined]
    assert backoff_delay(1, rand=0.0) == REQUEST_BACKOFF.initial == 0.5
    assert token_backoff(1, rand=0.0) == TOKEN_BACKOFF.initial == 0.2
    assert backoff_delay(20, schedule=TOKEN_BACKOFF, rand=0.0) == 5.0
    assert backoff_delay(20, rand=0.0) == 8.0
    assert backoff_delay(3, rand=0.0, remaining=0.3) == 0.3
    assert backoff_delay(0, rand=0.0) == 0.0


async def test_token_endpoint_is_metered(emulator: Emulator) -> None:
    emulator.script_faults("token", [503])
    vin = emulator.vehicles[0].vin
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        await hm.vehicle_data(vin)
        rows = {(r.endpoint, r.outcome): (r.calls, r.retries) for r in hm.usage().rows}
    assert rows[("access_tokens", "503")] == (1, 0)
    assert rows[("access_tokens", "200")] == (0, 1)  # the second token request is a retry
    assert rows[("vehicle_data", "200")] == (1, 0)
    assert emulator.stats.count("token") == 2


async def test_stale_connection_resent_once_as_a_metered_retry(emulator: Emulator) -> None:
    vin = emulator.vehicles[0].vin
    async with HMClient(emulator.client_credentials, base_url=emulator.url) as hm:
        strict = hm.with_options(max_retries=0)  # the re-send does not use max_retries
        await strict.vehicle_data(vin)  # opens the GET lane's keep-alive connection
        emulator.script_faults("vehicle_data", ["drop"])  # read, then hang up
        assert (await strict.vehicle_data(vin)).vin == vin
        rows = {(r.endpoint, r.outcome): (r.calls, r.retries) for r in hm.usage().rows}
    assert rows[("vehicle_data", "transport")] == (1, 0)
    assert rows[("vehicle_data", "200")] == (1, 1)  # first call, and the re-send as a retry
    assert emulator.stats.count("vehicle_data") == 3


async def test_stale_connection_resend_is_bounded_by_the_retry_budget(
        emulator: Emulator) -> None:
    vin = emulator.vehicles[0].vin
    empty = RetryBudget(ratio=0.0, min_per_second=0.0, capacity=0.0)
    async with HMClient(emulator.client_credentials, base_url=emulator.url,
                        retry_budget=empty) as hm:
        await hm.vehicle_data(vin)
        emulator.script_faults("vehicle_data", ["drop"])
        with pytest.raises(RetryBudgetExhaustedError) as err:
            await hm.vehicle_data(vin)
    assert isinstance(err.value.last_error, StaleConnectionError)
    assert emulator.stats.count("vehicle_data") == 2  # no re-send past the budget
