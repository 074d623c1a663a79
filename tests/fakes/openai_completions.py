"""The fake OpenAI's legacy ``POST /v1/completions`` (JSON and SSE), mixed into every
OpenAI-format chat fake.

Each prompt's reply is ``"Echo: <prompt>"`` (its words cut to ``max_tokens``, finish
reason ``length`` then), ``n`` choices per prompt numbered as OpenAI does; ``echo`` puts the
prompt before it, ``logprobs`` adds a logprobs object, ``suffix`` is only recorded. Usage
counts words (none at all with ``reports_usage`` off). Streams send each choice's words in
pieces (``finish_reason`` null until its last event) and the usage event when
``stream_options.include_usage`` asks for it; with ``error_after``, an error event after
that many events ends the stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

__all__ = ["OpenAICompletionsMixin"]

_CREATED = 1_732_500_000
_ID = "cmpl-fake123"


def _logprobs(text: str) -> dict[str, Any]:
    words = text.split(" ")
    offsets = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    return {
        "tokens": words,
        "token_logprobs": [-0.5] * len(words),
        "top_logprobs": [{word: -0.5} for word in words],
        "text_offset": offsets,
    }


class OpenAICompletionsMixin:
    """The ``/completions`` route of an OpenAI-format fake (uses its auth and models)."""

    #: False: answers and streams carry no usage (as some OpenAI-compatible servers do).
    reports_usage: bool = True
    #: A stream sends an error event after this many events (the chat fakes' fault too).
    error_after: int | None = None

    def _replies(self, body: dict[str, Any]) -> list[tuple[int, str, str]]:
        """(index, text, finish reason) of every choice, in order."""
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        limit = body.get("max_tokens", 16)
        replies = []
        for position, prompt in enumerate(prompts):
            words = f"Echo: {prompt}".split(" ")
            reason = "length" if len(words) > limit else "stop"
            text = " ".join(words[:limit])
            if body.get("echo"):
                text = str(prompt) + text
            for choice in range(body.get("n") or 1):
                replies.append((position * (body.get("n") or 1) + choice, text, reason))
        return replies

    def _text_usage(self, body: dict[str, Any], replies: list[tuple[int, str, str]]) -> Any:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        prompt = sum(len(str(p).split()) for p in prompts)
        completion = sum(len(text.split()) for _, text, _ in replies)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def text_completions(self, request: Request) -> Response:
        denied = self.authenticate(request)  # type: ignore[attr-defined]
        if denied is not None:
            return denied  # type: ignore[no-any-return]
        body = await request.json()
        model = body.get("model")
        if model not in self.models:  # type: ignore[attr-defined]
            return self.error(  # type: ignore[attr-defined,no-any-return]
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        replies = self._replies(body)
        if body.get("stream"):
            return StreamingResponse(
                self._text_stream(body, replies), media_type="text/event-stream"
            )
        choices = [
            {
                "text": text,
                "index": index,
                "logprobs": _logprobs(text) if body.get("logprobs") is not None else None,
                "finish_reason": reason,
            }
            for index, text, reason in replies
        ]
        return JSONResponse(
            {
                "id": _ID,
                "object": "text_completion",
                "created": _CREATED,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                **({"usage": self._text_usage(body, replies)} if self.reports_usage else {}),
            }
        )

    async def _text_stream(
        self, body: dict[str, Any], replies: list[tuple[int, str, str]]
    ) -> AsyncIterator[bytes]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {
                "id": _ID,
                "object": "text_completion",
                "created": _CREATED,
                "model": body["model"],
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        sent = 0
        for index, text, reason in replies:
            words = text.split(" ")
            for position, word in enumerate(words):
                if self.error_after is not None and sent >= self.error_after:
                    error = {
                        "error": {"message": "The server had an error", "type": "server_error"}
                    }
                    yield f"data: {json.dumps(error)}\n\n".encode()
                    return
                sent += 1
                piece = word if position == 0 else " " + word
                last = position == len(words) - 1
                choice = {
                    "text": piece,
                    "index": index,
                    "logprobs": None,
                    "finish_reason": reason if last else None,
                }
                yield event([choice])
        if self.reports_usage and (body.get("stream_options") or {}).get("include_usage"):
            yield event([], usage=self._text_usage(body, replies))
        yield b"data: [DONE]\n\n"
