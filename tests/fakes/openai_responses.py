"""A fake OpenAI that speaks the Responses API (``POST /v1/responses``), JSON and SSE,
beside its chat completions.

* Text input: ``"Native: <last user text>"`` (prefixed so that a test can tell which path
  answered), as one ``message`` item; usage counts words (input: every text of ``input``
  and ``instructions``; output: the reply's).
* With function tools, unless the input holds a ``function_call_output``: a call of the
  first tool with ``{"city": "Paris"}``; after one: ``"Native: the tool said <output>"``.
* Streamed: the documented event sequence (``response.created``, ``response.in_progress``,
  ``response.output_item.added``, ``response.content_part.added``, one
  ``response.output_text.delta`` per word, the ``.done`` events, ``response.completed``),
  numbered from 0. ``fail_stream_after`` sends an ``error`` event after that many deltas.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.openai_chat import ChatOpenAI

__all__ = ["ResponsesOpenAI"]

_CREATED = 1_732_500_000


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(part.get("text", "")) for part in content if isinstance(part, dict)]
    return []


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    given = body.get("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return [item for item in given or [] if isinstance(item, dict)]


def _words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


class ResponsesOpenAI(ChatOpenAI):
    """The chat fake with ``/responses`` too."""

    #: Send an ``error`` event after this many text deltas.
    fail_stream_after: int | None = None

    def routes(self) -> list[BaseRoute]:
        return [*super().routes(), Route("/responses", self.responses, methods=["POST"])]

    async def responses(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        items = _items(body)
        outputs = [item for item in items if item.get("type") == "function_call_output"]
        tools = [tool for tool in body.get("tools") or [] if tool.get("type") == "function"]
        if tools and not outputs:
            output: dict[str, Any] = {
                "type": "function_call",
                "id": "fc_fake1",
                "call_id": "call_fake1",
                "name": tools[0]["name"],
                "arguments": '{"city": "Paris"}',
                "status": "completed",
            }
            reply = ""
        else:
            users = [item for item in items if item.get("role") == "user"]
            last = " ".join(_texts(users[-1].get("content"))) if users else ""
            reply = (
                f"Native: the tool said {outputs[-1]['output']}" if outputs else f"Native: {last}"
            )
            output = self._message(reply)
        prompt = [
            *_texts(body.get("instructions")),
            *(t for i in items for t in _texts(i.get("content"))),
        ]
        usage = {
            "input_tokens": _words(prompt),
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": _words([reply]) or 4,
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        response = self._response(body, "completed", [output], usage)
        if body.get("stream"):
            return StreamingResponse(
                self._events(body, response, reply), media_type="text/event-stream"
            )
        return JSONResponse(response)

    @staticmethod
    def _message(text: str, *, status: str = "completed") -> dict[str, Any]:
        return {
            "type": "message",
            "id": "msg_fake1",
            "role": "assistant",
            "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }

    @staticmethod
    def _response(
        body: dict[str, Any], status: str, output: list[dict[str, Any]], usage: Any
    ) -> dict[str, Any]:
        return {
            "id": "resp_upstream1",
            "object": "response",
            "created_at": _CREATED,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": bool(body.get("store", True)),
            "temperature": 1.0,
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    async def _events(
        self, body: dict[str, Any], final: dict[str, Any], reply: str
    ) -> AsyncIterator[bytes]:
        sequence = 0

        def event(kind: str, **data: Any) -> bytes:
            nonlocal sequence
            frame = {"type": kind, "sequence_number": sequence, **data}
            sequence += 1
            return f"event: {kind}\ndata: {json.dumps(frame)}\n\n".encode()

        started = self._response(body, "in_progress", [], None)
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        item = final["output"][0]
        if item["type"] == "message":
            added = {**self._message("", status="in_progress"), "content": []}
            yield event("response.output_item.added", output_index=0, item=added)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            yield event("response.content_part.added", **where, part=part)
            for sent, word in enumerate(reply.split(" ")):
                if self.fail_stream_after is not None and sent >= self.fail_stream_after:
                    yield event("error", code="server_error", message="The fake failed", param=None)
                    return
                delta = word if sent == 0 else f" {word}"
                yield event("response.output_text.delta", **where, delta=delta, logprobs=[])
            yield event("response.output_text.done", **where, text=reply, logprobs=[])
            yield event("response.content_part.done", **where, part={**part, "text": reply})
        else:
            yield event("response.output_item.added", output_index=0, item=item)
        yield event("response.output_item.done", output_index=0, item=item)
        yield event("response.completed", response=final)
