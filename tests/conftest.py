"""Shared test fixtures. aiohttp is asyncio-only, so every async test runs on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
