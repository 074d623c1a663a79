"""What a Responses API request becomes for each target, decided when the target is tried.

A request that came in on ``POST /v1/responses`` carries its Responses body
(:class:`~modelyard.gateway.schemas.ResponsesNative`) beside its chat form. The dispatcher
asks :func:`request_for` before each call:

* a target of provider type ``openai`` (api.openai.com, or any base URL an admin
  configured *as OpenAI*) speaks the Responses API: its adapter POSTs the client's body to
  ``{base_url}/responses`` with the upstream model name and ``store: false`` (the gateway
  keeps responses itself; a ``previous_response_id`` was already resolved into ``input``
  items from our store), and relays the answer and its events as they came;
* every other target gets the chat form alone — ``openai_compatible`` and ``custom`` base
  URLs included: an OpenAI-compatible server of unknown capability may not speak
  ``/responses`` (vLLM, Ollama, Groq, … speak chat completions), so it keeps the
  translated path.

Answers relayed unchanged travel beside the chat-shaped ones under
:data:`NATIVE_RESPONSE` (a whole Response) and :data:`NATIVE_EVENT` (one stream event);
the chat-shaped side (:func:`to_completion`, :func:`event_chunk`) carries the text and the
usage in chat form, so that metering is the same on both paths.
"""

from __future__ import annotations

from typing import Any

from modelyard.gateway.adapters.base import Target
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.providers.kinds import ProviderKind

__all__ = [
    "NATIVE_EVENT",
    "NATIVE_RESPONSE",
    "RESPONSES_KINDS",
    "chat_usage",
    "event_chunk",
    "native_body",
    "request_for",
    "speaks_responses",
    "to_completion",
]

#: Provider types whose upstream speaks OpenAI's Responses API.
RESPONSES_KINDS = frozenset({ProviderKind.OPENAI})

#: The key of a completion holding the provider's Response as it came.
NATIVE_RESPONSE = "x_openai_response"
#: The key of a chunk holding the provider's Responses stream event as it came.
NATIVE_EVENT = "x_openai_response_event"

#: Events that end a Responses stream, with the Response they carry.
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def speaks_responses(target: Target) -> bool:
    """Whether ``target``'s upstream takes Responses requests as they are."""
    return target.credential.kind in RESPONSES_KINDS


def request_for(request: ChatCompletionRequest, target: Target) -> ChatCompletionRequest:
    """``request`` as ``target`` takes it: with its Responses body only where it speaks it."""
    if request.responses_native is None or speaks_responses(target):
        return request
    return request.with_responses_native(None)


def native_body(request: ChatCompletionRequest, target: Target, *, stream: bool) -> dict[str, Any]:
    """The Responses body for ``target`` (its model name; never stored upstream)."""
    native = request.responses_native
    assert native is not None, "only a request from the Responses API has a native body"
    body = {**native.body, "model": target.model, "store": False, "stream": stream}
    body.pop("previous_response_id", None)
    if not stream:
        body.pop("stream_options", None)
    return body


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Chat's ``usage`` for a Response's (input/output tokens and their details)."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(cached)},
        "completion_tokens_details": {"reasoning_tokens": int(reasoning)},
    }


def _finish_reason(response: dict[str, Any], calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def to_completion(response: dict[str, Any]) -> dict[str, Any]:
    """The chat completion a Response stands for (its text, function calls and usage)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict):
                    texts.append(str(part.get("text") or part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    completion: dict[str, Any] = {
        "id": str(response.get("id") or ""),
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": str(response.get("model") or ""),
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(response, bool(calls))}
        ],
    }
    usage = chat_usage(response.get("usage"))
    if usage is not None:
        completion["usage"] = usage
    return completion


def event_chunk(event: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat chunk a Responses stream event stands for, the event riding on it: text
    deltas as content, the final Response's usage as usage."""
    chunk: dict[str, Any] = {
        "id": "",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        NATIVE_EVENT: event,
    }
    kind = event.get("type")
    if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
        chunk["choices"] = [
            {"index": 0, "delta": {"content": event["delta"]}, "finish_reason": None}
        ]
    elif kind in FINAL_EVENTS:
        response = event.get("response") or {}
        usage = chat_usage(response.get("usage"))
        if usage is not None:
            chunk["usage"] = usage
    return chunk
