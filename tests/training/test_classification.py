"""A tiny classification job end to end through the API: upload, train, stream, classify."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainedModel
from modelyard.local.sources import locate
from modelyard.training.runner import TrainingRunner
from tests.training.conftest import UploadFn, classification_rows, write_csv
from tests.training.jobs_helpers import wait_for

JOB = {
    "task": "classification",
    "max_steps": 4,
    "batch_size": 4,
    "learning_rate": 1e-4,
    "checkpoint_steps": 2,
    "logging_steps": 1,
    "eval_fraction": 0.2,
    "max_length": 32,
}


async def test_classification_job_trains_saves_and_classifies(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    settings: Settings,
    database: Database,
    tmp_path: Path,
) -> None:
    response = await upload(write_csv(tmp_path / "reviews.csv", classification_rows(20)))
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["kind"] == "classification" and dataset["num_examples"] == 20
    assert dataset["labels"] == ["negative", "positive"]

    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={**JOB, "dataset_id": dataset["id"], "output_name": "sentiment"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "queued" and created["base_model"] == "all-MiniLM-L6-v2"

    # The event stream follows the job to its end.
    events: list[tuple[str, dict[str, object]]] = []
    async with http.stream(
        "GET", f"/v2/training/jobs/{created['id']}/events", headers=auth
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    states = [data["state"] for kind, data in events if kind == "state"]
    assert states[0] == "queued" and states[-1] == "succeeded", states
    assert "running" in states
    progress = [data for kind, data in events if kind == "progress"]
    assert progress and progress[-1]["step"] == 4 and progress[-1]["total_steps"] == 4
    assert all(isinstance(p["samples_per_second"], float) for p in progress)
    assert any(p["loss"] is not None for p in progress)
    assert [d["step"] for k, d in events if k == "checkpoint"] == [2, 4]

    job = await wait_for(http, auth, created["id"])
    assert job["state"] == "succeeded" and job["model"] == "sentiment", job
    assert 0.0 <= job["metrics"]["eval_accuracy"] <= 1.0
    assert 0.0 <= job["metrics"]["eval_f1_macro"] <= 1.0
    assert job["progress"]["step"] == 4 and job["error"] is None

    metrics = (await http.get(f"/v2/training/jobs/{job['id']}/metrics", headers=auth)).json()
    assert [h["step"] for h in metrics["history"]][-1] == 4
    assert metrics["metrics"] == job["metrics"]

    # Recorded as the user's private model, saved in the user's folder with its card.
    async with database.sessions() as session:
        entry = await session.scalar(select(TrainedModel).where(TrainedModel.name == "sentiment"))
    assert entry is not None and entry.task == "classification"
    assert entry.visibility == "private" and entry.job_id == job["id"]
    assert entry.path == f"models/u{entry.owner_id}/sentiment"
    directory = settings.data_dir.resolve() / entry.path
    card = json.loads((directory / "modelyard.json").read_text())
    assert card["base_model"] == "all-MiniLM-L6-v2"
    assert card["dataset"]["sha256"] == dataset["sha256"]
    assert card["hyperparameters"]["max_steps"] == 4
    assert card["metrics"]["eval_accuracy"] == round(job["metrics"]["eval_accuracy"], 6)
    assert "# sentiment" in (directory / "README.md").read_text()
    assert (await locate(str(directory))).task == "classification"

    response = await http.post(
        "/v2/models/sentiment/classify",
        headers=auth,
        json={"input": ["loved it", "hated it"]},
    )
    assert response.status_code == 200, response.text
    answers = response.json()["data"]
    assert [a["index"] for a in answers] == [0, 1]
    for answer in answers:
        assert answer["label"] in ("positive", "negative")
        assert set(answer["scores"]) == {"positive", "negative"}
        assert abs(sum(answer["scores"].values()) - 1.0) < 1e-3
    # The checkpoints are gone once the model is saved.
    assert not (
        settings.data_dir.resolve() / "training/jobs" / str(job["id"]) / "checkpoints"
    ).exists()


async def test_classify_refuses_a_model_that_is_not_a_classifier(
    http: httpx.AsyncClient, auth: dict[str, str], tiny_llama: Path
) -> None:
    response = await http.post(
        f"/v2/models/{tiny_llama}/classify", headers=auth, json={"input": "hello"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "wrong_model_task"
    missing = await http.post(
        f"/v2/models/{tiny_llama.parent}/no-such-model/classify",
        headers=auth,
        json={"input": "hello"},
    )
    assert missing.status_code == 404
