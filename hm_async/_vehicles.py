"""VINs and brands: validated before any network call, so a typo costs no billed request.

HM spells brands differently per API: clearance and eligibility say ``mercedes-benz`` and
``volvo-cars``, the vehicle-data body says ``mercedes_benz`` and ``volvo_cars``. hm_async
accepts either and uses the dashed (clearance) spelling everywhere in its own API.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["BRANDS", "Vehicle", "normalize_brand", "validate_vin"]

#: Brands the Fleet Clearance API accepts (hm-fleet-clearance-v1.yml, FleetVehicle.brand).
BRANDS: frozenset[str] = frozenset(
    {
        "alfaromeo", "audi", "bmw", "citroen", "cupra", "dacia", "ds", "fiat", "ford", "jeep",
        "kia", "lexus", "maserati", "mercedes-benz", "mini", "opel", "peugeot", "polestar",
        "porsche", "renault", "sandbox", "seat", "skoda", "tesla", "toyota", "vauxhall",
        "volkswagen", "volvo-cars",
    }
)

#: Brands the Eligibility API accepts (hm-eligibility-v1.yml, Request.brand).
ELIGIBILITY_BRANDS: frozenset[str] = frozenset(
    {
        "mercedes-benz", "ford", "bmw", "mini", "citroen", "peugeot", "opel", "vauxhall", "ds",
        "jeep", "fiat", "alfaromeo", "renault", "toyota", "lexus", "volvo-cars", "sandbox",
    }
)

# ISO 3779: 17 characters, digits and capital letters except I, O and Q.
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
_BRAND_CACHE: dict[str, str] = {}


def validate_vin(vin: object, *, argument: str = "vin") -> str:
    """Return ``vin`` if it is a well-formed VIN, else raise ``ValueError`` naming the argument."""
    if not isinstance(vin, str):
        raise ValueError(f"{argument} must be a str, got {type(vin).__name__}")
    if _VIN.fullmatch(vin) is None:
        shown = vin if len(vin) <= 40 else vin[:40] + "…"
        raise ValueError(
            f"{argument} {shown!r} is not a VIN: expected 17 characters of 0-9 and A-Z "
            f"without I, O and Q"
        )
    return vin


def normalize_brand(
    brand: object, *, argument: str = "brand", allowed: frozenset[str] = BRANDS
) -> str:
    """Return the dashed spelling of ``brand`` (``mercedes_benz`` -> ``mercedes-benz``).

    Raises ``ValueError`` naming the argument and listing the valid brands.
    """
    if isinstance(brand, str):
        cached = _BRAND_CACHE.get(brand)
        if cached is not None and cached in allowed:
            return cached
        canonical = brand.strip().lower().replace("_", "-").replace(" ", "-")
        if canonical in allowed:
            _BRAND_CACHE[brand] = canonical
            return canonical
        shown = brand if len(brand) <= 40 else brand[:40] + "…"
        raise ValueError(
            f"{argument} {shown!r} is not a known brand; valid brands: {', '.join(sorted(allowed))}"
        )
    raise ValueError(f"{argument} must be a str, got {type(brand).__name__}")


class Vehicle(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle to clear or poll: its VIN, brand and optional clearance tags."""

    vin: str
    brand: str
    tags: dict[str, str] | None = None

    def __post_init__(self) -> None:
        validate_vin(self.vin)
        # frozen Structs forbid assignment; normalise through the msgspec escape hatch.
        msgspec.structs.force_setattr(self, "brand", normalize_brand(self.brand))
        if self.tags is not None and not (
                isinstance(self.tags, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items())):
            raise ValueError(f"tags of {self.vin} must map str to str")


class VehicleItem(msgspec.Struct, frozen=True):
    """One caller-given vehicle, read by :func:`parse_vehicle_item`.

    ``problem`` is None for a valid item; then ``vin`` is the validated VIN, ``brand`` the
    dashed spelling (None for a bare VIN: the brand is looked up later) and ``tags`` the
    clearance tags, if any. For an invalid item ``problem`` says why and ``vin`` is a short
    printable label of the item, so the failure can still be reported against it.
    """

    vin: str
    brand: str | None = None
    tags: dict[str, str] | None = None
    problem: str | None = None


def parse_vehicle_item(item: object, *, argument: str | None = None) -> VehicleItem:
    """The one reading of every way a caller names a vehicle; never raises.

    Accepts a VIN string, a :class:`Vehicle`, or a ``(vin, brand)`` / ``(vin, brand, tags)``
    tuple (brand in either spelling). ``argument`` names the caller's parameter in messages
    ("vehicles" -> "vehicles item vin 'X' is not a VIN ..."). Poll, watch and the clearance
    resource all use it, so an item means the same thing everywhere; not raising lets the
    poller turn a bad item into that item's result instead of an exception.
    """
    if isinstance(item, Vehicle):  # validated when it was built
        return VehicleItem(item.vin, item.brand, item.tags)
    where = f"{argument} item " if argument else ""
    try:
        if isinstance(item, str):
            return VehicleItem(validate_vin(item, argument=where + "vin"))
        if isinstance(item, tuple) and len(item) in (2, 3):
            vin = validate_vin(item[0], argument=where + "vin")
            brand = normalize_brand(item[1], argument=where + "brand")
            return VehicleItem(vin, brand, dict(item[2]) if len(item) == 3 else None)
    except (TypeError, ValueError) as exc:
        return VehicleItem(_label(item), problem=str(exc))
    return VehicleItem(_label(item), problem=(
        f"{argument or 'vehicles'} items must be VINs, (vin, brand[, tags]) tuples or "
        f"Vehicle objects, got {type(item).__name__}"))


def _label(item: object) -> str:
    """A short printable name of an invalid item, for the result that reports it."""
    if isinstance(item, str):
        return item[:40]
    if isinstance(item, tuple) and item and isinstance(item[0], str):
        return item[0][:40]
    return repr(item)[:40]
