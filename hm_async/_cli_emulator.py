"""``hm-async emulator`` (also ``python -m hm_async.emulator``): run the local HM API emulator.

Without ``--json`` it prints the base URL and both kinds of credentials for a person to paste;
with ``--json`` exactly one JSON line (then a flush), so a script or benchmark that starts it
as a subprocess reads the URL and credentials from the first line of stdout. These are
credentials of a local throwaway process, so printing them is the point; ``--seed`` or
``--client-id``/``--client-secret`` make them the same on every start, so exported variables
survive a restart.

Options map one-to-one onto :class:`~hm_async.emulator.EmulatorConfig` fields (see
:func:`_config`), so a new emulator feature is one more parameter here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import signal
import ssl
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._cli_config import ExitCode
from .emulator import Emulator, EmulatorConfig
from .emulator._config import FAULT_KINDS, ROUTES

__all__ = ["EMULATOR_EPILOG", "emulator_command"]

EMULATOR_EPILOG = (
    "Examples:\n\n"
    "  hm-async emulator --port 8080 --seed 1\n\n"
    "  hm-async emulator --port 0 --json > emu.json   # then: hm-async --credentials emu.json"
    " ...\n\n"
    "  hm-async emulator --fault-rate 0.1 --rate-limit bmw=25 --latency 0.05,0.3\n\n"
    "  hm-async emulator --tls-cert cert.pem --tls-key key.pem"
)


class EmulatorStartError(Exception):
    """The emulator could not start (the port is taken, a TLS file is unusable)."""


def _rates(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        brand, sep, rate = item.partition("=")
        try:
            out[brand.strip()] = float(rate)
        except ValueError:
            sep = ""
        if not sep or not brand.strip():
            raise typer.BadParameter(f"expected BRAND=REQUESTS_PER_SECOND, e.g. bmw=10, got "
                                     f"{item!r}", param_hint="--rate-limit")
    return out


def _latency(text: str) -> float | tuple[float, float]:
    lo, sep, hi = text.partition(",")
    try:
        return (float(lo), float(hi)) if sep else float(lo)
    except ValueError:
        raise typer.BadParameter(f"expected SECONDS or MIN,MAX, got {text!r}",
                                 param_hint="--latency") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None:
        if key is not None:
            raise typer.BadParameter("--tls-key needs --tls-cert", param_hint="--tls-key")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise EmulatorStartError(f"cannot load the TLS certificate {cert}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
    return context


def _announce(emu: Emulator, as_json: bool) -> None:
    if as_json:
        line = {
            "url": emu.url,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "private_key": emu.private_key_pem,
            "key_id": emu.key_id,
            "vehicles": [{"vin": v.vin, "brand": v.brand} for v in emu.vehicles],
        }
        sys.stdout.write(json.dumps(line) + "\n")
    else:
        sys.stdout.write(
            f"High Mobility API emulator listening on {emu.url}\n"
            f"  base_url       {emu.url}\n"
            f"  client_id      {emu.client_id}\n"
            f"  client_secret  {emu.client_secret}\n"
            f"  key id         {emu.key_id}\n"
            f"  private key:\n{emu.private_key_pem}"
            f"  {len(emu.vehicles)} pre-approved vehicles, e.g. "
            + ", ".join(f"{v.vin} ({v.brand})" for v in emu.vehicles[:3])
            + f"\nTry: HM_CLIENT_ID={emu.client_id} HM_CLIENT_SECRET=... "
              f"hm-async --base-url {emu.url} token\n"
            + "Press Ctrl+C to stop.\n"
        )
    sys.stdout.flush()


async def _serve(config: EmulatorConfig, *, host: str, port: int, tls: ssl.SSLContext | None,
                 as_json: bool, private_key_out: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
            loop.add_signal_handler(sig, stop.set)
    emu = Emulator(config, host=host, port=port, ssl_context=tls)
    try:
        await emu.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise EmulatorStartError(f"port {port} on {host} is in use; pick another with "
                                     f"--port (0 picks a free one)") from None
        raise EmulatorStartError(f"cannot listen on {host}:{port}: "
                                 f"{(exc.strerror or str(exc)).lower()}") from None
    try:
        if private_key_out is not None:
            try:
                private_key_out.write_text(json.dumps(emu.private_key_json()),
                                           encoding="utf-8")
            except OSError as exc:
                raise EmulatorStartError(f"cannot write {private_key_out}: "
                                         f"{(exc.strerror or str(exc)).lower()}") from None
        _announce(emu, as_json)
        await stop.wait()
    finally:
        await emu.close()


def emulator_command(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", min=0, max=65535,
                                      help="Port; 0 picks a free one.")] = 8080,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON line (url, credentials, vehicles) instead of text.")
    ] = False,
    client_id: Annotated[str | None, typer.Option(
        metavar="ID", help="Use this client id (default: random, or derived from --seed).")
    ] = None,
    client_secret: Annotated[str | None, typer.Option(
        metavar="SECRET", help="Use this client secret (default: random, or from --seed).")
    ] = None,
    seed: Annotated[int | None, typer.Option(
        metavar="N", help="Make credentials, faults, latency and rejections the same on "
                          "every start.")] = None,
    private_key_out: Annotated[Path | None, typer.Option(
        "--private-key-out", metavar="FILE", help="Write the application's private key here, "
        "as the console's JSON download (for --private-key-file).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Serve HTTPS with this certificate chain (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        metavar="FILE", help="The TLS private key of --tls-cert (PEM), if not in that file.")
    ] = None,
    vehicles: Annotated[int, typer.Option(metavar="N", min=0,
                                          help="Pre-approved vehicles in the fleet.")] = 100,
    brands: Annotated[str | None, typer.Option(
        metavar="LIST", help="Comma-separated brands of the fleet (default: eight common "
                             "ones).")] = None,
    token_lifetime: Annotated[float, typer.Option(metavar="SECONDS",
                                                  help="Lifetime of issued tokens.")] = 300.0,
    latency: Annotated[str, typer.Option(metavar="SECONDS|MIN,MAX",
                                         help="Delay of every answer.")] = "0",
    fault_rate: Annotated[float, typer.Option(
        metavar="P", min=0.0, max=1.0, help="Share of requests on --fault-routes that fail.")
    ] = 0.0,
    faults: Annotated[str, typer.Option(
        metavar="LIST", help=f"Faults to inject, from {','.join(sorted(FAULT_KINDS))}.")
    ] = ",".join(sorted(FAULT_KINDS)),
    fault_routes: Annotated[str, typer.Option(
        metavar="LIST", help=f"Routes that get faults, from {','.join(sorted(ROUTES))}.")
    ] = "vehicle_data",
    rate_limit: Annotated[list[str] | None, typer.Option(
        metavar="BRAND=RPS", help="Vehicle-data requests per second a brand allows "
                                  "(repeatable).")] = None,
    default_rate_limit: Annotated[float | None, typer.Option(
        metavar="RPS", help="Limit of brands without --rate-limit (default: none).")] = None,
    approve_delay: Annotated[float, typer.Option(
        metavar="SECONDS", help="A requested clearance turns approved after this.")] = 1.0,
    revoke_delay: Annotated[float, typer.Option(
        metavar="SECONDS", help="A deleted clearance turns revoked after this.")] = 1.0,
    update_interval: Annotated[float, typer.Option(
        metavar="SECONDS", help="How often a vehicle's data changes.")] = 30.0,
    failure_fraction: Annotated[float, typer.Option(
        metavar="P", min=0.0, max=1.0, help="Share of properties that carry a failure.")
    ] = 0.05,
    # Old spellings, kept working but out of the help: "--keyfile" next to "--key-file"
    # read as the same thing (one is the TLS key, the other the application's key).
    key_file_old: Annotated[Path | None, typer.Option("--key-file", hidden=True)] = None,
    certfile_old: Annotated[Path | None, typer.Option("--certfile", hidden=True)] = None,
    keyfile_old: Annotated[Path | None, typer.Option("--keyfile", hidden=True)] = None,
) -> None:
    """Run a local High Mobility API emulator until Ctrl+C (no account needed).

    It serves the token endpoint, eligibility, fleet clearance and vehicle data as the
    vendor's specs describe them, with optional latency, faults and per-brand rate limits.
    """
    extra: dict[str, object] = {}
    if brands:
        extra["brands"] = _names(brands)
    try:
        config = EmulatorConfig(
            token_lifetime=token_lifetime, latency=_latency(latency), fault_rate=fault_rate,
            faults=_names(faults), fault_routes=_names(fault_routes), seed=seed,
            rate_limits=_rates(rate_limit), default_rate_limit=default_rate_limit,
            vehicles=vehicles, approve_delay=approve_delay, revoke_delay=revoke_delay,
            update_interval=update_interval, failure_fraction=failure_fraction,
            client_id=client_id, client_secret=client_secret,
            **extra,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        tls = _tls(tls_cert or certfile_old, tls_key or keyfile_old)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(config, host=host, port=port, tls=tls, as_json=as_json,
                               private_key_out=private_key_out or key_file_old))
    except EmulatorStartError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(ExitCode.USAGE) from None
