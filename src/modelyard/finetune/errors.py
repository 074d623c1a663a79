"""Errors of provider fine-tuning, in the service's error tree.

::

    ProviderFailure (mixin: the provider's status, code, message and parameter)
    ├── ProviderRejectedError     400  the provider refused what was sent (a bad file, an
    │                                  unknown model, a finished job): fix it and run again
    ├── ProviderRateLimitedError  429  the provider is out of quota or rate limited (as
    │                                  the gateway answers it, with ``Retry-After``)
    └── ProviderFailedError       502  the provider refused the key (401/403), failed
                                       (5xx), timed out or could not be reached
    NoActiveProviderError         409  no active provider to run on

:func:`provider_error` picks the class from the category of the provider's HTTP status
(:func:`~modelyard.gateway.upstream_errors.classify_status`, the gateway's). Messages pass
through :func:`clean_text`, which masks the key and anything shaped like one.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.errors import (
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ModelyardError,
    RateLimitError,
)
from modelyard.gateway.upstream_errors import classify_status
from modelyard.security.redaction import MASK, redact

__all__ = [
    "NoActiveProviderError",
    "ProviderFailedError",
    "ProviderFailure",
    "ProviderRateLimitedError",
    "ProviderRejectedError",
    "clean_text",
    "provider_error",
]

#: Provider messages are kept up to this many characters.
MAX_MESSAGE = 1000
_WHITESPACE = re.compile(r"\s+")
_HINTS = {
    401: "the provider rejected its API key: check or replace the key in /admin (Providers) "
    "and run the command again",
    403: "the provider refused access with this key: check the key's permissions in /admin "
    "(Providers) and run the command again",
    429: "the provider's rate limit or quota is used up: check the account's limits and "
    "billing, then run the command again",
}


def clean_text(text: str, key: str | None = None, *, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, the key and key-shaped strings masked, at most ``limit`` long."""
    if key and len(key) >= 4:
        text = text.replace(key, MASK)
    text = _WHITESPACE.sub(" ", redact(text)).strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


class ProviderFailure(ModelyardError):
    """A call to a provider's files or fine-tuning API that did not work."""

    def __init__(
        self,
        message: str,
        *,
        provider_status: int | None,
        provider_code: str | None,
        provider_message: str,
        provider_param: str | None = None,
    ) -> None:
        super().__init__(message, param=provider_param, code=provider_code or "provider_error")
        self.provider_status = provider_status
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.provider_param = provider_param
        #: The command that keeps this error, when there is one.
        self.command_id: int | None = None

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["provider_status"] = self.provider_status
        if self.command_id is not None:
            body["error"]["command_id"] = self.command_id
        return body


class ProviderRejectedError(ProviderFailure, BadRequestError):
    """The provider refused the request itself (HTTP 400, 404, 409, 422, …)."""


class ProviderRateLimitedError(ProviderFailure):
    """The provider is rate limited or out of quota (HTTP 429)."""

    status_code = RateLimitError.status_code
    error_type = RateLimitError.error_type


class ProviderFailedError(ProviderFailure, BadGatewayError):
    """The provider refused the key, failed or did not answer."""


def provider_error(
    label: str,
    *,
    status: int | None,
    code: str | None,
    message: str,
    param: str | None = None,
    retry_after: float | None = None,
) -> ProviderFailure:
    """The error for a provider's answer: ``label`` names the provider (never the key)."""
    if status is None:
        what = f"{label} could not be used: {message}"
    else:
        what = f"{label} answered HTTP {status}" + (f" ({code})" if code else "") + f": {message}"
    hint = _HINTS.get(status or 0)
    if hint is None and status is not None and status >= 500:
        hint = "the provider failed; try again later"
    if hint is None and status is not None:
        hint = "fix the file or parameters it names and run the command again"
    text = f"{what.rstrip('.')}. {hint[0].upper()}{hint[1:]}." if hint else what
    category = classify_status(status) if status is not None else None
    cls: type[ProviderFailure] = ProviderFailedError
    if category in ("client", "not_found"):
        cls = ProviderRejectedError
    elif category == "rate_limited":
        cls = ProviderRateLimitedError
    failure = cls(
        text,
        provider_status=status,
        provider_code=code,
        provider_message=message,
        provider_param=param,
    )
    if category == "rate_limited":
        failure.headers["Retry-After"] = str(max(1, round(retry_after or 1)))
    return failure


class NoActiveProviderError(ConflictError):
    """Nothing to run provider fine-tuning on."""

    def __init__(self) -> None:
        super().__init__(
            "No active AI provider configured: add one in /admin (Providers) or with "
            "POST /v2/admin/providers, and make it the default (or activate one); "
            "fine-tuning runs on the default provider, else on the first active one.",
            code="no_active_provider",
        )
