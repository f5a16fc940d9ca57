"""The public face of the emulator: start and stop it, and hand out what a test needs."""

from __future__ import annotations

import hashlib
import ssl
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._vehicles import BRANDS, Vehicle, normalize_brand, validate_vin
from ._config import ROUTES, EmulatorConfig
from ._server import SPECIAL_KINDS, EmulatorServer
from ._stats import Stats

if TYPE_CHECKING:
    from .._credentials import ClientCredentials, PrivateKeyCredentials

__all__ = ["Emulator"]

#: World manufacturer identifiers for the brands a fleet is usually made of; others get one
#: derived from the brand name. The rest of the VIN spells EMU and a serial number.
_WMI = {
    "bmw": "WBA", "mercedes-benz": "WDD", "volkswagen": "WVW", "ford": "WF0", "renault": "VF1",
    "volvo-cars": "YV1", "peugeot": "VF3", "toyota": "JTD", "audi": "WAU", "skoda": "TMB",
    "citroen": "VF7", "opel": "W0L", "mini": "WMW", "kia": "KNA", "porsche": "WP0",
    "tesla": "5YJ", "fiat": "ZFA", "seat": "VSS", "sandbox": "HMS",
}
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_SPECIAL_ORDER = ("no_consent", "privacy_mode", "asleep", "consent_removed")


def fleet_vin(brand: str, index: int) -> str:
    """The pre-approved fleet's VIN number ``index`` of ``brand``: stable across runs."""
    wmi = _WMI.get(brand)
    if wmi is None:
        digest = hashlib.blake2b(brand.encode(), digest_size=3).digest()
        wmi = "".join(_VIN_CHARS[b % len(_VIN_CHARS)] for b in digest)
    return f"{wmi}EMU{index:011d}"


