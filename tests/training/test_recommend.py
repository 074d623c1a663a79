"""The recommendation: hyperparameters a job does not set are chosen from the data and the
base model (with reasons), a value the user set is kept, early stopping restores the best
checkpoint, and a classification job reports a held-out test split beside a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import TrainingEvent
from modelyard.training.advice import (
    AdviceRequestFacts,
    AdviceResult,
    HyperparameterAdvice,
    TrainingAdvice,
    measure,
    recommend,
    rule_based_advice,
)
from modelyard.training.config import TrainingConfig
from modelyard.training.runner import TrainingRunner
from modelyard.training.tasks.classification import baseline_predictions, detailed_metrics
from modelyard.training.worker import _training_arguments
from tests.training.conftest import UploadFn, classification_rows, write_csv
from tests.training.jobs_helpers import wait_for


def _rows(words: int, count: int = 40) -> list[dict[str, str]]:
    """``count`` examples of ``words`` times "word" (one token each in MiniLM's vocabulary)."""
    return [
        {"text": " ".join(["word"] * words), "label": "yes" if i % 2 else "no"}
        for i in range(count)
    ]


def _config(tiny_bert: Path, **given: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {"task": "classification", "base_model": str(tiny_bert), **given}
    )


def test_max_length_follows_the_token_lengths_and_a_given_value_wins(tiny_bert: Path) -> None:
    config = _config(tiny_bert)
    facts = measure(config, _rows(20), tiny_bert)
    # 40 examples: 4 held out for the test, 4 of the other 36 for validation.
    assert facts.train_examples == 32 and facts.num_labels == 2
    assert facts.token_length_p95 == facts.token_length_max == 22  # [CLS] 20 words [SEP]
    assert facts.model_max_length == 64  # the tiny BERT's positions
    chosen = recommend(config, facts)
    assert chosen.max_length == 24  # 22 rounded up to a multiple of 8
    recommended = chosen.recommended or {}
    assert recommended["max_length"].value == 24
    assert "22 tokens" in recommended["max_length"].reason
    # A small dataset: small batches, more passes (bounded), a warm-up, early stopping.
    assert chosen.batch_size == 16 and chosen.epochs == 10.0
    assert "300 optimizer steps" in recommended["epochs"].reason
    assert chosen.warmup_ratio == 0.06 and chosen.learning_rate == 1e-4
    assert recommended["checkpoint_steps"].value == 5  # 20 steps, about 10 evaluations
    assert "best checkpoint is restored" in recommended["early_stopping_patience"].reason
    assert all(item.reason for item in recommended.values())
    assert set(recommended) == {
        "max_length", "learning_rate", "batch_size", "epochs", "warmup_ratio",
        "weight_decay", "checkpoint_steps", "early_stopping_patience",
    }  # fmt: skip

    # Longer texts than the model takes: held to its longest input, and it says so.
    long = recommend(config, measure(config, _rows(100), tiny_bert))
    assert long.max_length == 64
    assert "held to the longest input" in (long.recommended or {})["max_length"].reason

    # What the user set is kept and not chosen; the schedule follows the given batch size.
    given = _config(tiny_bert, max_length=32, batch_size=4, learning_rate=3e-4)
    kept = recommend(given, facts)
    assert (kept.max_length, kept.batch_size, kept.learning_rate) == (32, 4, 3e-4)
    assert not {"max_length", "batch_size", "learning_rate"} & set(kept.recommended or {})
    assert "(8 steps each)" in (kept.recommended or {})["epochs"].reason
    # Stored and read back (a resumed job), the user's fields are still known.
    stored = TrainingConfig.model_validate(kept.model_dump(mode="json"))
    assert stored.user_set == ["base_model", "batch_size", "learning_rate", "max_length", "task"]
    assert recommend(stored, facts) == kept
    # recommend: false trains with the plain defaults.
    plain = recommend(_config(tiny_bert, recommend=False), facts)
    assert plain.max_length == 256 and plain.recommended == {}


def test_a_language_models_advice_passes_the_same_clamps(tiny_bert: Path) -> None:
    config = _config(tiny_bert, batch_size=4)
    facts = measure(config, _rows(20), tiny_bert)
    advice = AdviceResult(
        source="llm",
        model="llama-test",
        advice=TrainingAdvice(
            hyperparameters=HyperparameterAdvice(
                epochs=50,
                learning_rate=0.5,
                batch_size=64,
                max_length=4096,
                reasons={"learning_rate": "go fast"},
            ),
            strategy="Train hard.",
        ),
    )
    chosen = recommend(config, facts, advice)
    recommended = chosen.recommended or {}
    assert chosen.learning_rate == 1e-3 and chosen.epochs == 20 and chosen.max_length == 64
    assert recommended["learning_rate"].reason == "advised by llama-test: go fast"
    assert chosen.batch_size == 4 and "batch_size" not in recommended  # the user's
    # Advice from the rules is the worker's own rules, on the measured facts.
    rules = recommend(config, facts, AdviceResult(source="rules", advice=advice.advice))
    assert rules.learning_rate == 1e-4 and rules.max_length == 24


def test_early_stopping_evaluates_on_checkpoints_and_restores_the_best(tmp_path: Path) -> None:
    config = TrainingConfig(task="classification", checkpoint_steps=7, early_stopping_patience=2)
    arguments = _training_arguments(config, tmp_path, "cpu", None, {}, ("eval_f1_macro", True))
    assert arguments.eval_strategy == "steps" and arguments.save_strategy == "steps"
    assert arguments.eval_steps == arguments.save_steps == 7
    assert arguments.load_best_model_at_end is True
    assert arguments.metric_for_best_model == "eval_f1_macro"
    assert arguments.greater_is_better is True
    off = TrainingConfig(task="classification", early_stopping_patience=0)
    plain = _training_arguments(off, tmp_path, "cpu", None, {}, ("eval_f1_macro", True))
    assert plain.eval_strategy == "no" and plain.load_best_model_at_end is False


def test_detailed_metrics_per_class_and_confusion_matrix() -> None:
    report = detailed_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b", "c"])
    assert report["accuracy"] == 0.75
    assert report["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    assert report["per_class"]["b"]["precision"] == 1.0
    assert report["per_class"]["b"]["recall"] == 2 / 3
    assert report["f1_macro"] == (2 / 3 + 0.8) / 2  # "c" has no examples: not averaged
    assert report["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "rows": [[1, 0, 0], [1, 2, 0], [0, 0, 0]],
    }
    train = [{"text": "good great", "label": "pos"}, {"text": "bad awful", "label": "neg"}] * 5
    guesses, how = baseline_predictions(train, [{"text": "great", "label": "pos"}])
    assert guesses == ["pos"] and "TF-IDF" in how
    assert baseline_predictions(train[:1], train[:1])[0] is None  # one label: no baseline


async def test_a_job_without_hyperparameters_is_chosen_for_and_tested_on_held_out_data(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    database: Database,
    tiny_bert: Path,
    tmp_path: Path,
) -> None:
    response = await upload(write_csv(tmp_path / "reviews.csv", classification_rows(40)))
    assert response.status_code == 201, response.text
    body = {
        "task": "classification",
        "base_model": str(tiny_bert),
        "learning_rate": 1e-3,
        "dataset_id": response.json()["id"],
    }
    created = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert created.status_code == 201, created.text
    job = await wait_for(http, auth, created.json()["id"])
    assert job["state"] == "succeeded", job

    config = job["config"]
    recommended = config["recommended"]
    assert config["learning_rate"] == 1e-3 and "learning_rate" not in recommended
    for name in ("max_length", "batch_size", "epochs", "warmup_ratio", "checkpoint_steps"):
        assert recommended[name]["value"] == config[name] and recommended[name]["reason"]
    assert config["max_length"] == 16  # short texts: the floor
    assert "early_stopping_patience" in recommended

    metrics = job["metrics"]
    assert metrics["test_examples"] == 4
    for name in ("test_accuracy", "test_f1_macro", "baseline_accuracy", "baseline_f1_macro"):
        assert 0.0 <= metrics[name] <= 1.0
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert metrics["best_step"] % config["checkpoint_steps"] == 0
    assert metrics["best_step"] <= metrics["trained_steps"] <= 20
    report = metrics["test_report"]
    assert report["confusion_matrix"]["labels"] == ["negative", "positive"]
    assert sum(map(sum, report["confusion_matrix"]["rows"])) == 4
    assert set(report["per_class"]) == {"negative", "positive"}
    assert "TF-IDF" in report["baseline"]["method"]
    assert report["baseline"]["accuracy"] == metrics["baseline_accuracy"]

    async with database.sessions() as session:
        kinds = list(
            await session.scalars(
                select(TrainingEvent.kind).where(TrainingEvent.job_id == job["id"])
            )
        )
    assert "recommended" in kinds


def test_a_cpu_classifier_is_advised_at_most_128_tokens() -> None:
    """The time per step grows with the length: on a CPU the advice holds long texts to
    128 tokens (AutoTrain's default); on a GPU they are held whole up to 512."""
    facts = AdviceRequestFacts(
        task="classification",
        compute_type="cpu",
        train_examples=900,
        token_length_p95=298,
        token_length_max=684,
        model_max_length=512,
    )
    cpu = rule_based_advice(facts).hyperparameters
    assert cpu.max_length == 128
    assert "held to the longest input advised on a CPU" in cpu.reasons["max_length"]
    gpu = rule_based_advice(facts.model_copy(update={"compute_type": "gpu"})).hyperparameters
    assert gpu.max_length == 304 and "held" not in gpu.reasons["max_length"]
    short = rule_based_advice(facts.model_copy(update={"token_length_p95": 40})).hyperparameters
    assert short.max_length == 40
