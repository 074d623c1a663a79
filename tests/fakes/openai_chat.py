"""The fake OpenAI with chat completions (JSON and SSE) and embeddings.

Replies are deterministic: ``"Echo: <last user text>"``, split into ``stream_chunks``
pieces when streamed. Usage counts words; with ``context_words`` set, a longer prompt is
refused (``context_status``, 400 by default) as the real API refuses a too-long context.
Faults: the base class's forced status and delay, plus ``drop_after`` (the stream's
connection is cut after that many chunks) and ``error_after`` (an error event is sent after
that many chunks).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.openai_completions import OpenAICompletionsMixin
from tests.fakes.providers import FakeGroq, FakeHuggingFace, FakeOpenAI

__all__ = ["ChatGroq", "ChatHuggingFace", "ChatOpenAI", "last_user_text", "reply_for"]

_CREATED = 1_732_500_000


class StreamCut(Exception):
    """Raised inside a streaming body to cut the connection (a mid-stream drop)."""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def reply_for(body: dict[str, Any]) -> str:
    return f"Echo: {last_user_text(body.get('messages', []))}"


def _words(text: str) -> int:
    return len(text.split())


class OpenAIChatMixin:
    """Chat and embeddings routes for any OpenAI-format fake."""

    stream_chunks: int = 4
    drop_after: int | None = None
    error_after: int | None = None
    #: Answer every chat with this text instead of the echo.
    scripted_reply: str | None = None
    #: Prompts longer than this many words are refused with ``context_status`` (400:
    #: OpenAI's ``context_length_exceeded``; 422 as OpenAI-compatible servers answer).
    context_words: int | None = None
    context_status: int = 400

    def chat_routes(self) -> list[BaseRoute]:
        return [
            Route("/chat/completions", self.chat_completions, methods=["POST"]),  # type: ignore[attr-defined]
            Route("/embeddings", self.embeddings, methods=["POST"]),  # type: ignore[attr-defined]
        ]

    def usage(self, body: dict[str, Any], reply: str) -> dict[str, int]:
        prompt = sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": _words(reply),
            "total_tokens": prompt + _words(reply),
        }

    async def chat_completions(self, request: Request) -> Response:
        denied = self.authenticate(request)  # type: ignore[attr-defined]
        if denied is not None:
            return denied
        body = await request.json()
        model = body.get("model")
        if model not in self.models:  # type: ignore[attr-defined]
            return self.error(  # type: ignore[attr-defined,no-any-return]
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        prompt = sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
        if self.context_words is not None and prompt > self.context_words:
            return self.error(  # type: ignore[attr-defined,no-any-return]
                self.context_status,
                f"This model's maximum context length is {self.context_words} tokens; your "
                f"messages resulted in {prompt} tokens.",
                code="context_length_exceeded",
            )
        if body.get("temperature", 1) > 2:
            return self.error(400, "temperature must be at most 2", code="invalid_value")  # type: ignore[attr-defined,no-any-return]
        reply = reply_for(body) if self.scripted_reply is None else self.scripted_reply
        if body.get("stream"):
            return StreamingResponse(self._stream(body, reply), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-fake123",
                "object": "chat.completion",
                "created": _CREATED,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply, "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": self.usage(body, reply),
            }
        )

    async def _stream(self, body: dict[str, Any], reply: str) -> AsyncIterator[bytes]:
        words = reply.split(" ")
        size = max(1, -(-len(words) // self.stream_chunks))
        pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        pieces = [piece if i == 0 else " " + piece for i, piece in enumerate(pieces)]

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-fake123",
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        for sent, piece in enumerate(pieces):
            if self.drop_after is not None and sent >= self.drop_after:
                raise StreamCut("the fake cut the stream")
            if self.error_after is not None and sent >= self.error_after:
                error = {"error": {"message": "The server had an error", "type": "server_error"}}
                yield f"data: {json.dumps(error)}\n\n".encode()
                return
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "id": "chatcmpl-fake123",
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": body["model"],
                "choices": [],
                "usage": self.usage(body, reply),
            }
            yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def embeddings(self, request: Request) -> Response:
        denied = self.authenticate(request)  # type: ignore[attr-defined]
        if denied is not None:
            return denied
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(text))), 0.5, -0.5]}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(_words(str(text)) for text in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


class ChatOpenAI(OpenAICompletionsMixin, OpenAIChatMixin, FakeOpenAI):
    """Chat, embeddings and OpenAI's legacy completions (Groq and the Hugging Face router
    offer no ``/completions``)."""

    def routes(self) -> list[BaseRoute]:
        completions = Route("/completions", self.text_completions, methods=["POST"])
        return [*super().routes(), *self.chat_routes(), completions]


class ChatGroq(OpenAIChatMixin, FakeGroq):
    def routes(self) -> list[BaseRoute]:
        return [*super().routes(), *self.chat_routes()]


class ChatHuggingFace(OpenAIChatMixin, FakeHuggingFace):
    def routes(self) -> list[BaseRoute]:
        return [*super().routes(), *self.chat_routes()]
