"""OpenAI-shaped answers, built in one place for every adapter that translates another API.

The gateway's canonical answers are OpenAI's: a ``chat.completion``, a stream of
``chat.completion.chunk`` objects ending with a usage chunk (``choices: []``), a ``usage``
object and an embedding ``list``. Adapters build them only with these functions.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ChunkEnvelope",
    "assistant_message",
    "completion",
    "completion_id",
    "embedding_list",
    "tool_call",
    "usage",
]


def completion_id(suffix: str | None = None) -> str:
    """``chatcmpl-{suffix}``, with a random suffix when none is given."""
    return f"chatcmpl-{suffix or uuid.uuid4().hex}"


def usage(
    prompt: int,
    completion: int,
    *,
    total: int | None = None,
    cached: int | None = None,
    reasoning: int | None = None,
) -> dict[str, Any]:
    """A ``usage`` object; ``total`` defaults to the sum, the details appear when given."""
    counts: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion if total is None else total,
    }
    if cached is not None:
        counts["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        counts["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return counts


def tool_call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    """One function call of an assistant message (``arguments`` is JSON text)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant_message(
    content: str | None, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An assistant message; ``tool_calls`` is left out when there are none."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def completion(
    *,
    id: str,
    model: str | None,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A one-choice ``chat.completion`` created now."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": usage,
    }


@dataclass
class ChunkEnvelope:
    """What every chunk of one stream shares; ``id`` and ``model`` may be learnt late
    (from the provider's first event) and are read each time a chunk is built."""

    id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """A chunk of the one choice: a delta, and the finish reason on the last."""
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._chunk([choice])

    def usage_chunk(self, counts: dict[str, Any]) -> dict[str, Any]:
        """The stream's closing chunk: no choices, the usage."""
        return {**self._chunk([]), "usage": counts}


def embedding_list(embeddings: list[Any], *, model: str, prompt_tokens: int) -> dict[str, Any]:
    """An embeddings answer: one ``embedding`` object per input, in order."""
    data = [
        {"object": "embedding", "index": index, "embedding": embedding}
        for index, embedding in enumerate(embeddings)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
