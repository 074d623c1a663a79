"""The Responses API's answers, built from the gateway's chat completions.

* :func:`to_response` turns a chat completion into a ``Response`` object: a ``message``
  item (``output_text`` parts) and one ``function_call`` item per tool call; a ``length``
  finish is ``status: "incomplete"`` with ``incomplete_details.reason:
  "max_output_tokens"``. The stream's events are
  :mod:`modelyard.gateway.inbound.openai_responses_stream`'s.
* :func:`assistant_message` is the chat message of a Response's output (what a stored
  context keeps of the answer).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from modelyard.gateway.inbound.chunk_reader import content_text
from modelyard.gateway.inbound.openai_responses import ResponsesRequest
from modelyard.gateway.schemas import ChatMessage

__all__ = [
    "INCOMPLETE_REASONS",
    "arguments_text",
    "assistant_message",
    "finish_response",
    "new_item_id",
    "new_response_id",
    "response_shell",
    "response_usage",
    "text_part",
    "to_response",
]

#: Chat finish reasons that leave a Response ``incomplete``, with the reason it names.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_response_id() -> str:
    """A fresh Response id (``resp_…``)."""
    return f"resp_{uuid.uuid4().hex}"


def new_item_id(prefix: str) -> str:
    """A fresh output item id (``msg_…``, ``fc_…``)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def response_usage(counts: Any) -> dict[str, Any]:
    """Responses' ``usage`` for a chat completion's."""
    counts = counts if isinstance(counts, dict) else {}
    prompt = int(counts.get("prompt_tokens") or 0)
    completion = int(counts.get("completion_tokens") or 0)
    prompt_details = counts.get("prompt_tokens_details") or {}
    completion_details = counts.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)
        },
        "total_tokens": int(counts.get("total_tokens") or prompt + completion),
    }


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def response_shell(
    request: ResponsesRequest, *, response_id: str, created_at: int, model: str
) -> dict[str, Any]:
    """A Response in progress: the request's settings echoed, no output yet."""
    reasoning = request.reasoning or {}
    shell: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": (
            {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
            if request.reasoning
            else None
        ),
        "store": request.store,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": {"format": (request.text or {}).get("format") or {"type": "text"}},
        "tool_choice": request.tool_choice or "auto",
        "tools": [_echo_tool(tool) for tool in request.tools or []],
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": "disabled",
        "metadata": dict(request.metadata or {}),
    }
    if request.user is not None:
        shell["user"] = request.user
    return shell


def finish_response(response: dict[str, Any], finish_reason: str | None, usage: Any) -> None:
    """Set a Response's final status (completed or incomplete) and usage."""
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    if reason is None:
        response["status"] = "completed"
        response["completed_at"] = int(time.time())
    else:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}
    response["usage"] = response_usage(usage)


def text_part(text: str) -> dict[str, Any]:
    """An ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def arguments_text(value: Any) -> str:
    """A tool call's arguments as the JSON string Responses carries."""
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value if isinstance(value, str) else ""


def to_response(
    completion: dict[str, Any],
    request: ResponsesRequest,
    *,
    response_id: str,
    created_at: int,
    model: str,
) -> dict[str, Any]:
    """The Response for a chat completion."""
    response = response_shell(request, response_id=response_id, created_at=created_at, model=model)
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    reason = choice.get("finish_reason")
    status = "incomplete" if reason in INCOMPLETE_REASONS else "completed"
    answer = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text, refusal = content_text(answer.get("content")), content_text(answer.get("refusal"))
    if text or refusal or not answer.get("tool_calls"):
        part = {"type": "refusal", "refusal": refusal} if refusal and not text else text_part(text)
        output.append(
            {
                "id": new_item_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": status,
                "content": [part],
            }
        )
    for call in answer.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            {
                "id": new_item_id("fc"),
                "type": "function_call",
                "call_id": call.get("id") or new_item_id("call"),
                "name": str(function.get("name") or ""),
                "arguments": arguments_text(function.get("arguments")),
                "status": status,
            }
        )
    response["output"] = output
    finish_response(response, reason, completion.get("usage"))
    return response


def assistant_message(output: list[dict[str, Any]]) -> ChatMessage:
    """The assistant's chat message for a Response's output items."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in output:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                texts.append(part.get("text") or part.get("refusal") or "")
        elif item.get("type") == "function_call":
            function = {"name": item["name"], "arguments": item["arguments"]}
            calls.append({"id": item["call_id"], "type": "function", "function": function})
    return ChatMessage(
        role="assistant",
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls or None,
    )
