"""Errors of the Anthropic-compatible paths (``/v1/messages``…) in Anthropic's shape.

Every other path answers in OpenAI's shape (:mod:`modelyard.api.errors`); under
:data:`ANTHROPIC_PATHS` the same handlers' answers are reshaped to::

    {"type": "error", "error": {"type": "not_found_error", "message": "..."}}

with the same status, but for a request validation error (422), which is a 400 as at
Anthropic. The message names the parameter when the OpenAI body did (``param``), so the
``anthropic`` SDK raises its typed exception (``NotFoundError``, …) saying what was wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from modelyard.gateway.inbound.anthropic_messages import error_type

__all__ = ["ANTHROPIC_PATHS", "anthropic_error_body", "install_anthropic_errors"]

#: The paths whose errors are Anthropic-shaped.
ANTHROPIC_PATHS = ("/v1/messages",)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def anthropic_error_body(status: int, openai_body: Any) -> dict[str, Any]:
    """Anthropic's error body for an OpenAI-shaped one of ``status``."""
    error = openai_body.get("error") if isinstance(openai_body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or "The request failed.")
    param = error.get("param")
    if isinstance(param, str) and param and param not in message:
        message = f"{message} (parameter: {param})"
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def _is_anthropic_path(path: str) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in ANTHROPIC_PATHS)


def _reshaped(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        answer = handler(request, exc)
        response = await answer if inspect.isawaitable(answer) else answer
        if not _is_anthropic_path(request.url.path) or not isinstance(response, JSONResponse):
            return response
        status = 400 if response.status_code == 422 else response.status_code
        body = anthropic_error_body(status, orjson.loads(bytes(response.body)))
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return JSONResponse(body, status_code=status, headers=headers)

    return handle


def install_anthropic_errors(app: FastAPI) -> None:
    """Reshape the answers of ``app``'s exception handlers (installed before) on
    :data:`ANTHROPIC_PATHS`."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _reshaped(handler)
