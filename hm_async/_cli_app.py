"""The ``hm-async`` commands (typer + rich). Imported only by :func:`hm_async.cli.main`.

Every command that talks to HM goes through :func:`_run`: it resolves credentials, opens one
:class:`HMClient` for the command, and turns failures into a one-line message on stderr
(worded by :mod:`hm_async._cli_errors`) and the documented exit code. Arguments are checked
here, before the library sees them, so a message names the option the user typed
(``--status``), not a Python parameter. Tracebacks never reach the user, and typer's "pretty
exceptions" (which print local variables, i.e. secrets) are off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import IO, Annotated, Any, NoReturn

import msgspec
import typer
from rich.console import Console
from rich.json import JSON
from rich.markup import escape
from yarl import URL

from ._cli_config import CliSettings, ExitCode, exit_code_for
from ._cli_emulator import EMULATOR_EPILOG, emulator_command
from ._cli_errors import OutputError, describe
from ._cli_input import BadLine, InputError, dedupe, numbered_vehicle_lines, read_text_lines
from ._cli_input import resume_point as _resume_point
from ._cli_logging import configure_logging
from ._cli_static import register as register_static_commands
from ._cli_stream import register as register_stream
from ._client import ENVIRONMENTS, HMClient
from ._errors import HMError, InvalidVehicleError
from ._poll import PollResult
from ._shard import in_shard, parse_shard
from ._vehicles import ELIGIBILITY_BRANDS, normalize_brand, validate_vin
from ._version import __version__
from .models._fleet import CLEARANCE_STATUSES

__all__ = ["app", "command"]

_HELP_OPTIONS = ["-h", "--help"]
EXIT_CODES_HELP = (
    "[bold]Exit codes[/]: 0 ok · 1 partial failure (some VINs failed) · 2 bad usage · "
    "3 authentication or credential failure · 4 other API or network failure · "
    "5 output not writable (disk full) · 130 interrupted (Ctrl-C, SIGTERM) · "
    "141 output pipe closed by its reader · 70 internal error."
)
CREDENTIALS_HELP = (
    "[bold]Credentials[/], strongest first: flags, the --credentials JSON file (the console's "
    "private-key download, or any JSON with client_id / client_secret / private_key / id / "
    "base_url), then HM_CLIENT_ID with HM_CLIENT_SECRET or HM_PRIVATE_KEY_FILE / "
    "HM_PRIVATE_KEY (+ HM_KEY_ID for a bare PEM); HM_BASE_URL and HM_ENVIRONMENT too. "
    "Global options may also follow the command: hm-async data VIN --credentials f.json."
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
    context_settings={"help_option_names": _HELP_OPTIONS},
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
register_stream(app)

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"hm-async {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    client_id: Annotated[str | None, typer.Option(
        metavar="ID", help="Application client id \\[env: HM_CLIENT_ID].")] = None,
    client_secret: Annotated[str | None, typer.Option(
        metavar="SECRET", help="Client secret \\[env: HM_CLIENT_SECRET]; prefer the variable, "
        "flags show in ps.")] = None,
    private_key_file: Annotated[str | None, typer.Option(
        metavar="FILE", help="The console's private-key JSON download, or a PEM "
        "\\[env: HM_PRIVATE_KEY_FILE].")] = None,
    key_id: Annotated[str | None, typer.Option(
        metavar="ID", help="Key id, needed with a bare PEM key \\[env: HM_KEY_ID].")] = None,
    credentials: Annotated[str | None, typer.Option(
        "--credentials", metavar="FILE", help="JSON file with client_id, client_secret or "
        "private_key + id, and optionally base_url \\[env: HM_CREDENTIALS_FILE].")] = None,
    environment: Annotated[str, typer.Option(
        envvar="HM_ENVIRONMENT", show_envvar=False, metavar="NAME",
        help="sandbox or production \\[env: HM_ENVIRONMENT].")] = "sandbox",
    base_url: Annotated[str | None, typer.Option(
        metavar="URL", help="Talk to this server instead, e.g. the emulator "
        "\\[env: HM_BASE_URL].")] = None,
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True, metavar="", show_default=False,
        help="-v: log retries, token refreshes and warnings to stderr; -vv: also one line "
             "per HTTP request.")] = 0,
    version: Annotated[bool, typer.Option(  # noqa: ARG001 - handled by its callback
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    configure_logging(verbose)
    if environment not in ENVIRONMENTS:
        _fail(f"--environment {environment!r} is not one of {', '.join(ENVIRONMENTS)}",
              ExitCode.USAGE)
    if base_url is not None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            _fail(f"--base-url {base_url!r} must look like https://host[:port]",
                  ExitCode.USAGE)
    ctx.obj = CliSettings(
        client_id=client_id, client_secret=client_secret, private_key_file=private_key_file,
        key_id=key_id, credentials_file=credentials or os.environ.get("HM_CREDENTIALS_FILE"),
        environment=environment, base_url=base_url,
    )


def _fail(message: str, code: int) -> NoReturn:
    """Print one error line and end the command with ``code``."""
    _err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _origin(base_url: str) -> str:
    url = URL(base_url)
    return f"{url.host}:{url.port}" if url.port else str(url.host)


def _run(ctx: typer.Context, work: Callable[[HMClient], Awaitable[int | None]], *,
         rate_limits: dict[str, float] | None = None,
         client_options: dict[str, Any] | None = None) -> NoReturn:
    """Run ``work`` with a client built from the global options; exit with its code."""
    settings = ctx.find_object(CliSettings)
    assert settings is not None
    origin: list[str] = []

    async def main() -> int | None:
        creds, base_url = settings.resolve()
        # trust_env: the CLI honours HTTPS_PROXY / NO_PROXY as curl does (issue 16 point 6)
        async with HMClient(creds, environment=settings.environment, base_url=base_url,
                            rate_limits=rate_limits or None, trust_env=True,
                            **(client_options or {})) as hm:
            origin.append(_origin(hm.base_url))
            return await work(hm)

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except OutputError as exc:
        _output_failed(exc)
    except (HMError, ValueError) as exc:
        _fail(describe(exc, origin=origin[0] if origin else None), exit_code_for(exc))
    raise typer.Exit(int(code or 0))


def _output_failed(exc: OutputError) -> NoReturn:
    if exc.broken_pipe:
        # Nobody reads stdout any more: point it at /dev/null so the interpreter's final
        # flush does not fail again with "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        _fail(str(exc), ExitCode.BROKEN_PIPE)
    _fail(str(exc), ExitCode.OUTPUT)


def _print_json(data: bytes) -> None:
    """Pretty JSON on stdout: colored for a terminal, plain for a pipe."""
    text = msgspec.json.format(data, indent=2).decode()
    try:
        if sys.stdout.isatty():
            Console(highlight=False).print(JSON(text))
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
    except OSError as exc:
        raise OutputError("stdout", exc) from None


def _encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def _vin(value: str, name: str) -> str:
    """``value`` as a VIN, or a usage error naming the argument or option ``name``."""
    try:
        return validate_vin(value, argument=name)
    except ValueError as exc:
        _fail(str(exc), ExitCode.USAGE)


def _brand(value: str, name: str, allowed: frozenset[str] | None = None) -> str:
    try:
        if allowed is None:
            return normalize_brand(value, argument=name)
        return normalize_brand(value, argument=name, allowed=allowed)
    except ValueError as exc:
        _fail(str(exc), ExitCode.USAGE)


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
            _write_stdout(_encode(info).decode() + "\n")
        else:
            _write_stdout("".join(f"{key:<13} {value}\n" for key, value in info.items()))
        return ExitCode.OK

    _run(ctx, work)


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        raise OutputError("stdout", exc) from None


@app.command(epilog="Example:\n\n  hm-async eligibility WBA12345678901234 bmw")
def eligibility(
    ctx: typer.Context,
    vin: Annotated[str, typer.Argument(metavar="VIN",
                                       help="Vehicle identification number (17 characters).")],
    brand: Annotated[str, typer.Argument(metavar="BRAND",
                                         help="Brand, e.g. bmw, mercedes-benz, volvo-cars.")],
) -> None:
    """Whether a vehicle can deliver data, and how (Eligibility API)."""
    vin = _vin(vin, "VIN")
    brand = _brand(brand, "BRAND", ELIGIBILITY_BRANDS)

    async def work(hm: HMClient) -> int:
        _print_json(_encode(await hm.eligibility(vin, brand)))
        return ExitCode.OK

    _run(ctx, work)


@app.command(epilog="Examples:\n\n  hm-async data WBA12345678901234\n\n"
                    "  hm-async data WBA12345678901234 | jq .charging")
def data(
    ctx: typer.Context,
    vin: Annotated[str, typer.Argument(metavar="VIN", help="Vehicle identification number.")],
    brand: Annotated[str | None, typer.Option(
        metavar="BRAND", help="Brand, to apply its rate limit and count the call under it.")
    ] = None,
) -> None:
    """Vehicle data of one VIN, as the JSON HM sent (pretty-printed)."""
    vin = _vin(vin, "VIN")
    brand = _brand(brand, "--brand") if brand is not None else None

    async def work(hm: HMClient) -> int:
        _print_json(await hm.vehicle_data_raw(vin, brand))
        return ExitCode.OK

    _run(ctx, work)


# -- clearance --------------------------------------------------------------------------------

def _tags(values: list[str] | None, option: str = "--tag") -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"{option}: expected KEY=VALUE, got {item!r}", ExitCode.USAGE)
        out[key.strip()] = value.strip()
    return out


def _read_lines(source: str) -> list[str]:
    """The lines of a file (or stdin for ``-``), or a usage error naming the file and line."""
    where = "stdin" if source == "-" else source
    try:
        if source == "-":
            return read_text_lines(sys.stdin.buffer, where)
        with open(source, "rb") as fh:
            return read_text_lines(fh, where)
    except InputError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except OSError as exc:
        _fail(f"cannot read {where}: {(exc.strerror or str(exc)).lower()}", ExitCode.USAGE)


@clearance_app.command("request", epilog=(
    "Examples:\n\n  hm-async clearance request WBA12345678901234 bmw --tag fleet=north\n\n"
    "  hm-async clearance request --from-file vehicles.csv"))
def clearance_request(
    ctx: typer.Context,
    vin: Annotated[str | None, typer.Argument(metavar="VIN", help="VIN to add.")] = None,
    brand: Annotated[str | None, typer.Argument(metavar="BRAND", help="Its brand.")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        metavar="KEY=VALUE", help="Tag for the vehicles (repeatable).")] = None,
    from_file: Annotated[str | None, typer.Option(
        "--from-file", metavar="FILE", help="Lines of VIN,BRAND (CSV with a header works "
        "too); '-' reads stdin.")] = None,
) -> None:
    """Ask for data access to vehicles. Exit code 1 if HM refused some of them."""
    from ._vehicles import Vehicle

    tags = _tags(tag) or None
    vehicles: list[Vehicle] = []
    if vin is not None:
        if brand is None:
            _fail("a VIN needs its BRAND: hm-async clearance request VIN BRAND",
                  ExitCode.USAGE)
        vehicles.append(Vehicle(vin=_vin(vin, "VIN"), brand=_brand(brand, "BRAND"),
                                tags=tags))
    if from_file is not None:
        where = "stdin" if from_file == "-" else from_file
        for number, item in numbered_vehicle_lines(_read_lines(from_file)):
            if isinstance(item, BadLine):
                _fail(f"{where} {item.message}", ExitCode.USAGE)
            if isinstance(item, str):
                _fail(f"{where} line {number}: no brand for {item}; use VIN,BRAND lines",
                      ExitCode.USAGE)
            line_vin = _vin(item[0], f"{where} line {number}: vin")
            line_brand = _brand(item[1], f"{where} line {number}: brand")
            vehicles.append(Vehicle(vin=line_vin, brand=line_brand, tags=tags))
    if not vehicles:
        _fail("give VIN BRAND or --from-file FILE", ExitCode.USAGE)

    async def work(hm: HMClient) -> int:
        results = await hm.clearance.request(vehicles)
        _print_json(_encode(results))
        return ExitCode.OK if all(r.ok for r in results) else ExitCode.PARTIAL_FAILURE

    _run(ctx, work)


@clearance_app.command("get", epilog="Example:\n\n  hm-async clearance get WBA12345678901234")
def clearance_get(ctx: typer.Context,
                  vin: Annotated[str, typer.Argument(metavar="VIN", help="The VIN.")]) -> None:
    """The clearance of one VIN (HM allows 60 of these calls a minute; prefer list)."""
    vin = _vin(vin, "VIN")

    async def work(hm: HMClient) -> int:
        _print_json(_encode(await hm.clearance.get(vin)))
        return ExitCode.OK

    _run(ctx, work)


_STATUSES = sorted(CLEARANCE_STATUSES - {"error"})


@clearance_app.command("list", epilog=(
    "Examples:\n\n  hm-async clearance list --status pending --status approved\n\n"
    "  hm-async clearance list --brand bmw --tag fleet=north | jq length"))
def clearance_list(
    ctx: typer.Context,
    status: Annotated[list[str] | None, typer.Option(
        metavar="STATUS", help=f"Only these statuses (repeatable): {', '.join(_STATUSES)}.")
    ] = None,
    brand: Annotated[list[str] | None, typer.Option(
        metavar="BRAND", help="Only these brands (repeatable).")] = None,
    vin: Annotated[list[str] | None, typer.Option(
        metavar="VIN", help="Only these VINs (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        metavar="KEY=VALUE", help="Only vehicles with this tag (repeatable).")] = None,
) -> None:
    """Clearances of the fleet, filtered by status, brand, VIN or tag."""
    for s in status or []:
        if s not in _STATUSES:
            _fail(f"--status {s!r} is not a clearance status; use one of "
                  f"{', '.join(_STATUSES)}", ExitCode.USAGE)
    brands = [_brand(b, "--brand") for b in brand or []]
    vins = [_vin(v, "--vin") for v in vin or []]
    tags = _tags(tag) or None

    async def work(hm: HMClient) -> int:
        found = await hm.clearance.list(vins=vins or None, statuses=status or None,
                                        brands=brands or None, tags=tags)
        _print_json(_encode(found))
        return ExitCode.OK

    _run(ctx, work)


@clearance_app.command("delete", epilog="Example:\n\n  hm-async clearance delete WBA12345678901234")
def clearance_delete(ctx: typer.Context,
                     vin: Annotated[str, typer.Argument(metavar="VIN", help="The VIN.")]
                     ) -> None:
    """Revoke (approved) or cancel (pending) the clearance of one VIN."""
    vin = _vin(vin, "VIN")

    async def work(hm: HMClient) -> int:
        _print_json(_encode(await hm.clearance.delete(vin)))
        return ExitCode.OK

    _run(ctx, work)


# -- poll and demo ----------------------------------------------------------------------------

@contextlib.contextmanager
def _open_output(path: str | None, *, append: bool = False
                 ) -> Iterator[tuple[IO[bytes], str] | None]:
    """The binary stream results go to (stdout for ``-``), and its name for messages.

    Closing flushes; a failure there is an :class:`OutputError` too, unless another error
    is already on its way out (that one is the news).
    """
    if path is None:
        yield None
        return
    if path == "-":
        yield sys.stdout.buffer, "stdout"
        try:
            sys.stdout.buffer.flush()
        except OSError as exc:
            raise OutputError("stdout", exc) from None
        return
    try:
        fh = open(path, "ab" if append else "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        _fail(f"cannot write {path}: {(exc.strerror or str(exc)).lower()}", ExitCode.USAGE)
    failed = True
    try:
        yield fh, path
        failed = False
    finally:
        try:
            fh.close()
        except OSError as exc:
            if not failed:
                raise OutputError(path, exc) from None


def _rate_limits(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        name, sep, rate = item.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = 0.0
        if not sep or not value > 0:
            _fail(f"--rate-limit: expected BRAND=REQUESTS_PER_SECOND, got {item!r}",
                  ExitCode.USAGE)
        out[_brand(name, "--rate-limit")] = value
    return out


def _poll_items(lines: list[str], where: str, brand: str | None
                ) -> tuple[list[str | tuple[str, str]], list[PollResult]]:
    """Vehicles to poll (VINs and brands normalised), and results for lines that name none."""
    items: list[str | tuple[str, str]] = []
    invalid: list[PollResult] = []
    for number, item in numbered_vehicle_lines(lines, brand=brand):
        if isinstance(item, BadLine):
            first = item.text.split()[0] if item.text.split() else item.text
            invalid.append(PollResult(vin=first.split(",")[0], brand=None, error=(
                InvalidVehicleError(f"{where} {item.message}"))))
            continue
        raw_vin = item if isinstance(item, str) else item[0]
        try:
            vin = validate_vin(raw_vin, argument=f"{where} line {number}: vin")
            items.append(vin if isinstance(item, str) else
                         (vin, normalize_brand(item[1],
                                               argument=f"{where} line {number}: brand")))
        except ValueError as exc:
            invalid.append(PollResult(vin=raw_vin, brand=None,
                                      error=InvalidVehicleError(str(exc))))
    return items, invalid


@app.command(epilog="Examples:\n\n  hm-async poll vins.txt -o data.jsonl\n\n"
                    "  hm-async poll vins.txt -o data.jsonl --resume   # after Ctrl-C\n\n"
                    "  cut -d, -f1 fleet.csv | hm-async poll --brand bmw > data.jsonl\n\n"
                    "  hm-async poll fleet.csv --rate-limit bmw=10 --concurrency 32 -o out.jsonl")
def poll(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        metavar="FILE", help="File of VINs (one per line, or VIN,BRAND; CSV with a header "
        "works); '-' or nothing reads stdin.")] = "-",
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE", help="Write JSON Lines here instead of stdout.")
    ] = "-",
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted poll: keep the lines already in --output "
        "and poll only the VINs it lacks.")] = False,
    brand: Annotated[str | None, typer.Option(
        metavar="BRAND", help="Brand of lines that name none (else it comes from your "
        "clearance list).")] = None,
    concurrency: Annotated[int, typer.Option(metavar="N", min=1, max=1000,
                                             help="Requests in flight at once.")] = 64,
    rate_limit: Annotated[list[str] | None, typer.Option(
        metavar="BRAND=RPS", help="Requests per second for a brand (repeatable), e.g. the "
        "limits the console shows at production approval.")] = None,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress bar on stderr.")] = True,
    shard: Annotated[str | None, typer.Option(
        metavar="I/N", help="Poll only shard I of N (a stable hash of the VIN), e.g. "
        "0/4 .. 3/4 for four workers.")] = None,
    redis: Annotated[str | None, typer.Option(
        metavar="URL", envvar="HM_REDIS_URL", show_envvar=False,
        help="Share the token and the rate limits with other workers through this Redis "
        "(redis[s]://...; needs hm-async[redis]) \\[env: HM_REDIS_URL].")] = None,
) -> None:
    """Vehicle data for many VINs: one JSON line per VIN, a progress bar and a summary.

    Lines are {"vin", "brand", "ok": true, "data": <HM's body>} or
    {"vin", "brand", "ok": false, "error": {"type", "status", "message"}}, in completion
    order (not input order). A VIN listed twice is polled once. Ctrl-C (or SIGTERM) lets
    the requests in flight finish, writes them, and prints the summary with the VINs left;
    --resume then polls only those. Exit code 1 when some VINs failed, 3 or 4 when all
    failed for lack of access or service, 130 when interrupted.
    """
    from ._cli_poll import Interrupts, ResultWriter, run_poll, summary_table

    if source == "-" and sys.stdin.isatty():
        _fail("give a file of VINs, or pipe them in", ExitCode.USAGE)
    if resume and output == "-":
        _fail("--resume needs --output FILE (the file to continue)", ExitCode.USAGE)
    limits = _rate_limits(rate_limit)
    line_brand = _brand(brand, "--brand") if brand is not None else None
    where = "stdin" if source == "-" else source
    items, invalid = _poll_items(_read_lines(source), where, line_brand)
    if not items and not invalid:
        _fail(f"no VINs in {where}", ExitCode.USAGE)
    items, duplicates = dedupe(items)
    if shard is not None:
        try:
            part = parse_shard(shard)
        except ValueError as exc:
            _fail(f"--shard: {exc}", ExitCode.USAGE)
        items, invalid = list(in_shard(items, part)), list(in_shard(invalid, part))
    resumed = 0
    if resume:
        try:
            done = _resume_point(output)
        except InputError as exc:
            _fail(str(exc), ExitCode.USAGE)
        before = len(items) + len(invalid)
        items = [i for i in items if (i if isinstance(i, str) else i[0]) not in done]
        invalid = [r for r in invalid if r.vin not in done]
        resumed = before - len(items) - len(invalid)
    resume_hint = None if output == "-" else f"hm-async poll {source} -o {output} --resume"

    async def work(hm: HMClient) -> int:
        if items:
            await hm.tokens.get()  # fail fast (exit 3) instead of once per VIN
        with _open_output(output, append=resume) as opened:
            writer = ResultWriter(*opened) if opened is not None else None
            with Interrupts(_err) as interrupts:
                outcome = await run_poll(hm, items, writer, concurrency=concurrency,
                                         console=_err, show_progress=progress,
                                         invalid=invalid, stop=interrupts.stop)
        outcome.duplicates, outcome.resumed = duplicates, resumed
        _err.print(summary_table(outcome, hm, resume_hint=resume_hint))
        p = outcome.progress
        if outcome.interrupted:
            return ExitCode.INTERRUPTED
        if p.failed == 0:
            return ExitCode.OK
        if p.ok > 0:
            return ExitCode.PARTIAL_FAILURE
        worst = max(p.errors().items(), key=lambda kv: kv[1])[0]
        if worst == "InvalidVehicleError":  # nothing in the input named a vehicle
            return ExitCode.USAGE
        return ExitCode.AUTH if worst in ("AuthenticationError", "TokenRefusedError") \
            else ExitCode.API

    _run(ctx, work, rate_limits=limits, client_options=_shared_state(redis, limits))


def _shared_state(url: str | None, limits: dict[str, float]) -> dict[str, Any] | None:
    """HMClient options for a worker sharing token and limits through Redis (--redis)."""
    if url is None:
        return None
    try:
        from .redis import RedisLimiter, RedisTokenStore  # optional: hm-async[redis]
    except ImportError:
        _fail("--redis needs the redis extra: pip install 'hm-async[redis]'", ExitCode.USAGE)
    return {"token_store": RedisTokenStore(url), "limiter": RedisLimiter(url, limits)}


@app.command(epilog="Examples:\n\n  hm-async demo\n\n  hm-async demo --vehicles 5000 "
                    "--fault-rate 0.1\n\n  hm-async demo -o demo.jsonl")
def demo(
    vehicles: Annotated[int, typer.Option(metavar="N", min=1, max=100_000,
                                          help="Size of the emulated fleet.")] = 1000,
    fault_rate: Annotated[float, typer.Option(metavar="P", min=0.0, max=0.5,
                                              help="Share of requests that fail.")] = 0.05,
    concurrency: Annotated[int, typer.Option(metavar="N", min=1, max=1000,
                                             help="Requests in flight at once.")] = 64,
    seed: Annotated[int | None, typer.Option(
        metavar="N", help="Seed for reproducible faults.")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Also write the JSON Lines here ('-' for "
        "stdout).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                           help="Progress bar.")] = True,
    push: Annotated[bool, typer.Option("--stream", help="Stream MQTT push instead "
                                         "(starts a local mosquitto).")] = False,
) -> None:
    """Poll a 1,000-vehicle fleet of the built-in emulator: no account needed.

    Shows the progress bar, the per-brand summary and the cost in API calls, with injected
    faults, a rate-limited brand and vehicles that really cannot answer.
    """
    from ._cli_demo import demo as run_demo

    if push:
        from ._cli_stream_demo import stream_demo
        raise typer.Exit(asyncio.run(stream_demo(Console(highlight=False))))
    try:
        with _open_output(output) as opened:
            asyncio.run(run_demo(vehicles=vehicles, fault_rate=fault_rate,
                                 concurrency=concurrency, seed=seed,
                                 output=opened[0] if opened is not None else None,
                                 console=_err if output == "-" else Console(highlight=False),
                                 show_progress=progress))
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except OutputError as exc:
        _output_failed(exc)
    except (HMError, OSError) as exc:
        _fail(f"demo failed: {describe(exc)}", ExitCode.API)


app.command("emulator", epilog=EMULATOR_EPILOG)(emulator_command)

register_static_commands(app, run=_run, check_vin=_vin, print_json=_print_json)


def _no_type(ctx: Any) -> None:  # noqa: ARG001 - the signature typer calls
    return None


def _tidy_help(cmd: Any) -> None:
    """Help without type noise: flags show no type, values show their METAVAR.

    typer labels every parameter with its Python type (``<bool>``, ``<list[str]>``); a
    shell user wants ``--status STATUS``. (typer vendors its own click, hence the duck
    typing on the command tree.)
    """
    # The help option is made (and cached) on first use; make it now to tidy it too.
    cmd.get_help_option(cmd.context_class(cmd, help_option_names=_HELP_OPTIONS))
    for param in [*cmd.params, cmd._help_option]:
        if param is None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = (param.name or "value").upper()
        if getattr(param, "param_type_name", "") == "argument":
            # an argument's name (VIN, [FILE]) already says what it is; typer would add
            # its Python type in a column of its own
            param.display_type_rich = _no_type
    for sub in (getattr(cmd, "commands", None) or {}).values():
        _tidy_help(sub)


def command() -> Any:
    """The click command behind ``hm-async`` (typer's vendored click), with tidied help."""
    cmd = typer.main.get_command(app)
    _tidy_help(cmd)
    return cmd
