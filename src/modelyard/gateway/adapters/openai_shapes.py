"""OpenAI-shaped answers, built in one place for every adapter that translates another API.

The gateway's canonical answers are OpenAI's: a ``chat.completion``, a stream of
``chat.completion.chunk`` objects ending with a usage chunk (``choices: []``), a ``usage``
object, an embedding ``list`` and a legacy ``text_completion`` (the same shape streamed).
Adapters build them only with these functions.
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
    "text_choice",
    "text_completion",
    "text_completion_id",
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


def summed_usage(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``usage`` object adding up several (every count, the details' included)."""
    total: dict[str, Any] = {}
    for one in counts:
        for name, value in one.items():
            if isinstance(value, dict):
                total[name] = summed_usage([total.get(name) or {}, value])
            elif isinstance(value, int | float):
                total[name] = (total.get(name) or 0) + value
    return total


def tool_call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    """One function call of an assistant message (``arguments`` is JSON text)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant_message(
    content: str | None, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An assistant message (``refusal`` null, as the spec requires); ``tool_calls`` is
    left out when there are none."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def choice(message: dict[str, Any], finish_reason: str, index: int = 0) -> dict[str, Any]:
    """One choice of a ``chat.completion`` (``logprobs`` null: no adapter translates them)."""
    return {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}


def completion_of(
    *, id: str, model: str | None, choices: list[dict[str, Any]], usage: dict[str, Any]
) -> dict[str, Any]:
    """A ``chat.completion`` of ``choices`` (see :func:`choice`) created now."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def completion(
    *,
    id: str,
    model: str | None,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A one-choice ``chat.completion`` created now."""
    return completion_of(id=id, model=model, choices=[choice(message, finish_reason)], usage=usage)


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

    def chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, *, index: int = 0
    ) -> dict[str, Any]:
        """A chunk of one choice (the first unless ``index`` says otherwise): a delta, and
        the finish reason on the choice's last."""
        one = {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._chunk([one])

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


def text_completion_id() -> str:
    """``cmpl-`` and a random suffix."""
    return f"cmpl-{uuid.uuid4().hex}"


def text_choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    """One choice of a ``text_completion`` (``finish_reason`` ``None`` mid-stream)."""
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def text_completion(
    *,
    id: str,
    model: str,
    choices: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A ``text_completion``: a whole answer, or one event of a stream (same shape)."""
    answer: dict[str, Any] = {
        "id": id,
        "object": "text_completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        answer["usage"] = usage
    return answer
