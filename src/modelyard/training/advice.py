"""Training advice: hyperparameters, dataset sources and a strategy for one job.

Two sources fill the same :class:`TrainingAdvice` schema:

* a language model (Groq with the user's key, or any gateway model the user may use),
  asked for strict JSON and checked against the schema by :func:`parse_advice`;
* :func:`rule_based_advice`, deterministic rules on the dataset's size, the base model's
  size and the hardware — used without a key, and whenever the model's answer is late,
  refused or not valid (the reason is kept in :attr:`AdviceResult.fallback_reason`).

Either passes :func:`clamp_advice` (the one set of bounds, :data:`CLAMPS`). The worker
applies the result to every hyperparameter a job did not set (:func:`recommend`), with
facts measured on the data and the base model (:func:`measure`): the training texts'
token lengths, the model's longest input and its size; each chosen value is recorded with
its reason in the job's ``config.recommended``.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.training.config import Recommendation, TaskName, TrainingConfig
from modelyard.training.tasks import get_task
from modelyard.training.tasks.prepared import three_way_split

__all__ = [
    "AdviceRequestFacts",
    "AdviceResult",
    "AdviceUnusable",
    "DatasetSource",
    "HyperparameterAdvice",
    "TrainingAdvice",
    "advice_messages",
    "checkpoint_every",
    "clamp_advice",
    "epochs_for",
    "estimate_parameters",
    "length_for",
    "measure",
    "parse_advice",
    "recommend",
    "rule_based_advice",
    "schedule_for",
]

#: Parameters of base models whose size the name does not tell.
KNOWN_SIZES = {"all-MiniLM-L6-v2": 22_700_000, "sentence-transformers/all-MiniLM-L6-v2": 22_700_000}
#: Above this many parameters, SFT is advised with LoRA rather than full fine-tuning.
LORA_ABOVE = 1_000_000_000
#: Above this many parameters, training on a CPU is called impractical.
CPU_PRACTICAL_LIMIT = 2_000_000_000
#: The bounds every advised value is kept within, the rules' and a model's alike.
CLAMPS: dict[str, tuple[float, float]] = {
    "epochs": (1, 20),
    "learning_rate": (1e-6, 1e-3),
    "batch_size": (1, 512),
    "warmup_ratio": (0.0, 0.3),
    "weight_decay": (0.0, 0.3),
    "lora_r": (1, 256),
}
#: The shortest ``max_length`` advised (tokens).
MIN_LENGTH = 16
#: The share of the training texts ``max_length`` is chosen to hold whole.
LENGTH_QUANTILE = 0.95
#: Examples tokenized to measure the lengths (a seeded sample of larger datasets).
LENGTH_SAMPLE = 5000
#: The optimizer steps a schedule aims at: enough for a small dataset to be learned.
TARGET_STEPS = 300
#: The hyperparameters a job's recommendation may choose, in the order shown.
RECOMMENDED = (
    "max_length",
    "learning_rate",
    "batch_size",
    "epochs",
    "warmup_ratio",
    "weight_decay",
)


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
    #: Why each value was chosen, in one line (field name → reason).
    reasons: dict[str, str] = Field(default_factory=dict, max_length=20)


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
    #: Measured on the data and the base model (:func:`measure`).
    train_examples: int | None = None
    #: Tokens of the training texts: the 95th percentile and the longest.
    token_length_p95: int | None = None
    token_length_max: int | None = None
    #: The base model's longest input, in tokens.
    model_max_length: int | None = None
    #: The base model's parameters (from its config when its name does not tell).
    parameters: int | None = None
    #: The examples per optimizer step the job was given (the schedule follows it).
    batch_size: int | None = None


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
    """Passes over the data when its size is not known exactly: more for a small dataset."""
    if examples is None or examples < 1_000:
        return 3.0
    return 2.0 if examples < 10_000 else 1.0


def train_size(facts: AdviceRequestFacts) -> int | None:
    """The training split's examples: measured, else estimated from the dataset's size."""
    if facts.train_examples is not None:
        return facts.train_examples
    if facts.num_examples is None:
        return None
    return max(1, round(facts.num_examples * 0.81))  # 10% test, then 10% validation


def schedule_for(
    facts: AdviceRequestFacts, batch_size: int, max_epochs: float
) -> tuple[float, str]:
    """Epochs aiming at about :data:`TARGET_STEPS` optimizer steps (at least one pass, at
    most ``max_epochs``), and why."""
    examples = train_size(facts)
    batch_size = facts.batch_size or batch_size
    if examples is None:
        epochs = min(epochs_for(None), max_epochs)
        return epochs, f"{epochs:g} passes: the dataset's size is not known"
    steps = math.ceil(examples / batch_size)
    epochs = float(min(max_epochs, max(1, math.ceil(TARGET_STEPS / steps))))
    passes = "pass" if epochs == 1 else "passes"
    return epochs, (
        f"{epochs:g} {passes} over {examples} training examples ({steps} steps each) aim at "
        f"about {TARGET_STEPS} optimizer steps (at most {max_epochs:g} passes)"
    )


def length_for(
    facts: AdviceRequestFacts, cap: int, fallback: int, cap_reason: str | None = None
) -> tuple[int, str]:
    """``max_length``: the training texts' 95th percentile of tokens, rounded up to a
    multiple of 8, within :data:`MIN_LENGTH` and the model's (and ``cap``'s, for
    ``cap_reason``) longest."""
    longest = min(cap, facts.model_max_length or cap)
    if facts.token_length_p95 is None:
        value = max(MIN_LENGTH, min(fallback, longest))
        return value, f"{value} tokens: the texts' lengths were not measured"
    value = max(MIN_LENGTH, min(longest, math.ceil(facts.token_length_p95 / 8) * 8))
    reason = (
        f"95% of the training texts fit in {facts.token_length_p95} tokens (the longest "
        f"has {facts.token_length_max}); rounded up to a multiple of 8"
    )
    if value == longest and facts.token_length_p95 > longest:
        held = cap_reason if cap_reason and longest == cap else "the longest input allowed here"
        reason += f", held to {held} ({longest})"
    elif value == MIN_LENGTH:
        reason += f", at least {MIN_LENGTH}"
    return value, reason


def _clamped(name: str, value: Any, low: float, high: float, notes: list[str]) -> Any:
    kept = type(value)(min(high, max(low, value)))
    if kept != value:
        notes.append(f"{name} {value:g} was outside {low:g}..{high:g}; {kept:g} is used")
    return kept


def clamp_advice(advice: TrainingAdvice, facts: AdviceRequestFacts) -> TrainingAdvice:
    """``advice`` within :data:`CLAMPS` and the model's longest input (each change noted):
    the rules' and a language model's advice pass the same bounds."""
    notes: list[str] = []
    hyper = advice.hyperparameters
    values: dict[str, Any] = {}
    for name, (low, high) in CLAMPS.items():
        value = getattr(hyper, name)
        if value is not None:
            values[name] = _clamped(name, value, low, high, notes)
    if hyper.max_length is not None:
        high = facts.model_max_length or hyper.max_length
        values["max_length"] = _clamped("max_length", hyper.max_length, MIN_LENGTH, high, notes)
    if not notes:
        return advice
    return advice.model_copy(
        update={
            "hyperparameters": hyper.model_copy(update=values),
            "notes": [*advice.notes, *notes][:20],
        }
    )


def rule_based_advice(facts: AdviceRequestFacts) -> TrainingAdvice:
    """Deterministic advice from the dataset's size, the model's size and the hardware."""
    examples = facts.num_examples
    task = get_task(facts.task)
    base = facts.base_model or task.default_base
    parameters = facts.parameters or estimate_parameters(base)
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
    advice = TrainingAdvice(
        hyperparameters=hyper, dataset_sources=sources, strategy=strategy, notes=notes
    )
    return clamp_advice(advice, facts)


# Applying the advice to a job ---------------------------------------------------------


def _training_split(config: TrainingConfig, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    task = get_task(config.task)
    test = config.test_fraction if task.held_out_test else 0.0
    return three_way_split(examples, config.eval_fraction, test, config.seed)[0]


def _parameters_from(model_config: Any) -> int | None:
    """About how many parameters a transformer of this config has (embeddings and, per
    layer, attention and the feed-forward block)."""
    hidden = getattr(model_config, "hidden_size", None)
    layers = getattr(model_config, "num_hidden_layers", None)
    vocab = getattr(model_config, "vocab_size", None)
    if not (hidden and layers and vocab):
        return None
    inner = getattr(model_config, "intermediate_size", None) or 4 * hidden
    return int(vocab * hidden + layers * (4 * hidden * hidden + 2 * hidden * inner))


def _model_limit(tokenizer: Any, model_config: Any) -> int | None:
    limits = [
        value
        for value in (
            getattr(model_config, "max_position_embeddings", None),
            getattr(model_config, "n_positions", None),
            getattr(tokenizer, "model_max_length", None),
        )
        if isinstance(value, int) and 0 < value < 1_000_000
    ]
    return min(limits) if limits else None


def measure(
    config: TrainingConfig,
    examples: list[dict[str, Any]],
    base_dir: Path,
    base_name: str | None = None,
    facts: AdviceRequestFacts | None = None,
) -> AdviceRequestFacts:
    """The facts a recommendation rests on, measured: the training split's size, its
    texts' token lengths (a seeded sample of at most :data:`LENGTH_SAMPLE`), the base
    model's longest input and its size."""
    from transformers import AutoConfig

    from modelyard.training.tasks.causal import load_tokenizer

    task = get_task(config.task)
    train = _training_split(config, examples)
    tokenizer = load_tokenizer(base_dir)
    model_config = AutoConfig.from_pretrained(base_dir)
    sample = train if len(train) <= LENGTH_SAMPLE else random.Random(0).sample(train, LENGTH_SAMPLE)
    lengths: list[int] = []
    if task.sample_text is not None and sample:
        texts = [task.sample_text(tokenizer, example) for example in sample]
        lengths = sorted(len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"])
    base = base_name or config.resolved_base()
    facts = facts or AdviceRequestFacts(
        task=config.task, base_model=base, compute_type=config.compute_type
    )
    labels = {e["label"] for e in examples if "label" in e}
    return facts.model_copy(
        update={
            "num_examples": facts.num_examples or len(examples),
            "num_labels": facts.num_labels or (len(labels) or None),
            "train_examples": len(train),
            "token_length_p95": lengths[min(len(lengths) - 1, int(LENGTH_QUANTILE * len(lengths)))]
            if lengths
            else None,
            "token_length_max": lengths[-1] if lengths else None,
            "model_max_length": _model_limit(tokenizer, model_config),
            "parameters": estimate_parameters(base) or _parameters_from(model_config),
        }
    )


def checkpoint_every(total_steps: int) -> int:
    """Steps between two evaluations (each with a checkpoint): about 10 over the run."""
    return min(500, max(5, math.ceil(total_steps / 10)))


def _given(advice: AdviceResult | None, facts: AdviceRequestFacts) -> HyperparameterAdvice | None:
    """A language model's advice, within the same bounds as the rules'."""
    if advice is None or advice.source != "llm":
        return None
    return clamp_advice(advice.advice, facts).hyperparameters


def recommend(
    config: TrainingConfig, facts: AdviceRequestFacts, advice: AdviceResult | None = None
) -> TrainingConfig:
    """``config`` with every hyperparameter the user did not set chosen by the rules (or by
    a language model's applied ``advice``, clamped the same way), each recorded with its
    reason in ``recommended``; a value the user set is kept. Deterministic for the same
    facts (a resumed job chooses the same)."""
    if not config.recommend:
        return config.model_copy(update={"recommended": {}})
    if config.is_set("batch_size") or config.gradient_accumulation_steps > 1:
        given = config.batch_size * config.gradient_accumulation_steps
        facts = facts.model_copy(update={"batch_size": given})
    rules = rule_based_advice(facts).hyperparameters
    model = _given(advice, facts)
    who = advice.model if advice is not None and advice.model else "the advice model"
    chosen: dict[str, Recommendation] = {}
    for name in RECOMMENDED:
        if config.is_set(name) or (name == "epochs" and config.max_steps):
            continue
        value = getattr(model, name, None) if model is not None else None
        if value is not None:
            why = model.reasons.get(name) if model is not None else None
            reason = f"advised by {who}" + (f": {why}" if why else "")
        else:
            value, reason = getattr(rules, name), rules.reasons.get(name, "the rules' choice")
        if value is not None:
            chosen[name] = Recommendation(value=value, reason=reason[:300])
    values: dict[str, Any] = {name: item.value for name, item in chosen.items()}
    merged = config.model_copy(update=values)
    task = get_task(config.task)
    if not config.is_set("checkpoint_steps"):
        batch = merged.batch_size * merged.gradient_accumulation_steps
        examples = train_size(facts) or batch
        total = merged.max_steps or math.ceil(math.ceil(examples / batch) * merged.epochs)
        every = checkpoint_every(total)
        chosen["checkpoint_steps"] = Recommendation(
            value=every,
            reason=f"about 10 evaluations (each with a checkpoint) over {total} steps",
        )
        values["checkpoint_steps"] = every
    if not config.is_set("early_stopping_patience") and config.early_stopping_patience:
        metric = task.best_metric
        chosen["early_stopping_patience"] = Recommendation(
            value=config.early_stopping_patience,
            reason=f"stop after {config.early_stopping_patience} evaluations without a better "
            f"{metric} on the validation split; the best checkpoint is restored at the end",
        )
    return config.model_copy(update={**values, "recommended": chosen})


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
