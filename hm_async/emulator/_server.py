"""The aiohttp application: one handler per HM endpoint, answering in the spec's shapes.

Every request goes through the same steps — count it, wait the configured latency, maybe
fail it on purpose, check the bearer token — before the endpoint's own logic. The vehicle-data
handler is written out flat because benchmarks push thousands of requests a second through
it: no middleware, cached payload bytes, one dict lookup for the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from .._vehicles import ELIGIBILITY_BRANDS
from ._auth import SCOPE, AuthState, TokenError
from ._config import EmulatorConfig
from ._fleet import Fleet, FleetError
from ._limits import FaultPlan, SlidingWindow, TokenBucket, retry_after_header
from ._static_data import static_data_of, valuation_of
from ._stats import DROPPED, Stats
from ._vehicle_data import VehicleDataSource

__all__ = ["SPECIAL_KINDS", "EmulatorServer"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_encode = msgspec.json.Encoder().encode
_JSON = "application/json"

#: Per-VIN behaviours of the vehicle-data endpoint: status and (title, detail) of the answer.
SPECIAL_KINDS: dict[str, tuple[int, str, str]] = {
    "no_consent": (403, "Forbidden", "No active consent for this vehicle"),
    "privacy_mode": (403, "Forbidden", "Privacy mode is active"),
    "asleep": (408, "Request Timeout", "Vehicle is offline or asleep"),
    "consent_removed": (401, "Not Authorized", "Consent is removed by OEM"),
    "not_available": (422, "Pending", "Vehicle data is not available yet"),
}

#: Injected faults: status, title, detail (JSON bodies in the vehicle-data shape).
_FAULTS: dict[str, tuple[int, str, str]] = {
    "503": (503, "Service Unavailable", "Failure when fetching data from OEM"),
    "504": (504, "Timeout", "OEM didn't response in the expected time"),
    "408": (408, "Request Timeout", "Vehicle is offline or asleep"),
    "500": (500, "Internal Server Error", "Please contact support"),
}
_PHRASES = frozenset(s.value for s in HTTPStatus)
#: Routes whose errors have the vehicle-data shape ``{"errors": [{title, detail}], request_id}``.
_DATA_SHAPED = frozenset({"vehicle_data", "static_data"})
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _request_id() -> str:
    return os.urandom(16).hex()


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=_encode(body), content_type=_JSON, headers=headers)


def _data_error(status: int, title: str, detail: str,
                headers: dict[str, str] | None = None) -> web.Response:
    """The vehicle-data error shape: ``{"errors": [{title, detail}], "request_id"}``."""
    body = {"errors": [{"title": title, "detail": detail}], "request_id": _request_id()}
    return _json(status, body, headers)


def _api_error(status: int, title: str, source: str, detail: str,
               headers: dict[str, str] | None = None) -> web.Response:
    """The clearance / eligibility error shape: ``{"errors": [{title, source, detail}]}``."""
    return _json(status, {"errors": [{"title": title, "source": source, "detail": detail}]},
                 headers)


class EmulatorServer:
    """All mutable state of one emulator and the handlers that read and change it."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.auth = AuthState(client_id=config.client_id, client_secret=config.client_secret,
                              seed=config.seed)
        self.plan = FaultPlan(config.seed)
        self.rng = random.Random(config.seed)
        self.fleet = Fleet(random.Random(None if config.seed is None else config.seed + 1))
        self.data = VehicleDataSource(
            failure_fraction=config.failure_fraction, update_interval=config.update_interval
        )
        #: vin -> special kind (a key of SPECIAL_KINDS)
        self.special: dict[str, str] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._clearance_get = SlidingWindow(config.clearance_get_per_minute, 60.0)
        #: base URLs (scheme://host:port) the server is reachable at; set by the Emulator.
        self.base_urls: tuple[str, ...] = ()

    # -- application -------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/v1/access_tokens", self._wrap("token", self._token))
        r.add_post("/v1/eligibility", self._wrap("eligibility", self._eligibility, auth=True))
        r.add_post("/v1/fleets/vehicles", self._wrap("clearance", self._clearance_post, auth=True))
        r.add_get("/v1/fleets/vehicles", self._wrap("clearance", self._clearance_list, auth=True))
        r.add_get("/v1/fleets/vehicles/{vin}",
                  self._wrap("clearance", self._clearance_get_one, auth=True))
        r.add_delete("/v1/fleets/vehicles/{vin}",
                     self._wrap("clearance", self._clearance_delete, auth=True))
        r.add_get("/v1/vehicle-data/autoapi-13/{vin}", self._vehicle_data)
        r.add_get("/v1/vehicle-static-data/{vin}/data",
                  self._wrap("static_data", self._static_data, auth=True))
        r.add_post("/v1/vehicle-static-data/{vin}/valuation",
                   self._wrap("static_data", self._valuation, auth=True))
        return app

    # -- shared steps ------------------------------------------------------------------------
    async def _delay(self) -> None:
        latency = self.config.latency
        if isinstance(latency, tuple):
            await asyncio.sleep(self.rng.uniform(*latency))
        elif latency > 0:
            await asyncio.sleep(latency)

    def _peer(self, request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            self.stats.record_peer(transport.get_extra_info("peername"))

    def _pick_fault(self, route: str) -> str | None:
        cfg = self.config
        return self.plan.pick(route, cfg.fault_rate, cfg.faults, cfg.fault_routes)

    def _fault_response(self, route: str, fault: str, request: web.Request) -> web.Response | None:
        """The answer for an injected fault; ``None`` after dropping the connection."""
        self.stats.faults[fault] += 1
        if fault == "drop":
            if request.transport is not None:
                request.transport.close()
            return None
        if fault == "html502":
            return web.Response(status=502, body=_HTML_502, content_type="text/html")
        if fault == "429":
            return self._too_many(route, 1.0)
        if fault == "401":
            return self._unauthorized(route, "Invalid token")
        known = _FAULTS.get(fault)
        if known is None:
            code = int(fault)
            known = (code, HTTPStatus(code).phrase if code in _PHRASES else "Error",
                     "Injected by the emulator")
        status, title, detail = known
        if route in _DATA_SHAPED:
            return _data_error(status, title, detail)
        return _api_error(status, title, route, detail)

    def _unauthorized(self, route: str, detail: str) -> web.Response:
        if route in _DATA_SHAPED:
            return _data_error(401, "Not Authorized", detail)
        return _api_error(401, "Not Authorized", "Authorization", detail)

    def _too_many(self, route: str, wait: float) -> web.Response:
        headers = {"Retry-After": retry_after_header(wait)}
        if route in _DATA_SHAPED:
            return _data_error(429, "Too Many Requests", "Rate limit exceeded", headers)
        return _api_error(429, "Too many requests", f"fleet-manager-api:{uuid.uuid4()}",
                          f"retry after {headers['Retry-After']}s", headers)

    def _wrap(self, route: str, handler: _Handler, *, auth: bool = False) -> _Handler:
        stats = self.stats

        async def wrapped(request: web.Request) -> web.StreamResponse:
            stats.enter()
            try:
                self._peer(request)
                if route == "token":
                    stats.token_requests += 1
                    stats.token_times.append(time.monotonic())
                await self._delay()
                fault = self._pick_fault(route)
                if fault is not None:
                    faulted = self._fault_response(route, fault, request)
                    if faulted is None:
                        stats.record(route, DROPPED)
                        return web.Response(status=204)  # never reaches the closed socket
                    response: web.StreamResponse = faulted
                elif auth and (detail := self.auth.check_bearer(
                        request.headers.get("Authorization"))) is not None:
                    response = self._unauthorized(route, detail)
                else:
                    response = await handler(request)
                stats.record(route, response.status)
                return response
            finally:
                stats.leave()

        return wrapped

    async def _read_json(self, request: web.Request) -> object:
        raw = await request.read()
        try:
            return msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None

    # -- POST /v1/access_tokens --------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        params: object = None
        if request.content_type == "application/x-www-form-urlencoded":
            params = dict(parse_qsl(raw.decode("utf-8", "replace")))
        else:
            try:
                params = msgspec.json.decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError):
                # Be liberal: a form body sent without its content type still works.
                params = dict(parse_qsl(raw.decode("utf-8", "replace")))
        if not isinstance(params, dict):
            params = {}
        audiences = (
            *(f"{base}/v1" for base in self.base_urls),
            f"{request.scheme}://{request.host}/v1",
        )
        cfg = self.config
        try:
            issued = self.auth.issue(
                params, audiences=audiences, lifetime=cfg.token_lifetime,
                iat_window=cfg.assertion_iat_window,
            )
        except TokenError as exc:
            return _json(400, {"error": "invalid_request", "error_description": exc.description})
        self.stats.tokens_issued += 1
        return _json(200, {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "scope": SCOPE,
            "token_type": "bearer",
        })

    # -- POST /v1/eligibility ----------------------------------------------------------------
    async def _eligibility(self, request: web.Request) -> web.StreamResponse:
        body = await self._read_json(request)
        if not isinstance(body, dict):
            return _api_error(422, "Invalid input", "body", "body must be a JSON object")
        vin, brand = body.get("vin"), body.get("brand")
        if not isinstance(vin, str) or not vin:
            return _api_error(422, "Invalid input", "vin", "vin can't be blank")
        if len(vin) != 17:
            return _api_error(422, "Invalid input", "vin", "vin should be 17 character(s)")
        if not vin.isalnum() or not vin.isascii():
            return _api_error(422, "Invalid input", "vin", "vin is invalid")
        if not isinstance(brand, str) or brand not in ELIGIBILITY_BRANDS:
            return _api_error(422, "Invalid input", "brand", "The brand is invalid")
        return _json(200, eligibility_of(vin, cleared=self.fleet.is_approved(vin)))

    # -- clearance -----------------------------------------------------------------------
    async def _clearance_post(self, request: web.Request) -> web.StreamResponse:
        body = await self._read_json(request)
        cfg = self.config
        try:
            results = self.fleet.request(body, approve_delay=cfg.approve_delay,
                                         reject_fraction=cfg.reject_fraction)
        except FleetError as exc:
            return _json(exc.status, exc.body)
        return _json(200, {"vehicles": results})

    async def _clearance_list(self, request: web.Request) -> web.StreamResponse:
        try:
            items = self.fleet.list(request.query.get("filter"))
        except FleetError as exc:
            return _json(exc.status, exc.body)
        return _json(200, items)

    async def _clearance_get_one(self, request: web.Request) -> web.StreamResponse:
        self._clearance_get.limit = self.config.clearance_get_per_minute
        wait = self._clearance_get.take(time.monotonic())
        if wait > 0:
            return self._too_many("clearance", wait)
        rec = self.fleet.get(request.match_info["vin"])
        if rec is None:
            return _api_error(404, "Not found", "vin", "Clearance not found for this VIN")
        return _json(200, rec.as_json())

    async def _clearance_delete(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        try:
            result = self.fleet.delete(request.match_info["vin"], revoke_delay=cfg.revoke_delay,
                                       cancel_brands=cfg.cancel_brands)
        except FleetError as exc:
            return _json(exc.status, exc.body)
        return _json(200, result)

    # -- /v1/vehicle-static-data/{vin}/... (answers in _static_data.py) ---------------------
    async def _static_data(self, request: web.Request) -> web.StreamResponse:
        return _json(200, static_data_of(request.match_info["vin"]))

    async def _valuation(self, request: web.Request) -> web.StreamResponse:
        status, body = valuation_of(request.match_info["vin"], await self._read_json(request))
        return _json(status, {**body, "request_id": _request_id()} if status != 200 else body)

    # -- GET /v1/vehicle-data/autoapi-13/{vin} -----------------------------------------------
    def _rate_wait(self, brand: str, now: float) -> float:
        cfg = self.config
        limits = cfg.rate_limits
        rate = limits.get(brand)
        if rate is None and limits:
            rate = limits.get(brand.replace("-", "_"))
        if rate is None:
            rate = cfg.default_rate_limit
        if rate is None:
            return 0.0
        capacity = cfg.rate_limit_burst if cfg.rate_limit_burst is not None else max(1.0, rate)
        bucket = self._buckets.get(brand)
        if bucket is None:
            bucket = self._buckets[brand] = TokenBucket(rate, capacity)
        else:
            bucket.rate, bucket.capacity = rate, capacity
        return bucket.take(now)

    async def _vehicle_data(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.enter()
        try:
            response = await self._vehicle_data_inner(request)
            stats.record("vehicle_data", DROPPED if response is None else response.status)
            return web.Response(status=204) if response is None else response
        finally:
            stats.leave()

    async def _vehicle_data_inner(self, request: web.Request) -> web.Response | None:
        stats = self.stats
        vin = request.match_info["vin"]
        rec = self.fleet.records.get(vin)
        brand = rec.brand if rec is not None else "unknown"
        now = time.monotonic()
        times = stats.vehicle_data_times.get(brand)
        if times is None:
            times = stats.vehicle_data_times[brand] = []
        times.append(now)
        self._peer(request)
        await self._delay()
        detail = self.auth.check_bearer(request.headers.get("Authorization"))
        if detail is not None:
            return self._unauthorized("vehicle_data", detail)
        wait = self._rate_wait(brand, time.monotonic())
        if wait > 0:
            return self._too_many("vehicle_data", wait)
        fault = self._pick_fault("vehicle_data")
        if fault is not None:
            return self._fault_response("vehicle_data", fault, request)
        kind = self.special.get(vin)
        if kind is not None:
            status, title, text = SPECIAL_KINDS[kind]
            return _data_error(status, title, text)
        approved = rec is not None and (
            (rec.status == "approved" and rec.next_status is None) or self.fleet.is_approved(vin)
        )
        if rec is None or not approved:
            return _data_error(403, "Forbidden", "No active consent for this vehicle")
        data = self.data
        cfg = self.config
        data.update_interval = cfg.update_interval
        data.failure_fraction = cfg.failure_fraction
        body = b'{"request_id":"' + _request_id().encode() + b'",' + data.body(vin, rec.brand)
        return web.Response(body=body, content_type=_JSON)


def eligibility_of(vin: str, *, cleared: bool = False) -> dict[str, Any]:
    """A VIN's eligibility: fixed per VIN (about four in five are eligible).

    A ``cleared`` VIN (approved clearance: it delivers data) is always eligible; answering
    otherwise would contradict the vehicle-data endpoint.
    """
    h = hashlib.blake2b(vin.encode(), digest_size=4).digest()
    eligible = cleared or h[0] < 205
    if not eligible:
        return {"vin": vin, "eligible": False, "data_delivery": [],
                "connectivity_status": ("deactivated", "unknown")[h[1] % 2],
                "primary_user_assigned": bool(h[2] % 2)}
    return {
        "vin": vin,
        "eligible": True,
        "data_delivery": ["pull", "push"] if h[1] % 3 else ["pull"],
        "connectivity_status": "activated",
        "primary_user_assigned": bool(h[2] % 4),
    }
