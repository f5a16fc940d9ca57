"""What ``VehicleData.freshness()`` costs next to decoding the same answer.

Decodes emulated vehicle-data bodies and walks their timestamps, rounds interleaved, and
prints the walk's time as a share of the decode's (the claim: cheap enough to run on every
polled answer). Run: ``python benchmarks/freshness.py``.
"""

from __future__ import annotations

import statistics
import time

import msgspec

from hm_async.emulator._vehicle_data import VehicleDataSource
from hm_async.models import decode_vehicle_data

ROUNDS = 7
BODIES = 2000


def main() -> None:
    source = VehicleDataSource(failure_fraction=0.05, update_interval=30.0)
    later = time.time() + 86400
    bodies = [msgspec.json.encode(source.payload(f"WBAEMU{i:011d}", "bmw", now=later))
              for i in range(BODIES)]
    decoded = [decode_vehicle_data(b) for b in bodies]
    ratios = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for b in bodies:
            decode_vehicle_data(b)
        t1 = time.perf_counter()
        for d in decoded:
            d.freshness()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    values = sum(d.freshness().values for d in decoded) / len(decoded)
    print(f"{BODIES} answers, {values:.0f} timestamped values each on average")
    print(f"freshness() / decode: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}) over {ROUNDS} interleaved rounds")


if __name__ == "__main__":
    main()
