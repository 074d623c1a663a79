"""OpenAI answers in the Anthropic Messages API's shape: messages and their SSE streams.

:func:`to_message` turns a completion into a ``message``; :func:`anthropic_sse` turns a
stream of completion chunks into the Messages API's events, in their exact order::

    message_start, ping, (content_block_start, content_block_delta*, content_block_stop)*,
    message_delta, message_stop

A failure after the stream started ends it with an ``error`` event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from modelyard.errors import BadGatewayError, ModelyardError
from modelyard.gateway.sse import encode_named_event
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = ["StreamTranslator", "anthropic_sse", "stop_reason", "to_message", "usage"]

_FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def stop_reason(choice: dict[str, Any], stops: list[str]) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for an OpenAI choice.

    OpenAI does not say which stop sequence ended a completion (that is reported as
    ``end_turn``); vLLM and others do, in the choice's ``stop_reason``, which is honoured
    when it is one of the request's sequences.
    """
    finish = choice.get("finish_reason") or "stop"
    matched = choice.get("stop_reason")
    if finish == "stop" and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return _FINISH_REASONS.get(finish, "end_turn"), None


def usage(counts: Any) -> dict[str, int]:
    """Anthropic's usage for OpenAI's (cached prompt tokens reported as cache reads)."""
    if not isinstance(counts, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt = int(counts.get("prompt_tokens") or 0)
    details = counts.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    result = {
        "input_tokens": prompt - cached,
        "output_tokens": int(counts.get("completion_tokens") or 0),
    }
    if cached:
        result["cache_read_input_tokens"] = cached
    return result


def _tool_input(arguments: Any, name: str) -> Any:
    """The decoded arguments of a tool call (a 502 when they are not JSON)."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise BadGatewayError(
            f"The model called tool {name!r} with arguments that are not valid JSON.",
            code="invalid_tool_arguments",
        ) from None


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def to_message(completion: dict[str, Any], *, model: str, stops: list[str]) -> dict[str, Any]:
    """The Anthropic ``message`` for an OpenAI chat completion."""
    choices = completion.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise BadGatewayError("The provider's answer has no choices.", code="upstream_protocol")
    choice = choices[0]
    answer = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = _text(answer.get("content")) or _text(answer.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    for call in answer.get("tool_calls") or []:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or _new_id("toolu"),
                "name": name,
                "input": _tool_input(function.get("arguments"), name),
            }
        )
    reason, sequence = stop_reason(choice, stops)
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(completion.get("usage")),
    }


class StreamTranslator:
    """Turns OpenAI chunks into Anthropic events, one content block open at a time."""

    def __init__(self, *, model: str, stops: list[str]) -> None:
        self.model = model
        self.stops = stops
        self.block = -1  # index of the last block started
        self.open: str | None = None  # "text" or "tool" while a block is open
        self.tool: tuple[Any, str] | None = None  # (OpenAI index, id) of the open tool call
        self.choice: dict[str, Any] = {}
        self.usage: dict[str, int] | None = None

    def start(self, first: dict[str, Any] | None) -> list[bytes]:
        """``message_start`` and a ``ping``."""
        model = (first or {}).get("model") or self.model
        counts = usage((first or {}).get("usage"))
        message: dict[str, Any] = {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**counts, "output_tokens": 0},
        }
        return [
            encode_named_event("message_start", {"type": "message_start", "message": message}),
            encode_named_event("ping", {"type": "ping"}),
        ]

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open, self.tool = None, None
        return [
            encode_named_event(
                "content_block_stop", {"type": "content_block_stop", "index": self.block}
            )
        ]

    def _begin(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self.block += 1
        self.open = kind
        start = {"type": "content_block_start", "index": self.block, "content_block": block}
        return [*events, encode_named_event("content_block_start", start)]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self.block, "delta": delta}
        return encode_named_event("content_block_delta", event)

    def _text(self, text: str) -> list[bytes]:
        events = [] if self.open == "text" else self._begin("text", {"type": "text", "text": ""})
        return [*events, self._delta({"type": "text_delta", "text": text})]

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        function = call.get("function") or {}
        call_id = call.get("id")
        if call_id and (self.tool is None or self.tool[1] != call_id):
            block = {
                "type": "tool_use",
                "id": call_id,
                "name": str(function.get("name") or ""),
                "input": {},
            }
            events = self._begin("tool", block)
            self.tool = (call.get("index"), call_id)
        elif self.tool is None or call.get("index", self.tool[0]) != self.tool[0]:
            raise UpstreamError("protocol", "a tool call delta does not follow its tool call")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The events for one chunk (usage and the finish reason are kept for the end)."""
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage(chunk["usage"])
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        delta = choice.get("delta") or {}
        events: list[bytes] = []
        text = _text(delta.get("content")) or _text(delta.get("refusal"))
        if text:
            events.extend(self._text(text))
        for call in delta.get("tool_calls") or []:
            events.extend(self._tool_call(call))
        if choice.get("finish_reason"):
            self.choice = choice
        return events

    def end(self) -> list[bytes]:
        """Close the open block, then ``message_delta`` and ``message_stop``."""
        reason, sequence = stop_reason(self.choice, self.stops)
        counts: dict[str, int] = {"output_tokens": 0}
        if self.usage is not None:
            counts = {**self.usage}
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": counts,
        }
        return [
            *self._close(),
            encode_named_event("message_delta", delta),
            encode_named_event("message_stop", {"type": "message_stop"}),
        ]


async def anthropic_sse(
    first: dict[str, Any] | None,
    rest: AsyncIterator[dict[str, Any]],
    *,
    model: str,
    stops: list[str],
) -> AsyncIterator[bytes]:
    """The Messages API's SSE stream for an OpenAI chunk stream."""
    translator = StreamTranslator(model=model, stops=stops)
    try:
        for event in translator.start(first):
            yield event
        if first is not None:
            for event in translator.feed(first):
                yield event
        async for chunk in rest:
            for event in translator.feed(chunk):
                yield event
        for event in translator.end():
            yield event
    except (UpstreamError, ModelyardError) as error:
        failure = {
            "type": "error",
            "error": {"type": "api_error", "message": f"The upstream stream failed: {error}"},
        }
        yield encode_named_event("error", failure)
    finally:
        closer = getattr(rest, "aclose", None)
        if closer is not None:
            await closer()
