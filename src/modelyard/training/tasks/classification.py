"""Text classification: an encoder with a new classification head; accuracy and macro F1.

The examples are split three ways: training, validation (early stopping and the best
checkpoint are chosen on it) and a test split the training never sees. The final report
(:func:`test_report`) is on the test split: accuracy, macro F1, per-class precision and
recall, the confusion matrix, and a TF-IDF + logistic regression baseline trained on the
same training split, so that one sees whether fine-tuning paid off.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.training.tasks.prepared import Prepared, three_way_split
from modelyard.training.tasks.spec import TaskAdvice, TrainingTask

if TYPE_CHECKING:
    from modelyard.training.advice import AdviceRequestFacts
    from modelyard.training.config import TrainingConfig

__all__ = [
    "TASK",
    "advise",
    "baseline_predictions",
    "classification_metrics",
    "detailed_metrics",
    "encode",
    "prepare",
    "test_report",
]

DEFAULT_BASE = "all-MiniLM-L6-v2"
#: Encoders up to this many parameters are small (MiniLM), up to the next base-size (BERT).
SMALL_ENCODER = 60_000_000
BASE_ENCODER = 200_000_000
#: The most passes the rules advise, and the longest input (tokens).
MAX_EPOCHS = 10.0
#: From this many training examples on, batches of 32 (else 16).
LARGE_DATASET = 2000
MAX_LENGTH = 512
#: The longest input advised for a CPU job: the time per step grows with the length, and
#: the first 128 tokens carry most of a text's class (AutoTrain's default length too).
CPU_MAX_LENGTH = 128
#: The shortest the pacing may cut that length to, for more passes within the time
#: target: a short input trained more often beats a long one trained less on a CPU.
PACED_MIN_LENGTH = 64


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


def detailed_metrics(predicted: list[str], truth: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1 (over ``labels``), per-class precision, recall, F1 and support,
    and the confusion matrix (rows: the true label, columns: the predicted one)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for guess, true in zip(predicted, truth, strict=True):
        matrix[index[true]][index[guess]] += 1
    per_class: dict[str, dict[str, float]] = {}
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        predicted_as = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    correct = sum(matrix[i][i] for i in range(len(labels)))
    present = [m for m in per_class.values() if m["support"]]
    return {
        "accuracy": correct / len(truth) if truth else 0.0,
        "f1_macro": float(np.mean([m["f1"] for m in present])) if present else 0.0,
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "rows": matrix},
    }


def baseline_predictions(
    train: list[dict[str, Any]], test: list[dict[str, Any]]
) -> tuple[list[str] | None, str]:
    """A TF-IDF (words and word pairs) + logistic regression classifier trained on
    ``train``: its predictions for ``test`` and how it was made (``None``: not possible,
    and why)."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    except ImportError:
        return None, "scikit-learn is not installed"
    if len({e["label"] for e in train}) < 2:
        return None, "the training split holds one label only"
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    features = vectorizer.fit_transform([e["text"] for e in train])
    model = LogisticRegression(max_iter=2000)
    model.fit(features, [e["label"] for e in train])
    guesses = model.predict(vectorizer.transform([e["text"] for e in test]))
    return [str(g) for g in guesses], "TF-IDF (words and word pairs) + logistic regression"


def test_report(
    predicted: list[str],
    train: list[dict[str, Any]],
    test: list[dict[str, Any]],
    labels: list[str],
) -> dict[str, Any]:
    """The final metrics on the test split, the baseline's beside them."""
    truth = [e["label"] for e in test]
    tuned = detailed_metrics(predicted, truth, labels)
    report: dict[str, Any] = {
        "test_accuracy": tuned["accuracy"],
        "test_f1_macro": tuned["f1_macro"],
        "test_examples": len(test),
    }
    details: dict[str, Any] = {
        "split": f"{len(test)} test examples the training never saw",
        "per_class": tuned["per_class"],
        "confusion_matrix": tuned["confusion_matrix"],
    }
    guesses, how = baseline_predictions(train, test)
    if guesses is not None:
        baseline = detailed_metrics(guesses, truth, labels)
        report["baseline_accuracy"] = baseline["accuracy"]
        report["baseline_f1_macro"] = baseline["f1_macro"]
        details["baseline"] = {
            "method": f"{how}, trained on the same {len(train)} training examples",
            "accuracy": baseline["accuracy"],
            "f1_macro": baseline["f1_macro"],
            "per_class": baseline["per_class"],
        }
    else:
        details["baseline"] = {"method": None, "skipped": how}
    report["test_report"] = details
    return report


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

    from modelyard.training.gpu import master_dtype

    labels = sorted({e["label"] for e in examples})
    label2id = {label: index for index, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        dtype=master_dtype(),
    )
    train, held_out, test = three_way_split(
        examples, config.eval_fraction, config.test_fraction, config.seed
    )

    def report(trainer: Any) -> dict[str, Any]:
        output = trainer.predict(encode(tokenizer, test, label2id, config.max_length))
        logits = (
            output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        )
        predicted = [labels[int(i)] for i in np.argmax(logits, axis=-1)]
        return test_report(predicted, train, test, labels)

    return Prepared(
        model=model,
        tokenizer=tokenizer,
        train_dataset=encode(tokenizer, train, label2id, config.max_length),
        eval_dataset=encode(tokenizer, held_out, label2id, config.max_length),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_compute,
        card={"labels": labels},
        report=report if test else None,
    )


