"""What a training job is asked to do: the typed, validated config stored with the job.

Secrets a job may need (a Hugging Face token for a gated base model or a hub push, a
Groq key for advice) are :class:`JobSecrets`: handed to the runner in memory, passed to
the worker on its standard input, and never written to the database or to disk.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from modelyard.training.tasks import TASK_NAMES, canonical_task, get_task

__all__ = [
    "MAX_TIME_BUDGET_S",
    "MIN_TIME_BUDGET_S",
    "NAME_PATTERN",
    "WORKER_FIELDS",
    "AutoSearch",
    "ComputeType",
    "JobSecrets",
    "LoraSettings",
    "Method",
    "PaceRecord",
    "Precision",
    "Recommendation",
    "SearchRecord",
    "TaskName",
    "TrainingConfig",
    "TrialRecord",
    "parse_duration",
]

if TYPE_CHECKING:
    TaskName = str
else:
    #: A registered task's name (validated, and listed in the API schema, as an enum).
    TaskName = Literal[TASK_NAMES]
ComputeType = Literal["cpu", "gpu"]
Method = Literal["full", "lora"]
#: Number format on a GPU (``auto``: bf16 where the GPU has it, else fp16; CPU: fp32).
Precision = Literal["auto", "fp32", "bf16", "fp16"]

#: A trained model's name: its directory under ``<data dir>/models`` and its model id.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class LoraSettings(BaseModel):
    """PEFT LoRA settings (SFT with ``method: lora``); the adapter is merged when done."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=8, ge=1, le=512)
    alpha: int = Field(default=16, ge=1, le=4096)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    #: ``all-linear`` or a list of module names.
    target_modules: str | list[str] = "all-linear"


class Recommendation(BaseModel):
    """A value chosen for the user (who set none), and why, in one line."""

    value: float | int | str | bool
    reason: str


#: The shortest and the longest time budget of an ``auto`` job (seconds): below half a
#: minute a trial and the final run cannot both happen; above a day, train without one.
MIN_TIME_BUDGET_S = 30
MAX_TIME_BUDGET_S = 86_400

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
#: The config's fields the worker fills in (never the user's).
WORKER_FIELDS = ("user_set", "recommended", "search", "pace")


def parse_duration(text: str) -> float:
    """Seconds in ``300``, ``300s``, ``5m``, ``1.5h`` (:class:`ValueError` otherwise)."""
    found = _DURATION.match(text.lower())
    if found is None:
        raise ValueError(
            f"{text!r} is not a duration; write seconds (300, 300s), minutes (5m) or hours (1h)"
        )
    number, unit = found.groups()
    return float(number) * _UNIT_SECONDS[(unit or "s")[0]]


class AutoSearch(BaseModel):
    """``auto``: a time-budgeted hyperparameter search before the real run
    (:mod:`modelyard.training.search`): short trials on a subset of the training split,
    then the full run with the best trial's values, all within ``time_budget_s``."""

    model_config = ConfigDict(extra="forbid")

    #: The whole job's wall time, trials and final run together (seconds; a string such
    #: as ``"5m"`` is read as a duration).
    time_budget_s: float

    @field_validator("time_budget_s", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"time_budget_s: {exc}") from None
        return value

    @field_validator("time_budget_s")
    @classmethod
    def _bounds(cls, value: float) -> float:
        if not math.isfinite(value) or not MIN_TIME_BUDGET_S <= value <= MAX_TIME_BUDGET_S:
            raise ValueError(
                f"time_budget_s must be between {MIN_TIME_BUDGET_S} seconds and "
                f"{MAX_TIME_BUDGET_S // 3600} hours ({MAX_TIME_BUDGET_S} s); got {value:g}"
            )
        return value


