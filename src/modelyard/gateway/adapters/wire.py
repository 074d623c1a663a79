"""Calls to providers, with every failure an :class:`UpstreamError` of one category set.

The gateway's adapters use :func:`post_json` and :func:`post_sse` (the request path);
connection checks, provider fine-tuning and the training advice use :func:`send`, which
returns any answer whole, and :func:`answer_error` for one that failed. All of them use
the app's :class:`~modelyard.gateway.http.UpstreamHttp`: the first two its lean
keep-alive client, :func:`send` its aiohttp session.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from modelyard.gateway.adapters.sse_events import SseDataDecoder
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.http1_client import Http1Answer as UpstreamAnswer
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = [
    "UpstreamAnswer",
    "answer_error",
    "error_fields",
    "post_json",
    "post_sse",
    "retry_after_seconds",
    "send",
    "stream_error",
]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``, in seconds."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _text(value: Any) -> str | None:
    return str(value) if value else None


def error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """The message, code and parameter of an error body: OpenAI's shape (also
    Anthropic's and Google's), a plain ``{"error"}``, ``{"message"}`` or ``{"detail"}``, a
    list of those (Hugging Face), or text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip()[:300] or "no body", None, None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("error") or error.get("detail")
            return (
                str(message or orjson.dumps(error).decode()[:300]),
                _text(error.get("code") or error.get("type")),
                _text(error.get("param")),
            )
        if isinstance(error, str):
            return error, None, None
    return str(data)[:300], None, None


def _error_reason(body: bytes) -> str | None:
    """The first ``ErrorInfo`` reason of a Google-style error body, if any.

    Only this structured field is read: an error's message may quote the client's own
    request, so it never decides what kind of failure this was."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("rpc.ErrorInfo"):
            reason = detail.get("reason")
            return reason if isinstance(reason, str) else None
    return None


def _status_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    message, code, param = error_fields(body)
    return UpstreamError.from_status(
        status,
        f"HTTP {status}: {message}",
        retry_after=retry_after_seconds(headers),
        reason=_error_reason(body),
        code=code,
        param=param,
        detail=message,
    )


#: Error types providers send in a stream's error event, as the HTTP status they stand for
#: (OpenAI and Anthropic ``type``, Hugging Face's text-generation ``error_type``).
_STREAM_ERROR_STATUSES = {
    "invalid_request_error": 400,
    "validation": 422,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "request_too_large": 413,
}


def stream_error(event: Mapping[str, Any]) -> UpstreamError:
    """The :class:`UpstreamError` for a stream event carrying ``error``.

    Classified like an HTTP error of the status the event stands for (Gemini's numeric
    ``code``, or the error type), so a request the provider refuses mid-stream (a
    validation error) is the client's fault, not the target's; anything unknown is a
    ``server`` error."""
    error = event.get("error")
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("type") or "unknown error"
        kind, code = error.get("type"), error.get("code")
    else:
        message, kind, code = error or "unknown error", event.get("error_type"), None
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    if status is None and isinstance(kind, str):
        status = _STREAM_ERROR_STATUSES.get(kind)
    text = f"error in the stream: {message}"
    if status is None:
        return UpstreamError("server", text)
    return UpstreamError.from_status(status, text)


def _transport_error(exc: BaseException, timeout: float) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamError("timeout", f"no answer within {timeout:g} s")
    return UpstreamError("connection", f"{type(exc).__name__}: {exc}")


async def post_json(
    http: UpstreamHttp,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Any,
    timeout: float,
) -> Any:
    """POST ``body`` as JSON and return the decoded answer, or raise :class:`UpstreamError`."""
    try:
        answer = await http.client.post(
            url,
            headers={"content-type": "application/json", **headers},
            body=orjson.dumps(body),
            timeout=timeout,
        )
    except (TimeoutError, OSError) as exc:
        raise _transport_error(exc, timeout) from None
    if answer.status >= 400:
        raise _status_error(answer.status, answer.headers, answer.body)
    try:
        return orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise UpstreamError("protocol", "the provider answered with invalid JSON") from None


async def post_sse(
    http: UpstreamHttp,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Any,
    timeout: float,
    raise_errors: bool = False,
) -> AsyncIterator[Any]:
    """POST ``body`` and yield each SSE ``data:`` payload decoded, until ``[DONE]`` or EOF;
    with ``raise_errors``, an object carrying ``error`` raises :func:`stream_error` instead
    (so that an adapter passing the events on needs no relay of its own)."""
    try:
        async with http.client.stream(
            url,
            headers={"content-type": "application/json", "accept": "text/event-stream", **headers},
            body=orjson.dumps(body),
            read_timeout=timeout,
        ) as response:
            if response.status >= 400:
                raise _status_error(response.status, response.headers, await response.read())
            events = SseDataDecoder()
            async for data in response:
                for event in events.feed(data):
                    if raise_errors and type(event) is dict and "error" in event:
                        raise stream_error(event)
                    yield event
                if events.done:
                    response.close(drain=True)  # its connection is kept for the next call
                    return
            for event in events.end():
                if raise_errors and type(event) is dict and "error" in event:
                    raise stream_error(event)
                yield event
    except UpstreamError:
        raise
    except (TimeoutError, OSError) as exc:
        raise _transport_error(exc, timeout) from None


def answer_error(answer: UpstreamAnswer) -> UpstreamError | None:
    """The :class:`UpstreamError` an answer of status 400 or more stands for, else None."""
    if answer.status < 400:
        return None
    return _status_error(answer.status, answer.headers, answer.body)


async def send(
    http: UpstreamHttp,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,
    json_body: Any = None,
    form: aiohttp.FormData | None = None,
    params: Mapping[str, str] | None = None,
) -> UpstreamAnswer:
    """One call off the request path, within ``timeout`` in all: the answer of any status,
    or an :class:`UpstreamError` (``timeout``, ``connection``) when none came back."""
    data: bytes | aiohttp.FormData | None = form
    sent = dict(headers)
    if json_body is not None:
        data = orjson.dumps(json_body)
        sent["content-type"] = "application/json"
    try:
        async with http.session.request(
            method,
            url,
            data=data,
            params=params,
            headers=sent,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            return UpstreamAnswer(response.status, response.headers, await response.read())
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise _transport_error(exc, timeout) from None
