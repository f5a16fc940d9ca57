"""The emulator's knobs, kept in one mutable dataclass so a test can turn them mid-run.

Handlers read the config on every request (no copies are cached), so assigning
``emu.config.fault_rate = 0.3`` or calling ``emu.set_config(fault_rate=0.3)`` takes effect on
the next request.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["FAULT_KINDS", "ROUTES", "EmulatorConfig"]

#: Every fault the emulator can inject; ``faults`` picks a subset.
FAULT_KINDS: frozenset[str] = frozenset({"503", "504", "408", "500", "drop", "html502"})

#: Route names used by ``fault_routes``, ``script_faults`` and the stats.
ROUTES: frozenset[str] = frozenset(
    {"token", "eligibility", "clearance", "vehicle_data", "static_data"}
)

#: Brands of the pre-approved fleet: a spread of real clearance brands (dashed spelling).
DEFAULT_BRANDS: tuple[str, ...] = (
    "bmw", "mercedes-benz", "volkswagen", "ford", "renault", "volvo-cars", "peugeot", "toyota",
)


@dataclass
class EmulatorConfig:
    """Behaviour of an :class:`~hm_async.emulator.Emulator`. Every field has a quiet default.

    Times are seconds. ``latency`` is a fixed delay or a ``(min, max)`` range drawn uniformly
    per request. ``fault_rate`` is the probability that a request on one of ``fault_routes``
    fails with a fault drawn uniformly from ``faults``. ``rate_limits`` maps a brand (either
    spelling) to the requests per second the vehicle-data endpoint allows for it; brands not
    listed use ``default_rate_limit`` (``None`` = unlimited). The fractions ``*_fraction`` turn
    that share of the pre-approved fleet into the special cases (no consent, privacy mode,
    asleep, consent removed by OEM); the first vehicles of the fleet list are used, in that
    order, so tests can find them deterministically via ``Emulator.special_vins``.
    """

    token_lifetime: float = 300.0
    latency: float | tuple[float, float] = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ("503", "504", "408", "500", "drop", "html502")
    fault_routes: tuple[str, ...] = ("vehicle_data",)
    seed: int | None = None
    rate_limits: dict[str, float] = field(default_factory=dict)
    default_rate_limit: float | None = None
    #: Capacity of the per-brand token bucket; ``None`` = one second's worth of requests.
    rate_limit_burst: float | None = None
    vehicles: int = 100
    brands: tuple[str, ...] = DEFAULT_BRANDS
    approve_delay: float = 1.0
    revoke_delay: float = 1.0
    #: Seconds between changes of a VIN's data (each VIN has its own phase).
    update_interval: float = 30.0
    #: Probability that a generated property carries a ``failure`` instead of ``data``.
    failure_fraction: float = 0.05
    no_consent_fraction: float = 0.0
    privacy_mode_fraction: float = 0.0
    asleep_fraction: float = 0.0
    consent_removed_fraction: float = 0.0
    #: Accepted distance between an assertion's ``iat`` and the server clock.
    assertion_iat_window: float = 300.0
    #: Calls per minute allowed on ``GET /v1/fleets/vehicles/{vin}`` (the spec says 60).
    clearance_get_per_minute: int = 60
    #: Brands whose pending clearance can be canceled (the spec lists these); others get 422.
    cancel_brands: tuple[str, ...] = (
        "mercedes-benz", "volkswagen", "audi", "skoda", "seat", "cupra", "citroen", "ds",
        "fiat", "jeep", "opel", "peugeot", "vauxhall", "alfaromeo", "maserati", "sandbox",
    )
    #: Fraction of newly requested clearances that end ``rejected`` instead of ``approved``.
    reject_fraction: float = 0.0
    #: The application's credentials. ``None``: derived from ``seed`` when one is given
    #: (so a restarted emulator accepts the same credentials), else random per emulator.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings that would make the emulator lie quietly."""
        unknown = set(self.faults) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; choose from {sorted(FAULT_KINDS)}")
        bad_routes = set(self.fault_routes) - ROUTES
        if bad_routes:
            raise ValueError(
                f"unknown fault_routes {sorted(bad_routes)}; choose from {sorted(ROUTES)}"
            )
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        if self.token_lifetime <= 0:
            raise ValueError("token_lifetime must be positive")
        if isinstance(self.latency, tuple):
            lo, hi = self.latency
            if lo < 0 or hi < lo:
                raise ValueError("latency range must be (min, max) with 0 <= min <= max")
        elif self.latency < 0:
            raise ValueError("latency must be >= 0")
        if self.vehicles < 0:
            raise ValueError("vehicles must be >= 0")
        if not self.brands:
            raise ValueError("brands must not be empty")
        fractions = (
            self.no_consent_fraction, self.privacy_mode_fraction, self.asleep_fraction,
            self.consent_removed_fraction,
        )
        if any(not 0.0 <= f <= 1.0 for f in fractions) or sum(fractions) > 1.0:
            raise ValueError("special-case fractions must be within [0, 1] and sum to <= 1")
        for brand, rate in self.rate_limits.items():
            if rate <= 0:
                raise ValueError(f"rate limit for {brand!r} must be positive")
        if self.default_rate_limit is not None and self.default_rate_limit <= 0:
            raise ValueError("default_rate_limit must be positive or None")
        if self.update_interval <= 0:
            raise ValueError("update_interval must be positive")
        for name in ("client_id", "client_secret"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty str or None")

    def replace(self, **changes: object) -> EmulatorConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
