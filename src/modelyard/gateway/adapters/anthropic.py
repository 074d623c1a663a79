"""Anthropic's Messages API (``POST {base}/v1/messages``) behind the OpenAI chat format.

Requests and answers are translated by
:mod:`~modelyard.gateway.adapters.anthropic_translate`, stream events by
:class:`StreamTranslator` here. HTTP errors are classified by :mod:`.wire` (Anthropic's
529 "overloaded" is a server error, so the next target is tried); an ``error`` event in
the stream raises a server :class:`~modelyard.gateway.upstream_errors.UpstreamError`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from modelyard.gateway.adapters.anthropic_translate import (
    finish_reason,
    prompt_tokens,
    to_completion,
    to_messages_body,
    usage,
)
from modelyard.gateway.adapters.base import Adapter, Target
from modelyard.gateway.adapters.wire import post_json, post_sse, stream_error
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = ["ANTHROPIC_VERSION", "AnthropicAdapter", "StreamTranslator"]

#: The API version every request names.
ANTHROPIC_VERSION = "2023-06-01"


# -- the stream --------------------------------------------------------------------------


class StreamTranslator:
    """Turns Messages stream events, one at a time, into ``chat.completion.chunk`` dicts."""

    def __init__(self, model: str) -> None:
        self.id = "msg_unknown"
        self.model = model
        self.created = int(time.time())
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.completion_tokens = 0
        #: Content block index → tool call index, for the blocks that are tool calls.
        self.tool_index: dict[int, int] = {}
        self.finished = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def _count(self, counts: Any) -> None:
        if not isinstance(counts, dict):
            return
        if "input_tokens" in counts:
            self.prompt_tokens = prompt_tokens(counts)
            self.cached_tokens = int(counts.get("cache_read_input_tokens") or 0)
        if "output_tokens" in counts:
            self.completion_tokens = int(counts.get("output_tokens") or 0)

    def _start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        message = event.get("message") or {}
        self.id = message.get("id") or self.id
        self.model = message.get("model") or self.model
        self._count(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        block = event.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        index = self.tool_index[int(event.get("index", 0))] = len(self.tool_index)
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self.tool_index.get(int(event.get("index", 0)))
            if index is None:
                raise UpstreamError("protocol", "tool input for a block that is no tool call")
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self._count(event.get("usage"))
        reason = finish_reason((event.get("delta") or {}).get("stop_reason"))
        return [self._chunk({}, reason)] if reason else []

    def _stop(self) -> list[dict[str, Any]]:
        self.finished = True
        return [
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage(self.prompt_tokens, self.completion_tokens, self.cached_tokens),
            }
        ]

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """The chunks for one event; raises :class:`UpstreamError` on an ``error`` event."""
        if not isinstance(event, dict):
            raise UpstreamError("protocol", "the provider sent an event that is no object")
        kind = event.get("type")
        if kind == "error":
            raise stream_error(event)
        if kind == "message_start":
            return self._start(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            return self._stop()
        return []  # ping, content_block_stop and event types added later


# -- the adapter -----------------------------------------------------------------------


def _headers(target: Target) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    return headers


def _url(target: Target) -> str:
    return f"{target.base_url}/v1/messages"


class AnthropicAdapter(Adapter):
    """Chat completions, streamed or not, with tools, through the Messages API."""

    api = "anthropic"
    supports_tools = True

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        body = to_messages_body(request, target.model)
        answer = await post_json(
            self.http, _url(target), headers=_headers(target), body=body, timeout=target.timeout
        )
        return to_completion(answer)

    async def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        body = {**to_messages_body(request, target.model), "stream": True}
        translator = StreamTranslator(target.model)
        async for event in post_sse(
            self.http, _url(target), headers=_headers(target), body=body, timeout=target.timeout
        ):
            for chunk in translator.feed(event):
                yield chunk
        if not translator.finished:
            raise UpstreamError("protocol", "the stream ended before message_stop")
