"""What ``RateLimits(pacing_tick=)`` does to a paced poll's CPU: one row per tick.

``fanout.py`` measures a paced poll among eight other loops per round; on a noisy shared
machine the loops around a row move it too. This script runs only the unpaced poll and the
same poll paced at ``--paced-rate`` per brand with each tick, interleaved round by round,
and prints each paced row's CPU per VIN over the unpaced poll's in the same round (median
over rounds) and its wall time (the throughput must not change with the tick).

Run: ``python benchmarks/pacing_tick.py`` (``--ticks 0.02,0.1,0.25 --repeat 9``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from fanout import (
    Loop,
    cpu_per_vin,
    cycle,
    hm_poll,
    hm_poll_paced,
    same_round_ratio,
    static_server,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", default="0.02,0.1,0.25")
    parser.add_argument("--paced-rate", type=float, default=300.0)
    parser.add_argument("--vins", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    ticks = [float(t) for t in args.ticks.split(",")]
    server, name = static_server()
    try:
        vins = cycle(server.vehicles, args.vins)
        asyncio.run(hm_poll(server, vins[:200], args.concurrency))  # warm up both sides
        loops: dict[str, Loop] = {"unpaced": hm_poll}
        loops.update({f"pacing_tick={t:g} s": hm_poll_paced(args.paced_rate, t) for t in ticks})
        wall: list[list[float]] = []
        rounds = cpu_per_vin(list(loops.values()), server, vins, args.concurrency,
                             args.repeat, wall=wall)
        cpu = dict(zip(loops, rounds, strict=True))
        walls = dict(zip(loops, wall, strict=True))
        print(f"server: {name}; {args.vins} VINs, {args.paced_rate:g} req/s per brand; ratio = "
              f"median over {args.repeat} rounds of the same-round CPU ratio to unpaced")
        print(f"{'hm.poll':24s} {'best µs':>8s} {'ratio':>7s} {'wall s':>7s}")
        for label in loops:
            print(f"{label:24s} {min(cpu[label]) * 1e6:8.1f} "
                  f"{same_round_ratio(cpu[label], cpu['unpaced']):7.2f} "
                  f"{statistics.median(walls[label]):7.2f}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
