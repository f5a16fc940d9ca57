"""Splitting a fleet between N workers without a coordinator: ``poll(vins, shard=(i, n))``.

Each worker keeps the items whose VIN hashes to its index. The hash is BLAKE2b of the
upper-cased VIN -- stable across processes, machines and Python versions (Python's own
``hash()`` of a string changes with every process), so N workers started with
``(0, N)`` ... ``(N-1, N)`` together cover every VIN exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["in_shard", "in_shard_async", "parse_shard", "shard_of", "validate_shard"]

T = TypeVar("T")


def shard_of(vin: str, count: int) -> int:
    """The shard (0 .. count-1) that ``vin`` belongs to."""
    digest = hashlib.blake2b(vin.strip().upper().encode("utf-8", "replace"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") % count


def validate_shard(shard: tuple[int, int]) -> tuple[int, int]:
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    return index, count


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (as the CLI takes it) -> ``(i, n)``."""
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return validate_shard((int(index), int(count)))
    except ValueError:
        raise ValueError(f"shard must look like i/n with 0 <= i < n, e.g. 0/4; got {text!r}")\
            from None


def _vin(item: Any) -> str:
    """The VIN of a poll input item (str, (vin, brand) or Vehicle); anything else by repr,
    so even an invalid item lands in exactly one shard (and gets its one error result)."""
    if isinstance(item, str):
        return item
    if isinstance(item, tuple) and item and isinstance(item[0], str):
        return item[0]
    vin = getattr(item, "vin", None)
    return vin if isinstance(vin, str) else repr(item)


def in_shard(items: Iterable[T], shard: tuple[int, int]) -> Iterator[T]:
    """The items of ``items`` that belong to ``shard`` (lazily)."""
    index, count = validate_shard(shard)
    return (item for item in items if shard_of(_vin(item), count) == index)


async def in_shard_async(items: AsyncIterable[T], shard: tuple[int, int]) -> AsyncIterator[T]:
    index, count = validate_shard(shard)
    async for item in items:
        if shard_of(_vin(item), count) == index:
            yield item
