"""VINs and brands: validated before any network call, so a typo costs no billed request.

HM spells brands differently per API: clearance and eligibility say ``mercedes-benz`` and
``volvo-cars``, the vehicle-data body says ``mercedes_benz`` and ``volvo_cars``. hm_async
accepts either and uses the dashed (clearance) spelling everywhere in its own API.

What is accepted is what the API accepts, no more and no less:

* a VIN is 17 characters of A-Z and 0-9. ISO 3779 forbids I, O and Q, but it binds carmakers,
  not HM: the vendor's own test VINs (``EXVETESTVIN000001``, ``VIN00000000000001``) contain
  them, so refusing them would lock sandbox users out. Surrounding spaces are stripped and
  letters upper-cased, as a user pasting from a spreadsheet expects.
* a brand is either one HM lists today (:data:`BRANDS`, in either spelling) or any
  well-formed name (``[a-z0-9-]+`` after normalising): HM adds carmakers between releases of
  this library, and a new one must not need an upgrade. An unknown brand is logged once at
  WARNING (logger ``hm_async``) and is paced like any brand without a configured limit. A
  near miss of a known brand (``bmv``, ``mercedes``) is refused with a "did you mean" hint,
  because a typo passed through would only fail later, one billed request per VIN.
"""

from __future__ import annotations

import logging
import re

import msgspec

__all__ = ["BRANDS", "Vehicle", "normalize_brand", "validate_vin"]

logger = logging.getLogger("hm_async")

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

#: The API's VIN: 17 characters of A-Z and 0-9 (I, O and Q included, see above).
_VIN = re.compile(r"[A-Z0-9]{17}")
#: A brand HM may add later: lower-case letters, digits and dashes after normalising.
_WELL_FORMED_BRAND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_BRAND_CACHE: dict[str, str] = {}
#: Unknown brands already reported, so a 100,000-VIN file logs each one once.
_WARNED_BRANDS: set[str] = set()


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def validate_vin(vin: object, *, argument: str = "vin") -> str:
    """Return ``vin`` stripped and upper-cased if it is a VIN the API accepts.

    Raises ``ValueError`` naming ``argument`` otherwise (other lengths, other characters,
    non-strings).
    """
    if not isinstance(vin, str):
        raise ValueError(f"{argument} must be a str, got {type(vin).__name__}")
    if _VIN.fullmatch(vin) is not None:  # already canonical: the usual case of a fleet poll
        return vin
    candidate = vin.strip().upper()
    if not candidate.isascii() or _VIN.fullmatch(candidate) is None:
        raise ValueError(
            f"{argument} {_shown(vin)} is not a VIN: expected 17 characters of A-Z and 0-9"
            + (f" (got {len(candidate)})" if len(candidate) != 17 else "")
        )
    return candidate


def _near_miss(canonical: str, known: frozenset[str]) -> str | None:
    """The known brand ``canonical`` is probably a typo of, or None.

    A near miss is one edit away (a wrong, missing, extra or swapped letter), the same
    letters without dashes (``volvocars``), or the first part of a dashed name
    (``mercedes``, ``volvo``). New brands rarely sit that close to an existing one.
    """
    squashed = canonical.replace("-", "")
    for brand in sorted(known):
        if brand.replace("-", "") == squashed or brand.split("-")[0] == canonical:
            return brand
    if len(canonical) < 3:
        return None
    for brand in sorted(known):
        if len(brand) >= 3 and _one_edit_apart(canonical, brand):
            return brand
    return None


def _one_edit_apart(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        if len(diff) != 2:
            return False
        i, j = diff
        return j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def normalize_brand(
    brand: object, *, argument: str = "brand", allowed: frozenset[str] = BRANDS
) -> str:
    """Return the dashed spelling of ``brand`` (``mercedes_benz`` -> ``mercedes-benz``).

    Known brands (``allowed``) in either spelling pass; so does a well-formed brand this
    release does not know yet, with one WARNING per brand. Raises ``ValueError`` naming
    ``argument`` for non-strings, malformed names, near misses of a known brand (with a
    "did you mean") and brands this release knows are not in ``allowed`` (e.g. a brand
    the Eligibility API does not serve).
    """
    if not isinstance(brand, str):
        raise ValueError(f"{argument} must be a str, got {type(brand).__name__}")
    cached = _BRAND_CACHE.get(brand)
    if cached is not None and (cached in allowed or cached not in BRANDS):
        return cached
    canonical = brand.strip().lower().replace("_", "-").replace(" ", "-")
    if canonical in allowed:
        _BRAND_CACHE[brand] = canonical
        return canonical
    valid = f"valid brands: {', '.join(sorted(allowed))}"
    if canonical in BRANDS:  # known to this release, but not to this API
        raise ValueError(f"{argument} {_shown(brand)} is not accepted by this API; {valid}")
    if not canonical.isascii() or _WELL_FORMED_BRAND.fullmatch(canonical) is None:
        raise ValueError(f"{argument} {_shown(brand)} is not a known brand and not a "
                         f"well-formed one (letters, digits and dashes); {valid}")
    guess = _near_miss(canonical, allowed | BRANDS)
    if guess is not None:
        raise ValueError(f"{argument} {_shown(brand)} is not a known brand; did you mean "
                         f"{guess!r}? {valid}")
    if canonical not in _WARNED_BRANDS:
        _WARNED_BRANDS.add(canonical)
        logger.warning("brand %r is not known to this hm_async release; passing it on to HM "
                       "(paced adaptively unless you configure a rate limit for it)", canonical)
    if len(_BRAND_CACHE) < 10_000:  # bounded: brands come from user input
        _BRAND_CACHE[brand] = canonical
    return canonical


class Vehicle(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle to clear or poll: its VIN, brand and optional clearance tags."""

    vin: str
    brand: str
    tags: dict[str, str] | None = None

    def __post_init__(self) -> None:
        # frozen Structs forbid assignment; normalise through the msgspec escape hatch.
        msgspec.structs.force_setattr(self, "vin", validate_vin(self.vin))
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
