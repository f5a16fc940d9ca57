"""``python -m hm_async.emulator``: run the emulator until interrupted.

``main(argv)`` is what ``hm-async emulator`` calls. Without ``--json`` it prints the base URL
and both kinds of credentials for a person to paste; with ``--json`` it prints exactly one
JSON line (then flushes) so a benchmark that starts it as a subprocess can read the URL and
credentials from the first line of stdout. These are throwaway credentials of a local
process, so printing them is the point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from ._config import FAULT_KINDS, EmulatorConfig
from ._emulator import Emulator
from ._mqtt_config import add_mqtt_arguments, push_from_args

__all__ = ["build_parser", "main"]


def _rate(text: str) -> tuple[str, float]:
    brand, sep, rate = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected BRAND=REQUESTS_PER_SECOND, e.g. bmw=10")
    try:
        return brand.strip(), float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {rate!r}") from None


def _latency(text: str) -> float | tuple[float, float]:
    lo, sep, hi = text.partition(",")
    try:
        return (float(lo), float(hi)) if sep else float(lo)
    except ValueError:
        raise argparse.ArgumentTypeError("expected SECONDS or MIN,MAX") from None


def build_parser(prog: str = "python -m hm_async.emulator") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run a local High Mobility API emulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    p.add_argument("--json", action="store_true", help="print one JSON line: url + credentials")
    p.add_argument("--key-file", help="also write the console-style private-key JSON here")
    p.add_argument("--certfile", help="serve HTTPS with this certificate chain (PEM)")
    p.add_argument("--keyfile", help="private key for --certfile")
    p.add_argument("--token-lifetime", type=float, default=300.0)
    p.add_argument("--latency", type=_latency, default=0.0, help="SECONDS or MIN,MAX")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--faults", default=",".join(sorted(FAULT_KINDS)),
                   help="comma-separated subset of " + ",".join(sorted(FAULT_KINDS)))
    p.add_argument("--fault-routes", default="vehicle_data",
                   help="comma-separated: token,eligibility,clearance,vehicle_data")
    p.add_argument("--seed", type=int)
    p.add_argument("--rate-limit", type=_rate, action="append", default=[],
                   metavar="BRAND=RPS", help="per-brand vehicle-data limit (repeatable)")
    p.add_argument("--default-rate-limit", type=float)
    p.add_argument("--vehicles", type=int, default=100)
    p.add_argument("--brands", help="comma-separated brands of the pre-approved fleet")
    p.add_argument("--approve-delay", type=float, default=1.0)
    p.add_argument("--revoke-delay", type=float, default=1.0)
    p.add_argument("--update-interval", type=float, default=30.0)
    p.add_argument("--failure-fraction", type=float, default=0.05)
    add_mqtt_arguments(p)
    return p


def _config(args: argparse.Namespace) -> EmulatorConfig:
    extra = {}
    if args.brands:
        extra["brands"] = tuple(b.strip() for b in args.brands.split(",") if b.strip())
    return EmulatorConfig(
        token_lifetime=args.token_lifetime,
        latency=args.latency,
        fault_rate=args.fault_rate,
        faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()),
        fault_routes=tuple(r.strip() for r in args.fault_routes.split(",") if r.strip()),
        seed=args.seed,
        rate_limits=dict(args.rate_limit),
        default_rate_limit=args.default_rate_limit,
        vehicles=args.vehicles,
        approve_delay=args.approve_delay,
        revoke_delay=args.revoke_delay,
        update_interval=args.update_interval,
        failure_fraction=args.failure_fraction,
        **extra,  # type: ignore[arg-type]
    )


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
            + "\nPress Ctrl+C to stop.\n"
        )
    sys.stdout.flush()


async def _serve(args: argparse.Namespace) -> None:
    ssl_context = None
    if args.certfile:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.certfile, args.keyfile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
            loop.add_signal_handler(sig, stop.set)
    async with Emulator(_config(args), host=args.host, port=args.port,
                        ssl_context=ssl_context, mqtt=push_from_args(args)) as emu:
        if args.key_file:
            with open(args.key_file, "w", encoding="utf-8") as fh:
                json.dump(emu.private_key_json(), fh)
        _announce(emu, args.json)
        await stop.wait()


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM; returns the process exit code.

    ``prog`` names the command in usage messages (``hm-async emulator`` from the CLI).
    """
    parser = build_parser(prog) if prog else build_parser()
    args = parser.parse_args(argv)
    try:
        _config(args)
        push_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        sys.stderr.write(f"cannot start the emulator: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
