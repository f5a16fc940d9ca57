"""Task runner: `nox -s lint typecheck tests` must pass; `bench` and `soak` measure."""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The suite CI runs (the soak test in its short form)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The full fault-injection soak: 5,000 VINs, 10% faults, 429 storms, 2 s tokens."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "soak", "tests/test_soak.py", "-v",
                env={"HM_SOAK_FULL": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy", "hm_async")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark; each prints ratios against a baseline measured in the same run."""
    session.install("-e", ".[dev]")
    for script in ("decode.py", "token_fastpath.py", "ratelimit.py", "fanout.py"):
        session.run("python", f"benchmarks/{script}", *session.posargs)
    session.run("python", "benchmarks/idle_tax.py")  # how to read fanout.py's paced row
    session.run("python", "benchmarks/pacing_tick.py")
    session.run("python", "benchmarks/pacing_cost.py")  # pacing's cost in our own code
    if shutil.which("valgrind"):  # instruction counts: immune to a noisy machine
        session.run("python", "benchmarks/instructions.py")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: a 1,000-VIN fleet poll against the built-in emulator."""
    session.install("-e", ".[cli]")
    session.run("hm-async", "demo")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors (`mkdocs serve` to read it)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
