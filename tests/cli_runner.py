"""Running the installed ``hm-async`` entry point in a subprocess, for CLI tests.

The emulator a test talks to runs in the test's own event loop, so the subprocess is awaited
with asyncio (the emulator keeps serving meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from hm_async.emulator import Emulator

HM_ASYNC = Path(sys.executable).parent / "hm-async"


class Run:
    """Exit code, stdout bytes and stderr text of one finished run."""

    def __init__(self, code: int, out: bytes, err: bytes) -> None:
        self.code, self.out, self.err = code, out, err.decode(errors="replace")

    @property
    def text(self) -> str:
        return self.out.decode()

    def json(self) -> object:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Run(code={self.code}, out={self.out[:500]!r}, err={self.err[-1500:]!r})"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
    env.update(COLUMNS="160", **extra)
    return env


async def start(*args: str, env: dict[str, str] | None = None,
                stdin: int | None = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(HM_ASYNC), *args, stdin=stdin, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env if env is not None else clean_env())


async def cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
              timeout: float = 60) -> Run:
    proc = await start(*args, env=env)
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout)
    assert proc.returncode is not None
    return Run(proc.returncode, out, err)


def emu_args(emu: Emulator) -> list[str]:
    return ["--base-url", emu.url, "--client-id", emu.client_id]


def emu_env(emu: Emulator) -> dict[str, str]:
    return clean_env(HM_CLIENT_SECRET=emu.client_secret)


def one_error_line(run: Run) -> bool:
    """stderr is exactly one line and holds no traceback."""
    return run.err.count("\n") == 1 and "Traceback" not in run.err
