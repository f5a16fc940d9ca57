"""The documentation site builds with warnings as errors (so it builds in CI), and the
guide keeps up with the code: every public name is in the API reference, every error class
in the error tree, and the figures the guide quotes are the code's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hm_async
from hm_async._ratelimit import ADAPTIVE_START

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=110, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "WARNING" not in run.stderr, run.stderr[-3000:]
    reference = (site / "reference" / "client" / "index.html").read_text(encoding="utf-8")
    assert "wait_until_settled" in reference  # generated from the docstrings
    assert (site / "guide" / "rate-limits" / "index.html").exists()


def _text(*parts: str) -> str:
    return " ".join((DOCS.joinpath(*parts)).read_text(encoding="utf-8").split())


def test_every_public_name_is_in_the_api_reference() -> None:
    reference = " ".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    missing = [name for name in hm_async.__all__
               if name not in ("__version__", "BRANDS", "ENVIRONMENTS", "Credentials")
               and f"::: hm_async.{name}\n" not in reference]
    assert missing == []


def test_the_error_tree_lists_every_error_class() -> None:
    tree = _text("guide", "errors.md")
    errors = [name for name in hm_async.__all__
              if isinstance(getattr(hm_async, name), type)
              and issubclass(getattr(hm_async, name), hm_async.HMError)]
    assert len(errors) >= 20
    assert [name for name in errors if name not in tree] == []


def test_the_guide_states_what_the_issue_asks_for() -> None:
    install = _text("guide", "install.md")
    assert "pip install /path/to/hm-async" in install and "@ git+https://" in install
    rates = _text("guide", "rate-limits.md")
    assert f"starts at {ADAPTIVE_START:g} requests per second" in rates
    assert "console shows" in rates
    creds = _text("guide", "credentials.md")
    assert "about two per token life" in creds and "half of a token's life" in creds
    logging_page = _text("guide", "logging.md")
    for needle in ("`hm_async`", "`hm_async.webhooks`", "DEBUG", "WARNING", "ERROR",
                   "Nothing at any level contains a secret"):
        assert needle in logging_page, needle
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "docs/" in readme or "mkdocs" in readme
