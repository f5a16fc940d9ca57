"""``python -m hm_async.emulator``: the same command as ``hm-async emulator``.

The options, help and behaviour live in :mod:`hm_async._cli_emulator` (one definition for
both spellings); it needs the ``cli`` extra, like every ``hm-async`` command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..cli import main as cli_main

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator command with ``argv``; return the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return cli_main(["emulator", *args])


if __name__ == "__main__":
    raise SystemExit(main())
