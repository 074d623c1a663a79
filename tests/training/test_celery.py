"""``MODELYARD_JOBS_BACKEND=celery``: jobs sent over the local Redis to a real Celery
worker (``modelyard jobs worker`` in a subprocess), with progress, cancel, and keys that
travel sealed — never in plaintext on the broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from modelyard.config import Settings
from modelyard.training.celery_jobs import queue_name, unseal
from modelyard.training.config import JobSecrets
from modelyard.training.service import training_service
from tests.fakes.hub import FakeHub
from tests.gateway.redis_helpers import REDIS_URL
from tests.training.jobs_helpers import wait_for

HF_TOKEN = "hf_canarycelerytoken0123456789abcdef"


@pytest.fixture
def celery_settings(settings: Settings) -> Iterator[Settings]:
    """The app sends jobs to Celery, on queues of its own."""
    settings.jobs_backend = "celery"
    settings.celery_broker_url = REDIS_URL
    settings.celery_queue = f"modelyard-test-{uuid.uuid4().hex[:8]}"
    yield settings


@pytest.fixture
async def broker(celery_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    yield client
    for kind in ("cpu", "gpu"):
        await client.delete(queue_name(celery_settings, kind))
    await client.aclose()


@pytest.fixture
def hub(celery_settings: Settings) -> Iterator[FakeHub]:
    with FakeHub(keys={HF_TOKEN}) as fake:
        celery_settings.hf_endpoint = fake.url
        yield fake


@pytest.fixture
def worker(celery_settings: Settings, hub: FakeHub, tmp_path: Path) -> Iterator[Path]:
    """``modelyard jobs worker`` with the app's database, data directory and keys."""
    env = {
        **os.environ,
        "MODELYARD_ENV": "test",
        "MODELYARD_DATA_DIR": str(celery_settings.data_dir),
        "MODELYARD_ENCRYPTION_KEYS": str(celery_settings.encryption_keys),
        "MODELYARD_JOBS_BACKEND": "celery",
        "MODELYARD_CELERY_BROKER_URL": REDIS_URL,
        "MODELYARD_CELERY_QUEUE": celery_settings.celery_queue,
        "MODELYARD_HF_ENDPOINT": hub.url,
        "MODELYARD_LOG_LEVEL": "INFO",
        "MODELYARD_LOCAL_MODEL_DIRS": ",".join(map(str, celery_settings.local_model_dirs)),
    }
    env.pop("HF_TOKEN", None)
    if celery_settings.database_url:
        env["MODELYARD_DATABASE_URL"] = celery_settings.database_url
    log = tmp_path / "celery-worker.log"
    command = [str(Path(sys.executable).parent / "modelyard"), "jobs", "worker"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT
        )
    yield log
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


JOB = {"task": "classification", "batch_size": 4, "logging_steps": 1, "max_length": 16}


async def test_keys_are_sealed_on_the_broker(
    training_app: FastAPI,
    celery_settings: Settings,
    broker: aioredis.Redis,
) -> None:
    service = training_service(training_app)
    assert service.celery is not None
    service.celery.submit(41, "gpu", JobSecrets(hf_token=HF_TOKEN))
    messages = await broker.lrange(queue_name(celery_settings, "gpu"), 0, -1)  # type: ignore[misc]
    assert len(messages) == 1
    assert HF_TOKEN.encode() not in messages[0]
    import base64
    import json

    envelope = json.loads(messages[0])
    job_id, sealed = json.loads(base64.b64decode(envelope["body"]))[0]
    assert job_id == 41
    keyring = training_app.state.modelyard.keyring
    assert unseal(keyring, sealed).hf_token == HF_TOKEN


async def test_gpu_jobs_go_to_the_gpu_queue_without_a_gpu_here(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    celery_settings: Settings,
    broker: aioredis.Redis,
    dataset_id: int,
) -> None:
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={**JOB, "dataset_id": dataset_id, "compute_type": "gpu"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "queued"
    assert await broker.llen(queue_name(celery_settings, "gpu")) == 1  # type: ignore[misc]
    assert await broker.llen(queue_name(celery_settings, "cpu")) == 0  # type: ignore[misc]


async def test_a_celery_worker_trains_pushes_and_cancels(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    celery_settings: Settings,
    broker: aioredis.Redis,
    worker: Path,
    hub: FakeHub,
    dataset_id: int,
    tiny_bert: Path,
) -> None:
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={
            **JOB,
            "dataset_id": dataset_id,
            "base_model": str(tiny_bert),
            "max_steps": 3,
            "output_name": "celery-model",
            "keys": {"hf_token": HF_TOKEN},
        },
    )
    assert response.status_code == 201, response.text
    job = await wait_for(http, auth, response.json()["id"], timeout=180)
    assert job["state"] == "succeeded", (job, _read(worker)[-3000:])
    assert job["progress"]["step"] == 3 and job["metrics"]["eval_accuracy"] >= 0
    assert job["hub_push"]["state"] == "pushed", job["hub_push"]
    assert "config.json" in hub.repos["user-0/celery-model"].files
    assert [*(celery_settings.data_dir.resolve() / "models").glob("u*/celery-model")]

    # A long job: progress is reported while it runs, and cancel stops it.
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={
            **JOB,
            "dataset_id": dataset_id,
            "base_model": str(tiny_bert),
            "max_steps": 5000,
            "checkpoint_steps": 5000,
        },
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    running = await wait_for(
        http, auth, job_id, until=lambda j: (j["progress"].get("step") or 0) >= 2, timeout=120
    )
    assert running["state"] == "running"
    cancel = await http.post(f"/v2/training/jobs/{job_id}/cancel", headers=auth)
    assert cancel.status_code == 200 and cancel.json()["cancel_requested"] is True
    loop = asyncio.get_running_loop()
    asked = loop.time()
    cancelled = await wait_for(http, auth, job_id, timeout=60)
    assert cancelled["state"] == "cancelled", cancelled
    assert loop.time() - asked < 15
    log = _read(worker)
    assert HF_TOKEN not in log
    assert "training job" in log and "ended: succeeded" in log
