"""Exception handlers that render every error, unknown routes included, in the OpenAI shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.api.upstream_detail import message_for
from modelyard.errors import ModelyardError, error_body, error_for_status

__all__ = ["install_error_handlers"]


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _modelyard_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelyardError)
    body = exc.body()
    body["error"]["message"] = message_for(request, exc)
    return _json(exc.status_code, body, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"Unknown route: {request.method} {request.url.path}. The API is listed at /docs."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    error_class = error_for_status(exc.status_code)
    body = error_body(message, error_class.error_type)
    return _json(exc.status_code, body, dict(exc.headers or {}))


def _location(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        message = "The request body is not valid JSON; send a JSON object."
        body = error_body(message, "invalid_request_error", code="invalid_json")
        return _json(400, body)
    param = _location(first.get("loc", ()))
    details = "; ".join(f"{_location(e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5])
    body = error_body(
        f"Invalid request: {details}", "invalid_request_error", param=param, code="invalid_value"
    )
    # The OpenAI-compatible API answers a bad parameter with 400, as OpenAI does.
    return _json(400 if request.url.path.startswith("/v1/") else 422, body)


#: The largest id or count the databases store (a PostgreSQL ``integer``).
MAX_STORED_INTEGER = 2**31 - 1


def _number_out_of_range(exc: Exception) -> bool:
    if isinstance(exc, OverflowError):  # SQLite
        return True
    text = str(getattr(exc, "orig", exc))
    return "out of int" in text or "out of range" in text  # PostgreSQL (asyncpg)


#: PostgreSQL's refusals of text it cannot store: a NUL character (``character not in
#: repertoire``) and ``\u0000`` in a JSON value (``untranslatable character``).
_UNSTORABLE_TEXT_STATES = frozenset({"22021", "22P05"})


def _unstorable_text(exc: Exception) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _UNSTORABLE_TEXT_STATES


async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
    """What the database refuses to store, for a reason in the request: a 400, not a 500.

    A number too large (an id like 9223372036854775808), or text with a NUL character
    (PostgreSQL cannot store one; the request's statement is rolled back).
    """
    if _unstorable_text(exc):
        message = (
            "Text in the request holds a NUL character (\\u0000), which cannot be stored; "
            "remove it."
        )
        return _json(400, error_body(message, "invalid_request_error", code="invalid_text"))
    if not _number_out_of_range(exc):
        raise exc
    message = (
        f"A number in the request is out of range: ids and counts are at most "
        f"{MAX_STORED_INTEGER:,}. Check the ids in the path and the body."
    )
    return _json(400, error_body(message, "invalid_request_error", code="number_out_of_range"))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DBAPIError, _out_of_range)
    app.add_exception_handler(ModelyardError, _modelyard_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
