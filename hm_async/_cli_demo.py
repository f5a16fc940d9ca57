"""``hm-async demo``: the README's first command, with nothing to configure.

It starts the bundled emulator in this process, on a free local port, with the things a real
fleet poll meets: latency, transient faults (503/504/500/408, dropped connections, HTML error
pages), a rate-limited brand, vehicles without consent or asleep, a pending clearance and a
VIN HM does not know. Then it polls the whole fleet by bare VIN, exactly as a user would
(brands come from one clearance list call), and prints what happened. The emulator's fault
counter is shown next to the client's retry count, so the reader can see the retries at work.
"""

from __future__ import annotations

import time
from typing import IO

from rich.console import Console

from ._cli_poll import ResultWriter, run_poll, summary_table
from ._client import HMClient
from .emulator import Emulator, EmulatorConfig

__all__ = ["demo"]

#: Failures that retries are meant to absorb (the rest are facts about a vehicle).
_TRANSIENT = frozenset({"ServerError", "TransportError", "HMTimeoutError", "RateLimitedError",
                        "RetryBudgetExhaustedError"})
_PENDING_VIN = "WBADEMX0000000001"
_UNKNOWN_VIN = "WBADEMX0000000002"
#: What the emulator allows bmw (requests per second); the client is not told.
_BMW_LIMIT = 25.0


def demo_config(vehicles: int, fault_rate: float, seed: int | None) -> EmulatorConfig:
    return EmulatorConfig(
        vehicles=vehicles,
        latency=(0.02, 0.25),
        fault_rate=fault_rate,
        seed=seed,
        rate_limits={"bmw": _BMW_LIMIT},
        no_consent_fraction=0.01,
        privacy_mode_fraction=0.005,
        asleep_fraction=0.005,
        consent_removed_fraction=0.003,
        token_lifetime=300.0,
        approve_delay=3600.0,
    )


async def demo(*, vehicles: int, fault_rate: float, concurrency: int, seed: int | None,
               output: IO[bytes] | None, console: Console, show_progress: bool) -> None:
    """Run the demo; per-VIN failures are part of the show, so they do not fail it.

    Every number printed is one the reader can check against another: the VINs in the
    header are the bar's total; bmw's limit is the server's, and the client (which is not
    told it, as with an unconfigured brand) shows the rate it actually reached; API calls
    add up from first attempts and retries; 401s are explained next to the token count.
    """
    cfg = demo_config(vehicles, fault_rate, seed)
    total = vehicles + 2
    console.print(
        f"[bold]hm-async demo[/]: polling {total:,} VINs of a local High Mobility emulator: "
        f"{vehicles:,} vehicles of the fleet, plus one whose clearance is still pending and "
        f"one HM does not know (both cost no request).\n"
        f"{fault_rate:.0%} of vehicle-data requests fail on purpose (retried). The emulator "
        f"allows bmw {_BMW_LIMIT:g} req/s and answers 429 above that; the client is not told "
        f"(like a brand without a configured limit, it starts at 10 req/s and adapts). Some "
        f"vehicles have no consent, privacy mode on, are asleep, or had consent removed by "
        f"the OEM (HTTP 401 for that vehicle).")
    started = time.monotonic()
    async with Emulator(cfg) as emu:
        emu.add_vehicle(_PENDING_VIN, "bmw", status="pending")
        vins = [v.vin for v in emu.vehicles] + [_PENDING_VIN, _UNKNOWN_VIN]
        async with HMClient(emu.client_credentials, base_url=emu.url) as hm:
            writer = ResultWriter(output, "the output") if output is not None else None
            outcome = await run_poll(hm, list(vins), writer, concurrency=concurrency,
                                     console=console, show_progress=show_progress,
                                     description="demo poll")
            console.print(summary_table(outcome, hm, title="Demo poll summary"))
            faults = sum(emu.stats.faults.values())
            throttled = emu.stats.count(route="vehicle_data", status=429)
            usage = hm.usage()
        errors = outcome.progress.errors()
        transient = sum(n for kind, n in errors.items() if kind in _TRANSIENT)
        per_vehicle = outcome.progress.failed - transient
        left = f"{per_vehicle} per-vehicle failures (no consent, privacy mode, asleep, consent " \
               f"removed, not cleared)"
        if transient:
            left += f" and {transient} requests that failed every retry"
        bmw = outcome.achieved_rate("bmw")
        bmw_text = f" bmw ran at {bmw:.0f} req/s against the server's {_BMW_LIMIT:g}" \
                   f" ({throttled} answers were 429s)." if bmw is not None else ""
        console.print(f"The emulator injected {faults} faults; the client retried "
                      f"{usage.total_retries} times (for those faults, and for vehicles "
                      f"answering 408 because they were asleep: they may wake up). What is "
                      f"left: {left}.{bmw_text}")
    console.print(
        f"[dim]That was the built-in emulator at {emu.url}, not High Mobility "
        f"(finished in {time.monotonic() - started:.1f} s). For the real thing: set "
        f"HM_CLIENT_ID and HM_CLIENT_SECRET, then `hm-async poll vins.txt`.[/]")
