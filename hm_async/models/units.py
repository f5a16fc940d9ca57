"""Units of Auto API measurements, and conversion between units of one family.

Carmakers report the same quantity in different units (an odometer in ``miles`` for one
brand, ``kilometers`` for another), so a fleet app has to normalise before it can sum or
compare. Every measurement in the vehicle data is ``{"value": …, "unit": …}``; the generated
unit structs (``Length``, ``Speed``, …) subclass :class:`Measurement` and gain
:meth:`Measurement.to` and :meth:`Measurement.value_in` from here.

Conversion factors. Each unit is given as a factor to the family's coherent SI unit (and an
offset for temperatures). Sources, so a reader can check every number:

* NIST Special Publication 811 (2008 ed.), *Guide for the Use of the International System of
  Units*, Appendix B.8 and B.9 ("Factors for units listed alphabetically / by kind of
  quantity"): inch, foot, yard, mile (international: 1 in = 0.0254 m exactly), nautical mile
  (1852 m), pound (avoirdupois, 0.453 592 37 kg exactly), ounce (avoirdupois), troy ounce,
  stone, short ton, slug, carat (metric, 200 mg), pound-force (lbf = 0.453 592 37 kg ×
  9.806 65 m/s²) and what derives from it (psi, pound-force foot, horsepower = 550 ft·lbf/s),
  conventional inch and millimetre of mercury (13 595.1 kg/m³ × g_n × height), bar, knot,
  US gallon (231 in³ exactly) and US fluid ounce (1/128 gal), kilowatt hour, standard
  acceleration of gravity g_n = 9.806 65 m/s² (exact, 3rd CGPM 1901), degree Fahrenheit
  (T/K = (t/°F + 459.67)/1.8), degree Celsius (T/K = t/°C + 273.15).
* The SI Brochure, 9th ed. (BIPM 2019), Table 8 (non-SI units accepted for use with the SI:
  minute, hour, day, litre, degree of arc, tonne) and the SI prefixes.
* UK Weights and Measures Act 1985, Schedule 1: imperial gallon = 4.546 09 L exactly, imperial
  fluid ounce = 1/160 gallon.
* The Scandinavian mile (*mil*) is 10 km by definition (Swedish/Norwegian usage).
* A "month" has no SI definition; it is taken as 1/12 of the mean Gregorian year
  (365.2425 d), i.e. 2 629 746 s. A "week" is 7 days.
* "horsepower" is the mechanical horsepower of NIST SP 811 (≈ 745.70 W), not the metric PS
  (735.49875 W); the spec does not say which a carmaker means.

Efficiency units are reciprocal to each other (litres per 100 km versus miles per gallon), so
those are converted through the reciprocal, and zero cannot be converted between the two
kinds. ``ampere_hours`` is listed under energy by the spec but is electric charge: it cannot
become joules without a voltage, and asking for that raises :class:`UnitConversionError`.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple, TypeVar

import msgspec

__all__ = [
    "FAMILIES",
    "Measurement",
    "UnitConversionError",
    "convert",
    "family_of",
]


class UnitConversionError(ValueError):
    """A unit is unknown, belongs to another family, or cannot be converted to the target."""


class _Unit(NamedTuple):
    """How to reach the family's base unit: ``base = value * factor + offset``.

    With ``reciprocal`` the unit measures the inverse quantity (distance per volume against
    volume per distance): ``base = factor / value``. ``dimension`` separates quantities a
    family lumps together that cannot be converted into each other (charge versus energy).
    """

    factor: float
    offset: float = 0.0
    reciprocal: bool = False
    dimension: str = ""


_PI = math.pi
_INCH = 0.0254  # m, exact
_FOOT = 0.3048  # m, exact
_MILE = 1609.344  # m, exact (international mile)
_POUND = 0.45359237  # kg, exact
_G_N = 9.80665  # m/s², exact
_LBF = _POUND * _G_N  # N
_MERCURY = 13595.1 * _G_N  # Pa per metre of conventional mercury column
_US_GALLON = 231 * _INCH**3  # m³, exact (3.785 411 784 L)
_IMPERIAL_GALLON = 4.54609e-3  # m³, exact
_DAY = 86400.0  # s
_KWH = 3.6e6  # J

#: family -> unit -> conversion to the family's base unit (named first in each comment).
_TABLE: dict[str, dict[str, _Unit]] = {
    # base: m/s²
    "acceleration": {
        "meters_per_second_squared": _Unit(1.0),
        "gravity": _Unit(_G_N),
    },
    # base: radian
    "angle": {
        "radians": _Unit(1.0),
        "degrees": _Unit(_PI / 180),
        "revolutions": _Unit(2 * _PI),
    },
    # base: rad/s
    "angular_velocity": {
        "radians_per_second": _Unit(1.0),
        "degrees_per_second": _Unit(_PI / 180),
        "revolutions_per_minute": _Unit(2 * _PI / 60),
    },
    # base: second
    "duration": {
        "seconds": _Unit(1.0),
        "milliseconds": _Unit(1e-3),
        "minutes": _Unit(60.0),
        "hours": _Unit(3600.0),
        "days": _Unit(_DAY),
        "weeks": _Unit(7 * _DAY),
        "months": _Unit(365.2425 * _DAY / 12),
    },
    # base: ampere
    "electric_current": {
        "amperes": _Unit(1.0),
        "milliamperes": _Unit(1e-3),
        "kiloamperes": _Unit(1e3),
    },
    # base: volt
    "electric_potential_difference": {
        "volts": _Unit(1.0),
        "millivolts": _Unit(1e-3),
        "kilovolts": _Unit(1e3),
    },
    # base: joule; ampere hours are charge (base: coulomb) and only convert among themselves
    "energy": {
        "joules": _Unit(1.0),
        "kilojoules": _Unit(1e3),
        "watt_hours": _Unit(3600.0),
        "kilowatt_hours": _Unit(_KWH),
        "ampere_hours": _Unit(3600.0, dimension="electric charge"),
    },
    # base: J/m (energy per distance); miles per kWh is its reciprocal
    "energy_efficiency": {
        "kwh_per_100_kilometers": _Unit(_KWH / 100e3),
        "miles_per_kwh": _Unit(_KWH / _MILE, reciprocal=True),
    },
    # base: hertz
    "frequency": {
        "hertz": _Unit(1.0),
        "millihertz": _Unit(1e-3),
        "kilohertz": _Unit(1e3),
        "megahertz": _Unit(1e6),
        "gigahertz": _Unit(1e9),
        "times_per_minute": _Unit(1 / 60),
        "times_per_hour": _Unit(1 / 3600),
        "times_per_day": _Unit(1 / _DAY),
    },
    # base: m³/m (volume per distance); miles per gallon are its reciprocal
    "fuel_efficiency": {
        "liters_per_100_kilometers": _Unit(1e-3 / 100e3),
        "miles_per_gallon": _Unit(_US_GALLON / _MILE, reciprocal=True),
        "miles_per_imperial_gallon": _Unit(_IMPERIAL_GALLON / _MILE, reciprocal=True),
    },
    # base: lux
    "illuminance": {
        "lux": _Unit(1.0),
    },
    # base: metre
    "length": {
        "meters": _Unit(1.0),
        "millimeters": _Unit(1e-3),
        "centimeters": _Unit(1e-2),
        "decimeters": _Unit(1e-1),
        "kilometers": _Unit(1e3),
        "megameters": _Unit(1e6),
        "inches": _Unit(_INCH),
        "feet": _Unit(_FOOT),
        "yards": _Unit(3 * _FOOT),
        "miles": _Unit(_MILE),
        "scandinavian_miles": _Unit(1e4),
        "nautical_miles": _Unit(1852.0),
    },
    # base: kilogram
    "mass": {
        "kilograms": _Unit(1.0),
        "grams": _Unit(1e-3),
        "decigrams": _Unit(1e-4),
        "centigrams": _Unit(1e-5),
        "milligrams": _Unit(1e-6),
        "micrograms": _Unit(1e-9),
        "nanograms": _Unit(1e-12),
        "picograms": _Unit(1e-15),
        "ounces": _Unit(_POUND / 16),
        "pounds": _Unit(_POUND),
        "stones": _Unit(14 * _POUND),
        "metric_tons": _Unit(1e3),
        "short_tons": _Unit(2000 * _POUND),
        "carats": _Unit(2e-4),
        "ounces_troy": _Unit(31.1034768e-3),
        "slugs": _Unit(_LBF / _FOOT),
    },
    # base: watt
    "power": {
        "watts": _Unit(1.0),
        "milliwatts": _Unit(1e-3),
        "kilowatts": _Unit(1e3),
        "megawatts": _Unit(1e6),
        "horsepower": _Unit(550 * _LBF * _FOOT),
    },
    # base: pascal
    "pressure": {
        "pascals": _Unit(1.0),
        "kilopascals": _Unit(1e3),
        "bars": _Unit(1e5),
        "millibars": _Unit(1e2),
        "inches_of_mercury": _Unit(_MERCURY * _INCH),
        "millimeters_of_mercury": _Unit(_MERCURY * 1e-3),
        "pounds_force_per_square_inch": _Unit(_LBF / _INCH**2),
    },
    # base: m/s
    "speed": {
        "meters_per_second": _Unit(1.0),
        "kilometers_per_hour": _Unit(1 / 3.6),
        "miles_per_hour": _Unit(_MILE / 3600),
        "knots": _Unit(1852 / 3600),
    },
    # base: kelvin
    "temperature": {
        "kelvin": _Unit(1.0),
        "celsius": _Unit(1.0, offset=273.15),
        "fahrenheit": _Unit(5 / 9, offset=459.67 * 5 / 9),
    },
    # base: newton metre
    "torque": {
        "newton_meters": _Unit(1.0),
        "newton_millimeters": _Unit(1e-3),
        "pound_feet": _Unit(_LBF * _FOOT),
    },
    # base: cubic metre
    "volume": {
        "cubic_meters": _Unit(1.0),
        "liters": _Unit(1e-3),
        "deciliters": _Unit(1e-4),
        "centiliters": _Unit(1e-5),
        "milliliters": _Unit(1e-6),
        "cubic_decimeters": _Unit(1e-3),
        "cubic_centimeters": _Unit(1e-6),
        "cubic_millimeters": _Unit(1e-9),
        "cubic_inches": _Unit(_INCH**3),
        "cubic_feet": _Unit(_FOOT**3),
        "gallons": _Unit(_US_GALLON),
        "fluid_ounces": _Unit(_US_GALLON / 128),
        "imperial_gallons": _Unit(_IMPERIAL_GALLON),
        "imperial_fluid_ounces": _Unit(_IMPERIAL_GALLON / 160),
    },
}

#: The units of every family, as the conversion table knows them.
FAMILIES: dict[str, frozenset[str]] = {family: frozenset(units) for family, units in _TABLE.items()}

_FAMILY_OF_UNIT: dict[str, str] = {
    unit: family for family, units in _TABLE.items() for unit in units
}


def family_of(unit: str) -> str:
    """The family (``"length"``, ``"speed"``, …) a unit belongs to."""
    try:
        return _FAMILY_OF_UNIT[unit]
    except KeyError:
        raise UnitConversionError(f"unknown unit {unit!r}") from None


def _lookup(family: str, unit: str) -> _Unit:
    units = _TABLE.get(family)
    if units is None:
        raise UnitConversionError(
            f"unknown unit family {family!r}; known: {', '.join(sorted(_TABLE))}"
        )
    spec = units.get(unit)
    if spec is None:
        raise UnitConversionError(
            f"unknown {family} unit {unit!r}; known: {', '.join(sorted(units))}"
        )
    return spec


def convert(value: float, from_unit: str, to_unit: str, *, family: str | None = None) -> float:
    """Convert ``value`` from one unit to another of the same family.

    ``family`` is only needed to get a clearer message when a unit is unknown; unit names are
    unique across families. Raises :class:`UnitConversionError` for an unknown unit, units of
    different families or dimensions, and zero between reciprocal efficiency units.
    """
    if family is None:
        family = family_of(from_unit)
    source = _lookup(family, from_unit)
    target = _lookup(family, to_unit)
    if from_unit == to_unit:
        return value
    if source.dimension != target.dimension:
        raise UnitConversionError(
            f"cannot convert {from_unit} ({source.dimension or family}) to "
            f"{to_unit} ({target.dimension or family})"
        )
    try:
        base = source.factor / value if source.reciprocal else value * source.factor
        base += source.offset
        if target.reciprocal:
            return target.factor / base
        return (base - target.offset) / target.factor
    except ZeroDivisionError:
        raise UnitConversionError(
            f"cannot convert {value!r} {from_unit} to {to_unit}: the units are reciprocal"
        ) from None


M = TypeVar("M", bound="Measurement")


class Measurement(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A value with its unit; subclasses name their family in ``family``.

    ``unit`` is a plain ``str``: a unit the spec does not list yet still decodes, and only
    converting it fails. ``gc=False`` is safe: a measurement holds a float and a str, which
    cannot form a reference cycle.
    """

    value: float
    unit: str

    family: ClassVar[str] = ""

    def value_in(self, unit: str) -> float:
        """This measurement's value expressed in ``unit`` (of the same family)."""
        return convert(self.value, self.unit, unit, family=self.family or None)

    def to(self: M, unit: str) -> M:
        """The same measurement expressed in ``unit``, as an instance of the same class.

        ``odometer.to("kilometers").value`` is how a fleet app sums odometers across brands
        that report miles and kilometres.
        """
        return type(self)(value=self.value_in(unit), unit=unit)
