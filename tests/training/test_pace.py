"""Pacing (issue 21): a CPU job whose passes the recommendation chose is measured before
it trains and held to the time target; the user's own epochs never are."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import TrainingEvent
from modelyard.training import pace
from modelyard.training.config import PaceRecord, TrainingConfig
from modelyard.training.runner import TrainingRunner
from modelyard.training.timing import FinalEstimate, fitting_epochs
from tests.training.conftest import (
    UploadFn,
    build_tiny_bert,
    chat_rows,
    classification_rows,
    preference_rows,
    write_csv,
    write_jsonl,
)
from tests.training.jobs_helpers import train_timed, wait_for


def test_the_passes_that_fit_leave_the_evaluations_and_the_finish_their_time() -> None:
    config = TrainingConfig(task="classification", epochs=3)
    estimate = FinalEstimate(load=0.0, steps=120.0, checks=10.0, finish=10.0)
    assert fitting_epochs(config, estimate, 200.0) is None  # 140 s: all fit
    # 70 s: 50 s for steps of the 120 the three passes need.
    assert fitting_epochs(config, estimate, 70.0) == 1.25
    assert fitting_epochs(config, estimate, 5.0) == 0.1  # never below a tenth of a pass


def test_a_shorter_input_is_chosen_for_the_passes_to_fit() -> None:
    config = TrainingConfig(task="classification", epochs=6, max_length=128)
    assert pace.shorter_length(config, 4.5, 64) == 96  # three quarters of the passes fit
    assert pace.shorter_length(config, 2.9, 64) == 64  # never below the task's shortest
    short = config.model_copy(update={"max_length": 48})
    assert pace.shorter_length(short, 1.0, 64) == 48  # never longer than it was


def test_only_the_recommended_passes_of_a_cpu_job_are_paced() -> None:
    chosen = TrainingConfig(task="classification").model_copy(
        update={"recommended": {"epochs": {"value": 3, "reason": "rules"}}}
    )
    assert pace.paced(chosen, 240)
    assert not pace.paced(chosen, 0)  # the setting off
    assert not pace.paced(chosen.model_copy(update={"compute_type": "gpu"}), 240)
    given = TrainingConfig(task="classification", epochs=3)
    assert not pace.paced(given.model_copy(update={"recommended": chosen.recommended}), 240)
    steps = TrainingConfig(task="classification", max_steps=30)
    assert not pace.paced(steps.model_copy(update={"recommended": chosen.recommended}), 240)
    auto = TrainingConfig(task="classification", auto={"time_budget_s": 60})
    assert not pace.paced(auto.model_copy(update={"recommended": chosen.recommended}), 240)
    assert not pace.paced(TrainingConfig(task="classification", recommend=False), 240)


async def _dataset(task: str, upload: UploadFn, tmp_path: Path) -> int:
    if task == "classification":
        path = write_csv(tmp_path / "reviews.csv", classification_rows(60))
        response = await upload(path)
    elif task == "sft":
        response = await upload(write_jsonl(tmp_path / "chat.jsonl", chat_rows(24)))
    else:
        response = await upload(
            write_jsonl(tmp_path / "prefs.jsonl", preference_rows(24)), task=task
        )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _base(task: str, tiny_bert: Path, tiny_llama: Path) -> str:
    return str(tiny_bert if task == "classification" else tiny_llama)


async def _trained(
    http: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    job, _seconds = await train_timed(http, auth, body, timeout=180)
    assert job["state"] == "succeeded", job
    return job


@pytest.mark.parametrize("task", ["classification", "sft", "dpo"])
async def test_a_job_that_fits_its_target_is_measured_and_keeps_the_recommendation(
    task: str,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    tiny_bert: Path,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    body = {
        "task": task,
        "base_model": _base(task, tiny_bert, tiny_llama),
        "dataset_id": await _dataset(task, upload, tmp_path),
    }
    job = await _trained(http, auth, body)
    config = job["config"]
    record = PaceRecord.model_validate(config["pace"])
    assert record.target_s == 240
    assert record.seconds_per_step > 0 and record.save_seconds > 0
    assert record.seconds_per_eval_example > 0
    assert 0 < record.finish_reserve_s < record.estimated_s < 240
    assert record.epochs is None and record.checkpoint_steps is None
    assert "time target" not in config["recommended"]["epochs"]["reason"]


async def test_a_job_over_its_target_trains_fewer_passes_and_says_why(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    tiny_bert: Path,
    tmp_path: Path,
) -> None:
    runner.settings.training_cpu_time_target_seconds = 1.0  # the worker's start takes longer
    dataset = await _dataset("classification", upload, tmp_path)
    body = {"task": "classification", "base_model": str(tiny_bert), "dataset_id": dataset}
    job = await _trained(http, auth, body)
    config, metrics = job["config"], job["metrics"]
    record = PaceRecord.model_validate(config["pace"])
    assert record.epochs == config["epochs"] == 0.1
    chosen = config["recommended"]["epochs"]
    assert chosen["value"] == 0.1
    assert "fit the 1 s time target of a CPU job" in chosen["reason"]
    assert "set epochs to train more" in chosen["reason"]
    assert config["checkpoint_steps"] == record.checkpoint_steps == 5  # the floor
    # The guard stops the training at once: only the time to finish is left.
    assert metrics["trained_steps"] == 1
    assert metrics["test_examples"] == 6 and "test_accuracy" in metrics

    # The user's own passes are trained whatever the target.
    given = await _trained(http, auth, {**body, "epochs": 2, "batch_size": 16})
    assert given["config"]["pace"] is None and given["config"]["epochs"] == 2
    assert given["metrics"]["trained_steps"] == 2 * 4  # 49 training examples, batches of 16


async def test_a_resumed_job_keeps_its_first_decision(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    database: Database,
    tiny_bert: Path,
    tmp_path: Path,
) -> None:
    response = await upload(write_csv(tmp_path / "reviews.csv", classification_rows(400)))
    assert response.status_code == 201, response.text
    body = {
        "task": "classification",
        "base_model": str(tiny_bert),
        "dataset_id": response.json()["id"],
        "batch_size": 4,  # many steps: time to be killed after a checkpoint
        "early_stopping_patience": 0,
    }
    created = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    job = await wait_for(http, auth, job_id, until=lambda j: j["checkpoint_path"] is not None)
    first = PaceRecord.model_validate(job["config"]["pace"])
    os.kill(job["worker_pid"], signal.SIGKILL)
    done = await wait_for(http, auth, job_id, timeout=180)
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    assert PaceRecord.model_validate(done["config"]["pace"]) == first  # not measured again
    async with database.sessions() as session:
        recommended = list(
            await session.scalars(
                select(TrainingEvent.data).where(
                    TrainingEvent.job_id == job_id, TrainingEvent.kind == "recommended"
                )
            )
        )
    # Each run reports its recommendation; only the first measured.
    assert len(recommended) == 3 and sum("pace" in item for item in recommended) == 1


@pytest.fixture(scope="module")
def long_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT with room for 256 positions (long texts are not cut to 64 by it)."""
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "long-bert", max_positions=256)


