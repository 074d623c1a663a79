"""What a training job is asked to do: the typed, validated config stored with the job.

Secrets a job may need (a Hugging Face token for a gated base model or a hub push, a
Groq key for advice) are :class:`JobSecrets`: handed to the runner in memory, passed to
the worker on its standard input, and never written to the database or to disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.training.tasks import TASK_NAMES, get_task

__all__ = [
    "NAME_PATTERN",
    "ComputeType",
    "JobSecrets",
    "LoraSettings",
    "Method",
    "TaskName",
    "TrainingConfig",
]

if TYPE_CHECKING:
    TaskName = str
else:
    #: A registered task's name (validated, and listed in the API schema, as an enum).
    TaskName = Literal[TASK_NAMES]
ComputeType = Literal["cpu", "gpu"]
Method = Literal["full", "lora"]

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


class TrainingConfig(BaseModel):
    """Hyperparameters and options of one job (stored as the job's ``config``)."""

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
    #: The share of examples held out for evaluation.
    eval_fraction: float = Field(default=0.1, gt=0, le=0.5)
    #: A checkpoint (everything needed to resume) every this many steps.
    checkpoint_steps: int = Field(default=50, ge=1)
    #: Loss and learning rate are reported every this many steps.
    logging_steps: int = Field(default=10, ge=1)
    seed: int = 42
    #: CPU threads of the worker (default: torch's choice).
    num_threads: int | None = Field(default=None, ge=1, le=1024)
    lora: LoraSettings = Field(default_factory=LoraSettings)

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
