""":class:`TrainingTask`: what one training task declares to the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.training.advice import AdviceRequestFacts, DatasetSource, HyperparameterAdvice
    from modelyard.training.config import Method, TrainingConfig
    from modelyard.training.datasets import Kind
    from modelyard.training.tasks.prepared import Prepared

__all__ = ["TaskAdvice", "TrainingTask"]

#: A task's part of the rule-based advice: hyperparameters, strategy, dataset sources.
TaskAdvice = tuple["HyperparameterAdvice", str, list["DatasetSource"]]


@dataclass(frozen=True)
class TrainingTask:
    """One training task: the data it trains on, how it trains, what it reports.

    ``prepare`` and ``advise`` import their heavy or upward dependencies (transformers,
    the advice schema) when called, so declaring a task costs nothing at import time.
    """

    #: The task's name in configs, the API, the CLI and stored jobs.
    name: str
    #: How the task is shown ("Chat model (SFT)").
    label: str
    #: The model it trains, in a sentence ("a chat model").
    noun: str
    #: The dataset shapes it trains on (:data:`~modelyard.training.datasets.Kind`), each
    #: with how it is shown.
    kinds: Mapping[Kind, str]
    #: The columns a file is told it lacks when it suits no shape (with spelling hints).
    required_columns: tuple[str, ...]
    #: The columns it accepts, in words (for the "missing columns" problem).
    columns_help: str
    #: Loads the base model and encodes the examples: ``(config, examples, base_dir)``.
    prepare: Callable[[TrainingConfig, list[dict[str, Any]], Path], Prepared]
    #: The metrics its final evaluation reports, as named in a job's ``metrics`` (besides
    #: ``train_loss`` and the evaluation's timings).
    metrics: tuple[str, ...]
    #: Its rules for advice: ``(facts, base_model, parameters)``.
    advise: Callable[[AdviceRequestFacts, str | None, int | None], TaskAdvice]
    #: The task of the model it produces, in the model catalog (``chat`` models chat).
    model_task: str
    #: The base model when none is given (``None``: the job must name one).
    default_base: str | None = None
    #: How the default base is described in the web form's list.
    default_base_note: str = ""
    #: What to set ``base_model`` to (the 400 when a job names none and there is no default).
    base_required: str = ""
    #: Refuses a located base model that does not suit: ``(name, its model task)``,
    #: raising :class:`ValueError`.
    check_base: Callable[[str, str], None] | None = None
    #: The training methods offered (``full``, ``lora``).
    methods: tuple[Method, ...] = ("full",)
    #: The method of a job that names none.
    default_method: Method = "full"
    #: Whether it may load its base model in 4 bits (QLoRA; causal LMs).
    quantizable: bool = False
    #: Hub models suggested as bases, ``(id, note)``, where the server may download them.
    hub_suggestions: tuple[tuple[str, str], ...] = ()
    #: Other names a request may use for it (Hugging Face's task names, e.g.
    #: ``text-classification``); stored jobs always hold :attr:`name`.
    aliases: tuple[str, ...] = ()
    #: The validation metric early stopping and the best checkpoint go by, and whether
    #: higher is better.
    best_metric: str = "eval_loss"
    greater_is_better: bool = False
    #: The text of one example as the model reads it, ``(tokenizer, example)``: its token
    #: length distribution sets the recommended ``max_length``.
    sample_text: Callable[[Any, dict[str, Any]], str] | None = None
    #: Whether it holds out a test split (``test_fraction``) the training never sees.
    held_out_test: bool = False
    #: The shortest a recommended ``max_length`` may be cut to so that a CPU job's passes
    #: fit its time target (:mod:`~modelyard.training.pace`); ``None``: never cut (a
    #: chat example cut short would lose its answer).
    shortest_paced_length: int | None = None

    @property
    def base_placeholder(self) -> str:
        """What the web form's empty base model field says."""
        if self.default_base:
            return f"{self.default_base} (the default)"
        example = f", e.g. {self.hub_suggestions[0][0]}" if self.hub_suggestions else ""
        return f"required{example}"

    def describe(self) -> dict[str, Any]:
        """The task's facts for clients (the API's task list, the web form)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "label": self.label,
            "noun": self.noun,
            "dataset_kinds": dict(self.kinds),
            "required_columns": list(self.required_columns),
            "columns_help": self.columns_help,
            "metrics": list(self.metrics),
            "methods": list(self.methods),
            "default_base_model": self.default_base,
            "base_placeholder": self.base_placeholder,
        }
