"""An event-driven worker: HM webhooks in, vehicle data out, through queues.

    HM_WEBHOOK_SECRET=... HM_CLIENT_ID=... HM_CLIENT_SECRET=... python examples/event_worker.py

HM POSTs ``fleet_clearance_changed`` when a vehicle's clearance changes. The webhook handler
only verifies the signature and enqueues (HM waits for the answer, so it must be quick);
a few worker tasks take VINs off the queue, fetch the vehicle data with the one shared
client, and put a :class:`VehicleUpdate` on the output queue. In production the output
queue would be a message broker or a database writer; here it is an ``asyncio.Queue`` so
the example stays self-contained (and testable).

Webhooks can be delivered more than once: anything downstream should be idempotent per
``(vin, status)`` (``delivery_id`` identifies a delivery).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from hm_async import HMClient, HMError, VehicleData, credentials_from_env
from hm_async.webhooks import FleetClearanceChanged, Ping, WebhookEvent, webhook_handler

log = logging.getLogger("event_worker")


@dataclass(frozen=True)
class VehicleUpdate:
    """What the worker publishes: the new status, and the data once access is approved."""

    vin: str
    status: str | None
    data: VehicleData | None = None
    error: str | None = None


class EventWorker:
    def __init__(self, make_client: Callable[[], HMClient], secret: str,
                 out: asyncio.Queue[VehicleUpdate], *, workers: int = 4) -> None:
        self._make_client = make_client
        self._secret = secret
        self._inbox: asyncio.Queue[FleetClearanceChanged] = asyncio.Queue(maxsize=10_000)
        self.out = out
        self._workers = workers

    async def on_event(self, event: WebhookEvent) -> None:
        """Called by the webhook handler after the signature checked out: enqueue, return."""
        if isinstance(event, FleetClearanceChanged) and event.vin:
            self._inbox.put_nowait(event)  # QueueFull -> 500 -> HM delivers again later
        elif isinstance(event, Ping):
            log.info("webhook ping received: delivery works")
        else:
            log.info("ignoring %s event", event.type)

    async def _work(self, hm: HMClient) -> None:
        while True:
            event = await self._inbox.get()
            assert event.vin is not None
            update = VehicleUpdate(vin=event.vin, status=event.status)
            if event.approved:
                try:
                    data = await hm.vehicle_data(event.vin, event.brand)
                    update = VehicleUpdate(vin=event.vin, status=event.status, data=data)
                except HMError as exc:  # one vehicle's failure must not stop the worker
                    update = VehicleUpdate(vin=event.vin, status=event.status,
                                           error=f"{type(exc).__name__}: {exc}")
            await self.out.put(update)
            self._inbox.task_done()

    async def _lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        async with self._make_client() as hm:
            tasks = [asyncio.create_task(self._work(hm)) for _ in range(self._workers)]
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def app(self, path: str = "/hm/webhook") -> web.Application:
        app = web.Application()
        app.cleanup_ctx.append(self._lifetime)
        app.router.add_post(path, webhook_handler(self._secret, self.on_event))
        return app


async def _print_updates(out: asyncio.Queue[VehicleUpdate]) -> None:
    while True:
        update = await out.get()
        print(update.vin, update.status, update.error or (update.data and update.data.brand))


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    out: asyncio.Queue[VehicleUpdate] = asyncio.Queue()
    worker = EventWorker(
        lambda: HMClient(credentials_from_env(), base_url=os.environ.get("HM_BASE_URL")),
        os.environ["HM_WEBHOOK_SECRET"], out)
    app = worker.app()

    async def printer(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_print_updates(out))
        yield
        task.cancel()

    app.cleanup_ctx.append(printer)
    web.run_app(app, port=int(os.environ.get("PORT", "8000")))


if __name__ == "__main__":
    main()
