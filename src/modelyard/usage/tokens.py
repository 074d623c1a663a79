"""Counting tokens when a provider reports none (marked estimated in usage records).

OpenAI models use their own BPE vocabularies (o200k / cl100k) through ``bpe-openai``,
which has tiktoken's API and ships the vocabulary files (tiktoken itself downloads them
at run time, which an offline server cannot do). Other models: about four characters a
token, the usual rule of thumb.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import bpe_openai

__all__ = ["count_message_tokens", "count_tokens"]

#: Tokens OpenAI adds per chat message for its role and separators.
PER_MESSAGE_TOKENS = 3


@lru_cache(maxsize=16)
def _encoding(model: str) -> Any | None:
    try:
        return bpe_openai.encoding_for_model(model)
    except Exception:
        name = "o200k_base" if model.startswith(("gpt-4o", "gpt-4.1", "o1", "o3", "o4")) else None
        if name is None and model.startswith(("gpt-", "text-embedding-")):
            name = "cl100k_base"
        return bpe_openai.get_encoding(name) if name else None


def count_tokens(model: str, text: str) -> int:
    """Tokens of ``text`` for ``model`` (exact for OpenAI models, estimated otherwise)."""
    if not text:
        return 0
    encoding = _encoding(model.rsplit("/", 1)[-1])
    if encoding is not None:
        return len(encoding.encode(text))
    return max(1, round(len(text) / 4))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def count_message_tokens(model: str, messages: Iterable[Any]) -> int:
    """Prompt tokens of chat ``messages`` (dicts or pydantic messages)."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message.content
        total += PER_MESSAGE_TOKENS + count_tokens(model, _text(content))
    return total