def _text_of(_tokenizer: Any, example: dict[str, Any]) -> str:
    return str(example["text"])


def _learning_rate(parameters: int | None) -> tuple[float, str]:
    """Encoders take a higher rate than causal LMs; the smaller, the higher."""
    if parameters is None:
        return 5e-5, "5e-05: the usual rate for fine-tuning an encoder of unknown size"
    size = f"{parameters / 1e6:.0f}M parameters"
    if parameters <= SMALL_ENCODER:
        return 1e-4, f"1e-04 for a small encoder ({size}): its head and layers learn fast"
    if parameters <= BASE_ENCODER:
        return 5e-5, f"5e-05 for a base-size encoder ({size})"
    return 2e-5, f"2e-05 for a large encoder ({size}): a higher rate destabilises it"


def _batch_size(examples: int | None) -> tuple[int, str]:
    if examples is None:
        return 16, "16: the dataset's size is not known"
    batch = 32 if examples >= LARGE_DATASET else 16
    return (
        batch,
        f"{batch} for {examples} training examples"
        + (
            " (a large dataset: larger batches)"
            if batch == 32
            else " (smaller batches, more steps)"
        ),
    )


def advise(facts: AdviceRequestFacts, base: str | None, parameters: int | None) -> TaskAdvice:
    """Fine-tune the whole encoder; the sources are public labelled text sets."""
    from modelyard.training.advice import (
        DatasetSource,
        HyperparameterAdvice,
        length_for,
        schedule_for,
        train_size,
    )

    learning_rate, rate_why = _learning_rate(parameters)
    batch, batch_why = _batch_size(train_size(facts))
    epochs, epochs_why = schedule_for(facts, batch, MAX_EPOCHS)
    if facts.compute_type == "cpu":
        max_length, length_why = length_for(
            facts,
            CPU_MAX_LENGTH,
            128,
            "the longest input advised on a CPU, where the time per step grows with the length",
        )
    else:
        max_length, length_why = length_for(facts, MAX_LENGTH, 128)
    hyper = HyperparameterAdvice(
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch,
        max_length=max_length,
        method="full",
        warmup_ratio=0.06,
        weight_decay=0.01,
        reasons={
            "epochs": epochs_why,
            "learning_rate": rate_why,
            "batch_size": batch_why,
            "max_length": length_why,
            "warmup_ratio": "warm up over the first 6% of the steps (a fresh head's early "
            "gradients are large)",
            "weight_decay": "0.01, the usual light regularisation for fine-tuning an encoder",
        },
    )
    strategy = (
        f"Fine-tune {base} end to end as a sequence classifier"
        + (f" over {facts.num_labels} labels" if facts.num_labels else "")
        + "; keep 10% of the examples as a test split and 10% of the rest for validation "
        "(early stopping), and compare macro F1 with the TF-IDF baseline, not only "
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
    metrics=(
        "eval_accuracy",
        "eval_f1_macro",
        "eval_loss",
        "test_accuracy",
        "test_f1_macro",
        "baseline_accuracy",
        "baseline_f1_macro",
    ),
    advise=advise,
    model_task="classification",
    default_base=DEFAULT_BASE,
    default_base_note="built in · 22.7M parameters (the default)",
    aliases=("text-classification",),
    best_metric="eval_f1_macro",
    greater_is_better=True,
    sample_text=_text_of,
    held_out_test=True,
    shortest_paced_length=PACED_MIN_LENGTH,
)