class TrialRecord(BaseModel):
    """One trial of the search: its values, its best validation metric, how it ended."""

    number: int
    params: dict[str, float | int]
    #: The best value of the search's metric over the trial's evaluations.
    metric: float | None = None
    state: Literal["complete", "pruned", "failed"]
    seconds: float
    #: Why it ended as it did ("pruned after 2 of 4 evaluations: below the median").
    note: str | None = None


class SearchRecord(BaseModel):
    """What the ``auto`` search did (stored with the job, shown on its page and by the CLI)."""

    metric: str
    greater_is_better: bool
    time_budget_s: float
    #: The values searched and the ranges (or choices) they were drawn from.
    space: dict[str, str]
    #: The subset the trials trained and were evaluated on.
    trial_train_examples: int
    trial_eval_examples: int
    trials: list[TrialRecord]
    best_trial: int | None = None
    #: The values the final run trains with, each with its reason ("best of 6 trials").
    chosen: dict[str, Recommendation] = Field(default_factory=dict)
    #: Seconds from the worker's start to the end of the search, and the final run's
    #: estimate (from the trials' throughput).
    search_seconds: float = 0.0
    estimated_final_seconds: float | None = None
    #: Seconds kept at the end of the budget for the last evaluation, the test report and
    #: saving the model: the final run's training stops when only these are left.
    finish_reserve_seconds: float = 0.0
    #: Why the search stopped starting trials.
    stopped: str = ""


class PaceRecord(BaseModel):
    """How a CPU job's recommended schedule was held to the time target
    (:mod:`modelyard.training.pace`): what was measured before training and what it chose.
    A resumed job keeps these values rather than measuring again."""

    #: The job's time target (seconds from the worker's start).
    target_s: float
    #: Measured on the job's own model and data: one optimizer step, one evaluated
    #: example, one save of the model.
    seconds_per_step: float
    seconds_per_eval_example: float
    save_seconds: float
    #: The recommended passes' estimated seconds from the worker's start (at the length
    #: trained).
    estimated_s: float
    #: Seconds kept at the end for the last evaluation, the test report and saving.
    finish_reserve_s: float
    #: The passes trained, the evaluation interval and the input length (``None``: the
    #: recommendation's stands: it fit the target).
    epochs: float | None = None
    checkpoint_steps: int | None = None
    max_length: int | None = None


