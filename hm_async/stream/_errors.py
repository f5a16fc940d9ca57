"""The streaming failures; they live in :mod:`hm_async._errors` with the rest of the tree."""

from __future__ import annotations

from .._errors import StreamError, StreamRefusedError, StreamUnavailableError

__all__ = ["StreamError", "StreamRefusedError", "StreamUnavailableError"]
