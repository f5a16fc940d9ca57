"""``hm-async static-data VIN`` and ``hm-async valuation VIN ...``: the Static Data API.

The commands are added to the main typer app by :func:`register`, which is handed the app's
runner (credentials, one client, errors as one line and an exit code), its VIN check (a
usage error that names the argument, as every command gives) and its JSON printer, so this
module needs nothing else from the CLI and the CLI nothing from it but one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated

import msgspec
import typer

from ._cli_config import ExitCode
from ._client import HMClient

__all__ = ["register"]

Work = Callable[[HMClient], Awaitable[int | None]]
Runner = Callable[[typer.Context, Work], None]


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}",
                                 param_hint="--registration-date") from None


def register(app: typer.Typer, *, run: Runner, check_vin: Callable[[str, str], str],
             print_json: Callable[[bytes], None]) -> None:
    """Add the ``static-data`` and ``valuation`` commands to ``app``."""

    @app.command("static-data", epilog="Examples:\n\n  hm-async static-data WBA12345678901234\n\n"
                 "  hm-async static-data WBA12345678901234 | jq .vehicle.manufacturer")
    def static_data(
        ctx: typer.Context,
        vin: Annotated[str, typer.Argument(help="Vehicle identification number.")],
    ) -> None:
        """Manufacturer, model, KBA numbers, specs and original price of one VIN
        (Static Data API; needs the vehicle:static-data scope, production only)."""
        checked = check_vin(vin, "VIN")

        async def work(hm: HMClient) -> int:
            print_json(msgspec.json.encode(await hm.static_data.get(checked)))
            return ExitCode.OK

        run(ctx, work)

    @app.command(epilog="Example:\n\n  hm-async valuation WBA12345678901234 --odometer 42000 "
                 "--registration-date 2021-03-01 --country DE")
    def valuation(
        ctx: typer.Context,
        vin: Annotated[str, typer.Argument(help="Vehicle identification number.")],
        odometer: Annotated[float, typer.Option(min=0, help="Odometer reading in km.")],
        registration_date: Annotated[str, typer.Option(
            help="First registration, YYYY-MM-DD.")],
        country: Annotated[str, typer.Option(
            help="Market of the valuation, ISO 3166-1 alpha-2 (DE, FR, ...).")],
    ) -> None:
        """What one vehicle is worth in a market (Static Data API valuation): prices,
        condition and odometer corrections, as JSON."""
        checked = check_vin(vin, "VIN")
        registered = _date(registration_date)

        async def work(hm: HMClient) -> int:
            km = int(odometer) if odometer.is_integer() else odometer
            result = await hm.static_data.valuation(
                checked, odometer=km, registration_date=registered, country=country)
            print_json(msgspec.json.encode(result))
            return ExitCode.OK

        run(ctx, work)
