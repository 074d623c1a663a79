"""The keys step of starting a job over the API: malformed, skipped, and valid keys that
push the model to a fake Hub on 127.0.0.1 — with canary keys that must never be stored,
logged, returned or counted anywhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainingJob, UserProviderKey
from modelyard.training.runner import TrainingRunner
from tests.fakes.hub import FakeHub, HubRepo
from tests.helpers import database_text
from tests.training.jobs_helpers import wait_for

HF_TOKEN = "hf_canaryjobtoken0123456789abcdefgh"
GROQ_KEY = "gsk_canaryjobgroqkey0123456789abcdefghijkl"

JOB = {
    "task": "classification",
    "max_steps": 2,
    "batch_size": 4,
    "checkpoint_steps": 2,
    "logging_steps": 1,
    "eval_fraction": 0.2,
    "max_length": 16,
}


@pytest.fixture
def hub(settings: Settings) -> Iterator[FakeHub]:
    with FakeHub(keys={HF_TOKEN}) as fake:
        settings.hf_endpoint = fake.url
        yield fake


async def _count(database: Database, model: Any) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize(
    ("keys", "param", "message"),
    [
        (
            {"hf_token": "xx_" + "a" * 30},
            "keys.hf_token",
            'HuggingFace token should start with "hf_"',
        ),
        ({"hf_token": "hf_short"}, "keys.hf_token", "HuggingFace token seems too short"),
        ({"groq_api_key": "gsk_short"}, "keys.groq_api_key", "Groq API key seems too short"),
    ],
)
async def test_malformed_key_is_refused_and_nothing_is_written(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    database: Database,
    dataset_id: int,
    keys: dict[str, str],
    param: str,
    message: str,
) -> None:
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={**JOB, "dataset_id": dataset_id, "keys": {**keys, "remember": True}},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"] == message
    assert error["param"] == param and error["code"] == "invalid_key_format"
    assert await _count(database, TrainingJob) == 0
    assert await _count(database, UserProviderKey) == 0


async def test_skipping_the_keys_step_trains_locally_without_a_push(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    dataset_id: int,
    tiny_bert: Path,
) -> None:
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={**JOB, "dataset_id": dataset_id, "base_model": str(tiny_bert)},
    )
    assert response.status_code == 201, response.text
    assert response.json()["hub_push"] is None and response.json()["compute_type"] == "cpu"
    job = await wait_for(http, auth, response.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["hub_push"] is None


async def test_keys_push_the_model_and_never_leak(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    database: Database,
    settings: Settings,
    dataset_id: int,
    tiny_bert: Path,
    hub: FakeHub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={
            **JOB,
            "dataset_id": dataset_id,
            "base_model": str(tiny_bert),
            "output_name": "pushed-model",
            "keys": {"hf_token": HF_TOKEN, "groq_api_key": GROQ_KEY},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["hub_push"] == {"repo_id": None, "private": True, "state": "pending"}

    # During the job: nothing anywhere holds the keys.
    running = await wait_for(http, auth, created["id"], until=lambda j: j["state"] == "running")
    assert running["state"] == "running"
    text_now = await database_text(database)
    assert HF_TOKEN not in text_now and GROQ_KEY not in text_now

    job = await wait_for(http, auth, created["id"])
    assert job["state"] == "succeeded", job
    push = job["hub_push"]
    assert push["state"] == "pushed", push
    assert push["repo_id"] == "user-0/pushed-model" and push["private"] is True
    assert push["url"] == f"{hub.url}/user-0/pushed-model"
    repo = hub.repos["user-0/pushed-model"]
    assert repo.private is True
    assert {"config.json", "README.md", "modelyard.json"} <= set(repo.files)
    assert any(name.endswith(".safetensors") for name in repo.files)
    uploads = [r for r in hub.requests if r.path.endswith("/commit/main")]
    assert uploads and uploads[0].header("authorization") == f"Bearer {HF_TOKEN}"

    # After the job: not in the database, the job's files, the logs, events or metrics.
    stored = await database_text(database)
    assert HF_TOKEN not in stored and GROQ_KEY not in stored
    work_dir = settings.data_dir.resolve() / "training" / "jobs" / str(job["id"])
    for path in work_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert HF_TOKEN.encode() not in content and GROQ_KEY.encode() not in content, path
    for path in (settings.data_dir.resolve() / "models" / "pushed-model").rglob("*"):
        if path.is_file():
            assert HF_TOKEN.encode() not in path.read_bytes(), path
    assert HF_TOKEN not in caplog.text and GROQ_KEY not in caplog.text
    events = await http.get(f"/v2/training/jobs/{job['id']}/events", headers=auth)
    assert '"state": "pushed"' in events.text or '"state":"pushed"' in events.text
    metrics = await http.get("/metrics")
    assert HF_TOKEN not in metrics.text and GROQ_KEY not in metrics.text
    assert runner._secrets == {}  # dropped when the job ended


async def test_failed_push_keeps_the_model_and_says_why(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    settings: Settings,
    dataset_id: int,
    tiny_bert: Path,
    hub: FakeHub,
) -> None:
    hub.repos["user-0/taken"] = HubRepo()
    hub.commit_status = 507
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={
            **JOB,
            "dataset_id": dataset_id,
            "base_model": str(tiny_bert),
            "output_name": "kept-locally",
            "keys": {"hf_token": HF_TOKEN},
            "hub": {"repo_id": "user-0/taken", "private": False},
        },
    )
    assert response.status_code == 201, response.text
    job = await wait_for(http, auth, response.json()["id"])
    assert job["state"] == "succeeded" and job["model"] == "kept-locally", job
    push = job["hub_push"]
    assert push["state"] == "failed" and "507" in push["error"]
    assert "kept locally" in push["error"]
    assert [*(settings.data_dir.resolve() / "models").glob("u*/kept-locally/config.json")]

    # Pushed again once the Hub is well: with a token for this call only.
    hub.commit_status = None
    path = f"/v2/training/jobs/{job['id']}/push"
    response = await http.post(path, headers=auth, json={"repo_id": "user-0/taken"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "hf_token_required"
    response = await http.post(
        path, headers=auth, json={"hf_token": HF_TOKEN, "repo_id": "user-0/taken"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["hub_push"]["state"] == "pushed"
    assert "config.json" in hub.repos["user-0/taken"].files


async def test_push_needs_a_succeeded_job(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int
) -> None:
    response = await http.post(
        "/v2/training/jobs", headers=auth, json={**JOB, "dataset_id": dataset_id}
    )
    job_id = response.json()["id"]
    response = await http.post(
        f"/v2/training/jobs/{job_id}/push", headers=auth, json={"hf_token": HF_TOKEN}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nothing_to_push"


async def test_remembered_keys_are_stored_encrypted_and_reused(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    database: Database,
    dataset_id: int,
) -> None:
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={
            **JOB,
            "dataset_id": dataset_id,
            "keys": {"hf_token": HF_TOKEN, "groq_api_key": GROQ_KEY, "remember": True},
            "hub": {"push": False},
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["hub_push"] is None
    profile = (await http.get("/v2/users/me", headers=auth)).json()
    assert profile["has_huggingface_key"] and profile["has_groq_key"]
    stored = await database_text(database)
    assert HF_TOKEN not in stored and GROQ_KEY not in stored

    # A later job uses the saved token when asked to.
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={**JOB, "dataset_id": dataset_id, "keys": {"use_saved": True}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["hub_push"]["state"] == "pending"