async def test_a_classifier_over_its_target_reads_shorter_texts_more_often(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    long_bert: Path,
    tmp_path: Path,
) -> None:
    runner.settings.training_cpu_time_target_seconds = 1.0
    words = " ".join(f"word{i}" for i in range(150))
    rows = [
        {"text": f"{'good' if i % 2 else 'bad'} {words}", "label": "pos" if i % 2 else "neg"}
        for i in range(40)
    ]
    response = await upload(write_csv(tmp_path / "long.csv", rows))
    assert response.status_code == 201, response.text
    body = {
        "task": "classification",
        "base_model": str(long_bert),
        "dataset_id": response.json()["id"],
    }
    job = await _trained(http, auth, body)
    config = job["config"]
    record = PaceRecord.model_validate(config["pace"])
    # The rules held the long texts to 128 tokens on a CPU; the pacing cut them to the
    # shortest the task allows, measured again there, and still had to trim the passes.
    assert record.max_length == config["max_length"] == 64
    reason = config["recommended"]["max_length"]["reason"]
    assert reason.startswith("cut from 128 tokens") and "set max_length to keep it" in reason
    assert record.epochs == config["epochs"] == 0.1
    assert job["metrics"]["trained_steps"] == 1 and "test_accuracy" in job["metrics"]

    # A length the user gave is kept: only the passes are trimmed.
    given = await _trained(http, auth, {**body, "max_length": 128})
    assert given["config"]["max_length"] == 128 and given["config"]["pace"]["max_length"] is None
    assert given["config"]["epochs"] == 0.1
