"""The whole lifecycle against a fake OpenAI on 127.0.0.1: upload, job, status over
polls, events, success with a model that then answers through /v1/chat/completions;
a job that fails with the provider's error; a cancelled job."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry, FineTuneEvent, LlmModel, Provider
from modelyard.finetune.sync import FineTuneSync
from tests.fakes.openai_finetune import FineTuneOpenAI
from tests.finetune.conftest import BASE_MODEL, CANARY_KEY, add_provider, upload


async def _upload_and_create(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path, **data: object
) -> dict[str, object]:
    uploaded = await upload(client, headers, path)
    assert uploaded.status_code == 201, uploaded.text
    body = {"type": "create", "training_file_id": uploaded.json()["id"], "data": data}
    created = await client.post("/v2/finetune/commands", headers=headers, json=body)
    assert created.status_code == 201, created.text
    result: dict[str, object] = created.json()
    return result


async def test_upload_job_progress_events_success_and_chat(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
    sdk: openai.AsyncOpenAI,
) -> None:
    content = training_jsonl.read_bytes()  # noqa: ASYNC240 (a small test file)
    uploaded = await upload(client, staff_headers, training_jsonl)
    assert uploaded.status_code == 201, uploaded.text
    record = uploaded.json()
    assert record["remote_id"].startswith("file-") and record["remote_status"] == "processed"
    assert (record["num_examples"], record["provider_id"]) == (12, openai_provider)
    sent = fake_ft.last_request
    assert sent.path == "/v1/files" and sent.header("authorization") == f"Bearer {CANARY_KEY}"
    assert (sent.header("content-type") or "").startswith("multipart/form-data")
    assert b'name="purpose"\r\n\r\nfine-tune' in sent.body
    assert fake_ft.file_contents[record["remote_id"]] == content

    body = {
        "type": "create",
        "training_file_id": record["id"],
        "data": {"n_epochs": 3, "learning_rate_multiplier": 0.5, "suffix": "support", "seed": 7},
    }
    created = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert created.status_code == 201, created.text
    command = created.json()
    assert command["state"] == "done" and command["job_status"] == "validating_files"
    assert command["remote_job_id"].startswith("ftjob-") and command["model"] == BASE_MODEL
    assert fake_ft.last_request.json() == {
        "model": BASE_MODEL,
        "training_file": record["remote_id"],
        "hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": 0.5},
        "suffix": "support",
        "seed": 7,
    }

    seen = []
    for _poll in range(4):
        assert await sync.tick() == 1
        shown = await client.get(f"/v2/finetune/commands/{command['id']}", headers=staff_headers)
        seen.append(shown.json()["job_status"])
    assert seen == ["queued", "running", "running", "succeeded"]
    assert await sync.tick() == 0  # a finished job is not polled again
    final = shown.json()
    model = final["fine_tuned_model"]
    assert model == f"ft:{BASE_MODEL}:modelyard-test:support:{command['remote_job_id'][-8:]}"
    assert final["result"]["trained_tokens"] == 1234 and final["finished_at"] is not None
    assert final["error"] is None

    events = await client.get(
        f"/v2/finetune/commands/{command['id']}/events", headers=staff_headers
    )
    messages = [event["message"] for event in events.json()["data"]]
    assert messages[0].startswith("Validating training file") and "Status: queued" in messages
    assert messages[-2:] == [
        f"New fine-tuned model created: {model}",
        "The job has successfully completed",
    ]
    again = await client.get(
        f"/v2/finetune/commands/{command['id']}/events?refresh=true", headers=staff_headers
    )
    assert [e["message"] for e in again.json()["data"]] == messages  # stored once

    async with database.sessions() as session:
        provider = await session.get(Provider, openai_provider)
        assert provider is not None and provider.fine_tuned_model_id == model
        entry = await session.scalar(select(LlmModel).where(LlmModel.model_id == model))
        assert entry is not None and entry.provider_kind == "openai" and entry.task == "chat"
        assert entry.input_price_per_million == Decimal("0.15")  # gpt-4o-mini's, copied
        audit = await session.scalar(
            select(AuditLogEntry).where(AuditLogEntry.action == "fine_tuned")
        )
        assert audit is not None and audit.changed_fields == ["fine_tuned_model_id"]

    answer = await sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "where is my order?"}]
    )
    completion = answer.parse()
    assert completion.choices[0].message.content == "Echo: where is my order?"
    assert answer.headers["x-modelyard-provider"] == "openai"
    assert answer.headers["x-modelyard-model"] == model
    chat = fake_ft.last_request
    assert chat.path == "/v1/chat/completions" and chat.json()["model"] == model
    assert chat.header("authorization") == f"Bearer {CANARY_KEY}"
    listed = await sdk.models.list()
    assert model in [entry.id async for entry in listed]


async def test_explicit_refresh_records_a_command_and_returns_the_job(
    client: httpx.AsyncClient,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    command = await _upload_and_create(client, staff_headers, training_jsonl)
    refreshed = await client.post(
        f"/v2/finetune/commands/{command['id']}/refresh", headers=staff_headers
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["id"] == command["id"] and refreshed.json()["job_status"] == "queued"
    listed = await client.get("/v2/finetune/commands?type=refresh", headers=staff_headers)
    [refresh] = listed.json()["data"]
    assert refresh["job_command_id"] == command["id"] and refresh["state"] == "done"
    assert refresh["result"]["job_status"] == "queued"
    assert (
        await client.post(f"/v2/finetune/commands/{refresh['id']}/run", headers=staff_headers)
    ).status_code == 409


async def test_a_failed_job_keeps_the_providers_error(
    client: httpx.AsyncClient,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
    database: Database,
) -> None:
    fake_ft.failure = {
        "code": "invalid_training_file",
        "message": "Training file has 3 examples with an invalid role on line 7.",
        "param": "training_file",
    }
    command = await _upload_and_create(client, staff_headers, training_jsonl)
    for _poll in range(4):
        await sync.tick()
    shown = await client.get(f"/v2/finetune/commands/{command['id']}", headers=staff_headers)
    job = shown.json()
    assert job["job_status"] == "failed" and job["fine_tuned_model"] is None
    assert job["error"] == {
        "status": None,
        "code": "invalid_training_file",
        "message": "Training file has 3 examples with an invalid role on line 7.",
        "param": "training_file",
    }
    async with database.sessions() as session:
        levels = list(await session.scalars(select(FineTuneEvent.level)))
        assert "error" in levels
        assert await session.scalar(select(LlmModel).where(LlmModel.model_id.like("ft:%"))) is None


async def test_cancel(
    client: httpx.AsyncClient,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
) -> None:
    command = await _upload_and_create(client, staff_headers, training_jsonl)
    await sync.tick()
    cancelled = await client.post(
        f"/v2/finetune/commands/{command['id']}/cancel", headers=staff_headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["job_status"] == "cancelled"
    cancel_path = f"/v1/fine_tuning/jobs/{command['remote_job_id']}/cancel"
    assert [r.method for r in fake_ft.requests if r.path == cancel_path] == ["POST"]
    assert await sync.tick() == 0
    again = await client.post(
        f"/v2/finetune/commands/{command['id']}/cancel", headers=staff_headers
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    events = await client.get(
        f"/v2/finetune/commands/{command['id']}/events", headers=staff_headers
    )
    assert events.json()["data"][-1]["message"] == "Fine-tuning job cancelled"
    kinds = await client.get("/v2/finetune/commands?type=cancel", headers=staff_headers)
    assert [c["state"] for c in kinds.json()["data"]] == ["done"]


@pytest.mark.parametrize("page_size", [2])
async def test_events_are_read_across_pages(
    client: httpx.AsyncClient,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
    page_size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelyard.finetune import clients

    monkeypatch.setattr(clients, "EVENTS_PAGE", page_size)
    command = await _upload_and_create(client, staff_headers, training_jsonl)
    for _poll in range(4):
        await sync.tick()
    events = await client.get(
        f"/v2/finetune/commands/{command['id']}/events", headers=staff_headers
    )
    job = fake_ft.jobs[str(command["remote_job_id"])]
    assert [e["message"] for e in events.json()["data"]] == [e["message"] for e in job.events]
    assert len(job.events) > 2 * page_size


async def test_the_organization_header_is_sent(
    client: httpx.AsyncClient,
    database: Database,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    with FineTuneOpenAI(keys={CANARY_KEY}, organizations={"org-modelyard"}) as fake:
        provider_id = await add_provider(
            database,
            "Org",
            api_key=CANARY_KEY,
            base_url=fake.base_url,
            organization_id="org-modelyard",
            is_default=True,
        )
        uploaded = await upload(client, staff_headers, training_jsonl)
        assert uploaded.status_code == 201, uploaded.text
        assert fake.last_request.header("openai-organization") == "org-modelyard"
        async with database.sessions() as session:
            provider = await session.get(Provider, provider_id)
            assert provider is not None
            provider.organization_id = "org-elsewhere"
            await session.commit()
        refused = await upload(client, staff_headers, training_jsonl)
        assert refused.status_code == 502
        assert refused.json()["error"]["code"] == "no_such_organization"
