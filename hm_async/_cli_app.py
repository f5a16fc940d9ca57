"""The ``hm-async`` commands (typer + rich). Imported only by :func:`hm_async.cli.main`.

Every command that talks to HM goes through :func:`_run`: it resolves credentials, opens one
:class:`HMClient` for the command, and turns failures into a one-line message on stderr
and the documented exit code. Tracebacks never reach the user for expected failures, and
typer's "pretty exceptions" (which print local variables, i.e. secrets) are off.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.json import JSON
from rich.markup import escape

from ._cli_config import CliSettings, ExitCode, exit_code_for
from ._cli_static import register as register_static_commands
from ._client import ENVIRONMENTS, HMClient
from ._errors import HMError
from ._version import __version__

__all__ = ["app"]

EXIT_CODES_HELP = (
    "[bold]Exit codes[/]: 0 ok · 1 partial failure (some VINs failed) · 2 bad usage · "
    "3 authentication or credential failure · 4 other API or network failure."
)
CREDENTIALS_HELP = (
    "[bold]Credentials[/], strongest first: flags, the --credentials JSON file (the console's "
    "private-key download, or any JSON with client_id / client_secret / private_key / id / "
    "base_url), then HM_CLIENT_ID with HM_CLIENT_SECRET or HM_PRIVATE_KEY_FILE / "
    "HM_PRIVATE_KEY (+ HM_KEY_ID for a bare PEM); HM_BASE_URL and HM_ENVIRONMENT too."
)

app = typer.Typer(
    name="hm-async",
    help="High Mobility fleet data from the command line: tokens, eligibility, clearance, "
         "vehicle data, and polling whole fleets.\n\n"
         "Try it without an account: [bold]hm-async demo[/]\n\n" + CREDENTIALS_HELP,
    epilog=EXIT_CODES_HELP + "\n\n"
           "Examples:\n\n"
           "  hm-async demo\n\n"
           "  export HM_CLIENT_ID=... HM_CLIENT_SECRET=...\n\n"
           "  hm-async token\n\n"
           "  hm-async poll vins.txt -o data.jsonl\n\n"
           "  hm-async --base-url http://127.0.0.1:8080 --credentials emu.json data VIN",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
clearance_app = typer.Typer(
    help="Fleet Clearance: ask for, inspect and revoke data access to vehicles.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog="Examples:\n\n"
           "  hm-async clearance request WBA12345678901234 bmw --tag fleet=north\n\n"
           "  hm-async clearance request --from-file vehicles.csv\n\n"
           "  hm-async clearance list --status approved --brand bmw\n\n"
           "  hm-async clearance get WBA12345678901234\n\n"
           "  hm-async clearance delete WBA12345678901234",
)
app.add_typer(clearance_app, name="clearance")

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"hm-async {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    client_id: Annotated[str | None, typer.Option(
        help="Application client id \\[env: HM_CLIENT_ID].")] = None,
    client_secret: Annotated[str | None, typer.Option(
        help="Client secret \\[env: HM_CLIENT_SECRET]; prefer the variable, flags show in ps.")
    ] = None,
    private_key_file: Annotated[str | None, typer.Option(
        help="The console's private-key JSON download, or a PEM \\[env: HM_PRIVATE_KEY_FILE].")
    ] = None,
    key_id: Annotated[str | None, typer.Option(
        help="Key id, needed with a bare PEM key \\[env: HM_KEY_ID].")] = None,
    credentials: Annotated[str | None, typer.Option(
        "--credentials", help="JSON file with client_id, client_secret or private_key + id, "
        "and optionally base_url \\[env: HM_CREDENTIALS_FILE].")] = None,
    environment: Annotated[str, typer.Option(
        envvar="HM_ENVIRONMENT", help="sandbox or production.")] = "sandbox",
    base_url: Annotated[str | None, typer.Option(
        help="Talk to this server instead (e.g. the emulator) \\[env: HM_BASE_URL].")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log retries and token refreshes to stderr.")] = False,
    version: Annotated[bool, typer.Option(  # noqa: ARG001 - handled by its callback
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    import logging
    import os

    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    else:  # the outcome is reported once, at the end; no stray warnings before it
        logging.getLogger("hm_async").addHandler(logging.NullHandler())
    if environment not in ENVIRONMENTS:
        raise typer.BadParameter(f"{environment!r} is not one of {', '.join(ENVIRONMENTS)}",
                                 param_hint="--environment")
    ctx.obj = CliSettings(
        client_id=client_id, client_secret=client_secret, private_key_file=private_key_file,
        key_id=key_id, credentials_file=credentials or os.environ.get("HM_CREDENTIALS_FILE"),
        environment=environment, base_url=base_url,
    )


def _fail(message: str, code: int) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _run(ctx: typer.Context, work: Callable[[HMClient], Awaitable[int | None]], *,
         rate_limits: dict[str, float] | None = None) -> None:
    """Run ``work`` with a client built from the global options; exit with its code."""
    settings = ctx.find_object(CliSettings)
    assert settings is not None

    async def main() -> int | None:
        creds, base_url = settings.resolve()
        async with HMClient(creds, environment=settings.environment, base_url=base_url,
                            rate_limits=rate_limits or None) as hm:
            return await work(hm)

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    except (HMError, ValueError) as exc:
        raise _fail(str(exc), exit_code_for(exc)) from None
    raise typer.Exit(int(code or 0))


def _print_json(data: bytes) -> None:
    """Pretty JSON on stdout: colored for a terminal, plain for a pipe."""
    text = msgspec.json.format(data, indent=2).decode()
    if sys.stdout.isatty():
        Console(highlight=False).print(JSON(text))
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


# -- token, eligibility, data --------------------------------------------------------------

@app.command(epilog="Examples:\n\n  hm-async token\n\n  hm-async token --json\n\n"
                    "  curl -H \"Authorization: Bearer $(hm-async token --show-token --json "
                    "| jq -r .access_token)\" ...")
def token(
    ctx: typer.Context,
    show_token: Annotated[bool, typer.Option(
        "--show-token", help="Also print the bearer token itself. It grants access to your "
        "fleet until it expires, so keep it out of logs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Get an access token and show its scope and expiry (not the token, unless asked)."""

    async def work(hm: HMClient) -> int:
        t = await hm.tokens.get()
        remaining = t.expires_at - time.monotonic()  # the provider's clock is monotonic
        info: dict[str, Any] = {
            "client_id": hm._credentials.client_id, "base_url": hm.base_url,
            "scope": t.scope, "expires_in": round(remaining),
            "expires_at": (datetime.now(timezone.utc) + timedelta(seconds=remaining)
                           ).isoformat(timespec="seconds"),
            "lifetime": round(t.lifetime),
        }
        if show_token:
            info["access_token"] = t.value
        if as_json:
            sys.stdout.write(_encode(info).decode() + "\n")
        else:
            for key, value in info.items():
                sys.stdout.write(f"{key:<13} {value}\n")
        return ExitCode.OK

    _run(ctx, work)


