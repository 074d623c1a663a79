"""The Responses API's answers, built from the gateway's chat completions.

* :func:`to_response` turns a chat completion into a ``Response`` object: a ``message``
  item (``output_text`` parts) and one ``function_call`` item per tool call; a ``length``
  finish is ``status: "incomplete"`` with ``incomplete_details.reason:
  "max_output_tokens"``.
* :class:`ResponsesEventWriter` turns a stream of completion chunks into the Responses
  stream, every event numbered (``sequence_number``)::

      response.created, response.in_progress,
      (response.output_item.added, response.content_part.added,
       response.output_text.delta*, response.output_text.done,
       response.content_part.done, response.output_item.done
       | response.output_item.added, response.function_call_arguments.delta*,
       response.function_call_arguments.done, response.output_item.done)*,
      response.completed | response.incomplete

  A failure after the stream started ends it with ``response.failed``.
* :func:`assistant_message` is the chat message of a Response's output (what a stored
  context keeps of the answer).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from modelyard.errors import ModelyardError
from modelyard.gateway.inbound.openai_responses import ResponsesRequest
from modelyard.gateway.schemas import ChatMessage
from modelyard.gateway.sse import encode_named_event
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = [
    "OnFinished",
    "ResponsesEventWriter",
    "assistant_message",
    "new_response_id",
    "response_usage",
    "responses_sse",
    "to_response",
]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def _new_id(prefix: str) -> str:
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


def _shell(
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


def _finish(response: dict[str, Any], finish_reason: str | None, usage: Any) -> None:
    """Set a Response's final status (completed or incomplete) and usage."""
    reason = _INCOMPLETE.get(finish_reason or "")
    if reason is None:
        response["status"] = "completed"
        response["completed_at"] = int(time.time())
    else:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}
    response["usage"] = response_usage(usage)


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _arguments(value: Any) -> str:
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
    response = _shell(request, response_id=response_id, created_at=created_at, model=model)
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    reason = choice.get("finish_reason")
    status = "incomplete" if reason in _INCOMPLETE else "completed"
    answer = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text, refusal = _text(answer.get("content")), _text(answer.get("refusal"))
    if text or refusal or not answer.get("tool_calls"):
        part = {"type": "refusal", "refusal": refusal} if refusal and not text else _text_part(text)
        output.append(
            {
                "id": _new_id("msg"),
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
                "id": _new_id("fc"),
                "type": "function_call",
                "call_id": call.get("id") or _new_id("call"),
                "name": str(function.get("name") or ""),
                "arguments": _arguments(function.get("arguments")),
                "status": status,
            }
        )
    response["output"] = output
    _finish(response, reason, completion.get("usage"))
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


class ResponsesEventWriter:
    """Turns chat chunks into Responses stream events, one output item open at a time."""

    def __init__(
        self, request: ResponsesRequest, *, response_id: str, created_at: int, model: str
    ) -> None:
        self.response = _shell(request, response_id=response_id, created_at=created_at, model=model)
        self.sequence = 0
        self.item: dict[str, Any] | None = None  # the open output item
        self.tool_index: Any = None  # the chunks' index of the open tool call
        self.finish_reason: str | None = None
        self.usage: Any = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return encode_named_event(kind, event)

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": list(self.response["output"])}

    def start(self) -> list[bytes]:
        """``response.created`` and ``response.in_progress``."""
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot()),
        ]

    @property
    def _index(self) -> int:
        return len(self.response["output"])

    def _open(self, item: dict[str, Any]) -> list[bytes]:
        events = self._close("completed")
        self.item = item
        return [
            *events,
            self._event("response.output_item.added", output_index=self._index, item=dict(item)),
        ]

    def _close(self, status: str) -> list[bytes]:
        item, self.item = self.item, None
        if item is None:
            return []
        item["status"] = status
        place = {"item_id": item["id"], "output_index": self._index}
        events: list[bytes] = []
        if item["type"] == "message":
            part = item["content"][0]
            events += [
                self._event(
                    "response.output_text.done",
                    **place,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                ),
                self._event("response.content_part.done", **place, content_index=0, part=part),
            ]
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **place,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        events.append(self._event("response.output_item.done", output_index=self._index, item=item))
        self.response["output"].append(item)
        return events

    def _text(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        if self.item is None or self.item["type"] != "message":
            item: dict[str, Any] = {
                "id": _new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            events = self._open(item)
            part = _text_part("")
            item["content"].append(part)
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=self._index,
                    content_index=0,
                    part=dict(part),
                )
            )
        assert self.item is not None
        self.item["content"][0]["text"] += text
        place = {"item_id": self.item["id"], "output_index": self._index, "content_index": 0}
        return [
            *events,
            self._event("response.output_text.delta", **place, delta=text, logprobs=[]),
        ]

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        function = call.get("function") or {}
        open_call = self.item is not None and self.item["type"] == "function_call"
        call_id = call.get("id")
        if call_id and not (
            open_call and self.item is not None and self.item["call_id"] == call_id
        ):
            item = {
                "id": _new_id("fc"),
                "type": "function_call",
                "call_id": call_id,
                "name": str(function.get("name") or ""),
                "arguments": "",
                "status": "in_progress",
            }
            events = self._open(item)
            self.tool_index = call.get("index")
        elif not open_call or call.get("index", self.tool_index) != self.tool_index:
            raise UpstreamError("protocol", "a tool call delta does not follow its tool call")
        arguments = _arguments(function.get("arguments"))
        if arguments:
            assert self.item is not None
            self.item["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=self.item["id"],
                    output_index=self._index,
                    delta=arguments,
                )
            )
        return events

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The events for one chunk (usage and the finish reason are kept for the end)."""
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
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
            self.finish_reason = choice["finish_reason"]
        return events

    def end(self) -> list[bytes]:
        """Close the open item, then ``response.completed`` (or ``response.incomplete``)."""
        incomplete = self.finish_reason in _INCOMPLETE
        events = self._close("incomplete" if incomplete else "completed")
        _finish(self.response, self.finish_reason, self.usage)
        kind = "response.incomplete" if incomplete else "response.completed"
        return [*events, self._event(kind, response=self._snapshot())]

    def fail(self, message: str) -> list[bytes]:
        """``response.failed``: the stream broke after it started."""
        self.item = None
        self.response["status"] = "failed"
        self.response["error"] = {"code": "server_error", "message": message}
        if self.usage:
            self.response["usage"] = response_usage(self.usage)
        return [self._event("response.failed", response=self._snapshot())]


#: Called with a streamed Response once it finished (to store it), before its last event.
OnFinished = Callable[[dict[str, Any]], Awaitable[None]]


async def responses_sse(
    writer: ResponsesEventWriter,
    chunks: AsyncIterator[dict[str, Any]],
    *,
    on_finished: OnFinished | None = None,
) -> AsyncIterator[bytes]:
    """The Responses SSE stream for a chat chunk stream."""
    try:
        for event in writer.start():
            yield event
        async for chunk in chunks:
            for event in writer.feed(chunk):
                yield event
        events = writer.end()
        if on_finished is not None:
            await on_finished(writer.response)
        for event in events:
            yield event
    except (UpstreamError, ModelyardError) as error:
        for event in writer.fail(f"The upstream stream failed: {error}"):
            yield event
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