class Emulator:
    """A local HM REST API on 127.0.0.1; see the package docstring for everything it does."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server = EmulatorServer(config or EmulatorConfig())
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._vehicles: list[Vehicle] = []
        self.special_vins: dict[str, list[str]] = {kind: [] for kind in SPECIAL_KINDS}
        self._populate()

    def __repr__(self) -> str:
        return f"<Emulator url={self._url!r}>"

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(self._server.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        port = bound[1]
        scheme = "https" if self._ssl is not None else "http"
        host = self._host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        self._url = f"{scheme}://{shown}:{port}"
        alternatives = {self._url, f"{scheme}://localhost:{port}"}
        self._server.base_urls = tuple(sorted(alternatives))

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- where and who --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL without ``/v1`` (``http://127.0.0.1:PORT``); pass it as ``base_url``."""
        if self._url is None:
            raise RuntimeError("the emulator is not started: use `async with Emulator()`")
        return self._url

    @property
    def client_id(self) -> str:
        return self._server.auth.client_id

    @property
    def client_secret(self) -> str:
        return self._server.auth.client_secret

    @property
    def private_key_pem(self) -> str:
        return self._server.auth.private_key_pem

    @property
    def key_id(self) -> str:
        return self._server.auth.key_id

    def private_key_json(self) -> dict[str, str]:
        """The key file the HM console lets one download (``PrivateKeyCredentials.from_file``)."""
        auth = self._server.auth
        return {"private_key": auth.private_key_pem, "id": auth.key_id,
                "inserted_at": auth.key_inserted_at}

    @property
    def client_credentials(self) -> ClientCredentials:
        from .._credentials import ClientCredentials

        return ClientCredentials(client_id=self.client_id, client_secret=self.client_secret)

    @property
    def private_key_credentials(self) -> PrivateKeyCredentials:
        from .._credentials import PrivateKeyCredentials

        return PrivateKeyCredentials(
            client_id=self.client_id, private_key=self.private_key_pem, key_id=self.key_id
        )

    # -- state ----------------------------------------------------------------------------
    @property
    def config(self) -> EmulatorConfig:
        """The live config: handlers read it on every request, so changes apply at once."""
        return self._server.config

    def set_config(self, **changes: Any) -> EmulatorConfig:
        """Change settings mid-test (validated); returns the new config."""
        new = self._server.config.replace(**changes)
        self._server.config = new
        return new

    @property
    def stats(self) -> Stats:
        return self._server.stats

    @property
    def vehicles(self) -> list[Vehicle]:
        """The pre-approved fleet (special-case VINs included; see ``special_vins``)."""
        return list(self._vehicles)

    def invalidate_tokens(self) -> None:
        """Every token issued so far now gets 401 "Invalid token" (forces a client refresh)."""
        self._server.auth.invalidate_tokens()

    def script_faults(self, route: str, outcomes: list[int | str | None]) -> None:
        """The next ``len(outcomes)`` requests to ``route`` answer these, then normal service.

        ``route`` is ``"token"``, ``"eligibility"``, ``"clearance"`` or ``"vehicle_data"``;
        outcomes are 503, 504, 408, 500, 429, 401, ``"drop"``, ``"html502"`` or ``None`` /
        ``"ok"`` for one normal answer. Scripts apply whatever ``fault_rate`` says.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; use one of {sorted(ROUTES)}")
        self._server.plan.script(route, outcomes)

    def clear_faults(self) -> None:
        """Forget scripted faults not yet served."""
        self._server.plan.clear()

    def add_vehicle(self, vin: str, brand: str, *, status: str = "approved",
                    tags: dict[str, str] | None = None) -> Vehicle:
        """Put a clearance record straight into the fleet (``status`` as given, no delay)."""
        vehicle = Vehicle(vin=vin, brand=brand, tags=tags)
        self._server.fleet.add(vehicle.vin, vehicle.brand, status=status, tags=tags)
        return vehicle

    def clearance_status(self, vin: str) -> str | None:
        """The clearance status the API would report for ``vin`` now (``None``: unknown)."""
        rec = self._server.fleet.get(vin)
        return None if rec is None else rec.status

    def set_vehicle_state(self, vin: str, kind: str | None) -> None:
        """Make ``vin``'s vehicle-data answer a special case, or normal again with ``None``.

        Kinds: ``no_consent`` (403), ``privacy_mode`` (403), ``asleep`` (408),
        ``consent_removed`` (401 "Consent is removed by OEM"), ``not_available`` (422).
        """
        validate_vin(vin)
        special = self._server.special
        for vins in self.special_vins.values():
            if vin in vins:
                vins.remove(vin)
        if kind is None:
            special.pop(vin, None)
            return
        if kind not in SPECIAL_KINDS:
            raise ValueError(f"unknown vehicle state {kind!r}; use one of {sorted(SPECIAL_KINDS)}")
        special[vin] = kind
        self.special_vins[kind].append(vin)

    def vehicle_data_payload(self, vin: str) -> dict[str, Any]:
        """What ``GET /v1/vehicle-data/autoapi-13/{vin}`` returns now, minus ``request_id``."""
        rec = self._server.fleet.records.get(vin)
        return self._server.data.payload(vin, rec.brand if rec else "unknown")

    # -- set-up -----------------------------------------------------------------------------
    def _populate(self) -> None:
        cfg = self._server.config
        brands = [normalize_brand(b, argument="brands") for b in cfg.brands]
        unknown = [b for b in brands if b not in BRANDS]
        if unknown:  # the emulated platform is today's: its clearance API refuses them
            raise ValueError(f"brands {unknown} are not brands HM's clearance API accepts")
        now = time.time()
        count = cfg.vehicles
        per_brand: dict[str, int] = {}
        for i in range(count):
            brand = brands[i % len(brands)]
            serial = per_brand[brand] = per_brand.get(brand, 0) + 1
            vin = fleet_vin(brand, serial)
            # One vehicle joined per hour, going back in time, so date filters have a spread.
            inserted = now - (count - i) * 3600.0
            self._server.fleet.add(vin, brand, status="approved", inserted_at=inserted)
            self._vehicles.append(Vehicle(vin=vin, brand=brand))
        fractions = (cfg.no_consent_fraction, cfg.privacy_mode_fraction, cfg.asleep_fraction,
                     cfg.consent_removed_fraction)
        index = 0
        for kind, fraction in zip(_SPECIAL_ORDER, fractions, strict=True):
            n = round(fraction * count)
            if fraction > 0:
                n = max(n, 1)
            for vehicle in self._vehicles[index:index + n]:
                self.set_vehicle_state(vehicle.vin, kind)
            index += n
