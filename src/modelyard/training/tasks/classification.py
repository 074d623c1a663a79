"""Text classification: an encoder with a new classification head; accuracy and macro F1."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.training.tasks.prepared import Prepared, split_examples
from modelyard.training.tasks.spec import TaskAdvice, TrainingTask

if TYPE_CHECKING:
    from modelyard.training.advice import AdviceRequestFacts
    from modelyard.training.config import TrainingConfig

__all__ = ["TASK", "advise", "classification_metrics", "encode", "prepare"]

DEFAULT_BASE = "all-MiniLM-L6-v2"


def classification_metrics(predictions: Any, labels: Any) -> dict[str, float]:
    """Accuracy and macro F1 (over the labels present in either array)."""
    predicted = np.asarray(predictions)
    truth = np.asarray(labels)
    accuracy = float((predicted == truth).mean()) if truth.size else 0.0
    scores = []
    for label in np.union1d(predicted, truth):
        tp = float(((predicted == label) & (truth == label)).sum())
        fp = float(((predicted == label) & (truth != label)).sum())
        fn = float(((predicted != label) & (truth == label)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": accuracy, "f1_macro": float(np.mean(scores)) if scores else 0.0}


def _compute(eval_prediction: Any) -> dict[str, float]:
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return classification_metrics(np.argmax(logits, axis=-1), labels)


def encode(
    tokenizer: Any, examples: list[dict[str, Any]], label2id: dict[str, int], max_length: int
) -> list[dict[str, Any]]:
    """Token ids and label ids (padding is left to the collator)."""
    encoded = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length)
    rows: list[dict[str, Any]] = []
    for index, example in enumerate(examples):
        row = {key: values[index] for key, values in encoded.items()}
        row["labels"] = label2id[example["label"]]
        rows.append(row)
    return rows


def prepare(config: TrainingConfig, examples: list[dict[str, Any]], base: Path) -> Prepared:
    """Load the base encoder with a head for the dataset's labels, and encode the data."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
    )

    labels = sorted({e["label"] for e in examples})
    label2id = {label: index for index, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
    )
    train, held_out = split_examples(examples, config.eval_fraction, config.seed)
    return Prepared(
        model=model,
        tokenizer=tokenizer,
        train_dataset=encode(tokenizer, train, label2id, config.max_length),
        eval_dataset=encode(tokenizer, held_out, label2id, config.max_length),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_compute,
        card={"labels": labels},
    )


def advise(facts: AdviceRequestFacts, base: str | None, _parameters: int | None) -> TaskAdvice:
    """Fine-tune the whole encoder; the sources are public labelled text sets."""
    from modelyard.training.advice import DatasetSource, HyperparameterAdvice, epochs_for

    gpu = facts.compute_type == "gpu"
    hyper = HyperparameterAdvice(
        epochs=epochs_for(facts.num_examples),
        learning_rate=5e-5,
        batch_size=32 if gpu else 16,
        max_length=128,
        method="full",
        warmup_ratio=0.1,
        weight_decay=0.01,
    )
    strategy = (
        f"Fine-tune {base} end to end as a sequence classifier"
        + (f" over {facts.num_labels} labels" if facts.num_labels else "")
        + "; keep 10% of the examples for evaluation and compare macro F1, not only "
        "accuracy, when the labels are unbalanced."
    )
    sources = [
        DatasetSource(
            name="stanfordnlp/imdb",
            url="https://huggingface.co/datasets/stanfordnlp/imdb",
            why="binary sentiment, 50k labelled reviews",
        ),
        DatasetSource(
            name="fancyzhx/ag_news",
            url="https://huggingface.co/datasets/fancyzhx/ag_news",
            why="4-class topic classification, 120k examples",
        ),
    ]
    return hyper, strategy, sources


TASK = TrainingTask(
    name="classification",
    label="Classification",
    noun="a classifier",
    kinds={"classification": "classification"},
    required_columns=("text", "label"),
    columns_help="'text' and 'label'",
    prepare=prepare,
    metrics=("eval_accuracy", "eval_f1_macro", "eval_loss"),
    advise=advise,
    model_task="classification",
    default_base=DEFAULT_BASE,
    default_base_note="built in · 22.7M parameters (the default)",
)
