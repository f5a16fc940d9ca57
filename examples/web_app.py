"""An async web app that shares one HMClient for its whole lifetime (aiohttp.web).

    HM_CLIENT_ID=... HM_CLIENT_SECRET=... python examples/web_app.py   # then:
    curl localhost:8000/vehicles/WBA12345678901234
    curl localhost:8000/fleet

Why one client: it holds the pooled connections, the access token (refreshed in the
background, one refresh for all requests) and the per-brand rate limits. A client per request
would pay a TLS handshake and a token request every time, and the rate limits would not
hold across requests. ``cleanup_ctx`` opens the client when the app starts and closes it
(connections, token refresh task) when the app stops, even if start-up fails half-way.

The FastAPI equivalent is the same shape with a lifespan::

    @asynccontextmanager
    async def lifespan(app):
        async with HMClient(credentials_from_env()) as hm:
            app.state.hm = hm
            yield
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hm_async import (
    HMClient,
    HMError,
    NotFoundError,
    PermissionDeniedError,
    VehicleUnavailableError,
    credentials_from_env,
)

HM = web.AppKey("hm", HMClient)


def client_from_env() -> HMClient:
    return HMClient(credentials_from_env(), base_url=os.environ.get("HM_BASE_URL") or None)


def hm_client_ctx(make_client: Callable[[], HMClient]
                  ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with make_client() as hm:
            app[HM] = hm
            yield

    return ctx


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def vehicle(request: web.Request) -> web.Response:
    """The vehicle's data as HM sent it; HM's per-vehicle errors mapped to HTTP answers."""
    hm = request.app[HM]
    try:
        raw = await hm.vehicle_data_raw(request.match_info["vin"])
    except ValueError as exc:  # not a VIN: no request was made
        return _error(400, str(exc))
    except PermissionDeniedError:
        return _error(403, "no consent for this vehicle (or privacy mode is on)")
    except NotFoundError:
        return _error(404, "unknown vehicle")
    except VehicleUnavailableError:
        return _error(503, "the vehicle is asleep; try again later", **{"Retry-After": "60"})
    except HMError as exc:
        return _error(502, f"High Mobility failed: {type(exc).__name__}")
    return web.Response(body=raw, content_type="application/json")


async def fleet(request: web.Request) -> web.Response:
    """How many vehicles are in each clearance status (one list call)."""
    hm = request.app[HM]
    try:
        clearances = await hm.clearance.list()
    except HMError as exc:
        return _error(502, f"High Mobility failed: {type(exc).__name__}")
    return web.json_response(dict(Counter(c.status for c in clearances)))


async def usage(request: web.Request) -> web.Response:
    """API calls this process made so far (HM bills per call)."""
    snapshot = request.app[HM].usage()
    return web.json_response({"calls": snapshot.total_calls, "retries": snapshot.total_retries,
                              "by_endpoint": snapshot.by_endpoint()})


def make_app(make_client: Callable[[], HMClient] = client_from_env) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(hm_client_ctx(make_client))
    app.router.add_get("/vehicles/{vin}", vehicle)
    app.router.add_get("/fleet", fleet)
    app.router.add_get("/usage", usage)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8000")))
