"""How old is vehicle data: ``Property.age``, ``VehicleData.freshness/age/property_age``, the
stale marker and the fleet age spread (median, p90, oldest).

Answers are checked against an independent walk of the raw JSON (every ``timestamp`` under a
capability), on hand-written bodies and on the emulator's answers over HTTP.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from hm_async import HMClient
from hm_async._age_stats import Stale, age_stats, format_age, stale_marker
from hm_async.emulator import Emulator, EmulatorConfig
from hm_async.emulator._vehicle_data import VehicleDataSource
from hm_async.models import (
    Freshness,
    decode_streaming_vehicle_data,
    decode_vehicle_data,
)

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def stamp(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


BODY: dict[str, Any] = {
    "request_id": "r1", "vin": "WBAEMU00000000001", "brand": "bmw",
    "diagnostics": {
        "odometer": {"data": {"value": 12000, "unit": "kilometers"}, "timestamp": stamp(5)},
        "tire_pressures": [
            {"data": {"location": "front_left", "pressure": {"value": 2.3, "unit": "bars"}},
             "timestamp": stamp(30)},
            {"data": {"location": "front_right", "pressure": {"value": 2.4, "unit": "bars"}},
             "timestamp": stamp(2)},
        ],
        "speed": {"failure": {"reason": "unknown", "description": "no"}, "timestamp": stamp(1)},
        "mileage": {"data": {"value": 1, "unit": "kilometers"}},  # no timestamp
    },
    "ignition": {"state": {"data": "lock", "timestamp": "2026-12-02T11:30:00+01:00"}},
    "charging": {"battery_level": {"data": 0.5, "timestamp": stamp(72)}},
}


def raw_timestamps(body: dict[str, Any]) -> dict[str, list[datetime]]:
    """Every property timestamp of a raw body, by ``capability.property``."""
    out: dict[str, list[datetime]] = {}
    for cap, props in body.items():
        if not isinstance(props, dict):
            continue
        for prop, value in props.items():
            for item in value if isinstance(value, list) else [value]:
                if "timestamp" in item:
                    ts = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
                    out.setdefault(f"{cap}.{prop}", []).append(ts)
    return out


def test_newest_oldest_and_which_properties() -> None:
    data = decode_vehicle_data(json.dumps(BODY))
    fresh = data.freshness()
    assert fresh == Freshness(
        newest=NOW - timedelta(hours=1), oldest=NOW - timedelta(hours=72),
        newest_property="diagnostics.speed", oldest_property="charging.battery_level",
        values=6,
    )
    assert data.newest_timestamp() == fresh.newest and data.oldest_timestamp() == fresh.oldest
    assert data.age(NOW) == timedelta(hours=1) == fresh.age(NOW)
    # A +01:00 offset is a real instant: 11:30+01:00 is 10:30 UTC, 1 h 30 min before NOW.
    assert data.property_age("ignition.state", NOW) == timedelta(hours=1, minutes=30)


def test_property_age_single_multi_missing_and_typos() -> None:
    data = decode_vehicle_data(json.dumps(BODY))
    assert data.diagnostics and data.diagnostics.odometer
    assert data.diagnostics.odometer.age(NOW) == timedelta(hours=5)
    assert data.property_age("diagnostics.odometer", NOW) == timedelta(hours=5)
    # Multi-instance: the newest instance counts.
    assert data.property_age("diagnostics.tire_pressures", NOW) == timedelta(hours=2)
    assert data.diagnostics.tire_pressures[0].age(NOW) == timedelta(hours=30)
    assert data.property_age("diagnostics.mileage", NOW) is None  # value without timestamp
    assert data.property_age("diagnostics.fuel_level", NOW) is None  # not in the answer
    assert data.property_age("doors.locks", NOW) is None  # capability not in the answer
    for typo in ("diagnostic.odometer", "diagnostics.odometr", "diagnostics", "vin.x"):
        with pytest.raises(ValueError):
            data.property_age(typo, NOW)
    # Without ``now`` the current time is used.
    age = data.diagnostics.odometer.age()
    assert age is not None and age > datetime.now(timezone.utc) - NOW


def test_no_timestamps_and_naive_timestamps() -> None:
    empty = decode_vehicle_data(b'{"vin": "WBAEMU00000000001"}')
    assert empty.freshness() == Freshness(None, None, None, None, 0)
    assert empty.age(NOW) is None and empty.newest_timestamp() is None
    naive = decode_vehicle_data(json.dumps({"diagnostics": {"odometer": {
        "data": {"value": 1, "unit": "kilometers"}, "timestamp": "2026-12-02T10:00:00"}}}))
    assert naive.age(NOW) == timedelta(hours=2)  # taken as UTC, no TypeError


def test_timestamps_by_path_names_values_as_watch_and_the_stream_do() -> None:
    # One walk serves hm.watch (single values unindexed: WatchResult.changed names them so)
    # and the stream's property_timestamps (every value indexed, as pushed lists are).
    data = decode_vehicle_data(json.dumps(BODY))
    watch_keys = data.timestamps_by_path()
    assert set(watch_keys) == {
        "diagnostics.odometer", "diagnostics.tire_pressures[0]",
        "diagnostics.tire_pressures[1]", "diagnostics.speed", "ignition.state",
        "charging.battery_level"}
    assert watch_keys["diagnostics.tire_pressures[1]"] == NOW - timedelta(hours=2)
    stream_keys = data.timestamps_by_path(index_single=True)
    assert set(stream_keys) == {k if k.endswith("]") else k + "[0]" for k in watch_keys}
    assert list(stream_keys.values()) == list(watch_keys.values())


def test_streaming_shape_has_the_same_methods() -> None:
    body = {"diagnostics": {"odometer": [{"data": {"value": 1, "unit": "kilometers"},
                                          "timestamp": stamp(3)},
                                         {"data": {"value": 2, "unit": "kilometers"},
                                          "timestamp": stamp(1)}]}}
    data = decode_streaming_vehicle_data(json.dumps(body))
    assert data.age(NOW) == timedelta(hours=1)
    assert data.freshness().oldest == NOW - timedelta(hours=3)
    assert data.property_age("diagnostics.odometer", NOW) == timedelta(hours=1)


def test_agrees_with_the_raw_json_on_many_emulated_answers() -> None:
    rng = random.Random(7)
    source = VehicleDataSource(failure_fraction=0.2, update_interval=30.0)
    later = time.time() + 7 * 86400  # a week on: values that change rarely got older stamps
    spreads = 0
    for i in range(60):
        vin = f"WBAEMU{i:011d}"
        payload = source.payload(vin, "bmw", now=later + rng.uniform(0, 3600))
        raw = raw_timestamps(payload)
        data = decode_vehicle_data(msgspec.json.encode(payload))
        every = [ts for stamps in raw.values() for ts in stamps]
        fresh = data.freshness()
        assert fresh.newest == max(every) and fresh.oldest == min(every)
        assert fresh.values == len(every)
        assert fresh.newest_property is not None
        assert max(raw[fresh.newest_property]) == fresh.newest
        for path, stamps in raw.items():
            assert data.property_age(path, NOW) == NOW - max(stamps), path
        spreads += fresh.newest != fresh.oldest
    assert spreads > 30  # the check above saw answers whose properties differ in age


async def test_age_of_answers_fetched_over_http(emulator_factory: Any) -> None:
    emu: Emulator = await emulator_factory(EmulatorConfig(update_interval=0.2, vehicles=5))
    async with HMClient(emu.client_credentials, base_url=emu.url) as hm:
        for vehicle in emu.vehicles:
            raw = json.loads(await hm.vehicle_data_raw(vehicle.vin))
            data = decode_vehicle_data(json.dumps(raw))
            newest = max(ts for stamps in raw_timestamps(raw).values() for ts in stamps)
            assert data.newest_timestamp() == newest
            age = data.age()
            assert age is not None and timedelta(0) <= age < timedelta(seconds=30)


# -- fleet level: stale marker and age spread ------------------------------------------------
def test_stale_marker_flags_only_answers_older_than_max_age() -> None:
    data = decode_vehicle_data(json.dumps(BODY))  # newest property: 1 h old
    assert stale_marker(data, timedelta(hours=2), NOW) is None
    assert stale_marker(data, 3600, NOW) is None  # exactly max_age is not stale
    assert stale_marker(data, 3599, NOW) == Stale(
        newest=NOW - timedelta(hours=1), age=timedelta(hours=1),
        max_age=timedelta(seconds=3599))
    none = decode_vehicle_data(b"{}")
    assert stale_marker(none, 10**9, NOW) == Stale(None, None, timedelta(seconds=10**9))
    with pytest.raises(ValueError):
        stale_marker(data, -1, NOW)


def test_age_stats_median_p90_oldest() -> None:
    minutes = [timedelta(minutes=m) for m in range(1, 101)]  # 1..100 minutes
    random.Random(3).shuffle(minutes)
    stats = age_stats([*minutes, None, None])
    assert (stats.count, stats.unknown) == (100, 2)
    assert stats.median == timedelta(minutes=50, seconds=30)
    assert stats.p90 == timedelta(minutes=90) and stats.oldest == timedelta(minutes=100)
    assert stats.describe() == ("median 50m 30s · p90 1h 30m · oldest 1h 40m "
                                "(100 vehicles, 2 without timestamps)")
    one = age_stats([timedelta(days=3, hours=2)])
    assert one.median == one.p90 == one.oldest == timedelta(days=3, hours=2)
    assert one.describe() == "median 3d 02h · p90 3d 02h · oldest 3d 02h (1 vehicles)"
    odd = age_stats([timedelta(seconds=s) for s in (5, 1, 9)])
    assert odd.median == timedelta(seconds=5) and odd.p90 == timedelta(seconds=9)
    assert age_stats([None]).describe() == "no timestamps (1 without)"
    assert age_stats([]).median is None


def test_format_age() -> None:
    assert [format_age(timedelta(seconds=s)) for s in (0, 42, 425, 7500, 266400, -90)] == [
        "0s", "42s", "7m 05s", "2h 05m", "3d 02h", "-1m 30s"]
