"""hm_async: an asyncio-native client for the High Mobility connected-car platform."""

from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DecodeError,
    ErrorDetail,
    HMError,
    HMTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryBudgetExhaustedError,
    ServerError,
    TokenRefusedError,
    TransportError,
    ValidationError,
    VehicleUnavailableError,
)
from ._vehicles import BRANDS, Vehicle
from ._version import __version__

__all__ = [
    "BRANDS",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DecodeError",
    "ErrorDetail",
    "HMError",
    "HMTimeoutError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RetryBudgetExhaustedError",
    "ServerError",
    "TokenRefusedError",
    "TransportError",
    "ValidationError",
    "Vehicle",
    "VehicleUnavailableError",
    "__version__",
]
