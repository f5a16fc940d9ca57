"""What idle gaps cost: CPU time of a fixed task done back to back vs with gaps between.

A paced poll does its work in bursts (a tick's grants, then their answers) with the event
loop asleep in between; an unpaced poll does the same work back to back. On some machines
(virtual CPUs that halt when idle, caches other tenants reuse meanwhile) the same Python work
costs much more CPU time right after an idle gap. This script measures that, with nothing
of hm_async involved, so the paced row of ``fanout.py`` can be read against it:

* back to back: a fixed task (three ``json.loads`` of a 3 KB document, about a VIN's worth
  of work) run N times in a row -- the baseline;
* sleep gap: the same task with a ``time.sleep(gap)`` before every ``batch`` tasks;
* spin gap: the same, but the gap is a busy wait (the CPU never idles): only the tasks'
  own CPU time is counted.

If "sleep gap" costs much more than "back to back" while "spin gap" does not, the extra is
the machine's price of idling, not work any code of ours does. Rounds interleave the three
so a noisy neighbour hits them alike; ratio = median of same-round ratios.

Run: ``python benchmarks/idle_tax.py`` (``--repeat``, ``--gap``, ``--batch``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

DOC = json.dumps({"items": [{"x": i, "y": str(i), "z": [i, i + 1]} for i in range(60)]})


def task() -> None:
    for _ in range(3):
        json.loads(DOC)


def back_to_back(n: int, gap: float, batch: int) -> float:  # noqa: ARG001
    started = time.process_time()
    for _ in range(n):
        task()
    return (time.process_time() - started) / n


def sleep_gap(n: int, gap: float, batch: int) -> float:
    started = time.process_time()
    for _ in range(n // batch):
        time.sleep(gap)
        for _ in range(batch):
            task()
    return (time.process_time() - started) / n


def spin_gap(n: int, gap: float, batch: int) -> float:
    spent = 0.0
    for _ in range(n // batch):
        until = time.perf_counter() + gap
        while time.perf_counter() < until:
            pass
        started = time.process_time()
        for _ in range(batch):
            task()
        spent += time.process_time() - started
    return spent / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--tasks", type=int, default=1200, help="tasks per measurement")
    parser.add_argument("--gap", type=float, default=0.005, help="seconds (default 0.005)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 12],
                        help="tasks per gap (default 1 and 12: 12 is a 300 req/s x 8 "
                             "brands poll's grants per 5 ms tick)")
    args = parser.parse_args()
    loops = [("back to back", back_to_back, 1)]
    for batch in args.batch:
        loops.append((f"sleep {args.gap * 1e3:g} ms, then {batch} tasks", sleep_gap, batch))
        loops.append((f"spin {args.gap * 1e3:g} ms, then {batch} tasks", spin_gap, batch))
    rounds: list[list[float]] = [[] for _ in loops]
    for _ in range(args.repeat):
        for i, (_, fn, batch) in enumerate(loops):
            rounds[i].append(fn(args.tasks, args.gap, batch))
    base = rounds[0]
    print(f"CPU time per task, {args.tasks} tasks, {args.repeat} interleaved rounds")
    print(f"{'':34s} {'median µs':>10s} {'ratio':>7s}")
    for (label, _, _), values in zip(loops, rounds, strict=True):
        ratio = statistics.median(a / b for a, b in zip(values, base, strict=True))
        print(f"{label:34s} {statistics.median(values) * 1e6:10.1f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
