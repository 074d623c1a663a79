"""The values local models take and return (no torch here: importing this is cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "Classification",
    "Completion",
    "Embeddings",
    "FinishReason",
    "GenerationParams",
    "GenerationRequest",
    "Message",
    "Prompt",
]

FinishReason = Literal["stop", "length"]
#: A chat message reduced to its role (``system``, ``user``, ``assistant``) and text.
Message = tuple[str, str]
#: Chat messages (formatted by the model's chat template), or raw text continued as it is.
Prompt = tuple[Message, ...] | str


@dataclass(frozen=True)
class GenerationParams:
    """What a request asks of one generation (``None``: the model's default)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    messages: Prompt
    params: GenerationParams


@dataclass(frozen=True)
class Completion:
    """A generated answer with its finish reason and exact token counts."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Embeddings:
    """Vectors (one float32 row per input) and the tokens the model read."""

    vectors: np.ndarray[Any, np.dtype[np.float32]]
    tokens: int


@dataclass(frozen=True)
class Classification:
    """The best label of one text, its score, and every label's score."""

    label: str
    score: float
    scores: dict[str, float]
