"""What a task hands the trainer: :class:`Prepared`, and the seeded train/eval split."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prepared", "split_examples"]


@dataclass
class Prepared:
    """Everything a :class:`transformers.Trainer` needs for one task, and how to finish."""

    model: Any
    tokenizer: Any
    train_dataset: list[dict[str, Any]]
    eval_dataset: list[dict[str, Any]]
    data_collator: Callable[[list[dict[str, Any]]], dict[str, Any]]
    compute_metrics: Callable[[Any], dict[str, float]] | None = None
    #: Turns the trained model into the one saved (e.g. merges a LoRA adapter).
    finish: Callable[[Any], Any] = lambda model: model
    #: Extra lines for the model card (labels, LoRA settings, …).
    card: dict[str, Any] = field(default_factory=dict)
    #: Derives final metrics from the evaluation's (e.g. perplexity from eval loss).
    derive_metrics: Callable[[dict[str, float]], dict[str, float]] = lambda metrics: metrics


def split_examples(
    examples: list[dict[str, Any]], eval_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A seeded shuffle, then a held-out share (at least one example each side)."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    held_out = min(len(shuffled) - 1, max(1, round(len(shuffled) * eval_fraction)))
    return shuffled[held_out:], shuffled[:held_out]
