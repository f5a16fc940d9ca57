"""A counting semaphore for the per-VIN hot path.

``asyncio.Semaphore.acquire`` calls ``locked()``, which scans its waiters with ``any()`` on
every call, even uncontended; a fleet poll takes two of these per VIN. :class:`Slots` costs a
comparison and a decrement when a slot is free, and is first come, first served when not:
a newcomer never takes a slot while others wait.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    """``capacity`` slots; ``try_take`` / ``await take()`` and ``give()``."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._free = capacity
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody is queued; never waits."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot, in arrival order."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by give() with the slot already ours
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot but cancelled before using it: pass it on
            elif waiter in self._waiters:  # give() may already have dropped it
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Return a slot: straight to the oldest waiter if there is one."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
