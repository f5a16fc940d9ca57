"""Instructions per VIN under callgrind: a measure that idle gaps and noisy neighbours do not move.

CPU time on a shared virtual machine swings by 10% between runs, and a paced poll is charged
for every idle wake-up of its process (``idle_tax.py``). Callgrind counts the instructions
the client process executes, which neither affects. Each loop runs twice in a child process
under ``valgrind --tool=callgrind`` (nginx, or the canned server, in a process of its own),
with ``--small`` and ``--large`` VINs; the difference divided by the difference in VINs is
the cost of one more VIN, without start-up, imports and connection set-up.

Rows: the bare aiohttp loop, ``hm.poll`` unpaced, and ``hm.poll`` paced at ``--paced-rate``
per brand (callgrind runs the client about 50x slower, so the rate must stay well below
what the client reaches under it: at 40/s per brand a tick grants about one request per
brand, a harder case for the limiter than the 300/s of ``fanout.py``).

Run: ``python benchmarks/instructions.py`` (needs ``valgrind``; takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from fanout import static_server

CHILD = r'''
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import fanout
info = json.loads(sys.argv[2])

class Remote(fanout.Server):
    def __init__(self) -> None:  # the server of the parent process
        self.url = info["url"]
        self.client_id, self.client_secret = info["client_id"], info["client_secret"]

loops = {"bare": fanout.bare_aiohttp, "hm": fanout.hm_poll,
         "paced": fanout.hm_poll_paced(float(sys.argv[5]))}
vins = fanout.cycle([tuple(v) for v in info["vehicles"]], int(sys.argv[4]))
asyncio.run(loops[sys.argv[3]](Remote(), vins, 50))
'''


def instructions(info: dict[str, object], loop: str, vins: int, rate: float) -> int:
    """Instructions the client process executed polling ``vins`` VINs with ``loop``."""
    with tempfile.TemporaryDirectory(prefix="hm-bench-cg-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-c", CHILD, os.path.dirname(os.path.abspath(__file__)), json.dumps(info), loop,
             str(vins), str(rate)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=1500)
    parser.add_argument("--paced-rate", type=float, default=40.0)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    server, name = static_server()
    try:
        info = {"url": server.url, "client_id": server.client_id,
                "client_secret": server.client_secret, "vehicles": server.vehicles}
        per_vin: dict[str, float] = {}
        for loop in ("bare", "hm", "paced"):
            small = instructions(info, loop, args.small, args.paced_rate)
            large = instructions(info, loop, args.large, args.paced_rate)
            per_vin[loop] = (large - small) / (args.large - args.small)
        print(f"server: {name}; instructions per VIN (callgrind, {args.large} - {args.small} "
              f"VINs)")
        paced = f"hm.poll at {args.paced_rate:g}/s per brand"
        print(f"{'bare aiohttp loop':30s} {per_vin['bare'] / 1e3:8.1f} k   1.00")
        print(f"{'hm.poll unpaced':30s} {per_vin['hm'] / 1e3:8.1f} k   "
              f"{per_vin['hm'] / per_vin['bare']:.2f}x the bare loop")
        print(f"{paced:30s} {per_vin['paced'] / 1e3:8.1f} k   "
              f"{per_vin['paced'] / per_vin['hm']:.2f}x unpaced")
    finally:
        server.close()


if __name__ == "__main__":
    main()
