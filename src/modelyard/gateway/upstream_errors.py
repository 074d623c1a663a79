"""Errors from upstream providers, classified for failover, and their client-facing form.

::

    UpstreamError (status, category, retry_after, reason, code, param, detail)
      category: "rate_limited" 429 · "unauthorized" 401/403 · "not_found" 404 (this
                target lacks the model: the next target may have it) · "client" other 4xx ·
                "server" 5xx · "timeout" · "connection" · "protocol" (a malformed answer)
      reason:   the provider's machine-readable reason when it sent one (Google's
                ``ErrorInfo`` reason, e.g. ``API_KEY_INVALID``), never free text
      code, param, detail: the provider's error code (or type), the parameter it names and
                its own message, for callers that keep them (provider fine-tuning)

``client`` is the request's own fault (400, 413, 422…): it says nothing about the target,
so it never counts against a key or an endpoint (see :data:`CLIENT_CATEGORIES`).

:func:`classify_status` maps an upstream HTTP status to a category;
:func:`client_error` turns a final upstream error into the error the client gets.
"""

from __future__ import annotations

from typing import Any, Literal

from modelyard.errors import (
    BadGatewayError,
    BadRequestError,
    ModelyardError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from modelyard.security.redaction import redact

__all__ = ["CLIENT_CATEGORIES", "Category", "UpstreamError", "classify_status", "client_error"]

Category = Literal[
    "rate_limited",
    "unauthorized",
    "not_found",
    "client",
    "server",
    "timeout",
    "connection",
    "protocol",
]

#: Categories caused by the request itself, not by the target (its key, endpoint or model).
CLIENT_CATEGORIES: frozenset[Category] = frozenset({"client"})

#: Upstream messages are quoted up to this length.
MAX_MESSAGE = 500
#: The provider's own message is kept up to this length.
MAX_DETAIL = 1000


def classify_status(status: int) -> Category:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "unauthorized"
    if status == 404:
        return "not_found"
    if 400 <= status < 500:
        return "client"
    return "server"


class UpstreamError(Exception):
    """A provider call that did not succeed."""

    def __init__(
        self,
        category: Category,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
        code: str | None = None,
        param: str | None = None,
        detail: str | None = None,
    ) -> None:
        message = redact(message)[:MAX_MESSAGE]
        super().__init__(message)
        self.category: Category = category
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.reason = reason
        self.code = code
        self.param = param
        #: The provider's own message (unprefixed, secrets masked); ``message`` if none.
        self.detail = redact(detail)[:MAX_DETAIL] if detail is not None else message

    @classmethod
    def from_status(
        cls,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        reason: str | None = None,
        code: str | None = None,
        param: str | None = None,
        detail: str | None = None,
    ) -> UpstreamError:
        return cls(
            classify_status(status),
            message,
            status=status,
            retry_after=retry_after,
            reason=reason,
            code=code,
            param=param,
            detail=detail,
        )


def client_error(
    error: UpstreamError, provider: str, *, attempts: int = 0, kind: str | None = None
) -> ModelyardError:
    """What the client is told when ``error`` ends the request (``provider`` names the
    provider in the message; ``attempts`` and ``kind`` go on the error for usage)."""
    text = f"{provider}: {error.message}"
    tried: dict[str, Any] = {"attempts": attempts, "provider": kind}
    if error.category == "not_found":
        return NotFoundError(text, code="model_not_found", **tried)
    if error.category == "client":
        if error.status == 422:
            return UnprocessableEntityError(text, **tried)
        return BadRequestError(text, code="upstream_bad_request", **tried)
    if error.category == "rate_limited":
        return RateLimitError(
            text, retry_after=error.retry_after or 1, code="upstream_rate_limited", **tried
        )
    if error.category == "unauthorized":
        return BadGatewayError(
            f"{text} — the provider rejected the key; check the keys in your profile "
            "or the admin panel.",
            code="upstream_unauthorized",
            **tried,
        )
    if error.category == "timeout":
        return ServiceUnavailableError(text, code="upstream_timeout", **tried)
    return BadGatewayError(text, code=f"upstream_{error.category}", **tried)