@app.command(epilog="Example:\n\n  hm-async eligibility WBA12345678901234 bmw")
def eligibility(
    ctx: typer.Context,
    vin: Annotated[str, typer.Argument(help="Vehicle identification number (17 characters).")],
    brand: Annotated[str, typer.Argument(help="Brand, e.g. bmw, mercedes-benz, volvo-cars.")],
) -> None:
    """Whether a vehicle can deliver data, and how (Eligibility API)."""

    async def work(hm: HMClient) -> int:
        _print_json(_encode(await hm.eligibility(vin.upper(), brand)))
        return ExitCode.OK

    _run(ctx, work)


@app.command(epilog="Examples:\n\n  hm-async data WBA12345678901234\n\n"
                    "  hm-async data WBA12345678901234 | jq .charging")
def data(
    ctx: typer.Context,
    vin: Annotated[str, typer.Argument(help="Vehicle identification number.")],
    brand: Annotated[str | None, typer.Option(
        help="Brand, to apply its rate limit and count the call under it.")] = None,
) -> None:
    """Vehicle data of one VIN, as the JSON HM sent (pretty-printed)."""

    async def work(hm: HMClient) -> int:
        _print_json(await hm.vehicle_data_raw(vin.upper(), brand))
        return ExitCode.OK

    _run(ctx, work)


# -- clearance --------------------------------------------------------------------------------

