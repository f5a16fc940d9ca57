"""A streaming worker: HM's MQTT push in, one durable line per vehicle change out.

    python examples/stream_worker.py --app-id <application id> --ca ca.pem \\
        --cert client.pem --key client.key --out changes.jsonl [--group workers]

Each event is written (and flushed) to ``--out`` *inside* the loop body, so by the time the
stream acknowledges the message to the broker the line is in the file. Kill the worker at
any moment and start it again with the same ``--client-id``: nothing is lost (the broker
redelivers what was not acknowledged), and duplicates HM sends are dropped by the dedupe
window. A message that was written but not yet acknowledged when the worker died is
delivered once more after the restart: downstream stays idempotent per ``message_id``.

The loop consumes :class:`hm_async.stream.VehicleChange`, the shape ``hm.watch()`` results
convert to as well: switching this worker from polling to streaming is the one line that
builds ``source``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from typing import IO

from hm_async.stream import MQTTCredentials, as_change, stream


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--app-id", required=True)
    p.add_argument("--environment", default="production", choices=("production", "sandbox"))
    p.add_argument("--version", type=int, default=2, choices=(1, 2))
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--host", help="broker host (default: HM's broker for --version)")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--client-id", help="stable per worker: the broker keeps its session")
    p.add_argument("--group", help="share the stream with the other workers of this group")
    p.add_argument("--out", required=True, help="JSON Lines file, appended to")
    p.add_argument("--max-events", type=int, help="stop after this many events")
    return p


def _record(out: IO[str], item: object) -> None:
    change = as_change(item)
    if change is None:  # a malformed message: keep a trace, do not stop
        line = {"pid": os.getpid(), "malformed": getattr(item, "reason", "?"),
                "message_id": getattr(item, "message_id", None)}
    else:
        line = {"pid": os.getpid(), "message_id": change.message_id, "vin": change.vin,
                "changed": list(change.changed)}
    out.write(json.dumps(line) + "\n")
    out.flush()  # in the OS's hands before the stream acknowledges: survives SIGKILL


async def run(args: argparse.Namespace) -> int:
    credentials = MQTTCredentials.from_files(args.ca, args.cert, args.key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    seen = 0
    with open(args.out, "a", encoding="utf-8") as out:
        async with stream(credentials, app_id=args.app_id, environment=args.environment,
                          version=args.version, group=args.group, client_id=args.client_id,
                          host=args.host, port=args.port) as events:
            print(json.dumps({"ready": True, "client_id": events.client_id}), flush=True)
            source = events                 # polling instead: source = hm.watch(vins, every=60)
            async for item in source:
                _record(out, item)
                seen += 1
                if stop.is_set() or (args.max_events is not None and seen >= args.max_events):
                    break
    return 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(asyncio.run(run(_parser().parse_args())))


if __name__ == "__main__":
    main()
