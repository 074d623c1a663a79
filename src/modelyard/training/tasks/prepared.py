"""What a task hands the trainer: :class:`Prepared`, and the seeded train/eval split."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Prepared", "split_examples", "three_way_split"]


@dataclass
class Prepared:
    """Everything a :class:`transformers.Trainer` needs for one task, and how to finish."""

    model: Any
    tokenizer: Any
    train_dataset: list[dict[str, Any]]
    eval_dataset: list[dict[str, Any]]
    #: ``None`` for trainers that collate their own batches (TRL's).
    data_collator: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    compute_metrics: Callable[[Any], dict[str, float]] | None = None
    #: Turns the trained model into the one saved (e.g. merges a LoRA adapter).
    finish: Callable[[Any], Any] = lambda model: model
    #: Extra lines for the model card (labels, LoRA settings, …).
    card: dict[str, Any] = field(default_factory=dict)
    #: Derives final metrics from the evaluation's (e.g. perplexity from eval loss).
    derive_metrics: Callable[[dict[str, float]], dict[str, float]] = lambda metrics: metrics
    #: The training arguments' class (TRL's ``DPOConfig``); ``None``: ``TrainingArguments``.
    arguments_class: type | None = None
    #: Options of that class beyond the common ones (DPO's ``beta``).
    arguments_extra: dict[str, Any] = field(default_factory=dict)
    #: Builds the trainer from ``(arguments, callbacks)`` (TRL's trainers take their own
    #: datasets and reference model); ``None``: a ``transformers.Trainer`` of the fields above.
    make_trainer: Callable[[Any, list[Any]], Any] | None = None
    #: The final report on the test split the training never saw, from the trained
    #: ``trainer`` (classification: accuracy, macro F1, per class, confusion matrix and a
    #: baseline); ``None``: the task has no test split.
    report: Callable[[Any], dict[str, Any]] | None = None


def split_examples(
    examples: list[dict[str, Any]], eval_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A seeded shuffle, then a held-out share (at least one example each side)."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    held_out = min(len(shuffled) - 1, max(1, round(len(shuffled) * eval_fraction)))
    return shuffled[held_out:], shuffled[:held_out]


def three_way_split(
    examples: list[dict[str, Any]], eval_fraction: float, test_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Train, validation and test splits: the test split (``test_fraction``; none at 0)
    first, then the validation split of the rest, both seeded."""
    if test_fraction <= 0 or len(examples) < 3:
        train, held_out = split_examples(examples, eval_fraction, seed)
        return train, held_out, []
    rest, test = split_examples(examples, test_fraction, seed)
    train, held_out = split_examples(rest, eval_fraction, seed + 1)
    return train, held_out, test
