"""The fault-injection soak: a whole fleet polled while the emulator misbehaves on purpose.

What the emulator does during the run: 10% of vehicle-data, token and clearance requests fail
(503, 504, 408, 500, an nginx HTML 502, or a connection closed without an answer); bmw is
rate limited by the server, and every few seconds the limit collapses for a while (a 429
storm that the client does not know about in advance: bmw is adaptive on the client side);
tokens live 2 seconds; a few VINs fail for good (no consent, privacy mode).

What must hold: every VIN comes back exactly once; everything that failed only transiently
is retried until it works (>= 99.5%); retries stay bounded; token requests stay at about one
per token life; nothing leaks (no "Unclosed ..." or "Task was destroyed" message, no task or
connection left) and memory stays flat while results stream.

Plain ``pytest`` runs a short soak (1,200 VINs, a few seconds); ``nox -s soak``
(``HM_SOAK_FULL=1``) runs the full 5,000-VIN one and prints its figures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from leakcheck import acquired_connections, leak_messages, settle

import hm_async
from hm_async import HMClient, Progress
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio

FULL = os.environ.get("HM_SOAK_FULL") == "1"
SIZES = ([pytest.param(5000, marks=[pytest.mark.soak, pytest.mark.timeout(600)], id="full")]
         if FULL else [pytest.param(1200, id="short")])

TOKEN_LIFE = 2.0
FAULT_RATE = 0.1
BMW_LIMIT = 40.0  # req/s the server allows bmw between storms
STORM_LIMIT = 4.0  # ... and during one
STORM_EVERY = 4.0  # seconds between storm starts
STORM_LENGTH = 1.0
#: Errors a VIN may end with only if every one of its attempts failed transiently.
TRANSIENT = (hm_async.ServerError, hm_async.TransportError, hm_async.VehicleUnavailableError,
             hm_async.RateLimitedError, hm_async.RetryBudgetExhaustedError)


def rss_mb() -> float:
    """Resident set size now (Linux), else the peak so far; in MB."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


async def storms(emu: Emulator) -> None:
    """Collapse bmw's server-side limit for STORM_LENGTH every STORM_EVERY seconds."""
    limits = emu.config.rate_limits
    while True:
        await asyncio.sleep(STORM_EVERY - STORM_LENGTH)
        limits["bmw"] = STORM_LIMIT
        await asyncio.sleep(STORM_LENGTH)
        limits["bmw"] = BMW_LIMIT