def _tags(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--tag")
        out[key.strip()] = value.strip()
    return out


@clearance_app.command("request", epilog=(
    "Examples:\n\n  hm-async clearance request WBA12345678901234 bmw --tag fleet=north\n\n"
    "  hm-async clearance request --from-file vehicles.csv"))
def clearance_request(
    ctx: typer.Context,
    vin: Annotated[str | None, typer.Argument(help="VIN to add.")] = None,
    brand: Annotated[str | None, typer.Argument(help="Its brand.")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE tag for the vehicle (repeatable).")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="Lines of VIN,BRAND (CSV with a header works too).")] = None,
) -> None:
    """Ask for data access to vehicles. Exit code 1 if HM refused some of them."""
    from ._cli_poll import parse_vehicle_lines
    from ._vehicles import Vehicle

    tags = _tags(tag) or None
    vehicles: list[Vehicle] = []
    if vin is not None:
        if brand is None:
            raise typer.BadParameter("a VIN needs its BRAND", param_hint="BRAND")
        vehicles.append(Vehicle(vin=vin.upper(), brand=brand, tags=tags))
    if from_file is not None:
        with _read_text(str(from_file)) as lines:
            for item in parse_vehicle_lines(lines):
                if isinstance(item, str):
                    raise _fail(f"{from_file}: no brand for {item}; use VIN,BRAND lines",
                                ExitCode.USAGE)
                vehicles.append(Vehicle(vin=item[0], brand=item[1], tags=tags))
    if not vehicles:
        raise typer.BadParameter("give VIN BRAND or --from-file FILE")

    async def work(hm: HMClient) -> int:
        results = await hm.clearance.request(vehicles)
        _print_json(_encode(results))
        return ExitCode.OK if all(r.ok for r in results) else ExitCode.PARTIAL_FAILURE

    _run(ctx, work)


@clearance_app.command("get", epilog="Example:\n\n  hm-async clearance get WBA12345678901234")
def clearance_get(ctx: typer.Context,
                  vin: Annotated[str, typer.Argument(help="The VIN.")]) -> None:
    """The clearance of one VIN (HM allows 60 of these calls a minute; prefer list)."""

    async def work(hm: HMClient) -> int:
        _print_json(_encode(await hm.clearance.get(vin.upper())))
        return ExitCode.OK

    _run(ctx, work)


@clearance_app.command("list", epilog=(
    "Examples:\n\n  hm-async clearance list --status pending --status approved\n\n"
    "  hm-async clearance list --brand bmw --tag fleet=north | jq length"))
def clearance_list(
    ctx: typer.Context,
    status: Annotated[list[str] | None, typer.Option(
        help="Only these statuses (repeatable): pending, approved, rejected, revoked, ...")
    ] = None,
    brand: Annotated[list[str] | None, typer.Option(
        help="Only these brands (repeatable).")] = None,
    vin: Annotated[list[str] | None, typer.Option(
        help="Only these VINs (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        help="Only vehicles with this KEY=VALUE tag (repeatable).")] = None,
) -> None:
    """Clearances of the fleet, filtered by status, brand, VIN or tag."""
    tags = _tags(tag) or None

    async def work(hm: HMClient) -> int:
        found = await hm.clearance.list(vins=[v.upper() for v in vin] if vin else None,
                                        statuses=status or None, brands=brand or None, tags=tags)
        _print_json(_encode(found))
        return ExitCode.OK

    _run(ctx, work)


@clearance_app.command("delete", epilog="Example:\n\n  hm-async clearance delete WBA12345678901234")
def clearance_delete(ctx: typer.Context,
                     vin: Annotated[str, typer.Argument(help="The VIN.")]) -> None:
    """Revoke (approved) or cancel (pending) the clearance of one VIN."""

    async def work(hm: HMClient) -> int:
        _print_json(_encode(await hm.clearance.delete(vin.upper())))
        return ExitCode.OK

    _run(ctx, work)


# -- poll and demo ----------------------------------------------------------------------------

@contextlib.contextmanager
def _read_text(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdin
        return
    try:
        fh = open(path, encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from None
    with fh:
        yield fh


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[IO[bytes] | None]:
    if path is None:
        yield None
    elif path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        try:
            fh = open(path, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _fail(f"cannot write {path}: {exc.strerror}", ExitCode.USAGE) from None
        with fh:
            yield fh


def _rate_limits(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        name, sep, rate = item.partition("=")
        try:
            out[name.strip()] = float(rate)
        except ValueError:
            sep = ""
        if not sep or out.get(name.strip(), 0) <= 0:
            raise typer.BadParameter(f"expected BRAND=REQUESTS_PER_SECOND, got {item!r}",
                                     param_hint="--rate-limit")
    return out


@app.command(epilog="Examples:\n\n  hm-async poll vins.txt -o data.jsonl\n\n"
                    "  cut -d, -f1 fleet.csv | hm-async poll --brand bmw > data.jsonl\n\n"
                    "  hm-async poll fleet.csv --rate-limit bmw=10 --concurrency 32 -o out.jsonl")
def poll(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        help="File of VINs (one per line, or VIN,BRAND; CSV with a header works); "
             "'-' or nothing reads stdin.")] = "-",
    output: Annotated[str, typer.Option(
        "--output", "-o", help="Write JSON Lines here instead of stdout.")] = "-",
    brand: Annotated[str | None, typer.Option(
        help="Brand of lines that name none (else it comes from your clearance list).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1000,
                                             help="Requests in flight at once.")] = 64,
    rate_limit: Annotated[list[str] | None, typer.Option(
        help="BRAND=REQUESTS_PER_SECOND cap (repeatable).")] = None,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress bar on stderr.")] = True,
) -> None:
    """Vehicle data for many VINs: one JSON line per VIN, a progress bar and a summary.

    Lines are {"vin", "brand", "ok": true, "data": <HM's body>} or
    {"vin", "brand", "ok": false, "error": {"type", "status", "message"}}.
    Exit code 1 when some VINs failed, 3 or 4 when all failed for lack of access or service.
    """
    from ._cli_poll import ResultWriter, parse_vehicle_lines, run_poll, summary_table

    if source == "-" and sys.stdin.isatty():
        raise typer.BadParameter("give a file of VINs, or pipe them in", param_hint="SOURCE")
    limits = _rate_limits(rate_limit)
    with _read_text(source) as lines:
        items = list(parse_vehicle_lines(lines, brand=brand))
    if not items:
        raise _fail(f"no VINs in {'stdin' if source == '-' else source}", ExitCode.USAGE)

    async def work(hm: HMClient) -> int:
        await hm.tokens.get()  # fail fast (exit 3) instead of once per VIN
        with _open_output(output) as stream:
            writer = ResultWriter(stream) if stream is not None else None
            outcome = await run_poll(hm, items, writer, concurrency=concurrency, console=_err,
                                     show_progress=progress)
        _err.print(summary_table(outcome, hm))
        p = outcome.progress
        if p.failed == 0:
            return ExitCode.OK
        if p.ok > 0:
            return ExitCode.PARTIAL_FAILURE
        worst = max(p.errors().items(), key=lambda kv: kv[1])[0]
        return ExitCode.AUTH if worst in ("AuthenticationError", "TokenRefusedError") \
            else ExitCode.API

    _run(ctx, work, rate_limits=limits)


@app.command(epilog="Examples:\n\n  hm-async demo\n\n  hm-async demo --vehicles 5000 "
                    "--fault-rate 0.1\n\n  hm-async demo -o demo.jsonl")
def demo(
    vehicles: Annotated[int, typer.Option(min=1, max=100_000,
                                          help="Size of the emulated fleet.")] = 1000,
    fault_rate: Annotated[float, typer.Option(min=0.0, max=0.5,
                                              help="Share of requests that fail.")] = 0.05,
    concurrency: Annotated[int, typer.Option(min=1, max=1000)] = 64,
    seed: Annotated[int | None, typer.Option(
        help="Seed for reproducible faults.")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Also write the JSON Lines here ('-' for stdout).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Poll a 1,000-vehicle fleet of the built-in emulator: no account needed.

    Shows the progress bar, the per-brand summary and the cost in API calls, with injected
    faults, a rate-limited brand and vehicles that really cannot answer.
    """
    from ._cli_demo import demo as run_demo

    try:
        with _open_output(output) as stream:
            asyncio.run(run_demo(vehicles=vehicles, fault_rate=fault_rate,
                                 concurrency=concurrency, seed=seed, output=stream,
                                 console=_err if output == "-" else Console(highlight=False),
                                 show_progress=progress))
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    except (HMError, OSError) as exc:
        raise _fail(f"demo failed: {exc}", ExitCode.API) from None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []},
             add_help_option=False)
def emulator(ctx: typer.Context) -> None:
    """Run the local HM API emulator (try: hm-async emulator --help)."""
    from .emulator.__main__ import main as emulator_main

    raise typer.Exit(emulator_main(list(ctx.args), prog="hm-async emulator"))


register_static_commands(app, run=_run, print_json=_print_json)
