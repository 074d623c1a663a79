"""The background status sync started by the app's lifespan: a job moves to success on
its own, the model is published and answers at once; a failing check is kept and retried."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import openai
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.db.models import FineTuneCommand
from modelyard.finetune.sync import FineTuneSync, finetune_sync
from tests.fakes.openai_finetune import FineTuneOpenAI
from tests.finetune.conftest import upload


async def _job_status(database: Database, command_id: int) -> FineTuneCommand:
    async with database.sessions() as session:
        command = await session.get(FineTuneCommand, command_id)
        assert command is not None
        return command


async def test_the_lifespan_polls_until_the_job_ends(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sdk: openai.AsyncOpenAI,
) -> None:
    app.state.modelyard.settings.finetune_poll_seconds = 0.05
    record = (await upload(client, staff_headers, training_jsonl)).json()
    created = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": record["id"]}
    )
    command_id = created.json()["id"]
    async with app.router.lifespan_context(app):
        service = finetune_sync(app)
        deadline = time.monotonic() + 15
        while (await _job_status(database, command_id)).job_status != "succeeded":
            assert time.monotonic() < deadline, "the job was not synced in time"
            await asyncio.sleep(0.05)
        model = (await _job_status(database, command_id)).fine_tuned_model
        assert model is not None
        answer = await sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "Echo: hi"
        assert service._task is not None and not service._task.done()
    assert service._task is None
    gets = [r for r in fake_ft.requests if r.method == "GET" and "/fine_tuning/jobs/" in r.path]
    assert len([r for r in gets if not r.path.endswith("/events")]) == 4  # then no more


async def test_a_failed_check_is_kept_and_retried(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
) -> None:
    record = (await upload(client, staff_headers, training_jsonl)).json()
    created = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": record["id"]}
    )
    command_id = created.json()["id"]
    fake_ft.fail_with(503)
    assert await sync.tick() == 1
    command = await _job_status(database, command_id)
    assert command.job_status == "validating_files"
    assert command.sync_error is not None and "answered HTTP 503" in command.sync_error
    fake_ft.fail_with(None)
    assert await sync.tick() == 1
    command = await _job_status(database, command_id)
    assert command.job_status == "queued" and command.sync_error is None


async def test_concurrent_checks_store_each_event_once(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
) -> None:
    record = (await upload(client, staff_headers, training_jsonl)).json()
    created = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": record["id"]}
    )
    command_id = created.json()["id"]
    for _round in range(3):
        refreshed, *_checks = await asyncio.gather(
            client.post(f"/v2/finetune/commands/{command_id}/refresh", headers=staff_headers),
            sync.check(command_id),
            sync.check(command_id),
        )
        assert refreshed.status_code == 200, refreshed.text
    await sync.check(command_id)
    command = await _job_status(database, command_id)
    assert command.job_status == "succeeded" and command.fine_tuned_model is not None
    events = await client.get(f"/v2/finetune/commands/{command_id}/events", headers=staff_headers)
    job = fake_ft.jobs[str(command.remote_job_id)]
    assert [e["message"] for e in events.json()["data"]] == [e["message"] for e in job.events]
    models = await client.get("/v2/llm-models/?all=true", headers=staff_headers)
    assert [m["model_id"] for m in models.json()].count(command.fine_tuned_model) == 1