class TrainingConfig(BaseModel):
    """Hyperparameters and options of one job (stored as the job's ``config``).

    The hyperparameters a job does not set are chosen by the worker from the data and the
    base model (:func:`~modelyard.training.advice.recommend`) and recorded, each with its
    reason, in :attr:`recommended`; a value the user set is never replaced. The defaults
    below are what a job trains with when that choice is not made (``recommend: false``).
    """

    model_config = ConfigDict(extra="forbid")

    task: TaskName
    base_model: str | None = Field(default=None, min_length=1, max_length=300)
    method: Method = "full"
    compute_type: ComputeType = "cpu"
    output_name: str | None = None
    epochs: float = Field(default=1.0, gt=0, le=1000)
    #: Stop after this many optimizer steps (overrides ``epochs``).
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    learning_rate: float = Field(default=5e-5, gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    #: Tokens per example (longer ones are truncated).
    max_length: int = Field(default=256, ge=8, le=131072)
    #: The share of examples held out for evaluation (the training's validation split:
    #: early stopping and the best checkpoint are chosen on it).
    eval_fraction: float = Field(default=0.1, gt=0, le=0.5)
    #: Classification: the share of examples held out as a test split the training never
    #: sees (the final metrics and the TF-IDF baseline); 0: none, the validation split's
    #: metrics are reported instead.
    test_fraction: float = Field(default=0.1, ge=0, le=0.5)
    #: Stop when the validation metric has not improved for this many evaluations (one
    #: every ``checkpoint_steps``); the best checkpoint is restored at the end. 0: off.
    early_stopping_patience: int = Field(default=3, ge=0, le=1000)
    #: Choose the hyperparameters not set from the data and the base model.
    recommend: bool = True
    #: A checkpoint (everything needed to resume) every this many steps.
    checkpoint_steps: int = Field(default=50, ge=1)
    #: Loss and learning rate are reported every this many steps.
    logging_steps: int = Field(default=10, ge=1)
    seed: int = 42
    #: CPU threads of the worker (default: torch's choice).
    num_threads: int | None = Field(default=None, ge=1, le=1024)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    #: Preference tuning (dpo, orpo): how strongly the preferences pull against the base
    #: model (DPO's beta, ORPO's lambda).
    beta: float = Field(default=0.1, gt=0, le=10)
    #: The number format of a GPU job (a CPU job trains in fp32).
    precision: Precision = "auto"
    #: Recompute activations in the backward pass: less memory, about a third slower.
    gradient_checkpointing: bool = False
    #: QLoRA: the base model loaded in 4 bits (NF4), LoRA adapters trained on it (GPU jobs
    #: of causal LMs, with bitsandbytes on the worker); merged in the compute type when done.
    load_in_4bit: bool = False
    #: The fields the user set (filled in when the config is first validated; the rest
    #: may be chosen by the recommendation). Not part of the API's schema.
    user_set: SkipJsonSchema[list[str] | None] = None
    #: What was chosen for the user: field → value and reason (set by the worker).
    recommended: SkipJsonSchema[dict[str, Recommendation] | None] = None
    #: A time-budgeted search over the values not set (``{"time_budget_s": 300}``).
    auto: AutoSearch | None = None
    #: What the search did: its trials and the values chosen (set by the worker).
    search: SkipJsonSchema[SearchRecord | None] = None
    #: How the recommended schedule was held to the CPU time target (set by the worker).
    pace: SkipJsonSchema[PaceRecord | None] = None

    @field_validator("task", mode="before")
    @classmethod
    def _task_alias(cls, value: object) -> object:
        """Hugging Face's task names (``text-classification``) name our tasks too."""
        return canonical_task(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _task_method(self) -> TrainingConfig:
        """A job that names no method trains the way its task does by default; the fields
        given are remembered the first time (a stored config keeps its list)."""
        if self.user_set is None:
            given = self.model_fields_set & set(TrainingConfig.model_fields)
            self.user_set = sorted(given - set(WORKER_FIELDS))
        if "method" not in self.model_fields_set:
            self.method = get_task(self.task).default_method
        if self.auto is not None and not self.searchable():
            raise ValueError(
                "auto: the search tunes learning_rate, batch_size and epochs, and this job "
                "sets all of them (or max_steps); leave at least one unset, or drop auto"
            )
        return self

    def searchable(self) -> list[str]:
        """The hyperparameters an ``auto`` search may tune: those the user did not set."""
        names = [name for name in ("learning_rate", "batch_size") if not self.is_set(name)]
        if not self.is_set("epochs") and not self.max_steps:
            names.append("epochs")
        return names

    def is_set(self, name: str) -> bool:
        """Whether the user set ``name`` (a field)."""
        return name in (self.user_set or ())

    @field_validator("output_name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise ValueError(
                "must start with a letter or digit and use only letters, digits, '.', '_' "
                "and '-' (at most 100 characters)"
            )
        return value

    def resolved_base(self) -> str | None:
        """The base model, or the task's default."""
        return self.base_model or get_task(self.task).default_base


@dataclass(frozen=True)
class JobSecrets:
    """Credentials a job uses, held only in memory (never stored, never logged)."""

    hf_token: str | None = None
    groq_api_key: str | None = None

    def __repr__(self) -> str:
        held = [name for name in ("hf_token", "groq_api_key") if getattr(self, name)]
        return f"JobSecrets(held={held})"

    def as_dict(self) -> dict[str, str]:
        return {
            k: v for k, v in (("hf_token", self.hf_token), ("groq_api_key", self.groq_api_key)) if v
        }
