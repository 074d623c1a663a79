"""Errors of the Anthropic-compatible paths (``/v1/messages``…) in Anthropic's shape.

Every other path answers in OpenAI's shape (:mod:`modelyard.api.errors`, the
middleware's refusals); under :data:`ANTHROPIC_PATHS` those JSON error answers are
reshaped on their way out to::

    {"type": "error", "error": {"type": "not_found_error", "message": "..."}}

with the same status, but for a request validation error (422), which is a 400 as at
Anthropic. The message names the parameter when the OpenAI body did (``param``), so the
``anthropic`` SDK raises its typed exception (``NotFoundError``, …) saying what was wrong.
Streams (200) pass untouched; their failures are ``error`` events already.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.gateway.inbound.anthropic_messages import error_type

__all__ = [
    "ANTHROPIC_PATHS",
    "AnthropicErrorShape",
    "anthropic_error_body",
    "install_anthropic_errors",
]

#: The paths whose errors are Anthropic-shaped.
ANTHROPIC_PATHS = ("/v1/messages",)


def anthropic_error_body(status: int, openai_body: Any) -> dict[str, Any]:
    """Anthropic's error body for an OpenAI-shaped one of ``status``."""
    error = openai_body.get("error") if isinstance(openai_body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or "The request failed.")
    param = error.get("param")
    if isinstance(param, str) and param and param not in message:
        message = f"{message} (parameter: {param})"
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


_SUBPATHS = tuple(f"{prefix}/" for prefix in ANTHROPIC_PATHS)


def _is_anthropic_path(path: str) -> bool:
    return path in ANTHROPIC_PATHS or path.startswith(_SUBPATHS)


def _decoded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class AnthropicErrorShape:
    """ASGI middleware: JSON error answers on :data:`ANTHROPIC_PATHS` in Anthropic's shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_anthropic_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the start of an error answer, until its body is read
        parts: list[bytes] = []

        async def reshape(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message["headers"]).get("content-type", "")
                if message["status"] >= 400 and content_type.startswith("application/json"):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                status = 400 if held["status"] == 422 else held["status"]
                body = orjson.dumps(anthropic_error_body(status, _decoded(b"".join(parts))))
                headers = MutableHeaders(raw=list(held["headers"]))
                headers["content-length"] = str(len(body))
                await send({**held, "status": status, "headers": headers.raw})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, reshape)


def install_anthropic_errors(app: FastAPI) -> None:
    """Add :class:`AnthropicErrorShape` outside the middleware added so far (call it
    last, so that the middleware's own refusals are reshaped too)."""
    app.add_middleware(AnthropicErrorShape)
