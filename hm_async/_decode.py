"""Decoding answers with decoders built once; failures become :class:`DecodeError`."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from ._errors import DecodeError

__all__ = ["decode"]

T = TypeVar("T")


def decode(decoder: msgspec.json.Decoder[T], body: bytes, *, what: str, path: str) -> T:
    """Decode ``body`` or raise DecodeError naming the endpoint and msgspec's JSON path."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"unexpected {what} from {path}: {exc}", path=path) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
        excerpt = body[:80].decode("utf-8", "replace")
        raise DecodeError(
            f"{what} from {path} is not valid JSON ({exc}); body starts {excerpt!r}", path=path
        ) from exc
