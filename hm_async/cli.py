"""``hm-async``: the command-line face of hm_async (also ``python -m hm_async``).

Commands: ``demo`` (poll a 1,000-vehicle emulated fleet, no account needed), ``token``,
``eligibility VIN BRAND``, ``clearance request|get|list|delete``, ``data VIN``, ``poll``
(VINs in, JSON Lines out, progress and summary on stderr) and ``emulator``. Run
``hm-async COMMAND --help`` for options and examples.

Exit codes (stable; scripts may rely on them):

    0    ok
    1    partial failure: some VINs failed (poll), or HM refused some vehicles (clearance)
    2    bad usage: unknown option, malformed VIN or brand, unreadable input file, port in use
    3    authentication or credential failure: missing or malformed credentials, token refused
    4    any other API or network failure
    5    the output could not be written (disk full, I/O error)
    70   internal error (a bug; the one-line message says what to report)
    130  interrupted by Ctrl-C or SIGTERM (what was written is complete)
    141  the reader of the output closed the pipe (``hm-async poll vins.txt | head -1``)

Global options (credentials, ``--base-url``, ``-v``) may come before or after the command:
``hm-async data VIN --credentials f.json`` works like ``hm-async --credentials f.json data
VIN``.

The commands need the ``cli`` extra (typer and rich), installed with
``pip install 'hm-async[cli]'``; this module imports them only inside :func:`main`, so the
library itself never depends on them.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Sequence

__all__ = ["main"]

_CLI_MODULES = ("typer", "rich", "click", "shellingham")
#: Global options that take a value, and the flag; see :func:`hoist_global_options`.
_GLOBAL_WITH_VALUE = frozenset({"--client-id", "--client-secret", "--private-key-file",
                                "--key-id", "--credentials", "--environment", "--base-url"})
_GLOBAL_FLAG = re.compile(r"-v+|--verbose")
#: Commands with options of their own that share a global option's name.
_OWN_OPTIONS = frozenset({"emulator", "demo"})


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move global options written after the command in front of it.

    ``hm-async data VIN --credentials f.json`` is how people type it; click only takes
    group options before the command. Commands whose own options share those names
    (``emulator --client-id``) are left alone, and so is everything after ``--``.
    """
    args = list(args)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        takes_value = args[i] in _GLOBAL_WITH_VALUE
        i += 2 if takes_value else 1
    if i >= len(args) or args[i] in _OWN_OPTIONS or args[i] == "--":
        return args
    head, command, rest = args[:i], args[i], args[i + 1:]
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        arg = rest[j]
        name = arg.split("=", 1)[0]
        if arg == "--":
            kept.extend(rest[j:])
            break
        if name in _GLOBAL_WITH_VALUE and ("=" in arg or j + 1 < len(rest)):
            width = 1 if "=" in arg else 2
            moved.extend(rest[j:j + width])
            j += width
            continue
        if _GLOBAL_FLAG.fullmatch(arg):
            moved.append(arg)
        else:
            kept.append(arg)
        j += 1
    return head + moved + [command] + kept


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hm-async`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Nothing escapes as a traceback: expected failures are worded by the commands; anything
    else is one line with exit code 70, since it is a bug to report.
    """
    try:
        from ._cli_app import command
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _CLI_MODULES:
            raise
        sys.stderr.write(
            f"hm-async: the command-line tool needs the 'cli' extra ({exc.name} is missing): "
            "pip install 'hm-async[cli]'\n")
        return 2
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        command().main(args=args, prog_name="hm-async", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("hm-async: interrupted\n")
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.stderr.write("hm-async: cannot write stdout: the reader closed the pipe\n")
        return 141
    except Exception as exc:  # a bug: one line, not a traceback with local variables
        sys.stderr.write(f"hm-async: internal error: {type(exc).__name__}: {exc} "
                         f"(please report this)\n")
        return 70
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
