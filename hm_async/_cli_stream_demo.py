"""``hm-async demo --stream``: the emulator pushes to a throwaway local mosquitto, we stream.

Kept apart from :mod:`._cli_stream` so that the emulator (aiohttp's server) is imported only
when the demo runs, not for every ``hm-async`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from rich.console import Console

from ._cli_config import ExitCode
from ._cli_stream import progress_text
from .emulator import Emulator, EmulatorConfig
from .emulator._mosquitto import LocalBroker, find_mosquitto
from .emulator._mqtt_config import MQTTPush
from .stream import MalformedMessage, StreamEvent, stream

__all__ = ["stream_demo"]


async def stream_demo(console: Console, *, seconds: float = 5.0, vehicles: int = 50) -> int:
    """``hm-async demo --stream``: the emulator pushes to a local mosquitto, we stream it."""
    binary = find_mosquitto()
    if binary is None:
        console.print("hm-async demo --stream needs the mosquitto broker "
                      "(Debian/Ubuntu: apt-get install mosquitto; macOS: brew install mosquitto)")
        return ExitCode.USAGE
    broker = LocalBroker(binary)
    broker.start()
    try:
        push = MQTTPush(broker.host, broker.port, broker.credentials("hm-emulator"), rate=300,
                        duplicate_rate=0.05, malformed_rate=0.02)
        console.print(f"[bold]hm-async demo --stream[/]: a local emulator pushes {vehicles} "
                      f"vehicles' changes (5% resent, 2% broken) to mosquitto at "
                      f"{broker.host}:{broker.port} (mTLS); streaming for {seconds:.0f} s")
        async with stream(broker.credentials("hm-worker"), app_id=push.app_id,
                          host=broker.host, port=broker.port,
                          client_id="hm-async-demo") as events, \
                Emulator(EmulatorConfig(vehicles=vehicles, update_interval=2.0,
                                        failure_fraction=0.0), mqtt=push) as emu:
            deadline = time.monotonic() + seconds
            shown = 0
            with contextlib.suppress(asyncio.TimeoutError):
                while (left := deadline - time.monotonic()) > 0:
                    item = await asyncio.wait_for(events.__anext__(), left)
                    if shown < 6:
                        shown += 1
                        console.print(_demo_line(item))
            resent = emu.mqtt.stats.duplicates if emu.mqtt is not None else 0
        console.print("stream: " + progress_text(events, events.stats.started,
                                                  events.stats.delivered)
                      + f" (the emulator resent {resent} messages)")
        console.print("[dim]For HM's broker: hm-async stream --app-id APP --ca ca.pem "
                      "--cert client.pem --key client.key -o events.jsonl[/]")
        return ExitCode.OK
    finally:
        broker.stop()


def _demo_line(item: StreamEvent | MalformedMessage) -> str:
    if not item.ok:
        return f"  malformed message skipped: {item.reason}"
    odometer = item.data.diagnostics.odometer if item.data.diagnostics else []
    km = f", odometer {odometer[0].data.value:,.0f} {odometer[0].data.unit}" \
        if odometer and odometer[0].data is not None else ""
    return f"  {item.vin}: {len(item.changed)} properties{km}"
