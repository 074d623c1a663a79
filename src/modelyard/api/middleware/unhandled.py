"""Turns an unhandled exception into a logged 500 in the OpenAI shape.

It sits inside :class:`RequestIdMiddleware`, so the response carries the request id and
the log line names it; the exception text itself never reaches the client.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.errors import InternalServerError
from modelyard.request_context import current_request_id

__all__ = ["UnhandledErrorMiddleware"]

logger = logging.getLogger("modelyard.api")


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = current_request_id()
            logger.exception("Unhandled error in request %s", request_id)
            if started:
                raise
            error = InternalServerError(
                f"Internal server error; quote request id {request_id} when reporting it."
            )
            await JSONResponse(error.body(), status_code=500)(scope, receive, send)
