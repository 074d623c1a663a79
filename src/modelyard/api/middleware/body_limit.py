"""The request-body size limit: a 413 in the OpenAI shape for anything larger."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope

from modelyard.errors import PayloadTooLargeError

__all__ = ["limit_body", "too_large_response"]


def too_large_response(max_bytes: int) -> JSONResponse:
    error = PayloadTooLargeError(
        f"The request body is larger than the limit of {max_bytes} bytes; "
        "send less data (or raise MODELYARD_MAX_BODY_BYTES).",
        code="request_too_large",
    )
    return JSONResponse(error.body(), status_code=error.status_code)


async def limit_body(scope: Scope, receive: Receive, max_bytes: int) -> Receive | None:
    """``receive`` to hand on, or ``None`` when the body is over ``max_bytes``.

    ``Content-Length`` is checked up front; a chunked body is read and counted first.
    """
    length = None
    chunked = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value
        elif key == b"transfer-encoding":
            chunked = value.lower() == b"chunked"
    if length is not None:
        return receive if length.isdigit() and int(length) <= max_bytes else None
    if not chunked:
        return receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > max_bytes:
            return None
        if not message.get("more_body", False):
            break
    buffered: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

    async def replay() -> Message:
        return buffered.pop() if buffered else await receive()

    return replay
