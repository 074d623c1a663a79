"""Pure ASGI middleware (no BaseHTTPMiddleware: streaming stays untouched)."""

from modelyard.api.middleware.request_context import RequestContextMiddleware

__all__ = ["RequestContextMiddleware"]
