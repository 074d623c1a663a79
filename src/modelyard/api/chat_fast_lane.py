"""``POST /v1/chat/completions`` answered by a plain ASGI layer, below FastAPI's router.

The gateway's busiest route spent about a quarter of its event-loop time in FastAPI's
layers around the endpoint (``make bench``'s profile, ``python -m bench.profile``): the
route walk, the per-request exit stacks, dependency solving and the body's generic
validation. This layer does for that one route what those layers did — the JSON body
read (an invalid body refused before anything else, as FastAPI does), the caller
identified (:func:`~modelyard.api.deps.subscribed_user`), the body validated
(:class:`~modelyard.gateway.schemas.ChatCompletionRequest`) — and calls the same
:func:`~modelyard.api.chat_completion.complete_chat` the FastAPI endpoint does; an error
goes to the application's own exception handlers, so every answer has the same shape as
before. The FastAPI route stays: it documents the endpoint in ``/openapi.json``.

It sits inside :class:`~modelyard.api.middleware.RequestContextMiddleware` (request id,
body limit, metrics under the route's template).
"""

from __future__ import annotations

import inspect
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.api.chat_completion import complete_chat
from modelyard.api.deps import subscribed_user
from modelyard.api.routes import v1_openai
from modelyard.gateway.schemas import ChatCompletionRequest

__all__ = ["PATH", "ChatFastLane"]

PATH = "/v1/chat/completions"


def _json_body(body: bytes) -> Any:
    """The parsed body, refused the way FastAPI refuses it (missing, or not JSON)."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ]
        ) from None


def _validated(data: Any) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(data, from_attributes=True)  # as FastAPI does
    except ValidationError as error:
        errors = error.errors(include_url=False)
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in errors]
        ) from None


class ChatFastLane:
    """ASGI middleware answering ``POST /v1/chat/completions`` itself; see the module."""

    def __init__(self, app: ASGIApp, *, application: FastAPI) -> None:
        self.app = app
        self.application = application
        #: The documented route, for the metrics' route label.
        self.route = next(
            route
            for route in v1_openai.router.routes
            if isinstance(route, APIRoute) and route.path == PATH
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        request = Request(scope, receive)
        try:
            data = _json_body(await request.body())
            user = await subscribed_user(request)
            response = await complete_chat(request, user, _validated(data))
        except Exception as error:
            response = await self._handled(request, error)
        await response(scope, receive, send)

    async def _handled(self, request: Request, error: Exception) -> Response:
        """The application's answer to ``error`` (its exception handler's), or re-raised
        for the outer layer's logged 500 when it has none."""
        handlers = self.application.exception_handlers
        for kind in type(error).__mro__:
            if kind is Exception:
                break
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(request, error)
                response: Response = await answer if inspect.isawaitable(answer) else answer
                return response
        raise error
