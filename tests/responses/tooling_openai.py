"""A fake OpenAI for Responses API tests: the chat fake, plus tool calls and their results.

* With tools, unless the last message is a tool result: a call of the first tool with
  ``{"city": "Paris"}`` (JSON, or SSE with the arguments in two pieces after a "Checking."
  text delta).
* After a tool result: ``"The tool said: <result>"``.
* With ``max_completion_tokens`` below the reply's words: the reply cut there, finished by
  ``length`` (as OpenAI does).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.openai_chat import ChatOpenAI, reply_for

__all__ = ["ToolingOpenAI"]

_USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}


class ToolingOpenAI(ChatOpenAI):
    tool_arguments = ('{"city": ', '"Paris"}')

    async def chat_completions(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if body.get("tools") and last.get("role") != "tool":
            name = body["tools"][0]["function"]["name"]
            if body.get("stream"):
                return StreamingResponse(
                    self._tool_stream(body, name), media_type="text/event-stream"
                )
            call = {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": name, "arguments": "".join(self.tool_arguments)},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return JSONResponse(self._completion(body, message, "tool_calls"))
        reply = reply_for(body)
        if last.get("role") == "tool":
            reply = f"The tool said: {last.get('content')}"
        limit = body.get("max_completion_tokens")
        if limit is not None and len(reply.split()) > limit and not body.get("stream"):
            cut = " ".join(reply.split()[:limit])
            message = {"role": "assistant", "content": cut}
            return JSONResponse(self._completion(body, message, "length", self.usage(body, cut)))
        if body.get("stream"):
            return StreamingResponse(self._stream(body, reply), media_type="text/event-stream")
        message = {"role": "assistant", "content": reply}
        return JSONResponse(self._completion(body, message, "stop", self.usage(body, reply)))

    def _completion(
        self,
        body: dict[str, Any],
        message: dict[str, Any],
        finish: str,
        usage: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-tool",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or _USAGE,
        }

    async def _tool_stream(self, body: dict[str, Any], name: str) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            data = {"id": "chatcmpl-tool", "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {json.dumps({**data, 'model': body['model']})}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        yield chunk({"content": "Checking."})
        start = {"index": 0, "id": "call_fake1", "type": "function"}
        yield chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
        for piece in self.tool_arguments:
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")
        if (body.get("stream_options") or {}).get("include_usage"):
            data = {"id": "chatcmpl-tool", "object": "chat.completion.chunk", "choices": []}
            yield f"data: {json.dumps({**data, 'usage': _USAGE})}\n\n".encode()
        yield b"data: [DONE]\n\n"
