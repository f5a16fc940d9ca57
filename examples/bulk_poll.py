"""Bulk polling job: a CSV of VINs in, JSON Lines of vehicle data out.

    python examples/bulk_poll.py fleet.csv data.jsonl

The CSV needs a ``vin`` column and may have a ``brand`` column (with it, no clearance lookup
is needed). Each output line is ``{"vin", "brand", "ok", "data" | "error"}``; ``data`` is
the body HM sent, written byte for byte. Per-VIN failures are lines, never a crash, so a
rerun can pick up only the failed VINs (``jq -r 'select(.ok|not).vin'``).
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections import Counter
from pathlib import Path

import msgspec

from hm_async import HMClient, Progress, credentials_from_env


class Line(msgspec.Struct, omit_defaults=True):
    vin: str
    brand: str | None
    ok: bool
    data: msgspec.Raw | None = None
    error: str | None = None


def read_vehicles(path: Path) -> list[str | tuple[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    return [(r["vin"].strip(), r["brand"].strip()) if r.get("brand") else r["vin"].strip()
            for r in rows if r.get("vin")]


async def poll_csv(hm: HMClient, source: Path, dest: Path,
                   concurrency: int = 64) -> Counter[str]:
    """Poll every VIN of ``source`` into ``dest``; returns counts by outcome."""
    vehicles = read_vehicles(source)
    progress = Progress(total=len(vehicles))
    encoder = msgspec.json.Encoder()
    outcomes: Counter[str] = Counter()
    with dest.open("wb") as out:
        async for r in hm.poll(vehicles, concurrency=concurrency, progress=progress,
                               keep_raw=True):
            if r.ok and r.raw is not None:
                line = Line(vin=r.vin, brand=r.brand, ok=True, data=msgspec.Raw(r.raw))
                outcomes["ok"] += 1
            else:
                line = Line(vin=r.vin, brand=r.brand, ok=False, error=str(r.error))
                outcomes[type(r.error).__name__] += 1
            out.write(encoder.encode(line) + b"\n")
    return outcomes


async def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: bulk_poll.py VINS.csv OUT.jsonl", file=sys.stderr)
        return 2
    # HM_CLIENT_ID + HM_CLIENT_SECRET (or HM_PRIVATE_KEY_FILE); HM_BASE_URL for the emulator.
    async with HMClient(credentials_from_env(), base_url=os.environ.get("HM_BASE_URL")) as hm:
        outcomes = await poll_csv(hm, Path(argv[0]), Path(argv[1]))
    print(", ".join(f"{k}: {n}" for k, n in outcomes.most_common()), file=sys.stderr)
    return 0 if set(outcomes) <= {"ok"} else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
