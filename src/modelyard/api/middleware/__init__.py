"""Pure ASGI middleware (no BaseHTTPMiddleware: streaming stays untouched)."""

from modelyard.api.middleware.body_limit import BodyLimitMiddleware
from modelyard.api.middleware.metrics import MetricsMiddleware
from modelyard.api.middleware.request_id import RequestIdMiddleware
from modelyard.api.middleware.unhandled import UnhandledErrorMiddleware

__all__ = [
    "BodyLimitMiddleware",
    "MetricsMiddleware",
    "RequestIdMiddleware",
    "UnhandledErrorMiddleware",
]
