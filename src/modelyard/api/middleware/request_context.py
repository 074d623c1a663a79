"""Everything done around each request, in one pure ASGI layer: an id (``x-request-id``,
the client's when well-formed), the body-size limit (413), the refusal of text that
can be neither stored nor sent on (400, :mod:`.text_guard`), Prometheus metrics, and a
logged 500 in the OpenAI shape for anything unhandled (the exception text never reaches
the client).

One layer rather than four: every layer wraps ``send`` for each message, and a streamed
answer has dozens of messages (``make bench`` measured the difference on the gateway).
"""

from __future__ import annotations

import logging
import re
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.api.middleware.body_limit import limit_body, too_large_response
from modelyard.api.middleware.metrics import HttpMetrics
from modelyard.api.middleware.text_guard import text_refusal
from modelyard.errors import InternalServerError
from modelyard.request_context import request_id_var
from modelyard.unique_ids import unique_hex

__all__ = ["RequestContextMiddleware"]

logger = logging.getLogger("modelyard.api")

_ACCEPTABLE_ID = re.compile(rb"^[A-Za-z0-9._\-]{8,128}$")


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id" and _ACCEPTABLE_ID.match(value):
            return str(value.decode())
    return f"req_{unique_hex()}"


#: Paths that take file uploads, with their own (larger) body limit.
UPLOAD_PATHS = ("/v2/datasets", "/v2/finetune/files")


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        max_body_bytes: int,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        id_header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started"] = started
        token = request_id_var.set(request_id)
        status = 500
        response_started = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        limit = (
            self.max_upload_bytes if scope["path"].startswith(UPLOAD_PATHS) else self.max_body_bytes
        )
        try:
            limited = await limit_body(scope, receive, limit)
            if limited is None:
                await too_large_response(limit)(scope, receive, send_with_context)
                return
            checked, refusal = await text_refusal(scope, limited)
            if refusal is not None:
                await refusal(scope, checked, send_with_context)
            else:
                await self.app(scope, checked, send_with_context)
        except Exception:
            logger.exception("Unhandled error in request %s", request_id)
            if response_started:
                raise
            error = InternalServerError(
                f"Internal server error; quote request id {request_id} when reporting it."
            )
            await JSONResponse(error.body(), status_code=500)(scope, receive, send_with_context)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
            request_id_var.reset(token)