@pytest.mark.parametrize("n_vins", SIZES)
async def test_soak(n_vins: int, caplog: pytest.LogCaptureFixture,
                    capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.WARNING)
    cfg = EmulatorConfig(
        vehicles=n_vins, seed=2024, fault_rate=FAULT_RATE,
        faults=("503", "504", "408", "500", "html502", "drop"),
        fault_routes=("vehicle_data", "token", "clearance"),
        token_lifetime=TOKEN_LIFE, rate_limits={"bmw": BMW_LIMIT}, rate_limit_burst=2.0,
        no_consent_fraction=0.004, privacy_mode_fraction=0.002, latency=(0.0, 0.004),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with Emulator(cfg) as emu:
            permanent = set(emu.special_vins["no_consent"]) | set(emu.special_vins["privacy_mode"])

            def inputs() -> Iterator[Any]:
                # every input shape poll accepts; bare VINs learn their brand from one list call
                for i, v in enumerate(emu.vehicles):
                    yield (v.vin if i % 4 == 0 else (v.vin, v.brand) if i % 4 == 1 else v)

            storm_task = asyncio.create_task(storms(emu))
            async with HMClient(emu.client_credentials, base_url=emu.url) as hm:
                progress = Progress(total=n_vins)
                seen: Counter[str] = Counter()
                failures: dict[str, hm_async.HMError] = {}
                finished: dict[str, float] = {}
                rss: list[float] = []
                started = time.monotonic()
                async for r in hm.poll(inputs(), concurrency=64, progress=progress):
                    seen[r.vin] += 1
                    assert (r.data is None) != (r.error is None)
                    if r.error is not None:
                        failures[r.vin] = r.error
                    else:
                        assert r.data is not None and r.data.vin == r.vin
                    finished[r.brand or "?"] = time.monotonic() - started
                    if len(seen) % (n_vins // 8) == 0:
                        rss.append(rss_mb())
                elapsed = time.monotonic() - started
                storm_task.cancel()
                await asyncio.wait([storm_task])
                # the pool is whole again and the client (and its token) still works
                assert acquired_connections(hm.transport) == 0
                emu.set_config(fault_rate=0.0, fault_routes=())
                assert (await hm.vehicle_data(emu.vehicles[-1].vin)).vin == emu.vehicles[-1].vin
                usage = hm.usage()
            stats = emu.stats
        leftover = await settle()

    # -- exactly once ---------------------------------------------------------------------
    assert len(seen) == n_vins and set(seen.values()) == {1}
    assert set(seen) == {v.vin for v in emu.vehicles}
    assert progress.done == n_vins and progress.failed == len(failures)
    # -- permanent failures are reported as such, the transient ones were retried away ---
    for vin in permanent:
        assert isinstance(failures.get(vin), hm_async.PermissionDeniedError), failures.get(vin)
    transient_failures = {v: e for v, e in failures.items() if v not in permanent}
    assert all(isinstance(e, TRANSIENT) for e in transient_failures.values()), transient_failures
    eligible = n_vins - len(permanent)
    successes = n_vins - len(failures)
    assert successes >= 0.995 * eligible, transient_failures
    # -- faults really happened, and retries were bounded -------------------------------
    injected = sum(stats.faults.values())
    data_requests = stats.count("vehicle_data")
    throttled = stats.count("vehicle_data", 429)
    assert injected >= 0.07 * n_vins
    assert data_requests - throttled <= 1.2 * n_vins  # ~10% faults, not a retry storm
    # the meter sees every attempt but the ones aiohttp itself re-sends after a drop
    metered = usage.by_endpoint()["vehicle_data"]
    assert data_requests - stats.faults["drop"] <= metered <= data_requests
    assert throttled > 0  # the storms did reach the client
    # -- tokens: about one request per token life, never a request with an expired one ---
    lives = elapsed / TOKEN_LIFE
    assert stats.tokens_issued >= lives - 1  # tokens really did expire and get renewed
    # refreshed from half-life (+10% jitter) on, plus retried token faults
    assert stats.token_requests <= 1.25 * lives / 0.5 + 3
    assert stats.count("vehicle_data", 401) <= 2
    # -- nothing leaked, memory flat ----------------------------------------------------
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not leak_messages(messages), messages
    assert not [r for r in caplog.records if r.name in ("asyncio", "aiohttp")]
    assert not leftover, leftover
    growth = rss[-1] - rss[1]  # after warm-up (decoders, pool, emulator caches) to the end
    assert growth < 25.0, rss

    with capsys.disabled():
        print(f"\nsoak: {n_vins} VINs in {elapsed:.1f} s; faults injected "
              f"{injected} {dict(stats.faults)}; 429s {throttled}; successes {successes} "
              f"({successes / eligible:.2%} of {eligible} not permanently refused); "
              f"retries {usage.total_retries}; vehicle-data requests {data_requests}; token "
              f"requests {stats.token_requests} ({stats.token_requests / lives:.2f} per "
              f"{TOKEN_LIFE:g} s life); RSS {rss[0]:.0f}->{rss[-1]:.0f} MB, peak "
              f"{peak_rss_mb():.0f} MB; finished by brand (s) "
              f"{ {b: round(t, 1) for b, t in sorted(finished.items())} }")


@pytest.mark.parametrize("fault", ["503", "504", "408", "500", "html502", "drop"])
async def test_each_fault_kind_on_the_token_endpoint_is_retried(fault: str) -> None:
    """A transient failure of the token endpoint costs a retry, not the caller's request."""
    async with Emulator(EmulatorConfig(vehicles=1)) as emu, HMClient(
        emu.client_credentials, base_url=emu.url
    ) as hm:
        emu.script_faults("token", [fault, fault])
        assert (await hm.vehicle_data(emu.vehicles[0].vin)).vin == emu.vehicles[0].vin
        assert emu.stats.token_requests == 3 and emu.stats.tokens_issued == 1
