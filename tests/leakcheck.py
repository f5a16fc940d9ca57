"""Helpers the reliability tests share to prove that nothing was left behind."""

from __future__ import annotations

import asyncio
import gc

import aiohttp

from hm_async._transport import Transport

#: The test runner's own task, and the local servers' per-connection handlers.
_NOT_OURS = ("_call_in_runner_task", "RequestHandler.", "web_protocol")
#: Background work a client may legitimately have running between calls.
BACKGROUND = ("hm_async token refresh",)


def stray_tasks(ignore: tuple[str, ...] = ()) -> list[asyncio.Task[object]]:
    """Pending tasks besides the current one, the test runner's and the servers'; tasks
    whose name is in ``ignore`` are left out too."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks()
            if t is not current and not t.done() and t.get_name() not in ignore
            and not any(k in repr(t.get_coro()) for k in _NOT_OURS)]


def acquired_connections(where: aiohttp.ClientSession | Transport) -> int:
    """Connections checked out: of aiohttp's pool (the connector's own bookkeeping) and,
    given a client's transport, of its lean GET lane too."""
    lean = None
    if isinstance(where, Transport):
        where, lean = where.lane.session, where.lean
    connector = where.connector
    assert connector is not None
    return len(connector._acquired) + (lean.in_use if lean is not None else 0)


async def settle(session: aiohttp.ClientSession | Transport | None = None,
                 ignore: tuple[str, ...] = ()) -> list[asyncio.Task[object]]:
    """Give cancelled work up to 1 s to wind down, collect garbage, return the stray tasks.

    Winding down is asynchronous by nature: aiohttp returns a cancelled request's
    connection from a callback, and an async generator left by ``break`` is closed by
    asyncio's finalizer in a task of its own. Anything still there after 1 s is a leak.
    """
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not stray_tasks(ignore) and (session is None or acquired_connections(session) == 0):
            break
    gc.collect()  # an unclosed session, connector or transport complains here
    await asyncio.sleep(0)
    return stray_tasks(ignore)


LEAK_MARKERS = ("Unclosed", "unclosed", "Task was destroyed", "never awaited",
                "Task exception was never retrieved")


def leak_messages(messages: list[str]) -> list[str]:
    return [m for m in messages if any(k in m for k in LEAK_MARKERS)]
