"""Refuse text that can be neither stored nor sent on: a 400 before any handler runs.

* An unpaired UTF-16 surrogate (``"\\ud800"`` in a JSON string) is not text at all: it
  cannot be encoded as UTF-8, so writing it to the database, to an upstream provider or
  into a response would raise ``UnicodeEncodeError`` after work had begun.
* A NUL character (``%00``) has no place in a path, a query string or a form field (names,
  e-mails, ids) and cannot be stored in a PostgreSQL ``text`` column. In a JSON body it is
  left to the route's own validation (an invalid model id, say); where PostgreSQL is the
  first to refuse it, :mod:`modelyard.api.errors` answers 400.

The check is exact and cheap: a JSON body is decoded here only when its bytes hold a
surrogate escape. Multipart bodies (file uploads) are left to their own validation.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope

from modelyard.errors import BadRequestError

__all__ = ["refused_text", "text_refusal"]

#: A JSON escape of a surrogate (paired or not: the decoded text decides).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NUL_ESCAPE = b"%00"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def refused_text(value: Any) -> str | None:
    """What is wrong with the strings (keys included) in decoded JSON ``value``, or ``None``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return (
                    "an unpaired surrogate (\\ud800-\\udfff), which is not a character; write "
                    "a character outside the BMP as a surrogate pair"
                )
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _json_problem(body: bytes) -> str | None:
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own parsing answers
    return refused_text(value)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _refusal(problem: str, where: str) -> JSONResponse:
    error = BadRequestError(
        f"The {where} holds {problem}. Such text can be neither stored nor sent on.",
        code="invalid_text",
    )
    return JSONResponse(error.body(), status_code=error.status_code)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    return body, messages


async def text_refusal(scope: Scope, receive: Receive) -> tuple[Receive, JSONResponse | None]:
    """``receive`` to hand on (the body replayed when it was read), and the 400 to send
    instead of running the app when the path, query or body holds refused text."""
    if "\x00" in scope["path"]:
        return receive, _refusal("a NUL character", "path")
    if _NUL_ESCAPE in scope["query_string"]:
        return receive, _refusal("a NUL character (%00)", "query string")
    if scope["method"] not in _BODY_METHODS:
        return receive, None
    content_type = _header(scope, b"content-type").split(b";", 1)[0].strip().lower()
    is_json = content_type.endswith((b"/json", b"+json"))
    if not is_json and content_type != b"application/x-www-form-urlencoded":
        return receive, None
    body, messages = await _read_body(receive)
    if is_json:
        problem = _json_problem(body)
    else:
        problem = "a NUL character (%00)" if _NUL_ESCAPE in body else None

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    if problem is not None:
        return replay, _refusal(problem, "request body")
    return replay, None
