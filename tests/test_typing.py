"""HMClient.poll and HMClient.watch declare every keyword, so a type checker catches typos
(issue 13, point 9): mypy is run on a small program using them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SNIPPET = '''
from hm_async import HMClient, Progress


async def main(hm: HMClient) -> None:
    async for r in hm.poll(["WBA12345678901234"], concurency=8):
        print(r.vin)
    async for w in hm.watch(["WBA12345678901234"], every=1.0, round=2):
        print(w.changed)
    async for r in hm.poll(42):
        print(r.vin)
    async for r in hm.poll([("WBA12345678901234", "bmw")], concurrency=8,
                           progress=Progress(), keep_raw=True):
        print(r.raw)
    async for w in hm.watch(["WBA12345678901234"], every=1.0, rounds=2, concurrency=4,
                            include_errors=True):
        print(w.round)
    hm.with_options(timeout=None, max_retries=0)
'''


def test_misspelled_keywords_and_wrong_inputs_are_type_errors(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(SNIPPET))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary",
         "--hide-error-context", "--no-pretty", str(program)],
        cwd=tmp_path, capture_output=True, text=True, timeout=110)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(errors) == 3, errors  # the correct calls (lines 12 on) type-check cleanly
    assert 'program.py:6: error: Unexpected keyword argument "concurency" for "poll"' in (
        errors[0]), errors
    assert 'program.py:8: error: Unexpected keyword argument "round" for "watch"' in (
        errors[1]), errors
    assert 'program.py:10: error: Argument 1 to "poll" of "HMClient" has incompatible type ' \
        '"int"' in errors[2], errors
