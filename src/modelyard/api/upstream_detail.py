"""Who sees why an upstream failed: staff get the per-target detail, everyone else one
short, friendly message with the request id (``x-request-id``).

A failover summary lists every target tried with its outcome (provider names, upstream
hosts, ``Http1Error: Cannot connect to host …``, cooldowns): useful to whoever
runs the server, noise and internals to a user. The detail is logged with the request id,
so staff can find it from what the user reports. The OpenAI error shape, status, type and
code stay the same for both.
"""

from __future__ import annotations

import logging

from fastapi import Request

from modelyard.errors import ModelyardError
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.request_context import current_request_id

__all__ = [
    "INTERNAL_CATEGORY",
    "INTERNAL_DETAIL_CODES",
    "friendly_stream_failure",
    "message_for",
    "sees_detail",
]

logger = logging.getLogger("modelyard.upstream")

#: Error codes whose message holds upstream internals: the failover summary (every target
#: with its outcome) and a connection failure (the host, the client's exception). Any
#: other upstream error keeps its message (``Anthropic: HTTP 529: Overloaded``, a
#: timeout, a refused key or request): short, and it says what the user can do.
INTERNAL_DETAIL_CODES = frozenset({"all_targets_failed", "upstream_connection"})
#: The upstream error category whose message is internal (see above).
INTERNAL_CATEGORY = "connection"


def sees_detail(request: Request) -> bool:
    """Whether the request's caller (already identified by its route) is staff."""
    caller = request.scope.get("state", {}).get("caller")
    return bool(caller is not None and caller.user.is_staff)


def _reference() -> str:
    request_id = current_request_id()
    return f"request id {request_id}" if request_id else "the time it happened"


def message_for(request: Request, error: ModelyardError) -> str:
    """``error``'s message as the caller may see it (logged in full when shortened)."""
    if error.code not in INTERNAL_DETAIL_CODES:
        return error.message
    if sees_detail(request):
        return f"{error.message} ({_reference()})"
    logger.warning("Upstream failure shown shortened (%s): %s", _reference(), error.message)
    return (
        "The model could not answer right now: its provider failed or could not be reached. "
        "Try again in a moment; if it keeps failing, give an administrator "
        f"the {_reference()}."
    )


def friendly_stream_failure(error: UpstreamError, *, staff: bool) -> str:
    """The error event's message when the upstream stream fails midway."""
    if error.category != INTERNAL_CATEGORY:
        return f"The upstream stream failed: {error.message}"
    if staff:
        return f"The upstream stream failed: {error.message} ({_reference()})"
    logger.warning("Upstream stream failure shown shortened (%s): %s", _reference(), error.message)
    return (
        "The upstream stream failed midway: the provider could not be reached. Send the "
        f"message again; if it keeps failing, give an administrator the {_reference()}."
    )
