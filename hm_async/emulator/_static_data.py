"""The emulator's Vehicle Static Data API: spec-shaped answers derived from the VIN alone.

``GET /v1/vehicle-static-data/{vin}/data`` and ``POST .../{vin}/valuation`` answer the
same for the same VIN (and the same valuation inputs) in every run: the make comes from the
VIN's WMI (its first three characters, as for the emulated fleet) or, for a WMI the table does
not know, from a hash of the VIN, and every varying number from that hash. DAT sends numbers
as strings; so does this. The valuation refuses bad input with the spec's 422 shape,
``{"errors": [{"detail": "can't be blank", "source": "odometer"}], "request_id"}``.

Pure functions of their input: the server adds routing, the bearer check and faults.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["static_data_of", "valuation_of"]


@dataclass(frozen=True)
class _Make:
    name: str
    dat_id: str
    model: str
    model_id: str
    sub_model: str
    body: str
    fuel: tuple[str, str, str]  # code, name, category
    kw: int
    capacity: int
    price_net: int  # EUR, original list price without VAT
    drive: str


#: One plausible model per make; the VIN hash varies the numbers around it.
_MAKES: dict[str, _Make] = {
    "bmw": _Make("BMW", "130", "3 Series (G20)(2018->)", "482", "320d", "Saloon",
                 ("D", "Diesel", "D"), 140, 1995, 38500, "RWD"),
    "mercedes-benz": _Make("Mercedes-Benz", "570", "C-Class (W206)(2021->)", "611", "C 200",
                           "Saloon", ("B", "Petrol", "B"), 150, 1496, 41200, "RWD"),
    "volkswagen": _Make("VW", "590", "Golf VIII (CD1)(2019->)", "447", "Life 1.5 eTSI",
                        "Hatchback", ("B", "Petrol", "B"), 110, 1498, 27900, "FWD"),
    "ford": _Make("Ford", "270", "Focus (DEH)(2018->)", "372", "Titanium", "Estate",
                  ("D", "Diesel", "D"), 88, 1499, 24300, "FWD"),
    "renault": _Make("Renault", "500", "Megane E-Tech (2022->)", "699", "Techno EV60",
                     "Hatchback", ("E", "Electric", "E"), 160, 0, 37100, "FWD"),
    "volvo-cars": _Make("Volvo", "595", "XC40 (X)(2017->)", "366", "B4 Plus", "SUV",
                        ("B", "Petrol", "B"), 145, 1969, 39900, "FWD"),
    "peugeot": _Make("Peugeot", "490", "308 (P5)(2021->)", "650", "Allure 1.2 PureTech",
                     "Hatchback", ("B", "Petrol", "B"), 96, 1199, 26100, "FWD"),
    "toyota": _Make("Toyota", "580", "Corolla (E21)(2019->)", "521", "1.8 Hybrid Comfort",
                    "Estate", ("H", "Hybrid petrol", "B"), 103, 1798, 28600, "FWD"),
    "kia": _Make("Kia", "285", "Niro (SG2)(2022->)", "719", "EV Inspiration", "SUV",
                 ("E", "Electric", "E"), 150, 0, 40300, "FWD"),
    "tesla": _Make("Tesla", "605", "Model 3 (2017->)", "505", "Long Range AWD", "Saloon",
                   ("E", "Electric", "E"), 324, 0, 42900, "AWD"),
}
#: WMI -> make key (the emulated fleet's WMIs and a few real ones).
_WMI = {
    "WBA": "bmw", "WDD": "mercedes-benz", "WVW": "volkswagen", "WF0": "ford", "VF1": "renault",
    "YV1": "volvo-cars", "VF3": "peugeot", "JTD": "toyota", "KNA": "kia", "5YJ": "tesla",
}
_VAT = {"DE": 19, "FR": 20, "NL": 21, "IT": 22, "ES": 21, "AT": 20, "BE": 21, "GB": 20}
#: The emulator's valuations are all made in the first half of 2026 (a fixed reference
#: keeps answers stable); a vehicle's age is counted up to that day.
_VALUATION_EPOCH = datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CENT = Decimal("0.01")


def _digest(vin: str) -> bytes:
    return hashlib.blake2b(vin.encode(), digest_size=16, person=b"hm-static").digest()


def _make(vin: str, h: bytes) -> _Make:
    key = _WMI.get(vin[:3].upper())
    if key is None:
        keys = sorted(_MAKES)
        key = keys[h[0] % len(keys)]
    return _MAKES[key]


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _original_net(make: _Make, h: bytes) -> int:
    return make.price_net + (h[1] % 40) * 100  # options vary the list price a little


def static_data_of(vin: str) -> dict[str, Any]:
    """The ``VehicleStaticDataDataResponse`` body for ``vin``."""
    h = _digest(vin)
    m = _make(vin, h)
    electric = m.fuel[0] == "E"
    net = _original_net(m, h)
    length = 4200 + h[2] * 3
    consumption = Decimal(45 + h[3] % 25) / 10
    return {"vehicle": {
        "manufacturer": {
            "brand": {"id": m.dat_id, "name": m.name},
            "container": {"id": f"DE{h[4] % 100:03d}", "name": f"DE - {m.model}"},
            "kba_numbers": [f"{1000 + int.from_bytes(h[5:7], 'big') % 9000}/{vin[3:6]}"],
            "model": {"id": m.model_id, "name": m.model},
            "product_group": {"code": "5021", "name": m.body},
            "rental_car_class": str(3 + h[7] % 6),
            "sales_description": f"{m.model.split(' (')[0]} {m.sub_model}",
            "sub_model": {"id": str(h[8] % 40 + 1), "name": m.sub_model,
                          "variant": str(h[9] % 20 + 1)},
            "vehicle_type": {"id": "1", "name": "Passenger car, SUV, small van"},
        },
        "specs": {
            "body": {"doors": "5" if m.body != "Saloon" else "4", "seats": "5",
                     "structure": {"description": m.body, "type": m.body},
                     "trunk": {"size": {"max": str(1200 + h[10] * 3),
                                        "standard": str(350 + h[10])}}},
            "dimensions": {"height": str(1420 + h[11] % 250), "length": str(length),
                           "wheelbase": str(2600 + h[12] % 250),
                           "width": {"mirrors": "2030", "standard": "1820"}},
            "drivetrain": {"axles": {"driven": "2" if m.drive == "AWD" else "1", "total": "2"},
                           "code": {"FWD": "FA", "RWD": "RA", "AWD": "AA"}[m.drive],
                           "transmission": {"gears": "1" if electric else "8",
                                            "type": "automatic"},
                           "type": m.drive},
            "emissions": {"class": {"code": "E6D", "description": "Euro 6d",
                                    "efficiency": {"nedc": "A+" if electric else "B"}},
                          "co2": {"nedc": "0" if electric else str(95 + h[13] % 60)}},
            "engine": {"construction": {"capacity": str(m.capacity), "cycle": "4",
                                        "cylinders": {"arrangement": "R",
                                                      "count": "0" if electric else "4"}},
                       "output": {"power": {"hp": str(round(m.kw * 1.35962)), "kw": str(m.kw),
                                            "max": {"at_rpm": str(3500 + h[14] % 20 * 100)}},
                                  "torque": {"max": {"at_rpm": "1750"},
                                             "nm": str(m.kw * 2 + 40)}}},
            "fuel": {"capacity": "0" if electric else str(45 + h[15] % 25),
                     "consumption": {"wltp": {"combined": str(consumption)}},
                     "type": {"category": m.fuel[2], "code": m.fuel[0], "name": m.fuel[1]}},
            "performance": {"acceleration": str(Decimal(60 + h[3] % 50) / 10),
                            "max_speed": str(170 + h[4] % 80)},
            "weight": {"total": str(1900 + h[5] % 400), "unloaded": str(1350 + h[6] % 400)},
            "wheels": {"tires": {"size": {"front": "225/45R17", "rear": "225/45R17"}}},
        },
        "valuation": {"price": {"original": {
            "gross": _money(Decimal(net) * Decimal("1.19")), "net": str(net), "vat_rate": "19",
        }}},
    }}


def _check(body: object) -> list[dict[str, str]]:
    """The spec's 422 errors for a valuation body; empty when it is fine."""
    if not isinstance(body, dict):
        body = {}
    errors: list[dict[str, str]] = []
    odometer = body.get("odometer")
    if odometer is None or odometer == "":
        errors.append({"detail": "can't be blank", "source": "odometer"})
    elif isinstance(odometer, bool) or not isinstance(odometer, (int, float)) or odometer < 0:
        errors.append({"detail": "is invalid", "source": "odometer"})
    reg = body.get("registration_date")
    if reg is None or reg == "":
        errors.append({"detail": "can't be blank", "source": "registration_date"})
    elif not isinstance(reg, str) or not _DATE.fullmatch(reg) or _date(reg) is None:
        errors.append({"detail": "has invalid format", "source": "registration_date"})
    country = body.get("country_code")
    if country is None or country == "":
        errors.append({"detail": "can't be blank", "source": "country_code"})
    elif not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        errors.append({"detail": "has invalid format", "source": "country_code"})
    return errors


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def valuation_of(vin: str, body: object) -> tuple[int, dict[str, Any]]:
    """(status, body) of a valuation: 200 ``VehicleStaticValuationDataResponse`` or 422."""
    errors = _check(body)
    if errors:
        return 422, {"errors": errors}
    assert isinstance(body, dict)
    h = _digest(vin)
    m = _make(vin, h)
    made_at = _VALUATION_EPOCH + timedelta(days=h[0] % 180, seconds=h[1] * 97, milliseconds=h[2])
    registered = _date(body["registration_date"])
    assert registered is not None
    years = max(0.0, (made_at.date() - registered).days / 365.25)
    km = Decimal(str(body["odometer"]))
    vat = Decimal(_VAT.get(body["country_code"], 20)) / 100
    original = Decimal(_original_net(m, h))
    base_1 = original * Decimal(str(round(0.86 ** years, 6)))
    reference_km = Decimal(round(15000 * years))
    odometer_correction = (reference_km - km) * Decimal("0.04")
    base_2 = max(base_1 + odometer_correction, original * Decimal("0.05"))
    margin = base_2 * Decimal("0.12")
    net, gross = base_2, base_2 * (1 + vat)
    pair = {"net": _money(net), "gross": _money(gross)}
    return 200, {
        "valuation": {
            "price": {
                "base": {"1": _money(base_1), "2": _money(base_2), "3": _money(base_2)},
                "purchase": {"net": _money(net - margin), "gross": _money((net - margin)
                                                                          * (1 + vat))},
                "orginal": {"net": str(original), "gross": _money(original * (1 + vat))},
                "sales": pair,
                "equipment": {"original": "0", "value": "0", "value_type": "calculated value"},
                "tires": {"default": "254.00"},
                "margin": {"net": _money(margin), "gross": _money(margin * (1 + vat))},
                "initial_registration_correction": "0.00",
            },
            "condition": {
                "correction_factor_percentage": "100",
                "correction_amount": {"net": "0.00", "gross": "0.00"},
                "number_of_owners": "1",
                "sub_total": {"1": pair, "2": pair},
            },
            "odometer": {"reference": str(reference_km), "correction": _money(odometer_correction)},
            "meta": {
                "last_valuation_date": made_at.isoformat(timespec="milliseconds"),
                "residual_value_model": "dat",
                "type": "valuation",
            },
        },
        "vehicle": {
            "manufacturer": {
                "brand": m.name,
                "sub_model": m.sub_model,
                "type_group_name": m.model.split(" (")[0],
                "model": m.model,
                "sales_description": f"{m.model.split(' (')[0]} {m.sub_model}",
                "vehicle_main_type_key": m.model_id,
                "vehicle_sub_type_key": str(h[8] % 90 + 1),
                "vehicle_type_key": "1",
            },
            "equipment": {
                "series_equipment": [
                    {"description": "antilock braking system (ABS)", "positions": [],
                     "manufacturer_id": ""},
                    {"description": "air-conditioning system automatic", "positions": [],
                     "manufacturer_id": f"{h[9] % 900 + 100}"},
                ],
                "special_equipment": [
                    {"description": "Business package", "manufacturer_id": f"{h[10] % 9}BD",
                     "positions": ["navigation system", "interior mirror with automatic "
                                   "dimming"]},
                ],
            },
        },
    }
