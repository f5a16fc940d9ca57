"""Unit conversion: known reference values, every unit of the spec, clear errors."""

from __future__ import annotations

import itertools
import typing

import pytest

from hm_async.models import vehicle_data as vd
from hm_async.models._vehicle_decode import decode_vehicle_data
from hm_async.models.units import (
    FAMILIES,
    Measurement,
    UnitConversionError,
    convert,
    family_of,
)

UNIT_CLASSES: list[type[Measurement]] = [
    cls
    for cls in vars(vd).values()
    if isinstance(cls, type) and issubclass(cls, Measurement) and cls is not Measurement
]


def test_every_unit_the_spec_lists_has_a_conversion() -> None:
    assert len(UNIT_CLASSES) == 19
    assert {cls.family for cls in UNIT_CLASSES} == set(FAMILIES)
    for cls in UNIT_CLASSES:
        alias = getattr(vd, cls.__name__ + "Unit")
        assert set(typing.get_args(alias)) == FAMILIES[cls.family], cls.__name__


def test_unit_names_are_unique_across_families() -> None:
    every = [unit for units in FAMILIES.values() for unit in units]
    assert len(every) == len(set(every))
    assert family_of("miles") == "length"
    assert family_of("miles_per_gallon") == "fuel_efficiency"


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1, "miles", "kilometers", 1.609344),  # international mile, exact
        (1, "nautical_miles", "meters", 1852),
        (1, "scandinavian_miles", "kilometers", 10),
        (12, "inches", "feet", 1),
        (100, "celsius", "fahrenheit", 212),
        (-40, "celsius", "fahrenheit", -40),
        (0, "celsius", "kelvin", 273.15),
        (32, "fahrenheit", "kelvin", 273.15),
        (1, "bars", "pounds_force_per_square_inch", 14.503773773),
        (1, "inches_of_mercury", "pascals", 3386.389),  # NIST SP 811: 3.386 389 E+03
        (1, "millimeters_of_mercury", "pascals", 133.3224),  # NIST SP 811: 1.333 224 E+02
        (100, "miles_per_hour", "kilometers_per_hour", 160.9344),
        (1, "knots", "kilometers_per_hour", 1.852),
        (1, "gallons", "liters", 3.785411784),
        (1, "imperial_gallons", "liters", 4.54609),
        (1, "fluid_ounces", "milliliters", 29.5735295625),
        (1, "cubic_feet", "liters", 28.316846592),
        (10, "liters_per_100_kilometers", "miles_per_gallon", 23.521458),
        (10, "liters_per_100_kilometers", "miles_per_imperial_gallon", 28.248094),
        (30, "miles_per_gallon", "miles_per_imperial_gallon", 36.028495),
        (4, "miles_per_kwh", "kwh_per_100_kilometers", 15.534279),
        (1, "kilowatt_hours", "joules", 3.6e6),
        (1, "horsepower", "watts", 745.69987),  # NIST SP 811: 7.456 999 E+02
        (1, "pound_feet", "newton_meters", 1.355818),
        (1, "pounds", "kilograms", 0.45359237),
        (1, "stones", "pounds", 14),
        (1, "slugs", "kilograms", 14.59390),
        (1, "gravity", "meters_per_second_squared", 9.80665),
        (60, "revolutions_per_minute", "revolutions_per_minute", 60),
        (60, "revolutions_per_minute", "degrees_per_second", 360),
        (180, "degrees", "radians", 3.14159265),
        (1, "weeks", "hours", 168),
        (1, "months", "days", 30.436875),  # mean Gregorian month
        (1, "times_per_minute", "hertz", 1 / 60),
        (1500, "milliamperes", "amperes", 1.5),
        (400, "volts", "kilovolts", 0.4),
    ],
)
def test_reference_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert(value, source, target) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_unit_converts_to_every_other_and_back(family: str) -> None:
    for source, target in itertools.product(sorted(FAMILIES[family]), repeat=2):
        if {source, target} & {"ampere_hours"} and source != target:
            continue  # charge, not energy: covered by its own test
        there = convert(37.5, source, target)
        assert convert(there, target, source) == pytest.approx(37.5, rel=1e-9), (source, target)


def test_measurement_to_keeps_the_class_and_sums_across_brands() -> None:
    """A fleet app sums odometers reported in miles by one brand and kilometres by another."""
    bodies = [
        b'{"brand":"ford","diagnostics":{"odometer":{"data":{"value":1000,"unit":"miles"}}}}',
        b'{"brand":"bmw","diagnostics":{"odometer":{"data":{"value":1000,"unit":"kilometers"}}}}',
        b'{"brand":"volvo_cars","diagnostics":{"odometer":'
        b'{"data":{"value":100,"unit":"scandinavian_miles"}}}}',
    ]
    odometers = []
    for raw in bodies:
        data = decode_vehicle_data(raw)
        assert data.diagnostics and data.diagnostics.odometer and data.diagnostics.odometer.data
        odometers.append(data.diagnostics.odometer.data)
    in_km = [o.to("kilometers") for o in odometers]
    assert all(type(o) is vd.Length and o.unit == "kilometers" for o in in_km)
    assert sum(o.value for o in in_km) == pytest.approx(1609.344 + 1000 + 1000)
    assert sum(o.value_in("miles") for o in odometers) == pytest.approx(1000 + 2000 / 1.609344)


def test_unknown_unit_is_a_clear_error() -> None:
    furlongs = vd.Length(value=3, unit="furlongs")  # the decoder lets unknown units through
    with pytest.raises(UnitConversionError, match=r"unknown length unit 'furlongs'.*meters"):
        furlongs.to("meters")
    with pytest.raises(UnitConversionError, match=r"unknown length unit 'furlongs'"):
        vd.Length(value=3, unit="meters").to("furlongs")
    with pytest.raises(UnitConversionError, match=r"unknown unit 'parsecs'"):
        convert(1, "parsecs", "meters")
    assert issubclass(UnitConversionError, ValueError)


def test_units_of_another_family_are_refused() -> None:
    with pytest.raises(UnitConversionError, match="unknown length unit 'celsius'"):
        vd.Length(value=3, unit="meters").to("celsius")
    with pytest.raises(UnitConversionError, match="unknown speed unit 'kilometers'"):
        convert(1, "kilometers_per_hour", "kilometers", family="speed")


def test_charge_does_not_become_energy_and_zero_efficiency_has_no_reciprocal() -> None:
    with pytest.raises(UnitConversionError, match=r"ampere_hours.*electric charge.*joules"):
        vd.Energy(value=50, unit="ampere_hours").to("joules")
    assert vd.Energy(value=2, unit="ampere_hours").to("ampere_hours").value == 2
    with pytest.raises(UnitConversionError, match="reciprocal"):
        convert(0, "miles_per_gallon", "liters_per_100_kilometers")
    assert convert(0, "liters_per_100_kilometers", "liters_per_100_kilometers") == 0
