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


def demo_config(vehicles: int, fault_rate: float, seed: int | None) -> EmulatorConfig:
    return EmulatorConfig(
        vehicles=vehicles,
        latency=(0.02, 0.25),
        fault_rate=fault_rate,
        seed=seed,
        rate_limits={"bmw": 25.0},
        no_consent_fraction=0.01,
        privacy_mode_fraction=0.005,
        asleep_fraction=0.005,
        consent_removed_fraction=0.003,
        token_lifetime=300.0,
        approve_delay=3600.0,
    )


async def demo(*, vehicles: int, fault_rate: float, concurrency: int, seed: int | None,
               output: IO[bytes] | None, console: Console, show_progress: bool) -> None:
    """Run the demo; per-VIN failures are part of the show, so they do not fail it."""
    cfg = demo_config(vehicles, fault_rate, seed)
    console.print(f"[bold]hm-async demo[/]: polling {vehicles:,} vehicles of a local High "
                  f"Mobility emulator ({fault_rate:.0%} injected faults, bmw limited to "
                  f"25 req/s, some vehicles without consent or asleep)")
    started = time.monotonic()
    async with Emulator(cfg) as emu:
        emu.add_vehicle(_PENDING_VIN, "bmw", status="pending")
        vins = [v.vin for v in emu.vehicles] + [_PENDING_VIN, _UNKNOWN_VIN]
        async with HMClient(emu.client_credentials, base_url=emu.url) as hm:
            writer = ResultWriter(output) if output is not None else None
            outcome = await run_poll(hm, list(vins), writer, concurrency=concurrency,
                                     console=console, show_progress=show_progress,
                                     description="demo poll")
            console.print(summary_table(outcome, hm, title="Demo poll summary"))
            faults = sum(emu.stats.faults.values())
            usage = hm.usage()
        errors = outcome.progress.errors()
        transient = sum(n for kind, n in errors.items() if kind in _TRANSIENT)
        per_vehicle = outcome.progress.failed - transient
        left = f"{per_vehicle} per-vehicle failures (no consent, privacy mode, asleep, not cleared)"
        if transient:
            left += f" and {transient} requests that failed every retry"
        console.print(f"The emulator injected {faults} faults and the client retried "
                      f"{usage.total_retries} times; what is left: {left}.")
    console.print(
        f"[dim]That was the built-in emulator at {emu.url}, not High Mobility "
        f"(finished in {time.monotonic() - started:.1f} s). For the real thing: set "
        f"HM_CLIENT_ID and HM_CLIENT_SECRET, then `hm-async poll vins.txt`.[/]")

