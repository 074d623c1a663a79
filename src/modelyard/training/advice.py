"""Training advice: hyperparameters, dataset sources and a strategy for one job.

Two sources fill the same :class:`TrainingAdvice` schema:

* a language model (Groq with the user's key, or any gateway model the user may use),
  asked for strict JSON and checked against the schema by :func:`parse_advice`;
* :func:`rule_based_advice`, deterministic rules on the dataset's size, the base model's
  size and the hardware — used without a key, and whenever the model's answer is late,
  refused or not valid (the reason is kept in :attr:`AdviceResult.fallback_reason`).
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.training.config import TaskName
from modelyard.training.tasks import get_task

__all__ = [
    "AdviceRequestFacts",
    "AdviceResult",
    "AdviceUnusable",
    "DatasetSource",
    "HyperparameterAdvice",
    "TrainingAdvice",
    "advice_messages",
    "epochs_for",
    "estimate_parameters",
    "parse_advice",
    "rule_based_advice",
]

#: Parameters of base models whose size the name does not tell.
KNOWN_SIZES = {"all-MiniLM-L6-v2": 22_700_000, "sentence-transformers/all-MiniLM-L6-v2": 22_700_000}
#: Above this many parameters, SFT is advised with LoRA rather than full fine-tuning.
LORA_ABOVE = 1_000_000_000
#: Above this many parameters, training on a CPU is called impractical.
CPU_PRACTICAL_LIMIT = 2_000_000_000


class HyperparameterAdvice(BaseModel):
    """Values that map onto :class:`~modelyard.training.config.TrainingConfig` fields."""

    model_config = ConfigDict(extra="ignore")

    epochs: float = Field(gt=0, le=100)
    learning_rate: float = Field(gt=0, le=1)
    batch_size: int = Field(ge=1, le=4096)
    max_length: int | None = Field(default=None, ge=8, le=131072)
    method: Literal["full", "lora"] | None = None
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    weight_decay: float | None = Field(default=None, ge=0, le=1)
    lora_r: int | None = Field(default=None, ge=1, le=512)


class DatasetSource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=500)
    why: str = Field(default="", max_length=1000)


class TrainingAdvice(BaseModel):
    """The advice shown to the user, who can apply its hyperparameters to the job."""

    model_config = ConfigDict(extra="ignore")

    hyperparameters: HyperparameterAdvice
    dataset_sources: list[DatasetSource] = Field(default_factory=list, max_length=10)
    strategy: str = Field(min_length=1, max_length=4000)
    notes: list[str] = Field(default_factory=list, max_length=20)


class AdviceRequestFacts(BaseModel):
    """What the advice is based on: the user's description and the dataset's statistics."""

    task: TaskName
    description: str = ""
    base_model: str | None = None
    compute_type: Literal["cpu", "gpu"] = "cpu"
    num_examples: int | None = None
    dataset_kind: str | None = None
    num_labels: int | None = None
    size_bytes: int | None = None


class AdviceResult(BaseModel):
    #: ``llm`` (a language model wrote it) or ``rules``.
    source: Literal["llm", "rules"]
    #: The model that wrote it (``llm`` only).
    model: str | None = None
    advice: TrainingAdvice
    #: Why the rules were used although a model was asked.
    fallback_reason: str | None = None


class AdviceUnusable(ValueError):
    """The model's answer cannot be used; the message says why (shown to the user)."""


_SIZE_IN_NAME = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*([bBmM])(?![A-Za-z])")


def estimate_parameters(base_model: str | None) -> int | None:
    """The base model's parameter count, from known sizes or its name (``Qwen2.5-0.5B``)."""
    if not base_model:
        return None
    if base_model in KNOWN_SIZES:
        return KNOWN_SIZES[base_model]
    found = _SIZE_IN_NAME.findall(base_model.rsplit("/", 1)[-1].replace("_", "-"))
    if not found:
        return None
    number, unit = found[-1]
    return int(float(number) * (1_000_000_000 if unit.lower() == "b" else 1_000_000))


def epochs_for(examples: int | None) -> float:
    """Passes over the data: more for a small dataset."""
    if examples is None or examples < 1_000:
        return 3.0
    return 2.0 if examples < 10_000 else 1.0


def rule_based_advice(facts: AdviceRequestFacts) -> TrainingAdvice:
    """Deterministic advice from the dataset's size, the model's size and the hardware."""
    examples = facts.num_examples
    task = get_task(facts.task)
    base = facts.base_model or task.default_base
    parameters = estimate_parameters(base)
    gpu = facts.compute_type == "gpu"
    notes: list[str] = []
    hyper, strategy, sources = task.advise(facts, base, parameters)
    if examples is not None and examples < 100:
        notes.append(
            f"Only {examples} examples: expect overfitting; add data or keep epochs low "
            "and watch the evaluation metrics."
        )
    if parameters is not None and not gpu and parameters > CPU_PRACTICAL_LIMIT:
        notes.append(
            f"{base} has about {parameters / 1e9:.1f}B parameters: training it on a CPU is "
            "impractically slow; choose compute type GPU or a smaller base model."
        )
    if not gpu:
        notes.append("CPU training: keep max_length short; it dominates the time per step.")
    return TrainingAdvice(
        hyperparameters=hyper, dataset_sources=sources, strategy=strategy, notes=notes
    )


def advice_messages(facts: AdviceRequestFacts) -> list[dict[str, str]]:
    """The chat messages asking a model for advice as strict JSON."""
    schema = json.dumps(TrainingAdvice.model_json_schema(), separators=(",", ":"))
    system = (
        "You are an expert machine-learning engineer. Advise on fine-tuning one model. "
        "Answer with a single JSON object and nothing else, matching this JSON schema: "
        f"{schema}. hyperparameters.method is 'full' or 'lora'; learning_rate is a float "
        "such as 5e-5; dataset_sources are public datasets (Hugging Face ids and URLs) "
        "that would help."
    )
    facts_json = facts.model_dump_json(exclude_none=True)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"The job, as JSON: {facts_json}"},
    ]


def parse_advice(content: str) -> TrainingAdvice:
    """The advice in a model's answer, or :class:`AdviceUnusable` saying what is wrong."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(text)
    except ValueError:
        raise AdviceUnusable("the model's answer was not valid JSON") from None
    if not isinstance(value, dict):
        raise AdviceUnusable("the model's answer was JSON but not an object")
    try:
        return TrainingAdvice.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise AdviceUnusable(
            f"the model's answer did not match the advice schema ({where}: {first['msg']})"
        ) from None
