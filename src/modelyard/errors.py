"""The service's error tree; every API error is rendered in the OpenAI shape.

::

    ModelyardError                      500 api_error
    ├── BadRequestError                 400 invalid_request_error
    ├── AuthenticationError             401 authentication_error
    ├── PaymentRequiredError            402 payment_required
    ├── PermissionDeniedError           403 permission_error
    ├── NotFoundError                   404 not_found_error
    ├── ConflictError                   409 conflict_error
    ├── PayloadTooLargeError            413 request_too_large
    ├── UnprocessableEntityError        422 invalid_request_error
    ├── RateLimitError                  429 rate_limit_error (with Retry-After)
    ├── InternalServerError             500 api_error
    ├── BadGatewayError                 502 upstream_error
    └── ServiceUnavailableError         503 service_unavailable

The body is ``{"error": {"message", "type", "param", "code"}}``; the official SDKs map
the statuses to their own classes (``AuthenticationError``, ``NotFoundError``, …). An
error that ends a gateway request also says how many upstream calls were made and the
provider kind last tried (``attempts``, ``provider``), for the request's usage record.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "ModelyardError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "error_body",
    "error_for_status",
]


class ModelyardError(Exception):
    """Base of the tree: an error with an HTTP status and an OpenAI-style body."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        attempts: int = 0,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}
        #: Upstream calls made for the request this error ends.
        self.attempts = attempts
        #: The provider kind last tried for it, when a provider was tried.
        self.provider = provider

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


class BadRequestError(ModelyardError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(ModelyardError):
    status_code = 401
    error_type = "authentication_error"


class PaymentRequiredError(ModelyardError):
    status_code = 402
    error_type = "payment_required"


class PermissionDeniedError(ModelyardError):
    status_code = 403
    error_type = "permission_error"


class NotFoundError(ModelyardError):
    status_code = 404
    error_type = "not_found_error"


class ConflictError(ModelyardError):
    status_code = 409
    error_type = "conflict_error"


class PayloadTooLargeError(ModelyardError):
    status_code = 413
    error_type = "request_too_large"


class UnsupportedMediaTypeError(ModelyardError):
    status_code = 415
    error_type = "invalid_request_error"


class UnprocessableEntityError(ModelyardError):
    status_code = 422
    error_type = "invalid_request_error"


class RateLimitError(ModelyardError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str | None = None,
        attempts: int = 0,
        provider: str | None = None,
    ) -> None:
        seconds = max(1, round(retry_after))
        super().__init__(
            message,
            code=code,
            headers={"Retry-After": str(seconds)},
            attempts=attempts,
            provider=provider,
        )
        self.retry_after = retry_after


class InternalServerError(ModelyardError):
    status_code = 500
    error_type = "api_error"


class BadGatewayError(ModelyardError):
    status_code = 502
    error_type = "upstream_error"


class ServiceUnavailableError(ModelyardError):
    status_code = 503
    error_type = "service_unavailable"


_BY_STATUS: dict[int, type[ModelyardError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PaymentRequiredError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        InternalServerError,
        BadGatewayError,
        ServiceUnavailableError,
    )
}


def error_for_status(status_code: int) -> type[ModelyardError]:
    """The error class for ``status_code`` (the nearest generic class if none is exact)."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code == 429:
        return RateLimitError
    return BadRequestError if 400 <= status_code < 500 else InternalServerError


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI-style error body."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
