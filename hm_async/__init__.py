"""hm_async: an asyncio-native client for the High Mobility connected-car platform.

Start with :class:`HMClient`; see the README for the tour.
"""

from contextlib import suppress as _suppress

from ._age_stats import Stale
from ._client import ENVIRONMENTS, HMClient
from ._config import RateLimits, Timeout
from ._credentials import (
    ClientCredentials,
    Credentials,
    PrivateKeyCredentials,
    credentials_from_env,
)
from ._eligibility_many import EligibilityResult
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CredentialsError,
    DecodeError,
    ErrorDetail,
    HMError,
    HMTimeoutError,
    InvalidVehicleError,
    NotClearedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryBudgetExhaustedError,
    ServerError,
    SettleTimeoutError,
    SharedStateError,
    StaleConnectionError,
    StreamError,
    StreamRefusedError,
    StreamUnavailableError,
    TokenRefusedError,
    TransportError,
    ValidationError,
    VehicleUnavailableError,
)
from ._events import AttemptEvent, EventHook
from ._metering import UsageRow, UsageSnapshot
from ._poll import BrandProgress, PollResult, Progress, WatchResult
from ._ratelimit import BrandRateState
from ._raw_response import APIResponse
from ._retry import RetryBudget
from ._tokens import AccessToken, TokenProvider
from ._vehicles import BRANDS, Vehicle
from ._version import __version__
from .models import (
    Clearance,
    ClearanceResult,
    Eligibility,
    VehicleData,
)
from .stream import MQTTCredentials, StreamEvent, stream  # aiomqtt is loaded on first stream()

__all__ = [
    "BRANDS",
    "ENVIRONMENTS",
    "APIError",
    "APIResponse",
    "AccessToken",
    "AttemptEvent",
    "AuthenticationError",
    "BadRequestError",
    "BrandProgress",
    "BrandRateState",
    "Clearance",
    "ClearanceResult",
    "ClientCredentials",
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "DecodeError",
    "Eligibility",
    "EligibilityResult",
    "ErrorDetail",
    "EventHook",
    "HMClient",
    "HMError",
    "HMTimeoutError",
    "InvalidVehicleError",
    "MQTTCredentials",
    "NotClearedError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollResult",
    "PrivateKeyCredentials",
    "Progress",
    "RateLimitedError",
    "RateLimits",
    "RetryBudget",
    "RetryBudgetExhaustedError",
    "ServerError",
    "SettleTimeoutError",
    "SharedStateError",
    "Stale",
    "StaleConnectionError",
    "StreamError",
    "StreamEvent",
    "StreamRefusedError",
    "StreamUnavailableError",
    "Timeout",
    "TokenProvider",
    "TokenRefusedError",
    "TransportError",
    "UsageRow",
    "UsageSnapshot",
    "ValidationError",
    "Vehicle",
    "VehicleData",
    "VehicleUnavailableError",
    "WatchResult",
    "__version__",
    "credentials_from_env",
    "stream",
]

# Tracebacks and reprs say ``hm_async.RateLimitedError``, not ``hm_async._errors...``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("hm_async._"):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = "hm_async"
del _name, _obj, _suppress
