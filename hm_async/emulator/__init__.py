"""A faithful local emulator of the High Mobility REST API, for tests and benchmarks.

It speaks the vendor specs (``scripts/specs/``): same paths, bodies, enums and error shapes,
real ES256 verification of client assertions, tokens that expire, clearances that change
status over time, and vehicle data that is spec-valid, different per VIN and changes now and
then. Faults, latency and rate limits are injected on request, so a client's retry, refresh
and pacing logic can be tested against something that behaves like the real platform.

Three ways to run it::

    hm-async emulator --port 8080 --seed 1   # prints the credentials to use (same each start)
    python -m hm_async.emulator --port 0 --json   # one JSON line: url + both credentials

    async with Emulator(EmulatorConfig(token_lifetime=2.0)) as emu:   # in code / pytest
        async with HMClient(emu.client_credentials, base_url=emu.url) as hm:
            await hm.vehicle_data(emu.vehicles[0].vin)

The context manager binds a free port (``port=0``) on 127.0.0.1 and serves HTTPS when given
an ``ssl_context``. The pytest fixtures ``emulator`` and ``emulator_factory`` in the project's
``tests/conftest.py`` wrap it.

Endpoints
---------
``POST /v1/access_tokens``
    JSON body (a form-encoded body is accepted too): ``grant_type=client_credentials``,
    ``client_id`` and either ``client_secret`` or ``client_assertion`` +
    ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``.
    Answers ``{access_token, expires_in, scope, token_type: "bearer"}``; the token is an ES256
    JWT signed by the emulator and lives ``token_lifetime`` seconds (``expires_in`` is that,
    rounded down to whole seconds, at least 1). Errors are 400
    ``{"error": "invalid_request", "error_description": ...}``: blank params, wrong grant type,
    unknown client id, wrong secret, and for an assertion: bad signature (wrong key), header
    ``typ`` other than JWT, ``ver != 2``, ``iss`` not the key id, ``aud`` not
    ``<emulator url>/v1`` (the URL the client connected to, ``127.0.0.1`` or ``localhost``),
    a ``jti`` already used (replay), or ``iat`` more than ``assertion_iat_window`` (300 s)
    away from the server clock in either direction.
``POST /v1/eligibility``
    ``{vin, brand}`` (brand in the eligibility enum, dashed spelling) -> ``{vin, eligible,
    data_delivery, connectivity_status, primary_user_assigned}``, fixed per VIN (about four
    in five eligible; a VIN with approved clearance always is); 422 ``{"errors": [{title,
    source, detail}]}`` for a bad VIN or brand. VINs are 17 of A-Z and 0-9, I, O and Q
    included (HM's own test VINs use them), everywhere in the emulator.
``POST /v1/fleets/vehicles``
    ``{"vehicles": [{vin, brand, tags?}]}`` -> ``{"vehicles": [{vin, status, tags}]}``; each
    new VIN is ``pending`` and becomes ``approved`` (or ``rejected`` for a ``reject_fraction``
    share) ``approve_delay`` seconds later. Bad VIN or brand: that item is ``{vin, status:
    "error", description}``. A body without a ``vehicles`` list: 422.
``GET /v1/fleets/vehicles[?filter=<URL-encoded JSON>]``
    A list of ``{vin, status, brand, tags, changelog}``. Filter fields (ANDed): ``vin``,
    ``status``, ``brand`` with ``eq``/``in``; ``tags`` with ``eq``/``contains``;
    ``approved_at``, ``inserted_at`` with ``eq`` (whole seconds)/``lt``/``gt``/``lte``/``gte``
    and ISO 8601 values. A malformed filter: 422.
``GET /v1/fleets/vehicles/{vin}``
    One record, 404 if unknown; at most ``clearance_get_per_minute`` (60) calls in any minute,
    else 429 with ``Retry-After``.
``DELETE /v1/fleets/vehicles/{vin}``
    Answers the whole record, as GET does (``{vin, status, brand, tags, changelog}``).
    approved -> ``revoking`` (-> ``revoked`` after ``revoke_delay``); pending -> ``canceling``
    (-> ``canceled``) for brands in ``cancel_brands``, else 422 "not supported"; a second
    delete while revoking/canceling or after: 409 ``Conflict``; unknown VIN: 404.
``GET /v1/vehicle-data/autoapi-13/{vin}``
    Auto API 13 JSON: ``request_id``, ``vin``, ``brand`` (underscored spelling, ``unknown``
    where the enum lacks the brand) and several capabilities (diagnostics with odometer and
    tire pressures as lists, charging for electrified cars, doors, vehicle_location, ignition,
    windows) whose properties are ``{data, timestamp}``, or ``{failure, timestamp}`` for a
    ``failure_fraction`` share. Values change every ``update_interval`` seconds (each VIN at
    its own phase). 403 "No active consent for this vehicle" unless the VIN's clearance is
    approved; 429 ``Too Many Requests`` with ``Retry-After`` when the brand's rate limit is
    exceeded; per-VIN special cases (below).
``GET /v1/vehicle-static-data/{vin}/data``, ``POST /v1/vehicle-static-data/{vin}/valuation``
    Static data and a valuation (``{odometer, registration_date, country_code}``) in the
    spec's shapes, derived from the VIN alone (make from its first three characters), the
    same on every call; no clearance needed. A blank or malformed valuation input: 422
    ``{"errors": [{detail: "can't be blank", source: "odometer"}, ...], "request_id"}``.
    Route name ``"static_data"`` for faults and stats.

Every protected endpoint answers 401 without a valid bearer token: detail ``"Missing or
invalid authorization header"`` or ``"Invalid token"`` (expired, invalidated, forged).
Vehicle-data and static-data errors are ``{"errors": [{title, detail}], "request_id"}``;
clearance and eligibility errors are ``{"errors": [{title, source, detail}]}``.

Configuration (:class:`EmulatorConfig`; change it live with ``emu.set_config(**changes)`` or
by assigning ``emu.config.<field>``)
-----------------------------------------------------------------------------------------
``token_lifetime`` (300 s), ``latency`` (seconds, or a ``(min, max)`` range drawn per request,
all routes), ``fault_rate`` (probability per request on ``fault_routes``, default only
``("vehicle_data",)``), ``faults`` (any of ``"503"``, ``"504"``, ``"408"``, ``"500"`` — JSON
error bodies — ``"drop"`` — the connection is closed without an answer — and ``"html502"`` —
an nginx HTML page with status 502), ``seed`` (makes faults, latency and rejections
repeatable), ``rate_limits`` (``{"bmw": 10.0}``: requests per second per brand on the
vehicle-data endpoint, token bucket holding ``rate_limit_burst`` or one second's worth),
``default_rate_limit`` (for unlisted brands; ``None`` = unlimited), ``vehicles`` (100
pre-approved), ``brands`` (the fleet's brands, assigned round-robin), ``approve_delay`` and
``revoke_delay`` (1 s), ``update_interval`` (30 s), ``failure_fraction`` (0.05),
``reject_fraction`` (0), ``client_id`` and ``client_secret`` (fixed credentials; by default
derived from ``seed`` when one is given, else random), ``assertion_iat_window`` (300 s),
``clearance_get_per_minute`` (60),
``cancel_brands``, and the special-case fractions ``no_consent_fraction``,
``privacy_mode_fraction``, ``asleep_fraction``, ``consent_removed_fraction`` (all 0): that
share of the pre-approved fleet, taken from the front of ``emu.vehicles`` in this order,
answers vehicle-data requests with 403 "No active consent for this vehicle", 403 "Privacy
mode is active", 408 "Vehicle is offline or asleep", 401 "Consent is removed by OEM".

Emulator API
------------
``emu.url``; ``emu.client_id``, ``emu.client_secret``, ``emu.private_key_pem``, ``emu.key_id``;
``emu.private_key_json()`` (the console's key file: ``private_key``, ``id``, ``inserted_at``);
``emu.client_credentials`` and ``emu.private_key_credentials`` (hm_async credential objects);
``emu.vehicles`` (pre-approved :class:`hm_async.Vehicle` list; VINs like ``WBAEMU00000000001``,
stable across runs); ``emu.special_vins`` (kind -> VINs); ``emu.set_vehicle_state(vin, kind)``
(``no_consent``, ``privacy_mode``, ``asleep``, ``consent_removed``, ``not_available`` (422
Pending) or ``None``); ``emu.add_vehicle(vin, brand, status=, tags=)``;
``emu.clearance_status(vin)``; ``emu.vehicle_data_payload(vin)``; ``emu.invalidate_tokens()``;
``emu.script_faults(route, [503, "drop", None, 429, ...])`` for ``"token"``, ``"eligibility"``,
``"clearance"``, ``"vehicle_data"``, ``"static_data"`` (scripted outcomes come before random
ones; ``None``/``"ok"`` passes one request through); ``emu.clear_faults()``; ``emu.stats`` —
``token_requests``, ``tokens_issued``, ``requests[(route, status)]`` (status 0 = dropped),
``statuses[status]``, ``count(route=, status=)``, ``faults[kind]``, ``connections`` (distinct
client sockets), ``vehicle_data_times[brand]`` (monotonic arrival times) with
``max_in_window(brand, 1.0)``, ``in_flight``, ``max_in_flight``, ``reset()``.

Order of checks on the vehicle-data endpoint: latency, bearer token (401), brand rate limit
(429), injected fault, per-VIN special case, clearance (403), data. On the other endpoints:
latency, injected fault, bearer token, the endpoint itself.
"""

from ._config import EmulatorConfig
from ._emulator import Emulator
from ._stats import Stats

__all__ = ["Emulator", "EmulatorConfig", "Stats"]
