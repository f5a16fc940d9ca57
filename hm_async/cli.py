"""``hm-async``: the command-line face of hm_async (also ``python -m hm_async``).

Commands: ``demo`` (poll a 1,000-vehicle emulated fleet, no account needed), ``token``,
``eligibility VIN BRAND``, ``clearance request|get|list|delete``, ``data VIN``, ``poll``
(VINs in, JSON Lines out, progress and summary on stderr) and ``emulator``. Run
``hm-async COMMAND --help`` for options and examples.

Exit codes (stable; scripts may rely on them):

    0  ok
    1  partial failure: some VINs failed (poll), or HM refused some vehicles (clearance request)
    2  bad usage: unknown option, malformed VIN or brand, unreadable input file
    3  authentication or credential failure: missing or malformed credentials, token refused
    4  any other API or network failure

The commands need the ``cli`` extra (typer and rich), installed with
``pip install 'hm-async[cli]'``; this module imports them only inside :func:`main`, so the
library itself never depends on them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_CLI_MODULES = ("typer", "rich", "click", "shellingham")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hm-async`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        from ._cli_app import app
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _CLI_MODULES:
            raise
        sys.stderr.write(
            f"hm-async: the command-line tool needs the 'cli' extra ({exc.name} is missing): "
            "pip install 'hm-async[cli]'\n")
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="hm-async")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
