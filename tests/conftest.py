"""Shared test fixtures. aiohttp is asyncio-only, so every async test runs on asyncio.

Emulator fixtures (they need an anyio test, e.g. ``pytestmark = pytest.mark.anyio``):
``emulator`` is a started :class:`hm_async.emulator.Emulator` with the default config (100
pre-approved vehicles); ``emulator_factory`` starts custom ones —
``await emulator_factory(EmulatorConfig(...))`` or ``await emulator_factory(token_lifetime=1.0)``
— and closes them all after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from hm_async.emulator import Emulator, EmulatorConfig

EmulatorFactory = Callable[..., Awaitable[Emulator]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig()) as emu:
        yield emu


@pytest.fixture
async def emulator_factory() -> AsyncIterator[EmulatorFactory]:
    async with AsyncExitStack() as stack:

        async def make(config: EmulatorConfig | None = None, **changes: Any) -> Emulator:
            cfg = config.replace(**changes) if config is not None else EmulatorConfig(**changes)
            return await stack.enter_async_context(Emulator(cfg))

        yield make


@pytest.fixture(params=[True, False], ids=["lean", "aiohttp"])
def lean_http(request: pytest.FixtureRequest) -> bool:
    """For tests that prove a behaviour on both request paths: HMClient's lean GET lane
    and aiohttp's ClientSession (``HMClient(lean_http=...)``)."""
    return bool(request.param)
