"""``hm-async stream``: HM's MQTT push to JSON Lines, with a progress line on stderr.

stdout (or ``--output``) carries only JSON Lines, one per message, like ``hm-async poll``;
the payload HM sent is embedded byte for byte (``msgspec.Raw``)::

    {"ok": true, "vin": "...", "message_id": "...", "received_at": "...",
     "changed": ["diagnostics.odometer", ...], "message": {...HM's message...}}
    {"ok": false, "vin": null, "message_id": null, "received_at": "...",
     "error": "is not valid JSON", "topic": "live/level13/..."}

A line is written (and flushed) before the message is acknowledged to the broker, so a
killed ``hm-async stream`` resumes without a gap when started again with the same
``--client-id``. Registered in the main app by :func:`register`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Annotated

import msgspec
import typer
from rich.console import Console

from ._cli_config import ExitCode
from ._credentials import CredentialsError
from .stream import (
    EventStream,
    MalformedMessage,
    MQTTCredentials,
    StreamError,
    StreamEvent,
    StreamRefusedError,
    stream,
)

__all__ = ["encode_line", "progress_text", "register", "run_stream", "stream_command"]

_err = Console(stderr=True, highlight=False, soft_wrap=True)
_PROGRESS_SECONDS = 1.0


class _EventLine(msgspec.Struct):
    ok: bool
    vin: str
    message_id: str
    received_at: datetime
    changed: tuple[str, ...]
    message: msgspec.Raw


class _ErrorLine(msgspec.Struct):
    ok: bool
    vin: str | None
    message_id: str | None
    received_at: datetime
    error: str
    topic: str


_ENCODER = msgspec.json.Encoder()


def encode_line(item: StreamEvent | MalformedMessage) -> bytes:
    """One JSON line (with the newline) for a stream item."""
    if isinstance(item, StreamEvent):
        line: _EventLine | _ErrorLine = _EventLine(
            ok=True, vin=item.vin, message_id=item.message_id, received_at=item.received_at,
            changed=item.changed, message=msgspec.Raw(item.raw))
    else:
        line = _ErrorLine(ok=False, vin=item.vin, message_id=item.message_id,
                          received_at=item.received_at, error=item.reason, topic=item.topic)
    return _ENCODER.encode(line) + b"\n"


def progress_text(events: EventStream, since: float, done: int) -> str:
    s = events.stats
    elapsed = max(time.monotonic() - since, 1e-9)
    return (f"{s.delivered:,} messages ({done / elapsed:,.0f}/s) · {s.duplicates:,} duplicates "
            f"dropped · {s.malformed:,} malformed · {s.reconnects} reconnects")


async def _report(events: EventStream) -> None:
    last_time, last_count = time.monotonic(), 0
    while True:
        await asyncio.sleep(_PROGRESS_SECONDS)
        count = events.stats.delivered
        _err.print(progress_text(events, last_time, count - last_count))
        last_time, last_count = time.monotonic(), count


async def run_stream(events: EventStream, out: IO[bytes], *, max_messages: int | None,
                     show_progress: bool) -> None:
    reporter = asyncio.create_task(_report(events)) if show_progress else None
    started = time.monotonic()
    try:
        async with events:
            count = 0
            async for item in events:
                out.write(encode_line(item))
                out.flush()
                count += 1
                if max_messages is not None and count >= max_messages:
                    break
    finally:
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        _err.print("stream: " + progress_text(events, started, events.stats.delivered))


def stream_command(
    app_id: Annotated[str, typer.Option(envvar="HM_MQTT_APP_ID",
                                        help="Application id (its topic is streamed).")],
    ca: Annotated[str, typer.Option(envvar="HM_MQTT_CA", help="CA certificate (PEM).")],
    cert: Annotated[str, typer.Option(envvar="HM_MQTT_CERT",
                                      help="Client certificate (PEM).")],
    key: Annotated[str, typer.Option(envvar="HM_MQTT_KEY", help="Client private key (PEM).")],
    output: Annotated[str, typer.Option("--output", "-o",
                                        help="Append JSON Lines here ('-': stdout).")] = "-",
    environment: Annotated[str, typer.Option(help="production or sandbox.")] = "production",
    version: Annotated[int, typer.Option(min=1, max=2, help="MQTT V2 (default) or V1.")] = 2,
    group: Annotated[str | None, typer.Option(
        help="Share the stream with the other workers of this group.")] = None,
    client_id: Annotated[str | None, typer.Option(
        envvar="HM_MQTT_CLIENT_ID", help="Stable per worker: names the persistent session.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Broker host (default: HM's).")] = None,
    port: Annotated[int, typer.Option(help="Broker port.")] = 8883,
    max_messages: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many messages.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                           help="Progress line on stderr.")] = True,
) -> None:
    """HM's MQTT push as JSON Lines: one line per message, acknowledged once written.

    Duplicates HM sends again are dropped; malformed messages become {"ok": false} lines.
    Exit code 3 when the broker refuses the certificate or the subscription.
    """
    try:
        creds = MQTTCredentials.from_files(ca, cert, key)
        events = stream(creds, app_id=app_id, environment=environment,
                        version=2 if version == 2 else 1, group=group, client_id=client_id,
                        host=host, port=port)
    except CredentialsError as exc:
        _err.print(f"hm-async: {exc}")
        raise typer.Exit(ExitCode.AUTH) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        with _output(output) as out:
            asyncio.run(run_stream(events, out, max_messages=max_messages,
                                   show_progress=progress))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except StreamRefusedError as exc:
        _err.print(f"hm-async: {exc}")
        raise typer.Exit(ExitCode.AUTH) from None
    except (StreamError, OSError) as exc:
        _err.print(f"hm-async: stream failed: {exc}")
        raise typer.Exit(ExitCode.API) from None


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdout.buffer
        return
    with open(path, "ab") as fh:
        yield fh


def register(app: typer.Typer) -> None:
    """Add ``stream`` to the ``hm-async`` app."""
    app.command("stream", epilog=(
        "Examples:\n\n  hm-async stream --app-id APP --ca ca.pem --cert client.pem "
        "--key client.key -o events.jsonl\n\n"
        "  HM_MQTT_APP_ID=... HM_MQTT_CA=... HM_MQTT_CERT=... HM_MQTT_KEY=... "
        "hm-async stream --group workers --client-id worker-1"))(stream_command)

