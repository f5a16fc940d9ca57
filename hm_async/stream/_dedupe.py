"""The dedupe window: which ``message_id``s were already handed to the consumer.

HM delivers at least once, and so does MQTT QoS 1: the same ``message_id`` can arrive again
(HM resends, or the broker redelivers a message whose acknowledgement it never got). The
stream asks a :class:`DedupeWindow` before handing a message over:

``claim(id)``
    True the first time: the id is now *in progress*. False for a duplicate (in progress or
    done): the stream acknowledges it to the broker and drops it.
``done(id)``
    The consumer's loop body for the message returned: keep the id as *seen* for the window.
``release(id)``
    The consumer failed (its body raised, it was cancelled, the stream closed before ``done``):
    forget the claim, so a redelivery is processed again.
``aclose()``
    Free resources (a connection, for a shared store).

The contract a store must keep: an id is reported as a duplicate only while it is in progress
or done *and* still inside the window; ``done`` ids stay at least ``max_age`` seconds or until
``max_size`` newer ids pushed them out, whichever comes first. :class:`MemoryDedupeWindow` is
the in-process store; a shared one (Redis) implements the same Protocol so that several
workers and restarts share one window.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["DedupeWindow", "MemoryDedupeWindow"]


@runtime_checkable
class DedupeWindow(Protocol):
    """Where the stream records the ``message_id``s it handed over (see the module docstring)."""

    async def claim(self, message_id: str) -> bool: ...   # True: first time seen (now in progress)

    async def done(self, message_id: str) -> None: ...    # consumer finished: seen for the window

    async def release(self, message_id: str) -> None: ...  # consumer failed: forget the claim

    async def aclose(self) -> None: ...


class MemoryDedupeWindow:
    """The last ``max_size`` ids, each for at most ``max_age`` seconds, in this process only.

    An insertion-ordered dict: claims and ``done`` move an id to the young end, the old end is
    trimmed when the dict is over ``max_size`` or its oldest entry is older than ``max_age``.
    O(1) per message; memory is bounded by ``max_size`` (about 150 bytes per id). The window
    lives and dies with the process: after a restart every id is new again, so what a crashed
    worker had processed may be processed once more (at least once still holds).
    """

    __slots__ = ("_clock", "_entries", "max_age", "max_size")

    def __init__(self, *, max_size: int = 100_000, max_age: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if not max_age > 0:
            raise ValueError("max_age must be a positive number of seconds")
        self.max_size = max_size
        self.max_age = max_age
        self._clock = clock
        # id -> (stamp, done)
        self._entries: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (f"MemoryDedupeWindow(max_size={self.max_size}, max_age={self.max_age}, "
                f"held={len(self._entries)})")

    def claim_now(self, message_id: str) -> bool:
        """The synchronous body of :meth:`claim` (the stream's hot path calls it directly)."""
        entries = self._entries
        now = self._clock()
        self._trim(now)
        if message_id in entries:
            return False
        entries[message_id] = (now, False)
        return True

    def done_now(self, message_id: str) -> None:
        entries = self._entries
        if message_id in entries:
            entries.move_to_end(message_id)
        entries[message_id] = (self._clock(), True)

    def release_now(self, message_id: str) -> None:
        entry = self._entries.get(message_id)
        if entry is not None and not entry[1]:
            del self._entries[message_id]

    async def claim(self, message_id: str) -> bool:
        return self.claim_now(message_id)

    async def done(self, message_id: str) -> None:
        self.done_now(message_id)

    async def release(self, message_id: str) -> None:
        self.release_now(message_id)

    async def aclose(self) -> None:
        self._entries.clear()

    def _trim(self, now: float) -> None:
        # Oldest first. An id in progress is trimmed like any other: with one message in
        # the consumer's hands at a time, max_size newer ids cannot arrive while it is held.
        entries = self._entries
        oldest = now - self.max_age
        while entries and (len(entries) >= self.max_size
                           or next(iter(entries.values()))[0] < oldest):
            entries.popitem(last=False)
