"""Data flows one way: no module imports from a layer above it, and no import cycles.

Every ``import`` of every hm_async module is read with ``ast`` -- at module level, inside
functions (a lazy import that dodges a cycle is still a cycle) and under ``TYPE_CHECKING``
(a type that points upward is an upward dependency) -- and checked against ``LAYERS``,
the README's module map as data. Only imports of hm_async's own modules count: third-party
imports (aiohttp, typer, ...) are not part of the flow.

A new module must be placed in ``LAYERS``: the test fails on a module it cannot place.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hm_async"

#: Lowest first. A module may import modules of its own layer (acyclically) and of layers
#: below. Names are module names relative to ``hm_async`` (fnmatch patterns allowed).
LAYERS: list[tuple[str, list[str]]] = [
    ("foundations: errors, the answer and token types, VINs and brands", [
        "_version", "_errors", "_response", "_access_token", "_vehicles", "_slots"]),
    ("configuration, pure policy, credentials, decoding, models, seams", [
        "_config", "_retry", "_metering", "_decode", "_limiter", "_credentials", "_shard",
        "_events",
        "models", "models.*"]),
    ("the network-error seam and HTTP/1.1 framing", [
        "_network_errors", "_h1_parser", "_h1_proxy"]),
    ("lanes (one attempt each), the in-process limiter, the token store", [
        "_h1_pool", "_aiohttp_lane", "_ratelimit", "_token_store"]),
    ("the token provider (its own small loop over the aiohttp lane)", [
        "_tokens"]),
    ("the policy loop: retries, budget, 401 replay, limiter, metering", [
        "_transport"]),
    ("resources: what a caller asks for, sent through a Requester", [
        "_requester", "_vehicle_data", "_clearance", "_static_data", "_eligibility",
        "_eligibility_many", "_age_stats", "_progress", "_poll", "_raw_response"]),
    ("the client", [
        "_client"]),
    ("the public package and what is built on it: CLI, emulator, webhooks, extras", [
        "", "__main__", "cli", "_cli_*", "webhooks", "emulator", "emulator.*",
        "stream", "stream.*", "redis", "redis.*", "_redis*", "otel"]),
]


def module_names() -> dict[str, Path]:
    """hm_async module name (relative: "", "_client", "models._fleet") -> file."""
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer_of(name: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return index
    return None


def _absolute(name: str) -> str | None:
    """A dotted import target as a module name relative to hm_async, or None if outside."""
    if name == "hm_async":
        return ""
    if name.startswith("hm_async."):
        return name[len("hm_async."):]
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The hm_async modules that module ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    package = [p for p in package if p]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _absolute(alias.name)
                if target is not None:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                base_name = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                absolute = _absolute(node.module or "")
                if absolute is None:
                    continue
                base_name = absolute
            for alias in node.names:
                sub = f"{base_name}.{alias.name}" if base_name else alias.name
                found.add(sub if sub in modules else base_name)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    unplaced = [name or "hm_async" for name in module_names() if layer_of(name) is None]
    assert not unplaced, f"place these modules in LAYERS (and the README's map): {unplaced}"


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = []
    for name, targets in graph().items():
        mine = layer_of(name)
        for target in targets:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{name or 'hm_async'} ({LAYERS[mine][0]}) imports "
                              f"{target or 'hm_async'} ({LAYERS[theirs][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, [" -> ".join(n or "hm_async" for n in c) for c in cycles]


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """The reader itself: an import inside a function or under TYPE_CHECKING counts."""
    source = tmp_path / "_poll.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ._client import HMClient\n"
        "def f():\n    from . import _transport\n    import hm_async._tokens\n"
        "    from .models import VehicleData\n")
    modules = {"_client": source, "_transport": source, "_tokens": source, "models": source}
    assert imports_of("_poll", source, modules) == {"_client", "_transport", "_tokens",
                                                    "models"}


def test_the_readme_map_names_every_layered_module() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    development = readme[readme.index("## Development"):]
    missing = [name for name in module_names()
               if name.startswith("_") and "." not in name and not name.startswith("_cli_")
               and name not in ("__main__", "_version") and f"{name}.py" not in development]
    assert not missing, f"the README's module map does not name {missing}"
