"""The hot-path semaphore: FIFO, bounded, and no slot lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from hm_async._slots import Slots

pytestmark = pytest.mark.anyio


async def test_slots_are_bounded_and_served_in_arrival_order() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take() and not slots.try_take()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await slots.take()
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(4)]
    await asyncio.sleep(0)
    assert order == []
    for _ in range(4):
        slots.give()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert not slots.try_take()  # the two original slots are still out
    slots.give()
    assert slots.try_take()


async def test_a_cancelled_waiter_loses_no_slot() -> None:
    slots = Slots(1)
    assert slots.try_take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it runs: the slot must go on to `second`
    await asyncio.wait_for(second, 1.0)
    assert first.cancelled()
    third = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    third.cancel()  # cancelled while queued
    await asyncio.sleep(0)
    slots.give()
    assert slots.try_take()  # the slot came back, not to the cancelled waiter
