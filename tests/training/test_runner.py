"""The runner: cancel, a killed worker resumed from its checkpoint, a server restart, a
failing job, and ``gpu`` refused where there is none."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from sqlalchemy import select, text

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainingEvent, TrainingJob
from modelyard.training.runner import TrainingRunner, latest_checkpoint, worker_alive
from tests.training.conftest import UploadFn, classification_rows, write_csv
from tests.training.jobs_helpers import wait_for


def _job(base: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "task": "classification",
        "base_model": str(base),
        "batch_size": 4,
        "max_length": 16,
        "logging_steps": 5,
        "learning_rate": 1e-3,
        **overrides,
    }


@pytest.fixture
async def dataset_id(upload: UploadFn, tmp_path: Path) -> int:
    response = await upload(write_csv(tmp_path / "data.csv", classification_rows(40)))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _create(http: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> int:
    response = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _states(database: Database, job_id: int) -> list[dict[str, Any]]:
    async with database.sessions() as session:
        events = await session.scalars(
            select(TrainingEvent)
            .where(TrainingEvent.job_id == job_id, TrainingEvent.kind == "state")
            .order_by(TrainingEvent.id)
        )
        return [e.data for e in events]


async def test_cancel_stops_a_running_job_within_seconds(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    dataset_id: int,
    tiny_bert: Path,
) -> None:
    job_id = await _create(
        http, auth, {**_job(tiny_bert, max_steps=100_000), "dataset_id": dataset_id}
    )
    running = await wait_for(
        http, auth, job_id, until=lambda j: j["state"] == "running" and j["progress"]
    )
    pid = running["worker_pid"]
    assert worker_alive(pid)
    # One job per device: a second CPU job waits in the queue.
    waiting = await _create(http, auth, {**_job(tiny_bert, max_steps=2), "dataset_id": dataset_id})
    await asyncio.sleep(0.5)
    second = (await http.get(f"/v2/training/jobs/{waiting}", headers=auth)).json()
    assert second["state"] == "queued" and second["worker_pid"] is None
    assert runner.active_jobs == [job_id]
    cancelled = await http.post(f"/v2/training/jobs/{waiting}/cancel", headers=auth)
    assert cancelled.json()["state"] == "cancelled"
    started = time.monotonic()
    response = await http.post(f"/v2/training/jobs/{job_id}/cancel", headers=auth)
    assert response.status_code == 200 and response.json()["cancel_requested"]
    active = await http.delete(f"/v2/training/jobs/{job_id}", headers=auth)
    assert active.status_code == 409 and "cancel it first" in active.json()["error"]["message"]
    job = await wait_for(http, auth, job_id, timeout=30)
    assert job["state"] == "cancelled" and job["model"] is None
    assert time.monotonic() - started < 10
    assert not worker_alive(pid)
    again = await http.post(f"/v2/training/jobs/{job_id}/cancel", headers=auth)
    assert again.status_code == 409
    assert (await http.delete(f"/v2/training/jobs/{job_id}", headers=auth)).status_code == 204
    assert (await http.get(f"/v2/training/jobs/{job_id}", headers=auth)).status_code == 404


async def test_a_queued_job_is_cancelled_at_once(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int, tiny_bert: Path
) -> None:
    job_id = await _create(http, auth, {**_job(tiny_bert, max_steps=2), "dataset_id": dataset_id})
    response = await http.post(f"/v2/training/jobs/{job_id}/cancel", headers=auth)
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    listed = (await http.get("/v2/training/jobs?state=cancelled", headers=auth)).json()["data"]
    assert [j["id"] for j in listed] == [job_id]


async def test_a_killed_worker_resumes_from_its_last_checkpoint(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    dataset_id: int,
    tiny_bert: Path,
    database: Database,
) -> None:
    body = {**_job(tiny_bert, max_steps=60, checkpoint_steps=10), "dataset_id": dataset_id}
    job_id = await _create(http, auth, body)
    job = await wait_for(http, auth, job_id, until=lambda j: j["checkpoint_path"] is not None)
    os.kill(job["worker_pid"], signal.SIGKILL)
    done = await wait_for(http, auth, job_id)
    assert done["state"] == "succeeded", done
    assert done["attempts"] == 2
    states = await _states(database, job_id)
    resumed = [s for s in states if s["state"] == "validating"][1]
    checkpoint_step = int(resumed["resume_from"].rsplit("-", 1)[1])
    assert checkpoint_step >= 10
    assert any("the worker died (exit status -9)" in s.get("reason", "") for s in states)
    # The second run started at the checkpoint's step, not at zero.
    async with database.sessions() as session:
        running = list(
            await session.scalars(
                select(TrainingEvent.data).where(
                    TrainingEvent.job_id == job_id, TrainingEvent.kind == "state"
                )
            )
        )
    assert [r.get("step") for r in running if r["state"] == "running"] == [0, checkpoint_step]


async def test_after_a_server_restart_the_job_resumes(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    dataset_id: int,
    tiny_bert: Path,
    settings: Settings,
    database: Database,
) -> None:
    body = {**_job(tiny_bert, max_steps=60, checkpoint_steps=10), "dataset_id": dataset_id}
    job_id = await _create(http, auth, body)
    job = await wait_for(http, auth, job_id, until=lambda j: j["checkpoint_path"] is not None)
    # The server dies: its loop stops and its worker goes with it (PR_SET_PDEATHSIG).
    task = runner._task
    assert task is not None
    task.cancel()
    os.kill(job["worker_pid"], signal.SIGKILL)
    # Its loop ends before the next server starts: a write it was making is rolled back
    # (left open, it would hold SQLite's lock until the next server's first write fails).
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    runner._active.clear()
    runner._task = None

    restarted = TrainingRunner(settings, database, poll_interval=0.05)
    await restarted.start()
    try:
        done = await wait_for(http, auth, job_id)
    finally:
        await restarted.aclose()
    assert done["state"] == "succeeded" and done["attempts"] == 2, (done["error"], done)
    states = await _states(database, job_id)
    assert any("interrupted by a server restart" in s.get("reason", "") for s in states)


_REFUSE_PID = {
    "sqlite": [
        "CREATE TRIGGER refuse_pid BEFORE UPDATE OF worker_pid ON training_jobs "
        "WHEN NEW.worker_pid IS NOT NULL BEGIN SELECT RAISE(ABORT, 'pid refused'); END"
    ],
    "postgres": [
        "CREATE FUNCTION refuse_pid() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'pid refused'; END $$",
        "CREATE TRIGGER refuse_pid BEFORE UPDATE OF worker_pid ON training_jobs "
        "FOR EACH ROW WHEN (NEW.worker_pid IS NOT NULL) EXECUTE FUNCTION refuse_pid()",
    ],
}
_ALLOW_PID = {
    "sqlite": ["DROP TRIGGER refuse_pid"],
    "postgres": ["DROP TRIGGER refuse_pid ON training_jobs", "DROP FUNCTION refuse_pid()"],
}


async def _execute(database: Database, statements: list[str]) -> None:
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def test_a_worker_whose_start_could_not_be_recorded_is_still_followed(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    dataset_id: int,
    tiny_bert: Path,
    database: Database,
    backend: str,
) -> None:
    # The database refuses the worker's pid: the worker has started all the same, so the
    # job is neither failed nor left to run unwatched; the write is tried again.
    await _execute(database, _REFUSE_PID[backend])
    try:
        job_id = await _create(
            http, auth, {**_job(tiny_bert, max_steps=100_000), "dataset_id": dataset_id}
        )
        running = await wait_for(http, auth, job_id, until=lambda j: j["state"] == "running")
    finally:
        await _execute(database, _ALLOW_PID[backend])
    pid = runner.worker_pid(job_id)
    assert running["worker_pid"] is None and worker_alive(pid)
    recorded = await wait_for(http, auth, job_id, until=lambda j: j["worker_pid"] is not None)
    assert recorded["worker_pid"] == pid
    async with database.sessions() as session:
        assert (await session.get(TrainingJob, job_id)).work_dir == f"training/jobs/{job_id}"
    assert {"state": "validating", "attempt": 1, "resume_from": None} in await _states(
        database, job_id
    )
    await http.post(f"/v2/training/jobs/{job_id}/cancel", headers=auth)
    done = await wait_for(http, auth, job_id, timeout=30)
    assert done["state"] == "cancelled" and done["attempts"] == 1, done
    assert not worker_alive(pid)


async def test_a_failing_job_reports_why(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    runner: TrainingRunner,
    dataset_id: int,
    tmp_path: Path,
) -> None:
    missing = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={**_job(Path("/nonexistent/base"), max_steps=2), "dataset_id": dataset_id},
    )
    assert missing.status_code == 404  # refused at once, before anything is queued
    assert missing.json()["error"]["param"] == "base_model"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "nonesuch"}')
    job_id = await _create(http, auth, {**_job(broken, max_steps=2), "dataset_id": dataset_id})
    job = await wait_for(http, auth, job_id)
    assert job["state"] == "failed"
    assert job["error"].startswith("UnsupportedModelError: Unsupported model type: nonesuch")


async def test_gpu_is_refused_before_start_where_there_is_none(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={"task": "classification", "compute_type": "gpu", "dataset_id": dataset_id},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "gpu_unavailable" and error["param"] == "compute_type"
    assert "Use compute_type cpu" in error["message"]
    short_form = await http.post(
        "/train",
        headers=auth,
        json={"task": "classification", "compute_type": "gpu", "dataset_id": dataset_id},
    )
    assert short_form.status_code == 400 and short_form.json()["error"]["code"] == "gpu_unavailable"
    assert (await http.get("/v2/training/jobs", headers=auth)).json()["data"] == []


async def test_job_requests_are_checked(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int, database: Database
) -> None:
    sft = await http.post(
        "/v2/training/jobs", headers=auth, json={"task": "sft", "dataset_id": dataset_id}
    )
    assert sft.status_code == 400 and sft.json()["error"]["code"] == "dataset_task_mismatch"
    bad_name = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={"task": "classification", "dataset_id": dataset_id, "output_name": "../x"},
    )
    assert bad_name.status_code == 422
    unknown = await http.post(
        "/v2/training/jobs", headers=auth, json={"task": "classification", "dataset_id": 999}
    )
    assert unknown.status_code == 404
    first = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={"task": "classification", "dataset_id": dataset_id, "output_name": "mine"},
    )
    assert first.status_code == 201
    taken = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={"task": "classification", "dataset_id": dataset_id, "output_name": "mine"},
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "name_taken"
    # Another user sees none of it.
    from tests.helpers import bearer, make_token, make_user

    other = bearer(await make_token(database, await make_user(database, "other@example.com")))
    assert (
        await http.get(f"/v2/training/jobs/{first.json()['id']}", headers=other)
    ).status_code == 404
    assert (await http.get(f"/v2/datasets/{dataset_id}", headers=other)).status_code == 404


def test_resume_takes_the_newest_complete_checkpoint_on_disk(tmp_path: Path) -> None:
    """A worker killed right after saving leaves checkpoints the database never heard of
    (and the trainer deletes older ones): the newest complete one on disk is resumed. One
    killed while writing its trainer state (written last) is passed over."""
    assert latest_checkpoint(tmp_path) is None
    checkpoints = tmp_path / "checkpoints"
    states = {8: "whole", 10: "whole", 12: None, 9: "whole", 14: "", 16: '{"global_st'}
    for step, state in states.items():
        directory = checkpoints / f"checkpoint-{step}"
        directory.mkdir(parents=True)
        if state is not None:
            text = json.dumps({"global_step": step}) if state == "whole" else state
            (directory / "trainer_state.json").write_text(text)
    (checkpoints / "checkpoint-tmp").mkdir()
    assert latest_checkpoint(tmp_path) == str(checkpoints / "checkpoint-10")


class _SlowRounds(TrainingRunner):
    """A runner whose rounds take a while and say whether they ran to their end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.began = asyncio.Event()
        self.ended: list[bool] = []

    async def tick(self) -> None:
        self.began.set()
        try:
            await asyncio.sleep(0.3)  # a database round trip, say
            await super().tick()
        except asyncio.CancelledError:
            self.ended.append(False)
            raise
        self.ended.append(True)


async def test_stopping_lets_the_round_in_progress_end(
    settings: Settings, database: Database
) -> None:
    runner = _SlowRounds(settings, database, poll_interval=0.01)
    await runner.start()
    await runner.began.wait()
    started = time.monotonic()
    await runner.aclose()
    assert runner.ended == [True]  # not cut inside its database calls, and no round after
    assert time.monotonic() - started < 5
