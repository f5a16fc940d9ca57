"""The README's two commands, CI and the public names stay in step."""

from __future__ import annotations

import re
import types
from pathlib import Path

import hm_async

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)


def test_readme_starts_with_the_demo_and_test_commands() -> None:
    first, second = _readme_commands()[:2]
    assert first.endswith("hm-async demo") and "python3 -m venv" in first
    assert second.endswith("python -m pytest") and "python3 -m venv" in second


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci.splitlines()


def test_public_names_are_exported_and_present() -> None:
    exported = set(hm_async.__all__)
    public = {n for n, v in vars(hm_async).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert exported == public | {"__version__"}
    assert hm_async.RateLimitedError.__module__ == "hm_async"
    for name in ("HMClient", "ClientCredentials", "PrivateKeyCredentials", "HMError"):
        assert name in exported
